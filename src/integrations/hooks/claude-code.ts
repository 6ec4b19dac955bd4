import { z } from 'zod';
import { addClaudeCodeHooks, removeClaudeCodeHooks } from './claude-code-settings.js';
import { seenEvent, type SeenEvent } from './event-name.js';
import { mcpReadings } from './mcp-name.js';
import type { HookAdapter, HookAnswer, HookEvent, HookVerdict } from './types.js';

/**
 * Claude Code's hooks (https://code.claude.com/docs/en/hooks): one JSON object on stdin per event,
 * with `session_id`, `transcript_path`, `cwd`, `permission_mode` and `hook_event_name`, plus
 * `tool_name`, `tool_input`, `tool_use_id` (PreToolUse, PostToolUse; `tool_response` after),
 * `prompt` (UserPromptSubmit), `source` (SessionStart) or `reason` (SessionEnd). Fixtures taken
 * from the documentation: test/fixtures/hooks/claude-code/.
 *
 * A PreToolUse hook refuses a call by printing
 * `{"hookSpecificOutput":{"hookEventName":"PreToolUse","permissionDecision":"deny","permissionDecisionReason":…}}`
 * and exiting 0 (the reason is shown to the model). To let a call through, Witness prints nothing:
 * `permissionDecision: "allow"` would also skip Claude Code's own permission prompt, and the
 * policy saying nothing against a call is not a person saying yes to it.
 */

const Payload = z
  .object({
    session_id: z.string().min(1).max(1024),
    hook_event_name: z.string().min(1).max(128),
    transcript_path: z.string().optional(),
    cwd: z.string().optional(),
    permission_mode: z.string().optional(),
    tool_name: z.string().min(1).max(1024).optional(),
    tool_input: z.unknown().optional(),
    tool_response: z.unknown().optional(),
    tool_use_id: z.string().max(1024).optional(),
    prompt: z.string().optional(),
    source: z.string().optional(),
    reason: z.string().optional(),
    message: z.string().optional(),
  })
  .passthrough();

/** `mcp__<server>__<tool>`: Claude Code's name for a tool of an MCP server. */
const MCP_TOOL = /^mcp__(.+?)__(.+)$/;

/** The tool and, for an MCP tool, its server, as policy rules match them (`match: { server: github, tool: create_issue }`). */
export function claudeCodeTool(name: string): { tool: string; server?: string } {
  const m = MCP_TOOL.exec(name);
  return m === null ? { tool: name } : { server: m[1]!, tool: m[2]! };
}

/** The events parse reads as more than a note (test/integrations/hooks-event-of.test.ts keeps the two in step). */
const TYPES: ReadonlyMap<string, HookEvent['type']> = new Map([
  ['SessionStart', 'session.start'],
  ['SessionEnd', 'session.end'],
  ['UserPromptSubmit', 'prompt'],
  ['PreToolUse', 'tool.before'],
  ['PostToolUse', 'tool.after'],
]);

/** Which event a Claude Code payload names, even one parseClaudeCode refuses. */
export const claudeCodeEventOf = (payload: unknown): SeenEvent | undefined => seenEvent(payload, TYPES);

/** Reads one Claude Code hook payload; throws a one-sentence Error when it is not one. */
export function parseClaudeCode(payload: unknown): HookEvent {
  const r = Payload.safeParse(payload);
  if (!r.success) {
    const first = r.error.issues[0];
    throw new Error(`The hook payload is not a Claude Code hook event (${first?.path.join('.') || 'payload'}: ${first?.message ?? 'invalid'}).`);
  }
  const p = r.data;
  const claims: Record<string, unknown> = {};
  for (const k of ['cwd', 'transcript_path', 'permission_mode', 'tool_use_id', 'source'] as const) if (p[k] !== undefined) claims[k] = p[k];
  const common = { agentSession: p.session_id, event: p.hook_event_name, claims };
  switch (p.hook_event_name) {
    case 'SessionStart':
      return { ...common, type: 'session.start', source: p.source };
    case 'SessionEnd':
      return { ...common, type: 'session.end', reason: p.reason };
    case 'UserPromptSubmit':
      return { ...common, type: 'prompt', prompt: p.prompt ?? '' };
    case 'PreToolUse':
    case 'PostToolUse': {
      if (p.tool_name === undefined) throw new Error(`The Claude Code ${p.hook_event_name} payload has no tool_name.`);
      const t = claudeCodeTool(p.tool_name);
      const base = { ...common, tool: t.tool, server: t.server, args: p.tool_input ?? {}, callRef: p.tool_use_id };
      if (p.hook_event_name === 'PostToolUse') return { ...base, type: 'tool.after', output: p.tool_response };
      const readings = t.server === undefined ? undefined : mcpReadings(p.tool_name.slice('mcp__'.length), '__');
      return { ...base, type: 'tool.before', ...(readings === undefined ? {} : { readings }) };
    }
    default:
      return { ...common, type: 'other', text: p.message };
  }
}

/** The answer Claude Code expects for `event` given Witness's verdict. */
export function claudeCodeAnswer(event: Pick<HookEvent, 'type' | 'event'> | undefined, verdict: HookVerdict): HookAnswer {
  if (verdict.decision === 'allow') return { stdout: '', stderr: '', exitCode: 0 };
  if (event?.type === 'tool.before') {
    const out = { hookSpecificOutput: { hookEventName: 'PreToolUse', permissionDecision: 'deny', permissionDecisionReason: verdict.reason } };
    return { stdout: `${JSON.stringify(out)}\n`, stderr: '', exitCode: 0 };
  }
  if (event?.type === 'prompt') return { stdout: `${JSON.stringify({ decision: 'block', reason: verdict.reason })}\n`, stderr: '', exitCode: 0 };
  // Nothing else can be refused: exit 2 on Stop, SubagentStop or PreCompact would keep the agent
  // working (Claude Code reads it as "block stoppage"), so those go on, and the user is told through
  // `systemMessage`, a field every event's JSON output may carry (issue 16 review, M2).
  if (event !== undefined) return { stdout: `${JSON.stringify({ systemMessage: verdict.reason })}\n`, stderr: '', exitCode: 0 };
  // A payload Witness could not read: exit 2 blocks a PreToolUse (and a prompt), stderr is the reason.
  return { stdout: '', stderr: `${verdict.reason}\n`, exitCode: 2 };
}

export const claudeCode: HookAdapter = {
  kind: 'claude-code',
  parse: parseClaudeCode,
  eventOf: claudeCodeEventOf,
  answer: claudeCodeAnswer,
  settingsFile: { project: '.claude/settings.json', user: '.claude/settings.json' },
  install: addClaudeCodeHooks,
  uninstall: removeClaudeCodeHooks,
};
