import { describe, expect, it } from 'vitest';
import { EVENT_KINDS, EventHeader, OUTCOMES, canonicalize } from '../../src/core/index.js';
import { headerFields } from '../../src/core/verify.js';
import { SCANNED_HEADER_KEYS, scanHeader } from '../../src/core/verify-header.js';
import { pick, rng } from '../helpers/random.js';

/**
 * The verifier's fast header path must agree with the slow one (JSON.parse, re-canonicalise and
 * compare, zod) on every text: it accepts exactly the headers that are canonical and valid, and
 * then extracts the same fields. Whatever it refuses goes to the slow path, which names the fault.
 */

/** The slow path's verdict: the fields when the text is canonical and schema-valid, else undefined. */
function slow(text: string): ReturnType<typeof headerFields> | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
  let canonical: string;
  try {
    canonical = canonicalize(parsed);
  } catch {
    return undefined;
  }
  const r = EventHeader.safeParse(parsed);
  if (canonical !== text || !r.success) return undefined;
  return headerFields(r.data);
}

const hex = (r: () => number, n: number) => Array.from({ length: n }, () => '0123456789abcdef'[Math.floor(r() * 16)]).join('');
const uuid = (r: () => number) => `${hex(r, 8)}-${hex(r, 4)}-7${hex(r, 3)}-8${hex(r, 3)}-${hex(r, 12)}`;
const iso = (r: () => number) => new Date(Math.floor(r() * 4e12)).toISOString();

/** Strings that exercise every spelling JCS has: escapes, controls, non-ASCII, surrogate pairs, U+2028. */
function text(r: () => number, max = 12): string {
  const parts = ['a', 'Z', ' ', '"', '\\', '/', '\n', '\t', '\b', '\f', '\r', '\u0000', '\u001f', '\u007f', 'é', '€', '\u2028', '😀', 'x-y', '.'];
  let s = '';
  const n = Math.floor(r() * max);
  for (let i = 0; i < n; i++) s += pick(r, parts);
  return s;
}
const nonEmpty = (r: () => number) => text(r) || 'n';

function maybe<T>(r: () => number, p: number, f: () => T): T | undefined {
  return r() < p ? f() : undefined;
}

/** A random header valid against EventHeader, with every optional part appearing sometimes. */
function validHeader(r: () => number): Record<string, unknown> {
  const h: Record<string, unknown> = {
    v: 1,
    id: uuid(r),
    ts: iso(r),
    stream: nonEmpty(r),
    seq: pick(r, [0, 1, 7, 1234, Number.MAX_SAFE_INTEGER, Math.floor(r() * 1e9)]),
    kind: pick(r, EVENT_KINDS),
    agent: { id: nonEmpty(r), version: maybe(r, 0.3, () => text(r)), credential: maybe(r, 0.2, () => text(r)) },
    payload_digest: hex(r, 64),
    prev: hex(r, 64),
    received_ts: maybe(r, 0.2, () => iso(r)),
    user: maybe(r, 0.3, () => text(r)),
    principal: maybe(r, 0.2, () => ({ id: nonEmpty(r), kind: maybe(r, 0.5, () => pick(r, ['human', 'service'])) })),
    delegation: maybe(r, 0.15, () => ({
      id: text(r),
      issuer: maybe(r, 0.5, () => text(r)),
      scopes: maybe(r, 0.5, () => Array.from({ length: Math.floor(r() * 4) }, () => text(r))),
      expires: maybe(r, 0.5, () => iso(r)),
    })),
    subject: maybe(r, 0.2, () => text(r)),
    recorder: maybe(r, 0.4, () => ({ id: maybe(r, 0.5, () => text(r)), kind: pick(r, ['sdk', 'gateway', 'server', 'otlp', 'cli']), version: maybe(r, 0.5, () => text(r)) })),
    source: maybe(r, 0.3, () => ({ host: maybe(r, 0.5, () => text(r)), process: maybe(r, 0.5, () => text(r)) })),
    env: maybe(r, 0.2, () => text(r)),
    tenant: maybe(r, 0.2, () => text(r)),
    parent: maybe(r, 0.3, () => uuid(r)),
    resource: maybe(r, 0.5, () => text(r)),
    action: maybe(r, 0.5, () => text(r)),
    outcome: maybe(r, 0.5, () => pick(r, OUTCOMES)),
    policy: maybe(r, 0.3, () => ({
      decision: pick(r, ['allow', 'deny', 'review']),
      rule: maybe(r, 0.5, () => text(r)),
      version: maybe(r, 0.3, () => hex(r, 64)),
      reason_code: maybe(r, 0.3, () => text(r)),
      mode: maybe(r, 0.3, () => pick(r, ['enforce', 'shadow'])),
      approver: maybe(r, 0.3, () => text(r)),
    })),
    approvals: maybe(r, 0.15, () =>
      Array.from({ length: Math.floor(r() * 3) }, () => ({
        approver: nonEmpty(r),
        role: maybe(r, 0.5, () => text(r)),
        decision: pick(r, ['approved', 'denied']),
        reason: maybe(r, 0.3, () => text(r)),
        meaning: maybe(r, 0.3, () => text(r)),
        args_digest: maybe(r, 0.3, () => hex(r, 64)),
        ts: iso(r),
      })),
    ),
    record_class: maybe(r, 0.2, () => text(r)),
    data_categories: maybe(r, 0.2, () => Array.from({ length: Math.floor(r() * 3) }, () => text(r))),
    artifacts: maybe(r, 0.3, () =>
      Array.from({ length: Math.floor(r() * 3) }, () => ({
        sha256: hex(r, 64),
        mime: nonEmpty(r),
        bytes: pick(r, [0, 48213, Number.MAX_SAFE_INTEGER]),
        role: maybe(r, 0.5, () => text(r)),
        name: maybe(r, 0.3, () => text(r)),
      })),
    ),
  };
  return h;
}

/** One random edit of the kind a forger, a careless tool or a bit flip would make. */
function mutate(r: () => number, t: string, h: Record<string, unknown>): string {
  const at = Math.floor(r() * t.length);
  const edits: Array<() => string> = [
    () => t.slice(0, at) + t.slice(at + 1),
    () => t.slice(0, at) + pick(r, [' ', '\n', '\t', ',', ':', '"', '\\', '{', '}', '[', ']', '0', '-', 'e', '.', '\u0000', '\ud800', '\udc00', 'é']) + t.slice(at),
    () => t.slice(0, at) + String.fromCharCode(t.charCodeAt(at) ^ (1 << Math.floor(r() * 7))) + t.slice(at + 1),
    () => t.slice(0, at),
    () => `${t} `,
    // Escapes JSON allows but JCS does not write.
    () => t.replace(/[a-z]/, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`),
    () => t.replace('/', '\\/'),
    () => t.replace('\\n', '\\u000a'),
    () => t.replace(/\\u00([0-9a-f]{2})/, (_m, x: string) => `\\u00${x.toUpperCase()}`),
    // Numbers in other spellings, and out of range.
    () => t.replace(/"seq":(\d+)/, (_m, d: string) => `"seq":${pick(r, [`${d}.0`, `${d}e0`, `0${d}`, `-${d}`, '-0', '9007199254740992', '1e400', '12345678901234567890', '1.5'])}`),
    () => t.replace('"v":1', pick(r, ['"v":2', '"v":1.0', '"v":"1"', '"v":01', '"v":true', '"v":null'])),
    // Members: moved, duplicated, unknown, null, of the wrong type.
    () => canonicalize({ ...h, [pick(r, Object.keys(h))]: pick(r, [null, 1, 'x', '', true, [], {}, 'a'.repeat(513), 'b'.repeat(4097)]) }),
    () => {
      const k = pick(
        r,
        Object.keys(h).filter((x) => h[x] !== undefined),
      );
      return t.replace('{', `{"${k}":${JSON.stringify(h[k])},`);
    },
    () => t.replace('{', `{"${pick(r, ['zzz', 'data', 'salt', 'hash', '__proto__', 'Agent'])}":1,`),
    () => {
      const keys = Object.keys(h)
        .filter((x) => h[x] !== undefined)
        .sort()
        .reverse();
      return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalize(h[k])}`).join(',')}}`;
    },
    () => t.replace(/"(kind|outcome|decision|mode)":"([a-z.]+)"/, (_m, k: string, v: string) => `"${k}":"${v}x"`),
    () => t.replace(/"([0-9a-f]{64})"/, (_m, x: string) => `"${pick(r, [x.toUpperCase(), x.slice(1), `${x}0`])}"`),
    () => t.replace(/"(\d{4}-\d\d-\d\dT[^"]+)"/, (_m, x: string) => `"${pick(r, [x.replace('Z', '+00:00'), x.replace('.', ','), x.slice(0, 19) + 'Z'])}"`),
  ];
  return pick(r, edits)();
}

describe('the fast header check', () => {
  it('knows exactly the fields of the zod EventHeader schema', () => {
    expect([...SCANNED_HEADER_KEYS].sort()).toEqual(Object.keys(EventHeader.shape).sort());
  });

  it('accepts every canonical, valid header and reads the same fields from it as zod', () => {
    const r = rng(1);
    for (let i = 0; i < 3000; i++) {
      const t = canonicalize(validHeader(r));
      const fields = slow(t);
      expect(fields, t).toBeDefined();
      expect(scanHeader(t), t).toEqual(fields);
    }
  });

  it('accepts a mutated header exactly when JSON.parse, canonical comparison and zod all accept it', () => {
    const r = rng(2);
    let refused = 0;
    for (let i = 0; i < 10_000; i++) {
      const h = validHeader(r);
      let t = canonicalize(h);
      const rounds = 1 + Math.floor(r() * 2);
      for (let k = 0; k < rounds; k++) t = mutate(r, t, h);
      const expected = slow(t);
      if (expected === undefined) refused++;
      expect(scanHeader(t), t).toEqual(expected);
    }
    // The mutations must mostly produce faults, or this test proves little.
    expect(refused).toBeGreaterThan(7_500);
  });

  it('refuses the spellings JSON.parse accepts but canonical form does not', () => {
    const base = canonicalize(validHeader(rng(3)));
    expect(scanHeader(base)).toBeDefined();
    for (const t of [` ${base}`, base.replace(',', ', '), base.replace('{', '{\n'), base.replace('"v":1', '"v":1.0'), base.replace('"v":1', '"v":1e0')]) {
      expect(scanHeader(t), t).toBeUndefined();
    }
    // Duplicate keys: JSON.parse keeps the last, canonical form has one.
    expect(scanHeader(base.replace('"v":1', '"v":1,"v":1'))).toBeUndefined();
  });
});
