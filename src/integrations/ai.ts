import type { LanguageModelMiddleware } from 'ai';
import { wrapLanguageModel } from 'ai';
import type { Session } from '../recorder/index.js';
import { parseArguments, recordOf } from './observe.js';
import { recordCall, surface, type Answer, type CallFacts, type Verdict } from './record-call.js';

export { toolCallParent } from './record-call.js';

type LanguageModelV3 = Parameters<typeof wrapLanguageModel>[0]['model'];
type CallOptions = Parameters<NonNullable<LanguageModelMiddleware['wrapGenerate']>>[0]['params'];
type GenerateResult = Awaited<ReturnType<NonNullable<LanguageModelMiddleware['wrapGenerate']>>>;
type StreamResult = Awaited<ReturnType<NonNullable<LanguageModelMiddleware['wrapStream']>>>;
type StreamPart = StreamResult['stream'] extends ReadableStream<infer P> ? P : never;

/**
 * `model` with every call the AI SDK makes through it (`generateText`, `streamText`,
 * `generateObject`, `streamObject`, and agents built on them) recorded as an `llm.call` in
 * `session`, through the SDK's own language-model middleware: each attempt the SDK makes
 * (a retry, each step of a multi-step tool loop) is one record. The caller's results, streams and
 * errors are the SDK's own.
 */
export function recordModel(model: LanguageModelV3, session: Session): LanguageModelV3 {
  return wrapLanguageModel({ model, middleware: witnessMiddleware(session) });
}

/** The middleware `recordModel` applies, for callers composing middleware of their own with `wrapLanguageModel`. */
export function witnessMiddleware(session: Session): LanguageModelMiddleware {
  return {
    specificationVersion: 'v3',
    async wrapGenerate({ doGenerate, params, model }) {
      const started = performance.now();
      const facts = factsOf(model, params, false);
      let result: GenerateResult;
      try {
        result = await doGenerate();
      } catch (err) {
        void recordCall(session, facts, failure(err), performance.now() - started);
        throw err;
      }
      let verdict: Promise<Verdict> | undefined;
      try {
        verdict = recordCall(session, facts, generatedAnswer(result), performance.now() - started);
      } catch {
        // Recording never breaks the agent's call.
      }
      // Only a strict recorder's refusal of the record rejects here, once the answer is in.
      await surface(verdict);
      return result;
    },
    async wrapStream({ doStream, params, model }) {
      const started = performance.now();
      const facts = factsOf(model, params, true);
      let result: StreamResult;
      try {
        result = await doStream();
      } catch (err) {
        void recordCall(session, facts, failure(err), performance.now() - started);
        throw err;
      }
      return { ...result, stream: observed(result.stream, session, facts, started, requestIdOf(result.response?.headers)) };
    },
  };
}

/** Call options recorded on their own, or not at all (the abort signal; headers may carry credentials). */
const NOT_PARAMETERS = ['prompt', 'tools', 'abortSignal', 'headers', 'includeRawChunks'];

function factsOf(model: LanguageModelV3, params: CallOptions, stream: boolean): CallFacts {
  const prompt = Array.isArray(params.prompt) ? params.prompt : [];
  const system = prompt.filter((m) => m.role === 'system').map((m) => m.content);
  const parameters: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(params)) if (v !== undefined && !NOT_PARAMETERS.includes(k)) parameters[k] = plain(v);
  return {
    provider: typeof model.provider === 'string' && model.provider !== '' ? model.provider : 'unknown',
    method: stream ? 'stream' : 'generate',
    model: typeof model.modelId === 'string' && model.modelId !== '' ? model.modelId : 'unknown',
    input: prompt.filter((m) => m.role !== 'system').map(plain),
    // One system message is hashed as its text, several as the canonical JSON of their texts.
    ...(system.length === 0 ? {} : { system: system.length === 1 ? system[0] : system }),
    ...(params.tools === undefined || params.tools.length === 0 ? {} : { tools: plain(params.tools) }),
    parameters,
    stream,
  };
}

function generatedAnswer(r: GenerateResult): Answer {
  return {
    responseModel: r.response?.modelId,
    output: plain(r.content),
    toolCalls: toolCallsOf(r.content),
    usage: usageOf(r.usage),
    stopReason: r.finishReason?.unified,
    requestId: requestIdOf(r.response?.headers),
  };
}

function toolCallsOf(content: readonly unknown[]): Answer['toolCalls'] {
  const calls: NonNullable<Answer['toolCalls']> = [];
  for (const c of content) {
    const part = recordOf(c);
    if (part['type'] !== 'tool-call' || typeof part['toolName'] !== 'string') continue;
    calls.push({ ...(typeof part['toolCallId'] === 'string' ? { id: part['toolCallId'] } : {}), name: part['toolName'], arguments: parseArguments(part['input']) });
  }
  return calls;
}

/** The SDK's usage in the recorder's names (input / output tokens), with the provider's own figures kept beside them. */
function usageOf(u: GenerateResult['usage'] | undefined): Record<string, unknown> | undefined {
  if (u === undefined || u === null) return undefined;
  const input = recordOf(u.inputTokens);
  const output = recordOf(u.outputTokens);
  const out: Record<string, unknown> = { ...recordOf(u.raw) };
  const put = (k: string, v: unknown) => typeof v === 'number' && (out[k] = v);
  put('input_tokens', input['total']);
  put('output_tokens', output['total']);
  put('cache_read_input_tokens', input['cacheRead']);
  put('cache_creation_input_tokens', input['cacheWrite']);
  put('reasoning_tokens', output['reasoning']);
  return Object.keys(out).length === 0 ? undefined : out;
}

/** The providers' request-id headers (OpenAI's, Anthropic's). */
const REQUEST_ID_HEADERS = ['x-request-id', 'request-id'];

function requestIdOf(headers: Record<string, string | undefined> | undefined): string | undefined {
  if (headers === undefined) return undefined;
  for (const h of REQUEST_ID_HEADERS) if (typeof headers[h] === 'string') return headers[h];
  return undefined;
}

/**
 * A failed call as recorded: the AI SDK's APICallError keeps the HTTP status as `statusCode` and
 * the provider's body as text, so they are read into the shape the other wrappers record.
 */
function failure(err: unknown): Answer {
  try {
    return apiFailure(err);
  } catch {
    // A hostile getter on the error: the error itself, as the other wrappers record it.
    return { error: err };
  }
}

function apiFailure(err: unknown): Answer {
  const e = recordOf(err);
  const headers = recordOf(e['responseHeaders']) as Record<string, string | undefined>;
  if (typeof e['statusCode'] !== 'number') return { error: err, requestId: requestIdOf(headers) };
  let body: unknown;
  try {
    body = typeof e['responseBody'] === 'string' ? JSON.parse(e['responseBody']) : undefined;
  } catch {
    body = undefined;
  }
  // OpenAI's body says { error: { code, type } }, Anthropic's { error: { type } }: the code when there is one, as the other wrappers record.
  const detail = recordOf(recordOf(body)['error']);
  const code = [detail['code'], detail['type']].find((c) => typeof c === 'string' && c !== '');
  const view = {
    message: typeof e['message'] === 'string' ? e['message'] : String(err),
    name: typeof e['name'] === 'string' ? e['name'] : 'Error',
    status: e['statusCode'],
    ...(code === undefined ? {} : { code }),
  };
  return { error: view, requestId: requestIdOf(headers) };
}

/**
 * The provider's stream, handed on part by part as it is read (nothing is read ahead of the
 * caller: highWaterMark 0), recorded once when it finishes, fails or is cancelled.
 */
function observed(source: ReadableStream<StreamPart>, session: Session, facts: CallFacts, started: number, requestId: string | undefined): ReadableStream<StreamPart> {
  const acc = new StreamAccumulator();
  const reader = source.getReader();
  let firstChunkMs: number | undefined;
  let recorded = false;
  const finish = (error?: unknown): Promise<Verdict> | undefined => {
    if (recorded) return undefined;
    recorded = true;
    try {
      const { complete, ...answer } = acc.answer();
      const err = error ?? answer.error;
      return recordCall(
        session,
        facts,
        { ...answer, requestId, firstChunkMs, ...(complete && err === undefined ? {} : { partial: true }), ...(err === undefined ? {} : { error: failure(err).error }) },
        performance.now() - started,
      );
    } catch {
      // Recording never breaks the agent's stream.
      return undefined;
    }
  };
  return new ReadableStream<StreamPart>(
    {
      async pull(controller) {
        let r: Awaited<ReturnType<typeof reader.read>>;
        try {
          r = await reader.read();
        } catch (err) {
          void finish(err);
          throw err;
        }
        if (r.done) {
          // Every part has reached the caller; a strict recorder's refusal errors the stream instead of closing it.
          await surface(finish());
          controller.close();
          return;
        }
        firstChunkMs ??= performance.now() - started;
        try {
          acc.add(r.value);
        } catch {
          // A part the accumulator cannot read is still the caller's.
        }
        controller.enqueue(r.value);
      },
      async cancel(reason) {
        void finish();
        await reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
}

class StreamAccumulator {
  private readonly content: Array<Record<string, unknown>> = [];
  private readonly open = new Map<string, Record<string, unknown>>();
  private responseModel: string | undefined;
  private usage: Record<string, unknown> | undefined;
  private stopReason: string | undefined;
  private error: unknown;
  private finished = false;

  add(part: StreamPart): void {
    switch (part.type) {
      case 'text-start':
      case 'reasoning-start': {
        const block = { type: part.type === 'text-start' ? 'text' : 'reasoning', text: '' };
        this.open.set(`${block.type}:${part.id}`, block);
        this.content.push(block);
        break;
      }
      case 'text-delta':
      case 'reasoning-delta': {
        const type = part.type === 'text-delta' ? 'text' : 'reasoning';
        let block = this.open.get(`${type}:${part.id}`);
        if (block === undefined) {
          block = { type, text: '' };
          this.open.set(`${type}:${part.id}`, block);
          this.content.push(block);
        }
        block['text'] = `${block['text'] as string}${part.delta}`;
        break;
      }
      case 'tool-call':
        this.content.push(plain(part) as Record<string, unknown>);
        break;
      case 'response-metadata':
        if (typeof part.modelId === 'string') this.responseModel = part.modelId;
        break;
      case 'finish':
        this.finished = true;
        this.usage = usageOf(part.usage);
        this.stopReason = part.finishReason?.unified;
        break;
      case 'error':
        this.error = part.error;
        break;
      default:
        break;
    }
  }

  answer(): Answer & { complete: boolean } {
    return {
      complete: this.finished,
      responseModel: this.responseModel,
      output: this.content,
      toolCalls: toolCallsOf(this.content),
      usage: this.usage,
      stopReason: this.stopReason,
      ...(this.error === undefined ? {} : { error: this.error }),
    };
  }
}

/**
 * The call's values as plain JSON: bytes (an image or file in the prompt) become their length,
 * not their contents; URLs and dates their text.
 */
function plain(v: unknown): unknown {
  if (v instanceof Uint8Array) return { bytes: v.byteLength };
  if (v instanceof URL) return v.href;
  if (v instanceof Date) return v.toISOString();
  if (Array.isArray(v)) return v.map(plain);
  if (typeof v === 'object' && v !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = plain(x);
    return out;
  }
  return v;
}
