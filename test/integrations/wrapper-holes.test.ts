import Anthropic from '@anthropic-ai/sdk';
import { createOpenAI } from '@ai-sdk/openai';
import { HumanMessage } from '@langchain/core/messages';
import { ChatOpenAI } from '@langchain/openai';
import { generateText, streamText } from 'ai';
import OpenAI from 'openai';
import { afterAll, describe, expect, it } from 'vitest';
import type { StoredEvent } from '../../src/core/index.js';
import { recordModel } from '../../src/integrations/ai.js';
import { recordAnthropic, toolCallParent } from '../../src/integrations/anthropic.js';
import { WitnessCallbackHandler } from '../../src/integrations/langchain.js';
import { recordOpenAI } from '../../src/integrations/openai.js';
import { isWitnessError, openWitness, type Session, type Witness } from '../../src/index.js';
import { driverOf } from '../helpers/ledger.js';
import { tempDb, tempDir } from '../helpers/tmp.js';
import { fixtureJson, providerServer, sseEvents } from './provider-server.js';

// The holes of review 16 (L2): calls read through .asResponse(), answers whose body does not
// parse, tool calls linked to an llm.call the ledger refused, and strict mode's refusals.

const dir = tempDir();
const server = await providerServer();
const errors: unknown[] = [];
const w: Witness = await openWitness({ store: `sqlite:${tempDb(dir)}`, onError: (e) => errors.push(e) });
const strict: Witness = await openWitness({ store: `sqlite:${tempDb(dir)}`, strict: true });
afterAll(async () => {
  await w.close();
  await strict.close();
});

const anthropic = () => new Anthropic({ apiKey: 'test-key', baseURL: server.baseURL, maxRetries: 0 });
const openai = () => new OpenAI({ apiKey: 'test-key', baseURL: `${server.baseURL}/v1`, maxRetries: 0 });
const params = { model: 'claude-sonnet-4-5', max_tokens: 1024, messages: [{ role: 'user' as const, content: 'Refund order A-1' }] };
const chatParams = { model: 'gpt-4o', messages: [{ role: 'user' as const, content: 'Refund order A-1' }] };
const message = () => ({ kind: 'json' as const, status: 200, body: fixtureJson('anthropic-message.json'), headers: { 'request-id': 'req_1' } });
const completion = () => ({ kind: 'json' as const, status: 200, body: fixtureJson('openai-chat.json'), headers: { 'x-request-id': 'req_chat' } });
/** A parameter the ledger cannot hold (a number past 2^53), so the llm.call record is refused. */
const unholdable = { ...params, top_k: 1e20 } as unknown as typeof params;

async function events(of: Witness, s: Session): Promise<StoredEvent[]> {
  await of.flush();
  return driverOf(of).readStream(s.id);
}
const calls = async (of: Witness, s: Session) => (await events(of, s)).filter((e) => e.kind === 'llm.call');

describe('SDK wrappers: review 16 holes', () => {
  it('records a messages.create read through .asResponse() once, with its request id, and hands the caller the response it would get bare', async () => {
    server.next(message());
    const bare = await anthropic().messages.create(params).asResponse();
    const s = await w.session({ agent: { id: 'bot' } });
    server.next(message());
    const raw = await recordAnthropic(anthropic(), s).messages.create(params).asResponse();
    expect(raw.status).toBe(bare.status);
    expect(raw.bodyUsed).toBe(false);
    expect(await raw.text()).toBe(await bare.text());
    const [ev, ...more] = await calls(w, s);
    expect(more).toEqual([]);
    expect(ev!.outcome).toBe('success');
    expect(ev!.data).toMatchObject({ provider: 'anthropic', model: 'claude-sonnet-4-5', input: params.messages, request_id: 'req_1', raw_response: true });
    expect(ev!.data).not.toHaveProperty('output');
  });

  it('records a call read through .withResponse() once, with its answer', async () => {
    const s = await w.session({ agent: { id: 'bot' } });
    server.next(message());
    const { data, request_id } = await recordAnthropic(anthropic(), s).messages.create(params).withResponse();
    expect(request_id).toBe('req_1');
    server.next(completion());
    const chat = await recordOpenAI(openai(), s).chat.completions.create(chatParams).withResponse();
    expect(chat.data.id).toBe((fixtureJson('openai-chat.json') as { id: string }).id);
    const evs = await calls(w, s);
    expect(evs.map((e) => [e.resource, e.data!['raw_response'] ?? false, e.data!['output'] !== undefined])).toEqual([
      ['anthropic', false, true],
      ['openai', false, true],
    ]);
    expect(evs[0]!.data!['output']).toEqual(data.content);
  });

  it('records a chat completion read through .asResponse(), streamed or not, and the caller reads the body itself', async () => {
    const s = await w.session({ agent: { id: 'bot' } });
    const client = recordOpenAI(openai(), s);
    server.next(completion());
    const raw = await client.chat.completions.create(chatParams).asResponse();
    expect(JSON.parse(await raw.text())).toEqual(fixtureJson('openai-chat.json'));
    server.next({ kind: 'sse', events: sseEvents('openai-chat-stream.sse'), headers: { 'x-request-id': 'req_stream' } });
    const rawStream = await client.chat.completions.create({ ...chatParams, stream: true }).asResponse();
    expect(await rawStream.text()).toBe(sseEvents('openai-chat-stream.sse').join(''));
    const evs = await calls(w, s);
    expect(evs.map((e) => [e.data!['request_id'], e.data!['raw_response'], e.data!['stream'] ?? false])).toEqual([
      ['req_chat', true, false],
      ['req_stream', true, true],
    ]);
  });

  it('records a 200 answer whose body does not parse as an error, and the caller gets the same error the bare client throws', async () => {
    const broken = () => ({ kind: 'json' as const, status: 200, body: undefined, headers: { 'request-id': 'req_broken' } });
    server.next(broken());
    const bare = await anthropic()
      .messages.create(params)
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(bare).toBeInstanceOf(Error);
    const s = await w.session({ agent: { id: 'bot' } });
    server.next(broken());
    const seen = await recordAnthropic(anthropic(), s)
      .messages.create(params)
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(seen).toBeInstanceOf((bare as Error).constructor);
    expect((seen as Error).message).toBe((bare as Error).message);
    const [ev, ...more] = await calls(w, s);
    expect(more).toEqual([]);
    expect(ev!.outcome).toBe('error');
    expect(ev!.data).toMatchObject({ request_id: 'req_broken', error: { message: (bare as Error).message } });
  });

  it('does not link a tool call to an llm.call the ledger refused', async () => {
    const s = await w.session({ agent: { id: 'bot' } });
    const before = errors.length;
    server.next(message());
    const r = await recordAnthropic(anthropic(), s).messages.create(unholdable);
    const use = r.content.find((b) => b.type === 'tool_use');
    expect(use).toBeDefined();
    const fields = toolCallParent(s, (use as { id: string }).id);
    expect(fields).toEqual({});
    await s.tool('get_order', { order_id: 'A-1' }, () => ({ ok: true }), fields);
    const evs = await events(w, s);
    expect(evs.filter((e) => e.kind === 'llm.call')).toEqual([]);
    expect(evs.find((e) => e.kind === 'tool.call')!.parent).toBeUndefined();
    expect(errors.length).toBeGreaterThan(before);
  });

  it('still links a tool call at once to an llm.call the ledger accepts', async () => {
    const s = await w.session({ agent: { id: 'bot' } });
    server.next(message());
    const r = await recordAnthropic(anthropic(), s).messages.create(params);
    const use = r.content.find((b) => b.type === 'tool_use') as { id: string };
    const fields = toolCallParent(s, use.id);
    await s.tool('get_order', { order_id: 'A-1' }, () => ({ ok: true }), fields);
    const [call] = await calls(w, s);
    expect(fields).toEqual({ parent: call!.id });
  });

  it('in strict mode rejects the wrapped call with the recorder’s error when its llm.call is refused, after the request was answered', async () => {
    const s = await strict.session({ agent: { id: 'bot' } });
    const client = recordAnthropic(anthropic(), s);
    server.next(message());
    const err = await client.messages.create(unholdable).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isWitnessError(err)).toBe(true);
    expect(server.requests.at(-1)!.body).toMatchObject({ top_k: 1e20 });
    // Nothing was linked to the refused record, and an ordinary call still goes through.
    const use = (fixtureJson('anthropic-message.json') as { content: Array<{ type: string; id?: string }> }).content.find((b) => b.type === 'tool_use')!;
    expect(toolCallParent(s, use.id)).toEqual({});
    server.next(message());
    await expect(client.messages.create(params)).resolves.toMatchObject({ type: 'message' });
    expect(toolCallParent(s, use.id)).toEqual({ parent: (await calls(strict, s))[0]!.id });
  });

  it('in strict mode a call that failed rejects with the SDK’s own error, not the refusal of its record', async () => {
    const s = await strict.session({ agent: { id: 'bot' } });
    server.next({ kind: 'json', status: 529, body: fixtureJson('anthropic-error-529.json'), headers: { 'request-id': 'req_529' } });
    const err = await recordAnthropic(anthropic(), s)
      .messages.create(unholdable)
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(Anthropic.OverloadedError);
  });

  it('in strict mode hands every streamed item on, then rejects the end of the stream when its llm.call is refused', async () => {
    const s = await strict.session({ agent: { id: 'bot' } });
    server.next({ kind: 'sse', events: sseEvents('anthropic-stream.sse'), headers: { 'request-id': 'req_s' } });
    const stream = await recordAnthropic(anthropic(), s).messages.create({ ...unholdable, stream: true });
    const types: string[] = [];
    const err = await (async () => {
      for await (const e of stream) types.push(e.type);
    })().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isWitnessError(err)).toBe(true);
    expect(types.at(-1)).toBe('message_stop');
  });

  it('in strict mode rejects .asResponse() when the record of a raw-response call is refused', async () => {
    const s = await strict.session({ agent: { id: 'bot' } });
    server.next(message());
    const err = await recordAnthropic(anthropic(), s)
      .messages.create(unholdable)
      .asResponse()
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(isWitnessError(err)).toBe(true);
  });

  it('in strict mode the AI SDK wrapper rejects generateText and errors streamText’s stream when the llm.call is refused; not strict, both go on', async () => {
    const provider = createOpenAI({ apiKey: 'test-key', baseURL: `${server.baseURL}/v1` });
    const run = async (of: Witness) => {
      const s = await of.session({ agent: { id: 'bot' } });
      const model = recordModel(provider.chat('gpt-4o'), s);
      server.next(completion());
      const generated = await generateText({ model, prompt: 'Refund order A-1', temperature: 1e20, maxRetries: 0 }).then(
        () => 'answered',
        (e: unknown) => e,
      );
      server.next({ kind: 'sse', events: sseEvents('openai-chat-stream.sse') });
      const parts: string[] = [];
      const streamed = await (async () => {
        for await (const part of streamText({ model, prompt: 'Refund order A-1', temperature: 1e20, maxRetries: 0, onError: () => undefined }).fullStream) parts.push(part.type);
      })().then(
        () => 'read to the end',
        (e: unknown) => e,
      );
      return { generated, streamed, parts };
    };
    const strictRun = await run(strict);
    expect(isWitnessError(strictRun.generated)).toBe(true);
    expect(isWitnessError(strictRun.streamed)).toBe(true);
    // The text had reached the caller before the refusal ended the stream.
    expect(strictRun.parts).toContain('text-delta');
    const lenient = await run(w);
    expect(lenient.generated).toBe('answered');
    expect(lenient.streamed).toBe('read to the end');
    expect(lenient.parts).not.toContain('error');
  });

  it('in strict mode a LangChain run fails with the recorder’s error when its llm.call is refused; not strict, it goes on', async () => {
    const run = async (of: Witness) => {
      const s = await of.session({ agent: { id: 'bot' } });
      server.next(completion());
      const model = new ChatOpenAI({ model: 'gpt-4o', apiKey: 'test-key', configuration: { baseURL: `${server.baseURL}/v1` }, maxRetries: 0, temperature: 1e20 });
      return model.invoke([new HumanMessage('Refund order A-1')], { callbacks: [new WitnessCallbackHandler(s)] }).then(
        () => 'answered',
        (e: unknown) => e,
      );
    };
    expect(isWitnessError(await run(strict))).toBe(true);
    expect(await run(w)).toBe('answered');
  });
});
