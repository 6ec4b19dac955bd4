import type Anthropic from '@anthropic-ai/sdk';
import type { Session } from '../recorder/index.js';
import { observeCall, overlay, recordOf, type StreamAccumulator } from './observe.js';
import { parametersOf, type Answer, type CallFacts } from './record-call.js';

export { toolCallParent } from './record-call.js';

/**
 * `client` with every `messages.create` (streamed or not, and `messages.stream`, which calls it)
 * recorded as an `llm.call` in `session`. The result has the client's own type; the SDK's results,
 * streams and errors reach the caller unchanged. Other methods (`beta.messages`, batches) are not
 * recorded.
 */
export function recordAnthropic<T extends Anthropic>(client: T, session: Session): T {
  const messages = client.messages;
  const create = messages.create as (...args: unknown[]) => unknown;
  const recordedCreate = function (this: unknown, ...args: unknown[]): unknown {
    const params = recordOf(args[0]);
    return observeCall(create.apply(messages, args), {
      session,
      facts: factsOf(params),
      requestIdHeader: 'request-id',
      summarize: answerOf,
      accumulator: () => new MessageAccumulator(),
    });
  };
  return overlay(
    client,
    {
      messages: overlay(messages, { create: recordedCreate }, false),
      withOptions: (...args: unknown[]) => recordAnthropic((client.withOptions as (...a: unknown[]) => T).apply(client, args), session),
    },
    true,
  );
}

function factsOf(p: Record<string, unknown>): CallFacts {
  return {
    provider: 'anthropic',
    method: 'messages.create',
    model: typeof p['model'] === 'string' && p['model'] !== '' ? p['model'] : 'unknown',
    input: Array.isArray(p['messages']) ? (p['messages'] as unknown[]) : [],
    ...(p['system'] === undefined ? {} : { system: p['system'] }),
    ...(p['tools'] === undefined ? {} : { tools: p['tools'] }),
    parameters: parametersOf(p, ['model', 'messages', 'system', 'tools', 'stream']),
    stream: p['stream'] === true,
  };
}

function answerOf(message: unknown): Answer {
  const m = recordOf(message);
  const content = Array.isArray(m['content']) ? (m['content'] as unknown[]) : [];
  return {
    ...(typeof m['model'] === 'string' ? { responseModel: m['model'] } : {}),
    output: content,
    toolCalls: toolCallsOf(content),
    ...(m['usage'] === undefined ? {} : { usage: recordOf(m['usage']) }),
    stopReason: typeof m['stop_reason'] === 'string' ? m['stop_reason'] : undefined,
  };
}

function toolCallsOf(content: unknown[]): Answer['toolCalls'] {
  const calls: NonNullable<Answer['toolCalls']> = [];
  for (const b of content) {
    const block = recordOf(b);
    if (block['type'] !== 'tool_use' || typeof block['name'] !== 'string') continue;
    calls.push({ ...(typeof block['id'] === 'string' ? { id: block['id'] } : {}), name: block['name'], arguments: block['input'] });
  }
  return calls;
}

/**
 * Builds the message from the stream's events as the API documents them (message_start,
 * content_block_start / _delta / _stop, message_delta, message_stop); a tool's input arrives as
 * JSON text in pieces and is parsed when its block stops.
 */
class MessageAccumulator implements StreamAccumulator {
  private message: Record<string, unknown> = {};
  private readonly content: Array<Record<string, unknown>> = [];
  private readonly json = new Map<number, string>();
  private stopped = false;

  add(item: unknown): void {
    const e = recordOf(item);
    const index = typeof e['index'] === 'number' ? e['index'] : -1;
    switch (e['type']) {
      case 'message_start':
        this.message = { ...recordOf(e['message']) };
        break;
      case 'content_block_start':
        this.content[index] = { ...recordOf(e['content_block']) };
        break;
      case 'content_block_delta': {
        const block = this.content[index];
        const d = recordOf(e['delta']);
        if (block === undefined) break;
        if (d['type'] === 'text_delta') block['text'] = `${typeof block['text'] === 'string' ? block['text'] : ''}${String(d['text'] ?? '')}`;
        else if (d['type'] === 'thinking_delta') block['thinking'] = `${typeof block['thinking'] === 'string' ? block['thinking'] : ''}${String(d['thinking'] ?? '')}`;
        else if (d['type'] === 'signature_delta') block['signature'] = d['signature'];
        else if (d['type'] === 'input_json_delta') this.json.set(index, (this.json.get(index) ?? '') + String(d['partial_json'] ?? ''));
        else if (d['type'] === 'citations_delta') block['citations'] = [...(Array.isArray(block['citations']) ? block['citations'] : []), d['citation']];
        break;
      }
      case 'content_block_stop':
        this.settleInput(index, true);
        break;
      case 'message_delta': {
        const d = recordOf(e['delta']);
        if (d['stop_reason'] !== undefined) this.message['stop_reason'] = d['stop_reason'];
        if (e['usage'] !== undefined) this.message['usage'] = { ...recordOf(this.message['usage']), ...withoutNulls(recordOf(e['usage'])) };
        break;
      }
      case 'message_stop':
        this.stopped = true;
        break;
      default:
        break;
    }
  }

  answer(): Answer & { complete: boolean } {
    for (const index of [...this.json.keys()]) this.settleInput(index, false);
    return { ...answerOf({ ...this.message, content: this.content.filter((b) => b !== undefined) }), complete: this.stopped };
  }

  /**
   * A tool input whose block stopped is its JSON text parsed (empty: no arguments). One cut off
   * before its block stopped is kept as the text that arrived, as `partial_input`, in place of the
   * placeholder `{}` its block started with.
   */
  private settleInput(index: number, stopped: boolean): void {
    const text = this.json.get(index);
    const block = this.content[index];
    if (text === undefined || block === undefined) return;
    this.json.delete(index);
    try {
      if (!stopped && text === '') throw new Error('no input arrived');
      block['input'] = text === '' ? {} : (JSON.parse(text) as unknown);
    } catch {
      delete block['input'];
      block['partial_input'] = text;
    }
  }
}

/** message_delta's usage repeats input counts as null where only the output count changed. */
function withoutNulls(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== null));
}
