/**
 * Coding-agent hooks: reading each agent's hook payloads into neutral events, the answers each
 * agent expects, and the agent's own settings file. Recording and policy are the CLI's
 * (src/cli/commands/hook-run.ts), which may import policy and approvals; this folder may not.
 */
export { HOOK_AGENTS, type HookAdapter, type HookAgent, type HookAnswer, type HookEvent, type HookVerdict, type SettingsChange } from './types.js';
export { hookAdapter, isHookAgent } from './agents.js';
export { REFUSABLE_EVENTS } from './refusable.js';
export { claudeCodeAnswer, claudeCodeTool, parseClaudeCode } from './claude-code.js';
export { CLAUDE_CODE_EVENTS, HOOK_MARKER, addClaudeCodeHooks, removeClaudeCodeHooks } from './claude-code-settings.js';
export { HOOK_MARK, isWitnessHookCommand } from './marker.js';
export { codexAnswer, codexTool, parseCodex } from './codex.js';
export { CODEX_EVENTS, CODEX_HOOK_MARKER, addCodexHooks, removeCodexHooks } from './codex-settings.js';
export { cursorAnswer, parseCursor } from './cursor.js';
export { CURSOR_EVENTS, CURSOR_HOOK_MARKER, addCursorHooks, removeCursorHooks } from './cursor-settings.js';
export { geminiAnswer, geminiTool, parseGemini } from './gemini.js';
export { GEMINI_EVENTS, GEMINI_HOOK_MARKER, addGeminiHooks, removeGeminiHooks } from './gemini-settings.js';
