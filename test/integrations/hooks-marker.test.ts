import { describe, expect, it } from 'vitest';
import { HOOK_AGENTS, HOOK_MARK, hookAdapter } from '../../src/integrations/index.js';

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

/** Adds `extra` as another hook entry next to Witness's own one for the first event that has it (inside Witness's group where the format has groups). */
function addBeside(text: string, kind: string, extra: string): string {
  const doc = JSON.parse(text) as { hooks: Record<string, unknown[]> };
  for (const list of Object.values(doc.hooks)) {
    for (const item of list) {
      const inner = (item as { hooks?: Array<{ command?: string }> }).hooks;
      if (Array.isArray(inner) && inner.some((h) => h.command === command(kind))) {
        inner.push({ ...inner[0], command: extra } as { command: string });
        return JSON.stringify(doc, null, 2);
      }
      if ((item as { command?: string }).command === command(kind)) {
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
    const withOther = addBeside(first.text, kind, other);
    const removed = adapter.uninstall(withOther, 'settings.json');
    expect(commands(removed.text)).toEqual([other]);
    const again = adapter.install(removed.text, command(kind), 55, 'settings.json');
    expect(again.events).toEqual(first.events);
  });

  it("uninstall keeps a hook the user put into the same group as Witness's", () => {
    const installed = adapter.install(undefined, command(kind), 55, 'settings.json').text;
    const removed = adapter.uninstall(addBeside(installed, kind, './scripts/guard.sh'), 'settings.json');
    expect(commands(removed.text)).toEqual(['./scripts/guard.sh']);
  });
});
