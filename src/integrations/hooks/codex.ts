import { z } from 'zod';
import { addCodexHooks, removeCodexHooks } from './codex-settings.js';
import { seenEvent, type SeenEvent } from './event-name.js';
import { mcpReadings } from './mcp-name.js';
import type { HookAdapter, HookAnswer, HookEvent, HookVerdict } from './types.js';

/**
 * OpenAI Codex's hooks (https://learn.chatgpt.com/docs/hooks, formerly
 * https://developers.openai.com/codex/hooks; wire format: the generated schemas in
 * https://github.com/openai/codex/tree/main/codex-rs/hooks/schema/generated). Codex runs the
 * command through `$SHELL -lc` in the session's cwd with one JSON object on stdin: `session_id`,
 * `transcript_path`, `cwd`, `hook_event_name`, `model`, most events `permission_mode` and
 * `turn_id`, plus `tool_name`, `tool_use_id`, `tool_input` (PreToolUse, PostToolUse;
 * `tool_response` after), `prompt` (UserPromptSubmit), `source` (SessionStart), `reason`
 * (SessionEnd), `last_assistant_message` (Stop); a hook running inside a subagent also carries
 * `agent_id` and `agent_type`. Fixtures: test/fixtures/hooks/codex/.
 *
 * Tool names as Codex reports them, which policies match: `Bash` for shell commands (the command in
 * `args.command`), `apply_patch` for file edits (the patch text in `args.command`), and
 * `mcp__<server>__<tool>` for MCP tools (server and tool apart, the MCP arguments as `args`).
 *
 * A PreToolUse refusal is `{"hookSpecificOutput":{"hookEventName":"PreToolUse","permissionDecision":"deny","permissionDecisionReason":…}}`
 * with exit 0 (the reason reaches the model). Any other output Codex cannot use, a non-zero exit
 * other than 2, or its own timeout marks the hook failed and the call goes ahead: the answer must be
 * exactly this shape, and the hook must answer inside Codex's timeout. An allow prints nothing:
 * `permissionDecision: "allow"` is documented only with `updatedInput`, and Witness rewrites nothing.
 */

const Payload = z
  .object({
    session_id: z.string().min(1).max(1024),
    hook_event_name: z.string().min(1).max(128),
    transcript_path: z.string().nullable().optional(),
    cwd: z.string().optional(),
    model: z.string().optional(),
    permission_mode: z.string().optional(),
    turn_id: z.string().optional(),
    tool_name: z.string().min(1).max(1024).optional(),
    tool_input: z.unknown().optional(),
    tool_response: z.unknown().optional(),
    tool_use_id: z.string().max(1024).optional(),
    prompt: z.string().optional(),
    source: z.string().optional(),
    reason: z.string().optional(),
    trigger: z.string().optional(),
    stop_hook_active: z.boolean().optional(),
    last_assistant_message: z.string().nullable().optional(),
    agent_id: z.string().optional(),
    agent_type: z.string().optional(),
  })
  .passthrough();

/** What the payload says about the session and the call, kept as claims (never the identity Witness records under). */
const CLAIMS = ['cwd', 'transcript_path', 'model', 'permission_mode', 'turn_id', 'tool_use_id', 'source', 'trigger', 'stop_hook_active', 'agent_id', 'agent_type'] as const;

/** `mcp__<server>__<tool>`: Codex's model-visible name for a tool of an MCP server. */
const MCP_TOOL = /^mcp__(.+?)__(.+)$/;

/** The tool and, for an MCP tool, its server, as policy rules match them (`match: { server: memory, tool: create_entities }`). */
export function codexTool(name: string): { tool: string; server?: string } {
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

/** Which event a Codex payload names, even one parseCodex refuses. */
export const codexEventOf = (payload: unknown): SeenEvent | undefined => seenEvent(payload, TYPES);

/** Reads one Codex hook payload; throws a one-sentence Error when it is not one. */
export function parseCodex(payload: unknown): HookEvent {
  const r = Payload.safeParse(payload);
  if (!r.success) {
    const first = r.error.issues[0];
    throw new Error(`The hook payload is not a Codex hook event (${first?.path.join('.') || 'payload'}: ${first?.message ?? 'invalid'}).`);
  }
  const p = r.data;
  const claims: Record<string, unknown> = {};
  for (const k of CLAIMS) if (p[k] !== undefined && p[k] !== null) claims[k] = p[k];
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
      if (p.tool_name === undefined) throw new Error(`The Codex ${p.hook_event_name} payload has no tool_name.`);
      const t = codexTool(p.tool_name);
      const base = { ...common, tool: t.tool, server: t.server, args: p.tool_input ?? {}, callRef: p.tool_use_id };
      if (p.hook_event_name === 'PostToolUse') return { ...base, type: 'tool.after', output: p.tool_response };
      const readings = t.server === undefined ? undefined : mcpReadings(p.tool_name.slice('mcp__'.length), '__');
      return { ...base, type: 'tool.before', ...(readings === undefined ? {} : { readings }) };
    }
    default:
      // Stop carries what the agent last said at the end of its turn: the answer an auditor reads beside the calls.
      return { ...common, type: 'other', text: p.last_assistant_message ?? undefined };
  }
}

const line = (doc: unknown): string => `${JSON.stringify(doc)}\n`;

/** The answer Codex expects for `event` given Witness's verdict. */
export function codexAnswer(event: Pick<HookEvent, 'type' | 'event'> | undefined, verdict: HookVerdict): HookAnswer {
  if (verdict.decision === 'allow') return { stdout: '', stderr: '', exitCode: 0 };
  // A payload Witness could not read is answered as the tool call it most likely was. Exit 2 is no
  // safe default: on Stop it makes Codex continue the turn with the reason as a new prompt.
  if (event === undefined || event.type === 'tool.before') {
    return { stdout: line({ hookSpecificOutput: { hookEventName: 'PreToolUse', permissionDecision: 'deny', permissionDecisionReason: verdict.reason } }), stderr: '', exitCode: 0 };
  }
  if (event.type === 'prompt') return { stdout: line({ decision: 'block', reason: verdict.reason }), stderr: '', exitCode: 0 };
  // Nothing else can be refused; a systemMessage shows the user the fault without steering the model.
  return { stdout: line({ systemMessage: verdict.reason }), stderr: '', exitCode: 0 };
}

export const codex: HookAdapter = {
  kind: 'codex',
  parse: parseCodex,
  eventOf: codexEventOf,
  answer: codexAnswer,
  settingsFile: { project: '.codex/hooks.json', user: '.codex/hooks.json' },
  install: addCodexHooks,
  uninstall: removeCodexHooks,
};
