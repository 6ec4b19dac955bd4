import { WitnessError, type StoredEvent } from '../core/index.js';
import type { AppendReceipt, Ledger } from '../store/index.js';
import { RECORDER_VERSION, type Witness } from './witness.js';

/**
 * Human approval, kept entirely in the ledger so that the process holding a call (the gateway) and
 * the process deciding it (`witness approve`) need share nothing but the ledger, and a pending or
 * granted approval outlives a gateway restart.
 *
 *   approval.request   written by the gateway in the call's session; its event id is the request id.
 *                      Binds agent, server, tool, the exact arguments and their digest, the policy
 *                      version, the session, the tool.call and an expiry.
 *   approval.decision  written by a person (approved / denied) or by the gateway (expired), with
 *                      `parent` = the request. The FIRST decision recorded for a request wins.
 *   policy.decision    written by the gateway when a grant releases a call: `data.approval` names the
 *                      request and the decision, which consumes the grant (once).
 */

/** Where decisions go when the request's session has already ended (e.g. the gateway restarted). */
export const APPROVAL_STREAM = 'witness.approvals';

export type ApprovalStatus = 'pending' | 'approved' | 'denied' | 'expired' | 'consumed';

export interface ApprovalView {
  requestId: string;
  request: StoredEvent & { pos: number };
  agent: string;
  server: string | undefined;
  tool: string;
  arguments: unknown;
  argumentsDigest: string;
  policyVersion: string | undefined;
  rule: string | undefined;
  reason: string | undefined;
  expiresAt: string;
  session: string;
  callId: string | undefined;
  status: ApprovalStatus;
  /** The decision that counts (the first one recorded), if any. */
  decision: (StoredEvent & { pos: number }) | undefined;
  /** The event that consumed a grant, if any. */
  consumedBy: (StoredEvent & { pos: number }) | undefined;
}

/** What a held call must match for a decision to release it. */
export interface Binding {
  agent: string;
  server: string | undefined;
  tool: string;
  argumentsDigest: string;
  policyVersion: string | undefined;
  /** The session and tool.call of the held call; only checked when the request came from it. */
  session?: string;
}

type Row = StoredEvent & { pos: number };

async function all(ledger: Ledger, filter: Parameters<Ledger['query']>[0]): Promise<Row[]> {
  const out: Row[] = [];
  let cursor: string | undefined;
  do {
    const page = await ledger.query({ ...filter, limit: 1000, ...(cursor === undefined ? {} : { cursor }) });
    out.push(...page.events);
    cursor = page.next;
  } while (cursor !== undefined);
  return out;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** Builds the view of one request from the decisions and consumptions recorded for it. */
function view(request: Row, decisions: readonly Row[], consumptions: readonly Row[], now: Date): ApprovalView {
  const d = request.data ?? {};
  const expiresAt = str(d['expires_at']) ?? request.ts;
  const decision = decisions.filter((e) => e.parent === request.id).sort((a, b) => a.pos - b.pos)[0];
  const consumedBy = decision === undefined ? undefined : consumptions.find((e) => approvalRef(e)?.decision_id === decision.id);
  const decided = str(decision?.data?.['decision']);
  let status: ApprovalStatus;
  if (consumedBy !== undefined) status = 'consumed';
  else if (decided === 'approved') status = Date.parse(expiresAt) <= now.getTime() ? 'expired' : 'approved';
  else if (decided === 'denied') status = 'denied';
  else if (decided === 'expired' || Date.parse(expiresAt) <= now.getTime()) status = 'expired';
  else status = 'pending';
  return {
    requestId: request.id,
    request,
    agent: request.agent.id,
    server: str(d['server']),
    tool: str(d['tool']) ?? request.action ?? '',
    arguments: d['arguments'],
    argumentsDigest: str(d['arguments_digest']) ?? '',
    policyVersion: str(d['policy_version']),
    rule: str(d['rule']),
    reason: str(d['reason']),
    expiresAt,
    session: request.stream,
    callId: request.parent,
    status,
    decision,
    consumedBy,
  };
}

function approvalRef(e: StoredEvent): { request_id?: string; decision_id?: string } | undefined {
  const a = e.data?.['approval'];
  return a !== null && typeof a === 'object' ? (a as { request_id?: string; decision_id?: string }) : undefined;
}

export interface ListOptions {
  /** Only requests made at or after this time (ISO-8601). */
  since?: string;
  agent?: string;
  now?: Date;
}

/** Every approval request (newest last) with its status. */
export async function listApprovals(ledger: Ledger, options: ListOptions = {}): Promise<ApprovalView[]> {
  const since = options.since === undefined ? {} : { since: options.since };
  const agent = options.agent === undefined ? {} : { agent: options.agent };
  const [requests, decisions, policy] = await Promise.all([
    all(ledger, { kind: 'approval.request', ...since, ...agent }),
    all(ledger, { kind: 'approval.decision', ...since, ...agent }),
    all(ledger, { kind: 'policy.decision', ...since, ...agent }),
  ]);
  const consumptions = policy.filter((e) => approvalRef(e)?.decision_id !== undefined);
  const now = options.now ?? new Date();
  return requests.sort((a, b) => a.pos - b.pos).map((r) => view(r, decisions, consumptions, now));
}

/** One request by id or a unique prefix of it (at least 8 characters), like a git commit. */
export async function findApproval(ledger: Ledger, idOrPrefix: string, now = new Date()): Promise<ApprovalView> {
  const id = idOrPrefix.trim().toLowerCase();
  if (id.length < 8) throw new WitnessError('invalid_argument', `"${idOrPrefix}" is too short to name an approval request; give at least 8 characters of its id (see \`witness approvals\`).`);
  const exact = await ledger.getEvent(id);
  let matches: ApprovalView[];
  if (exact !== undefined) {
    if (exact.kind !== 'approval.request') throw new WitnessError('not_found', `Event ${id} is a ${exact.kind}, not an approval request; see \`witness approvals\`.`);
    matches = (await listApprovals(ledger, { since: exact.ts, agent: exact.agent.id, now })).filter((v) => v.requestId === id);
  } else {
    matches = (await listApprovals(ledger, { now })).filter((v) => v.requestId.startsWith(id));
  }
  if (matches.length === 0) throw new WitnessError('not_found', `No approval request ${idOrPrefix} in ${ledger.info.location}; see \`witness approvals\` for pending requests.`);
  if (matches.length > 1) throw new WitnessError('invalid_argument', `"${idOrPrefix}" matches ${matches.length} approval requests; give more characters of the id.`);
  return matches[0]!;
}

export interface DecideInput {
  decision: 'approved' | 'denied';
  /** The person deciding: recorded as the approver and as the event's principal. */
  approver: string;
  role?: string;
  reason?: string;
  /** What the approval means, recorded with it (e.g. "reviewed the refund amount and customer"). */
  meaning?: string;
  /**
   * The arguments digest the approver reviewed. When given it must equal the request's, so a
   * person never approves arguments other than the ones they were shown.
   */
  expectDigest?: string;
  now?: Date;
}

/**
 * Records a person's decision on a pending request (`witness approve` / `witness deny`). Refuses
 * when the request is not pending, when the approver is the agent that made the call, or when the
 * reviewed digest differs from the request's.
 */
export async function decideApproval(witness: Witness, idOrPrefix: string, input: DecideInput): Promise<{ view: ApprovalView; decisionId: string; stream: string }> {
  const now = input.now ?? new Date();
  const v = await findApproval(witness.ledger, idOrPrefix, now);
  const approver = input.approver.trim();
  if (approver === '') throw new WitnessError('invalid_argument', 'The approver identity is empty; pass --as <your identity>.');
  if (approver === v.agent) {
    throw new WitnessError('forbidden', `${approver} is the agent that made this call and cannot decide its own approval request; a person must approve it with --as <their identity>.`);
  }
  if (v.status !== 'pending') {
    const by = v.decision === undefined ? '' : ` by ${str(v.decision.data?.['approver']) ?? 'unknown'} at ${v.decision.ts}`;
    throw new WitnessError('conflict', `Approval request ${v.requestId} is already ${v.status}${by}; nothing was recorded.`);
  }
  if (input.expectDigest !== undefined && input.expectDigest.toLowerCase() !== v.argumentsDigest) {
    throw new WitnessError('conflict', `The arguments of request ${v.requestId} have digest ${v.argumentsDigest}, not the ${input.expectDigest} you reviewed; nothing was recorded.`);
  }
  const ts = now.toISOString();
  const data = {
    request_id: v.requestId,
    decision: input.decision,
    approver,
    ...(input.role === undefined ? {} : { role: input.role }),
    ...(input.reason === undefined ? {} : { reason: input.reason }),
    ...(input.meaning === undefined ? {} : { meaning: input.meaning }),
    arguments_digest: v.argumentsDigest,
    tool: v.tool,
    ...(v.server === undefined ? {} : { server: v.server }),
    session: v.session,
    ...(v.callId === undefined ? {} : { call_id: v.callId }),
    ...(v.policyVersion === undefined ? {} : { policy_version: v.policyVersion }),
    expires_at: v.expiresAt,
  };
  const input2 = {
    agent: { id: v.agent },
    principal: { id: approver, kind: 'human' as const },
    recorder: { kind: 'cli' as const, version: RECORDER_VERSION },
    kind: 'approval.decision' as const,
    parent: v.requestId,
    resource: v.request.resource,
    action: v.request.action,
    outcome: 'success' as const,
    policy: { decision: 'review' as const, ...(v.rule === undefined ? {} : { rule: v.rule }), ...(v.policyVersion === undefined ? {} : { version: v.policyVersion }), approver },
    approvals: [
      {
        approver,
        decision: input.decision,
        ...(input.role === undefined ? {} : { role: input.role }),
        ...(input.reason === undefined ? {} : { reason: input.reason }),
        ...(input.meaning === undefined ? {} : { meaning: input.meaning }),
        args_digest: v.argumentsDigest,
        ts,
      },
    ],
    ts,
    data,
  };
  // In the call's own session while it is open (its evidence then holds the decision); once that
  // session has ended — the gateway was restarted — in the approvals stream.
  let stream = v.session;
  let receipt: AppendReceipt | undefined = await witness.recordStrict(stream, input2).catch((e: unknown) => {
    if (e instanceof WitnessError && e.code === 'invalid_event' && /already ended/.test(e.message)) return undefined;
    throw e;
  });
  if (receipt === undefined) {
    stream = APPROVAL_STREAM;
    receipt = await witness.recordStrict(stream, input2);
  }
  return { view: v, decisionId: receipt.id, stream };
}

/**
 * Why a decision cannot release a held call, in one sentence, or undefined when it can. The gateway
 * checks this itself rather than trusting whoever wrote the decision.
 */
export function bindingMismatch(v: ApprovalView, held: Binding, now: Date): string | undefined {
  const d = v.decision;
  if (d === undefined) return 'no decision has been recorded';
  const dd = d.data ?? {};
  if (dd['decision'] !== 'approved') return `the request was ${String(dd['decision'])}`;
  if (v.consumedBy !== undefined) return `the approval was already used by event ${v.consumedBy.id}`;
  if (Date.parse(v.expiresAt) <= now.getTime()) return `the approval expired at ${v.expiresAt}`;
  if (Date.parse(d.ts) > Date.parse(v.expiresAt)) return `the approval was recorded after the request expired at ${v.expiresAt}`;
  const approver = str(dd['approver']);
  if (approver === undefined || approver === v.agent || approver === held.agent) return `the approver ${approver ?? '(none)'} is the agent itself`;
  if (v.agent !== held.agent) return `the request is for agent ${v.agent}, not ${held.agent}`;
  if (v.server !== held.server) return `the request is for server ${v.server ?? '(none)'}, not ${held.server ?? '(none)'}`;
  if (v.tool !== held.tool) return `the request is for tool ${v.tool}, not ${held.tool}`;
  if (dd['arguments_digest'] !== v.argumentsDigest) return `the decision approved arguments with digest ${String(dd['arguments_digest'])}, but the request's arguments have digest ${v.argumentsDigest}`;
  if (v.argumentsDigest !== held.argumentsDigest) return `the approval is for arguments with digest ${v.argumentsDigest}, but the call's arguments have digest ${held.argumentsDigest}`;
  if (v.policyVersion !== held.policyVersion) return `the approval was given under policy ${v.policyVersion ?? '(none)'}, not the policy now in force (${held.policyVersion ?? '(none)'})`;
  if (held.session !== undefined && v.session !== held.session) return `the request belongs to session ${v.session}`;
  return undefined;
}
