import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { HOOK_AGENTS, hookAdapter } from '../../src/integrations/index.js';
import { REPO_ROOT } from '../helpers/ledger.js';

/**
 * Each adapter's `eventOf` reads only `hook_event_name`, leniently, so that a payload its `parse`
 * refuses (a Stop without session_id) is still answered as its event expects: only a tool call or a
 * prompt can ever get a block answer (issue 16 review 2, L-G). It must agree with `parse` on every
 * payload `parse` reads.
 */

const FIX = path.join(REPO_ROOT, 'test', 'fixtures', 'hooks');
/** Every documented payload of `agent` (the fixtures with a hook_event_name: settings files have none). */
function payloads(agent: string): Array<[string, Record<string, unknown>]> {
  const out: Array<[string, Record<string, unknown>]> = [];
  for (const f of fs.readdirSync(path.join(FIX, agent))) {
    if (!f.endsWith('.json')) continue;
    let doc: unknown;
    try {
      doc = JSON.parse(fs.readFileSync(path.join(FIX, agent, f), 'utf8'));
    } catch {
      continue; // a settings file with comments
    }
    if (typeof doc === 'object' && doc !== null && 'hook_event_name' in doc) out.push([f, doc as Record<string, unknown>]);
  }
  return out;
}

const without = (doc: Record<string, unknown>, ...keys: string[]): Record<string, unknown> => Object.fromEntries(Object.entries(doc).filter(([k]) => !keys.includes(k)));

describe('reading which event an unreadable hook payload is', () => {
  for (const agent of HOOK_AGENTS) {
    it(`${agent}: agrees with parse on every fixture, and still names the event when the session id is missing`, () => {
      const a = hookAdapter(agent);
      const all = payloads(agent);
      expect(all.length).toBeGreaterThan(5);
      for (const [name, doc] of all) {
        const parsed = a.parse(doc);
        expect({ name, seen: a.eventOf(doc) }).toEqual({ name, seen: { type: parsed.type, event: parsed.event } });
        // The payload parse refuses for want of a session id: the same event, read from its name alone.
        const cut = without(doc, 'session_id', 'conversation_id');
        expect(() => a.parse(cut)).toThrow();
        expect({ name, seen: a.eventOf(cut) }).toEqual({ name, seen: { type: parsed.type, event: parsed.event } });
      }
    });
  }

  it('reads events parse does not know as other, and nothing from a payload without a usable hook_event_name', () => {
    for (const agent of HOOK_AGENTS) {
      const a = hookAdapter(agent);
      expect(a.eventOf({ hook_event_name: 'SomethingNew' })).toEqual({ type: 'other', event: 'SomethingNew' });
      for (const doc of [null, 'PreToolUse', [], {}, { hook_event_name: 3 }, { hook_event_name: '' }, { hook_event_name: 'x'.repeat(129) }]) expect(a.eventOf(doc)).toBeUndefined();
    }
  });

  it('refusable events: tool calls about to run and prompts, in each agent’s own names', () => {
    const refusable = (agent: (typeof HOOK_AGENTS)[number], event: string, extra: Record<string, unknown> = {}) => {
      const t = hookAdapter(agent).eventOf({ hook_event_name: event, ...extra })?.type;
      return t === 'tool.before' || t === 'prompt';
    };
    expect(['PreToolUse', 'UserPromptSubmit', 'PostToolUse', 'Stop', 'SubagentStop', 'PreCompact', 'SessionEnd'].map((e) => refusable('claude-code', e))).toEqual([
      true,
      true,
      false,
      false,
      false,
      false,
      false,
    ]);
    expect(['PreToolUse', 'UserPromptSubmit', 'PostToolUse', 'Stop', 'SessionStart'].map((e) => refusable('codex', e))).toEqual([true, true, false, false, false]);
    expect(['BeforeTool', 'BeforeAgent', 'AfterTool', 'AfterAgent', 'Notification'].map((e) => refusable('gemini', e))).toEqual([true, true, false, false, false]);
    expect(['preToolUse', 'beforeMCPExecution', 'beforeSubmitPrompt', 'postToolUse', 'afterMCPExecution', 'stop'].map((e) => refusable('cursor', e))).toEqual([true, true, true, false, false, false]);
    // Cursor's preToolUse of an MCP tool is only a note: the call is gated at beforeMCPExecution.
    expect(refusable('cursor', 'preToolUse', { tool_name: 'MCP:create_issue' })).toBe(false);
  });
});
