import { randomBytes } from 'node:crypto';

/**
 * Event ids (UUIDv7, RFC 9562) and timestamps, made for a write path that stamps ~100k events a
 * second: random bits come from a pool drawn in bulk (one randomBytes call per 1,024 ids instead of
 * one per 16, as the uuid package does), and the parts that depend only on the millisecond (its
 * hex, its ISO-8601 text) are computed once per millisecond.
 *
 * Layout (RFC 9562 §5.7 with the §6.2 "fixed bit-length dedicated counter" method 1): 48 bits of
 * Unix milliseconds, version 7, a 12-bit counter in rand_a, the variant, and 62 random bits in
 * rand_b. The counter starts at a random value below 2048 each new millisecond and counts up, so
 * ids made in one process sort in the order they were made; when it would overflow, or when the
 * clock steps back, the id's millisecond moves forward by one (§6.2 allows the timestamp to run
 * ahead), never backward. The 62 random bits keep ids from different processes apart.
 */

const POOL_IDS = 1024;
/** Hex characters drawn per id: 3 for a fresh counter, 16 for rand_b (of which 62 bits are used). */
const HEX_PER_ID = 19;
let pool = '';
let at = 0;

function randomHex(n: number): string {
  if (at + n > pool.length) {
    pool = randomBytes((POOL_IDS * HEX_PER_ID) / 2).toString('hex');
    at = 0;
  }
  const s = pool.slice(at, at + n);
  at += n;
  return s;
}

/** The variant's two bits (10) over the top two bits of a random hex digit. */
const VARIANT: Readonly<Record<string, string>> = Object.fromEntries([...'0123456789abcdef'].map((c) => [c, ((parseInt(c, 16) & 3) | 8).toString(16)]));

const HEX3: readonly string[] = Array.from({ length: 0x1000 }, (_, i) => i.toString(16).padStart(3, '0'));
const MAX_MS = 2 ** 48 - 1;

let lastMs = -1;
let counter = 0;
let msPrefix = '';

function setMillisecond(ms: number): void {
  lastMs = ms;
  counter = parseInt(randomHex(3), 16) & 0x7ff;
  const hex = ms.toString(16).padStart(12, '0');
  msPrefix = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-7`;
}

/** A new UUIDv7 for an event made at `ms` (Unix milliseconds). */
export function uuidv7At(time: number): string {
  // 48 bits hold milliseconds until the year 10889; a time outside them (or NaN) counts as the last one seen.
  const ms = time >= 0 && time <= MAX_MS ? Math.floor(time) : Math.max(lastMs, 0);
  if (ms > lastMs) setMillisecond(ms);
  else if (counter < 0xfff) counter++;
  else setMillisecond(lastMs + 1);
  const r = randomHex(16);
  return `${msPrefix}${HEX3[counter]}-${VARIANT[r[0]!]}${r.slice(1, 4)}-${r.slice(4)}`;
}

let isoMs = Number.NaN;
let isoText = '';

/** `new Date(ms).toISOString()`, computed once per millisecond. */
export function isoAt(ms: number): string {
  if (ms !== isoMs) {
    isoText = new Date(ms).toISOString();
    isoMs = ms;
  }
  return isoText;
}
