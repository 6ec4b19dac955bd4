import { McpRelay, type RelayOptions } from './relay.js';
import { StdioUpstream, childEnv } from './upstream-stdio.js';

/**
 * The stdio MCP audit proxy. An MCP client launches `witness proxy … -- <server>` instead of the
 * server; the proxy spawns the server and links the two newline-delimited JSON-RPC streams
 * through a relay (relay.ts), which looks only at what it must; every other frame — progress,
 * server→client requests such as sampling or elicitation, their responses, methods it has never
 * heard of — is forwarded byte for byte, except that a raw CR becomes a space (see jsonrpc.ts oneLine).
 *
 * Both MCP eras pass through the same way (era.ts): each message is forwarded in the era it was
 * sent, and one proxy process is one Witness session whatever the era, since the 2026-07-28 wire
 * names no session of its own.
 */

export interface StdioProxyOptions extends Omit<RelayOptions, 'purpose' | 'labels'> {
  command: string;
  args: readonly string[];
  /** The client side: the proxy reads requests here and writes responses there (stdin/stdout). */
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
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

export class StdioProxy {
  private readonly o: StdioProxyOptions;
  private relay: McpRelay | undefined;
  private upstream: StdioUpstream | undefined;
  private finishing: Promise<ProxyOutcome> | undefined;
  private clientClosed = false;
  private stopping = false;
  /** Which came first, the client closing its stdin or a stop signal: it names how the run ended. */
  private endedFirstBy: 'client' | 'signal' | undefined;
  private probeEnded = false;
  private resolveDone!: (o: ProxyOutcome) => void;
  /** Resolves once the session is ended and every record is written. */
  readonly done: Promise<ProxyOutcome> = new Promise((r) => (this.resolveDone = r));

  constructor(options: StdioProxyOptions) {
    this.o = options;
  }

  get sessionId(): string | undefined {
    return this.relay?.sessionId;
  }

  /** Records session.start, spawns the server and starts forwarding. Resolves once both sides are linked. */
  async start(): Promise<void> {
    const { command, args } = this.o;
    const { input: _i, output: _o, env: _e, cwd: _c, stopTimeoutMs: _s, command: _cmd, args: _a, ...relayOptions } = this.o;
    const relay = await McpRelay.open(
      {
        ...relayOptions,
        purpose: `MCP stdio proxy for ${this.o.server ?? command}`,
        labels: { transport: 'stdio', command: [command, ...args].join(' ').slice(0, 4096) },
      },
      { toClient: (message) => this.toClient(message.text), toServer: (message) => this.toServer(message.text) },
    );
    this.relay = relay;

    // The ledger's secrets stay with the proxy (see childEnv), whatever environment the server is given.
    const upstream = new StdioUpstream({
      command,
      args,
      env: childEnv(undefined, this.o.env ?? process.env),
      cwd: this.o.cwd,
      stopTimeoutMs: this.o.stopTimeoutMs,
      onLine: (line) => relay.fromServer(line),
    });
    this.upstream = upstream;
    void upstream.exited.then(() => this.serverGone());

    const fromClient = relay.clientSplitter();
    this.o.input.on('data', (chunk: Buffer | string) => fromClient.push(chunk));
    this.o.input.on('end', () => {
      fromClient.end();
      void this.clientGone();
    });
    this.o.input.on('error', () => void this.clientGone());
    this.o.output.on('error', () => void this.clientGone());
  }

  /** Stops the proxy (a signal): the server is asked to exit and the session ends as cancelled (a version probe's: completed). */
  async stop(): Promise<ProxyOutcome> {
    this.stopping = true;
    this.endedFirstBy ??= 'signal';
    // A version probe's client sends SIGTERM and SIGKILLs a second later: its records are finished
    // before the server is asked to exit, which may take longer.
    await this.endProbe();
    await this.stopServer();
    return this.done;
  }

  /**
   * A v2 client in auto mode launches the proxy once only to ask server/discover, then stops it
   * (stdin closed and SIGTERM at once): that run did what it was for, so its session gets a note
   * and ends completed. True when this run was such a probe (and its session is now ended).
   */
  private async endProbe(): Promise<boolean> {
    const relay = this.relay;
    if (relay === undefined) return false;
    if (this.probeEnded) return true;
    const probe = relay.versionProbe();
    if (probe === undefined) return false;
    this.probeEnded = true;
    relay.rec.note('A version probe: the client only asked server/discover, as a v2 MCP client in auto mode does in a run of its own before it connects.', probe);
    await relay.end('completed');
    return true;
  }

  private async clientGone(): Promise<void> {
    if (this.clientClosed) return;
    this.clientClosed = true;
    this.endedFirstBy ??= 'client';
    await this.relay?.drained();
    await this.stopServer();
  }

  private async stopServer(): Promise<void> {
    await this.upstream?.stop();
  }

  private serverGone(): Promise<ProxyOutcome> {
    this.finishing ??= (async () => {
      const upstream = this.upstream!;
      const exit = await upstream.exited;
      const { code, signal } = exit;
      const spawnError = exit.spawnError;
      const relay = this.relay!;
      const expected = this.clientClosed || this.stopping;
      const message = upstream.describe(exit);
      if (this.clientClosed) await relay.clientGone('stdin closed');
      await relay.upstreamGone(message, spawnError !== undefined ? 'upstream_spawn_failed' : 'upstream_exited', !expected || spawnError !== undefined, { exit_code: code, signal });
      // Whoever ended the run first names it: a client that closed its stdin finished its session,
      // even when it then signals the proxy because shutting the server down took longer than it
      // waits (the MCP SDKs send SIGTERM 2 s after closing stdin), so that run ends completed.
      const reason: ProxyEndReason =
        spawnError !== undefined ? 'spawn_failed' : this.endedFirstBy === 'client' ? 'client_closed' : this.stopping ? 'stopped' : this.clientClosed ? 'client_closed' : 'server_exited';
      // Stop reading the client: nothing more can be forwarded.
      this.o.input.removeAllListeners('data');
      this.o.input.pause();
      const failed = reason === 'spawn_failed' || (reason === 'server_exited' && code !== 0);
      const probe = (reason === 'stopped' || reason === 'client_closed') && (await this.endProbe());
      await relay.end(probe ? 'completed' : reason === 'stopped' ? 'cancelled' : failed ? 'error' : 'completed');
      const outcome: ProxyOutcome = { reason, serverExitCode: code, serverSignal: signal, ...(expected && spawnError === undefined ? {} : { message }) };
      this.resolveDone(outcome);
      return outcome;
    })();
    return this.finishing;
  }

  private toClient(line: string): void {
    this.o.output.write(`${line}\n`);
  }

  private toServer(line: string): void {
    this.upstream?.send(line);
  }
}

/** Starts a proxy and resolves when it has finished (client closed, server exited, or stopped). */
export async function runStdioProxy(options: StdioProxyOptions): Promise<ProxyOutcome> {
  const proxy = new StdioProxy(options);
  await proxy.start();
  return proxy.done;
}
