import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeTraceRequest } from '../../src/integrations/otlp/proto.js';
import { readTraceRequest, type OtlpSpan } from '../../src/integrations/otlp/request.js';

/**
 * A local OTLP/HTTP trace receiver for the export tests: node:http, decoding both encodings with the
 * ingest side's reader (protobuf through protobufjs and the OTLP descriptor), so what the official
 * exporter sends is read the way a collector reads it. `answers` queues the status of the next
 * requests (then 200), to test retries.
 */
export interface Receiver {
  url: string;
  requests: Array<{ path: string; contentType: string; headers: http.IncomingHttpHeaders; status: number }>;
  spans: OtlpSpan[];
  answers: number[];
  close(): Promise<void>;
}

export async function startReceiver(): Promise<Receiver> {
  const r: Omit<Receiver, 'url' | 'close'> = { requests: [], spans: [], answers: [] };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => void answer());
    const answer = async () => {
      const status = r.answers.shift() ?? 200;
      const contentType = req.headers['content-type'] ?? '';
      r.requests.push({ path: req.url ?? '', contentType, headers: req.headers, status });
      if (status === 200) {
        const body = Buffer.concat(chunks);
        const doc = contentType.startsWith('application/json') ? (JSON.parse(body.toString('utf8')) as unknown) : await decodeTraceRequest(body);
        r.spans.push(...readTraceRequest(doc));
      }
      res.writeHead(status, { 'content-type': contentType.startsWith('application/json') ? 'application/json' : 'application/x-protobuf', ...(status === 429 ? { 'retry-after': '0' } : {}) });
      res.end(contentType.startsWith('application/json') ? '{}' : '');
    };
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(r, {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  });
}
