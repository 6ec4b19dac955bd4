import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { WitnessError, isWitnessError, openWitness, type ErrorCode, type Witness } from '../../src/index.js';
import { SqliteLedger, verifyLedger, type AppendRequest } from '../../src/store/index.js';
import { tempDb, tempDir } from '../helpers/tmp.js';
import { driverOf } from '../helpers/ledger.js';

const dir = tempDir('witness-bad-input-');
const agent = { id: 'bad-input-bot', version: '0.0.1' };

/** One sentence a person can act on: no line breaks, no second sentence, ends with a full stop. */
function expectOneSentence(message: string): void {
  expect(message.length).toBeGreaterThan(10);
  expect(message).not.toMatch(/\n/);
  expect(message).toMatch(/\.$/);
  expect(message).not.toMatch(/[.!?]\s+[A-Z]/);
}

async function caught(fn: () => unknown): Promise<unknown> {
  try {
    await fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected the call to throw');
}

/** Expects a WitnessError with `code` whose one-sentence message names `field`. */
async function expectRefused(fn: () => unknown, code: ErrorCode, field: string): Promise<WitnessError> {
  const e = await caught(fn);
  if (!isWitnessError(e)) throw new Error(`expected a WitnessError, got ${String(e)}`);
  expect({ code: e.code, message: e.message }).toMatchObject({ code, message: expect.stringContaining(field) });
  expectOneSentence(e.message);
  return e;
}

function countEvents(w: Witness | SqliteLedger): number {
  const l = w instanceof SqliteLedger ? w : driverOf(w);
  return l.database.prepare('SELECT count(*) FROM events').pluck().get() as number;
}

const req = (over: Record<string, unknown>): AppendRequest => ({ stream: 'bad-input', kind: 'note', agent, data: { text: 'fine' }, ...over }) as AppendRequest;

describe('ledger.append on a SqliteLedger refuses invalid events', () => {
  it('[R-WHO] names agent.id when the agent has no id, agent when there is none, and stores nothing', async () => {
    const ledger = SqliteLedger.open({ path: tempDb(dir) });
    try {
      const e = await expectRefused(() => ledger.append([req({ agent: {} })]), 'invalid_event', 'agent.id');
      expect(e.details?.['path']).toBe('agent.id');
      await expectRefused(() => ledger.append([req({ agent: undefined })]), 'invalid_event', 'agent');
      await expectRefused(() => ledger.append([req({ agent: { id: '' } })]), 'invalid_event', 'agent.id');
      expect(countEvents(ledger)).toBe(0);
    } finally {
      await ledger.close();
    }
  });

  it('names outcome when it is not one of success, error, denied or pending', async () => {
    const ledger = SqliteLedger.open({ path: tempDb(dir) });
    try {
      const e = await expectRefused(() => ledger.append([req({ outcome: 'maybe' })]), 'invalid_event', 'outcome');
      expect(e.message).toMatch(/success/);
      expect(e.details?.['path']).toBe('outcome');
      expect(countEvents(ledger)).toBe(0);
    } finally {
      await ledger.close();
    }
  });

  it('names data.model for an llm.call without a model, and refuses the whole batch', async () => {
    const ledger = SqliteLedger.open({ path: tempDb(dir) });
    try {
      await expectRefused(() => ledger.append([req({}), req({ kind: 'llm.call', data: { input: [{ role: 'user', content: 'hi' }] } }), req({})]), 'invalid_event', 'data.model');
      expect(countEvents(ledger)).toBe(0);
      await expectRefused(() => ledger.append([req({ unknown_header: 1 })]), 'invalid_event', 'unknown_header');
      await expectRefused(() => ledger.append([req({ stream: '' })]), 'invalid_event', 'stream');
      await expectRefused(() => ledger.append([req({ parent: 'not-a-uuid' })]), 'invalid_event', 'parent');
      await expectRefused(() => ledger.append([req({ ts: 'yesterday' })]), 'invalid_event', 'ts');
      expect(countEvents(ledger)).toBe(0);
      // After all those refusals the ledger is untouched and still takes good events.
      const receipts = await ledger.append([req({}), req({})]);
      expect(receipts.map((r) => r.seq)).toEqual([0, 1]);
      expect((await verifyLedger(ledger)).ok).toBe(true);
    } finally {
      await ledger.close();
    }
  });

  it('names kind, in one sentence, when it is not a known event kind', async () => {
    const ledger = SqliteLedger.open({ path: tempDb(dir) });
    try {
      const e = await expectRefused(() => ledger.append([req({ kind: 'no.such.kind' })]), 'invalid_event', 'kind');
      expect(e.details?.['path']).toBe('kind');
      expect(countEvents(ledger)).toBe(0);
    } finally {
      await ledger.close();
    }
  });

  it('[R-PAYLOAD-LIMIT] refuses a payload over maxPayloadBytes with payload_too_large and stores none of it', async () => {
    const ledger = SqliteLedger.open({ path: tempDb(dir) });
    try {
      const big = 'x'.repeat(1024 * 1024);
      const e = await expectRefused(() => ledger.append([req({ data: { text: big } })]), 'payload_too_large', '1048576');
      expect(e.details).toMatchObject({ limit: 1024 * 1024, kind: 'note' });
      expect(countEvents(ledger)).toBe(0);
      // Just under the default limit is accepted whole, not truncated.
      const fits = 'y'.repeat(1024 * 1024 - 100);
      const [r] = await ledger.append([req({ data: { text: fits } })]);
      expect((await ledger.getEvent(r!.id))?.data?.['text']).toBe(fits);
    } finally {
      await ledger.close();
    }
  });

  it('names the path of a cycle, a BigInt and a function with not_serialisable', async () => {
    const ledger = SqliteLedger.open({ path: tempDb(dir) });
    try {
      const cyclic: Record<string, unknown> = { a: 1 };
      cyclic['self'] = cyclic;
      const e1 = await expectRefused(() => ledger.append([req({ data: { text: 'x', extra: cyclic } })]), 'not_serialisable', 'data.extra.self');
      expect(e1.message).toMatch(/circular/i);
      const e2 = await expectRefused(() => ledger.append([req({ data: { text: 'x', n: { big: 10n } } })]), 'not_serialisable', 'data.n.big');
      expect(e2.message).toMatch(/BigInt/);
      const e3 = await expectRefused(() => ledger.append([req({ data: { text: 'x', f: [1, () => 1] } })]), 'not_serialisable', 'data.f[1]');
      expect(e3.message).toMatch(/Function/);
      expect(e3.details?.['path']).toBe('data.f[1]');
      expect(countEvents(ledger)).toBe(0);
    } finally {
      await ledger.close();
    }
  });
});

describe('session.record in strict mode', () => {
  async function strictSession(opts: Record<string, unknown> = {}) {
    const errors: WitnessError[] = [];
    const w = await openWitness({ store: `sqlite:${tempDb(dir)}`, strict: true, onError: (e) => errors.push(e), ...opts });
    const s = await w.session({ agent });
    return { w, s, errors };
  }

  it('rejects invalid fields, naming the field, and records nothing for them', async () => {
    const { w, s } = await strictSession();
    try {
      await expectRefused(() => s.record('llm.call', { input: [] } as never), 'invalid_event', 'data.model');
      await expectRefused(() => s.record('note', { text: 'x' }, { outcome: 'bad' as never }), 'invalid_event', 'outcome');
      await expectRefused(() => s.record('tool.result', { tool: 'x' } as never), 'invalid_event', 'data.is_error');
      await w.flush();
      expect(countEvents(w)).toBe(1); // session.start only
    } finally {
      await w.close();
    }
  });

  it('rejects a note over the configured limit with payload_too_large, without truncating or storing it', async () => {
    const { w, s } = await strictSession({ maxPayloadBytes: 4096 });
    try {
      const marker = 'TOO-BIG-MARKER-';
      const e = await expectRefused(() => s.note(marker + 'z'.repeat(5000)), 'payload_too_large', '4096');
      expect(e.details?.['bytes']).toBeGreaterThan(4096);
      await w.flush();
      expect(countEvents(w)).toBe(1);
      const hits = driverOf(w).database.prepare(`SELECT count(*) FROM events WHERE data LIKE '%' || ? || '%'`).pluck().get(marker);
      expect(hits).toBe(0);
      const ok = await s.note('z'.repeat(3000));
      expect((await driverOf(w).getEvent(ok!.id))?.data?.['text']).toHaveLength(3000);
    } finally {
      await w.close();
    }
  });

  it('rejects a note over the default 1 MiB limit with payload_too_large', async () => {
    const { w, s } = await strictSession();
    try {
      await expectRefused(() => s.note('q'.repeat(1024 * 1024 + 1)), 'payload_too_large', '1048576');
      await w.flush();
      expect(countEvents(w)).toBe(1);
    } finally {
      await w.close();
    }
  });

  it('rejects a cycle, a BigInt and a function with not_serialisable naming where they are', async () => {
    const { w, s } = await strictSession();
    try {
      const cyclic: Record<string, unknown> = { a: 1 };
      cyclic['self'] = cyclic;
      const e1 = await expectRefused(() => s.record('note', { text: 'x', extra: cyclic }), 'not_serialisable', 'data.extra.self');
      expect(e1.message).toMatch(/circular/i);
      await expectRefused(() => s.record('note', { text: 'x', count: 5n }), 'not_serialisable', 'data.count');
      await expectRefused(() => s.tool('math.add', { a: 1, b: 2n }, () => 3), 'not_serialisable', 'data.arguments.b');
      await expectRefused(() => s.record('note', { text: 'x', cb: { fn: () => 1 } }), 'not_serialisable', 'data.cb.fn');
      await w.flush();
      expect(countEvents(w)).toBe(1);
    } finally {
      await w.close();
    }
  });

  it('names the cycle where the caller made it, not one level deeper', async () => {
    const { w, s } = await strictSession();
    try {
      const cyclic: Record<string, unknown> = { a: 1 };
      cyclic['self'] = cyclic;
      const e = await expectRefused(() => s.record('note', { text: 'x', extra: cyclic }), 'not_serialisable', 'data.extra.self');
      // The back-reference is data.extra.self -> data.extra, exactly as ledger.append reports it.
      expect(e.details?.['path']).toBe('data.extra.self');
    } finally {
      await w.close();
    }
  });
});

describe('session.record in non-strict mode', () => {
  it('[R-NO-THROW] does not throw into the caller, reports to onError and records an error event from the recorder', async () => {
    const errors: WitnessError[] = [];
    const w: Witness = await openWitness({ store: `sqlite:${tempDb(dir)}`, onError: (e) => errors.push(e) });
    try {
      const s = await w.session({ agent });
      const cyclic: Record<string, unknown> = {};
      cyclic['me'] = cyclic;

      await expect(s.record('llm.call', { input: [] } as never)).resolves.toBeUndefined();
      await expect(s.note('n'.repeat(1024 * 1024 + 10))).resolves.toBeUndefined();
      await expect(s.record('note', { text: 'x', loop: cyclic })).resolves.toBeUndefined();
      await expect(s.record('note', { text: 'x' }, { outcome: 'sideways' as never })).resolves.toBeUndefined();
      const good = await s.note('still recording');
      expect(good).toBeDefined();
      await w.flush();

      expect(errors.map((e) => e.code)).toEqual(['invalid_event', 'payload_too_large', 'not_serialisable', 'invalid_event']);
      for (const e of errors) {
        expect(e).toBeInstanceOf(WitnessError);
        expectOneSentence(e.message);
      }
      expect(errors[0]!.message).toContain('data.model');
      expect(errors[3]!.message).toContain('outcome');

      const events = await driverOf(w).readStream(s.id);
      const recorderErrors = events.filter((e) => e.kind === 'error');
      expect(recorderErrors).toHaveLength(4);
      for (const ev of recorderErrors) {
        expect(ev.data?.['source']).toBe('recorder');
        expect(ev.outcome).toBe('error');
        expect(ev.agent).toEqual(agent);
      }
      expect(recorderErrors.map((e) => e.data?.['code'])).toEqual(['invalid_event', 'payload_too_large', 'not_serialisable', 'invalid_event']);
      expect(String(recorderErrors[0]!.data?.['message'])).toMatch(/llm\.call record was rejected.*data\.model/);
      // Nothing of the refused payload was stored, only the notice that it was refused.
      expect(driverOf(w).database.prepare(`SELECT count(*) FROM events WHERE data LIKE '%nnnnnnnnnn%'`).pluck().get()).toBe(0);
      expect(events.map((e) => e.kind)).toContain('note');

      await s.end();
      const report = await verifyLedger(driverOf(w));
      expect(report.failures).toEqual([]);
      expect(report.ok).toBe(true);
    } finally {
      await w.close();
    }
  });

  it('keeps the agent running when onError itself throws', async () => {
    const w = await openWitness({
      store: `sqlite:${tempDb(dir)}`,
      onError: () => {
        throw new Error('a broken alert hook');
      },
    });
    try {
      const s = await w.session({ agent });
      await expect(s.record('llm.call', { input: [] } as never)).resolves.toBeUndefined();
      await w.flush();
      expect((await driverOf(w).readStream(s.id)).map((e) => e.kind)).toEqual(['session.start', 'error']);
    } finally {
      await w.close();
    }
  });
});

describe('tool calls', () => {
  it('[R-TOOL-LINK] rethrows the tool function error unchanged and records a tool.result with is_error', async () => {
    const w = await openWitness({ store: `sqlite:${tempDb(dir)}`, strict: true });
    try {
      const s = await w.session({ agent });
      class PaymentError extends Error {
        override name = 'PaymentError';
        code = 'card_declined';
      }
      const boom = new PaymentError('the card was declined');
      const thrown = await caught(() =>
        s.tool('billing.charge', { amount: 42 }, () => {
          throw boom;
        }),
      );
      expect(thrown).toBe(boom);
      const asyncBoom = new TypeError('async failure');
      await expect(s.tool('billing.refund', { amount: 1 }, async () => Promise.reject(asyncBoom))).rejects.toBe(asyncBoom);
      const nonError = await caught(() =>
        s.tool('billing.void', {}, () => {
          throw 'a bare string';
        }),
      );
      expect(nonError).toBe('a bare string');

      const events = await driverOf(w).readStream(s.id);
      const results = events.filter((e) => e.kind === 'tool.result');
      expect(results).toHaveLength(3);
      const [charge, refund, voided] = results;
      const chargeCall = events.find((e) => e.kind === 'tool.call' && e.data?.['tool'] === 'billing.charge');
      expect(chargeCall?.outcome).toBe('pending');
      expect(charge).toMatchObject({
        outcome: 'error',
        parent: chargeCall!.id,
        resource: 'billing',
        action: 'billing.charge',
        data: { tool: 'billing.charge', is_error: true, error: { message: 'the card was declined', name: 'PaymentError', code: 'card_declined' } },
      });
      expect(refund?.data).toMatchObject({ is_error: true, error: { message: 'async failure', name: 'TypeError' } });
      expect(voided?.data).toMatchObject({ is_error: true, error: { message: 'a bare string' } });
      expect((await verifyLedger(driverOf(w))).ok).toBe(true);
    } finally {
      await w.close();
    }
  });

  it('stores a tool output larger than spillBytes as an artifact referenced by its sha256, and the bytes round-trip', async () => {
    const w = await openWitness({ store: `sqlite:${tempDb(dir)}`, strict: true, spillBytes: 64 * 1024 });
    try {
      const s = await w.session({ agent });
      const rows = Array.from({ length: 3000 }, (_, i) => ({ id: i, name: `customer ${i}`, note: 'ü'.repeat(20) }));
      const output = { rows, total: rows.length };
      const returned = await s.tool('crm.export', { all: true }, () => output);
      expect(returned).toBe(output);

      const result = (await driverOf(w).readStream(s.id)).find((e) => e.kind === 'tool.result')!;
      const ref = result.data?.['output'] as { $artifact: string; bytes: number; mime: string };
      expect(ref.$artifact).toMatch(/^[0-9a-f]{64}$/);
      expect(ref.mime).toBe('application/json');
      expect(result.artifacts).toEqual([{ sha256: ref.$artifact, mime: 'application/json', bytes: ref.bytes, role: 'tool.result.output' }]);

      const bytes = await driverOf(w).readArtifact(ref.$artifact);
      expect(bytes).toBeDefined();
      expect(bytes!.byteLength).toBe(ref.bytes);
      expect(ref.bytes).toBeGreaterThan(64 * 1024);
      expect(createHash('sha256').update(bytes!).digest('hex')).toBe(ref.$artifact);
      expect(JSON.parse(bytes!.toString('utf8'))).toEqual(output);
      // The row itself stays small: the output is referenced, not inlined or truncated.
      expect(Buffer.byteLength(JSON.stringify(result.data))).toBeLessThan(1024);

      await s.end();
      const report = await verifyLedger(driverOf(w));
      expect(report.failures).toEqual([]);
      expect(report.ok).toBe(true);
      expect(report.artifacts).toBe(1);
    } finally {
      await w.close();
    }
  });

  it('spills a tool output larger than maxPayloadBytes into an artifact instead of refusing it', async () => {
    const w = await openWitness({ store: `sqlite:${tempDb(dir)}`, strict: true });
    try {
      const s = await w.session({ agent });
      const output = 'b'.repeat(2 * 1024 * 1024);
      await s.tool('files.read', { path: '/big' }, () => output);
      const result = (await driverOf(w).readStream(s.id)).find((e) => e.kind === 'tool.result')!;
      const ref = result.data?.['output'] as { $artifact: string; bytes: number };
      const bytes = await driverOf(w).readArtifact(ref.$artifact);
      expect(JSON.parse(bytes!.toString('utf8'))).toBe(output);
      expect((await verifyLedger(driverOf(w))).ok).toBe(true);
    } finally {
      await w.close();
    }
  });
});
