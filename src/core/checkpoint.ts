/**
 * C2SP tlog-checkpoint (https://c2sp.org/tlog-checkpoint): the signed statement "the log named
 * <origin> had <size> leaves with Merkle root <root>". The body is parsed strictly because two
 * spellings of one tree head (leading zeros, loose base64) would let a log show different
 * byte-strings for what monitors must treat as the same checkpoint.
 */
import { WitnessError } from './errors.js';
import { decodeBase64Strict, openNote, signNote } from './note.js';
import type { NoteKeyId, NoteSigner, NoteVerifier } from './note.js';

export const ROOT_HASH_BYTES = 32;

export interface Checkpoint {
  /** Log identity; for Witness `<name>/witness/<ledger uuid>`. */
  readonly origin: string;
  /** Number of leaves in the tree. */
  readonly size: number;
  /** RFC 6962 Merkle tree head at `size`. */
  readonly rootHash: Uint8Array;
  /** Opaque, non-empty extra lines; not auditable by monitors, so best left empty. */
  readonly extensions: string[];
}

export interface CheckpointInput {
  readonly origin: string;
  readonly size: number;
  readonly rootHash: Uint8Array;
  readonly extensions?: readonly string[];
}

export interface OpenedCheckpoint {
  readonly checkpoint: Checkpoint;
  /** The exact signed body, for storing or re-hashing. */
  readonly text: string;
  readonly verified: NoteKeyId[];
  readonly unknown: NoteKeyId[];
}

const SIZE = /^(?:0|[1-9][0-9]*)$/;
const FORBIDDEN_CONTROL = /[\u0000-\u001f]/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function invalid(message: string): WitnessError {
  return new WitnessError('invalid_checkpoint', message);
}

/** A checkpoint line must survive being embedded in a signed note unchanged. */
function isValidLine(line: string): boolean {
  return line !== '' && !FORBIDDEN_CONTROL.test(line) && !LONE_SURROGATE.test(line);
}

export function formatCheckpoint(cp: CheckpointInput): string {
  if (typeof cp.origin !== 'string' || !isValidLine(cp.origin)) {
    throw invalid('The checkpoint origin must be a non-empty line without control characters.');
  }
  if (!Number.isSafeInteger(cp.size) || cp.size < 0) {
    throw invalid('The checkpoint size must be a non-negative safe integer.');
  }
  if (!(cp.rootHash instanceof Uint8Array) || cp.rootHash.length !== ROOT_HASH_BYTES) {
    throw invalid(`The checkpoint root hash must be exactly ${ROOT_HASH_BYTES} bytes.`);
  }
  const extensions = cp.extensions ?? [];
  for (const ext of extensions) {
    if (typeof ext !== 'string' || !isValidLine(ext)) {
      throw invalid('Each checkpoint extension line must be non-empty and without control characters.');
    }
  }
  const root = Buffer.from(cp.rootHash).toString('base64');
  return [cp.origin, String(cp.size), root, ...extensions].map((l) => `${l}\n`).join('');
}

export function parseCheckpoint(text: string): Checkpoint {
  if (typeof text !== 'string' || !text.endsWith('\n')) throw invalid('The checkpoint text must end with a newline.');
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3) throw invalid('The checkpoint must have origin, size and root hash lines.');
  const [origin, sizeText, rootText, ...extensions] = lines as [string, string, string, ...string[]];

  if (!isValidLine(origin)) throw invalid('The checkpoint origin must be a non-empty line without control characters.');
  if (!SIZE.test(sizeText)) throw invalid('The checkpoint size must be a decimal number without sign or leading zeros.');
  const size = Number(sizeText);
  if (!Number.isSafeInteger(size)) throw invalid('The checkpoint size is larger than this implementation supports.');
  const rootHash = decodeBase64Strict(rootText);
  if (rootHash === undefined || rootHash.length !== ROOT_HASH_BYTES) {
    throw invalid(`The checkpoint root hash must be standard base64 of exactly ${ROOT_HASH_BYTES} bytes.`);
  }
  for (const ext of extensions) {
    if (!isValidLine(ext)) throw invalid('Checkpoint extension lines must be non-empty and without control characters.');
  }
  return { origin, size, rootHash: Uint8Array.from(rootHash), extensions };
}

export function signCheckpoint(cp: CheckpointInput, signers: readonly NoteSigner[]): string {
  return signNote(formatCheckpoint(cp), signers);
}

/**
 * Verifies the note first and only then reads the body: unsigned text is never interpreted. A
 * wrong `expectedOrigin` means a checkpoint from some other log, hence `invalid_checkpoint`.
 */
export function openCheckpoint(msg: string | Uint8Array, verifiers: readonly NoteVerifier[], expectedOrigin?: string): OpenedCheckpoint {
  const note = openNote(msg, verifiers);
  const checkpoint = parseCheckpoint(note.text);
  if (expectedOrigin !== undefined && checkpoint.origin !== expectedOrigin) {
    throw new WitnessError('invalid_checkpoint', `The checkpoint is for log ${JSON.stringify(checkpoint.origin)}, not the expected ${JSON.stringify(expectedOrigin)}.`, {
      details: { origin: checkpoint.origin, expectedOrigin },
    });
  }
  return { checkpoint, text: note.text, verified: note.verified, unknown: note.unknown };
}

/**
 * The time the sealer put in the signed body (`witness-time <ISO-8601>`, an extension line that
 * Witness writes into every checkpoint), in ms since the epoch; undefined when absent or unreadable.
 * Signed, unlike the checkpoints table's `ts` column.
 */
export function witnessTime(cp: Checkpoint): number | undefined {
  for (const ext of cp.extensions) {
    if (!ext.startsWith('witness-time ')) continue;
    const t = Date.parse(ext.slice('witness-time '.length));
    return Number.isFinite(t) ? t : undefined;
  }
  return undefined;
}
