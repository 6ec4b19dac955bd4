import type { EventKind } from './event.js';

/**
 * Who may write what, and which records a reader believes (docs/FORMAT.md 5.4, README "The stop
 * button", "Retention, legal hold and erasure"). Pure: the writers (the SDK, the server's ingest)
 * refuse with it, and every reader of a governance record (the halt state, the holds and retention
 * rules, the key history, verify) filters with it, so the two can never disagree.
 */

/** Streams whose names start with this are Witness's own (approvals, keys, retention, …): no agent writes there. */
export const SYSTEM_STREAM_PREFIX = 'witness.';

/** Whether `stream` is one of Witness's own streams (reserved: the SDK and agent keys may not write it). */
export function isSystemStreamName(stream: string): boolean {
  return stream.startsWith(SYSTEM_STREAM_PREFIX);
}

/**
 * Kinds that record what a person or Witness itself did: an agent may not write them, whatever
 * stream it names (an agent cannot approve its own call, halt itself on someone's behalf, or fake
 * an access record, a purge or a legal hold). Approval requests are the gateway's: approvers'
 * queues list every approval.request in the ledger, so one an agent wrote would put its own words
 * in front of a person as a held call. Policy decisions are the gateway's too: one naming an
 * approval is a release, which consumes the grant (once, by a unique index) and which the
 * storyboard and viewer tell as "<approver> approved it". Alerts and anomaly flags are the
 * monitor's (src/monitor): a flag an agent writes about itself is not a flag, and a forged
 * "resolved" alert would read as an all-clear. Refused by the server's ingest for agent keys and by
 * the SDK's public `record`.
 */
export const AGENT_REFUSED_KINDS: ReadonlySet<EventKind> = new Set<EventKind>([
  'policy.decision',
  'approval.request',
  'approval.decision',
  'human.override',
  'human.halt',
  'human.resume',
  'review',
  'audit.access',
  'key.rotated',
  'retention.purge',
  'hold.placed',
  'hold.released',
  'alert',
  'anomaly',
]);

/**
 * Header fields that state what a person or the gateway did: the policy verdict, the approvals
 * given, the human the agent acted for. An agent saying so is only its claim, and readers show
 * these fields as facts, so the server's ingest (agent keys) and the SDK's public `record` refuse
 * them rather than store them (an agent's own account belongs in `data`, a note for instance).
 */
export const AGENT_REFUSED_FIELDS = ['policy', 'approvals', 'principal'] as const;

/**
 * The recorders that write approval records: a request only by the gateway, which holds the call
 * (the MCP gateway, and `witness hook run` as the gateway of a coding agent's hooks); a decision
 * by a person through the CLI or the server, or by the gateway when a request expires undecided.
 * Approvers' queues list requests and the report counts them, so a request any other recorder wrote
 * would put an agent's own words in front of a person as a held call.
 */
export const APPROVAL_RECORDERS = {
  'approval.request': ['gateway'],
  'approval.decision': ['cli', 'server', 'gateway'],
} as const satisfies Partial<Record<EventKind, readonly RecorderKind[]>>;

/** Whether an approval.request or approval.decision was written by a recorder that writes it (APPROVAL_RECORDERS); false for other kinds. */
export function isApprovalRecord(e: Pick<GovernanceHeader, 'kind' | 'recorder'>): boolean {
  const recorders: readonly string[] | undefined = APPROVAL_RECORDERS[e.kind as keyof typeof APPROVAL_RECORDERS];
  const recorder = e.recorder?.kind;
  return recorders !== undefined && typeof recorder === 'string' && recorders.includes(recorder);
}

/** The recorder kinds a header may name (core's RecorderRef). */
export type RecorderKind = 'sdk' | 'gateway' | 'server' | 'otlp' | 'cli';

/** Where a governance record must be, and which recorders write it there. */
export interface GovernanceRule {
  stream: string;
  recorders: readonly RecorderKind[];
  /**
   * A record with no recorder at all counts too: `witness keys rotate` stamped none before it
   * stamped `cli`, and ledgers rotated then must keep their keys. It opens nothing new: the SDK
   * stamps `sdk` on everything it writes and refuses this stream, the server and gateway stamp their
   * own kinds, and a direct writer of the database, the only one left, could stamp `cli` as well.
   */
  unstamped?: boolean;
}

/**
 * The records that change what Witness does (lift a halt, keep or let go of records, trust a new
 * signing key), each counted only from its own system stream and from the recorders that write it
 * there: `witness halt|resume` and the server's halt endpoints; `witness hold`, `witness retention
 * set|run` and erasure (config.change here means a retention rule: it is read only from
 * witness.retention); `witness keys rotate` (src/store/seal-rotate.ts), the CLI alone. A record of
 * these kinds anywhere else, or stamped by another recorder (an agent's SDK stamps `sdk`, and the
 * SDK refuses these kinds and system streams besides), is an ordinary event: kept, chained and
 * verified like any other, but it halts, resumes, holds, releases, sets, purges or rotates nothing.
 */
export const GOVERNANCE_RULES: Readonly<Partial<Record<EventKind, GovernanceRule>>> = {
  'human.halt': { stream: 'witness.approvals', recorders: ['cli', 'server'] },
  'human.resume': { stream: 'witness.approvals', recorders: ['cli', 'server'] },
  'hold.placed': { stream: 'witness.retention', recorders: ['cli', 'server'] },
  'hold.released': { stream: 'witness.retention', recorders: ['cli', 'server'] },
  'retention.purge': { stream: 'witness.retention', recorders: ['cli', 'server'] },
  'config.change': { stream: 'witness.retention', recorders: ['cli', 'server'] },
  'key.rotated': { stream: 'witness.keys', recorders: ['cli'], unstamped: true },
};

/** The header fields the rule reads; anything else in the header is ignored. */
export interface GovernanceHeader {
  kind: string;
  stream: string;
  recorder?: { kind?: unknown } | undefined;
}

/**
 * Whether a record of a governance kind counts: it is in its kind's stream and was stamped by one of
 * that kind's recorders. False for kinds with no rule (they govern nothing).
 */
export function isGovernanceRecord(e: GovernanceHeader): boolean {
  const rule = GOVERNANCE_RULES[e.kind as EventKind];
  if (rule === undefined || e.stream !== rule.stream) return false;
  if (e.recorder === undefined) return rule.unstamped === true;
  const recorder = e.recorder.kind;
  return typeof recorder === 'string' && (rule.recorders as readonly string[]).includes(recorder);
}

/**
 * The same judgement from an event's stored header text (verify's raw rows): the recorder is read
 * from the hashed header, so an unreadable header counts as nothing.
 */
export function isGovernanceHeaderText(kind: string, stream: string, header: string): boolean {
  if (GOVERNANCE_RULES[kind as EventKind] === undefined) return false;
  let recorder: unknown;
  try {
    recorder = (JSON.parse(header) as { recorder?: unknown }).recorder;
  } catch {
    return false;
  }
  // Absent is not the same as malformed: only a header with no recorder member is "unstamped".
  return isGovernanceRecord({ kind, stream, recorder: recorder === undefined ? undefined : typeof recorder === 'object' && recorder !== null ? (recorder as { kind?: unknown }) : {} });
}
