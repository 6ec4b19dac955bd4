import { canonicalize } from './canonical-json.js';
import { newSalt, sha256Hex, SALT_BYTES } from './chain.js';
import { WitnessError } from './errors.js';
import { textField as str, type Payload, type StoredEvent, type Unchecked } from './event.js';
import { formatVerifierKey, keyFingerprint, parseVerifierKey, type NoteSigner, type NoteVerifier } from './note.js';

/**
 * The two commitments a human approval rests on, specified so an auditor can recompute them in
 * another language (README "Human approval"):
 *
 *   arguments_digest = SHA-256("witness/args/v1\n" ‖ salt ‖ JCS(arguments))
 *       salt: 32 random bytes (hex in `arguments_salt`, beside the arguments in `data`);
 *       arguments: as recorded, i.e. after redaction; absent arguments are null.
 *   approver_sig     = Ed25519(approver key, "witness/approval/v1\n" ‖ JCS(decision data without approver_sig))
 *       in lowercase hex; the data names the approver and carries their verifier key.
 *
 * Why salted: digests appear in headers (`approvals[].args_digest`), which a bundle exported with
 * --withhold-data still shows. An unsalted digest of a small value (a PIN, an amount, a customer id)
 * can be brute-forced in milliseconds; with the salt kept in `data`, withheld and purged with the
 * payload, nobody without the payload can test a guess. Why over the redacted arguments: a digest of
 * the raw arguments would commit to the very secret that redaction kept out of the ledger.
 */

export const ARGUMENTS_DOMAIN = 'witness/args/v1\n';
export const APPROVAL_DOMAIN = 'witness/approval/v1\n';

const HEX_SALT = /^[0-9a-f]{64}$/;
const HEX_SIG = /^[0-9a-f]{128}$/;

/**
 * Approver names: an e-mail address or a login name. Narrower than a signed-note key name because
 * it also names the key files (`<name>.key`) and is compared with agent identities.
 */
export const APPROVER_NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$/;

/** A fresh arguments salt: 32 random bytes, hex. */
export function newArgumentsSalt(): string {
  return newSalt().toString('hex');
}

/** The salted digest of a call's (redacted) arguments. Throws `not_serialisable` when they have no canonical JSON form. */
export function argumentsDigest(saltHex: string, args: unknown): string {
  if (typeof saltHex !== 'string' || !HEX_SALT.test(saltHex)) {
    throw new WitnessError('invalid_argument', `An arguments salt must be ${SALT_BYTES} bytes written as 64 lowercase hex characters.`);
  }
  return sha256Hex(ARGUMENTS_DOMAIN, Buffer.from(saltHex, 'hex'), canonicalize(args ?? null));
}

/**
 * The digest, or undefined when the arguments have no canonical JSON form (numbers beyond 2^53,
 * lone surrogates): callers compare it with a recorded digest, and such arguments match nothing.
 */
export function tryArgumentsDigest(saltHex: string, args: unknown): string | undefined {
  try {
    return argumentsDigest(saltHex, args);
  } catch {
    return undefined;
  }
}

/** The bytes an approver signs: the domain, then the canonical JSON of the decision without its signature. */
export function approvalMessage(data: Readonly<Record<string, unknown>>): Buffer {
  const { approver_sig: _sig, ...signed } = data;
  return Buffer.from(`${APPROVAL_DOMAIN}${canonicalize(signed)}`, 'utf8');
}

/** Signs a decision (which must already carry `approver_key`); returns `approver_sig`. */
export function signApproval(signer: NoteSigner, data: Readonly<Record<string, unknown>>): string {
  return Buffer.from(signer.sign(approvalMessage(data))).toString('hex');
}

/**
 * The verifier of a decision whose signature holds: `approver_key` parses, is named for
 * `approver`, and signed exactly this data. Undefined otherwise — whatever the input holds, it
 * never throws. Whether that key may decide is the caller's question (the policy's list).
 */
export function verifyApprovalSignature(data: Readonly<Record<string, unknown>> | null | undefined): NoteVerifier | undefined {
  if (data === null || data === undefined) return undefined;
  const d: Unchecked<Payload<'approval.decision'>> = data;
  const key = d.approver_key;
  const sig = d.approver_sig;
  if (typeof key !== 'string' || typeof sig !== 'string' || !HEX_SIG.test(sig)) return undefined;
  let verifier: NoteVerifier;
  try {
    verifier = parseVerifierKey(key);
  } catch {
    return undefined;
  }
  if (verifier.name !== d.approver) return undefined;
  try {
    return verifier.verify(approvalMessage(data), Buffer.from(sig, 'hex')) ? verifier : undefined;
  } catch {
    return undefined;
  }
}

/**
 * An identity as compared, never as recorded: NFKC (full-width and compatibility forms fold to
 * their plain letters), trimmed, and case-folded (upper then lower, so `ß` meets `SS`). So that
 * `Support-Bot` and `ｓｕｐｐｏｒｔ-bot` are the agent `support-bot`.
 */
export function normaliseIdentity(id: string): string {
  return id.normalize('NFKC').trim().toUpperCase().toLowerCase().normalize('NFKC');
}

export function sameIdentity(a: string, b: string): boolean {
  return normaliseIdentity(a) === normaliseIdentity(b);
}

/** A verifier key in one spelling (the hash in lowercase hex), or undefined when it is not one. */
export function canonicalKey(vkey: unknown): string | undefined {
  if (typeof vkey !== 'string') return undefined;
  try {
    const v = parseVerifierKey(vkey);
    return formatVerifierKey(v.name, v.publicKey);
  } catch {
    return undefined;
  }
}

/** `alice@corp+1a2b3c4d` for a verifier key, or the text itself when it is not one. */
export function fingerprintOf(vkey: string): string {
  try {
    return keyFingerprint(parseVerifierKey(vkey));
  } catch {
    return vkey;
  }
}

/** The parts of an approval.request a decision must bind, as the request records them. */
export interface ApprovalRequestParts {
  /** The request's event id. */
  requestId: string;
  agent: string;
  server: string | undefined;
  tool: string;
  argumentsDigest: string;
  policyVersion: string | undefined;
  /** ISO-8601. */
  expiresAt: string;
  /** The stream (session) the request was recorded in. */
  session: string;
}

/**
 * Reads an approval.request event the one way every judge of its decisions reads it. A request
 * that names no expiry expires when it was made (so nothing decided after it counts); a field that
 * is not text is absent.
 */
export function approvalRequestParts(request: StoredEvent): ApprovalRequestParts {
  // Named as the gateway writes it, but read as a ledger may hold it: checked, never trusted.
  const d: Unchecked<Payload<'approval.request'>> | null = request.data;
  return {
    requestId: request.id,
    agent: request.agent.id,
    server: str(d?.server),
    tool: str(d?.tool) ?? request.action ?? '',
    argumentsDigest: str(d?.arguments_digest) ?? '',
    policyVersion: str(d?.policy_version),
    expiresAt: str(d?.expires_at) ?? request.ts,
    session: request.stream,
  };
}

/** The verifier keys an approval.request lists as allowed to decide it, in canonical form; entries that are not keys are dropped. */
export function listedApprovers(request: StoredEvent): string[] {
  const d: Unchecked<Payload<'approval.request'>> | null = request.data;
  const listed = d?.approvers;
  return (Array.isArray(listed) ? listed : []).map(canonicalKey).filter((k): k is string => k !== undefined);
}

export type DecisionProblemCode = 'approval_forged' | 'approver_not_allowed' | 'approval_mismatch';

/** Why a recorded decision does not count: a code (recorded by the gateway) and one clause. */
export interface DecisionProblem {
  code: DecisionProblemCode;
  reason: string;
}

/**
 * Why approval.decision `d` does not count for the request, or undefined when it does. A person's
 * decision must carry a valid signature by the approver it names (`verifyApprovalSignature`), from
 * a key in `allowed`, by someone who is not the agent (`sameIdentity`), binding exactly this request
 * (id, agent, tool, server, session, arguments digest, policy version, expiry and, when `origin` is
 * given, the ledger origin) and made before the expiry, both by its own `decided_at` and by the time
 * it was recorded. The gateway's own expiry record (`decision: "expired"`) counts unsigned, but only
 * as the gateway recorded it (recorder kind `gateway`) in the session the request lives in: pass the
 * decision's `stream` and `recorder`, or no expiry counts.
 *
 * `allowed` is the caller's to choose: the gateway passes the keys its own policy lists for the
 * rule, never the ledger's word; a reader of the events alone passes `listedApprovers(request)`.
 * `origin` is undefined only for such a reader, who does not know which ledger the events came from
 * (the gateway checks it, and records a decision that fails it as an error).
 */
export function decisionProblem(
  request: ApprovalRequestParts,
  decision: Pick<StoredEvent, 'data' | 'ts'> & Partial<Pick<StoredEvent, 'stream' | 'recorder'>>,
  allowed: readonly string[],
  origin: string | undefined,
): DecisionProblem | undefined {
  const data: Unchecked<Payload<'approval.decision'>> | null = decision.data;
  const d = { ts: decision.ts, data };
  if (d.data?.decision === 'expired') {
    // Unsigned, so only where the gateway that holds the call writes it: an expiry anyone else
    // recorded (an agent's SDK, in its own or another agent's session) would mark a request expired.
    if (decision.recorder?.kind === 'gateway' && decision.stream === request.session) return undefined;
    return {
      code: 'approval_forged',
      reason: `it is an unsigned expiry that the gateway did not record in the request's session (${request.session}); recorded by ${String(decision.recorder?.kind ?? 'no recorder')} in ${decision.stream ?? 'an unknown stream'}`,
    };
  }
  const named = str(d.data?.approver) ?? '(nobody)';
  if (verifyApprovalSignature(decision.data) === undefined) {
    return { code: 'approval_forged', reason: `it carries no valid signature by the approver it names (${named})` };
  }
  // The signature verified, so the key parses.
  const key = canonicalKey(d.data?.approver_key)!;
  if (sameIdentity(named, request.agent)) return { code: 'approver_not_allowed', reason: `${named} is the agent that made the call (${request.agent})` };
  if (!allowed.includes(key)) return { code: 'approver_not_allowed', reason: `${named} (key ${fingerprintOf(key)}) is not among the approvers the policy allows for this request` };
  const binds: Array<[string, unknown, string | undefined]> = [
    ['request_id', d.data?.request_id, request.requestId],
    ['agent', d.data?.agent, request.agent],
    ['tool', d.data?.tool, request.tool],
    ['server', d.data?.server, request.server],
    ['session', d.data?.session, request.session],
    ['arguments_digest', d.data?.arguments_digest, request.argumentsDigest],
    ['policy_version', d.data?.policy_version, request.policyVersion],
    ['expires_at', d.data?.expires_at, request.expiresAt],
    ...(origin === undefined ? [] : ([['origin', d.data?.origin, origin]] as Array<[string, unknown, string]>)),
  ];
  for (const [field, signed, actual] of binds) {
    if (signed !== actual) {
      const what = field === 'arguments_digest' ? 'arguments with digest' : field.replace('_', ' ');
      return { code: 'approval_mismatch', reason: `the decision signed ${what} ${String(signed ?? '(none)')}, but the request has ${String(actual ?? '(none)')}` };
    }
  }
  const decided = str(d.data?.decided_at);
  const expires = Date.parse(request.expiresAt);
  if (decided === undefined || Date.parse(decided) > expires || Date.parse(d.ts) > expires) {
    return { code: 'approval_mismatch', reason: `the decision was made after the request expired at ${request.expiresAt}` };
  }
  return undefined;
}
