import { WitnessError, keyFingerprint, parseVerifierKey, type NoteSigner } from '../core/index.js';
import { decide, findApproval, type ApprovalStatus } from '../approvals/index.js';
import { RECORDER_VERSION, Witness, WitnessOptions } from '../recorder/index.js';
import type { Ledger } from '../store/index.js';
import { ACCESS_STREAM } from './access.js';
import { approverKeysDir, loadApproverKey, oidcApproverKeyId, removeApproverKey, storeApproverKey, type ApproverKeyInfo } from './approver-keys.js';
import type { OidcApprover } from './config.js';
import type { Role } from './roles.js';

/** What approveAs needs of the server: its ledger, and where it keeps approver signing keys (default: approver-keys.ts). */
export interface LedgerContext {
  ledger: Ledger;
  approverKeys?: string;
  /** The server's metrics (a RouteContext has them): told of the decision, so /metrics counts pending approvals again at once. */
  metrics?: { approvalsChanged(): void };
  /**
   * The OpenID Connect provider people sign in through, and the approvers the config binds to it
   * (config.ts `oidc.approvers`): without it, a person signed in through OpenID Connect cannot decide.
   */
  oidc?: { issuer: string; approvers: readonly OidcApprover[] };
}

/** The signed-in person: who authenticated (an API key id, or `oidc:<subject>` for an OpenID Connect sign-in), their name and role. */
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
const OIDC_PREFIX = 'oidc:';

/** The meaning recorded when the caller gives none. */
export const DEFAULT_MEANING = 'reviewed the held call and its exact arguments in the Witness server';

// One recorder per ledger, for its redaction and strict appends; sealing stays the server's.
const recorders = new WeakMap<Ledger, Witness>();

/**
 * The server's recorder on `ledger` (one per ledger, sealing off: the server seals on its own
 * schedule), for the people's acts it records: decisions here, halts and resumes in handlers/halts.ts.
 */
export function recorderFor(ledger: Ledger): Witness {
  let w = recorders.get(ledger);
  if (w === undefined) {
    w = new Witness(ledger, WitnessOptions.parse({ seal: { enabled: false } }));
    recorders.set(ledger, w);
  }
  return w;
}

/** The key the server holds for an approver API key. */
function apiKeySigner(ctx: LedgerContext, person: Person): { signer: NoteSigner; credential: string } {
  if (!API_KEY_ID.test(person.keyId)) {
    throw new WitnessError('forbidden', `${person.name ?? person.keyId} signed in with neither an API key nor OpenID Connect, so this server holds no approver key for them.`, {
      details: { refusal: 'no_approver_key' },
    });
  }
  const { signer } = loadApproverKey(approverKeysDir(ctx.ledger.info, ctx.approverKeys), person.keyId);
  return { signer, credential: `witness serve, API key ${person.keyId}; signed by the server-held approver key` };
}

/**
 * The key the server holds for a person signed in through OpenID Connect: only when the config
 * lists their subject under oidc.approvers and the key made for this issuer and subject exists and
 * bears the name the config gives. Each refusal says what the admin must do.
 */
function oidcSigner(ctx: LedgerContext, person: Person): { signer: NoteSigner; credential: string } {
  const subject = person.keyId.slice(OIDC_PREFIX.length);
  const who = `${person.name ?? subject} (OpenID Connect subject ${JSON.stringify(subject)})`;
  const oidc = ctx.oidc;
  if (oidc === undefined) {
    throw new WitnessError('forbidden', `${who} signed in through OpenID Connect, but this server was given no OpenID Connect configuration to decide with; sign in again.`, {
      details: { refusal: 'no_approver_key' },
    });
  }
  const command = (name: string) => `\`witness keys oidc-approver --issuer ${shellWord(oidc.issuer)} --subject ${shellWord(subject)} --name ${name}\``;
  const bound = oidc.approvers.find((a) => a.subject === subject);
  if (bound === undefined) {
    throw new WitnessError(
      'forbidden',
      `This server holds no approver signing key for ${who}, so it cannot sign a decision for you; an admin runs ${command('<your identity>')}, adds the policy lines it prints, and lists you under oidc.approvers in the server's config (subject: ${subject}).`,
      { details: { refusal: 'no_approver_key' } },
    );
  }
  const { signer } = loadApproverKey(
    approverKeysDir(ctx.ledger.info, ctx.approverKeys),
    oidcApproverKeyId(oidc.issuer, subject),
    `This server holds no approver signing key for ${who}, so it cannot sign a decision for you; an admin runs ${command(bound.name)} and adds the policy lines it prints.`,
  );
  if (signer.name !== bound.name) {
    throw new WitnessError(
      'forbidden',
      `The server's config names ${who} ${bound.name}, but the approver key held for them belongs to ${signer.name}; an admin corrects oidc.approvers in the server's config (or makes the key again with ${command(bound.name)}).`,
      { details: { refusal: 'approver_key_mismatch' } },
    );
  }
  return { signer, credential: `witness serve, OpenID Connect ${oidc.issuer} subject ${subject}; signed by the server-held approver key` };
}

/** A word a shell reads back as itself: as is when plain, else in single quotes. */
function shellWord(s: string): string {
  return /^[A-Za-z0-9@%+=:,./_-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * Records `person`'s decision on approval request `requestId`, signed with the approver key the
 * server holds for their API key, or for their OpenID Connect issuer and subject when the config
 * lists them under oidc.approvers (approver-keys.ts): the decision names the person the key names,
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
  const { signer, credential } = person.keyId.startsWith(OIDC_PREFIX) ? oidcSigner(ctx, person) : apiKeySigner(ctx, person);
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

/**
 * Makes (or copies from `from`) the approver signing key the server holds for the person an
 * OpenID Connect provider `issuer` names `subject`, and records that it did as a `config.change`
 * on the access stream, beside the sign-ins it serves: who made it, for which issuer and subject,
 * the key's public line. The key signs nothing until the server's config lists the subject under
 * oidc.approvers with the same name (approveAs checks both).
 */
export async function createOidcApproverKey(
  ledger: Ledger,
  input: { issuer: string; subject: string; name?: string; from?: string; dir?: string },
  actor: { who: string },
): Promise<ApproverKeyInfo & { keyId: string }> {
  if (input.subject.trim() === '' || input.subject.length > 255) throw new WitnessError('invalid_argument', "--subject must be the OpenID provider's sub claim for the person, 1 to 255 characters.");
  let issuer: URL;
  try {
    issuer = new URL(input.issuer);
  } catch {
    throw new WitnessError('invalid_argument', `--issuer "${input.issuer}" is not a URL; give the issuer exactly as the server's config has it (oidc.issuer).`);
  }
  if (issuer.protocol !== 'https:' && issuer.protocol !== 'http:')
    throw new WitnessError('invalid_argument', `--issuer "${input.issuer}" must be an https URL, exactly as oidc.issuer in the server's config.`);
  const keyId = oidcApproverKeyId(input.issuer, input.subject);
  const dir = approverKeysDir(ledger.info, input.dir);
  if (input.from === undefined && input.name === undefined)
    throw new WitnessError('invalid_argument', "Give the approver's identity with --name <you@example> (or --approver-key <file> to use their own key).");
  const info = storeApproverKey(dir, keyId, input.from === undefined ? { name: input.name! } : { from: input.from, ...(input.name === undefined ? {} : { name: input.name }) });
  try {
    await ledger.append([
      {
        stream: ACCESS_STREAM,
        agent: { id: 'witness-cli' },
        principal: { id: actor.who, kind: 'human' },
        recorder: { kind: 'cli', version: RECORDER_VERSION },
        kind: 'config.change',
        resource: 'approver-keys',
        action: 'approver-key.create',
        outcome: 'success',
        data: {
          target: 'other',
          description: `Approver signing key for ${info.name} (OpenID Connect ${input.issuer} subject ${input.subject}) held by the server`,
          via: 'oidc',
          issuer: input.issuer,
          subject: input.subject,
          name: info.name,
          public_key: info.verifierKey,
        },
      },
    ]);
  } catch (e) {
    // A key nobody recorded making would sign unaccounted for: take it back.
    removeApproverKey(dir, keyId);
    throw e;
  }
  return { ...info, keyId };
}
