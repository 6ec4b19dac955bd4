import { createHash } from 'node:crypto';
import OpenAI from 'openai';
import { afterAll, describe, expect, it } from 'vitest';
import { canonicalize, type StoredEvent } from '../../src/core/index.js';
import { recordOpenAI, toolCallParent } from '../../src/integrations/openai.js';
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
const bare = () => new OpenAI({ apiKey: 'test-key', baseURL: `${server.baseURL}/v1`, maxRetries: 0 });
const SYSTEM = 'You are the refund desk. House rule 7: never refund twice.';
const TOOLS = [{ type: 'function' as const, function: { name: 'get_order', parameters: { type: 'object', properties: { order_id: { type: 'string' } } } } }];

async function fresh(): Promise<Session> {
  return w.session({ agent: { id: 'refund-bot' } });
}

async function llmCalls(s: Session): Promise<StoredEvent[]> {
  await w.flush();
  return (await driverOf(w).readStream(s.id)).filter((e) => e.kind === 'llm.call');
}

const chatAnswer = () => ({ kind: 'json' as const, status: 200, body: fixtureJson('openai-chat.json'), headers: { 'x-request-id': 'req_chat_1' } });

describe('recordOpenAI', () => {
  it('[R-LLM-WRAPPERS] records chat.completions.create with the system prompt hashed (not stored), tool calls parsed, usage, stop reason and request id; the caller gets what the bare client gets', async () => {
    const s = await fresh();
    const params = {
      model: 'gpt-4o',
      temperature: 0,
      tools: TOOLS,
      messages: [
        { role: 'system' as const, content: SYSTEM },
        { role: 'user' as const, content: 'Refund order A-1' },
      ],
    };
    server.next(chatAnswer());
    const plain = await bare().chat.completions.create(params);
    server.next(chatAnswer());
    const wrapped = await recordOpenAI(bare(), s).chat.completions.create(params);
    expect(wrapped).toEqual(plain);
    expect(wrapped._request_id).toBe('req_chat_1');
    const [ev] = await llmCalls(s);
    expect(ev!.action).toBe('chat.completions.create');
    expect(ev!.data).toEqual({
      provider: 'openai',
      model: 'gpt-4o',
      response_model: 'gpt-4o-2024-08-06',
      input: [{ role: 'user', content: 'Refund order A-1' }],
      parameters: { temperature: 0 },
      system_prompt_sha256: sha256(SYSTEM),
      tool_definitions_sha256: sha256(canonicalize(TOOLS)),
      output: (fixtureJson('openai-chat.json') as { choices: Array<{ message: unknown }> }).choices[0]!.message,
      tool_calls: [{ id: 'call_abc123', name: 'get_order', arguments: { order_id: 'A-1' } }],
      usage: expect.objectContaining({ input_tokens: 82, output_tokens: 17, total_tokens: 99, prompt_tokens: 82 }) as unknown,
      latency_ms: expect.any(Number) as number,
      stop_reason: 'tool_calls',
      request_id: 'req_chat_1',
    });
    expect(JSON.stringify(ev)).not.toContain('House rule 7');
  });

  it('links a tool.call to the chat completion that requested it', async () => {
    const s = await fresh();
    server.next(chatAnswer());
    const c = await recordOpenAI(bare(), s).chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Refund A-1' }] });
    const call = c.choices[0]!.message.tool_calls![0]!;
    await s.tool('get_order', { order_id: 'A-1' }, () => 'paid', toolCallParent(s, call.id));
    await w.flush();
    const events = await driverOf(w).readStream(s.id);
    expect(events.find((e) => e.kind === 'tool.call')!.parent).toBe(events.find((e) => e.kind === 'llm.call')!.id);
  });

  it('streams chat chunks to the caller as they come and records the assembled completion at the end', async () => {
    const s = await fresh();
    const release = gate();
    server.next({ kind: 'sse', events: sseEvents('openai-chat-stream.sse'), headers: { 'x-request-id': 'req_chat_stream' }, holdAfter: 2, release: release.promise });
    const stream = await recordOpenAI(bare(), s).chat.completions.create({
      model: 'gpt-4o-mini',
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'Refund A-1' }],
    });
    let n = 0;
    for await (const chunk of stream) {
      n += 1;
      if (n === 2) {
        expect(chunk.choices[0]!.delta.content).toBe('Hello');
        expect(await llmCalls(s)).toEqual([]);
        release.open();
      }
    }
    expect(n).toBe(8);
    const [ev] = await llmCalls(s);
    expect(ev!.data).toMatchObject({
      response_model: 'gpt-4o-mini-2024-07-18',
      output: {
        role: 'assistant',
        content: 'Hello, checking',
        tool_calls: [{ id: 'call_DdmO9pD3xa9XTPNJ32zg2hcA', type: 'function', function: { name: 'get_order', arguments: '{"order_id":"A-1"}' } }],
      },
      tool_calls: [{ id: 'call_DdmO9pD3xa9XTPNJ32zg2hcA', name: 'get_order', arguments: { order_id: 'A-1' } }],
      usage: { input_tokens: 20, output_tokens: 18, total_tokens: 38 },
      stop_reason: 'tool_calls',
      request_id: 'req_chat_stream',
      stream: true,
      parameters: { stream_options: { include_usage: true } },
    });
    expect(ev!.data).not.toHaveProperty('partial');
  });

  it('rethrows a 429 as the SDK raised it (RateLimitError) and records it', async () => {
    const s = await fresh();
    server.next({ kind: 'json', status: 429, body: fixtureJson('openai-error-429.json'), headers: { 'x-request-id': 'req_429' } });
    const err = await recordOpenAI(bare(), s)
      .chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect((err as InstanceType<typeof OpenAI.RateLimitError>).status).toBe(429);
    const [ev] = await llmCalls(s);
    expect(ev!.outcome).toBe('error');
    expect(ev!.data).toMatchObject({ request_id: 'req_429', error: { name: 'RateLimitError', code: 'rate_limit_exceeded', status: 429, message: (err as Error).message } });
  });

  it('records a chat stream cut mid-way as partial with the text that arrived', async () => {
    const s = await fresh();
    server.next({ kind: 'sse', events: sseEvents('openai-chat-stream.sse'), cutAfter: 3 });
    const stream = await recordOpenAI(bare(), s).chat.completions.create({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'Refund A-1' }] });
    const caught = await (async () => {
      for await (const _ of stream) void _;
    })().catch((e: unknown) => e);
    expect(caught).toBeInstanceOf(Error);
    const [ev] = await llmCalls(s);
    expect(ev!.outcome).toBe('error');
    expect(ev!.data).toMatchObject({ partial: true, output: { role: 'assistant', content: 'Hello, checking' }, error: { message: (caught as Error).message } });
  });

  it('records responses.create, instructions hashed and function calls linked by call_id', async () => {
    const s = await fresh();
    server.next({ kind: 'json', status: 200, body: fixtureJson('openai-response.json'), headers: { 'x-request-id': 'req_resp_1' } });
    const r = await recordOpenAI(bare(), s).responses.create({ model: 'gpt-4.1', instructions: SYSTEM, input: 'Refund order A-1', max_output_tokens: 200 });
    expect(r.output_text).toBe('');
    const [ev] = await llmCalls(s);
    expect(ev!.action).toBe('responses.create');
    expect(ev!.data).toMatchObject({
      model: 'gpt-4.1',
      response_model: 'gpt-4.1-2025-04-14',
      input: [{ role: 'user', content: 'Refund order A-1' }],
      system_prompt_sha256: sha256(SYSTEM),
      parameters: { max_output_tokens: 200 },
      tool_calls: [{ id: 'call_unLAR8MvFNptuiZK6K6HCy5k', name: 'get_order', arguments: { order_id: 'A-1' } }],
      usage: { input_tokens: 291, output_tokens: 23, total_tokens: 314 },
      stop_reason: 'completed',
      request_id: 'req_resp_1',
    });
    expect(toolCallParent(s, 'call_unLAR8MvFNptuiZK6K6HCy5k')).toEqual({ parent: ev!.id });
    expect(JSON.stringify(ev)).not.toContain('House rule 7');
  });

  it('records a Responses stream cut before response.completed as partial, with the text that arrived', async () => {
    const s = await fresh();
    server.next({ kind: 'sse', events: sseEvents('openai-response-stream.sse'), cutAfter: 4 });
    const stream = await recordOpenAI(bare(), s).responses.create({ model: 'gpt-4.1', input: 'Say hi', stream: true });
    const caught = await (async () => {
      for await (const _ of stream) void _;
    })().catch((e: unknown) => e);
    expect(caught).toBeInstanceOf(Error);
    const [ev] = await llmCalls(s);
    expect(ev!.outcome).toBe('error');
    expect(ev!.data).toMatchObject({ partial: true, response_model: 'gpt-4.1-2025-04-14', output: [{ type: 'message', status: 'incomplete', content: [{ type: 'output_text', text: 'Hi there!' }] }] });
    expect(ev!.data).not.toHaveProperty('stop_reason');
  });

  it('records a streamed responses.create from its response.completed event, and the ledger verifies', async () => {
    const s = await fresh();
    server.next({ kind: 'sse', events: sseEvents('openai-response-stream.sse') });
    const stream = await recordOpenAI(bare(), s).responses.create({ model: 'gpt-4.1', input: [{ role: 'user', content: 'Say hi' }], stream: true });
    const types: string[] = [];
    for await (const e of stream) types.push(e.type);
    expect(types.at(-1)).toBe('response.completed');
    const [ev] = await llmCalls(s);
    expect(ev!.data).toMatchObject({
      stream: true,
      response_model: 'gpt-4.1-2025-04-14',
      output: [{ type: 'message', content: [{ type: 'output_text', text: 'Hi there!' }] }],
      usage: { input_tokens: 37, output_tokens: 11 },
      stop_reason: 'completed',
    });
    await s.end();
    expect((await verifyLedger(driverOf(w))).ok).toBe(true);
    expect(errors).toEqual([]);
  });
});
