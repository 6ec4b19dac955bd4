import { createHash } from 'node:crypto';
import { tool } from '@langchain/core/tools';
import { HumanMessage, SystemMessage, type AIMessage } from '@langchain/core/messages';
import { ChatOpenAI } from '@langchain/openai';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { StoredEvent } from '../../src/core/index.js';
import { WitnessCallbackHandler } from '../../src/integrations/langchain.js';
import { openWitness, type Session, type Witness } from '../../src/index.js';
import { verifyLedger } from '../../src/store/index.js';
import { driverOf } from '../helpers/ledger.js';
import { tempDb, tempDir } from '../helpers/tmp.js';
import { fixtureJson, providerServer, sseEvents } from './provider-server.js';

const dir = tempDir();
const server = await providerServer();
const errors: unknown[] = [];
const w: Witness = await openWitness({ store: `sqlite:${tempDb(dir)}`, onError: (e) => errors.push(e) });
afterAll(() => w.close());

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const SYSTEM = 'You are the refund desk. House rule 7: never refund twice.';
const chat = (streaming = false) => new ChatOpenAI({ model: 'gpt-4o', apiKey: 'test-key', configuration: { baseURL: `${server.baseURL}/v1` }, maxRetries: 0, streaming });
const getOrder = tool(({ order_id }: { order_id: string }) => JSON.stringify({ order_id, status: 'paid' }), {
  name: 'get_order',
  description: 'Look an order up',
  schema: z.object({ order_id: z.string() }),
});

async function fresh(): Promise<Session> {
  return w.session({ agent: { id: 'refund-bot' } });
}
async function events(s: Session): Promise<StoredEvent[]> {
  await w.flush();
  return driverOf(w).readStream(s.id);
}
const chatAnswer = (file = 'openai-chat.json') => ({ kind: 'json' as const, status: 200, body: fixtureJson(file), headers: { 'x-request-id': 'req_lc' } });

describe('WitnessCallbackHandler (LangChain.js)', () => {
  it('[R-LLM-WRAPPERS] records a ChatOpenAI call (the real @langchain/openai model against the local server) as llm.call: models, input, hashed system prompt, tool calls, usage, stop reason; the caller gets what it gets without the handler', async () => {
    const s = await fresh();
    const messages = [new SystemMessage(SYSTEM), new HumanMessage('Refund order A-1')];
    server.next(chatAnswer());
    const plain = (await chat().bindTools([getOrder]).invoke(messages)) as AIMessage;
    server.next(chatAnswer());
    const recorded = (await chat()
      .bindTools([getOrder])
      .invoke(messages, { callbacks: [new WitnessCallbackHandler(s)] })) as AIMessage;
    expect(recorded.tool_calls).toEqual(plain.tool_calls);
    expect(recorded.content).toEqual(plain.content);
    expect(recorded.usage_metadata).toEqual(plain.usage_metadata);
    const [ev] = (await events(s)).filter((e) => e.kind === 'llm.call');
    const data = ev!.data as Record<string, unknown>;
    expect(ev!.resource).toBe('openai');
    expect(ev!.action).toBe('chat_model');
    expect(data).toMatchObject({
      provider: 'openai',
      model: 'gpt-4o',
      response_model: 'gpt-4o-2024-08-06',
      input: [{ role: 'user', content: 'Refund order A-1' }],
      system_prompt_sha256: sha256(SYSTEM),
      tool_calls: [{ id: 'call_abc123', name: 'get_order', arguments: { order_id: 'A-1' } }],
      usage: expect.objectContaining({ input_tokens: 82, output_tokens: 17, total_tokens: 99 }) as unknown,
      stop_reason: 'tool_calls',
    });
    expect(data['tool_definitions_sha256']).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(ev)).not.toContain('House rule 7');
  });

  it('keeps invocation params that look like credentials out of the ledger', async () => {
    const s = await fresh();
    const handler = new WitnessCallbackHandler(s);
    handler.handleChatModelStart({ lc: 1, type: 'not_implemented', id: ['custom', 'Chat'] }, [[new HumanMessage('hi')]], 'run-1', undefined, {
      invocation_params: { model: 'm', temperature: 0, api_key: 'sk-secret-1', headers: { authorization: 'Bearer sk-secret-2' }, clientSecret: 'sk-secret-3' },
    });
    await handler.handleLLMEnd({ generations: [[{ text: 'hello' }]] }, 'run-1');
    const [ev] = (await events(s)).filter((e) => e.kind === 'llm.call');
    expect((ev!.data as { parameters: unknown }).parameters).toEqual({ temperature: 0 });
    expect(JSON.stringify(ev)).not.toContain('sk-secret');
  });

  it('records the tool LangChain runs for a requested tool call as tool.call and tool.result, linked to the llm.call that requested it', async () => {
    const s = await fresh();
    const handler = new WitnessCallbackHandler(s);
    server.next(chatAnswer());
    const ai = (await chat()
      .bindTools([getOrder])
      .invoke([new HumanMessage('Refund A-1')], { callbacks: [handler] })) as AIMessage;
    const result = await getOrder.invoke(ai.tool_calls![0]!, { callbacks: [handler] });
    expect(result.content).toBe('{"order_id":"A-1","status":"paid"}');
    const all = await events(s);
    const llm = all.find((e) => e.kind === 'llm.call')!;
    const call = all.find((e) => e.kind === 'tool.call')!;
    const res = all.find((e) => e.kind === 'tool.result')!;
    expect(call.parent).toBe(llm.id);
    expect(call.data).toEqual({ tool: 'get_order', arguments: { order_id: 'A-1' }, tool_call_id: 'call_abc123' });
    expect(res.parent).toBe(call.id);
    expect(res.outcome).toBe('success');
    expect(res.data).toMatchObject({ tool: 'get_order', is_error: false, output: { content: '{"order_id":"A-1","status":"paid"}' } });
  });

  it('records a tool that throws as an error result, and the caller sees the same error', async () => {
    const s = await fresh();
    const failing = tool(
      (): string => {
        throw new Error('billing is down');
      },
      { name: 'refund', schema: z.object({ order_id: z.string() }) },
    );
    await expect(failing.invoke({ order_id: 'A-1' }, { callbacks: [new WitnessCallbackHandler(s)] })).rejects.toThrow('billing is down');
    const all = await events(s);
    const call = all.find((e) => e.kind === 'tool.call')!;
    const res = all.find((e) => e.kind === 'tool.result')!;
    expect(call.parent).toBeUndefined();
    expect(res.parent).toBe(call.id);
    expect(res.outcome).toBe('error');
    expect(res.data).toMatchObject({ is_error: true, error: { message: 'billing is down' } });
  });

  it('records a streamed ChatOpenAI call once the stream ends', async () => {
    const s = await fresh();
    server.next({ kind: 'sse', events: sseEvents('openai-chat-stream.sse') });
    const chunks: string[] = [];
    for await (const c of await chat(true).stream([new HumanMessage('Refund A-1')], { callbacks: [new WitnessCallbackHandler(s)] })) chunks.push(String(c.content));
    const [ev] = (await events(s)).filter((e) => e.kind === 'llm.call');
    const data = ev!.data as Record<string, unknown>;
    expect(data['stream']).toBe(true);
    expect(data['partial']).toBeUndefined();
    expect((data['output'] as { content: string }).content).toBe(chunks.join(''));
    expect(data['tool_calls']).toEqual([expect.objectContaining({ name: 'get_order', arguments: { order_id: 'A-1' } })]);
  });

  it.each([429, 500])('records an HTTP %i from the provider as an errored llm.call, and the caller sees the same error', async (status) => {
    const s = await fresh();
    const body = status === 429 ? fixtureJson('openai-error-429.json') : { error: { message: 'The server had an error while processing your request.' } };
    const answer = { kind: 'json' as const, status, body };
    server.next(answer);
    const plainErr = (await chat()
      .invoke([new HumanMessage('Refund A-1')])
      .catch((e: unknown) => e)) as Error;
    server.next(answer);
    const err = (await chat()
      .invoke([new HumanMessage('Refund A-1')], { callbacks: [new WitnessCallbackHandler(s)] })
      .catch((e: unknown) => e)) as Error & { status: number };
    expect(err.constructor).toBe(plainErr.constructor);
    expect(err.message).toBe(plainErr.message);
    const [ev] = (await events(s)).filter((e) => e.kind === 'llm.call');
    expect(ev!.outcome).toBe('error');
    expect((ev!.data as { error: { status: number } }).error.status).toBe(status);
  });

  it('leaves a ledger that verifies, and reports no recorder faults', async () => {
    await w.flush();
    expect(errors).toEqual([]);
    expect((await verifyLedger(driverOf(w))).ok).toBe(true);
  });
});
