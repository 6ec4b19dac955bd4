import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { WitnessError } from '../core/index.js';
import type { Session } from '../recorder/index.js';
import type { AgentRun, StepOutcome } from './agent.js';

/**
 * `witness demo --live`: the same back office and proxy, but a real model decides the calls —
 * Anthropic's Messages API (ANTHROPIC_API_KEY) or OpenAI's Chat Completions (OPENAI_API_KEY), over
 * plain fetch, with the MCP server's tools offered to it. Each model call is recorded as `llm.call`
 * in a session of the agent's own; the tool calls are recorded by the proxy, as for any agent.
 */

export const LIVE_TASK = `You are a support agent for Acme with tools for the back office.
Work through these cases, one tool call at a time, and give a short reason in every call that has a reason field:
1. Look up customer C-1042: they say order A-1042 was charged twice. Refund the duplicate charge.
2. Customer C-2077 asks for a $1,200 goodwill credit after a late delivery: request it as a refund.
3. The new support hire u-17 needs to issue refunds: request the admin role for them; if that is refused, give them billing-viewer instead.
4. Record R-88 fails validation: its date of birth 1984-13-03 has month and day swapped; fix the field.
Stop when all four cases are handled, and say what you did.`;

type Provider = 'anthropic' | 'openai';

export interface LiveOptions {
  provider: Provider;
  apiKey: string;
  model: string;
  baseUrl: string;
  maxTurns?: number;
}

/** Which provider the environment offers, or the one-sentence error saying what --live needs. */
export function liveFromEnv(env: NodeJS.ProcessEnv, model?: string): LiveOptions {
  const anthropic = env['ANTHROPIC_API_KEY'];
  const openai = env['OPENAI_API_KEY'];
  if (anthropic !== undefined && anthropic !== '') {
    return {
      provider: 'anthropic',
      apiKey: anthropic,
      model: model ?? env['WITNESS_DEMO_MODEL'] ?? 'claude-sonnet-4-5',
      baseUrl: (env['ANTHROPIC_BASE_URL'] ?? 'https://api.anthropic.com').replace(/\/$/, ''),
    };
  }
  if (openai !== undefined && openai !== '') {
    return { provider: 'openai', apiKey: openai, model: model ?? env['WITNESS_DEMO_MODEL'] ?? 'gpt-4.1', baseUrl: (env['OPENAI_BASE_URL'] ?? 'https://api.openai.com/v1').replace(/\/$/, '') };
  }
  throw new WitnessError('invalid_argument', '--live needs ANTHROPIC_API_KEY or OPENAI_API_KEY in the environment; without --live the demo runs its scripted agent.');
}

// Both APIs allow only [A-Za-z0-9_-] in tool names; MCP names here have dots.
const toApi = (name: string) => name.replace(/\./g, '__');
const fromApi = (name: string) => name.replace(/__/g, '.');

interface ToolDef {
  name: string;
  description?: string | undefined;
  inputSchema: unknown;
}

interface ToolUse {
  id: string;
  name: string;
  input: Record<string, unknown>;
}

async function post(url: string, headers: Record<string, string>, body: unknown): Promise<Record<string, unknown>> {
  let res: Response;
  try {
    res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  } catch (e) {
    throw new WitnessError('store_unavailable', `The model API at ${url} could not be reached (${(e as Error).message}); check the network, or run the demo without --live.`);
  }
  const text = await res.text();
  if (!res.ok) throw new WitnessError('invalid_argument', `The model API answered ${res.status}: ${text.slice(0, 300)}; check the key and the model name.`);
  return JSON.parse(text) as Record<string, unknown>;
}

/** One model turn: the tool calls it asks for (none = it is done) and its text. */
async function turn(o: LiveOptions, tools: readonly ToolDef[], history: unknown[]): Promise<{ uses: ToolUse[]; text: string; raw: Record<string, unknown>; usage?: Record<string, number> }> {
  if (o.provider === 'anthropic') {
    const raw = await post(
      `${o.baseUrl}/v1/messages`,
      { 'x-api-key': o.apiKey, 'anthropic-version': '2023-06-01' },
      { model: o.model, max_tokens: 1024, system: LIVE_TASK, messages: history, tools: tools.map((t) => ({ name: toApi(t.name), description: t.description ?? '', input_schema: t.inputSchema })) },
    );
    const content = (raw['content'] ?? []) as Array<{ type: string; text?: string; id?: string; name?: string; input?: Record<string, unknown> }>;
    history.push({ role: 'assistant', content });
    const usage = raw['usage'] as { input_tokens?: number; output_tokens?: number } | undefined;
    return {
      uses: content.filter((c) => c.type === 'tool_use').map((c) => ({ id: c.id ?? '', name: fromApi(c.name ?? ''), input: c.input ?? {} })),
      text: content
        .filter((c) => c.type === 'text')
        .map((c) => c.text ?? '')
        .join('\n'),
      raw,
      ...(usage === undefined ? {} : { usage: { input_tokens: usage.input_tokens ?? 0, output_tokens: usage.output_tokens ?? 0 } }),
    };
  }
  const raw = await post(
    `${o.baseUrl}/chat/completions`,
    { authorization: `Bearer ${o.apiKey}` },
    {
      model: o.model,
      messages: [{ role: 'system', content: LIVE_TASK }, ...history],
      tools: tools.map((t) => ({ type: 'function', function: { name: toApi(t.name), description: t.description ?? '', parameters: t.inputSchema } })),
    },
  );
  const message = ((raw['choices'] as Array<{ message: { content?: string | null; tool_calls?: Array<{ id: string; function: { name: string; arguments: string } }> } }>)[0]?.message ?? {}) as {
    content?: string | null;
    tool_calls?: Array<{ id: string; function: { name: string; arguments: string } }>;
  };
  history.push({ role: 'assistant', content: message.content ?? null, ...(message.tool_calls === undefined ? {} : { tool_calls: message.tool_calls }) });
  const usage = raw['usage'] as { prompt_tokens?: number; completion_tokens?: number } | undefined;
  return {
    uses: (message.tool_calls ?? []).map((c) => ({ id: c.id, name: fromApi(c.function.name), input: safeJson(c.function.arguments) })),
    text: message.content ?? '',
    raw,
    ...(usage === undefined ? {} : { usage: { input_tokens: usage.prompt_tokens ?? 0, output_tokens: usage.completion_tokens ?? 0 } }),
  };
}

function safeJson(text: string): Record<string, unknown> {
  try {
    const v = JSON.parse(text) as unknown;
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/** Runs the model against the back office through `witness proxy`, recording its own LLM calls in `llm`. */
export async function runLiveAgent(o: LiveOptions, proxy: { command: string; args: string[]; env: Record<string, string>; cwd: string }, llm: Session): Promise<AgentRun> {
  const transport = new StdioClientTransport({ command: proxy.command, args: proxy.args, env: proxy.env, cwd: proxy.cwd, stderr: 'pipe' });
  let proxyLog = '';
  transport.stderr?.on('data', (c: Buffer) => (proxyLog += c.toString()));
  const client = new Client({ name: 'acme-support-agent', version: `live-${o.provider}` });
  await client.connect(transport);
  const outcomes: StepOutcome[] = [];
  const history: unknown[] = [{ role: 'user', content: 'Please handle the four cases now.' }];
  try {
    const tools = (await client.listTools()).tools as ToolDef[];
    for (let i = 0; i < (o.maxTurns ?? 16); i++) {
      const input = JSON.parse(JSON.stringify(history)) as unknown[];
      const started = performance.now();
      const t = await turn(o, tools, history);
      await llm.llmCall({
        model: o.model,
        provider: o.provider,
        input,
        output: t.text,
        toolCalls: t.uses.map((u) => ({ id: u.id, name: u.name, arguments: u.input })),
        latencyMs: performance.now() - started,
        systemPrompt: LIVE_TASK,
        toolDefinitions: tools,
        ...(t.usage === undefined ? {} : { usage: t.usage }),
      });
      if (t.uses.length === 0) break;
      const results: Array<{ id: string; text: string; isError: boolean }> = [];
      for (const use of t.uses) {
        const r = await client.callTool({ name: use.name, arguments: use.input }, undefined, { timeout: 120_000, resetTimeoutOnProgress: true, onprogress: () => undefined });
        const text = ((r as { content?: Array<{ text?: string }> }).content ?? []).map((c) => c.text ?? '').join(' ');
        outcomes.push({ step: { tool: use.name, args: use.input }, isError: r.isError === true, text });
        results.push({ id: use.id, text, isError: r.isError === true });
      }
      if (o.provider === 'anthropic') history.push({ role: 'user', content: results.map((r) => ({ type: 'tool_result', tool_use_id: r.id, content: r.text, is_error: r.isError })) });
      else for (const r of results) history.push({ role: 'tool', tool_call_id: r.id, content: r.text });
    }
  } finally {
    await client.close();
  }
  return { outcomes, proxyLog };
}
