import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { EVENT_DOMAIN, canonicalize, chainEvent, eventHash, headerObject, payloadDigest, prepareEvent, sha256 } from '../../src/core/index.js';
import { payloadDigestHex } from '../../src/core/chain.js';

const inputs: Array<Record<string, unknown>> = [
  { agent: { id: 'a' }, kind: 'note', data: { text: 'x' } },
  {
    agent: { id: 'support-bot', version: '1.4.2', credential: 'key-1' },
    user: 'customer-1',
    principal: { id: 'alice', kind: 'human' },
    delegation: { id: 'd1', scopes: ['refund'] },
    subject: 'p-9',
    recorder: { kind: 'sdk', version: '0.1.0' },
    source: { host: 'h', process: '1' },
    env: 'prod',
    tenant: 't',
    kind: 'tool.call',
    resource: 'billing',
    action: 'billing.refund',
    outcome: 'pending',
    received_ts: '2026-11-23T10:00:00.124Z',
    record_class: 'financial-record',
    data_categories: ['pii', 'payment'],
    policy: { decision: 'review', rule: 'r', mode: 'enforce' },
    approvals: [{ approver: 'alice', decision: 'approved', ts: '2026-11-23T10:00:00.000Z' }],
    artifacts: [{ sha256: 'a'.repeat(64), mime: 'image/png', bytes: 3, role: 'before' }],
    data: { tool: 'billing.refund', arguments: { amount: 650, é: ['€', null, true, 1.5e-7] } },
  },
];

describe('prepared header', () => {
  it.each(inputs.map((i) => [i['kind'] as string, i]))('splices prev and seq into exactly the canonical header of a %s event', (_k, input) => {
    for (const seq of [0, 1, 42, 2 ** 40]) {
      const prev = sha256(String(seq));
      const ev = prepareEvent('stream-1', input);
      const chained = chainEvent(ev, seq, prev);
      expect(chained.canonicalHeader).toBe(canonicalize(headerObject(ev, seq, prev)));
      expect(chained.hash.equals(eventHash(prev, chained.canonicalHeader))).toBe(true);
      expect(chained.hashHex).toBe(chained.hash.toString('hex'));
    }
  });
});

describe('payload digests and event hashes', () => {
  const reference = (...parts: Array<Uint8Array | string>): string => {
    const h = createHash('sha256');
    for (const p of parts) h.update(p);
    return h.digest('hex');
  };

  it('hash salt ‖ text and domain ‖ prev ‖ header exactly, for texts small and larger than the reused buffer, one after another', () => {
    const salt = sha256('salt');
    const prev = sha256('prev');
    // ASCII, multi-byte and astral text; 30,000 "€" is 90,000 UTF-8 bytes, beyond the 64 KiB scratch buffer.
    const texts = ['', '{"a":1}', 'é€😀'.repeat(50), '€'.repeat(30_000), 'x'.repeat(70_000), '{"b":2}'];
    for (const t of texts) {
      expect(payloadDigest(salt, t).toString('hex')).toBe(reference(salt, t));
      expect(payloadDigestHex(salt, t)).toBe(reference(salt, t));
      expect(eventHash(prev, t).toString('hex')).toBe(reference(EVENT_DOMAIN, prev, t));
    }
  });

  it('records the payload digest of the exact canonical payload in the header', () => {
    const ev = prepareEvent('s', { agent: { id: 'a' }, kind: 'note', data: { text: 'é', z: [1, 2], a: null } });
    expect(ev.canonicalData).toBe('{"a":null,"text":"é","z":[1,2]}');
    expect(ev.fields.payload_digest).toBe(reference(ev.salt, ev.canonicalData));
  });
});

describe('input timestamps', () => {
  const base = { agent: { id: 'a' }, kind: 'note', data: { text: 'x' } };
  it.each(['2026-11-01T10:05:60.000Z', '2026-11-01T24:00:00.000Z', '2026-11-31T10:00:00.000Z', '2026-02-29T10:00:00.000Z', '2026-13-01T00:00:00.000Z'])(
    'refuses ts %s, which has the shape of a time but is no calendar instant, in one sentence naming the field',
    (ts) => {
      for (const field of ['ts', 'received_ts']) {
        let err: unknown;
        try {
          prepareEvent('s', { ...base, [field]: ts });
        } catch (e) {
          err = e;
        }
        expect(err).toMatchObject({ code: 'invalid_event' });
        const message = (err as Error).message;
        expect(message).toBe(
          `Invalid event: ${field} ${JSON.stringify(ts)} is not a real calendar instant (a second is 00–59, an hour 00–23, the day must exist in its month); fix that field and record it again.`,
        );
      }
    },
  );

  it('accepts real instants, a leap day of a leap year and the last millisecond of a day among them', () => {
    for (const ts of ['2028-02-29T23:59:59.999Z', '2026-12-31T00:00:00.000Z', '0001-01-01T00:00:00.000Z']) {
      expect(prepareEvent('s', { ...base, ts, received_ts: ts }).fields.ts).toBe(ts);
    }
  });
});
