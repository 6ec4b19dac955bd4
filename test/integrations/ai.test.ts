import { createHash } from 'node:crypto';
import { createOpenAI } from '@ai-sdk/openai';
import { generateObject, generateText, jsonSchema, stepCountIs, streamObject, streamText, tool } from 'ai';
import { afterAll, describe, expect, it } from 'vitest';
import { canonicalize, type StoredEvent } from '../../src/core/index.js';
import { recordModel, toolCallParent } from '../../src/integrations/ai.js';
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
const provider = createOpenAI({ apiKey: 'test-key', baseURL: `${server.baseURL}/v1` });
const bare = () => provider.chat('gpt-4o');
const SYSTEM = 'You are the refund desk. House rule 7: never refund twice.';
const orderSchema = jsonSchema<{ order_id: string }>({ type: 'object', properties: { order_id: { type: 'string' } }, required: ['order_id'], additionalProperties: false });

async function fresh(): Promise<Session> {
  return w.session({ agent: { id: 'refund-bot' } });
}

async function events(s: Session): Promise<StoredEvent[]> {
  await w.flush();
  return driverOf(w).readStream(s.id);
}
const llmCalls = async (s: Session) => (await events(s)).filter((e) => e.kind === 'llm.call');

const chatAnswer = (file = 'openai-chat.json') => ({ kind: 'json' as const, status: 200, body: fixtureJson(file), headers: { 'x-request-id': 'req_ai_1' } });
/** What the caller sees of a result, without the SDK's timestamps and generated ids. */
const seen = (r: { text: string; finishReason: string; usage: unknown; toolCalls: unknown; response: { modelId: string } }) => ({
  text: r.text,
  finishReason: r.finishReason,
  usage: r.usage,
  toolCalls: r.toolCalls,
  modelId: r.response.modelId,
});

describe('recordModel (Vercel AI SDK)', () => {
  it('[R-LLM-WRAPPERS] records generateText through the real @ai-sdk/openai provider: models, input, hashed system prompt and tools, tool calls, usage, finish reason, request id; the caller gets what the bare model gives', async () => {
    const s = await fresh();
    const call = (model: Parameters<typeof generateText>[0]['model']) =>
      generateText({ model, system: SYSTEM, prompt: 'Refund order A-1', temperature: 0, maxRetries: 0, tools: { get_order: tool({ description: 'Look an order up', inputSchema: orderSchema }) } });
    server.next(chatAnswer());
    const plain = await call(bare());
    server.next(chatAnswer());
    const wrapped = await call(recordModel(bare(), s));
    expect(seen(wrapped)).toEqual(seen(plain));
    expect(wrapped.toolCalls[0]!.input).toEqual({ order_id: 'A-1' });
    const sentTools = (server.requests.at(-1)!.body as { tools: unknown }).tools;
    expect(sentTools).toEqual((server.requests.at(-2)!.body as { tools: unknown }).tools);
    const [ev] = await llmCalls(s);
    expect(ev!.resource).toBe('openai.chat');
    expect(ev!.action).toBe('generate');
    expect(ev!.outcome).toBe('success');
    expect(ev!.data).toEqual({
      provider: 'openai.chat',
      model: 'gpt-4o',
      response_model: 'gpt-4o-2024-08-06',
      input: [{ role: 'user', content: [{ type: 'text', text: 'Refund order A-1' }] }],
      parameters: { temperature: 0, toolChoice: { type: 'auto' } },
      system_prompt_sha256: sha256(SYSTEM),
      tool_definitions_sha256: expect.stringMatching(/^[0-9a-f]{64}$/) as string,
      output: [{ type: 'tool-call', toolCallId: 'call_abc123', toolName: 'get_order', input: '{"order_id":"A-1"}' }],
      tool_calls: [{ id: 'call_abc123', name: 'get_order', arguments: { order_id: 'A-1' } }],
      usage: expect.objectContaining({ input_tokens: 82, output_tokens: 17, prompt_tokens: 82, total_tokens: 99 }) as unknown,
      latency_ms: expect.any(Number) as number,
      stop_reason: 'tool-calls',
      request_id: 'req_ai_1',
    });
    expect(JSON.stringify(ev)).not.toContain('House rule 7');
  });

  it('hashes the tool definitions the SDK sends to the model, as RFC 8785 canonical JSON', async () => {
    const s = await fresh();
    server.next(chatAnswer());
    const tools = { get_order: tool({ description: 'Look an order up', inputSchema: orderSchema }) };
    await generateText({ model: recordModel(bare(), s), prompt: 'Refund A-1', maxRetries: 0, tools });
    const [ev] = await llmCalls(s);
    // What the middleware sees is the SDK's own tool list (type, name, description, JSON schema).
    const expected = [{ type: 'function', name: 'get_order', description: 'Look an order up', inputSchema: orderSchema.jsonSchema }];
    expect((ev!.data as { tool_definitions_sha256: string }).tool_definitions_sha256).toBe(sha256(canonicalize(expected)));
  });

  it('records each step of a tool loop, and the tool run by the SDK links to the call that requested it', async () => {
    const s = await fresh();
    server.next(chatAnswer());
    server.next(chatAnswer('openai-chat-text.json'));
    const tools = {
      get_order: tool({
        inputSchema: orderSchema,
        execute: (args, { toolCallId }) => s.tool('get_order', args, () => ({ status: 'paid' }), toolCallParent(s, toolCallId)),
      }),
    };
    const r = await generateText({ model: recordModel(bare(), s), prompt: 'Refund A-1', maxRetries: 0, tools, stopWhen: stepCountIs(3) });
    expect(r.text).toBe('Order A-1 is paid; I have refunded it.');
    const all = await events(s);
    const calls = all.filter((e) => e.kind === 'llm.call');
    expect(calls).toHaveLength(2);
    const toolCall = all.find((e) => e.kind === 'tool.call')!;
    expect(toolCall.parent).toBe(calls[0]!.id);
    expect(all.indexOf(calls[0]!)).toBeLessThan(all.indexOf(toolCall));
    expect(all.indexOf(toolCall)).toBeLessThan(all.indexOf(calls[1]!));
    expect((calls[1]!.data as { input: unknown[] }).input).toEqual(expect.arrayContaining([expect.objectContaining({ role: 'tool' }), expect.objectContaining({ role: 'assistant' })]) as unknown);
    expect((calls[1]!.data as { stop_reason: string }).stop_reason).toBe('stop');
  });

  it('records generateObject with the response format it asked for', async () => {
    const s = await fresh();
    const body = fixtureJson('openai-chat-text.json') as { choices: Array<{ message: { content: string } }> };
    body.choices[0]!.message.content = '{"order_id":"A-1"}';
    const answer = { kind: 'json' as const, status: 200, body, headers: { 'x-request-id': 'req_obj' } };
    server.next(answer);
    const plain = await generateObject({ model: bare(), schema: orderSchema, prompt: 'Which order?', maxRetries: 0 });
    server.next(answer);
    const wrapped = await generateObject({ model: recordModel(bare(), s), schema: orderSchema, prompt: 'Which order?', maxRetries: 0 });
    expect(wrapped.object).toEqual(plain.object);
    const [ev] = await llmCalls(s);
    expect((ev!.data as { parameters: { responseFormat: unknown } }).parameters.responseFormat).toEqual({ type: 'json', schema: orderSchema.jsonSchema });
    expect((ev!.data as { output: unknown }).output).toEqual([{ type: 'text', text: '{"order_id":"A-1"}' }]);
  });

  it('records streamObject once its stream is complete, with the JSON text it streamed', async () => {
    const s = await fresh();
    const chunk = (delta: Record<string, unknown>, finish: string | null = null) =>
      `data: ${JSON.stringify({ id: 'chatcmpl-obj', object: 'chat.completion.chunk', created: 1741570290, model: 'gpt-4o-2024-08-06', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
    const events = [chunk({ role: 'assistant', content: '' }), chunk({ content: '{"order_id":' }), chunk({ content: '"A-1"}' }), chunk({}, 'stop'), 'data: [DONE]\n\n'];
    const run = async (model: Parameters<typeof streamObject>[0]['model']) => {
      const r = streamObject({ model, schema: orderSchema, prompt: 'Which order?', maxRetries: 0 });
      for await (const partial of r.partialObjectStream) void partial;
      return r.object;
    };
    server.next({ kind: 'sse', events });
    const plain = await run(bare());
    server.next({ kind: 'sse', events });
    expect(await run(recordModel(bare(), s))).toEqual(plain);
    const [ev] = await llmCalls(s);
    const data = ev!.data as Record<string, unknown>;
    expect(ev!.action).toBe('stream');
    expect(data['partial']).toBeUndefined();
    expect(data['output']).toEqual([{ type: 'text', text: '{"order_id":"A-1"}' }]);
    expect(data['stop_reason']).toBe('stop');
  });

  it('records streamText once the stream is complete, with the text and tool call it streamed, and hands on the same parts as the bare model', async () => {
    const s = await fresh();
    const stream = () => ({ kind: 'sse' as const, events: sseEvents('openai-chat-stream.sse'), headers: { 'x-request-id': 'req_stream' } });
    const run = async (model: Parameters<typeof streamText>[0]['model']) => {
      const r = streamText({ model, prompt: 'Refund A-1', maxRetries: 0 });
      const parts: unknown[] = [];
      for await (const p of r.fullStream) parts.push(p);
      return { parts, text: await r.text, toolCalls: await r.toolCalls, usage: await r.usage };
    };
    server.next(stream());
    const plain = await run(bare());
    server.next(stream());
    const wrapped = await run(recordModel(bare(), s));
    // The two runs may straddle a second: the response's timestamp and Date header are the only parts that may differ.
    const stable = (x: typeof plain) => JSON.parse(JSON.stringify(x, (k, v: unknown) => (k === 'timestamp' || k === 'date' ? undefined : v))) as unknown;
    expect(stable(wrapped)).toEqual(stable(plain));
    const [ev] = await llmCalls(s);
    const data = ev!.data as Record<string, unknown>;
    expect(ev!.action).toBe('stream');
    expect(data['stream']).toBe(true);
    expect(data['partial']).toBeUndefined();
    expect(data['response_model']).toBe('gpt-4o-mini-2024-07-18');
    expect(data['request_id']).toBe('req_stream');
    expect(data['stop_reason']).toBe('tool-calls');
    expect(data['output']).toEqual([expect.objectContaining({ type: 'text', text: wrapped.text }), expect.objectContaining({ type: 'tool-call', toolName: 'get_order' })]);
    expect(data['tool_calls']).toEqual([expect.objectContaining({ name: 'get_order', arguments: { order_id: 'A-1' } })]);
    expect(data['usage']).toEqual(expect.objectContaining({ input_tokens: 20, output_tokens: 18 }));
    expect(typeof data['first_chunk_ms']).toBe('number');
  });

  it('hands on the first streamed text before the provider has finished, and records the call only when it has', async () => {
    const s = await fresh();
    const held = gate();
    server.next({ kind: 'sse', events: sseEvents('openai-chat-stream.sse'), holdAfter: 3, release: held.promise });
    const r = streamText({ model: recordModel(bare(), s), prompt: 'Refund A-1', maxRetries: 0 });
    const it = r.textStream[Symbol.asyncIterator]();
    const first = await it.next();
    expect(first.value).toBe('Hello');
    expect(await llmCalls(s)).toHaveLength(0);
    held.open();
    while (!(await it.next()).done);
    expect(await llmCalls(s)).toHaveLength(1);
  });

  it('records a stream the caller aborts as partial, with what had arrived', async () => {
    const s = await fresh();
    const held = gate();
    server.next({ kind: 'sse', events: sseEvents('openai-chat-stream.sse'), holdAfter: 3, release: held.promise });
    const abort = new AbortController();
    const r = streamText({ model: recordModel(bare(), s), prompt: 'Refund A-1', maxRetries: 0, abortSignal: abort.signal });
    const it = r.textStream[Symbol.asyncIterator]();
    await it.next();
    abort.abort();
    await expect(
      (async () => {
        while (!(await it.next()).done);
      })(),
    ).resolves.toBeUndefined();
    held.open();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const [ev] = await llmCalls(s);
    const data = ev!.data as Record<string, unknown>;
    expect(data['partial']).toBe(true);
    expect((data['output'] as Array<{ text?: string }>)[0]!.text).toMatch(/^Hello/);
  });

  it('records a stream cut by the connection as partial and errored', async () => {
    const s = await fresh();
    server.next({ kind: 'sse', events: sseEvents('openai-chat-stream.sse'), cutAfter: 3 });
    const r = streamText({ model: recordModel(bare(), s), prompt: 'Refund A-1', maxRetries: 0, onError: () => undefined });
    // The SDK itself throws the cut from the stream it hands out, with or without the wrapper.
    await expect(
      (async () => {
        for await (const part of r.fullStream) void part;
      })(),
    ).rejects.toThrow(/Failed to process successful response/);
    const [ev] = await llmCalls(s);
    expect(ev!.outcome).toBe('error');
    expect((ev!.data as { partial: boolean }).partial).toBe(true);
  });

  it.each([
    [429, 'openai-error-429.json', 'rate_limit_exceeded'],
    [500, undefined, 500],
  ] as const)('records an HTTP %i from the provider and rethrows the same error the bare model throws', async (status, file, code) => {
    const s = await fresh();
    const body = file === undefined ? { error: { message: 'The server had an error while processing your request.' } } : fixtureJson(file);
    const answer = { kind: 'json' as const, status, body, headers: { 'x-request-id': `req_${status}` } };
    const call = (model: Parameters<typeof generateText>[0]['model']) => generateText({ model, prompt: 'Refund A-1', maxRetries: 0 }).catch((e: unknown) => e);
    server.next(answer);
    const plainErr = (await call(bare())) as Error & { statusCode: number };
    server.next(answer);
    const wrappedErr = (await call(recordModel(bare(), s))) as Error & { statusCode: number };
    expect(wrappedErr.constructor).toBe(plainErr.constructor);
    expect(wrappedErr.message).toBe(plainErr.message);
    expect(wrappedErr.statusCode).toBe(status);
    const [ev] = await llmCalls(s);
    expect(ev!.outcome).toBe('error');
    expect((ev!.data as { error: unknown }).error).toEqual({ message: wrappedErr.message, name: 'AI_APICallError', status, code });
    expect((ev!.data as { request_id: string }).request_id).toBe(`req_${status}`);
  });

  it('leaves a ledger that verifies, and reports no recorder faults', async () => {
    await w.flush();
    expect(errors).toEqual([]);
    const report = await verifyLedger(driverOf(w));
    expect(report.ok).toBe(true);
  });
});
