import { describe, expect, it } from 'vitest';
import { HOOK_AGENTS, HOOK_MARK, hookAdapter, isWitnessHookCommand, type HookAgent } from '../../src/integrations/index.js';

/**
 * Install must never leave a tool-call event unguarded (issue 16 review round 2, M-C): a
 * repository can ship Witness's exact hook command under a matcher no tool has, or with a field
 * that changes how the agent runs it, and an install that took that for "already installed" would
 * skip the very event that checks tool calls. A Witness entry counts as installed only when it,
 * and its group where the format has groups, is exactly what install writes; anything else is
 * replaced, and the user's own hooks stay.
 */

const command = (kind: string): string => `witness hook ${kind} --agent dev-laptop --fail closed --review-timeout 45s --budget 50s ${HOOK_MARK}`;

/** The event each agent asks before a tool runs: the one an install must never skip. */
const GATE: Record<HookAgent, string> = { 'claude-code': 'PreToolUse', codex: 'PreToolUse', cursor: 'preToolUse', gemini: 'BeforeTool' };
const GROUPED = (kind: HookAgent): boolean => kind !== 'cursor';

type Entry = Record<string, unknown> & { command?: unknown };
type Item = Record<string, unknown> & { hooks?: Entry[]; command?: unknown };
type Doc = { hooks: Record<string, Item[]> };

/** Witness's entries in `event`, each with the group it sits in (the entry itself for Cursor's flat list). */
function witnessEntries(text: string, kind: HookAgent, event: string): Array<{ group: Item; entry: Entry }> {
  const doc = JSON.parse(text) as Doc;
  return (doc.hooks[event] ?? []).flatMap((item) =>
    GROUPED(kind)
      ? (item.hooks ?? []).filter((e) => isWitnessHookCommand(e.command, kind)).map((entry) => ({ group: item, entry }))
      : isWitnessHookCommand(item.command, kind)
        ? [{ group: item, entry: item }]
        : [],
  );
}

/** `text` with `edit` applied to Witness's entry (and its group) in `event`. */
function tamper(text: string, kind: HookAgent, event: string, edit: (group: Item, entry: Entry) => void): string {
  const doc = JSON.parse(text) as Doc;
  const list = doc.hooks[event]!;
  const group = list.find((item) => (GROUPED(kind) ? (item.hooks ?? []).some((e) => isWitnessHookCommand(e.command, kind)) : isWitnessHookCommand(item.command, kind)))!;
  edit(group, GROUPED(kind) ? group.hooks!.find((e) => isWitnessHookCommand(e.command, kind))! : group);
  return JSON.stringify(doc, null, 2);
}

/** Every object's keys in reverse order (the same JSON to every agent, as a settings editor might write it back). */
function reversedKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(reversedKeys);
  if (v === null || typeof v !== 'object') return v;
  return Object.fromEntries(
    Object.entries(v)
      .reverse()
      .map(([k, x]) => [k, reversedKeys(x)]),
  );
}

describe.each(HOOK_AGENTS)('%s install: a Witness entry is installed only when it is exactly what install writes', (kind) => {
  const adapter = hookAdapter(kind);
  const gate = GATE[kind];
  const fresh = adapter.install(undefined, command(kind), 55, 'settings.json');
  const [expected] = witnessEntries(fresh.text, kind, gate);

  /** Installs over `text` and checks the gating event ends guarded exactly as a fresh install guards it, and a second install changes nothing. */
  function expectReplaced(text: string): string {
    const change = adapter.install(text, command(kind), 55, 'settings.json');
    expect(change.events).toContain(gate);
    const after = witnessEntries(change.text, kind, gate);
    expect(after).toHaveLength(1);
    expect(after[0]).toEqual(expected);
    expect(adapter.install(change.text, command(kind), 55, 'settings.json').events).toEqual([]);
    return change.text;
  }

  it('the install writes an entry the gating event runs for every tool', () => {
    expect(expected).toBeDefined();
    // Claude Code and Gemini CLI match tools by `matcher` (`*`: every tool); Codex reads no matcher as every occurrence; Cursor's entry has none.
    expect(expected!.group['matcher']).toBe(kind === 'claude-code' || kind === 'gemini' ? '*' : undefined);
  });

  it("replaces Witness's exact command under a matcher no tool has, keeping the user's hook that shared its group", () => {
    const shipped = tamper(fresh.text, kind, gate, (group) => {
      group['matcher'] = 'NoSuchTool';
      if (GROUPED(kind)) group.hooks!.unshift({ type: 'command', command: './scripts/guard.sh' });
    });
    const text = expectReplaced(shipped);
    if (GROUPED(kind)) expect((JSON.parse(text) as Doc).hooks[gate]).toContainEqual({ matcher: 'NoSuchTool', hooks: [{ type: 'command', command: './scripts/guard.sh' }] });
  });

  it('replaces an entry that carries a field install does not write (one that could stop it blocking)', () => {
    // Claude Code runs a command hook with `async: true` in the background, where it cannot block; Cursor fails open unless `failClosed`.
    expectReplaced(tamper(fresh.text, kind, gate, (_group, entry) => (kind === 'cursor' ? delete entry['failClosed'] : (entry['async'] = true))));
  });

  it('replaces an entry whose group lost its matcher or gained one install does not write', () => {
    if (kind === 'cursor') return; // a flat list: the matcher is the entry's own, covered above
    expectReplaced(tamper(fresh.text, kind, gate, (group) => (group['matcher'] === undefined ? (group['matcher'] = '.*') : delete group['matcher'])));
  });

  it('replaces a second Witness entry beside the exact one, leaving one', () => {
    const doc = JSON.parse(fresh.text) as Doc;
    const copy = JSON.parse(JSON.stringify(doc.hooks[gate]![0])) as Item;
    copy['matcher'] = 'NoSuchTool';
    doc.hooks[gate]!.unshift(copy);
    expectReplaced(JSON.stringify(doc, null, 2));
  });

  it('takes exactly the same entry with its keys in another order as installed', () => {
    const reordered = JSON.stringify(reversedKeys(JSON.parse(fresh.text)), null, 2);
    expect(adapter.install(reordered, command(kind), 55, 'settings.json')).toEqual({ text: reordered, events: [] });
  });
});
