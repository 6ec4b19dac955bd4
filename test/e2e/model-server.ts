import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A stand-in for a model provider's HTTP API on 127.0.0.1, for end-to-end tests that run a coding
 * agent's real CLI: every request is kept (method, path, headers, parsed JSON body) for the test to
 * read, and `answer` chooses the reply, usually a recorded SSE stream from test/fixtures/e2e.
 * Nothing leaves the machine.
 */

export interface ModelRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  /** The JSON body, or undefined when the body was empty or not JSON. */
  body: unknown;
}

export interface Answer {
  status?: number;
  /** `text/event-stream` bodies are sent one event at a time, as a provider streams them. */
  contentType: string;
  body: string;
}

export interface ModelServer {
  /** `http://127.0.0.1:<port>` */
  origin: string;
  requests: ModelRequest[];
  close(): Promise<void>;
}

/** The events of a recorded SSE file (blank-line separated, LF or CRLF as recorded), each ending in its blank line. */
export function sseEvents(text: string): string[] {
  const eol = text.includes('\r\n') ? '\r\n' : '\n';
  return text
    .split(/(?:\r?\n){2,}/)
    .filter((e) => e.trim() !== '')
    .map((e) => `${e}${eol}${eol}`);
}

export function sseFile(file: string): Answer {
  return { contentType: 'text/event-stream', body: fs.readFileSync(file, 'utf8') };
}

export async function startModelServer(answer: (request: ModelRequest) => Answer): Promise<ModelServer> {
  const requests: ModelRequest[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      let body: unknown;
      try {
        body = raw === '' ? undefined : JSON.parse(raw);
      } catch {
        body = undefined;
      }
      const request: ModelRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body };
      requests.push(request);
      let reply: Answer;
      try {
        reply = answer(request);
      } catch (e) {
        // A request the script has no answer for fails the agent's call loudly, and the test sees why in `requests`.
        reply = { status: 500, contentType: 'application/json', body: JSON.stringify({ error: { message: (e as Error).message } }) };
      }
      res.writeHead(reply.status ?? 200, { 'content-type': reply.contentType, 'cache-control': 'no-cache' });
      if (reply.contentType !== 'text/event-stream') {
        res.end(reply.body);
        return;
      }
      for (const event of sseEvents(reply.body)) res.write(event);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
