import { createHash } from 'node:crypto';
import Anthropic from '@anthropic-ai/sdk';
import { createOpenAI } from '@ai-sdk/openai';
import { generateText } from 'ai';
import OpenAI from 'openai';
import { afterAll, describe, expect, it } from 'vitest';
import { canonicalize, type StoredEvent } from '../../src/core/index.js';
import { recordModel } from '../../src/integrations/ai.js';
import { recordAnthropic } from '../../src/integrations/anthropic.js';
import { recordOpenAI } from '../../src/integrations/openai.js';
import { LLM_CALL_INLINE_BYTES, TRUNCATED_HEAD_BYTES } from '../../src/integrations/record-call.js';
import { openWitness, type Session, type Witness } from '../../src/index.js';
import { verifyLedger } from '../../src/store/index.js';
import { driverOf } from '../helpers/ledger.js';
import { tempDb, tempDir } from '../helpers/tmp.js';
import { fixtureJson, providerServer } from './provider-server.js';

/**
 * An llm.call whose input or output is over the ledger's payload limit (1 MiB by default): the
 * agent's call answers as without the wrapper, and the record is written, with each part that does
 * not fit replaced by a marker that says so and carries the part's size, SHA-256 and first bytes.
 */

const dir = tempDir();
const server = await providerServer();
const errors: unknown[] = [];
const w: Witness = await openWitness({ store: `sqlite:${tempDb(dir)}`, onError: (e) => errors.push(e) });
afterAll(() => w.close());

const FIVE_MIB = 5 * 1024 * 1024;
const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');
const anthropic = () => new Anthropic({ apiKey: 'test-key', baseURL: server.baseURL, maxRetries: 0 });
const openai = () => new OpenAI({ apiKey: 'test-key', baseURL: `${server.baseURL}/v1`, maxRetries: 0 });

async function fresh(): Promise<Session> {
  return w.session({ agent: { id: 'essay-bot' } });
}

async function events(s: Session): Promise<StoredEvent[]> {
  await w.flush();
  return driverOf(w).readStream(s.id);
}

/** What a cut part must say about the value it replaced. */
function marker(value: unknown) {
  const text = canonicalize(value);
  return {
    $truncated: expect.stringMatching(/^[A-Z].*\.$/) as string,
    bytes: Buffer.byteLength(text),
    sha256: sha256(text),
    head: expect.any(String) as string,
    // The part itself, whole (redacted), in the artifact store (large-call-artifacts.test.ts reads it).
    $artifact: expect.stringMatching(/^[0-9a-f]{64}$/) as string,
  };
}

describe('an llm.call larger than the ledger takes', () => {
  it('[R-LLM-WRAPPERS] a 5 MiB Anthropic completion: the caller gets the same message, and the llm.call is recorded with its output cut, marked, sized and hashed', async () => {
    const essay = 'All work and no play. '.repeat(FIVE_MIB / 22);
    const body = { ...(fixtureJson('anthropic-message.json') as Record<string, unknown>), content: [{ type: 'text', text: essay }], stop_reason: 'end_turn' };
    const params = { model: 'claude-sonnet-4-5', max_tokens: 8192, messages: [{ role: 'user' as const, content: 'Write at length.' }] };
    server.next({ kind: 'json', status: 200, body, headers: { 'request-id': 'req_big_1' } });
    const plain = await anthropic().messages.create(params);
    const s = await fresh();
    server.next({ kind: 'json', status: 200, body, headers: { 'request-id': 'req_big_1' } });
    const wrapped = await recordAnthropic(anthropic(), s).messages.create(params);
    expect(wrapped).toEqual(plain);

    const all = await events(s);
    expect(all.map((e) => e.kind)).toEqual(['session.start', 'llm.call']);
    const ev = all[1]!;
    expect(ev.outcome).toBe('success');
    const data = ev.data as Record<string, unknown>;
    expect(data).toMatchObject({
      model: 'claude-sonnet-4-5',
      input: [{ role: 'user', content: 'Write at length.' }],
      stop_reason: 'end_turn',
      request_id: 'req_big_1',
      usage: { input_tokens: 472, output_tokens: 91 },
      truncated: ['output'],
    });
    expect(data['output']).toEqual(marker(body.content));
    const head = (data['output'] as { head: string }).head;
    expect(canonicalize(body.content).startsWith(head)).toBe(true);
    expect(Buffer.byteLength(head)).toBeLessThanOrEqual(TRUNCATED_HEAD_BYTES);
    expect(Buffer.byteLength(canonicalize(data))).toBeLessThanOrEqual(LLM_CALL_INLINE_BYTES);
    expect(errors).toEqual([]);
    expect((await verifyLedger(driverOf(w))).ok).toBe(true);
  });

  it('a 5 MiB message in the input: that message is cut, the others are kept as sent', async () => {
    const pasted = 'ß'.repeat(FIVE_MIB / 2);
    const messages = [
      { role: 'user' as const, content: 'Summarise the log I paste next.' },
      { role: 'assistant' as const, content: 'Paste it.' },
      { role: 'user' as const, content: pasted },
    ];
    const s = await fresh();
    server.next({ kind: 'json', status: 200, body: fixtureJson('openai-chat-text.json'), headers: { 'x-request-id': 'req_big_2' } });
    await recordOpenAI(openai(), s).chat.completions.create({ model: 'gpt-4o', messages });
    const [, ev] = await events(s);
    expect(ev!.kind).toBe('llm.call');
    const data = ev!.data as { input: unknown[]; truncated: string[]; output: unknown };
    expect(data.input.slice(0, 2)).toEqual(messages.slice(0, 2));
    expect(data.input[2]).toEqual(marker(messages[2]));
    expect(data.truncated).toEqual(['input[2]']);
    expect(data.output).toMatchObject({ role: 'assistant' });
    expect(errors).toEqual([]);
  });

  it('[R-LLM-WRAPPERS] a streamed 5 MiB OpenAI completion: every chunk reaches the caller, and the assembled output is recorded cut and marked', async () => {
    const piece = 'lorem ipsum '.repeat(8_000);
    const chunks = Math.ceil(FIVE_MIB / piece.length);
    const chunk = (delta: Record<string, unknown>, finish: string | null) =>
      `data: ${JSON.stringify({ id: 'chatcmpl-big', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-2024-08-06', choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] })}\n\n`;
    const sse = [chunk({ role: 'assistant', content: '' }, null), ...Array.from({ length: chunks }, () => chunk({ content: piece }, null)), chunk({}, 'stop'), 'data: [DONE]\n\n'];
    const s = await fresh();
    server.next({ kind: 'sse', events: sse, headers: { 'x-request-id': 'req_big_3' } });
    const stream = await recordOpenAI(openai(), s).chat.completions.create({ model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'Go on.' }] });
    let text = '';
    for await (const c of stream) text += c.choices[0]?.delta.content ?? '';
    expect(text.length).toBe(piece.length * chunks);
    expect(text === piece.repeat(chunks)).toBe(true);
    const [, ev] = await events(s);
    const data = ev!.data as Record<string, unknown>;
    expect(data).toMatchObject({ stream: true, stop_reason: 'stop', request_id: 'req_big_3', truncated: ['output'] });
    expect(data['partial']).toBeUndefined();
    expect((data['output'] as { bytes: number }).bytes).toBeGreaterThan(FIVE_MIB);
    expect(errors).toEqual([]);
  });

  it('[R-LLM-WRAPPERS] a 5 MiB answer through the Vercel AI SDK (witness/ai): generateText returns it whole, the llm.call is recorded cut and marked', async () => {
    const answer = fixtureJson('openai-chat-text.json') as { choices: Array<{ message: { content: string } }> };
    const long = 'Ipsum. '.repeat(FIVE_MIB / 7);
    answer.choices[0]!.message.content = long;
    const s = await fresh();
    server.next({ kind: 'json', status: 200, body: answer });
    const model = recordModel(createOpenAI({ apiKey: 'test-key', baseURL: `${server.baseURL}/v1` }).chat('gpt-4o'), s);
    const r = await generateText({ model, prompt: 'Go on.', maxRetries: 0 });
    expect(r.text.length).toBe(long.length);
    const [, ev] = await events(s);
    expect(ev!.kind).toBe('llm.call');
    const data = ev!.data as { truncated: string[]; output: { bytes: number } };
    expect(data.truncated).toEqual(['output']);
    expect(data.output.bytes).toBeGreaterThan(FIVE_MIB);
    expect(errors).toEqual([]);
  });

  it('thousands of messages, none large on its own: the whole input is one marker', async () => {
    const messages = Array.from({ length: 3000 }, (_, i) => ({ role: 'user' as const, content: `message ${i} `.padEnd(400, '.') }));
    const s = await fresh();
    server.next({ kind: 'json', status: 200, body: fixtureJson('openai-chat-text.json') });
    await recordOpenAI(openai(), s).chat.completions.create({ model: 'gpt-4o', messages });
    const [, ev] = await events(s);
    expect(ev!.kind).toBe('llm.call');
    const data = ev!.data as { input: unknown[]; truncated: string[] };
    expect(data.input).toEqual([marker(messages)]);
    expect(data.truncated).toEqual(['input']);
    expect(errors).toEqual([]);
  });

  it('a call that fits is recorded as before, with no marks', async () => {
    const s = await fresh();
    server.next({ kind: 'json', status: 200, body: fixtureJson('openai-chat-text.json') });
    await recordOpenAI(openai(), s).chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x'.repeat(200_000) }] });
    const [, ev] = await events(s);
    expect((ev!.data as { input: unknown[] }).input).toEqual([{ role: 'user', content: 'x'.repeat(200_000) }]);
    expect(ev!.data).not.toHaveProperty('truncated');
  });
});
