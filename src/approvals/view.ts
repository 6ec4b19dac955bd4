import {
  WitnessError,
  approvalRequestParts,
  decisionProblem,
  isApprovalRecord,
  isKind,
  listedApprovers,
  textField,
  type ApprovalRef,
  type ApprovalRequestParts,
  type EventKind,
  type StoredEvent,
} from '../core/index.js';
import type { LedgerReader } from '../store/index.js';

export type ApprovalStatus = 'pending' | 'approved' | 'denied' | 'expired' | 'consumed';

/** A stored event of kind K with its ledger position. */
export type Row<K extends EventKind = EventKind> = StoredEvent<K> & { pos: number };

export interface ApprovalView extends ApprovalRequestParts {
  request: Row<'approval.request'>;
  /** The arguments as recorded (redacted). */
  arguments: unknown;
  /** The salt of `argumentsDigest`; undefined for a request written before digests were salted. */
  argumentsSalt: string | undefined;
  /** Verifier keys (canonical form) of the people allowed to decide this request. */
  approvers: string[];
  rule: string | undefined;
  reason: string | undefined;
  callId: string | undefined;
  status: ApprovalStatus;
  /** The decision that counts (the first one recorded that counts), if any. */
  decision: Row<'approval.decision'> | undefined;
  /** Every decision recorded for the request, in ledger order, whether it counts or not. */
  decisions: Row<'approval.decision'>[];
  /** The event that consumed a grant, if any. */
  consumedBy: Row<'policy.decision'> | undefined;
}

/** Every event of one kind matching the filter, across pages. */
async function all<K extends EventKind>(ledger: LedgerReader, kind: K, filter: { since?: string; agent?: string }): Promise<Row<K>[]> {
  const out: Row<K>[] = [];
  let cursor: string | undefined;
  do {
    const page = await ledger.query({ ...filter, kind, limit: 1000, ...(cursor === undefined ? {} : { cursor }) });
    for (const e of page.events) if (isKind(e, kind)) out.push(e);
    cursor = page.next;
  } while (cursor !== undefined);
  return out;
}

/** The grant a releasing policy.decision names, if it names one (the payload may hold anything on an older or edited ledger). */
export function approvalRef(e: StoredEvent<'policy.decision'>): ApprovalRef | undefined {
  const a: unknown = e.data?.approval;
  if (a === null || typeof a !== 'object' || Array.isArray(a)) return undefined;
  const ref = a as Record<string, unknown>;
  const requestId = textField(ref['request_id']);
  if (requestId === undefined) return undefined;
  const decisionId = textField(ref['decision_id']);
  return { ...ref, request_id: requestId, ...(decisionId === undefined ? {} : { decision_id: decisionId }) };
}

/** Builds the view of one request from the decisions and consumptions recorded for it. */
function view(request: Row<'approval.request'>, decisions: readonly Row<'approval.decision'>[], consumptions: readonly Row<'policy.decision'>[], now: Date, origin: string): ApprovalView {
  const d = request.data;
  const parts = approvalRequestParts(request);
  const { expiresAt } = parts;
  const approvers = listedApprovers(request);
  const mine = decisions.filter((e) => e.parent === request.id).sort((a, b) => a.pos - b.pos);
  const decision = mine.find((e) => decisionProblem(parts, e, approvers, origin) === undefined);
  const consumedBy = decision === undefined ? undefined : consumptions.find((e) => approvalRef(e)?.decision_id === decision.id);
  const decided = textField(decision?.data?.decision);
  let status: ApprovalStatus;
  if (consumedBy !== undefined) status = 'consumed';
  else if (decided === 'approved') status = Date.parse(expiresAt) <= now.getTime() ? 'expired' : 'approved';
  else if (decided === 'denied') status = 'denied';
  else if (decided === 'expired' || Date.parse(expiresAt) <= now.getTime()) status = 'expired';
  else status = 'pending';
  return {
    ...parts,
    request,
    arguments: d?.arguments,
    argumentsSalt: textField(d?.arguments_salt),
    approvers,
    rule: textField(d?.rule),
    reason: textField(d?.reason),
    callId: request.parent,
    status,
    decision,
    decisions: mine,
    consumedBy,
  };
}

export interface ListOptions {
  /** Only requests made at or after this time (ISO-8601). */
  since?: string;
  agent?: string;
  /** Only requests in this status (e.g. `pending` for an approver's queue). */
  status?: ApprovalStatus | readonly ApprovalStatus[];
  now?: Date;
}

/** Every approval request (newest last) with its status. */
export async function listApprovals(ledger: LedgerReader, options: ListOptions = {}): Promise<ApprovalView[]> {
  const filter = { ...(options.since === undefined ? {} : { since: options.since }), ...(options.agent === undefined ? {} : { agent: options.agent }) };
  const [requests, decisions, policy] = await Promise.all([all(ledger, 'approval.request', filter), all(ledger, 'approval.decision', filter), all(ledger, 'policy.decision', filter)]);
  // Only the gateway releases a held call and so uses up its grant: a policy.decision naming a
  // decision that anything else recorded (an SDK, an agent key through the server) consumes nothing.
  const consumptions = policy.filter((e) => e.recorder?.kind === 'gateway' && approvalRef(e)?.decision_id !== undefined);
  const now = options.now ?? new Date();
  // Only the gateway records a request (it holds the call): one that any other recorder wrote (an
  // agent's SDK, an agent key through the server, a direct writer stamping nothing) would put the
  // agent's own rule and reason in front of approvers as a held call, and the gateway would join it.
  const held = requests.filter((r) => isApprovalRecord(r));
  const views = held.sort((a, b) => a.pos - b.pos).map((r) => view(r, decisions, consumptions, now, ledger.info.origin));
  if (options.status === undefined) return views;
  const wanted: readonly ApprovalStatus[] = typeof options.status === 'string' ? [options.status] : options.status;
  return views.filter((v) => wanted.includes(v.status));
}

/** One request by id or a unique prefix of it (at least 8 characters), like a git commit. */
export async function findApproval(ledger: LedgerReader, idOrPrefix: string, now = new Date()): Promise<ApprovalView> {
  const id = idOrPrefix.trim().toLowerCase();
  if (id.length < 8) throw new WitnessError('invalid_argument', `"${idOrPrefix}" is too short to name an approval request; give at least 8 characters of its id (see \`witness approvals\`).`);
  const exact = await ledger.getEvent(id);
  let matches: ApprovalView[];
  if (exact !== undefined) {
    if (exact.kind !== 'approval.request') throw new WitnessError('not_found', `Event ${id} is a ${exact.kind}, not an approval request; see \`witness approvals\`.`);
    if (!isApprovalRecord(exact)) {
      throw new WitnessError(
        'not_found',
        `Event ${id} is an approval.request not recorded by the Witness gateway (recorder ${exact.recorder?.kind ?? 'none'}), so no call is held on it; see \`witness approvals\`.`,
      );
    }
    matches = (await listApprovals(ledger, { since: exact.ts, agent: exact.agent.id, now })).filter((v) => v.requestId === id);
  } else {
    matches = (await listApprovals(ledger, { now })).filter((v) => v.requestId.startsWith(id));
  }
  if (matches.length === 0) throw new WitnessError('not_found', `No approval request ${idOrPrefix} in ${ledger.info.location}; see \`witness approvals\` for pending requests.`);
  if (matches.length > 1) throw new WitnessError('invalid_argument', `"${idOrPrefix}" matches ${matches.length} approval requests; give more characters of the id.`);
  return matches[0]!;
}

/** Who made a decision, as a person reads it. */
export function deciderOf(d: StoredEvent<'approval.decision'>): string {
  return d.data?.decision === 'expired' ? 'nobody (it expired undecided)' : (textField(d.data?.approver) ?? 'unknown');
}
