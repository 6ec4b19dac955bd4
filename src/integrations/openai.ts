import type OpenAI from 'openai';
import type { Session } from '../recorder/index.js';
import { observeCall, overlay, parseArguments, recordOf, type StreamAccumulator } from './observe.js';
import { parametersOf, type Answer, type CallFacts } from './record-call.js';

export { toolCallParent } from './record-call.js';

/**
 * `client` with every `chat.completions.create` and `responses.create` (streamed or not) recorded
 * as an `llm.call` in `session`. The result has the client's own type; the SDK's results, streams
 * and errors reach the caller unchanged. Helpers that call the API through the client itself
 * (`chat.completions.parse`, `.stream`, `.runTools`, `responses.stream`) are not recorded.
 */
export function recordOpenAI<T extends OpenAI>(client: T, session: Session): T {
  const chat = client.chat;
  const completions = chat.completions;
  const responses = client.responses;
  return overlay(
    client,
    {
      chat: overlay(
        chat,
        { completions: overlay(completions, { create: recorded(session, completions, 'chat.completions.create', chatFactsOf, chatAnswerOf, () => new ChatAccumulator()) }, false) },
        false,
      ),
      responses: overlay(responses, { create: recorded(session, responses, 'responses.create', responseFactsOf, responseAnswerOf, () => new ResponseAccumulator()) }, false),
      withOptions: (...args: unknown[]) => recordOpenAI((client.withOptions as (...a: unknown[]) => T).apply(client, args), session),
    },
    true,
  );
}

function recorded(
  session: Session,
  resource: object,
  method: string,
  factsOf: (p: Record<string, unknown>, method: string) => CallFacts,
  summarize: (data: unknown) => Answer,
  accumulator: () => StreamAccumulator,
): (...args: unknown[]) => unknown {
  const create = (resource as { create: (...a: unknown[]) => unknown }).create;
  return function (this: unknown, ...args: unknown[]): unknown {
    return observeCall(create.apply(resource, args), { session, facts: factsOf(recordOf(args[0]), method), requestIdHeader: 'x-request-id', summarize, accumulator });
  };
}

const modelOf = (p: Record<string, unknown>): string => (typeof p['model'] === 'string' && p['model'] !== '' ? p['model'] : 'unknown');

/**
 * The system and developer messages are the system prompt: hashed, never stored, like the
 * recorder's `systemPrompt` (one message's text content alone is hashed as that text).
 */
function chatFactsOf(p: Record<string, unknown>, method: string): CallFacts {
  const messages = Array.isArray(p['messages']) ? (p['messages'] as unknown[]) : [];
  const isSystem = (m: unknown) => recordOf(m)['role'] === 'system' || recordOf(m)['role'] === 'developer';
  const system = messages.filter(isSystem);
  const only = system.length === 1 ? recordOf(system[0])['content'] : undefined;
  const tools = p['tools'] ?? p['functions'];
  return {
    provider: 'openai',
    method,
    model: modelOf(p),
    input: messages.filter((m) => !isSystem(m)),
    ...(system.length === 0 ? {} : { system: typeof only === 'string' ? only : system }),
    ...(tools === undefined ? {} : { tools }),
    parameters: parametersOf(p, ['model', 'messages', 'tools', 'functions', 'stream']),
    stream: p['stream'] === true,
  };
}

function responseFactsOf(p: Record<string, unknown>, method: string): CallFacts {
  const input = p['input'];
  return {
    provider: 'openai',
    method,
    model: modelOf(p),
    input: Array.isArray(input) ? (input as unknown[]) : input === undefined ? [] : [{ role: 'user', content: input }],
    ...(p['instructions'] === undefined || p['instructions'] === null ? {} : { system: p['instructions'] }),
    ...(p['tools'] === undefined ? {} : { tools: p['tools'] }),
    parameters: parametersOf(p, ['model', 'input', 'instructions', 'tools', 'stream']),
    stream: p['stream'] === true,
  };
}

/** Chat usage in the recorder's names (input / output tokens), with the provider's own details kept. */
function chatUsage(u: unknown): Record<string, unknown> | undefined {
  if (u === undefined || u === null) return undefined;
  const usage = recordOf(u);
  return {
    ...usage,
    ...(typeof usage['prompt_tokens'] === 'number' ? { input_tokens: usage['prompt_tokens'] } : {}),
    ...(typeof usage['completion_tokens'] === 'number' ? { output_tokens: usage['completion_tokens'] } : {}),
  };
}

function chatAnswerOf(completion: unknown): Answer {
  const c = recordOf(completion);
  const messages = (Array.isArray(c['choices']) ? (c['choices'] as unknown[]) : []).map((x) => recordOf(recordOf(x)['message']));
  const reasons = (Array.isArray(c['choices']) ? (c['choices'] as unknown[]) : []).map((x) => recordOf(x)['finish_reason']).filter((r) => typeof r === 'string');
  return {
    ...(typeof c['model'] === 'string' ? { responseModel: c['model'] } : {}),
    output: messages.length === 1 ? messages[0] : messages,
    toolCalls: messages.flatMap((m) => chatToolCalls(m['tool_calls'])),
    usage: chatUsage(c['usage']),
    stopReason: reasons.length === 0 ? undefined : reasons.join(','),
  };
}

function chatToolCalls(calls: unknown): NonNullable<Answer['toolCalls']> {
  if (!Array.isArray(calls)) return [];
  return calls.flatMap((x) => {
    const call = recordOf(x);
    const fn = recordOf(call['function'] ?? call['custom']);
    const name = fn['name'];
    if (typeof name !== 'string') return [];
    return [{ ...(typeof call['id'] === 'string' ? { id: call['id'] } : {}), name, arguments: parseArguments(fn['arguments'] ?? fn['input']) }];
  });
}

function responseAnswerOf(response: unknown): Answer {
  const r = recordOf(response);
  const output = Array.isArray(r['output']) ? (r['output'] as unknown[]) : [];
  const incomplete = recordOf(r['incomplete_details'])['reason'];
  return {
    ...(typeof r['model'] === 'string' ? { responseModel: r['model'] } : {}),
    output,
    toolCalls: output.flatMap((x) => {
      const item = recordOf(x);
      if (item['type'] !== 'function_call' || typeof item['name'] !== 'string') return [];
      const id = item['call_id'] ?? item['id'];
      return [{ ...(typeof id === 'string' ? { id } : {}), name: item['name'], arguments: parseArguments(item['arguments']) }];
    }),
    ...(r['usage'] === undefined || r['usage'] === null ? {} : { usage: recordOf(r['usage']) }),
    stopReason: typeof r['status'] === 'string' ? (typeof incomplete === 'string' ? `${r['status']}:${incomplete}` : r['status']) : undefined,
  };
}

/** Builds the completion from `chat.completion.chunk`s: text and tool-call arguments arrive in pieces, per choice index. */
class ChatAccumulator implements StreamAccumulator {
  private model: string | undefined;
  private usage: unknown;
  private readonly choices: Array<{ message: Record<string, unknown>; calls: Array<Record<string, unknown>>; finish?: string }> = [];

  add(item: unknown): void {
    const chunk = recordOf(item);
    if (typeof chunk['model'] === 'string') this.model = chunk['model'];
    if (chunk['usage'] !== undefined && chunk['usage'] !== null) this.usage = chunk['usage'];
    for (const x of Array.isArray(chunk['choices']) ? (chunk['choices'] as unknown[]) : []) {
      const c = recordOf(x);
      const i = typeof c['index'] === 'number' ? c['index'] : 0;
      const choice = (this.choices[i] ??= { message: { role: 'assistant' }, calls: [] });
      const d = recordOf(c['delta']);
      if (typeof d['role'] === 'string') choice.message['role'] = d['role'];
      for (const key of ['content', 'refusal'] as const) {
        if (typeof d[key] === 'string') choice.message[key] = `${typeof choice.message[key] === 'string' ? choice.message[key] : ''}${d[key]}`;
      }
      for (const t of Array.isArray(d['tool_calls']) ? (d['tool_calls'] as unknown[]) : []) {
        const tc = recordOf(t);
        const at = typeof tc['index'] === 'number' ? tc['index'] : choice.calls.length;
        const call = (choice.calls[at] ??= { type: 'function', function: { name: '', arguments: '' } });
        const fn = recordOf(call['function']);
        const dfn = recordOf(tc['function']);
        if (typeof tc['id'] === 'string') call['id'] = tc['id'];
        if (typeof dfn['name'] === 'string') fn['name'] = `${String(fn['name'])}${dfn['name']}`;
        if (typeof dfn['arguments'] === 'string') fn['arguments'] = `${String(fn['arguments'])}${dfn['arguments']}`;
      }
      if (typeof c['finish_reason'] === 'string') choice.finish = c['finish_reason'];
    }
  }

  answer(): Answer & { complete: boolean } {
    const choices = this.choices.filter((c) => c !== undefined);
    const completion = {
      ...(this.model === undefined ? {} : { model: this.model }),
      choices: choices.map((c) => ({ message: c.calls.length === 0 ? c.message : { ...c.message, tool_calls: c.calls.filter((x) => x !== undefined) }, finish_reason: c.finish })),
      usage: this.usage,
    };
    return { ...chatAnswerOf(completion), complete: choices.length > 0 && choices.every((c) => c.finish !== undefined) };
  }
}

/**
 * Responses API stream events: the final `response.completed` (or `.incomplete`, `.failed`)
 * carries the whole response; until it arrives, finished output items and text deltas are kept.
 */
class ResponseAccumulator implements StreamAccumulator {
  private final: unknown;
  private model: string | undefined;
  private readonly items: unknown[] = [];
  private readonly text = new Map<string, string>();

  add(item: unknown): void {
    const e = recordOf(item);
    const type = e['type'];
    if (type === 'response.created' || type === 'response.in_progress') {
      const m = recordOf(e['response'])['model'];
      if (typeof m === 'string') this.model = m;
    } else if (type === 'response.output_item.done') {
      const at = typeof e['output_index'] === 'number' ? e['output_index'] : this.items.length;
      this.items[at] = e['item'];
    } else if (type === 'response.output_text.delta' && typeof e['item_id'] === 'string') {
      this.text.set(e['item_id'], (this.text.get(e['item_id']) ?? '') + String(e['delta'] ?? ''));
    } else if (type === 'response.completed' || type === 'response.incomplete' || type === 'response.failed') {
      this.final = e['response'];
    }
  }

  answer(): Answer & { complete: boolean } {
    if (this.final !== undefined) return { ...responseAnswerOf(this.final), complete: true };
    const done = new Set(this.items.map((i) => recordOf(i)['id']));
    const unfinished = [...this.text].filter(([id]) => !done.has(id)).map(([id, text]) => ({ type: 'message', id, status: 'incomplete', content: [{ type: 'output_text', text }] }));
    return { ...responseAnswerOf({ model: this.model, output: [...this.items.filter((i) => i !== undefined), ...unfinished] }), complete: false };
  }
}
