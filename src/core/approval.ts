import { canonicalize } from './canonical-json.js';
import { newSalt, sha256Hex, SALT_BYTES } from './chain.js';
import { WitnessError } from './errors.js';
import { parseVerifierKey, type NoteSigner, type NoteVerifier } from './note.js';

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
  const key = data['approver_key'];
  const sig = data['approver_sig'];
  if (typeof key !== 'string' || typeof sig !== 'string' || !HEX_SIG.test(sig)) return undefined;
  let verifier: NoteVerifier;
  try {
    verifier = parseVerifierKey(key);
  } catch {
    return undefined;
  }
  if (verifier.name !== data['approver']) return undefined;
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
