import { z } from 'zod';
import { addCursorHooks, removeCursorHooks } from './cursor-settings.js';
import { seenEvent, type SeenEvent } from './event-name.js';
import type { HookAdapter, HookAnswer, HookEvent, HookVerdict } from './types.js';

/**
 * Cursor's agent hooks (https://cursor.com/docs/hooks, "Reference"): one JSON object on stdin per
 * event, with the common `conversation_id`, `generation_id`, `model`, `hook_event_name`,
 * `cursor_version`, `workspace_roots`, `user_email` and `transcript_path`, plus each event's own
 * fields: `tool_name`, `tool_input`, `tool_use_id`, `cwd` (preToolUse; `tool_output` on
 * postToolUse), `tool_name`, `tool_input` (a JSON string) and `mcp_server_name`
 * (beforeMCPExecution; `result_json` after), `prompt` (beforeSubmitPrompt), `session_id`
 * (sessionStart, sessionEnd; the same as `conversation_id`). Fixtures taken from the
 * documentation: test/fixtures/hooks/cursor/.
 *
 * A hook refuses a tool call by printing `{"permission":"deny","user_message":…,"agent_message":…}`
 * and exiting 0 (or by exiting 2), and a prompt with `{"continue":false,"user_message":…}`. To let
 * something through Witness prints `{}`: valid JSON (a hook installed with `failClosed` that
 * printed nothing could be taken for a failed one) that takes no decision, since
 * `"permission":"allow"` could skip Cursor's own approval of a command or MCP call, and the policy
 * saying nothing against a call is not a person saying yes to it.
 */

const Payload = z
  .object({
    hook_event_name: z.string().min(1).max(128),
    conversation_id: z.string().min(1).max(1024).optional(),
    session_id: z.string().min(1).max(1024).optional(),
    tool_name: z.string().min(1).max(1024).optional(),
    tool_input: z.unknown().optional(),
    tool_output: z.unknown().optional(),
    tool_use_id: z.string().max(1024).optional(),
    mcp_server_name: z.string().min(1).max(1024).optional(),
    result_json: z.unknown().optional(),
    prompt: z.string().optional(),
    reason: z.string().optional(),
    status: z.string().optional(),
    failure_type: z.string().optional(),
    error_message: z.string().optional(),
  })
  .passthrough();

/**
 * What Cursor says about itself that is worth keeping beside the record, as claims. Left out:
 * `user_email` (personal data the audit does not need: the identity is the hook's `--agent`) and
 * an MCP server's `command`, `url` and `mcp_server_url` (a launch command or URL can carry a
 * credential; `mcp_server_name` names the server).
 */
const CLAIMS = [
  'cwd',
  'workspace_roots',
  'transcript_path',
  'generation_id',
  'model',
  'model_id',
  'cursor_version',
  'tool_use_id',
  'composer_mode',
  'is_background_agent',
  'sandbox',
  'duration',
  'loop_count',
] as const;

/** The name preToolUse and postToolUse give an MCP tool (`MCP:<tool>`, the documented matcher form). */
const MCP_TOOL = /^MCP(:|$)/;

/** A value Cursor sends as a JSON string (MCP params and results, tool_output), read back when it is JSON. */
function jsonish(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  try {
    return JSON.parse(value) as unknown;
  } catch {
    return value;
  }
}

/** The events parse reads as more than a note (test/integrations/hooks-event-of.test.ts keeps the two in step). */
const TYPES: ReadonlyMap<string, HookEvent['type']> = new Map([
  ['sessionStart', 'session.start'],
  ['sessionEnd', 'session.end'],
  ['beforeSubmitPrompt', 'prompt'],
  ['preToolUse', 'tool.before'],
  ['postToolUse', 'tool.after'],
  ['beforeMCPExecution', 'tool.before'],
  ['afterMCPExecution', 'tool.after'],
]);

/** Which event a Cursor payload names, even one parseCursor refuses (preToolUse and postToolUse of an `MCP:` tool are notes, as parse reads them). */
export function cursorEventOf(payload: unknown): SeenEvent | undefined {
  const seen = seenEvent(payload, TYPES);
  if (seen === undefined || (seen.event !== 'preToolUse' && seen.event !== 'postToolUse')) return seen;
  const tool = (payload as { tool_name?: unknown }).tool_name;
  return typeof tool === 'string' && MCP_TOOL.test(tool) ? { type: 'other', event: seen.event } : seen;
}

/** Reads one Cursor hook payload; throws a one-sentence Error when it is not one. */
export function parseCursor(payload: unknown): HookEvent {
  const r = Payload.safeParse(payload);
  if (!r.success) {
    const first = r.error.issues[0];
    throw new Error(`The hook payload is not a Cursor hook event (${first?.path.join('.') || 'payload'}: ${first?.message ?? 'invalid'}).`);
  }
  const p = r.data;
  const session = p.conversation_id ?? p.session_id;
  if (session === undefined) throw new Error('The hook payload is not a Cursor hook event (it has no conversation_id).');
  const raw = p as Record<string, unknown>;
  const claims: Record<string, unknown> = {};
  for (const k of CLAIMS) if (raw[k] !== undefined && raw[k] !== null) claims[k] = raw[k];
  const event = p.hook_event_name;
  const common = { agentSession: session, event, claims };
  const toolName = (): string => {
    if (p.tool_name === undefined) throw new Error(`The Cursor ${event} payload has no tool_name.`);
    return p.tool_name;
  };
  switch (event) {
    case 'sessionStart':
      return { ...common, type: 'session.start' };
    case 'sessionEnd':
      return { ...common, type: 'session.end', reason: p.reason };
    case 'beforeSubmitPrompt':
      return { ...common, type: 'prompt', prompt: p.prompt ?? '' };
    case 'preToolUse':
    case 'postToolUse': {
      const tool = toolName();
      if (MCP_TOOL.test(tool)) {
        const where = event === 'preToolUse' ? 'beforeMCPExecution' : 'afterMCPExecution';
        return { ...common, type: 'other', text: `Cursor ${event} for ${tool}: the call is recorded at ${where}, which names its MCP server.` };
      }
      const base = { ...common, tool, args: p.tool_input ?? {}, callRef: p.tool_use_id };
      return event === 'preToolUse' ? { ...base, type: 'tool.before' } : { ...base, type: 'tool.after', output: jsonish(p.tool_output) };
    }
    case 'beforeMCPExecution':
    case 'afterMCPExecution': {
      const tool = toolName();
      // The documentation: "A hook that allows anything it does not recognize should treat a missing or unexpected mcp_server_name as a deny."
      if (p.mcp_server_name === undefined) throw new Error(`The Cursor ${event} payload has no mcp_server_name, so the MCP server of ${tool} cannot be told; update Cursor.`);
      const base = { ...common, tool, server: p.mcp_server_name, args: jsonish(p.tool_input) ?? {} };
      return event === 'beforeMCPExecution' ? { ...base, type: 'tool.before' } : { ...base, type: 'tool.after', output: jsonish(p.result_json) };
    }
    case 'postToolUseFailure': {
      const tool = toolName();
      const id = p.tool_use_id === undefined ? '' : ` ${p.tool_use_id}`;
      return { ...common, type: 'other', text: `The ${tool} call${id} failed (${p.failure_type ?? 'error'}): ${p.error_message ?? 'no message'}` };
    }
    case 'stop':
      return { ...common, type: 'other', text: `The Cursor agent loop ended (${p.status ?? 'no status'}).` };
    default:
      return { ...common, type: 'other' };
  }
}

const json = (value: unknown): string => `${JSON.stringify(value)}\n`;

/** The answer Cursor expects for `event` given Witness's verdict. */
export function cursorAnswer(event: Pick<HookEvent, 'type' | 'event'> | undefined, verdict: HookVerdict): HookAnswer {
  if (verdict.decision === 'allow') return { stdout: event?.type === 'prompt' ? json({ continue: true }) : json({}), stderr: '', exitCode: 0 };
  const refusal = { permission: 'deny', user_message: verdict.reason, agent_message: verdict.reason };
  if (event?.type === 'tool.before') return { stdout: json(refusal), stderr: '', exitCode: 0 };
  if (event?.type === 'prompt') return { stdout: json({ continue: false, user_message: verdict.reason }), stderr: '', exitCode: 0 };
  // A payload Witness could not read: exit 2 blocks whatever the event was ("equivalent to permission: deny").
  if (event === undefined) return { stdout: json(refusal), stderr: `${verdict.reason}\n`, exitCode: 2 };
  // A result, a note or a session boundary: there is nothing left to refuse.
  return { stdout: json({}), stderr: '', exitCode: 0 };
}

export const cursor: HookAdapter = {
  kind: 'cursor',
  parse: parseCursor,
  eventOf: cursorEventOf,
  answer: cursorAnswer,
  settingsFile: { project: '.cursor/hooks.json', user: '.cursor/hooks.json' },
  install: addCursorHooks,
  uninstall: removeCursorHooks,
};
