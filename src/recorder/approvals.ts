import {
  WitnessError,
  approvalRequestParts,
  argumentsDigest,
  canonicalKey,
  canonicalize,
  decisionProblem,
  fingerprintOf,
  listedApprovers,
  sameIdentity,
  signApproval,
  tryArgumentsDigest,
  type ApprovalRequestParts,
  type DecisionProblem,
  type NoteSigner,
  type Payload,
  type StoredEvent,
} from '../core/index.js';
import type { AppendReceipt, LedgerReader } from '../store/index.js';
import { RECORDER_VERSION, type Witness } from './witness.js';

/**
 * Human approval, kept entirely in the ledger so that the process holding a call (the gateway) and
 * the process deciding it (`witness approve`) need share nothing but the ledger, and a pending or
 * granted approval outlives a gateway restart.
 *
 *   approval.request   written by the gateway in the call's session; its event id is the request id.
 *                      Binds agent, server, tool, the (redacted) arguments, their salted digest, the
 *                      policy version, the session, the tool.call, an expiry, and the verifier keys
 *                      of the people the policy allows to decide it.
 *   approval.decision  written by a person (approved / denied), signed with their own Ed25519 key
 *                      over everything it says (core/approval.ts), or by the gateway (expired), with
 *                      `parent` = the request. The FIRST decision recorded that counts wins; one that
 *                      does not count (unsigned, signed by a key the request does not allow, by the
 *                      agent itself, or for other arguments, policy or expiry) is ignored.
 *   policy.decision    written by the gateway when a grant releases a call: `data.approval` names the
 *                      request and the decision, which consumes the grant (once).
 *
 * Anyone who can write the ledger can write an approval.decision; only a holder of an allowed key
 * can write one that counts. The gateway checks every decision itself against its own policy.
 *
 * Whether a decision counts is core's `decisionProblem` (pure, so the video tells the same story
 * from the events alone); it is part of this module's surface because the gateway and the CLI
 * judge approvals through it.
 */
export { canonicalKey, decisionProblem, fingerprintOf, type DecisionProblem, type DecisionProblemCode } from '../core/index.js';

/** Where decisions go when the request's session has already ended (e.g. the gateway restarted). */
export const APPROVAL_STREAM = 'witness.approvals';

/** The gateway's own name when it records a decision (an expiry), never a person's. */
export const GATEWAY_APPROVER = 'witness-gateway';

export type ApprovalStatus = 'pending' | 'approved' | 'denied' | 'expired' | 'consumed';

type Row = StoredEvent & { pos: number };

export interface ApprovalView extends ApprovalRequestParts {
  request: Row;
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
  decision: Row | undefined;
  /** Every decision recorded for the request, in ledger order, whether it counts or not. */
  decisions: Row[];
  /** The event that consumed a grant, if any. */
  consumedBy: Row | undefined;
}

/** What a held call must match for a decision to release it. */
export interface Binding {
  agent: string;
  server: string | undefined;
  tool: string;
  /** The held call's arguments as the ledger stores them (redacted): digested with each request's salt. */
  arguments: unknown;
  policyVersion: string | undefined;
  /** Verifier keys the gateway's own policy allows to release this call. */
  approvers: readonly string[];
  /** The session of the held call; only checked when the request came from it. */
  session?: string;
}

async function all(ledger: LedgerReader, filter: Parameters<LedgerReader['query']>[0]): Promise<Row[]> {
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

/**
 * Why a request cannot stand for the held call, or undefined when it can: same agent, server, tool,
 * policy version, and arguments whose digest under the request's salt is the request's digest.
 */
export function requestMismatch(v: ApprovalView, held: Binding): string | undefined {
  if (v.agent !== held.agent) return `the request is for agent ${v.agent}, not ${held.agent}`;
  if (v.server !== held.server) return `the request is for server ${v.server ?? '(none)'}, not ${held.server ?? '(none)'}`;
  if (v.tool !== held.tool) return `the request is for tool ${v.tool}, not ${held.tool}`;
  if (v.argumentsSalt === undefined) return 'the request has no salted arguments digest (an older Witness wrote it)';
  let digest: string;
  try {
    digest = argumentsDigest(v.argumentsSalt, held.arguments);
  } catch {
    return "the call's arguments have no canonical JSON form";
  }
  if (digest !== v.argumentsDigest) return `the request is for other arguments (digest ${v.argumentsDigest}, the call's under its salt ${digest})`;
  if (v.policyVersion !== held.policyVersion) return `the approval was given under policy ${v.policyVersion ?? '(none)'}, not the policy now in force (${held.policyVersion ?? '(none)'})`;
  if (held.session !== undefined && v.session !== held.session) return `the request belongs to session ${v.session}`;
  return undefined;
}

/**
 * Why a request's first counting decision cannot release the held call (in one clause, with the
 * code to record), or undefined when it can. The gateway checks this itself, against its own
 * policy's approvers, rather than trusting whoever wrote the decision or the request.
 */
export function releaseProblem(v: ApprovalView, d: StoredEvent, held: Binding, now: Date, origin: string): DecisionProblem | undefined {
  const problem = decisionProblem(v, d, held.approvers, origin);
  if (problem !== undefined) return problem;
  const decided = d.data?.['decision'];
  if (decided !== 'approved') return { code: 'approval_mismatch', reason: `the request was ${String(decided)}` };
  if (v.consumedBy !== undefined) return { code: 'approval_mismatch', reason: `the approval was already used by event ${v.consumedBy.id}` };
  if (Date.parse(v.expiresAt) <= now.getTime()) return { code: 'approval_mismatch', reason: `the approval expired at ${v.expiresAt}` };
  const mismatch = requestMismatch(v, held);
  return mismatch === undefined ? undefined : { code: 'approval_mismatch', reason: mismatch };
}

/** Builds the view of one request from the decisions and consumptions recorded for it. */
function view(request: Row, decisions: readonly Row[], consumptions: readonly Row[], now: Date, origin: string): ApprovalView {
  const d = request.data ?? {};
  const parts = approvalRequestParts(request);
  const { expiresAt } = parts;
  const approvers = listedApprovers(request);
  const mine = decisions.filter((e) => e.parent === request.id).sort((a, b) => a.pos - b.pos);
  const decision = mine.find((e) => decisionProblem(parts, e, approvers, origin) === undefined);
  const consumedBy = decision === undefined ? undefined : consumptions.find((e) => approvalRef(e)?.decision_id === decision.id);
  const decided = str(decision?.data?.['decision']);
  let status: ApprovalStatus;
  if (consumedBy !== undefined) status = 'consumed';
  else if (decided === 'approved') status = Date.parse(expiresAt) <= now.getTime() ? 'expired' : 'approved';
  else if (decided === 'denied') status = 'denied';
  else if (decided === 'expired' || Date.parse(expiresAt) <= now.getTime()) status = 'expired';
  else status = 'pending';
  return {
    ...parts,
    request,
    arguments: d['arguments'],
    argumentsSalt: str(d['arguments_salt']),
    approvers,
    rule: str(d['rule']),
    reason: str(d['reason']),
    callId: request.parent,
    status,
    decision,
    decisions: mine,
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
export async function listApprovals(ledger: LedgerReader, options: ListOptions = {}): Promise<ApprovalView[]> {
  const since = options.since === undefined ? {} : { since: options.since };
  const agent = options.agent === undefined ? {} : { agent: options.agent };
  const [requests, decisions, policy] = await Promise.all([
    all(ledger, { kind: 'approval.request', ...since, ...agent }),
    all(ledger, { kind: 'approval.decision', ...since, ...agent }),
    all(ledger, { kind: 'policy.decision', ...since, ...agent }),
  ]);
  const consumptions = policy.filter((e) => approvalRef(e)?.decision_id !== undefined);
  const now = options.now ?? new Date();
  return requests.sort((a, b) => a.pos - b.pos).map((r) => view(r, decisions, consumptions, now, ledger.info.origin));
}

/** One request by id or a unique prefix of it (at least 8 characters), like a git commit. */
export async function findApproval(ledger: LedgerReader, idOrPrefix: string, now = new Date()): Promise<ApprovalView> {
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
  /** The approver's own key: it names them, and signs the decision. */
  signer: NoteSigner;
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

function who(d: StoredEvent): string {
  return d.data?.['decision'] === 'expired' ? 'nobody (it expired undecided)' : (str(d.data?.['approver']) ?? 'unknown');
}

/**
 * Records a person's signed decision on a pending request (`witness approve` / `witness deny`).
 * Refuses when the signer is the agent that made the call, is not among the request's approvers,
 * when the request is not pending, when its recorded arguments do not match its digest, or when
 * the reviewed digest differs from the request's. Two people deciding at once from two processes
 * both append; the one recorded second is told it lost (`conflict`), and its decision does not count.
 */
export async function decideApproval(witness: Witness, idOrPrefix: string, input: DecideInput): Promise<{ view: ApprovalView; decisionId: string; stream: string; key: string }> {
  const now = input.now ?? new Date();
  const v = await findApproval(witness.reader, idOrPrefix, now);
  const approver = input.signer.name;
  const key = canonicalKey(input.signer.verifierKey)!;
  const fingerprint = fingerprintOf(key);
  if (sameIdentity(approver, v.agent)) {
    throw new WitnessError('forbidden', `${approver} is the agent that made this call (${v.agent}) and cannot decide its own approval request; a person must decide it with their own key.`);
  }
  if (v.approvers.length === 0) {
    throw new WitnessError(
      'conflict',
      `Approval request ${v.requestId} names no approvers (an older Witness made it), so no signed decision can release it; nothing was recorded; retry the call to get a new request.`,
    );
  }
  if (!v.approvers.includes(key)) {
    const allowed = v.approvers.map(fingerprintOf).join(', ');
    throw new WitnessError('forbidden', `${approver} (key ${fingerprint}) is not among the approvers the policy allows for this request (${allowed}); nothing was recorded.`);
  }
  if (v.status !== 'pending') {
    const by = v.decision === undefined ? '' : ` by ${who(v.decision)} at ${v.decision.ts}`;
    // A grant the gateway has already used reads as what the person did first, then what followed.
    const state = v.status === 'consumed' ? `approved${by}, and that approval has released the call` : `${v.status}${by}`;
    throw new WitnessError('conflict', `Approval request ${v.requestId} is already ${state}; nothing was recorded.`);
  }
  if (v.argumentsSalt === undefined || tryArgumentsDigest(v.argumentsSalt, v.arguments) !== v.argumentsDigest) {
    throw new WitnessError('conflict', `The arguments shown in approval request ${v.requestId} do not match its digest, so they may not be what the gateway holds; nothing was recorded.`);
  }
  if (input.expectDigest !== undefined && input.expectDigest.toLowerCase() !== v.argumentsDigest) {
    throw new WitnessError('conflict', `The arguments of request ${v.requestId} have digest ${v.argumentsDigest}, not the ${input.expectDigest} you reviewed; nothing was recorded.`);
  }
  const ts = now.toISOString();
  // Everything here is signed (core/approval.ts), so an auditor can hold the person to each field.
  const unsigned: Payload<'approval.decision'> = {
    request_id: v.requestId,
    decision: input.decision,
    approver,
    approver_key: key,
    ...(input.role === undefined ? {} : { role: input.role }),
    ...(input.reason === undefined ? {} : { reason: input.reason }),
    ...(input.meaning === undefined ? {} : { meaning: input.meaning }),
    agent: v.agent,
    tool: v.tool,
    ...(v.server === undefined ? {} : { server: v.server }),
    session: v.session,
    ...(v.callId === undefined ? {} : { call_id: v.callId }),
    arguments_digest: v.argumentsDigest,
    ...(v.policyVersion === undefined ? {} : { policy_version: v.policyVersion }),
    ...(v.rule === undefined ? {} : { rule: v.rule }),
    expires_at: v.expiresAt,
    origin: witness.reader.info.origin,
    decided_at: ts,
  };
  const data = { ...unsigned, approver_sig: signApproval(input.signer, unsigned) };
  // The recorder redacts before it writes; if that changed a signed field the signature would not
  // verify and the decision would silently not count. Say so now instead.
  if (canonicalize(witness.redactData(data)) !== canonicalize(data)) {
    throw new WitnessError('invalid_argument', 'Your reason, role or meaning contains text that Witness redacts as a secret, which would void your signature; reword it without the secret.');
  }
  const event = {
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
  let receipt: AppendReceipt | undefined = await witness.recordStrict(stream, event).catch((e: unknown) => {
    if (e instanceof WitnessError && e.code === 'invalid_event' && /already ended/.test(e.message)) return undefined;
    throw e;
  });
  if (receipt === undefined) {
    stream = APPROVAL_STREAM;
    receipt = await witness.recordStrict(stream, event);
  }
  // Another person (or the gateway's expiry) may have decided between our read and our append:
  // the ledger's order decides, and whoever came second must hear it.
  const after = await findApproval(witness.reader, v.requestId, now);
  const first = after.decision;
  if (first !== undefined && first.id !== receipt.id) {
    const mine = input.decision === 'approved' ? 'approval' : 'denial';
    const verdict =
      first.data?.['decision'] === 'expired'
        ? `it expired before your decision was recorded (event ${first.id})`
        : `${who(first)} ${String(first.data?.['decision'])} it first (event ${first.id}, ${first.ts})`;
    throw new WitnessError('conflict', `You lost the race for approval request ${v.requestId}: ${verdict}; your ${mine}, event ${receipt.id}, stays in the ledger but does not count.`);
  }
  return { view: v, decisionId: receipt.id, stream, key };
}
