/**
 * The two eras of MCP the gateway serves, and what differs between them, in one place.
 *
 * - legacy (2024-11-05 … 2025-11-25): a session opened by `initialize` (over HTTP named by
 *   Mcp-Session-Id), the client's claims sent once, a GET stream for server messages.
 * - modern (2026-07-28): no session and no handshake; every request carries its protocol version,
 *   client capabilities and (self-declared) client info in `params._meta`, a client discovers the
 *   server with `server/discover`, and `subscriptions/listen` (a request whose answer is a stream)
 *   replaces the GET stream and resources/subscribe.
 *
 * The rule that decides a message's era is the spec's, as the official v2 SDK applies it: a message
 * is modern when its `params._meta` carries the protocol-version claim (or, over HTTP, when the
 * MCP-Protocol-Version header names a modern revision); everything else is legacy.
 */

/** The modern revisions this gateway speaks. */
export const MODERN_VERSIONS: readonly string[] = ['2026-07-28'];

/** Reserved `_meta` keys of the modern era. */
export const META = {
  protocolVersion: 'io.modelcontextprotocol/protocolVersion',
  clientInfo: 'io.modelcontextprotocol/clientInfo',
  clientCapabilities: 'io.modelcontextprotocol/clientCapabilities',
  logLevel: 'io.modelcontextprotocol/logLevel',
  subscriptionId: 'io.modelcontextprotocol/subscriptionId',
  serverInfo: 'io.modelcontextprotocol/serverInfo',
} as const;

export type Era = 'legacy' | 'modern';

export function isModernVersion(version: string): boolean {
  return version >= '2026-';
}

function metaOf(message: unknown): Record<string, unknown> | undefined {
  if (message === null || typeof message !== 'object' || Array.isArray(message)) return undefined;
  const params = (message as { params?: unknown }).params;
  if (params === null || typeof params !== 'object' || Array.isArray(params)) return undefined;
  const meta = (params as { _meta?: unknown })._meta;
  return meta !== null && typeof meta === 'object' && !Array.isArray(meta) ? (meta as Record<string, unknown>) : undefined;
}

/** The protocol version a message's envelope claims, when it carries the claim at all. */
export function claimedVersion(message: unknown): unknown {
  const meta = metaOf(message);
  return meta !== undefined && Object.prototype.hasOwnProperty.call(meta, META.protocolVersion) ? meta[META.protocolVersion] : undefined;
}

/** The era of one client message by its body alone (stdio, where no header exists). */
export function eraOfMessage(message: unknown): Era {
  return claimedVersion(message) === undefined ? 'legacy' : 'modern';
}
