import { WitnessError } from '../core/index.js';

/**
 * Opaque page cursors, the same in every driver: base64url of a small JSON array naming the last
 * row of the page by its sort key, so a page continues after that row whatever was appended since.
 * A cursor is not a promise of secrecy: it says only where a page ended.
 */

/** The cursor after an event of `query`, which pages in (ts, pos) order. */
export function encodeCursor(ts: string, pos: number): string {
  return Buffer.from(JSON.stringify([ts, pos])).toString('base64url');
}

export function decodeCursor(cursor: string): [string, number] {
  const v = parse(cursor);
  if (Array.isArray(v) && v.length === 2 && typeof v[0] === 'string' && Number.isSafeInteger(v[1])) return [v[0], v[1] as number];
  throw invalid();
}

/**
 * The cursor after a session of `listSessions`, which pages newest first in (start, stream) order.
 * Tagged 's', so an event cursor handed to listSessions (or the reverse) is refused, not misread.
 */
export function encodeSessionCursor(start: string, stream: string): string {
  return Buffer.from(JSON.stringify(['s', start, stream])).toString('base64url');
}

export function decodeSessionCursor(cursor: string): { start: string; stream: string } {
  const v = parse(cursor);
  if (Array.isArray(v) && v.length === 3 && v[0] === 's' && typeof v[1] === 'string' && typeof v[2] === 'string') return { start: v[1], stream: v[2] };
  throw invalid();
}

function parse(cursor: string): unknown {
  try {
    return JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
}

function invalid(): WitnessError {
  return new WitnessError('invalid_argument', 'The cursor is not one this ledger issued; pass the `next` value of the previous page unchanged.');
}
