import { createHash } from 'node:crypto';
import Anthropic from '@anthropic-ai/sdk';
import { afterAll, describe, expect, it } from 'vitest';
import { canonicalize, type StoredEvent } from '../../src/core/index.js';
import { recordAnthropic, toolCallParent } from '../../src/integrations/anthropic.js';
import { openWitness, type Session, type Witness } from '../../src/index.js';
import { verifyLedger } from '../../src/store/index.js';
import { driverOf } from '../helpers/ledger.js';
import { tempDb, tempDir } from '../helpers/tmp.js';
import { fixtureJson, gate, providerServer, sseEvents } from './provider-server.js';

const dir = tempDir();
const server = await providerServer();
const errors: unknown[] = [];
const w: Witness = await openWitness({ store: `sqlite:${tempDb(dir)}`, onError: (e) => errors.push(e) });
afterAll(() => w.close());

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const bare = () => new Anthropic({ apiKey: 'test-key', baseURL: server.baseURL, maxRetries: 0 });
const SYSTEM = 'You are the refund desk. House rule 7: never refund twice.';
const TOOLS = [{ name: 'get_order', description: 'Look an order up', input_schema: { type: 'object' as const, properties: { order_id: { type: 'string' } }, required: ['order_id'] } }];

async function fresh(): Promise<Session> {
  return w.session({ agent: { id: 'refund-bot', version: '2.0.1' } });
}

async function llmCalls(s: Session): Promise<StoredEvent[]> {
  await w.flush();
  return (await driverOf(w).readStream(s.id)).filter((e) => e.kind === 'llm.call');
}

const messageAnswer = () => ({ kind: 'json' as const, status: 200, body: fixtureJson('anthropic-message.json'), headers: { 'request-id': 'req_018EeWyXxfu5pfWkrYcMdjWG' } });

describe('recordAnthropic', () => {
  it('[R-LLM-WRAPPERS] records a messages.create as llm.call with models, input, hashes, output, tool calls, usage, latency, stop reason and request id, and the caller gets what the bare client gets', async () => {
    const s = await fresh();
    const params = { model: 'claude-sonnet-4-5', max_tokens: 1024, temperature: 0.2, system: SYSTEM, tools: TOOLS, messages: [{ role: 'user' as const, content: 'Refund order A-1' }] };
    server.next(messageAnswer());
    const plain = await bare().messages.create(params);
    server.next(messageAnswer());
    const client = recordAnthropic(bare(), s);
    const wrapped = await client.messages.create(params);
    expect(wrapped).toEqual(plain);
    expect(wrapped._request_id).toBe('req_018EeWyXxfu5pfWkrYcMdjWG');
    expect(server.requests.at(-1)!.body).toEqual(server.requests.at(-2)!.body);

    const [ev] = await llmCalls(s);
    expect(ev).toBeDefined();
    expect(ev!.resource).toBe('anthropic');
    expect(ev!.action).toBe('messages.create');
    expect(ev!.outcome).toBe('success');
    expect(ev!.data).toEqual({
      provider: 'anthropic',
      model: 'claude-sonnet-4-5',
      response_model: 'claude-sonnet-4-5-20250929',
      input: [{ role: 'user', content: 'Refund order A-1' }],
      parameters: { max_tokens: 1024, temperature: 0.2 },
      system_prompt_sha256: sha256(SYSTEM),
      tool_definitions_sha256: sha256(canonicalize(TOOLS)),
      output: (fixtureJson('anthropic-message.json') as { content: unknown }).content,
      tool_calls: [{ id: 'toolu_01A09q90qw90lq917835lq9', name: 'get_order', arguments: { order_id: 'A-1' } }],
      usage: { input_tokens: 472, output_tokens: 91, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, service_tier: 'standard' },
      latency_ms: expect.any(Number) as number,
      stop_reason: 'tool_use',
      request_id: 'req_018EeWyXxfu5pfWkrYcMdjWG',
      agent_version: '2.0.1',
    });
    expect(JSON.stringify(ev)).not.toContain('House rule 7');
    expect(errors).toEqual([]);
  });

  it('links the tool.call that runs a requested tool_use to the llm.call that asked for it', async () => {
    const s = await fresh();
    server.next(messageAnswer());
    const msg = await recordAnthropic(bare(), s).messages.create({ model: 'claude-sonnet-4-5', max_tokens: 100, messages: [{ role: 'user', content: 'Refund A-1' }], tools: TOOLS });
    const use = msg.content.find((b) => b.type === 'tool_use')!;
    await s.tool(use.name, use.input, () => ({ status: 'paid' }), toolCallParent(s, use.id));
    await w.flush();
    const events = await driverOf(w).readStream(s.id);
    const llm = events.find((e) => e.kind === 'llm.call')!;
    const call = events.find((e) => e.kind === 'tool.call')!;
    expect(call.parent).toBe(llm.id);
    expect(toolCallParent(s, 'toolu_unknown')).toEqual({});
  });

  it('[R-LLM-WRAPPERS] hands the first streamed event to the caller before the stream ends, and records the assembled message once it has', async () => {
    const s = await fresh();
    const release = gate();
    server.next({ kind: 'sse', events: sseEvents('anthropic-stream.sse'), headers: { 'request-id': 'req_stream_1' }, holdAfter: 4, release: release.promise });
    const stream = await recordAnthropic(bare(), s).messages.create({ model: 'claude-sonnet-4-5', max_tokens: 100, stream: true, messages: [{ role: 'user', content: 'Refund A-1' }] });
    expect(stream).toBeInstanceOf((await import('@anthropic-ai/sdk/streaming')).Stream);
    const seen: string[] = [];
    for await (const event of stream) {
      seen.push(event.type);
      if (event.type === 'content_block_delta' && seen.filter((t) => t === 'content_block_delta').length === 1) {
        // The server holds the rest: this event reached us while the stream was still open.
        expect(await llmCalls(s)).toEqual([]);
        release.open();
      }
    }
    expect(seen).toEqual([
      'message_start',
      'content_block_start',
      'content_block_delta',
      'content_block_delta',
      'content_block_stop',
      'content_block_start',
      'content_block_delta',
      'content_block_delta',
      'content_block_delta',
      'content_block_stop',
      'message_delta',
      'message_stop',
    ]);
    const [ev] = await llmCalls(s);
    expect(ev!.outcome).toBe('success');
    expect(ev!.data).toMatchObject({
      model: 'claude-sonnet-4-5',
      response_model: 'claude-sonnet-4-5-20250929',
      output: [
        { type: 'text', text: 'Okay, let me check order A-1.' },
        { type: 'tool_use', id: 'toolu_01T1x1fJ34qAmk2tNTrN7Up6', name: 'get_order', input: { order_id: 'A-1' } },
      ],
      tool_calls: [{ id: 'toolu_01T1x1fJ34qAmk2tNTrN7Up6', name: 'get_order', arguments: { order_id: 'A-1' } }],
      usage: { input_tokens: 472, output_tokens: 89 },
      stop_reason: 'tool_use',
      request_id: 'req_stream_1',
      stream: true,
      parameters: { max_tokens: 100 },
    });
    expect(ev!.data).not.toHaveProperty('partial');
    const data = ev!.data as { first_chunk_ms: number; latency_ms: number };
    expect(data.first_chunk_ms).toBeLessThan(data.latency_ms);
  });

  it('hands the caller the same stream events as the bare client, in the same order', async () => {
    const s = await fresh();
    const params = { model: 'claude-sonnet-4-5', max_tokens: 100, stream: true as const, messages: [{ role: 'user' as const, content: 'Refund A-1' }] };
    const read = async (client: Anthropic) => {
      server.next({ kind: 'sse', events: sseEvents('anthropic-stream.sse') });
      const items: unknown[] = [];
      for await (const e of await client.messages.create(params)) items.push(e);
      return items;
    };
    const plain = await read(bare());
    expect(await read(recordAnthropic(bare(), s))).toEqual(plain);
    expect(plain).toHaveLength(12);
  });

  it('records messages.stream() (which calls create) with its final message', async () => {
    const s = await fresh();
    server.next({ kind: 'sse', events: sseEvents('anthropic-stream.sse') });
    const final = await recordAnthropic(bare(), s)
      .messages.stream({ model: 'claude-sonnet-4-5', max_tokens: 100, messages: [{ role: 'user', content: 'Refund A-1' }] })
      .finalMessage();
    expect(final.stop_reason).toBe('tool_use');
    const [ev] = await llmCalls(s);
    expect(ev!.data).toMatchObject({ stream: true, stop_reason: 'tool_use', tool_calls: [{ name: 'get_order', arguments: { order_id: 'A-1' } }] });
  });

  it('rethrows the provider error as the SDK raised it (529 overloaded) and records the call as an error', async () => {
    const s = await fresh();
    server.next({ kind: 'json', status: 529, body: fixtureJson('anthropic-error-529.json'), headers: { 'request-id': 'req_011CSHoEeqs5C35K2UUqR7Fy' } });
    const plainErr = await bare()
      .messages.create({ model: 'claude-sonnet-4-5', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] })
      .catch((e: unknown) => e);
    server.next({ kind: 'json', status: 529, body: fixtureJson('anthropic-error-529.json'), headers: { 'request-id': 'req_011CSHoEeqs5C35K2UUqR7Fy' } });
    const err = await recordAnthropic(bare(), s)
      .messages.create({ model: 'claude-sonnet-4-5', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Anthropic.OverloadedError);
    expect(err).toBeInstanceOf(Anthropic.APIError);
    expect(Object.getPrototypeOf(err)).toBe(Object.getPrototypeOf(plainErr));
    // The two requests may straddle a second: the Date header is the only part that may differ.
    const undated = (e: unknown) => JSON.parse(JSON.stringify({ ...(e as object) }, (k, v: unknown) => (k === 'date' ? undefined : v))) as unknown;
    expect(undated(err)).toEqual(undated(plainErr));
    const [ev] = await llmCalls(s);
    expect(ev!.outcome).toBe('error');
    expect(ev!.data).toMatchObject({
      model: 'claude-sonnet-4-5',
      request_id: 'req_011CSHoEeqs5C35K2UUqR7Fy',
      error: { message: (err as Error).message, name: (err as Error).name, code: 'overloaded_error', status: 529 },
    });
    expect(ev!.data).not.toHaveProperty('output');
  });

  it('records a stream cut mid-way as partial, with what arrived and the error, which the caller gets unchanged', async () => {
    const s = await fresh();
    server.next({ kind: 'sse', events: sseEvents('anthropic-stream.sse'), cutAfter: 9 });
    const stream = await recordAnthropic(bare(), s).messages.create({ model: 'claude-sonnet-4-5', max_tokens: 100, stream: true, messages: [{ role: 'user', content: 'Refund A-1' }] });
    const got: string[] = [];
    let caught: unknown;
    try {
      for await (const e of stream) got.push(e.type);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(Error);
    expect(got.length).toBeGreaterThan(2);
    const [ev] = await llmCalls(s);
    expect(ev!.outcome).toBe('error');
    expect(ev!.data).toMatchObject({
      partial: true,
      stream: true,
      output: [
        { type: 'text', text: 'Okay, let me check order A-1.' },
        { type: 'tool_use', id: 'toolu_01T1x1fJ34qAmk2tNTrN7Up6', name: 'get_order', partial_input: '{"order_id": "A' },
      ],
      error: { message: (caught as Error).message },
    });
    expect((ev!.data as { output: Array<Record<string, unknown>> }).output[1]).not.toHaveProperty('input');
    expect(ev!.data).not.toHaveProperty('stop_reason');
  });

  it('records an error event mid-stream (overloaded) as a partial call with the provider error, which the caller gets as the SDK raised it', async () => {
    const s = await fresh();
    server.next({ kind: 'sse', events: sseEvents('anthropic-stream-error.sse') });
    const stream = await recordAnthropic(bare(), s).messages.create({ model: 'claude-sonnet-4-5', max_tokens: 100, stream: true, messages: [{ role: 'user', content: 'hi' }] });
    const caught = await (async () => {
      for await (const _ of stream) void _;
    })().catch((e: unknown) => e);
    expect(caught).toBeInstanceOf(Anthropic.APIError);
    const [ev] = await llmCalls(s);
    expect(ev!.outcome).toBe('error');
    expect(ev!.data).toMatchObject({ partial: true, output: [{ type: 'text', text: 'Let me' }], error: { code: 'overloaded_error', message: (caught as Error).message } });
  });

  it('records a stream the caller leaves early as partial, without an error', async () => {
    const s = await fresh();
    server.next({ kind: 'sse', events: sseEvents('anthropic-stream.sse') });
    const stream = await recordAnthropic(bare(), s).messages.create({ model: 'claude-sonnet-4-5', max_tokens: 100, stream: true, messages: [{ role: 'user', content: 'Refund A-1' }] });
    for await (const e of stream) if (e.type === 'content_block_delta') break;
    const [ev] = await llmCalls(s);
    expect(ev!.outcome).toBe('success');
    expect(ev!.data).toMatchObject({ partial: true, output: [{ type: 'text', text: 'Okay, let me check' }] });
    expect(ev!.data).not.toHaveProperty('error');
  });

  it('keeps withResponse() and asResponse(): the raw body stays unread for the caller, and a call read only that way is recorded without its answer', async () => {
    const s = await fresh();
    const client = recordAnthropic(bare(), s);
    server.next(messageAnswer());
    const { data, response, request_id } = await client.messages.create({ model: 'claude-sonnet-4-5', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }).withResponse();
    expect(data.id).toBe('msg_01XFDUDYJgAACzvnptvVoYEL');
    expect(response.status).toBe(200);
    expect(request_id).toBe('req_018EeWyXxfu5pfWkrYcMdjWG');
    expect(await llmCalls(s)).toHaveLength(1);
    server.next(messageAnswer());
    const raw = await client.messages.create({ model: 'claude-sonnet-4-5', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }).asResponse();
    expect(((await raw.json()) as { id: string }).id).toBe('msg_01XFDUDYJgAACzvnptvVoYEL');
    const [, rawCall, ...more] = await llmCalls(s);
    expect(more).toEqual([]);
    expect(rawCall!.data).toMatchObject({ raw_response: true, request_id: 'req_018EeWyXxfu5pfWkrYcMdjWG' });
    expect(rawCall!.data).not.toHaveProperty('output');
  });

  it('records a connection failure (no provider listening) as an error and rethrows the SDK APIConnectionError', async () => {
    const s = await fresh();
    const closed = new Anthropic({ apiKey: 'test-key', baseURL: 'http://127.0.0.1:9', maxRetries: 0 });
    const err = await recordAnthropic(closed, s)
      .messages.create({ model: 'claude-sonnet-4-5', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Anthropic.APIConnectionError);
    const [ev] = await llmCalls(s);
    expect(ev!.outcome).toBe('error');
    expect(ev!.data).toMatchObject({ error: { name: (err as Error).name, message: (err as Error).message } });
  });

  it('records a stream the caller aborts through its controller as partial', async () => {
    const s = await fresh();
    // The server sends two events and holds the rest: the caller gives up waiting.
    server.next({ kind: 'sse', events: sseEvents('anthropic-stream.sse'), holdAfter: 2, release: gate().promise });
    const stream = await recordAnthropic(bare(), s).messages.create({ model: 'claude-sonnet-4-5', max_tokens: 100, stream: true, messages: [{ role: 'user', content: 'Refund A-1' }] });
    const seen: string[] = [];
    for await (const e of stream) {
      seen.push(e.type);
      if (e.type === 'content_block_start') stream.controller.abort();
    }
    expect(seen).toEqual(['message_start', 'content_block_start']);
    const [ev] = await llmCalls(s);
    expect(ev!.data).toMatchObject({ partial: true, stream: true });
    expect(ev!.data).not.toHaveProperty('stop_reason');
  });

  it('redacts a secret in a message before it reaches the ledger, while the provider gets the message as written', async () => {
    const s = await fresh();
    const secret = 'sk-ant-api03-R2D2C3POr2d2c3poR2D2C3PO';
    server.next(messageAnswer());
    await recordAnthropic(bare(), s).messages.create({ model: 'claude-sonnet-4-5', max_tokens: 10, messages: [{ role: 'user', content: `my key is ${secret}, refund A-1` }] });
    expect(JSON.stringify(server.requests.at(-1)!.body)).toContain(secret);
    const [ev] = await llmCalls(s);
    expect(JSON.stringify(ev)).not.toContain(secret);
    expect(JSON.stringify(ev!.data)).toContain('refund A-1');
  });

  it('leaves the rest of the client working (withOptions is recorded too) and the ledger verifies', async () => {
    const s = await fresh();
    const client = recordAnthropic(bare(), s);
    expect(client).toBeInstanceOf(Anthropic);
    expect(client.baseURL).toBe(server.baseURL);
    server.next(messageAnswer());
    await client.withOptions({ timeout: 5000 }).messages.create({ model: 'claude-haiku-4-5', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] });
    expect((await llmCalls(s)).map((e) => (e.data as { model: string }).model)).toEqual(['claude-haiku-4-5']);
    await s.end();
    await w.flush();
    const report = await verifyLedger(driverOf(w));
    expect(report.ok).toBe(true);
    expect(errors).toEqual([]);
  });
});
