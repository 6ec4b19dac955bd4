import { describe, expect, it } from 'vitest';
import { encodeJcs } from '../../src/core/canonical-json.js';
import { EventHeader, EventInput, PAYLOADS, canonicalize, chainEvent, headerObject, parseEventInput, prepareEvent, sha256, type EventKind } from '../../src/core/index.js';
import { ASK_ZOD, compileCheck } from '../../src/core/fast-check.js';
import { PLAIN_TEXT, fastHeader } from '../../src/core/fast-header.js';
import { rng } from '../helpers/random.js';
import { thrown } from '../helpers/errors.js';
import { mutate, validInputs } from './event-corpus.js';

/** What prepareEvent hands the checks: the input with `data` replaced by its plain copy. */
function withPlainData(input: Record<string, unknown>): Record<string, unknown> | undefined {
  const d = input['data'];
  if (typeof d !== 'object' || d === null) return undefined;
  try {
    return { ...input, data: encodeJcs(d).value };
  } catch {
    return undefined;
  }
}

/** zod's output without `data` and without members it set to undefined. */
function zodHeader(input: unknown): Record<string, unknown> | undefined {
  const r = EventInput.safeParse(input);
  if (!r.success) return undefined;
  const { data: _d, ...rest } = r.data as Record<string, unknown>;
  return JSON.parse(JSON.stringify(rest)) as Record<string, unknown>;
}

const hasLoneSurrogate = (v: unknown): boolean => JSON.stringify(v)?.match(/\\ud[89a-f]/i) !== null;

describe('the header check compiled from the zod schemas', () => {
  it('accepts every valid event of every kind, and copies exactly the header zod would return', () => {
    for (const input of validInputs()) {
      const candidate = withPlainData(input)!;
      const fast = fastHeader(candidate);
      expect(fast, JSON.stringify(input)).toBeDefined();
      expect(fast).toEqual(zodHeader(candidate));
    }
  });

  it('never accepts what zod refuses, and accepts what zod accepts unless a string in it has a surrogate, on 6,000 mutated events [R-HOSTILE]', () => {
    const r = rng(2026);
    const valid = validInputs();
    let zodAccepted = 0;
    let fastAccepted = 0;
    for (let i = 0; i < 6_000; i++) {
      const input = mutate(r, valid[i % valid.length]!);
      const candidate = withPlainData(input);
      if (candidate === undefined) continue;
      const fast = fastHeader(candidate);
      const zod = zodHeader(candidate);
      const label = JSON.stringify(input);
      if (fast !== undefined) {
        fastAccepted++;
        expect(zod, label).toBeDefined();
        expect(fast, label).toEqual(zod);
      }
      if (zod !== undefined) {
        zodAccepted++;
        // The one thing left to zod on purpose: lengths counted in code points, and lone surrogates
        // (zod takes them; the canonical encoder refuses them with a better message).
        if (!hasLoneSurrogate(candidate) && !JSON.stringify(candidate).includes('😀')) expect(fast, label).toBeDefined();
      }
    }
    // The corpus really exercises both sides.
    expect(zodAccepted).toBeGreaterThan(600);
    expect(zodAccepted).toBeLessThan(5_400);
    expect(fastAccepted).toBeGreaterThan(zodAccepted * 0.9);
  });

  it('checks every kind of payload as zod does, on valid and mutated payloads', () => {
    const r = rng(8);
    for (const input of validInputs()) {
      const kind = input['kind'] as EventKind;
      const check = compileCheck(PAYLOADS[kind], 'check');
      for (let i = 0; i < 200; i++) {
        const data = i === 0 ? (input['data'] as Record<string, unknown>) : (mutate(r, { data: input['data'] })['data'] as unknown);
        if (typeof data !== 'object' || data === null) continue;
        let plain: unknown;
        try {
          plain = encodeJcs(data).value;
        } catch {
          continue;
        }
        const zod = PAYLOADS[kind].safeParse(plain).success;
        const fast = check(plain) !== ASK_ZOD;
        if (fast) expect(zod, JSON.stringify(plain)).toBe(true);
        if (zod && !JSON.stringify(plain).includes('😀')) expect(fast, JSON.stringify(plain)).toBe(true);
      }
    }
  });

  it('writes unescaped only the header members whose schemas admit no character JSON escapes', () => {
    const valid: Record<string, string> = {
      id: 'a'.repeat(8) + '-aaaa-7aaa-8aaa-' + 'a'.repeat(12),
      ts: '2026-11-23T10:00:00.123Z',
      received_ts: '2026-11-23T10:00:00.123Z',
      parent: 'a'.repeat(8) + '-aaaa-7aaa-8aaa-' + 'a'.repeat(12),
      kind: 'note',
      outcome: 'success',
      payload_digest: 'a'.repeat(64),
    };
    for (const k of PLAIN_TEXT) {
      const schema = (EventHeader.shape as Record<string, { safeParse(v: unknown): { success: boolean } }>)[k]!;
      expect(schema.safeParse(valid[k]).success, k).toBe(true);
      for (const bad of ['"', '\\', '\n', '\u0000', '\u001f']) {
        for (const at of [0, 3, valid[k]!.length]) expect(schema.safeParse(valid[k]!.slice(0, at) + bad + valid[k]!.slice(at)).success, `${k} with ${JSON.stringify(bad)}`).toBe(false);
      }
    }
  });

  it('treats a header member inherited from a polluted Object.prototype as zod does', () => {
    const input = { agent: { id: 'a' }, kind: 'note', data: { text: 'x' } };
    for (const [name, value] of [
      ['user', 5],
      ['user', 'someone'],
      ['bogus', 'x'],
    ] as const) {
      Object.defineProperty(Object.prototype, name, { value, configurable: true, writable: true, enumerable: name === 'bogus' });
      try {
        const candidate = withPlainData(input)!;
        const fast = fastHeader(candidate);
        const zod = zodHeader(candidate);
        expect(fast === undefined || zod !== undefined).toBe(true);
      } finally {
        delete (Object.prototype as Record<string, unknown>)[name];
      }
    }
  });
});

describe('prepareEvent on the fast path and on zod', () => {
  it('writes exactly the canonical header and payload of every valid event, whichever path checked it', () => {
    const prev = sha256('prev');
    for (const input of validInputs()) {
      const ev = prepareEvent('stream-1', input);
      expect(ev.canonicalData).toBe(canonicalize(input['data']));
      const chained = chainEvent(ev, 3, prev);
      expect(chained.canonicalHeader).toBe(canonicalize(headerObject(ev, 3, prev)));
      expect(zodHeader({ ...input, data: ev.data })).toBeDefined();
    }
  });

  it('refuses a mutated event with the same error zod gives, and accepts it when zod does', () => {
    const r = rng(77);
    const valid = validInputs();
    for (let i = 0; i < 1_500; i++) {
      const input = mutate(r, valid[i % valid.length]!);
      const candidate = withPlainData(input);
      let error: unknown;
      let ev: ReturnType<typeof prepareEvent> | undefined;
      try {
        ev = prepareEvent('s', input);
      } catch (e) {
        error = e;
      }
      if (candidate === undefined) {
        expect(error, JSON.stringify(input)).toBeDefined();
        continue;
      }
      const zod = EventInput.safeParse(candidate);
      if (!zod.success) {
        expect(ev, JSON.stringify(input)).toBeUndefined();
        expect((error as { code?: string }).code).toBe('invalid_event');
        expect((error as Error).message).toBe(thrown(() => parseEventInput(candidate)).message);
      } else if (ev !== undefined) {
        expect(canonicalize(headerObject(ev, 0, sha256('p')))).toBe(chainEvent(ev, 0, sha256('p')).canonicalHeader);
      } else {
        // zod accepts it but JCS cannot carry it: a lone surrogate in a header string.
        expect((error as { code?: string }).code).toBe('not_serialisable');
      }
    }
  });
});
