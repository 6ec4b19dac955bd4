import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { leafHash, verifyInclusion } from '../../src/core/index.js';
import { loadOtlpExport, loadOtlpFollow, type ExportableEvent } from '../../src/integrations/index.js';
import { SqliteLedger, toStored, type Ledger } from '../../src/store/index.js';
import { buildLedger, type BuiltLedger } from '../helpers/ledger.js';
import { tempDir } from '../helpers/tmp.js';
import { startReceiver, type Receiver } from './otlp-export-receiver.js';

const dir = tempDir('witness-otlp-export-');
let base: BuiltLedger;
let receiver: Receiver;

beforeAll(async () => {
  base = await buildLedger(dir);
  receiver = await startReceiver();
}, 60_000);
afterAll(() => receiver.close());

async function* pages(ledger: Ledger, from = 0): AsyncIterable<ExportableEvent[]> {
  for await (const page of ledger.scan(from, 4)) yield page.map((row) => toStored(row));
}

function open(file: string, readonly = true): SqliteLedger {
  return SqliteLedger.open({ path: file, create: false, readonly });
}

describe('OTLP export of a ledger', () => {
  for (const protocol of ['http/protobuf', 'http/json'] as const) {
    it(`[R-OTLP-EXPORT] sends every event as one span over ${protocol}, with the GenAI attributes and the ledger's position and hash`, async () => {
      const { OtlpSender, SpanMapper, sendEvents } = await loadOtlpExport();
      receiver.requests.length = 0;
      receiver.spans.length = 0;
      const ledger = open(base.file);
      try {
        const cp = (await ledger.latestCheckpoint())!;
        const sender = new OtlpSender({ url: receiver.url, protocol, headers: { authorization: 'Bearer t0k' } });
        const sent = await sendEvents(pages(ledger), new SpanMapper({ origin: ledger.info.origin, checkpointSize: cp.size }), sender);
        await sender.close();
        expect(sent).toBe(base.size);
        expect(receiver.requests.every((q) => q.path === '/v1/traces' && q.headers.authorization === 'Bearer t0k')).toBe(true);
        expect(receiver.requests[0]!.contentType).toBe(protocol === 'http/json' ? 'application/json' : 'application/x-protobuf');
        const spans = receiver.spans;
        expect(spans.length).toBe(base.size);

        const events: ExportableEvent[] = [];
        for await (const p of pages(ledger)) events.push(...p);
        for (const ev of events) {
          const s = spans.find((x) => x.attributes['witness.ledger.position'] === ev.pos)!;
          expect(s.attributes['witness.event.hash']).toBe(ev.hash);
          expect(s.attributes['witness.event.id']).toBe(ev.id);
          expect(s.attributes['gen_ai.conversation.id']).toBe(ev.stream);
          expect(s.attributes['gen_ai.agent.id']).toBe(ev.agent.id);
          expect(s.resource['service.name']).toBe(ev.agent.id);
          expect(s.attributes['witness.checkpoint.size']).toBe(ev.pos < cp.size ? cp.size : undefined);
          if (ev.parent !== undefined) expect(s.parentSpanId).toBe(spans.find((x) => x.attributes['witness.event.id'] === ev.parent)!.spanId);
        }
        // One trace per session: every span of session a shares its trace id, session b has another.
        const traceOf = (stream: string) => new Set(spans.filter((s) => s.attributes['witness.event.stream'] === stream).map((s) => s.traceId));
        expect(traceOf(base.sessions.a).size).toBe(1);
        expect([...traceOf(base.sessions.a)][0]).not.toBe([...traceOf(base.sessions.b)][0]);

        const llm = spans.find((s) => s.attributes['witness.event.kind'] === 'llm.call')!;
        expect(llm).toMatchObject({ name: 'chat claude', kind: 3 });
        expect(llm.attributes).toMatchObject({ 'gen_ai.operation.name': 'chat', 'gen_ai.request.model': 'claude' });
        expect(JSON.parse(llm.attributes['gen_ai.input.messages'] as string)).toEqual([{ role: 'user', content: 'I was charged twice' }]);
        const call = spans.find((s) => s.attributes['witness.event.kind'] === 'tool.call' && s.attributes['gen_ai.tool.name'] === 'billing.refund')!;
        expect(call.name).toBe('execute_tool billing.refund');
        expect(call.attributes['gen_ai.operation.name']).toBe('execute_tool');
        expect(JSON.parse(call.attributes['gen_ai.tool.call.arguments'] as string)).toEqual({ order: 'A-1042', amount: 50 });
        const result = spans.find((s) => s.attributes['witness.event.kind'] === 'tool.result' && s.attributes['gen_ai.tool.name'] === 'billing.refund')!;
        expect(JSON.parse(result.attributes['gen_ai.tool.call.result'] as string)).toMatchObject({ refund_id: 'R-1' });
      } finally {
        await ledger.close();
      }
    });
  }

  it("[R-OTLP-EXPORT] a span's position and hash check back against the ledger's signed checkpoint with an inclusion proof, and a wrong hash does not", async () => {
    const ledger = open(base.file);
    try {
      const cp = (await ledger.latestCheckpoint())!;
      const llm = receiver.spans.find((s) => s.attributes['witness.event.kind'] === 'llm.call')!;
      const pos = llm.attributes['witness.ledger.position'] as number;
      const hash = Buffer.from(llm.attributes['witness.event.hash'] as string, 'hex');
      expect(llm.attributes['witness.checkpoint.size']).toBe(cp.size);
      const proof = await ledger.inclusionProof(pos, cp.size);
      expect(verifyInclusion(leafHash(hash), pos, cp.size, proof, cp.root)).toEqual({ ok: true });
      const forged = Buffer.from(hash);
      forged[0]! ^= 1;
      expect(verifyInclusion(leafHash(forged), pos, cp.size, proof, cp.root).ok).toBe(false);
    } finally {
      await ledger.close();
    }
  });

  it('withholds payloads when asked: no messages, arguments or results, the position and hash still there', async () => {
    const { OtlpSender, SpanMapper, sendEvents } = await loadOtlpExport();
    receiver.spans.length = 0;
    const ledger = open(base.file);
    try {
      const sender = new OtlpSender({ url: receiver.url, protocol: 'http/json' });
      await sendEvents(pages(ledger), new SpanMapper({ origin: ledger.info.origin, checkpointSize: 0, withholdData: true }), sender);
      await sender.close();
      const text = JSON.stringify(receiver.spans);
      expect(text).not.toContain('charged twice');
      expect(text).not.toContain('A-1042');
      expect(receiver.spans.every((s) => s.attributes['witness.data'] === 'withheld' && typeof s.attributes['witness.event.hash'] === 'string')).toBe(true);
      expect(receiver.spans.find((s) => s.attributes['witness.event.kind'] === 'llm.call')!.attributes['gen_ai.request.model']).toBe('claude');
    } finally {
      await ledger.close();
    }
  });

  it('retries a 429 and a 503 with backoff, then delivers the batch once', async () => {
    const { OtlpSender, SpanMapper, sendEvents } = await loadOtlpExport();
    receiver.requests.length = 0;
    receiver.spans.length = 0;
    receiver.answers = [429, 503];
    const ledger = open(base.file);
    try {
      const sender = new OtlpSender({ url: receiver.url, protocol: 'http/json', timeoutMillis: 20_000 });
      await sendEvents(pages(ledger), new SpanMapper({ origin: ledger.info.origin, checkpointSize: 0 }), sender);
      await sender.close();
      expect(receiver.requests.map((q) => q.status)).toEqual([429, 503, 200]);
      expect(receiver.spans.length).toBe(base.size);
    } finally {
      await ledger.close();
    }
  }, 30_000);

  it('says in one sentence that an endpoint is down, or that it refused the spans', async () => {
    const { OtlpSender, SpanMapper, sendEvents, OtlpExportError } = await loadOtlpExport();
    const ledger = open(base.file);
    try {
      const down = await startReceiver();
      await down.close();
      const sender = new OtlpSender({ url: down.url, timeoutMillis: 1500 });
      const e = await sendEvents(pages(ledger), new SpanMapper({ origin: ledger.info.origin, checkpointSize: 0 }), sender).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(OtlpExportError);
      expect((e as InstanceType<typeof OtlpExportError>).kind).toBe('unreachable');
      expect((e as Error).message).toMatch(
        /^The OTLP endpoint http:\/\/127\.0\.0\.1:\d+\/v1\/traces could not be reached \(ECONNREFUSED\); check that the collector is running at that address, then export again\.$/,
      );

      receiver.answers = [400];
      const refused = new OtlpSender({ url: receiver.url });
      const r = await sendEvents(pages(ledger), new SpanMapper({ origin: ledger.info.origin, checkpointSize: 0 }), refused).catch((x: unknown) => x);
      expect((r as Error).message).toMatch(/^The OTLP endpoint .* refused the spans with HTTP 400; check the URL, the protocol and the --otlp-header credentials\.$/);
    } finally {
      await ledger.close();
    }
  }, 20_000);
});

describe('continuous OTLP export', () => {
  it('sends what was committed since the saved position, and after a restart neither skips nor repeats', async () => {
    const { OtlpFollower } = await loadOtlpFollow();
    const copy = path.join(dir, 'follow.db');
    fs.copyFileSync(base.file, copy);
    const state = path.join(dir, 'follow.otlp-state.json');
    receiver.spans.length = 0;
    const writer = SqliteLedger.open({ path: copy, create: false });
    try {
      const source = {
        origin: writer.info.origin,
        read: (from: number) => pages(writer, from),
        checkpointSize: async () => (await writer.latestCheckpoint())?.size ?? 0,
      };
      const first = new OtlpFollower(source, { url: receiver.url, protocol: 'http/json', stateFile: state, intervalMs: 50 });
      expect(await first.pass()).toBe(base.size);
      await writer.append([{ stream: 'late', kind: 'note', agent: { id: 'late-bot' }, data: { text: 'one' } }]);
      expect(await first.pass()).toBe(1);
      await first.stop();
      expect(JSON.parse(fs.readFileSync(state, 'utf8'))).toMatchObject({ next: base.size + 1, origin: writer.info.origin });

      await writer.append([{ stream: 'late', kind: 'note', agent: { id: 'late-bot' }, data: { text: 'two' } }]);
      const second = new OtlpFollower(source, { url: receiver.url, protocol: 'http/json', stateFile: state, intervalMs: 50 });
      expect(second.position).toBe(base.size + 1);
      second.start();
      await expect.poll(() => receiver.spans.length, { timeout: 5000 }).toBe(base.size + 2);
      await second.stop();
      // A request groups its spans by resource (agent), so they arrive out of order within it; each exactly once.
      const positions = receiver.spans.map((s) => s.attributes['witness.ledger.position'] as number).sort((x, y) => x - y);
      expect(positions).toEqual([...Array(base.size + 2).keys()]);

      fs.writeFileSync(state, JSON.stringify({ origin: 'another-ledger', next: 3 }));
      expect(() => new OtlpFollower(source, { url: receiver.url, stateFile: state, intervalMs: 50 })).toThrow(/belongs to the ledger "another-ledger"/);
    } finally {
      await writer.close();
    }
  });
});
