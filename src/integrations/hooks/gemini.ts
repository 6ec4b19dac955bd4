import { z } from 'zod';
import { addGeminiHooks, removeGeminiHooks } from './gemini-settings.js';
import { seenEvent, type SeenEvent } from './event-name.js';
import { mcpReadings } from './mcp-name.js';
import type { HookAdapter, HookAnswer, HookEvent, HookVerdict, McpReading } from './types.js';

/**
 * Gemini CLI's hooks (https://geminicli.com/docs/hooks/reference): one JSON object on stdin per
 * event with `session_id`, `transcript_path`, `cwd`, `hook_event_name` and `timestamp`, plus
 * `tool_name`, `tool_input` and, for an MCP tool, `mcp_context` (BeforeTool, AfterTool;
 * `tool_response` after), `prompt` (BeforeAgent), `prompt_response` (AfterAgent), `source`
 * (SessionStart) or `reason` (SessionEnd). Gemini gives a tool call no id, so an AfterTool is not
 * tied to its BeforeTool by one. Fixtures and where the sources disagree:
 * test/fixtures/hooks/gemini/.
 *
 * A BeforeTool hook refuses a call by printing `{"decision":"deny","reason":…}` and exiting 0; the
 * reason reaches the model as the tool's error. Everything else is answered `{}`: Gemini parses
 * stdout as JSON when the hook exits 0, and with stdout empty it would read stderr (where Witness
 * logs) as a message to show. `"decision":"allow"` is not sent: it adds nothing to Gemini's own
 * confirmation, which stays the user's.
 */

const McpContext = z
  .object({
    server_name: z.string().min(1).max(1024),
    tool_name: z.string().min(1).max(1024),
  })
  .passthrough();

const Payload = z
  .object({
    session_id: z.string().min(1).max(1024),
    hook_event_name: z.string().min(1).max(128),
    transcript_path: z.string().optional(),
    cwd: z.string().optional(),
    timestamp: z.string().optional(),
    tool_name: z.string().min(1).max(1024).optional(),
    tool_input: z.unknown().optional(),
    tool_response: z.unknown().optional(),
    mcp_context: McpContext.optional(),
    original_request_name: z.string().optional(),
    prompt: z.string().optional(),
    prompt_response: z.string().optional(),
    stop_hook_active: z.boolean().optional(),
    source: z.string().optional(),
    reason: z.string().optional(),
    trigger: z.string().optional(),
    notification_type: z.string().optional(),
    message: z.string().optional(),
    details: z.unknown().optional(),
  })
  .passthrough();

/** `mcp__<server>__<tool>`: the MCP tool name in Gemini's hook reference until March 2026. */
const MCP_OLD = /^mcp__(.+?)__(.+)$/;
/** `mcp_<server>_<tool>`: the name since; a server name with `_` in it cannot be told apart here, which is why `mcp_context` comes first (and without it every reading is evaluated). */
const MCP_NEW = /^mcp_([^_]+)_(.+)$/;

/**
 * The tool and, for an MCP tool, its server, as policy rules match them (`match: { tool:
 * run_shell_command }`, `match: { server: github, tool: create_issue }`): Gemini's own
 * `mcp_context` when it sent one, else read from the qualified name.
 */
export function geminiTool(name: string, mcp?: { server_name: string; tool_name: string }): { tool: string; server?: string } {
  if (mcp !== undefined) return { server: mcp.server_name, tool: mcp.tool_name };
  const m = MCP_OLD.exec(name) ?? MCP_NEW.exec(name);
  return m === null ? { tool: name } : { server: m[1]!, tool: m[2]! };
}

/** Every reading of a qualified name that does not say where its server's name ends (none when `mcp_context` says it). */
function geminiReadings(name: string, mcp: unknown): McpReading[] | undefined {
  if (mcp !== undefined) return undefined;
  if (MCP_OLD.test(name)) return mcpReadings(name.slice('mcp__'.length), '__');
  if (MCP_NEW.test(name)) return mcpReadings(name.slice('mcp_'.length), '_');
  return undefined;
}

const CLAIMS = ['cwd', 'transcript_path', 'timestamp', 'original_request_name', 'source', 'trigger', 'stop_hook_active', 'notification_type', 'details'] as const;

/** The events parse reads as more than a note (test/integrations/hooks-event-of.test.ts keeps the two in step). */
const TYPES: ReadonlyMap<string, HookEvent['type']> = new Map([
  ['SessionStart', 'session.start'],
  ['SessionEnd', 'session.end'],
  ['BeforeAgent', 'prompt'],
  ['BeforeTool', 'tool.before'],
  ['AfterTool', 'tool.after'],
]);

/** Which event a Gemini CLI payload names, even one parseGemini refuses. */
export const geminiEventOf = (payload: unknown): SeenEvent | undefined => seenEvent(payload, TYPES);

/** Reads one Gemini CLI hook payload; throws a one-sentence Error when it is not one. */
export function parseGemini(payload: unknown): HookEvent {
  const r = Payload.safeParse(payload);
  if (!r.success) {
    const first = r.error.issues[0];
    throw new Error(`The hook payload is not a Gemini CLI hook event (${first?.path.join('.') || 'payload'}: ${first?.message ?? 'invalid'}).`);
  }
  const p = r.data;
  const claims: Record<string, unknown> = {};
  for (const k of CLAIMS) if (p[k] !== undefined) claims[k] = p[k];
  // Which server, not how it is launched: the command, args or URL of a server can hold a credential.
  if (p.mcp_context !== undefined) claims['mcp_context'] = { server_name: p.mcp_context.server_name, tool_name: p.mcp_context.tool_name };
  const common = { agentSession: p.session_id, event: p.hook_event_name, claims };
  switch (p.hook_event_name) {
    case 'SessionStart':
      return { ...common, type: 'session.start', source: p.source };
    case 'SessionEnd':
      return { ...common, type: 'session.end', reason: p.reason };
    case 'BeforeAgent':
      return { ...common, type: 'prompt', prompt: p.prompt ?? '' };
    case 'BeforeTool':
    case 'AfterTool': {
      if (p.tool_name === undefined) throw new Error(`The Gemini CLI ${p.hook_event_name} payload has no tool_name.`);
      const t = geminiTool(p.tool_name, p.mcp_context);
      const base = { ...common, tool: t.tool, server: t.server, args: p.tool_input ?? {} };
      if (p.hook_event_name === 'AfterTool') return { ...base, type: 'tool.after', output: p.tool_response };
      const readings = geminiReadings(p.tool_name, p.mcp_context);
      return { ...base, type: 'tool.before', ...(readings === undefined ? {} : { readings }) };
    }
    case 'AfterAgent':
      // The agent's final answer of the turn: what it told the user.
      return { ...common, type: 'other', text: p.prompt_response };
    default:
      return { ...common, type: 'other', text: p.message };
  }
}

const json = (v: unknown): string => `${JSON.stringify(v)}\n`;

/** The answer Gemini CLI expects for `event` given Witness's verdict. */
export function geminiAnswer(event: Pick<HookEvent, 'type' | 'event'> | undefined, verdict: HookVerdict): HookAnswer {
  if (verdict.decision === 'allow') return { stdout: json({}), stderr: '', exitCode: 0 };
  // BeforeTool: the call is not made and the reason goes to the model. BeforeAgent: the turn is blocked.
  if (event?.type === 'tool.before' || event?.type === 'prompt') return { stdout: json({ decision: 'deny', reason: verdict.reason }), stderr: '', exitCode: 0 };
  // A payload Witness could not read: exit 2 is Gemini's block for a failed hook, stderr the reason.
  if (event === undefined) return { stdout: '', stderr: `${verdict.reason}\n`, exitCode: 2 };
  // Nothing else can be refused (a deny after a tool hides its result, after the agent forces a retry): tell the user instead.
  return { stdout: json({ systemMessage: verdict.reason }), stderr: '', exitCode: 0 };
}

export const gemini: HookAdapter = {
  kind: 'gemini',
  parse: parseGemini,
  eventOf: geminiEventOf,
  answer: geminiAnswer,
  settingsFile: { project: '.gemini/settings.json', user: '.gemini/settings.json' },
  install: addGeminiHooks,
  uninstall: removeGeminiHooks,
};
