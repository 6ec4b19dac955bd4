/**
 * What a coding agent's hook said, in the agent's neutral terms, and what the hook answers.
 * Everything read from a hook's payload is the agent's claim: the agent identity Witness records
 * comes from the installed hook command (`--agent`), never from here.
 */

/** The coding agents `witness hook` and `witness hooks install` know. */
export const HOOK_AGENTS = ['claude-code'] as const;
export type HookAgent = (typeof HOOK_AGENTS)[number];

interface Common {
  /** The agent's own session id (a claim; Witness derives its stream name from it). */
  agentSession: string;
  /** The agent's event name, as it sent it (`PreToolUse`, …). */
  event: string;
  /** Fields the agent reported about itself (cwd, transcript path, permission mode, tool call id): kept as claims. */
  claims: Record<string, unknown>;
}

export type HookEvent =
  | (Common & { type: 'session.start'; source?: string | undefined })
  | (Common & { type: 'session.end'; reason?: string | undefined })
  | (Common & { type: 'prompt'; prompt: string })
  /** A tool call about to run: the only event whose answer can refuse something. */
  | (Common & { type: 'tool.before'; tool: string; server?: string | undefined; args: unknown; callRef?: string | undefined })
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
