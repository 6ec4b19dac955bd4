import path from 'node:path';
import { Client, type ClientOptions } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { REPO_ROOT } from './ledger.js';

/**
 * Clients on the official v2 SDK (`@modelcontextprotocol/client`), for the 2026-07-28 era. The v2
 * Client speaks 2025-11-25 unless told otherwise, so every helper here takes the negotiation mode:
 * 'auto' probes with server/discover and falls back, `{ pin }` insists on one modern version.
 */

/** The real dual-era v2 McpServer the gateway tests stand in front of (`stdio` or `http 0`). */
export const V2_SERVER = path.join(REPO_ROOT, 'test', 'fixtures', 'children', 'mcp-v2-server.mjs');

/** How the v2 Client picks its protocol version. */
export type Negotiation = 'auto' | 'legacy' | { pin: string };

/** A v2 Client introducing itself as `name` version 2.0.0, negotiating as `negotiation`. */
export function v2Client(name = 'v2-test', negotiation: Negotiation = 'auto', options: Omit<ClientOptions, 'versionNegotiation'> = {}): Client {
  return new Client({ name, version: '2.0.0' }, { ...options, versionNegotiation: { mode: negotiation } });
}

export interface V2Stdio {
  client: Client;
  /** Everything the launched process wrote to stderr so far (the proxy's and, through it, the server's). */
  stderr(): string;
}

/** A v2 Client connected over stdio to `args` (command first), started in the repository root. */
export async function v2StdioClient(
  args: readonly string[],
  o: { name?: string; negotiation?: Negotiation; env?: Record<string, string>; options?: Omit<ClientOptions, 'versionNegotiation'> } = {},
): Promise<V2Stdio> {
  const [command, ...rest] = args as [string, ...string[]];
  const client = v2Client(o.name ?? 'v2-test', o.negotiation ?? 'auto', o.options ?? {});
  const transport = new StdioClientTransport({
    command,
    args: rest,
    cwd: REPO_ROOT,
    stderr: 'pipe',
    ...(o.env === undefined ? {} : { env: { ...(process.env as Record<string, string>), ...o.env } }),
  });
  let stderr = '';
  transport.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  await client.connect(transport);
  return { client, stderr: () => stderr };
}
