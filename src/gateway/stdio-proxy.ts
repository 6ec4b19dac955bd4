import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import type { AgentRef } from '../core/index.js';
import { evaluate, visibleTools, type Evaluation, type Policy } from '../policy/index.js';
import { RECORDER_VERSION, type Witness } from '../recorder/index.js';
import { ErrorCode, LineSplitter, classify, errorResponse, idKey, resultResponse, toolErrorResult, type Frame, type JsonRpcId } from './jsonrpc.js';
import { GatewayRecorder } from './record.js';

/**
 * The stdio MCP audit proxy. An MCP client launches `witness proxy … -- <server>` instead of the
 * server; the proxy spawns the server and links the two newline-delimited JSON-RPC streams. It
 * looks only at what it must (initialize, tools/call, tools/list and the responses to them,
 * cancellations); every other frame — progress, server→client requests such as sampling or
 * elicitation, their responses, methods it has never heard of — is forwarded byte for byte.
 *
 * Client frames are handled strictly in order: a tools/call is held until its tool.call record is
 * durable, and frames behind it wait, so the server never sees them out of order.
 */

export interface StdioProxyOptions {
  witness: Witness;
  /** The agent identity, from the proxy's own configuration: never from anything the client sends. */
  agent: AgentRef;
  command: string;
  args: readonly string[];
  /** A name for the upstream server, used by policy rules (`match.server`) and in the records. */
  server?: string | undefined;
  policy?: Policy | undefined;
  /** The client side: the proxy reads requests here and writes responses there (stdin/stdout). */
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Diagnostics for a person (stderr in the CLI). Never the MCP channel. */
  onLog?: (message: string) => void;
  /** How long the server gets to exit after its stdin closes, before SIGTERM (then SIGKILL). */
  stopTimeoutMs?: number;
}

export type ProxyEndReason = 'client_closed' | 'server_exited' | 'spawn_failed' | 'stopped';

export interface ProxyOutcome {
  reason: ProxyEndReason;
  serverExitCode: number | null;
  serverSignal: NodeJS.Signals | null;
  /** One sentence for a person when the server could not be started or died. */
  message?: string;
}

interface Pending {
  id: JsonRpcId;
  method: string;
  started: number;
  /** Set for tools/call: the tool.call event id and the tool. */
  call?: { callId: string; tool: string };
}

/** Error code for a call refused because it could not be recorded (implementation-defined range). */
export const NOT_RECORDED = -32050;

export class StdioProxy {
  private readonly o: StdioProxyOptions;
  private rec: GatewayRecorder | undefined;
  private child: ChildProcessByStdio<Writable, Readable, null> | undefined;
  private chain: Promise<void> = Promise.resolve();
  private readonly pending = new Map<string, Pending>();
  private claims: { clientInfo?: unknown; protocolVersion?: unknown } | undefined;
  private finishing: Promise<ProxyOutcome> | undefined;
  private clientClosed = false;
  private stopping = false;
  private childExit: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | undefined;
  private spawnError: Error | undefined;
  private resolveDone!: (o: ProxyOutcome) => void;
  /** Resolves once the session is ended and every record is written. */
  readonly done: Promise<ProxyOutcome> = new Promise((r) => (this.resolveDone = r));

  constructor(options: StdioProxyOptions) {
    this.o = options;
  }

  /** Records session.start, spawns the server and starts forwarding. Resolves once both sides are linked. */
  async start(): Promise<void> {
    const { witness, agent, command, args, server } = this.o;
    const session = await witness.session({
      agent,
      recorder: { kind: 'gateway', version: RECORDER_VERSION },
      purpose: `MCP stdio proxy for ${server ?? command}`.slice(0, 4096),
      labels: {
        transport: 'stdio',
        command: [command, ...args].join(' ').slice(0, 4096),
        ...(server === undefined ? {} : { server }),
        ...(this.o.policy === undefined ? {} : { policy: this.o.policy.sha256, policy_mode: this.o.policy.mode }),
      },
    });
    this.rec = new GatewayRecorder(witness, session);

    const child = spawn(command, [...args], { stdio: ['pipe', 'pipe', 'inherit'], env: this.o.env ?? process.env, ...(this.o.cwd === undefined ? {} : { cwd: this.o.cwd }) });
    this.child = child;
    this.childExit = new Promise((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
    child.once('error', (e) => {
      // ENOENT / EACCES: 'close' still follows; remember why.
      this.spawnError = e;
    });
    child.stdin.on('error', () => undefined); // EPIPE after the server died: 'close' handles it.
    const fromServer = new LineSplitter((line) => this.onServerLine(line));
    child.stdout.on('data', (chunk: Buffer) => fromServer.push(chunk));
    child.stdout.on('end', () => fromServer.end());
    void this.childExit.then(() => this.serverGone());

    const fromClient = new LineSplitter((line) => this.onClientLine(line));
    this.o.input.on('data', (chunk: Buffer | string) => fromClient.push(chunk));
    this.o.input.on('end', () => {
      fromClient.end();
      void this.clientGone();
    });
    this.o.input.on('error', () => void this.clientGone());
    this.o.output.on('error', () => void this.clientGone());
  }

  /** Stops the proxy (a signal): the server is asked to exit and the session ends as cancelled. */
  async stop(): Promise<ProxyOutcome> {
    this.stopping = true;
    await this.stopServer();
    return this.done;
  }

  // ---------------------------------------------------------------- client → server

  private onClientLine(line: string): void {
    if (this.finishing !== undefined) return;
    const frame = classify(line);
    if (frame.type === 'invalid') {
      this.toClient(errorResponse(null, ErrorCode.ParseError, `Parse error: the line is not JSON (${frame.reason}).`));
      this.rec?.error(`The client sent a line that is not JSON: ${frame.reason}.`, 'parse_error', 'gateway', { line: line.slice(0, 1024), bytes: Buffer.byteLength(line) });
      return;
    }
    if (frame.type === 'batch') {
      // MCP (2025-06-18 on) has no batches, and a batch would let calls past the recorder unseen.
      this.toClient(errorResponse(null, ErrorCode.InvalidRequest, 'Invalid request: JSON-RPC batches are not supported by this gateway; send one message per line.'));
      this.rec?.error('The client sent a JSON-RPC batch, which was refused.', 'batch_refused', 'gateway', { size: frame.message.length });
      return;
    }
    this.chain = this.chain.then(() => this.fromClient(frame, line)).catch((e: unknown) => this.log(`witness proxy: could not handle a client message: ${String(e)}`));
  }

  private async fromClient(frame: Frame, line: string): Promise<void> {
    if (frame.type === 'request') {
      if (frame.method === 'tools/call') return this.toolCall(frame.id, frame.params, line);
      if (frame.method === 'initialize') {
        const p = asObject(frame.params);
        this.claims = { ...(p['clientInfo'] === undefined ? {} : { clientInfo: p['clientInfo'] }), ...(p['protocolVersion'] === undefined ? {} : { protocolVersion: p['protocolVersion'] }) };
      }
      this.pending.set(idKey(frame.id), { id: frame.id, method: frame.method, started: performance.now() });
    } else if (frame.type === 'notification' && frame.method === 'notifications/cancelled') {
      const requestId = asObject(frame.params)['requestId'];
      const p = typeof requestId === 'string' || typeof requestId === 'number' ? this.pending.get(idKey(requestId)) : undefined;
      if (p?.call !== undefined) {
        this.pending.delete(idKey(p.id));
        const reason = asObject(frame.params)['reason'];
        this.rec?.result({
          callId: p.call.callId,
          tool: p.call.tool,
          server: this.o.server,
          isError: true,
          error: { message: `The client cancelled the call${typeof reason === 'string' ? `: ${reason}` : ''}.`, code: 'cancelled' },
          durationMs: performance.now() - p.started,
          outcome: 'error',
        });
      }
    }
    this.toServer(line);
  }

  private async toolCall(id: JsonRpcId, rawParams: unknown, line: string): Promise<void> {
    const params = asObject(rawParams);
    const tool = params['name'];
    const rec = this.rec;
    if (typeof tool !== 'string' || tool === '' || rec === undefined) {
      this.toClient(errorResponse(id, ErrorCode.InvalidParams, 'Invalid params: tools/call needs params.name, the name of the tool to call.'));
      this.rec?.error('The client sent a tools/call without a tool name, which was refused.', 'invalid_params', 'gateway', { jsonrpc_id: id });
      return;
    }
    const args = params['arguments'];
    const server = this.o.server;
    const evaluation = this.o.policy === undefined ? undefined : evaluate(this.o.policy, { agent: this.o.agent.id, server, tool, args });
    const meta = params['_meta'];
    const claims = this.claims === undefined && meta === undefined ? undefined : { ...this.claims, ...(meta === undefined ? {} : { _meta: meta }) };
    const started = performance.now();
    const callId = await rec.call({ tool, server, args, jsonrpcId: id, claims, evaluation });
    if (callId === undefined) {
      this.toClient(errorResponse(id, NOT_RECORDED, `Witness could not record this call to ${tool}, so it was not sent to the server (the gateway fails closed); try again once the ledger is available.`));
      this.log(`witness proxy: refused a call to ${tool} because it could not be recorded.`);
      return;
    }
    if (evaluation !== undefined && evaluation.enforced && evaluation.decision !== 'allow') {
      const result = toolErrorResult(refusal(tool, evaluation));
      this.toClient(resultResponse(id, result));
      rec.result({ callId, tool, server, output: result, isError: true, durationMs: performance.now() - started, outcome: 'denied' });
      return;
    }
    this.pending.set(idKey(id), { id, method: 'tools/call', started, call: { callId, tool } });
    this.toServer(line);
  }

  // ---------------------------------------------------------------- server → client

  private onServerLine(line: string): void {
    const frame = classify(line);
    if (frame.type !== 'response') return this.toClient(line);
    const key = idKey(frame.id);
    const p = this.pending.get(key);
    if (p === undefined) return this.toClient(line);
    this.pending.delete(key);
    if (p.call !== undefined) {
      const result = frame.result;
      const error = frame.error === undefined ? undefined : rpcError(frame.error);
      const isError = error !== undefined || asObject(result)['isError'] === true;
      this.rec?.result({
        callId: p.call.callId,
        tool: p.call.tool,
        server: this.o.server,
        ...(result === undefined ? {} : { output: result }),
        isError,
        ...(error === undefined ? {} : { error }),
        durationMs: performance.now() - p.started,
        outcome: isError ? 'error' : 'success',
      });
    } else if (p.method === 'tools/list' && this.o.policy !== undefined) {
      const filtered = this.filterTools(frame);
      if (filtered !== undefined) return this.toClient(filtered);
    }
    this.toClient(line);
  }

  /** Hides the tools the policy says this agent may never call; undefined when nothing changes. */
  private filterTools(frame: Extract<Frame, { type: 'response' }>): string | undefined {
    const result = asObject(frame.result);
    const tools = result['tools'];
    if (!Array.isArray(tools) || this.o.policy === undefined) return undefined;
    const named = tools.filter((t): t is { name: string } => typeof asObject(t)['name'] === 'string');
    const visible = new Set(visibleTools(this.o.policy, this.o.agent.id, this.o.server, named));
    if (visible.size === named.length) return undefined;
    const kept = tools.filter((t) => typeof asObject(t)['name'] !== 'string' || visible.has(t as { name: string }));
    return JSON.stringify({ ...frame.message, result: { ...result, tools: kept } });
  }

  // ---------------------------------------------------------------- ends

  private async clientGone(): Promise<void> {
    if (this.clientClosed) return;
    this.clientClosed = true;
    await this.chain;
    await this.stopServer();
  }

  /** Closes the server's stdin, then SIGTERM, then SIGKILL, each after the stop timeout. */
  private async stopServer(): Promise<void> {
    const child = this.child;
    if (child === undefined || this.childExit === undefined) return;
    const wait = this.o.stopTimeoutMs ?? 1000;
    const exited = (ms: number) => Promise.race([this.childExit!.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms).unref())]);
    child.stdin.end();
    if (await exited(wait)) return;
    child.kill('SIGTERM');
    if (await exited(wait)) return;
    child.kill('SIGKILL');
    await this.childExit;
  }

  private serverGone(): Promise<ProxyOutcome> {
    this.finishing ??= (async () => {
      const { code, signal } = await this.childExit!;
      await this.chain;
      const rec = this.rec!;
      const expected = this.clientClosed || this.stopping;
      const how = this.spawnError !== undefined ? `could not be started (${this.spawnError.message})` : signal !== null ? `was killed by ${signal}` : `exited with code ${code}`;
      const message = `The MCP server "${[this.o.command, ...this.o.args].join(' ')}" ${how}.`;
      for (const p of this.pending.values()) {
        this.toClient(errorResponse(p.id, ErrorCode.ConnectionClosed, `${message.replace(/\.$/, '')} before answering ${p.method}.`));
        if (p.call !== undefined) {
          rec.result({
            callId: p.call.callId,
            tool: p.call.tool,
            server: this.o.server,
            isError: true,
            error: { message, code: 'upstream_exited' },
            durationMs: performance.now() - p.started,
            outcome: 'error',
          });
        }
      }
      this.pending.clear();
      if (!expected || this.spawnError !== undefined) {
        // Recorded here; said to a person through the outcome's message.
        rec.error(message, this.spawnError !== undefined ? 'upstream_spawn_failed' : 'upstream_exited', 'tool', { exit_code: code, signal });
      }
      const reason: ProxyEndReason = this.spawnError !== undefined ? 'spawn_failed' : this.stopping ? 'stopped' : this.clientClosed ? 'client_closed' : 'server_exited';
      // Stop reading the client: nothing more can be forwarded.
      this.o.input.removeAllListeners('data');
      this.o.input.pause();
      await rec.settle();
      const failed = reason === 'spawn_failed' || (reason === 'server_exited' && code !== 0);
      await rec.session.end({ reason: reason === 'stopped' ? 'cancelled' : failed ? 'error' : 'completed' });
      await rec.settle();
      const outcome: ProxyOutcome = { reason, serverExitCode: code, serverSignal: signal, ...(expected && this.spawnError === undefined ? {} : { message }) };
      this.resolveDone(outcome);
      return outcome;
    })();
    return this.finishing;
  }

  // ---------------------------------------------------------------- plumbing

  private toClient(line: string): void {
    this.o.output.write(`${line}\n`);
  }

  private toServer(line: string): void {
    const child = this.child;
    if (child === undefined || child.stdin.destroyed || !child.stdin.writable) return;
    child.stdin.write(`${line}\n`);
  }

  private log(message: string): void {
    try {
      this.o.onLog?.(message);
    } catch {
      // A logger that throws must not take the proxy down.
    }
  }
}

/** Starts a proxy and resolves when it has finished (client closed, server exited, or stopped). */
export async function runStdioProxy(options: StdioProxyOptions): Promise<ProxyOutcome> {
  const proxy = new StdioProxy(options);
  await proxy.start();
  return proxy.done;
}

/** What the model reads when a call is refused by policy. */
function refusal(tool: string, e: Evaluation): string {
  const rule = e.rule === undefined ? 'the policy default' : `policy rule "${e.rule}"`;
  if (e.decision === 'review') {
    return `The call to ${tool} needs human approval under ${rule}${e.reason === undefined ? '' : ` (${e.reason})`}, and this gateway cannot hold calls for approval yet, so it was not made.`;
  }
  return `The call to ${tool} was denied by ${rule}${e.reason === undefined ? '' : `: ${e.reason}`}${/[.!?]$/.test(e.reason ?? '') ? '' : '.'} It was not sent to the server.`;
}

function asObject(v: unknown): Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

function rpcError(e: unknown): { message: string; code?: number; data?: unknown } {
  const o = asObject(e);
  const message = typeof o['message'] === 'string' ? o['message'] : 'The server answered with a malformed JSON-RPC error.';
  return { message, ...(typeof o['code'] === 'number' ? { code: o['code'] } : {}), ...(o['data'] === undefined ? {} : { data: o['data'] }) };
}
