import { WitnessError, type ErrorCode } from '../core/index.js';

/** The one exit-code table: 0 ok, 1 verification failed or the request was refused, 2 bad usage. */
export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

const USAGE_CODES: ReadonlySet<ErrorCode> = new Set(['invalid_argument', 'invalid_store_url', 'invalid_event', 'not_serialisable', 'invalid_json', 'invalid_policy']);

export function exitCodeFor(e: unknown): number {
  if (e instanceof WitnessError && USAGE_CODES.has(e.code)) return EXIT_USAGE;
  return EXIT_FAILED;
}

/** Anything that is not a WitnessError is a bug in Witness: say so, once, without a stack. */
export function messageFor(e: unknown): string {
  if (e instanceof WitnessError) return e.message;
  const msg = e instanceof Error ? e.message : String(e);
  return `Unexpected internal error: ${msg}. Please report it with the command you ran.`;
}
