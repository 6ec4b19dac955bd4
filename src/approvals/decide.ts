import { WitnessError, canonicalKey, canonicalize, fingerprintOf, sameIdentity, signApproval, tryArgumentsDigest, type NoteSigner, type Payload } from '../core/index.js';
import { RECORDER_VERSION, systemWriter, type Witness } from '../recorder/index.js';
import type { AppendReceipt } from '../store/index.js';
import { APPROVAL_STREAM } from './protocol.js';
import { deciderOf, findApproval, type ApprovalView } from './view.js';

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

/** A decision as an authenticated caller makes it (the server, as the API key's or sign-in's identity). */
export interface DecisionInput extends DecideInput {
  /** The request id, or a unique prefix of at least 8 characters. */
  request: string;
  /**
   * Who decides: the caller's authenticated identity, never read from the environment or the
   * request body. The signer must be this person's key (its name is theirs).
   */
  approver: string;
  /** What recorded the decision: `witness approve` (cli, the default) or `witness serve` (server). */
  recorder?: 'cli' | 'server';
}

export interface Decided {
  view: ApprovalView;
  decisionId: string;
  stream: string;
  /** The approver's verifier key, canonical. */
  key: string;
}

/**
 * Records `input.approver`'s signed decision on a pending request, bound exactly as `witness
 * approve` binds it (request id, agent, tool, server, session, arguments digest, policy version,
 * expiry, ledger origin; all signed). Refuses, recording nothing, with `forbidden` when the
 * approver is the agent that made the call (`details.refusal: 'approver_is_agent'`), when the key
 * is not the approver's, or when it is not among the request's approvers; with `conflict` when the
 * request is not pending, its recorded arguments do not match its digest, or the reviewed digest
 * differs. Two people deciding at once from two processes both append; the one recorded second is
 * told it lost (`conflict`), and its decision does not count.
 */
export async function decide(witness: Witness, input: DecisionInput): Promise<Decided> {
  const now = input.now ?? new Date();
  const v = await findApproval(witness.reader, input.request, now);
  const approver = input.approver;
  if (sameIdentity(approver, v.agent) || sameIdentity(input.signer.name, v.agent)) {
    throw new WitnessError('forbidden', `${approver} is the agent that made this call (${v.agent}) and cannot decide its own approval request; a person must decide it with their own key.`, {
      details: { refusal: 'approver_is_agent', request: v.requestId },
    });
  }
  if (!sameIdentity(approver, input.signer.name)) {
    throw new WitnessError('forbidden', `The key given to sign this decision belongs to ${input.signer.name}, not to ${approver}; a person decides only with their own key; nothing was recorded.`, {
      details: { refusal: 'key_not_approver', request: v.requestId },
    });
  }
  const key = canonicalKey(input.signer.verifierKey)!;
  const fingerprint = fingerprintOf(key);
  if (v.approvers.length === 0) {
    throw new WitnessError(
      'conflict',
      `Approval request ${v.requestId} names no approvers (an older Witness made it), so no signed decision can release it; nothing was recorded; retry the call to get a new request.`,
    );
  }
  if (!v.approvers.includes(key)) {
    const allowed = v.approvers.map(fingerprintOf).join(', ');
    throw new WitnessError('forbidden', `${approver} (key ${fingerprint}) is not among the approvers the policy allows for this request (${allowed}); nothing was recorded.`, {
      details: { refusal: 'approver_not_allowed', request: v.requestId },
    });
  }
  if (v.status !== 'pending') {
    const by = v.decision === undefined ? '' : ` by ${deciderOf(v.decision)} at ${v.decision.ts}`;
    // A grant the gateway has already used reads as what the person did first, then what followed.
    const state = v.status === 'consumed' ? `approved${by}, and that approval has released the call` : `${v.status}${by}`;
    throw new WitnessError('conflict', `Approval request ${v.requestId} is already ${state}; nothing was recorded.`);
  }
  if (v.argumentsSalt === undefined) {
    // Written before digests were salted: its digest is SHA-256(JCS(arguments)), which a withheld
    // bundle would let anyone test guesses against. No gateway releases a call on it (binding.ts),
    // so a signature over it would bind nothing; the events themselves still verify.
    throw new WitnessError(
      'conflict',
      `Approval request ${v.requestId} was recorded by an older Witness with an unsalted arguments digest, which no gateway of this version releases a call on; nothing was recorded; retry the call to get a new request.`,
    );
  }
  if (tryArgumentsDigest(v.argumentsSalt, v.arguments) !== v.argumentsDigest) {
    throw new WitnessError('conflict', `The arguments shown in approval request ${v.requestId} do not match its digest, so they may not be what the gateway holds; nothing was recorded.`);
  }
  if (input.expectDigest !== undefined && input.expectDigest.toLowerCase() !== v.argumentsDigest) {
    throw new WitnessError('conflict', `The arguments of request ${v.requestId} have digest ${v.argumentsDigest}, not the ${input.expectDigest} you reviewed; nothing was recorded.`);
  }
  // The recorded name is the key's (what the signature names), however the caller spelled it.
  const signedBy = input.signer.name;
  const ts = now.toISOString();
  // Everything here is signed (core/approval.ts), so an auditor can hold the person to each field.
  const unsigned: Payload<'approval.decision'> = {
    request_id: v.requestId,
    decision: input.decision,
    approver: signedBy,
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
    principal: { id: signedBy, kind: 'human' as const },
    recorder: { kind: input.recorder ?? ('cli' as const), version: RECORDER_VERSION },
    kind: 'approval.decision' as const,
    parent: v.requestId,
    resource: v.request.resource,
    action: v.request.action,
    // What a compliance reader expects: an approval succeeded in releasing the call, a denial refused it.
    outcome: input.decision === 'approved' ? ('success' as const) : ('denied' as const),
    policy: { decision: 'review' as const, ...(v.rule === undefined ? {} : { rule: v.rule }), ...(v.policyVersion === undefined ? {} : { version: v.policyVersion }), approver: signedBy },
    approvals: [
      {
        approver: signedBy,
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
  // A person's decision, written as the CLI or the server: the SDK's public path refuses approval.decision.
  const writer = systemWriter(witness, input.recorder ?? 'cli');
  let receipt: AppendReceipt | undefined = await writer.recordStrict(stream, event).catch((e: unknown) => {
    if (e instanceof WitnessError && e.code === 'invalid_event' && /already ended/.test(e.message)) return undefined;
    throw e;
  });
  if (receipt === undefined) {
    stream = APPROVAL_STREAM;
    receipt = await writer.recordStrict(stream, event);
  }
  // Another person (or the gateway's expiry) may have decided between our read and our append:
  // the ledger's order decides, and whoever came second must hear it.
  const after = await findApproval(witness.reader, v.requestId, now);
  const first = after.decision;
  if (first !== undefined && first.id !== receipt.id) {
    const mine = input.decision === 'approved' ? 'approval' : 'denial';
    const verdict =
      first.data?.decision === 'expired'
        ? `it expired before your decision was recorded (event ${first.id})`
        : `${deciderOf(first)} ${String(first.data?.decision)} it first (event ${first.id}, ${first.ts})`;
    throw new WitnessError('conflict', `You lost the race for approval request ${v.requestId}: ${verdict}; your ${mine}, event ${receipt.id}, stays in the ledger but does not count.`);
  }
  return { view: v, decisionId: receipt.id, stream, key };
}

/**
 * `witness approve` / `witness deny`: the holder of the key decides (the key names them). The
 * same as `decide` with the key's name as the approver.
 */
export async function decideApproval(witness: Witness, idOrPrefix: string, input: DecideInput): Promise<Decided> {
  return decide(witness, { ...input, request: idOrPrefix, approver: input.signer.name });
}
