import type { HookAgent } from './types.js';

/**
 * Per coding agent, the hook events whose answer can refuse what the agent is about to do: the
 * events its adapter reads as a tool call about to run (`tool`) or as a prompt (`prompt`);
 * test/integrations/hooks-refusable.test.ts holds each adapter to this list. bin/witness.js reads
 * this file, compiled, when the rest of Witness cannot load or dies while it runs: under
 * `--fail closed` these events are refused with exit 2 and every other event goes on (exit 2 on
 * Stop would keep the agent working). It must stay without imports (the one above is a type,
 * erased by tsc) so that it loads when nothing else does.
 */
export const REFUSABLE_EVENTS: Readonly<Record<HookAgent, { readonly tool: readonly string[]; readonly prompt: readonly string[] }>> = {
  'claude-code': { tool: ['PreToolUse'], prompt: ['UserPromptSubmit'] },
  codex: { tool: ['PreToolUse'], prompt: ['UserPromptSubmit'] },
  cursor: { tool: ['preToolUse', 'beforeMCPExecution'], prompt: ['beforeSubmitPrompt'] },
  gemini: { tool: ['BeforeTool'], prompt: ['BeforeAgent'] },
};
