import { gzipSync } from 'node:zlib';
import { SpanKind, SpanStatusCode, context, trace } from '@opentelemetry/api';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { InMemorySpanExporter, NodeTracerProvider, SimpleSpanProcessor, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, listen, type RunningServer } from '../../src/server/index.js';
import { verifyLedger, type Ledger } from '../../src/store/index.js';
import { tempDir } from '../helpers/tmp.js';
import { AGENT_ID, serverFixture, type ServerFixture } from './fixture.js';

/** Spans made by the real OpenTelemetry SDK, instrumented as the GenAI semantic conventions describe. */
function genAiSpans(conversation: string): ReadableSpan[] {
  const memory = new InMemorySpanExporter();
  const provider = new NodeTracerProvider({ resource: resourceFromAttributes({ 'service.name': 'refund-agent' }), spanProcessors: [new SimpleSpanProcessor(memory)] });
  const tracer = provider.getTracer('refund-agent', '1.2.3');
  const agent = tracer.startSpan('invoke_agent refunds', {
    kind: SpanKind.INTERNAL,
    attributes: { 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.id': 'some-other-agent', 'gen_ai.agent.name': 'Refunds', 'gen_ai.conversation.id': conversation },
  });
  const inAgent = trace.setSpan(context.active(), agent);
  const chat = tracer.startSpan(
    'chat gpt-4o',
    {
      kind: SpanKind.CLIENT,
      attributes: {
        'gen_ai.operation.name': 'chat',
        'gen_ai.provider.name': 'openai',
        'gen_ai.request.model': 'gpt-4o',
        'gen_ai.request.temperature': 0.2,
        'gen_ai.response.model': 'gpt-4o-2024-08-06',
        'gen_ai.response.id': 'chatcmpl-123',
        'gen_ai.response.finish_reasons': ['tool_calls'],
        'gen_ai.usage.input_tokens': 97,
        'gen_ai.usage.output_tokens': 52,
        'gen_ai.conversation.id': conversation,
        'gen_ai.agent.id': 'some-other-agent',
        'gen_ai.input.messages': JSON.stringify([{ role: 'user', parts: [{ type: 'text', content: 'Refund order 42' }] }]),
        'gen_ai.output.messages': JSON.stringify([{ role: 'assistant', parts: [{ type: 'tool_call', id: 'call_1', name: 'refund', arguments: { order: 42 } }], finish_reason: 'tool_call' }]),
      },
    },
    inAgent,
  );
  chat.end();
  const tool = tracer.startSpan(
    'execute_tool refund',
    {
      kind: SpanKind.INTERNAL,
      attributes: {
        'gen_ai.operation.name': 'execute_tool',
        'gen_ai.tool.name': 'refund',
        'gen_ai.tool.call.id': 'call_1',
        'gen_ai.tool.call.arguments': '{"order":42}',
        'gen_ai.tool.call.result': '{"refunded":true}',
        'gen_ai.conversation.id': conversation,
        'mcp.method.name': 'tools/call',
      },
    },
    inAgent,
  );
  tool.setStatus({ code: SpanStatusCode.OK });
  tool.end();
  agent.end();
  return memory.getFinishedSpans().map((s) => s);
}

function plainSpan(): ReadableSpan[] {
  const memory = new InMemorySpanExporter();
  const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(memory)] });
  const span = provider.getTracer('db').startSpan('SELECT orders', { attributes: { 'db.system.name': 'postgresql' } });
  span.setStatus({ code: SpanStatusCode.ERROR, message: 'relation does not exist' });
  span.end();
  return memory.getFinishedSpans().map((s) => s);
}

function send(exporter: SpanExporter, spans: ReadableSpan[]): Promise<{ code: number; error?: Error }> {
  return new Promise((resolve) => exporter.export(spans, resolve));
}

describe('OTLP trace ingest on witness serve (POST /v1/traces)', () => {
  const dir = tempDir('witness-otlp-');
  let f: ServerFixture;
  let server: RunningServer;
  beforeAll(async () => {
    f = await serverFixture(dir);
    server = await listen({ ledger: f.ledger, port: 0, sealEveryMs: 0 });
  });
  afterAll(async () => server.close());

  const proto = () => new ProtoExporter({ url: `${server.url}/v1/traces`, headers: { authorization: `Bearer ${f.keys.agent}` }, compression: 'gzip' as never });
  const json = () => new JsonExporter({ url: `${server.url}/v1/traces`, headers: { authorization: `Bearer ${f.keys.agent}` } });

  it("[R-OTLP-INGEST] records the real SDK's GenAI spans sent as gzip'd protobuf as llm.call, tool.call, tool.result and a note, field by field, under the key's agent, and the ledger verifies", async () => {
    const spans = genAiSpans('conv-1');
    const r = await send(proto(), spans);
    expect(r.error).toBeUndefined();
    expect(r.code).toBe(0);
    const events = await f.ledger.readStream(`otlp:${AGENT_ID}:conv-1`);
    expect(events.map((e) => e.kind)).toEqual(['llm.call', 'tool.call', 'tool.result', 'note']);
    for (const e of events) {
      expect(e.agent.id).toBe(AGENT_ID);
      expect(e.agent.credential).toBe(f.ids.agent);
      expect(e.recorder).toMatchObject({ kind: 'otlp' });
      expect(e.received_ts).toBe(e.ts);
    }
    const [llm, call, result, note] = events as [(typeof events)[0], (typeof events)[0], (typeof events)[0], (typeof events)[0]];
    const chat = spans.find((s) => s.name === 'chat gpt-4o')!;
    const agentSpan = spans.find((s) => s.name === 'invoke_agent refunds')!;
    expect(llm.outcome).toBe('success');
    expect(llm.action).toBe('chat');
    expect(llm.parent).toBe(note.id);
    expect(llm.data).toMatchObject({
      provider: 'openai',
      model: 'gpt-4o',
      response_model: 'gpt-4o-2024-08-06',
      request_id: 'chatcmpl-123',
      stop_reason: 'tool_calls',
      usage: { input_tokens: 97, output_tokens: 52 },
      parameters: { temperature: 0.2 },
      input: [{ role: 'user', parts: [{ type: 'text', content: 'Refund order 42' }] }],
      output: [{ role: 'assistant', parts: [{ type: 'tool_call', id: 'call_1', name: 'refund', arguments: { order: 42 } }], finish_reason: 'tool_call' }],
      otlp: {
        trace_id: chat.spanContext().traceId,
        span_id: chat.spanContext().spanId,
        parent_span_id: agentSpan.spanContext().spanId,
        name: 'chat gpt-4o',
        kind: 'client',
        claimed_agent: { id: 'some-other-agent' },
        resource: { 'service.name': 'refund-agent' },
        scope: { name: 'refund-agent', version: '1.2.3' },
      },
    });
    expect((llm.data as { latency_ms?: number }).latency_ms).toBeGreaterThanOrEqual(0);
    expect((llm.data as { otlp: { attributes: Record<string, unknown> } }).otlp.attributes['gen_ai.usage.input_tokens']).toBe(97);
    expect(call.data).toMatchObject({ tool: 'refund', arguments: { order: 42 }, tool_call_id: 'call_1', method: 'tools/call', otlp: { attributes: { 'mcp.method.name': 'tools/call' } } });
    expect(call.resource).toBe('refund');
    expect(result.parent).toBe(call.id);
    expect(result.data).toMatchObject({ tool: 'refund', output: { refunded: true }, is_error: false });
    expect(note.data).toMatchObject({ text: expect.stringContaining('invoke_agent'), otlp: { claimed_agent: { id: 'some-other-agent', name: 'Refunds' } } });
    expect(note.action).toBe('invoke_agent');
    // The spoofed agent is a claim only: it owns nothing and recorded nothing.
    expect((await f.ledger.query({ agent: 'some-other-agent' })).events).toHaveLength(0);
    expect((await verifyLedger(f.ledger)).ok).toBe(true);
  });

  it('[R-OTLP-INGEST] stores a span sent twice once (again as JSON), and answers the retry as a success', async () => {
    const spans = genAiSpans('conv-2');
    expect((await send(proto(), spans)).code).toBe(0);
    const size = f.ledger.info.size;
    const again = await send(json(), spans);
    expect(again.error).toBeUndefined();
    expect(again.code).toBe(0);
    expect(f.ledger.info.size).toBe(size);
    expect(await f.ledger.readStream(`otlp:${AGENT_ID}:conv-2`)).toHaveLength(4);
    // Old spans beside a new one: the new one is written, the old ones are not written again.
    const extra = plainSpan();
    expect((await send(proto(), [...spans, ...extra])).code).toBe(0);
    expect(f.ledger.info.size).toBe(size + 1);
    expect(await f.ledger.readStream(`otlp:${AGENT_ID}:conv-2`)).toHaveLength(4);
    expect(await f.ledger.readStream(`otlp:${AGENT_ID}:${extra[0]!.spanContext().traceId}`)).toHaveLength(1);
    expect((await verifyLedger(f.ledger)).ok).toBe(true);
  });

  it('keeps a span without GenAI attributes, sent as JSON, as a note in a stream named by its trace id, with its error status', async () => {
    const spans = plainSpan();
    expect((await send(json(), spans)).code).toBe(0);
    const events = await f.ledger.readStream(`otlp:${AGENT_ID}:${spans[0]!.spanContext().traceId}`);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      kind: 'note',
      action: 'otlp.span',
      outcome: 'error',
      data: { otlp: { name: 'SELECT orders', status: { code: 'error', message: 'relation does not exist' }, attributes: { 'db.system.name': 'postgresql' } } },
    });
  });

  it('answers the JSON encoding in JSON and the protobuf encoding in protobuf', async () => {
    const body = {
      resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: '5b8efff798038103d269b633813fc60c', spanId: 'eee19b7ec3c1b174', name: 'x', startTimeUnixNano: '1', endTimeUnixNano: '2' }] }] }],
    };
    const res = await f.call('POST', '/v1/traces', { key: f.keys.agent, body });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({});
    const gz = await f.app.request('/v1/traces', {
      method: 'POST',
      headers: { authorization: `Bearer ${f.keys.agent}`, 'content-type': 'application/json', 'content-encoding': 'gzip' },
      body: gzipSync(JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: '5b8efff798038103d269b633813fc60d', spanId: 'eee19b7ec3c1b174', name: 'gz' }] }] }] })),
    });
    expect(gz.status).toBe(200);
    expect(await f.ledger.readStream(`otlp:${AGENT_ID}:5b8efff798038103d269b633813fc60d`)).toHaveLength(1);
    const pb = await f.app.request('/v1/traces', { method: 'POST', headers: { authorization: `Bearer ${f.keys.agent}`, 'content-type': 'application/x-protobuf' }, body: new Uint8Array(0) });
    expect(pb.status).toBe(200);
    expect(pb.headers.get('content-type')).toBe('application/x-protobuf');
    expect(new Uint8Array(await pb.arrayBuffer())).toHaveLength(0);
  });
});

describe('POST /v1/traces refuses, and writes nothing', () => {
  const dir = tempDir('witness-otlp-refuse-');
  let f: ServerFixture;
  let small: ReturnType<typeof createServer>;
  beforeAll(async () => {
    f = await serverFixture(dir);
    small = createServer({ ledger: f.ledger, maxIngestBytes: 64 * 1024 });
  });
  afterAll(async () => f.close());

  async function unchanged(ledger: Ledger, run: () => Promise<Response>): Promise<Response> {
    const before = ledger.info.size;
    const res = await run();
    expect(ledger.info.size).toBe(before);
    expect(((await res.clone().json()) as { error: { message: string } }).error.message).toMatch(/^[A-Z].*\.$/);
    return res;
  }
  const post = (app: ReturnType<typeof createServer>, body: Uint8Array | string, headers: Record<string, string>, key = f.keys.agent) =>
    Promise.resolve(app.request('/v1/traces', { method: 'POST', headers: { authorization: `Bearer ${key}`, ...headers }, body }));

  it('bytes that are not an ExportTraceServiceRequest → 400', async () => {
    const res = await unchanged(f.ledger, () => post(f.app, new Uint8Array([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2]), { 'content-type': 'application/x-protobuf' }));
    expect(res.status).toBe(400);
  });

  it('JSON that is not OTLP, or a span id of the wrong length → 400', async () => {
    expect((await unchanged(f.ledger, () => post(f.app, '{"resourceSpans":', { 'content-type': 'application/json' }))).status).toBe(400);
    const bad = JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: '5b8efff798038103d269b633813fc60c', spanId: 'eee1', name: 'x' }] }] }] });
    const res = await unchanged(f.ledger, () => post(f.app, bad, { 'content-type': 'application/json' }));
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { details: { path: 'resourceSpans[0].scopeSpans[0].spans[0].spanId' } } });
  });

  it('a wrong content type or content encoding → 415', async () => {
    expect((await unchanged(f.ledger, () => post(f.app, '{}', { 'content-type': 'text/plain' }))).status).toBe(415);
    expect((await unchanged(f.ledger, () => post(f.app, '{}', { 'content-type': 'application/json', 'content-encoding': 'br' }))).status).toBe(415);
  });

  it('a body over the limit → 413, and a gzip bomb under it that inflates past it → 413', async () => {
    expect((await unchanged(f.ledger, () => post(small, new Uint8Array(128 * 1024), { 'content-type': 'application/x-protobuf' }))).status).toBe(413);
    const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024));
    expect(bomb.length).toBeLessThan(64 * 1024);
    expect((await unchanged(f.ledger, () => post(small, bomb, { 'content-type': 'application/x-protobuf', 'content-encoding': 'gzip' }))).status).toBe(413);
    expect((await unchanged(f.ledger, () => post(small, 'not gzip', { 'content-type': 'application/json', 'content-encoding': 'gzip' }))).status).toBe(400);
  });

  it('more spans in one request than the limit → 413', async () => {
    const spans = Array.from({ length: 5_001 }, (_, i) => ({ traceId: '5b8efff798038103d269b633813fc60c', spanId: (i + 1).toString(16).padStart(16, '0'), name: 'x' }));
    const res = await unchanged(f.ledger, () => post(f.app, JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans }] }] }), { 'content-type': 'application/json' }));
    expect(res.status).toBe(413);
  });

  it('a request whose second span is malformed writes not even its first', async () => {
    const body = JSON.stringify({
      resourceSpans: [
        {
          scopeSpans: [
            {
              spans: [
                { traceId: '5b8efff798038103d269b633813fc60c', spanId: 'eee19b7ec3c1b174', name: 'good' },
                {
                  traceId: '5b8efff798038103d269b633813fc60c',
                  spanId: 'eee19b7ec3c1b175',
                  name: 'bad',
                  attributes: [
                    { key: 'a', value: { stringValue: 'x' } },
                    { key: 'a', value: { stringValue: 'y' } },
                  ],
                },
              ],
            },
          ],
        },
      ],
    });
    expect((await unchanged(f.ledger, () => post(f.app, body, { 'content-type': 'application/json' }))).status).toBe(400);
  });

  it('developer, approver, auditor and admin keys → 403; no key → 401', async () => {
    const body = JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: '5b8efff798038103d269b633813fc60c', spanId: 'eee19b7ec3c1b174', name: 'x' }] }] }] });
    for (const role of ['developer', 'approver', 'auditor', 'admin'] as const) {
      const before = f.ledger.info.size;
      expect((await post(f.app, body, { 'content-type': 'application/json' }, f.keys[role])).status).toBe(403);
      // A person's refusal is itself recorded (audit.access, denied); the spans are not.
      expect(f.ledger.info.size).toBe(before + 1);
    }
    expect((await f.ledger.query({ stream: `otlp:${AGENT_ID}:5b8efff798038103d269b633813fc60c` })).events).toHaveLength(0);
    const res = await f.app.request('/v1/traces', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(res.status).toBe(401);
  });

  it("an agent key cannot open another agent's OTLP stream through /v1/events", async () => {
    const res = await f.call('POST', '/v1/events', { key: f.keys.agent, body: { events: [{ stream: 'otlp:victim:conv-1', kind: 'note', data: { text: 'x' } }] } });
    expect(res.status).toBe(403);
    const own = await f.call('POST', '/v1/events', { key: f.keys.agent, body: { events: [{ stream: `otlp:${AGENT_ID}:mine`, kind: 'note', data: { text: 'x' } }] } });
    expect(own.status).toBe(201);
  });
});
