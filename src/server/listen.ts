import { serve, type ServerType } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import { isWitnessError } from '../core/index.js';
import type { Ledger } from '../store/index.js';
import { createServer, type ServerOptions } from './app.js';
import { ServerMetrics } from './metrics.js';

export const DEFAULT_PORT = 7350;
export const DEFAULT_HOST = '127.0.0.1';
/** Events ingested over HTTP are sealed by this server, as the recorder seals an SDK's: every 10 s when something arrived, hourly when idle. */
export const SEAL_EVERY_MS = 10_000;
export const HEARTBEAT_MS = 3_600_000;

export interface ListenOptions extends Omit<ServerOptions, 'metrics'> {
  port?: number;
  host?: string;
  /** Seal interval; 0 turns the server's sealing off (another process seals). */
  sealEveryMs?: number;
}

export interface RunningServer {
  url: string;
  port: number;
  metrics: ServerMetrics;
  /** Stops accepting, waits for requests in flight, seals what arrived, closes the ledger. */
  close(): Promise<void>;
}

/**
 * Serves the API over HTTP. Every event a response acknowledged was committed before the
 * response was sent, so closing loses nothing; close() still waits for requests in flight (their
 * appends) before the final seal and the ledger's close.
 */
export async function listen(options: ListenOptions): Promise<RunningServer> {
  const metrics = new ServerMetrics();
  const app = createServer({ ...options, metrics });
  const ledger: Ledger = options.ledger;
  const server: ServerType = await new Promise((resolve, reject) => {
    const s = serve({ fetch: app.fetch, port: options.port ?? DEFAULT_PORT, hostname: options.host ?? DEFAULT_HOST }, () => resolve(s));
    s.once('error', reject);
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const every = options.sealEveryMs ?? SEAL_EVERY_MS;
  let sealing: Promise<void> | undefined;
  let lastSeal = Date.now();
  // Below any size, so the first tick also seals a tail left unsealed before the server started.
  let sealedSize = -1;
  let lastFault: string | undefined;
  const seal = (force: boolean): Promise<void> => {
    sealing ??= (async () => {
      try {
        await ledger.seal({ force });
        lastSeal = Date.now();
        sealedSize = ledger.info.size;
        lastFault = undefined;
      } catch (e) {
        metrics.sealErrors++;
        // A refusal repeats on every tick until someone acts (witness seal --adopt, a key): said once, counted always.
        const fault = e instanceof Error ? e.message : String(e);
        if (fault !== lastFault) options.onError?.(e);
        lastFault = fault;
      } finally {
        sealing = undefined;
      }
    })();
    return sealing;
  };
  const timer =
    every > 0 && ledger.canSeal
      ? setInterval(() => {
          const idle = Date.now() - lastSeal >= HEARTBEAT_MS;
          if (ledger.info.size > sealedSize || idle) void seal(idle);
        }, every)
      : undefined;
  timer?.unref();
  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${address.port}`,
    port: address.port,
    metrics,
    close: () =>
      (closing ??= (async () => {
        if (timer !== undefined) clearInterval(timer);
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          // Idle keep-alive connections would hold close() open; requests in flight still finish.
          (server as { closeIdleConnections?: () => void }).closeIdleConnections?.();
        });
        await sealing;
        if (ledger.canSeal && ledger.info.size > sealedSize) await seal(false);
        try {
          await ledger.close();
        } catch (e) {
          if (!isWitnessError(e, 'closed')) throw e;
        }
      })()),
  };
}
