/** Deterministic PRNG (mulberry32), so a failing seed, fuzz case or benchmark row set can be replayed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;

/** Characters JSON text handles differently: quotes, escapes, controls, separators, astral, BOM. */
const CHARS = ['a', 'Z', '0', ' ', '"', '\\', '/', '\n', '\t', '\u0000', '\u001f', '\u007f', '\u0080', 'é', '€', '\u2028', '\ufb33', '\ufeff', '😀', '\ud83d\ude02'];

export function randomString(r: () => number): string {
  let s = '';
  const n = Math.floor(r() * 8);
  for (let i = 0; i < n; i++) s += pick(r, CHARS);
  return s;
}

/** Numbers whose JSON text is never an integer literal beyond 2^53−1 (refused by design). */
export function randomNumber(r: () => number): number {
  switch (Math.floor(r() * 6)) {
    case 0:
      return Math.floor((r() - 0.5) * 2 * Number.MAX_SAFE_INTEGER);
    case 1:
      return Math.floor((r() - 0.5) * 2000);
    case 2:
      return (r() - 0.5) * 1e6;
    case 3:
      return r() * 1e-300;
    case 4:
      return (r() + 1) * 1e21 * 10 ** Math.floor(r() * 280);
    default:
      return -0;
  }
}

/** A random JSON value, at most ~6 levels deep. */
export function randomJsonValue(r: () => number, depth = 0): unknown {
  switch (Math.floor(r() * (depth > 4 ? 5 : 7))) {
    case 0:
      return null;
    case 1:
      return r() < 0.5;
    case 2:
      return randomNumber(r);
    case 3:
    case 4:
      return randomString(r);
    case 5:
      return Array.from({ length: Math.floor(r() * 5) }, () => randomJsonValue(r, depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      const n = Math.floor(r() * 5);
      for (let i = 0; i < n; i++) o[randomString(r)] = randomJsonValue(r, depth + 1);
      return o;
    }
  }
}
