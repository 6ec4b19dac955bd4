/**
 * One error type for the whole package. Callers branch on `code`, never on message text; the
 * message is one sentence saying what is wrong and what to do. Codes become exit codes and HTTP
 * statuses in one place at the edge (cli/, server/).
 */
export const ERROR_CODES = [
  // input the caller gave us
  'invalid_event',
  'invalid_json',
  'not_serialisable',
  'payload_too_large',
  'invalid_argument',
  'invalid_store_url',
  'invalid_policy',
  // integrity
  'verification_failed',
  'unsupported_version',
  'invalid_proof',
  'invalid_signature',
  'invalid_key',
  'invalid_checkpoint',
  // storage
  'store_unavailable',
  'store_locked',
  'store_corrupt',
  'store_newer_schema',
  'store_readonly',
  'immutable',
  // the store failed in a way Witness has no case for: a bug to report, never retried as an outage
  'store_fault',
  // the sealer will not sign: the ledger does not extend what its key signed before
  'seal_refused',
  'not_found',
  'closed',
  // the machine
  'missing_program',
  'capture_failed',
  // requests refused
  'forbidden',
  'conflict',
  'unauthorized',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export class WitnessError extends Error {
  override readonly name = 'WitnessError';
  readonly code: ErrorCode;
  /** Structured context (field path, stream, seq, leaf index) for machine output. */
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options?.details;
  }
}

export function isWitnessError(e: unknown, code?: ErrorCode): e is WitnessError {
  return e instanceof WitnessError && (code === undefined || e.code === code);
}
