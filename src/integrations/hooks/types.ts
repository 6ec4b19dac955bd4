/**
 * What a coding agent's hook said, in the agent's neutral terms, and what the hook answers.
 * Everything read from a hook's payload is the agent's claim: the agent identity Witness records
 * comes from the installed hook command (`--agent`), never from here.
 */

/** The coding agents `witness hook` and `witness hooks install` know (each has an adapter in agents.ts). */
export const HOOK_AGENTS = ['claude-code', 'codex', 'cursor', 'gemini'] as const;
export type HookAgent = (typeof HOOK_AGENTS)[number];

interface Common {
  /** The agent's own session id (a claim; Witness derives its stream name from it). */
  agentSession: string;
  /** The agent's event name, as it sent it (`PreToolUse`, …). */
  event: string;
  /** Fields the agent reported about itself (cwd, transcript path, permission mode, tool call id): kept as claims. */
  claims: Record<string, unknown>;
}

/** One reading of a qualified MCP tool name as server and tool. */
export interface McpReading {
  server: string;
  tool: string;
}

export type HookEvent =
  | (Common & { type: 'session.start'; source?: string | undefined })
  | (Common & { type: 'session.end'; reason?: string | undefined })
  | (Common & { type: 'prompt'; prompt: string })
  /**
   * A tool call about to run: the only event whose answer can refuse something. `readings`: every
   * way the agent's qualified name splits into server and tool when it does not say where the
   * server's name ends (the first is `server` and `tool`); the policy is evaluated in each.
   */
  | (Common & { type: 'tool.before'; tool: string; server?: string | undefined; args: unknown; callRef?: string | undefined; readings?: McpReading[] | undefined })
  | (Common & { type: 'tool.after'; tool: string; server?: string | undefined; args: unknown; output: unknown; callRef?: string | undefined })
  /** Anything else the agent reports (Stop, Notification, PreCompact, …): recorded as a note. */
  | (Common & { type: 'other'; text?: string | undefined });

/** What Witness decided about the event: `allow` lets the agent go on as it would without Witness. */
export type HookVerdict = { decision: 'allow' } | { decision: 'deny'; reason: string };

/** The hook process's answer to the agent: what to print on stdout and stderr, and the exit code. */
export interface HookAnswer {
  stdout: string;
  stderr: string;
  exitCode: number;
}

/** What a settings edit did: the file's new text, and the events a Witness hook was added to (install) or removed from (uninstall). */
export interface SettingsChange {
  text: string;
  events: string[];
}

/**
 * One coding agent's hooks: how to read its payloads, how to answer it, and how to put Witness's
 * hook command into its own settings file and take it out again. Pure: the CLI reads stdin, writes
 * the answer, and reads and writes the settings file (keeping the backup that makes uninstall exact).
 */
export interface HookAdapter {
  readonly kind: HookAgent;
  /** Reads one payload (already parsed from JSON); throws a one-sentence Error when it is not one of this agent's. */
  parse(payload: unknown): HookEvent;
  /** Which event a payload names, read leniently from `hook_event_name` alone, for answering one `parse` refuses (undefined: it names none). */
  eventOf(payload: unknown): Pick<HookEvent, 'type' | 'event'> | undefined;
  /** What the agent expects for `verdict` on `event` (undefined: the payload could not be read). */
  answer(event: Pick<HookEvent, 'type' | 'event'> | undefined, verdict: HookVerdict): HookAnswer;
  /** The settings file the hooks go into: relative to the project directory, and to the user's home directory. */
  readonly settingsFile: { project: string; user: string };
  /** Adds Witness's hook `command` (the agent's time limit `timeoutSeconds`) to every event it records that does not have it yet; the user's own hooks are kept as they are. */
  install(text: string | undefined, command: string, timeoutSeconds: number, file: string): SettingsChange;
  /** Removes every Witness hook (an entry whose command contains ` hook <kind>`), and what that leaves empty. */
  uninstall(text: string, file: string): SettingsChange;
}
