import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { StoredEvent } from '../../src/core/index.js';
import { SqliteLedger } from '../../src/store/index.js';
import { oneSentence, runBin } from '../helpers/ledger.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * `witness demo --live`. The model APIs cannot be reached from this machine, so a local server
 * speaks their wire formats (Anthropic Messages, OpenAI Chat Completions) with a fixed plan of tool
 * calls, and checks what the demo sends; everything else (proxy, back office, Chromium, ffmpeg) is real.
 */

const dir = tempDir('witness-live-');

const PLAN: Array<[string, Record<string, unknown>]> = [
  ['crm__lookup_customer', { customer_id: 'C-1042' }],
  ['billing__refund', { customer_id: 'C-1042', amount: 650, reason: 'Duplicate charge CH-9002 on order A-1042.' }],
  ['billing__refund', { customer_id: 'C-2077', amount: 1200, reason: 'Goodwill credit for a late delivery.' }],
  ['iam__set_role', { user_id: 'u-17', role: 'admin', reason: 'Needs to issue refunds.' }],
  ['iam__set_role', { user_id: 'u-17', role: 'billing-viewer', reason: 'Admin was refused; least privilege.' }],
  ['records__fix_field', { record_id: 'R-88', field: 'date_of_birth', value: '1984-03-13', reason: 'Month and day were swapped.' }],
];

interface Seen {
  headers: http.IncomingHttpHeaders;
  body: Record<string, unknown>;
}

async function fakeModel(kind: 'anthropic' | 'openai'): Promise<{ url: string; seen: Seen[]; close: () => void }> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    let text = '';
    req.on('data', (c: Buffer) => (text += c.toString()));
    req.on('end', () => {
      const body = JSON.parse(text) as Record<string, unknown>;
      seen.push({ headers: req.headers, body });
      const n = seen.length - 1;
      const step = PLAN[n];
      res.writeHead(200, { 'content-type': 'application/json' });
      if (kind === 'anthropic') {
        const content =
          step === undefined
            ? [{ type: 'text', text: 'All four cases are handled.' }]
            : [
                { type: 'text', text: `Case step ${n + 1}.` },
                { type: 'tool_use', id: `toolu_${n}`, name: step[0], input: step[1] },
              ];
        res.end(
          JSON.stringify({
            id: `msg_${n}`,
            type: 'message',
            role: 'assistant',
            content,
            stop_reason: step === undefined ? 'end_turn' : 'tool_use',
            usage: { input_tokens: 100 + n, output_tokens: 20 },
          }),
        );
      } else {
        const message =
          step === undefined
            ? { role: 'assistant', content: 'All four cases are handled.' }
            : { role: 'assistant', content: null, tool_calls: [{ id: `call_${n}`, type: 'function', function: { name: step[0], arguments: JSON.stringify(step[1]) } }] };
        res.end(
          JSON.stringify({
            id: `chatcmpl_${n}`,
            choices: [{ index: 0, message, finish_reason: step === undefined ? 'stop' : 'tool_calls' }],
            usage: { prompt_tokens: 100 + n, completion_tokens: 20 },
          }),
        );
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, close: () => server.close() };
}

const servers: Array<() => void> = [];
afterAll(() => servers.forEach((c) => c()));

async function events(db: string): Promise<StoredEvent[]> {
  const ledger = SqliteLedger.open({ path: db, create: false, readonly: true });
  try {
    return [...(await ledger.query({ limit: 1000 })).events].sort((a, b) => (a.stream === b.stream ? a.seq - b.seq : a.stream < b.stream ? -1 : 1));
  } finally {
    await ledger.close();
  }
}

describe('witness demo --live', () => {
  it('lets an Anthropic-API model drive the calls through the proxy, sends it the tool results, and records its LLM calls', async () => {
    const model = await fakeModel('anthropic');
    servers.push(model.close);
    const demo = path.join(dir, 'anthropic');
    const r = await runBin(['demo', '--live', '--model', 'claude-test', '--dir', demo], { env: { ANTHROPIC_API_KEY: 'sk-ant-test', ANTHROPIC_BASE_URL: model.url, OPENAI_API_KEY: '' } });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Witness demo — claude-test \(anthropic\) as the support agent works/);
    expect(model.seen).toHaveLength(PLAN.length + 1);
    expect(model.seen[0]!.headers['x-api-key']).toBe('sk-ant-test');
    expect(model.seen[0]!.headers['anthropic-version']).toBe('2023-06-01');
    expect((model.seen[0]!.body['tools'] as Array<{ name: string }>).map((t) => t.name).sort()).toEqual(['billing__refund', 'crm__lookup_customer', 'iam__set_role', 'records__fix_field']);
    // Each turn after the first carries the result of the previous call, including the refusals.
    const last = model.seen[PLAN.length]!.body['messages'] as Array<{ role: string; content: unknown }>;
    const results = last.filter((m) => m.role === 'user' && Array.isArray(m.content)).map((m) => (m.content as Array<{ tool_use_id: string; is_error: boolean; content: string }>)[0]!);
    expect(results.map((x) => x.tool_use_id)).toEqual(PLAN.map((_, i) => `toolu_${i}`));
    expect(results.map((x) => x.is_error)).toEqual([false, false, true, true, false, false]);
    expect(results[2]!.content).toContain('denied by bob@acme.example');
    expect(results[3]!.content).toContain('no-admin-grants');

    const evs = await events(path.join(demo, 'witness.db'));
    const llm = evs.filter((e) => e.kind === 'llm.call');
    expect(llm).toHaveLength(PLAN.length + 1);
    expect(llm[1]!.data).toMatchObject({ model: 'claude-test', provider: 'anthropic', tool_calls: [{ name: 'billing.refund', arguments: { amount: 650 } }], usage: { input_tokens: 101 } });
    expect(JSON.stringify(llm.map((e) => e.data))).not.toContain('sk-ant-test');
    const calls = evs.filter((e) => e.kind === 'tool.call' && e.recorder?.kind === 'gateway');
    expect(calls.map((e) => e.data?.['tool'])).toEqual(PLAN.map(([n]) => n.replace(/__/g, '.')));
  }, 120_000);

  it('speaks the OpenAI Chat Completions format when only OPENAI_API_KEY is set', async () => {
    const model = await fakeModel('openai');
    servers.push(model.close);
    const demo = path.join(dir, 'openai');
    const r = await runBin(['demo', '--live', '--dir', demo], { env: { OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: `${model.url}/v1`, ANTHROPIC_API_KEY: '' } });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Witness demo — gpt-4\.1 \(openai\) as the support agent works/);
    expect(model.seen[0]!.headers['authorization']).toBe('Bearer sk-test');
    const last = model.seen[PLAN.length]!.body['messages'] as Array<{ role: string; tool_call_id?: string }>;
    expect(last.filter((m) => m.role === 'tool').map((m) => m.tool_call_id)).toEqual(PLAN.map((_, i) => `call_${i}`));
  }, 120_000);

  it('refuses --live without a key with exit 2 and one sentence, before starting anything', async () => {
    const demo = path.join(dir, 'nokey');
    const r = await runBin(['demo', '--live', '--dir', demo], { env: { ANTHROPIC_API_KEY: '', OPENAI_API_KEY: '' } });
    expect(r.code).toBe(2);
    expect(fs.existsSync(demo)).toBe(false);
    expect(oneSentence(r.stderr)).toBe('--live needs ANTHROPIC_API_KEY or OPENAI_API_KEY in the environment; without --live the demo runs its scripted agent.');
  });
});
