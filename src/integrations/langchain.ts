import { BaseCallbackHandler } from '@langchain/core/callbacks/base';
import type { Serialized } from '@langchain/core/load/serializable';
import type { BaseMessage } from '@langchain/core/messages';
import type { LLMResult } from '@langchain/core/outputs';
import { v7 as uuidv7 } from 'uuid';
import type { Session } from '../recorder/index.js';
import { parseArguments, recordOf } from './observe.js';
import { recordCall, surface, toolCallParent, verdictOf, type Answer, type CallFacts, type Verdict } from './record-call.js';

export { toolCallParent } from './record-call.js';

interface LlmRun {
  facts: CallFacts;
  started: number;
}

interface ToolRun {
  id: string;
  name: string;
  started: number;
}

const RECORDED_ELSEWHERE = ['model', 'model_name', 'modelName', 'tools', 'functions', 'stream', 'streaming', 'messages'];
/** Invocation params are each integration's own; one that carries a credential or headers must not put it in the ledger. */
const CREDENTIAL = /api[_-]?key|secret|password|authori[sz]ation|^headers$|credential/i;

/** Runs left open (a model call or tool whose end never came) are dropped past this many. */
const MAX_OPEN_RUNS = 4096;

/**
 * A LangChain.js callback handler that records every chat model and LLM call as an `llm.call`
 * and every tool run as `tool.call` and `tool.result` in `session`; a tool run that carries the
 * model's tool call id links to the `llm.call` that requested it. Pass it in `callbacks`
 * (`model.invoke(messages, { callbacks: [handler] })`, or to an agent). Recording never fails the
 * run: the handler records without waiting for the write; only a strict recorder's refusal of a
 * record is thrown, and raiseError makes LangChain fail the run with it (as a strict recorder
 * rejects any other recording call) instead of only logging it.
 */
export class WitnessCallbackHandler extends BaseCallbackHandler {
  name = 'witness';
  /** Handled inline (not on LangChain's background queue), so each record is queued before the run goes on. */
  override awaitHandlers = true;
  /** The handler throws only a strict recorder's refusal (its own faults are caught): let it fail the run. */
  override raiseError = true;
  private readonly llmRuns = new Map<string, LlmRun>();
  private readonly toolRuns = new Map<string, ToolRun>();

  constructor(private readonly session: Session) {
    super();
  }

  override handleChatModelStart(
    llm: Serialized,
    messages: BaseMessage[][],
    runId: string,
    _parent?: string,
    extraParams?: Record<string, unknown>,
    _tags?: string[],
    metadata?: Record<string, unknown>,
  ): void {
    const all = (messages[0] ?? []).map(messageOf);
    const system = all.filter((m) => m.role === 'system').map((m) => m.content);
    this.startLlm(
      runId,
      llm,
      extraParams,
      metadata,
      all.filter((m) => m.role !== 'system'),
      system.length === 0 ? undefined : system.length === 1 ? system[0] : system,
      'chat',
    );
  }

  override handleLLMStart(llm: Serialized, prompts: string[], runId: string, _parent?: string, extraParams?: Record<string, unknown>, _tags?: string[], metadata?: Record<string, unknown>): void {
    this.startLlm(
      runId,
      llm,
      extraParams,
      metadata,
      prompts.map((p) => ({ role: 'user', content: p })),
      undefined,
      'llm',
    );
  }

  override async handleLLMEnd(output: LLMResult, runId: string): Promise<void> {
    const run = take(this.llmRuns, runId);
    if (run === undefined) return;
    let answer: Answer;
    try {
      answer = answerOf(output);
    } catch {
      answer = {};
    }
    await surface(recordCall(this.session, run.facts, answer, performance.now() - run.started));
  }

  override async handleLLMError(err: Error, runId: string): Promise<void> {
    const run = take(this.llmRuns, runId);
    if (run === undefined) return;
    // An abort mid-stream ends here too: what had arrived is not in the error, so the record says partial.
    // The model's error is the one the run fails with: a refusal of its record is not thrown over it.
    void recordCall(this.session, run.facts, { error: err, ...(run.facts.stream ? { partial: true } : {}) }, performance.now() - run.started);
  }

  override async handleToolStart(
    tool: Serialized,
    input: string,
    runId: string,
    _parent?: string,
    _tags?: string[],
    _metadata?: Record<string, unknown>,
    runName?: string,
    toolCallId?: string,
  ): Promise<void> {
    let verdict: Promise<Verdict> | undefined;
    try {
      const name = runName ?? serializedName(tool);
      const id = uuidv7();
      remember(this.toolRuns, runId, { id, name, started: performance.now() });
      const fields = { id, resource: name, action: name, outcome: 'pending' as const, ...toolCallParent(this.session, toolCallId) };
      const data = { tool: name, arguments: parseArguments(input), ...(toolCallId === undefined ? {} : { tool_call_id: toolCallId }) };
      verdict = verdictOf(this.session.record('tool.call', data, fields));
    } catch {
      // Recording never breaks the agent's run.
    }
    await surface(verdict);
  }

  override async handleToolEnd(output: unknown, runId: string): Promise<void> {
    const run = take(this.toolRuns, runId);
    if (run === undefined) return;
    await this.toolResult(run, { output: toolOutputOf(output), is_error: false }, 'success');
  }

  override async handleToolError(err: Error, runId: string): Promise<void> {
    const run = take(this.toolRuns, runId);
    if (run === undefined) return;
    // The tool's error is the one the run fails with: a refusal of its record is not thrown over it.
    await this.toolResult(run, { is_error: true, error: { message: err?.message ?? String(err), name: err?.name ?? 'Error' } }, 'error').catch(() => undefined);
  }

  private async toolResult(run: ToolRun, data: { is_error: boolean; output?: unknown; error?: { message: string; name: string } }, outcome: 'success' | 'error'): Promise<void> {
    let verdict: Promise<Verdict> | undefined;
    try {
      const duration = Math.round((performance.now() - run.started) * 1000) / 1000;
      verdict = verdictOf(this.session.record('tool.result', { tool: run.name, ...data, duration_ms: duration }, { parent: run.id, resource: run.name, action: run.name, outcome }));
    } catch {
      // As above.
    }
    await surface(verdict);
  }

  private startLlm(
    runId: string,
    llm: Serialized,
    extraParams: Record<string, unknown> | undefined,
    metadata: Record<string, unknown> | undefined,
    input: unknown[],
    system: unknown,
    kind: 'chat' | 'llm',
  ): void {
    try {
      const invocation = { ...recordOf(extraParams?.['invocation_params']) };
      const meta = recordOf(metadata);
      const model = [meta['ls_model_name'], invocation['model'], invocation['model_name'], invocation['modelName']].find((m) => typeof m === 'string' && m !== '');
      const provider = typeof meta['ls_provider'] === 'string' && meta['ls_provider'] !== '' ? meta['ls_provider'] : serializedName(llm);
      const tools = invocation['tools'] ?? invocation['functions'];
      const stream = invocation['stream'] === true || invocation['streaming'] === true;
      const parameters: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(invocation)) if (v !== undefined && !RECORDED_ELSEWHERE.includes(k) && !CREDENTIAL.test(k)) parameters[k] = v;
      const facts: CallFacts = {
        provider,
        method: kind === 'chat' ? 'chat_model' : 'llm',
        model: (model as string | undefined) ?? 'unknown',
        input,
        ...(system === undefined ? {} : { system }),
        ...(tools === undefined ? {} : { tools }),
        parameters,
        stream,
      };
      remember(this.llmRuns, runId, { facts, started: performance.now() });
    } catch {
      // As above.
    }
  }
}

function remember<T>(runs: Map<string, T>, runId: string, run: T): void {
  runs.set(runId, run);
  if (runs.size > MAX_OPEN_RUNS) runs.delete(runs.keys().next().value!);
}

function take<T>(runs: Map<string, T>, runId: string): T | undefined {
  const run = runs.get(runId);
  runs.delete(runId);
  return run;
}

function serializedName(s: Serialized): string {
  const r = recordOf(s);
  if (typeof r['name'] === 'string' && r['name'] !== '') return r['name'];
  const id = r['id'];
  return Array.isArray(id) && typeof id.at(-1) === 'string' ? (id.at(-1) as string) : 'unknown';
}

/** A LangChain message as recorded: its role, content, and the tool calls or tool call id it carries. */
function messageOf(m: BaseMessage): { role: string; content: unknown; [k: string]: unknown } {
  const r = recordOf(m);
  const type = typeof m.getType === 'function' ? m.getType() : String(r['type'] ?? 'unknown');
  const role = type === 'human' ? 'user' : type === 'ai' ? 'assistant' : type;
  const calls = r['tool_calls'];
  return {
    role,
    content: r['content'],
    ...(Array.isArray(calls) && calls.length > 0 ? { tool_calls: calls } : {}),
    ...(typeof r['tool_call_id'] === 'string' ? { tool_call_id: r['tool_call_id'] } : {}),
    ...(typeof r['name'] === 'string' && r['name'] !== '' ? { name: r['name'] } : {}),
  };
}

function answerOf(output: LLMResult): Answer {
  const gen = recordOf(output.generations?.[0]?.[0]);
  const message = recordOf(gen['message']);
  const info = recordOf(gen['generationInfo']);
  const meta = recordOf(message['response_metadata']);
  const calls = Array.isArray(message['tool_calls']) ? (message['tool_calls'] as unknown[]).map(recordOf) : [];
  const usage = recordOf(message['usage_metadata']);
  const tokenUsage = recordOf(recordOf(output.llmOutput)['tokenUsage']);
  const modelName = meta['model_name'] ?? meta['model'] ?? recordOf(output.llmOutput)['model_name'];
  const stop = meta['finish_reason'] ?? meta['stop_reason'] ?? info['finish_reason'];
  const requestId = meta['request_id'] ?? meta['requestId'];
  return {
    ...(typeof modelName === 'string' ? { responseModel: modelName } : {}),
    output: gen['message'] === undefined ? gen['text'] : messageOf(gen['message'] as BaseMessage),
    toolCalls: calls.map((c) => ({ ...(typeof c['id'] === 'string' ? { id: c['id'] } : {}), name: String(c['name']), arguments: c['args'] })),
    ...(Object.keys(usage).length > 0 ? { usage } : Object.keys(tokenUsage).length > 0 ? { usage: tokenUsage } : {}),
    ...(typeof stop === 'string' ? { stopReason: stop } : {}),
    ...(typeof requestId === 'string' ? { requestId } : {}),
  };
}

/** A tool's answer as recorded: a ToolMessage's content (the artifact, if any, beside it), or the value itself. */
function toolOutputOf(output: unknown): unknown {
  const r = recordOf(output);
  if (typeof recordOf(output)['lc_serializable'] === 'boolean' || r['tool_call_id'] !== undefined) {
    return { content: r['content'], ...(r['artifact'] === undefined ? {} : { artifact: r['artifact'] }), ...(r['status'] === undefined ? {} : { status: r['status'] }) };
  }
  return output;
}
