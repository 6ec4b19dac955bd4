import { diag, DiagLogLevel, SpanKind } from '@opentelemetry/api';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { InMemorySpanExporter, NodeTracerProvider, SimpleSpanProcessor, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-node';
import protobuf from 'protobufjs/light.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OTLP_TRACE_DESCRIPTOR } from '../../src/integrations/index.js';
import { listen, type RunningServer } from '../../src/server/index.js';
import { verifyLedger } from '../../src/store/index.js';
import { tempDir } from '../helpers/tmp.js';
import { AGENT_ID, serverFixture, type ServerFixture } from './fixture.js';

/**
 * OTLP partial success (https://opentelemetry.io/docs/specs/otlp/#partial-success-1, and
 * ExportTraceServiceResponse in opentelemetry-proto's collector/trace/v1/trace_service.proto): a span
 * the ledger cannot take is refused alone, the others are written, and the answer is 200 with
 * partial_success.rejected_spans and an error_message. A request that does not decode stays a 400.
 */

const ONE_AND_A_HALF_MIB = 'x'.repeat(1.5 * 1024 * 1024);

/** Three spans of one conversation from the real SDK: a small chat, a chat whose output is over the ledger's 1 MiB payload limit, and a tool whose name is over the 512-character limit. */
function mixedSpans(conversation: string): ReadableSpan[] {
  const memory = new InMemorySpanExporter();
  const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(memory)] });
  const tracer = provider.getTracer('refund-agent');
  const chat = (name: string, output: string) =>
    tracer
      .startSpan(name, {
        kind: SpanKind.CLIENT,
        attributes: { 'gen_ai.operation.name': 'chat', 'gen_ai.request.model': 'gpt-4o', 'gen_ai.conversation.id': conversation, 'gen_ai.output.messages': output },
      })
      .end();
  chat('chat small', JSON.stringify([{ role: 'assistant', parts: [{ type: 'text', content: 'Refunded.' }] }]));
  chat('chat huge', JSON.stringify([{ role: 'assistant', parts: [{ type: 'text', content: ONE_AND_A_HALF_MIB }] }]));
  tracer.startSpan('execute_tool', { attributes: { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 't'.repeat(600), 'gen_ai.conversation.id': conversation } }).end();
  return memory.getFinishedSpans().map((s) => s);
}

function send(exporter: SpanExporter, spans: ReadableSpan[]): Promise<{ code: number; error?: Error }> {
  return new Promise((resolve) => exporter.export(spans, resolve));
}

const responseType = protobuf.Root.fromJSON(OTLP_TRACE_DESCRIPTOR).lookupType('ExportTraceServiceResponse');

describe('POST /v1/traces answers partial_success for the spans it refuses one by one', () => {
  const dir = tempDir('witness-otlp-partial-');
  let f: ServerFixture;
  let server: RunningServer;
  const warnings: string[] = [];
  beforeAll(async () => {
    f = await serverFixture(dir);
    server = await listen({ ledger: f.ledger, port: 0, sealEveryMs: 0 });
    // The exporters report a partial success through the OpenTelemetry diagnostic logger.
    diag.setLogger(
      { error: () => undefined, warn: (...a: unknown[]) => void warnings.push(a.map(String).join(' ')), info: () => undefined, debug: () => undefined, verbose: () => undefined },
      DiagLogLevel.WARN,
    );
  });
  afterAll(async () => {
    diag.disable();
    await server.close();
  });

  for (const [protocol, exporter] of [
    ['http/protobuf', () => new ProtoExporter({ url: `${server.url}/v1/traces`, headers: { authorization: `Bearer ${f.keys.agent}` }, compression: 'gzip' as never })],
    ['http/json', () => new JsonExporter({ url: `${server.url}/v1/traces`, headers: { authorization: `Bearer ${f.keys.agent}` } })],
  ] as const) {
    it(`[R-OTLP-INGEST] writes the span that fits and refuses the oversized and the invalid one, and the real ${protocol} exporter reads the partial success`, async () => {
      const conversation = `partial-${protocol}`;
      const spans = mixedSpans(conversation);
      warnings.length = 0;
      const r = await send(exporter(), spans);
      expect(r.error).toBeUndefined();
      expect(r.code).toBe(0);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toContain('Received Partial Success response');
      expect(warnings[0]).toMatch(/"rejectedSpans":"?2"?/);
      expect(warnings[0]).toContain('2 of 3 spans were not recorded');

      const events = await f.ledger.readStream(`otlp:${AGENT_ID}:${conversation}`);
      const written = events.filter((e) => e.kind !== 'error');
      expect(written.map((e) => [e.kind, (e.data as { otlp?: { name?: string } }).otlp?.name])).toEqual([['llm.call', 'chat small']]);
      // Each refusal is itself recorded where the span would have been, so the gap is in the ledger.
      const refusals = events.filter((e) => e.kind === 'error');
      const huge = spans.find((s) => s.name === 'chat huge')!.spanContext();
      const tool = spans.find((s) => s.name === 'execute_tool')!.spanContext();
      expect(refusals.map((e) => e.data)).toEqual([
        expect.objectContaining({ code: 'payload_too_large', otlp: { trace_id: huge.traceId, span_id: huge.spanId, name: 'chat huge' }, limit: 1024 * 1024, bytes: expect.any(Number) as number }),
        expect.objectContaining({ code: 'invalid_event', otlp: { trace_id: tool.traceId, span_id: tool.spanId, name: 'execute_tool' } }),
      ]);
      expect(refusals.every((e) => e.outcome === 'error' && e.agent.id === AGENT_ID && e.recorder?.kind === 'otlp')).toBe(true);
      expect(JSON.stringify(refusals)).not.toContain('xxxxxxxx');

      // Sent again (a retry), nothing is written twice, the refusals included, and the answer is the same.
      const size = f.ledger.info.size;
      warnings.length = 0;
      expect((await send(exporter(), spans)).code).toBe(0);
      expect(f.ledger.info.size).toBe(size);
      expect(warnings[0]).toMatch(/"rejectedSpans":"?2"?/);
      expect((await verifyLedger(f.ledger)).ok).toBe(true);
    }, 30_000);
  }

  const request = (conversation: string, spans: Array<Record<string, unknown>>) => ({
    resourceSpans: [
      { scopeSpans: [{ spans: spans.map((s) => ({ traceId: '7b8efff798038103d269b633813fc60c', attributes: [{ key: 'gen_ai.conversation.id', value: { stringValue: conversation } }], ...s })) }] },
    ],
  });
  const tooLong = { key: 'gen_ai.tool.name', value: { stringValue: 'n'.repeat(600) } };
  const execute = { key: 'gen_ai.operation.name', value: { stringValue: 'execute_tool' } };

  it('answers partial_success in the encoding of the request: JSON with rejectedSpans and errorMessage, protobuf as ExportTraceServiceResponse', async () => {
    const body = request('raw-json', [
      { spanId: 'aaa19b7ec3c1b174', name: 'fine' },
      { spanId: 'aaa19b7ec3c1b175', name: 'bad tool', attributes: [execute, tooLong] },
    ]);
    const res = await f.call('POST', '/v1/traces', { key: f.keys.agent, body });
    expect(res.status).toBe(200);
    const answer = (await res.json()) as { partialSuccess: { rejectedSpans: string; errorMessage: string } };
    expect(answer).toEqual({
      partialSuccess: {
        rejectedSpans: '1',
        errorMessage: expect.stringMatching(
          /^1 of 2 spans was not recorded: span aaa19b7ec3c1b175 \("bad tool"\): its tool\.call event is not valid \(data\.tool too big: expected string to have <=512 characters\)\.$/,
        ) as string,
      },
    });

    const allRefused = await f.call('POST', '/v1/traces', { key: f.keys.agent, body: request('all-refused', [{ spanId: 'bbb19b7ec3c1b175', name: 'bad tool', attributes: [execute, tooLong] }]) });
    expect(allRefused.status).toBe(200);
    const doc = (await allRefused.json()) as { partialSuccess: { rejectedSpans: string } };
    // Every span refused is still a partial success (the request itself was read), not a 400: the refusal is recorded.
    expect(doc.partialSuccess.rejectedSpans).toBe('1');

    const encoded = protobuf.Root.fromJSON(OTLP_TRACE_DESCRIPTOR)
      .lookupType('ExportTraceServiceRequest')
      .encode({
        resourceSpans: [
          {
            scopeSpans: [
              {
                spans: [
                  { traceId: Buffer.from('8b8efff798038103d269b633813fc60c', 'hex'), spanId: Buffer.from('ccc19b7ec3c1b174', 'hex'), name: 'fine' },
                  {
                    traceId: Buffer.from('8b8efff798038103d269b633813fc60c', 'hex'),
                    spanId: Buffer.from('ccc19b7ec3c1b175', 'hex'),
                    name: 'bad tool',
                    attributes: [
                      { key: 'gen_ai.operation.name', value: { stringValue: 'execute_tool' } },
                      { key: 'gen_ai.tool.name', value: { stringValue: 'n'.repeat(600) } },
                    ],
                  },
                ],
              },
            ],
          },
        ],
      })
      .finish();
    const bin = await f.app.request('/v1/traces', { method: 'POST', headers: { authorization: `Bearer ${f.keys.agent}`, 'content-type': 'application/x-protobuf' }, body: encoded });
    expect(bin.status).toBe(200);
    expect(bin.headers.get('content-type')).toBe('application/x-protobuf');
    const decoded = responseType.toObject(responseType.decode(new Uint8Array(await bin.arrayBuffer())), { longs: String }) as { partialSuccess: { rejectedSpans: string; errorMessage: string } };
    expect(decoded.partialSuccess.rejectedSpans).toBe('1');
    expect(decoded.partialSuccess.errorMessage).toMatch(/^1 of 2 spans was not recorded: span ccc19b7ec3c1b175 \("bad tool"\): /);
    expect((await f.ledger.readStream(`otlp:${AGENT_ID}:8b8efff798038103d269b633813fc60c`)).map((e) => e.kind)).toEqual(['note', 'error']);
  });

  it('answers a request with nothing refused as before: {} in JSON, zero bytes in protobuf', async () => {
    const res = await f.call('POST', '/v1/traces', { key: f.keys.agent, body: request('all-fine', [{ spanId: 'ddd19b7ec3c1b174', name: 'fine' }]) });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({});
  });
});
