import { WitnessError, keyFingerprint, parseVerifierKey } from '../core/index.js';
import { decide, findApproval, type ApprovalStatus } from '../approvals/index.js';
import { Witness, WitnessOptions } from '../recorder/index.js';
import type { Ledger } from '../store/index.js';
import { approverKeysDir, loadApproverKey } from './approver-keys.js';
import type { Role } from './roles.js';

/** What approveAs needs of the server: its ledger, and where it keeps approver signing keys (default: approver-keys.ts). */
export interface LedgerContext {
  ledger: Ledger;
  approverKeys?: string;
  /** The server's metrics (a RouteContext has them): told of the decision, so /metrics counts pending approvals again at once. */
  metrics?: { approvalsChanged(): void };
}

/** The signed-in person: who authenticated (API key id, or later a sign-in's id), their name and role. */
export interface Person {
  keyId: string;
  name?: string | undefined;
  role: Role;
}

export interface ApproveOptions {
  /** What the decision means; recorded and signed. */
  meaning?: string;
  /** The arguments digest the person was shown; the decision is refused when the request's differs. */
  expectDigest?: string;
  now?: Date;
}

export interface ApproveResult {
  requestId: string;
  decision: 'approved' | 'denied';
  /** The approval.decision event. */
  decisionId: string;
  stream: string;
  /** Who the decision is recorded as: the name inside the server-held key. */
  approver: string;
  approverKey: string;
  fingerprint: string;
  /** The request's status once the decision is recorded. */
  status: ApprovalStatus;
}

const API_KEY_ID = /^[0-9a-f]{16}$/;

/** The meaning recorded when the caller gives none. */
export const DEFAULT_MEANING = 'reviewed the held call and its exact arguments in the Witness server';

// One recorder per ledger, for its redaction and strict appends; sealing stays the server's.
const recorders = new WeakMap<Ledger, Witness>();

function recorderFor(ledger: Ledger): Witness {
  let w = recorders.get(ledger);
  if (w === undefined) {
    w = new Witness(ledger, WitnessOptions.parse({ seal: { enabled: false } }));
    recorders.set(ledger, w);
  }
  return w;
}

/**
 * Records `person`'s decision on approval request `requestId`, signed with the approver key the
 * server holds for their API key (approver-keys.ts): the decision names the person the key names,
 * never a name from the request; it carries the person's role and a meaning that says which
 * credential made it and that the server signed it. Bound and refused exactly as `witness approve`
 * (src/approvals `decide`): `forbidden` when the person is the agent that asked, holds no
 * approver key here, or whose key the request's policy does not list; `conflict` when the request
 * is already decided or expired; `not_found` for an unknown request.
 *
 * The viewer's approvals form and `POST /v1/approvals/:id/approve|deny` both decide through this;
 * pass the RouteContext itself as `ctx` (it has `ledger` and `metrics`).
 */
export async function approveAs(ctx: LedgerContext, person: Person, requestId: string, decision: 'approved' | 'denied', reason?: string, options: ApproveOptions = {}): Promise<ApproveResult> {
  if (person.role !== 'approver') {
    throw new WitnessError('forbidden', `A ${person.role} may not decide approval requests; only an approver may.`, { details: { refusal: 'not_approver' } });
  }
  const now = options.now ?? new Date();
  // Look the request up first, so an unknown id is a 404 whether or not this person holds a key.
  await findApproval(ctx.ledger, requestId, now);
  if (!API_KEY_ID.test(person.keyId)) {
    // An OpenID Connect sign-in has no API key, so no server-held signing key is named for it yet.
    throw new WitnessError(
      'forbidden',
      `This server keeps approver signing keys only for approver API keys, and ${person.name ?? person.keyId} signed in otherwise; sign in with your approver API key, or decide with \`witness approve --key\` and your own key.`,
      { details: { refusal: 'no_approver_key' } },
    );
  }
  const { signer } = loadApproverKey(approverKeysDir(ctx.ledger.info, ctx.approverKeys), person.keyId);
  const credential = `witness serve, API key ${person.keyId}; signed by the server-held approver key`;
  const decided = await decide(recorderFor(ctx.ledger), {
    request: requestId,
    approver: signer.name,
    signer,
    decision,
    role: person.role,
    recorder: 'server',
    ...(reason === undefined || reason.trim() === '' ? {} : { reason }),
    meaning: `${options.meaning ?? DEFAULT_MEANING} (${credential})`,
    ...(options.expectDigest === undefined ? {} : { expectDigest: options.expectDigest }),
    now,
  });
  ctx.metrics?.approvalsChanged();
  const after = await findApproval(ctx.ledger, decided.view.requestId, now);
  return {
    requestId: decided.view.requestId,
    decision,
    decisionId: decided.decisionId,
    stream: decided.stream,
    approver: signer.name,
    approverKey: decided.key,
    fingerprint: keyFingerprint(parseVerifierKey(signer.verifierKey)),
    status: after.status,
  };
}
