import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll } from 'vitest';
import { REPO_ROOT } from '../helpers/ledger.js';

const FIXTURES = path.join(REPO_ROOT, 'test', 'fixtures', 'integrations');

export const fixture = (name: string): string => fs.readFileSync(path.join(FIXTURES, name), 'utf8');
export const fixtureJson = (name: string): unknown => JSON.parse(fixture(name)) as unknown;
/** An SSE fixture as its events (each with its trailing blank line). */
export const sseEvents = (name: string): string[] =>
  fixture(name)
    .split(/\n\n/)
    .filter((e) => e.trim() !== '')
    .map((e) => `${e}\n\n`);

/** One answer the server gives to the next request. */
export type Answer =
  | { kind: 'json'; status: number; body: unknown; headers?: Record<string, string> }
  | {
      kind: 'sse';
      events: string[];
      headers?: Record<string, string>;
      /** Send this many events, then wait for `release` before the rest. */
      holdAfter?: number;
      release?: Promise<void>;
      /** Send this many events, then destroy the connection (a stream cut mid-way). */
      cutAfter?: number;
    };

export interface ProviderServer {
  baseURL: string;
  /** Queues the answer to the next request. */
  next(answer: Answer): void;
  /** The requests received: method, path and parsed JSON body. */
  requests: Array<{ method: string; url: string; body: unknown; headers: http.IncomingHttpHeaders }>;
}

/**
 * A local stand-in for a provider's API on 127.0.0.1: the real SDK clients are pointed at it with
 * their `baseURL` option and get the documented answers from test/fixtures/integrations.
 */
export async function providerServer(): Promise<ProviderServer> {
  const queue: Answer[] = [];
  const requests: ProviderServer['requests'] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      requests.push({ method: req.method ?? '', url: req.url ?? '', body: text === '' ? undefined : (JSON.parse(text) as unknown), headers: req.headers });
      const answer = queue.shift();
      if (answer === undefined) {
        res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: 'no answer queued in the test' } }));
        return;
      }
      void send(res, answer);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const { port } = server.address() as AddressInfo;
  return { baseURL: `http://127.0.0.1:${port}`, next: (a) => queue.push(a), requests };
}

async function send(res: http.ServerResponse, a: Answer): Promise<void> {
  if (a.kind === 'json') {
    res.writeHead(a.status, { 'content-type': 'application/json', ...a.headers }).end(JSON.stringify(a.body));
    return;
  }
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', ...a.headers });
  res.flushHeaders();
  for (let i = 0; i < a.events.length; i++) {
    if (a.cutAfter === i) {
      // Let what was written reach the client before the connection is cut.
      await new Promise((r) => setTimeout(r, 20));
      res.socket?.destroy();
      return;
    }
    if (a.holdAfter === i && a.release !== undefined) await a.release;
    res.write(a.events[i]);
  }
  res.end();
}

/** A promise the test resolves by hand. */
export function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}
