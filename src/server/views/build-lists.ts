import { z } from 'zod';
import { fingerprintOf, type ApprovalView } from '../../approvals/index.js';
import { OUTCOMES, honouredDecision, isHonouredRequest, statedDecision, type HonouredDecision, type StoredEvent, type VerifyReport } from '../../core/index.js';
import { showTime } from './format.js';
import type { IntegrityBadge, OverviewBucket, PendingApproval, SessionCounts, SessionFilters, SessionRow, SignerView, VerificationView } from './model.js';

/**
 * Builders for the list-shaped pages (sessions, overview, integrity) from what the Ledger and
 * verify return, and the sessions filter form as the route receives it.
 */

type Ev = StoredEvent;

/**
 * An approval.decision as the rest of Witness honours it (core's honouredDecision, which the session
 * counts and the report apply too): a person's approval or denial recorded through the CLI or the
 * server, an expiry recorded by the gateway. Judged without its request, which a window of the
 * ledger may not hold. One an agent wrote straight into the ledger, or with no recorder, is shown as
 * recorded but counted as no approval or refusal. Read from the header's outcome where the payload
 * is withheld or purged (statedDecision), so a bundle's report counts the same either way.
 */
function decisionOf(e: Ev): HonouredDecision | undefined {
  return e.kind === 'approval.decision' ? honouredDecision(statedDecision(e), e.recorder?.kind) : undefined;
}

/** A person's denial, a policy denial, an expiry: a call that was refused. */
function isDenial(e: Ev): boolean {
  if (e.kind === 'policy.decision') return (e.policy?.decision ?? e.data?.['decision']) === 'deny';
  const d = decisionOf(e);
  return d === 'denied' || d === 'expired';
}

function isApproval(e: Ev): boolean {
  return decisionOf(e) === 'approved';
}

export function countEvents(events: Iterable<Ev>): SessionCounts {
  const c: SessionCounts = { events: 0, toolCalls: 0, denials: 0, approvals: 0 };
  for (const e of events) {
    c.events += 1;
    if (e.kind === 'tool.call') c.toolCalls += 1;
    if (isDenial(e)) c.denials += 1;
    if (isApproval(e)) c.approvals += 1;
  }
  return c;
}

/** One row of the sessions list from the session's events. */
export function sessionRow(events: readonly Ev[]): SessionRow {
  const start = events.find((e) => e.kind === 'session.start');
  const end = events.find((e) => e.kind === 'session.end');
  const first = events[0];
  const reason = end?.data?.['reason'];
  const row: SessionRow = {
    id: first?.stream ?? '',
    agent: start?.agent.id ?? first?.agent.id ?? 'unknown',
    started: start?.ts ?? first?.ts ?? '',
    counts: countEvents(events),
  };
  if (end !== undefined) row.ended = end.ts;
  if (typeof reason === 'string') row.endReason = reason;
  return row;
}

const RECORDING_SOURCES: ReadonlySet<unknown> = new Set(['recorder', 'gateway', 'capture']);

export interface OverviewOptions {
  from: string;
  to: string;
  /** How many bars each chart has (default 24). */
  buckets?: number;
}

/**
 * Counts per time bucket over [from, to). Approval waits are measured from the request's `ts` to a
 * person's decision (`decided_at`, else the decision's `ts`), and counted in the decision's bucket.
 * Only the gateway's requests start a wait (core's isHonouredRequest, as the approvals queue reads
 * them): a request any other recorder wrote held no call, and one naming a genuine request's id
 * would move that request's start. Only a person's honoured decision ends one (decisionOf).
 */
export function overviewBuckets(events: Iterable<Ev>, options: OverviewOptions): OverviewBucket[] {
  const from = Date.parse(options.from);
  const to = Date.parse(options.to);
  const n = Math.max(1, Math.min(500, Math.floor(options.buckets ?? 24)));
  if (!(to > from)) return [];
  const width = (to - from) / n;
  const buckets: OverviewBucket[] = Array.from({ length: n }, (_, i) => ({
    start: new Date(from + i * width).toISOString(),
    events: 0,
    toolCalls: 0,
    denials: 0,
    approvals: 0,
    recordingErrors: 0,
  }));
  const waits = Array.from({ length: n }, () => ({ total: 0, count: 0 }));
  const requested = new Map<string, number>();
  for (const e of events) {
    if (e.kind === 'approval.request' && isHonouredRequest(e.recorder?.kind)) {
      const id = e.data?.['request_id'];
      if (typeof id === 'string') requested.set(id, Date.parse(e.ts));
    }
    const t = Date.parse(e.ts);
    if (!(t >= from && t < to)) continue;
    const i = Math.min(n - 1, Math.floor((t - from) / width));
    const b = buckets[i]!;
    b.events += 1;
    if (e.kind === 'tool.call') b.toolCalls += 1;
    if (isDenial(e)) b.denials += 1;
    if (isApproval(e)) b.approvals += 1;
    if (e.kind === 'error' && RECORDING_SOURCES.has(e.data?.['source'])) b.recordingErrors += 1;
    const decided = decisionOf(e);
    if (decided === 'approved' || decided === 'denied') {
      const asked = requested.get(String(e.data?.['request_id']));
      const decidedAt = typeof e.data?.['decided_at'] === 'string' ? Date.parse(e.data['decided_at']) : t;
      if (asked !== undefined && decidedAt >= asked) {
        waits[i]!.total += decidedAt - asked;
        waits[i]!.count += 1;
      }
    }
  }
  buckets.forEach((b, i) => {
    const w = waits[i]!;
    if (w.count > 0) b.approvalWaitMs = w.total / w.count;
  });
  return buckets;
}

export function verificationView(report: VerifyReport, at: string, durationMs?: number): VerificationView {
  const f = report.first;
  const where =
    f === undefined
      ? ''
      : [
          f.stream === undefined ? undefined : `session ${f.stream}`,
          f.seq === undefined ? undefined : `seq ${f.seq}`,
          f.leaf === undefined ? undefined : `leaf ${f.leaf}`,
          f.checkpoint === undefined ? undefined : `checkpoint ${f.checkpoint}`,
        ]
          .filter((x) => x !== undefined)
          .join(', ');
  const view: VerificationView = {
    at,
    ok: report.ok,
    unverifiable: report.unverifiable,
    events: report.events,
    checkpoints: report.checkpoints,
    sealedSize: report.sealedSize,
    unsealed: report.unsealed,
    failures: report.failures.length,
    trust: report.trust.statement,
    signers: report.trust.keys.map((k): SignerView => ({ name: k.name, fingerprint: `${k.name}+${k.keyHash}`, source: k.source })),
    warnings: report.warnings,
  };
  if (f !== undefined) view.firstFailure = `${f.reason}${where === '' ? '' : ` (${where})`}`;
  if (durationMs !== undefined) view.durationMs = durationMs;
  return view;
}

/** A request from the approvals module's list as the queue shows it; approvers by key fingerprint. */
export function pendingApproval(v: ApprovalView): PendingApproval {
  const p: PendingApproval = {
    requestId: v.requestId,
    session: v.session,
    agent: v.agent,
    arguments: v.arguments,
    argumentsDigest: v.argumentsDigest,
    requestedAt: v.request.ts,
    expiresAt: v.expiresAt,
    approvers: v.approvers.map(fingerprintOf),
  };
  const principal = v.request.principal?.id;
  if (principal !== undefined) p.principal = principal;
  if (v.tool !== '') p.tool = v.tool;
  if (v.server !== undefined) p.server = v.server;
  if (v.rule !== undefined) p.rule = v.rule;
  if (v.policyVersion !== undefined) p.policyVersion = v.policyVersion;
  if (v.reason !== undefined) p.reason = v.reason;
  return p;
}

export interface BadgeInput {
  /** The newest checkpoint and the keys that signed it. */
  checkpoint?: { id: number; size: number; ts: string };
  signers?: readonly SignerView[];
  /** The last verification of the whole ledger, if one ran. */
  last?: VerificationView;
}

/**
 * A session's integrity badge from its events' positions (leaf indices): failed when the last
 * verification failed; unsealed while an event is past the newest checkpoint; verified when a
 * signed checkpoint covers every event and the last verification covered them too; unknown when
 * they are sealed but not verified since.
 */
export function integrityBadge(events: ReadonlyArray<{ pos: number }>, b: BadgeInput): IntegrityBadge {
  if (b.last !== undefined && !b.last.ok && !b.last.unverifiable) {
    return { state: 'failed', text: `The last verification of the ledger (${showTime(b.last.at)}) failed: ${b.last.firstFailure ?? 'see the integrity page'}.` };
  }
  const top = events.reduce((m, e) => Math.max(m, e.pos), -1);
  const cp = b.checkpoint;
  if (cp === undefined || top >= cp.size) {
    const unsealed = cp === undefined ? events.length : events.filter((e) => e.pos >= cp.size).length;
    return { state: 'unsealed', text: `${unsealed} of ${events.length} events of this session are hash-chained but not yet in a signed checkpoint.` };
  }
  const by = b.signers === undefined || b.signers.length === 0 ? '' : ` by ${b.signers.map((k) => k.fingerprint).join(' and ')}`;
  const sealed = `Every event of this session is in checkpoint ${cp.id}, signed ${showTime(cp.ts)}${by}`;
  if (b.last !== undefined && b.last.ok && b.last.sealedSize > top) return { state: 'verified', text: `${sealed}; the ledger verified ${showTime(b.last.at)}. ${b.last.trust}` };
  return { state: 'unknown', text: `${sealed}; not verified since it was signed.` };
}

// ---------------------------------------------------------------- the sessions filter form

/** `datetime-local` sends `2026-11-23T10:00` (the form says UTC); the API's ISO form is kept too. */
const formTime = z
  .string()
  .trim()
  .regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{3})?)?Z?$/, 'must be a time like 2026-11-23T10:00 (UTC)')
  .transform((s) => {
    const [date, time] = s.replace(/Z$/, '').split('T') as [string, string];
    const [hh, mm, ss = '00'] = time.split(':');
    return `${date}T${hh}:${mm}:${ss.includes('.') ? ss : `${ss}.000`}Z`;
  })
  // Date.parse accepts 2026-02-30 (as 2026-03-02): a real date is one that reads back unchanged.
  .refine((s) => {
    const t = Date.parse(s);
    return !Number.isNaN(t) && new Date(t).toISOString() === s;
  }, 'is not a real date');

const blankToUndefined = (v: unknown) => (typeof v === 'string' && v.trim() === '' ? undefined : v);

/** The sessions filter form's query string, checked; an empty field means no filter. */
export const SessionFilterForm = z.object({
  agent: z.preprocess(blankToUndefined, z.string().trim().max(512).optional()),
  resource: z.preprocess(blankToUndefined, z.string().trim().max(4096).optional()),
  outcome: z.preprocess(blankToUndefined, z.enum([...new Set([...OUTCOMES, 'expired' as const])]).optional()),
  since: z.preprocess(blankToUndefined, formTime.optional()),
  until: z.preprocess(blankToUndefined, formTime.optional()),
  cursor: z.preprocess(blankToUndefined, z.string().max(1024).optional()),
});

export function parseSessionFilters(query: Record<string, string | undefined>): { filters: SessionFilters; cursor?: string } | { error: string } {
  const r = SessionFilterForm.safeParse(query);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    return { error: `The filter ${issue.path.join('.') || 'form'} ${issue.message}.` };
  }
  const { cursor, ...rest } = r.data;
  const filters = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined)) as SessionFilters;
  return cursor === undefined ? { filters } : { filters, cursor };
}
