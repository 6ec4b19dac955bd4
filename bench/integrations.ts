/**
 * Benchmark — LLM client wrappers (issue 16): what `witness/anthropic`, `witness/openai` and
 * `witness/ai` add to a call, against the bare SDK talking to the same local endpoint in the same
 * run. The endpoint is a node:http server on 127.0.0.1 answering with the fixtures the wrapper
 * tests use, so a call's time is the SDK's own work plus loopback HTTP, and the wrapper's share is
 * as large as it can look. Bare and wrapped calls alternate, so drift on the machine hits both.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Anthropic from '@anthropic-ai/sdk';
import { createOpenAI } from '@ai-sdk/openai';
import { generateText, streamText } from 'ai';
import OpenAI from 'openai';
import { recordModel } from '../src/integrations/ai.js';
import { recordAnthropic } from '../src/integrations/anthropic.js';
import { recordOpenAI } from '../src/integrations/openai.js';
import { openWitness } from '../src/index.js';
import type { Config } from './config.js';
import { fmtRatio, fmtUs, freshDbPath, log, mdTable, median, removeDb, type Section, type Verdict } from './util.js';

const FIXTURES = fileURLToPath(new URL('../../test/fixtures/integrations/', import.meta.url));
const fixture = (name: string): string => fs.readFileSync(path.join(FIXTURES, name), 'utf8');

/** Answers by path and by the request's `stream` flag, from the fixtures. */
async function endpoint(): Promise<{ url: string; close: () => Promise<void> }> {
  const answers = {
    anthropic: { json: fixture('anthropic-message.json'), sse: fixture('anthropic-stream.sse') },
    openai: { json: fixture('openai-chat.json'), sse: fixture('openai-chat-stream.sse') },
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { stream?: boolean };
      const a = req.url?.includes('/messages') === true ? answers.anthropic : answers.openai;
      const headers = { 'x-request-id': 'req_bench', 'request-id': 'req_bench' };
      if (body.stream !== true) {
        res.writeHead(200, { 'content-type': 'application/json', ...headers }).end(a.json);
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream', ...headers });
      res.end(a.sse);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

interface Timing {
  totalMs: number;
  firstMs?: number;
}

/** One kind of call, made bare and wrapped. */
interface Case {
  name: string;
  stream: boolean;
  bare: () => Promise<Timing>;
  wrapped: () => Promise<Timing>;
}

async function timed(run: () => Promise<void>): Promise<Timing> {
  const t = performance.now();
  await run();
  return { totalMs: performance.now() - t };
}

/** Drains a stream, noting when its first token (an item `isToken` accepts) reached the caller. */
async function timedStream(open: () => Promise<AsyncIterable<unknown>> | AsyncIterable<unknown>, isToken: (item: unknown) => boolean): Promise<Timing> {
  const t = performance.now();
  let firstMs: number | undefined;
  for await (const item of await open()) if (firstMs === undefined && isToken(item)) firstMs = performance.now() - t;
  return { totalMs: performance.now() - t, ...(firstMs === undefined ? {} : { firstMs }) };
}

const field = (x: unknown, k: string): unknown => (typeof x === 'object' && x !== null ? (x as Record<string, unknown>)[k] : undefined);
/** Anthropic: the first content delta. OpenAI: the first chunk with content. AI SDK: the first text delta. */
const anthropicToken = (e: unknown) => field(e, 'type') === 'content_block_delta';
const openaiToken = (c: unknown) => {
  const delta = field((field(c, 'choices') as unknown[] | undefined)?.[0], 'delta');
  return (typeof field(delta, 'content') === 'string' && field(delta, 'content') !== '') || field(delta, 'tool_calls') !== undefined;
};
const aiToken = (p: unknown) => field(p, 'type') === 'text-delta' || field(p, 'type') === 'tool-input-delta';

export async function benchIntegrations(cfg: Config): Promise<Section> {
  const n = cfg.quick ? 30 : 400;
  const warm = cfg.quick ? 5 : 40;
  const server = await endpoint();
  const db = freshDbPath('integrations');
  const w = await openWitness({ store: `sqlite:${db}`, onError: () => undefined });
  const s = await w.session({ agent: { id: 'bench' } });
  const anthropic = new Anthropic({ apiKey: 'k', baseURL: server.url, maxRetries: 0 });
  const openai = new OpenAI({ apiKey: 'k', baseURL: `${server.url}/v1`, maxRetries: 0 });
  const rAnthropic = recordAnthropic(anthropic, s);
  const rOpenai = recordOpenAI(openai, s);
  const model = createOpenAI({ apiKey: 'k', baseURL: `${server.url}/v1` }).chat('gpt-4o');
  const rModel = recordModel(model, s);
  const aParams = { model: 'claude-sonnet-4-5', max_tokens: 256, messages: [{ role: 'user' as const, content: 'Refund order A-1' }] };
  const oParams = { model: 'gpt-4o', messages: [{ role: 'user' as const, content: 'Refund order A-1' }] };
  const cases: Case[] = [
    {
      name: '`witness/anthropic` messages.create',
      stream: false,
      bare: () => timed(async () => void (await anthropic.messages.create(aParams))),
      wrapped: () => timed(async () => void (await rAnthropic.messages.create(aParams))),
    },
    {
      name: '`witness/anthropic` messages.create (stream)',
      stream: true,
      bare: () => timedStream(() => anthropic.messages.create({ ...aParams, stream: true }), anthropicToken),
      wrapped: () => timedStream(() => rAnthropic.messages.create({ ...aParams, stream: true }), anthropicToken),
    },
    {
      name: '`witness/openai` chat.completions.create',
      stream: false,
      bare: () => timed(async () => void (await openai.chat.completions.create(oParams))),
      wrapped: () => timed(async () => void (await rOpenai.chat.completions.create(oParams))),
    },
    {
      name: '`witness/openai` chat.completions.create (stream)',
      stream: true,
      bare: () => timedStream(() => openai.chat.completions.create({ ...oParams, stream: true }), openaiToken),
      wrapped: () => timedStream(() => rOpenai.chat.completions.create({ ...oParams, stream: true }), openaiToken),
    },
    {
      name: '`witness/ai` generateText',
      stream: false,
      bare: () => timed(async () => void (await generateText({ model, prompt: 'Refund order A-1', maxRetries: 0 }))),
      wrapped: () => timed(async () => void (await generateText({ model: rModel, prompt: 'Refund order A-1', maxRetries: 0 }))),
    },
    {
      name: '`witness/ai` streamText',
      stream: true,
      bare: () => timedStream(() => streamText({ model, prompt: 'Refund order A-1', maxRetries: 0 }).fullStream, aiToken),
      wrapped: () => timedStream(() => streamText({ model: rModel, prompt: 'Refund order A-1', maxRetries: 0 }).fullStream, aiToken),
    },
  ];
  const rows: string[][] = [];
  const ttftRows: string[][] = [];
  const verdicts: Verdict[] = [];
  let worstAddedUs = 0;
  let worstTtft = { name: '', bare: 0, wrapped: 0 };
  try {
    for (const c of cases) {
      log(`integrations: ${c.name}, ${warm} warm-up and ${n} measured pairs`);
      for (let i = 0; i < warm; i++) {
        await c.bare();
        await c.wrapped();
      }
      const bare: Timing[] = [];
      const wrapped: Timing[] = [];
      for (let i = 0; i < n; i++) {
        // Alternate which goes first, so neither always runs on a warmer connection.
        if (i % 2 === 0) {
          bare.push(await c.bare());
          wrapped.push(await c.wrapped());
        } else {
          wrapped.push(await c.wrapped());
          bare.push(await c.bare());
        }
      }
      await w.flush();
      const b = median(bare.map((t) => t.totalMs));
      const r = median(wrapped.map((t) => t.totalMs));
      const addedUs = (r - b) * 1000;
      worstAddedUs = Math.max(worstAddedUs, addedUs);
      rows.push([c.name, fmtUs(b * 1000), fmtUs(r * 1000), fmtUs(addedUs), fmtRatio(r / b)]);
      if (c.stream) {
        const bf = median(bare.map((t) => t.firstMs ?? NaN));
        const rf = median(wrapped.map((t) => t.firstMs ?? NaN));
        ttftRows.push([c.name, fmtUs(bf * 1000), fmtUs(rf * 1000), fmtUs((rf - bf) * 1000), fmtRatio(rf / bf)]);
        if (rf - bf > worstTtft.wrapped - worstTtft.bare) worstTtft = { name: c.name, bare: bf, wrapped: rf };
      }
    }
  } finally {
    await w.close();
    await server.close();
    removeDb(db);
  }
  // A real provider call takes hundreds of milliseconds; 1 % of a fast 500 ms call is 5 ms.
  verdicts.push({ target: 'wrapper p50 added per call < 5 ms (1 % of a fast 500 ms LLM call)', measured: `worst ${fmtUs(worstAddedUs)} µs`, met: worstAddedUs < 5000 });
  const ttftAdded = (worstTtft.wrapped - worstTtft.bare) * 1000;
  verdicts.push({
    target: 'time to first token unchanged: wrapped p50 within 10 % or 100 µs of the bare SDK',
    measured: `largest difference ${fmtUs(ttftAdded)} µs (${worstTtft.name || 'none'})`,
    met: ttftAdded <= Math.max(100, worstTtft.bare * 1000 * 0.1),
  });
  return {
    id: 'integrations',
    title: 'LLM client wrappers: overhead per call against the bare SDK',
    method: [
      `The real \`@anthropic-ai/sdk\`, \`openai\` and \`ai\` (with \`@ai-sdk/openai\`) clients against one local node:http endpoint on 127.0.0.1 that answers from test/fixtures/integrations (a tool-use message, a chat completion with a tool call, and their SSE streams), each call made bare and through its wrapper recording into a SQLite ledger, alternating, ${n} pairs per call after ${warm} warm-up pairs, in one run. A call's time is until the result is in hand (a stream: drained); time to first token is until the first content delta reaches the caller (Anthropic \`content_block_delta\`, an OpenAI chunk with content or tool-call arguments, the AI SDK's first \`text-delta\`). The recording itself is queued and written off the call's path, so it shows here only as the work done on the call's thread.`,
    ],
    body: [
      mdTable(['call', 'bare p50 (µs)', 'wrapped p50 (µs)', 'added p50 (µs)', 'ratio'], rows),
      'Time to first token (streams):',
      mdTable(['stream', 'bare p50 (µs)', 'wrapped p50 (µs)', 'difference (µs)', 'ratio'], ttftRows),
    ],
    verdicts,
  };
}
