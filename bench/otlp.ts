/**
 * Benchmark — OTLP trace ingest on `witness serve` (issue 16).
 *
 * The same protobuf ExportTraceServiceRequests (100 GenAI spans each: chat spans with messages
 * and usage, execute_tool spans with arguments and results, and plain spans, as an instrumented
 * agent sends them) go (a) through the server's POST /v1/traces in process (`app.request()`: key
 * check, body limit, decode, mapping, redaction, the duplicate look-up, one append per request
 * into a fresh SQLite ledger) and (b) through a sink that only parses them (protobuf decode and
 * the OTLP reader, the first step of (a)). Spans/s of each, in the same run; the ratio is what
 * recording costs over reading.
 */
import protobuf from 'protobufjs/light.js';
import { OTLP_TRACE_DESCRIPTOR, decodeTraceRequest, readTraceRequest } from '../src/integrations/index.js';
import { createKey, createServer } from '../src/server/index.js';
import { openLedger } from '../src/store/index.js';
import type { Config } from './config.js';
import { fmtInt, fmtRatio, freshDbPath, gc, hexOf, log, mdTable, median, removeDb, rng, type Section } from './util.js';

const SPANS_PER_REQUEST = 100;

function sizes(cfg: Config): { requests: number; reps: number } {
  return cfg.quick ? { requests: 20, reps: 3 } : { requests: 200, reps: 5 };
}

const str = (v: string) => ({ stringValue: v });
const int = (v: number) => ({ intValue: v });

/** One request's spans as the OpenTelemetry SDK would export them, ids from `r`. */
function requestBytes(r: () => number, Request: protobuf.Type): Uint8Array {
  const spans = [];
  const trace = Buffer.from(hexOf(r, 32), 'hex');
  const conversation = `conv-${hexOf(r, 12)}`;
  for (let i = 0; i < SPANS_PER_REQUEST; i++) {
    const kind = i % 3;
    const attributes =
      kind === 0
        ? [
            { key: 'gen_ai.operation.name', value: str('chat') },
            { key: 'gen_ai.provider.name', value: str('openai') },
            { key: 'gen_ai.request.model', value: str('gpt-4o') },
            { key: 'gen_ai.response.model', value: str('gpt-4o-2024-08-06') },
            { key: 'gen_ai.usage.input_tokens', value: int(900 + i) },
            { key: 'gen_ai.usage.output_tokens', value: int(120) },
            { key: 'gen_ai.conversation.id', value: str(conversation) },
            { key: 'gen_ai.input.messages', value: str(JSON.stringify([{ role: 'user', parts: [{ type: 'text', content: `Refund order ${i}, the customer was charged twice.` }] }])) },
            { key: 'gen_ai.output.messages', value: str(JSON.stringify([{ role: 'assistant', parts: [{ type: 'tool_call', id: `call_${i}`, name: 'billing.refund', arguments: { order: i } }] }])) },
          ]
        : kind === 1
          ? [
              { key: 'gen_ai.operation.name', value: str('execute_tool') },
              { key: 'gen_ai.tool.name', value: str('billing.refund') },
              { key: 'gen_ai.tool.call.id', value: str(`call_${i}`) },
              { key: 'gen_ai.tool.call.arguments', value: str(JSON.stringify({ order: i, amount: 42.5 })) },
              { key: 'gen_ai.tool.call.result', value: str(JSON.stringify({ refunded: true, id: `re_${i}` })) },
              { key: 'gen_ai.conversation.id', value: str(conversation) },
            ]
          : [
              { key: 'db.system.name', value: str('postgresql') },
              { key: 'db.query.text', value: str('SELECT * FROM orders WHERE id = $1') },
            ];
    spans.push({
      traceId: trace,
      spanId: Buffer.from(hexOf(r, 16), 'hex'),
      name: kind === 0 ? 'chat gpt-4o' : kind === 1 ? 'execute_tool billing.refund' : 'SELECT orders',
      kind: kind === 0 ? 3 : 1,
      startTimeUnixNano: '1765000000000000000',
      endTimeUnixNano: '1765000000250000000',
      attributes,
      status: { code: 1 },
    });
  }
  const message = Request.fromObject({
    resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: str('refund-agent') }] }, scopeSpans: [{ scope: { name: 'refund-agent', version: '1.0.0' }, spans }] }],
  });
  return Request.encode(message).finish();
}

export async function benchOtlp(cfg: Config): Promise<Section> {
  const { requests, reps } = sizes(cfg);
  const Request = protobuf.Root.fromJSON(OTLP_TRACE_DESCRIPTOR).lookupType('ExportTraceServiceRequest');
  const r = rng(1616);
  const bodies = Array.from({ length: requests }, () => requestBytes(r, Request));
  const spans = requests * SPANS_PER_REQUEST;
  const bytes = bodies.reduce((n, b) => n + b.length, 0);

  // (b) the sink: parse only.
  const parseRates: number[] = [];
  for (let rep = 0; rep < reps; rep++) {
    gc();
    const t0 = performance.now();
    let n = 0;
    for (const b of bodies) n += readTraceRequest(await decodeTraceRequest(b)).length;
    const s = (performance.now() - t0) / 1000;
    if (n !== spans) throw new Error(`the sink read ${n} spans of ${spans}`);
    parseRates.push(spans / s);
  }

  // (a) the server: a fresh ledger per repetition, so every span is new.
  const ingestRates: number[] = [];
  let events = 0;
  for (let rep = 0; rep < reps; rep++) {
    const file = freshDbPath('otlp-ingest');
    const ledger = await openLedger(`sqlite:${file}`);
    try {
      const { key } = await createKey(ledger, { role: 'agent', agent: 'otlp-bench', name: 'otlp bench' }, { who: 'bench', recorder: 'cli' });
      const app = createServer({ ledger });
      const before = ledger.info.size;
      gc();
      const t0 = performance.now();
      for (const b of bodies) {
        const res = await app.request('/v1/traces', { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/x-protobuf' }, body: b });
        if (res.status !== 200) throw new Error(`POST /v1/traces answered ${res.status}: ${await res.text()}`);
      }
      const s = (performance.now() - t0) / 1000;
      events = ledger.info.size - before;
      ingestRates.push(spans / s);
    } finally {
      await ledger.close();
      removeDb(file);
    }
  }
  const ingest = median(ingestRates);
  const parse = median(parseRates);
  log(`otlp: ingest ${fmtInt(ingest)} spans/s, parse-only ${fmtInt(parse)} spans/s`);
  return {
    id: 'otlp',
    title: 'OTLP trace ingest (`POST /v1/traces`)',
    method: [
      `${fmtInt(requests)} protobuf ExportTraceServiceRequests of ${SPANS_PER_REQUEST} spans each (${fmtInt(spans)} spans, ${fmtInt(bytes)} bytes): a third GenAI chat spans with input and output messages and usage, a third execute_tool spans with arguments and results (each two events), a third plain database spans (notes).`,
      `Ingest: each request through the server's POST /v1/traces in process (\`app.request()\`, one request at a time: key check, decode, GenAI mapping, redaction, the look-up that makes a resent span a no-op, one append per request) into a fresh SQLite ledger per repetition. Sink: the same bytes only decoded and read (protobuf decode and the OTLP reader), the first step of ingest. Median of ${reps} repetitions each, in the same run.`,
    ],
    body: [
      mdTable(
        ['path', 'spans/s', 'events written'],
        [
          ['POST /v1/traces (records)', fmtInt(ingest), fmtInt(events)],
          ['parse-only sink', fmtInt(parse), '0'],
        ],
      ),
      `Recording costs ${fmtRatio(parse / ingest)} the time of parsing alone.`,
    ],
    verdicts: [
      {
        target: 'OTLP ingest: spans/s vs a sink that only parses the same requests',
        measured: `${fmtInt(ingest)} spans/s vs ${fmtInt(parse)} spans/s (${fmtRatio(parse / ingest)})`,
        met: true,
        note: 'The issue sets no number; reported side by side.',
      },
    ],
  };
}
