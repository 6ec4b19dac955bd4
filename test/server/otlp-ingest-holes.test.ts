import fs from 'node:fs';
import { gzipSync } from 'node:zlib';
import { SpanKind } from '@opentelemetry/api';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { InMemorySpanExporter, NodeTracerProvider, SimpleSpanProcessor, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spanEventId } from '../../src/integrations/index.js';
import { createKey, listen, type RunningServer } from '../../src/server/index.js';
import { otlpIdSecret } from '../../src/server/otlp-secret.js';
import { verifyLedger } from '../../src/store/index.js';
import { tempDir } from '../helpers/tmp.js';
import { AGENT_ID, serverFixture, type ServerFixture } from './fixture.js';

/**
 * The OTLP ingest holes of the issue 16 review (/tmp/review-16/findings.md H1, H2, M1, L3), each
 * through the real server (app.request, or a listening server and the real protobuf exporter).
 */

const T = '5b8efff798038103d269b633813fc60c';
const S = 'eee19b7ec3c1b174';
const str = (key: string, value: string) => ({ key, value: { stringValue: value } });
const chatSpan = (traceId: string, spanId: string, attributes: unknown[] = []) => ({ traceId, spanId, name: 'chat', attributes: [str('gen_ai.operation.name', 'chat'), ...attributes] });
const one = (spans: unknown[], resource: unknown[] = []) => ({ resourceSpans: [{ resource: { attributes: resource }, scopeSpans: [{ spans }] }] });

function send(exporter: SpanExporter, spans: ReadableSpan[]): Promise<{ code: number; error?: Error }> {
  return new Promise((resolve) => exporter.export(spans, resolve));
}

describe('OTLP ingest: span ids cannot be claimed by another caller (H1)', () => {
  let f: ServerFixture;
  let mallory: string;
  beforeAll(async () => {
    f = await serverFixture(tempDir('witness-otlp-h1-'));
    mallory = (await createKey(f.ledger, { role: 'agent', agent: 'mallory', name: 'mallory' }, { who: 'test', recorder: 'cli' })).key;
  });
  afterAll(() => f.close());

  it("derives a span's event id under the server's per-ledger secret, so an id computed from the agent, trace and span ids alone is not it", async () => {
    const secret = otlpIdSecret(f.ledger.info);
    const other = Buffer.alloc(32, 7);
    const id = spanEventId({ agent: AGENT_ID, secret }, T, S);
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(spanEventId({ agent: AGENT_ID, secret: other }, T, S)).not.toBe(id);
    // The same ledger's secret again (a restart) gives the same id, so a retry is still one span.
    expect(spanEventId({ agent: AGENT_ID, secret: otlpIdSecret(f.ledger.info) }, T, S)).toBe(id);
  });

  it("stores the victim's span although another agent wrote an event first under the id the old, unkeyed derivation gave", async () => {
    const { createHash } = await import('node:crypto');
    const h = createHash('sha256').update(['witness/otlp/v1', AGENT_ID, T, S, 'span'].join('\0')).digest();
    h[6] = (h[6]! & 0x0f) | 0x80;
    h[8] = (h[8]! & 0x3f) | 0x80;
    const x = h.subarray(0, 16).toString('hex');
    const unkeyed = `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
    const pre = await f.call('POST', '/v1/events', { key: mallory, body: { events: [{ id: unkeyed, stream: 'mallory-own', kind: 'note', data: { text: 'squatting' } }] } });
    expect(pre.status).toBe(201);
    const res = await f.call('POST', '/v1/traces', { key: f.keys.agent, body: one([chatSpan(T, S)]) });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({});
    const stream = await f.ledger.readStream(`otlp:${AGENT_ID}:${T}`);
    expect(stream.map((e) => [e.kind, e.agent.id])).toEqual([['llm.call', AGENT_ID]]);
  });

  it("refuses a span whose id is held by an event that is not that agent's own OTLP span, as a partial success that names nothing of the other event", async () => {
    const T2 = '6b8efff798038103d269b633813fc60c';
    const secret = otlpIdSecret(f.ledger.info);
    const taken = spanEventId({ agent: AGENT_ID, secret }, T2, S);
    // Whoever can append to the database directly (a recorder host on PostgreSQL) holds the id.
    await f.ledger.append([{ id: taken, stream: 'mallory-own', kind: 'note', agent: { id: 'mallory' }, data: { text: 'mallory-secret-note' } }]);
    const res = await f.call('POST', '/v1/traces', { key: f.keys.agent, body: one([chatSpan(T2, S), chatSpan(T2, '1ee19b7ec3c1b174')]) });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { partialSuccess?: { rejectedSpans?: string; errorMessage?: string } };
    expect(body.partialSuccess?.rejectedSpans).toBe('1');
    expect(body.partialSuccess?.errorMessage).toContain(S);
    expect(body.partialSuccess?.errorMessage).not.toMatch(/mallory|note|already exists/);
    // The other span of the request is written; the held id still belongs to the event that held it.
    const stream = await f.ledger.readStream(`otlp:${AGENT_ID}:${T2}`);
    expect(stream.filter((e) => e.kind === 'llm.call')).toHaveLength(1);
    expect((await f.ledger.getEvent(taken))?.agent.id).toBe('mallory');
    // Sent again, it is refused again, never answered as stored.
    const again = (await (await f.call('POST', '/v1/traces', { key: f.keys.agent, body: one([chatSpan(T2, S)]) })).json()) as { partialSuccess?: { rejectedSpans?: string } };
    expect(again.partialSuccess?.rejectedSpans).toBe('1');
    expect((await verifyLedger(f.ledger)).ok).toBe(true);
  });
});

describe('OTLP ingest: resource and scope are stored once per request, and a request is bounded after mapping (H2)', () => {
  let f: ServerFixture;
  let server: RunningServer;
  beforeAll(async () => {
    f = await serverFixture(tempDir('witness-otlp-h2-'));
    server = await listen({ ledger: f.ledger, port: 0, sealEveryMs: 0 });
  });
  afterAll(async () => {
    await server.close();
    await f.close();
  });

  it('a small gzip body with one 512 KiB resource attribute and 300 spans writes the resource once, as an artifact each span event names', async () => {
    const big = 'x'.repeat(512 * 1024);
    const spans = Array.from({ length: 300 }, (_, i) => ({ traceId: T, spanId: (i + 1).toString(16).padStart(16, '0'), name: 's' }));
    const body = gzipSync(JSON.stringify(one(spans, [str('blob', big), str('service.name', 'svc')])));
    const file = f.built.file;
    const sizeOf = () => ['', '-wal'].map((s) => (fs.existsSync(file + s) ? fs.statSync(file + s).size : 0)).reduce((a, b) => a + b, 0);
    const before = sizeOf();
    const res = await f.app.request('/v1/traces', { method: 'POST', headers: { authorization: `Bearer ${f.keys.agent}`, 'content-type': 'application/json', 'content-encoding': 'gzip' }, body });
    expect(res.status).toBe(200);
    const events = await f.ledger.readStream(`otlp:${AGENT_ID}:${T}`);
    expect(events).toHaveLength(300);
    // 300 copies would be 150 MiB; once is half a MiB (plus the events themselves and the WAL's pages).
    expect(sizeOf() - before).toBeLessThan(8 * 1024 * 1024);
    const ref = (events[0]!.data as { otlp: { resource: unknown } }).otlp.resource as { sha256: string; bytes: number };
    expect(ref).toMatchObject({ sha256: expect.stringMatching(/^[0-9a-f]{64}$/) as string, bytes: expect.any(Number) as number });
    expect(events.every((e) => e.artifacts?.some((a) => a.sha256 === ref.sha256 && a.role === 'otlp.resource'))).toBe(true);
    const stored = await f.ledger.readArtifact(ref.sha256);
    expect(JSON.parse(Buffer.from(stored!).toString('utf8'))).toEqual({ blob: big, 'service.name': 'svc' });
    expect((await verifyLedger(f.ledger)).ok).toBe(true);
  }, 60_000);

  it('keeps a small resource inline in each event, as before', async () => {
    const T3 = '7c8efff798038103d269b633813fc60c';
    const res = await f.call('POST', '/v1/traces', { key: f.keys.agent, body: one([chatSpan(T3, S)], [str('service.name', 'svc')]) });
    expect(res.status).toBe(200);
    const [e] = await f.ledger.readStream(`otlp:${AGENT_ID}:${T3}`);
    expect(e!.data).toMatchObject({ otlp: { resource: { 'service.name': 'svc' } } });
  });

  it('refuses with 413 and writes nothing when the events a protobuf request maps to are over twice the body limit', async () => {
    const memory = new InMemorySpanExporter();
    const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(memory)] });
    const tracer = provider.getTracer('expander');
    // A control character is one byte in protobuf and six characters (\u0001) in the ledger's JSON.
    for (let i = 0; i < 40; i++) tracer.startSpan(`s${i}`, { kind: SpanKind.INTERNAL, attributes: { 'gen_ai.conversation.id': 'expanding', pad: '\u0001'.repeat(150_000) } }).end();
    const size = f.ledger.info.size;
    const r = await send(
      new ProtoExporter({ url: `${server.url}/v1/traces`, headers: { authorization: `Bearer ${f.keys.agent}` } }),
      memory.getFinishedSpans().map((s) => s),
    );
    expect(r.code).not.toBe(0);
    expect((r.error as { code?: number } | undefined)?.code).toBe(413);
    expect(String((r.error as { data?: unknown } | undefined)?.data)).toMatch(/maps to .* over .* limit/);
    expect(f.ledger.info.size).toBe(size);
  }, 60_000);
});

describe('OTLP ingest: a large GenAI span is not stored twice, and a conversation id that holds a secret is not a stream name (M1, L3)', () => {
  let f: ServerFixture;
  beforeAll(async () => {
    f = await serverFixture(tempDir('witness-otlp-m1-'));
  });
  afterAll(() => f.close());

  it('stores a chat span with a 600 KB prompt beside two small spans: the parsed messages once, the raw attribute not copied', async () => {
    const msgs = JSON.stringify([{ role: 'user', parts: [{ type: 'text', content: 'z'.repeat(600_000) }] }]);
    const spans = [
      {
        traceId: T,
        spanId: '0000000000000001',
        name: 'small',
        attributes: [str('gen_ai.operation.name', 'execute_tool'), str('gen_ai.tool.name', 'refund'), str('gen_ai.tool.call.arguments', '{"order":42}')],
      },
      { traceId: T, spanId: '0000000000000002', name: 'chat', attributes: [str('gen_ai.operation.name', 'chat'), str('gen_ai.input.messages', msgs)] },
      { traceId: T, spanId: '0000000000000003', name: 'small2' },
    ];
    const res = await f.call('POST', '/v1/traces', { key: f.keys.agent, body: one(spans) });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({});
    const events = await f.ledger.readStream(`otlp:${AGENT_ID}:${T}`);
    expect(events.map((e) => e.kind)).toEqual(['tool.call', 'tool.result', 'llm.call', 'note']);
    const llm = events[2]!.data as { input: Array<{ parts: Array<{ content: string }> }>; otlp: { attributes: Record<string, unknown>; mapped: Record<string, string> } };
    expect(llm.input[0]!.parts[0]!.content).toHaveLength(600_000);
    expect(llm.otlp.attributes).not.toHaveProperty('gen_ai.input.messages');
    expect(llm.otlp.mapped).toEqual({ 'gen_ai.input.messages': 'input' });
    const call = events[0]!.data as { arguments: unknown; otlp: { attributes: Record<string, unknown>; mapped: Record<string, string> } };
    expect(call.arguments).toEqual({ order: 42 });
    expect(call.otlp.attributes).not.toHaveProperty('gen_ai.tool.call.arguments');
    expect(call.otlp.mapped).toEqual({ 'gen_ai.tool.call.arguments': 'arguments' });
  });

  it('names the stream by a keyed digest of a conversation id that redaction would change, the same one for each span of it', async () => {
    const conv = 'sk-ant-api03-abcdefghijklmnopqrstuvwxyz012345';
    const spans = [chatSpan(T, '00000000000000a1', [str('gen_ai.conversation.id', conv)]), chatSpan(T, '00000000000000a2', [str('gen_ai.conversation.id', conv)])];
    const res = await f.call('POST', '/v1/traces', { key: f.keys.agent, body: one(spans) });
    expect(res.status).toBe(200);
    const page = await f.ledger.query({ agent: AGENT_ID, kind: 'llm.call' });
    const streams = new Set(page.events.filter((e) => (e.data as { otlp: { span_id: string } }).otlp.span_id.startsWith('00000000000000a')).map((e) => e.stream));
    expect(streams.size).toBe(1);
    const [stream] = [...streams];
    expect(stream).toMatch(new RegExp(`^otlp:${AGENT_ID}:hmac-[0-9a-f]{64}$`));
    expect(JSON.stringify(page.events)).not.toContain('abcdefghijklmnop');
    // An ordinary conversation id stays readable.
    await f.call('POST', '/v1/traces', { key: f.keys.agent, body: one([chatSpan(T, '00000000000000b1', [str('gen_ai.conversation.id', 'conv-7')])]) });
    expect(await f.ledger.readStream(`otlp:${AGENT_ID}:conv-7`)).toHaveLength(1);
  });
});
