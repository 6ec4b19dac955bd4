import { describe, expect, it } from 'vitest';
import { CLAUDE_CODE_EVENTS, CODEX_EVENTS, CURSOR_EVENTS, GEMINI_EVENTS, HOOK_AGENTS, type HookAgent, REFUSABLE_EVENTS, hookAdapter } from '../../src/integrations/index.js';

/**
 * REFUSABLE_EVENTS is what bin/witness.js refuses under `--fail closed` when Witness cannot load.
 * It must name exactly the events each adapter reads as a tool call about to run or a prompt (the
 * ones its answer can refuse), so that a Witness that cannot start refuses what a working one could.
 */

const INSTALLED: Record<HookAgent, readonly string[]> = {
  'claude-code': CLAUDE_CODE_EVENTS.map((e) => e.event),
  codex: CODEX_EVENTS.map((e) => e.event),
  cursor: CURSOR_EVENTS.map((e) => e.event),
  gemini: GEMINI_EVENTS.map((e) => e.event),
};

/** The smallest payload each adapter reads for `event` (a shell tool call where the event has one). */
function payload(agent: HookAgent, event: string): Record<string, unknown> {
  const common = agent === 'cursor' ? { conversation_id: 'c1' } : { session_id: 's1' };
  return { ...common, hook_event_name: event, tool_name: 'Bash', tool_input: { command: 'ls' }, mcp_server_name: 'github', prompt: 'hi' };
}

describe('the events bin/witness.js refuses when Witness cannot start', () => {
  for (const agent of HOOK_AGENTS) {
    it(`are exactly the ${agent} events whose answer can refuse something`, () => {
      const adapter = hookAdapter(agent);
      const { tool, prompt } = REFUSABLE_EVENTS[agent];
      const names = new Set([...INSTALLED[agent], ...tool, ...prompt]);
      const read = { tool: [] as string[], prompt: [] as string[] };
      for (const name of names) {
        const event = adapter.parse(payload(agent, name));
        const answer = adapter.answer(event, { decision: 'deny', reason: 'no' });
        const refuses = answer.exitCode === 2 || /"permissionDecision":"deny"|"decision":"(block|deny)"|"permission":"deny"|"continue":false/.test(answer.stdout);
        expect(refuses, `${agent} ${name}`).toBe(event.type === 'tool.before' || event.type === 'prompt');
        if (event.type === 'tool.before') read.tool.push(name);
        if (event.type === 'prompt') read.prompt.push(name);
      }
      expect({ tool: [...tool].sort(), prompt: [...prompt].sort() }).toEqual({ tool: read.tool.sort(), prompt: read.prompt.sort() });
    });
  }

  it('include every event the Cursor install marks failClosed', () => {
    for (const { event, gate } of CURSOR_EVENTS) expect([...REFUSABLE_EVENTS.cursor.tool, ...REFUSABLE_EVENTS.cursor.prompt].includes(event), event).toBe(gate);
  });
});
