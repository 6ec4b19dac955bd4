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

import { SUPPORTED_PROTOCOL_VERSIONS } from '@modelcontextprotocol/sdk/types.js';
import { ErrorCode } from './error-codes.js';

/** The modern revisions this gateway speaks. */
export const MODERN_VERSIONS: readonly string[] = ['2026-07-28'];

/** The 2025 revisions, which a client and server speak through initialize (the 1.x SDK's list: what 2025 sessions serve). */
export const LEGACY_VERSIONS: readonly string[] = SUPPORTED_PROTOCOL_VERSIONS;

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

// ---------------------------------------------------------------- what the relay does per era
//
// Everything below is the relay's era-specific behaviour, so that relay.ts asks one question
// here instead of branching on the era itself. A message's era is read from the message alone
// (eraOfMessage): on stdio a process could in principle mix both, and each request is then treated
// as what it says it is.

/** The modern discovery request: a client's first (auto mode) or only (a version probe) request. */
export const DISCOVER = 'server/discover';
/** A modern request whose answer is a stream of notifications, ended by a result or by the client's cancellation. */
export const LISTEN = 'subscriptions/listen';

/**
 * params members a modern request may carry beyond what the legacy era knows: the retry of a
 * multi round-trip request (MRTR) answers the server's input requests (`inputResponses`) and
 * echoes its opaque `requestState`. Both are recorded with the call (see roundTrip).
 */
export const MODERN_CALL_PARAMS: ReadonlySet<string> = new Set(['inputResponses', 'requestState']);

/** The params members a tools/call of this message's era may carry besides name, arguments, _meta and task. */
export function extraCallParams(message: unknown): ReadonlySet<string> {
  return eraOfMessage(message) === 'modern' ? MODERN_CALL_PARAMS : NONE;
}
const NONE: ReadonlySet<string> = new Set();

/**
 * What a modern request claims about its client, from its own envelope: the protocol version, the
 * self-declared clientInfo and capabilities, and whatever else `_meta` holds (a progress token,
 * keys of the client's own). All of it is a claim: it is recorded under `client_claims` and never
 * decides the agent, which comes from the gateway's configuration only. Undefined for a message
 * without the envelope (legacy: the claims come from `initialize`).
 */
export function envelopeClaims(meta: unknown): Record<string, unknown> | undefined {
  if (meta === null || typeof meta !== 'object' || Array.isArray(meta)) return undefined;
  const m = meta as Record<string, unknown>;
  if (!Object.prototype.hasOwnProperty.call(m, META.protocolVersion)) return undefined;
  const { [META.protocolVersion]: protocolVersion, [META.clientInfo]: clientInfo, [META.clientCapabilities]: clientCapabilities, ...rest } = m;
  return {
    era: 'modern',
    protocolVersion,
    ...(clientInfo === undefined ? {} : { clientInfo }),
    ...(clientCapabilities === undefined ? {} : { clientCapabilities }),
    ...(Object.keys(rest).length === 0 ? {} : { _meta: rest }),
  };
}

/** Why a request's version claim cannot be served, as the JSON-RPC error to answer with. */
export interface VersionRefusal {
  code: number;
  message: string;
  /** `requested`: the claimed version (at most 64 characters), null when the claim is not a string. */
  data: { supported: readonly string[]; requested: string | null };
}

/** JSON-RPC error code of the modern era (spec: basic/versioning), from the gateway's one table. */
export const UNSUPPORTED_PROTOCOL_VERSION = ErrorCode.UnsupportedProtocolVersion;

/**
 * A request whose envelope claims a revision this gateway does not speak is refused here, with the
 * spec's error (-32022, naming the versions served), before anything is recorded as a call or
 * forwarded: the gateway cannot audit a revision whose messages it does not know. A client in
 * auto mode reads the list and retries with a version in it.
 */
export function versionRefusal(message: unknown): VersionRefusal | undefined {
  const claimed = claimedVersion(message);
  if (claimed === undefined || (typeof claimed === 'string' && MODERN_VERSIONS.includes(claimed))) return undefined;
  if (typeof claimed !== 'string') {
    // Not a version at all: a malformed envelope, which the spec answers -32602 (and the value is not echoed).
    return {
      code: ErrorCode.InvalidParams,
      message: `Invalid _meta envelope: ${META.protocolVersion} must be a string naming a protocol revision, not ${claimed === null ? 'null' : Array.isArray(claimed) ? 'an array' : typeof claimed}.`,
      data: { supported: MODERN_VERSIONS, requested: null },
    };
  }
  const requested = claimed.slice(0, 64);
  return {
    code: UNSUPPORTED_PROTOCOL_VERSION,
    message: `Unsupported protocol version: ${requested}; this Witness gateway speaks ${MODERN_VERSIONS.join(', ')} (and the 2025 revisions through initialize).`,
    data: { supported: MODERN_VERSIONS, requested },
  };
}

/**
 * A tool result the gateway writes itself (a refusal by policy or by a person), shaped for the era
 * of the request it answers: a modern client rejects a result without `resultType` from a server
 * that speaks 2026-07-28 ("absent means complete" holds only for earlier revisions).
 */
export function ownResult(requestParams: unknown, result: Record<string, unknown>): Record<string, unknown> {
  return eraOfMessage({ params: requestParams }) === 'modern' ? { ...result, resultType: 'complete' } : result;
}

/**
 * A tools/list result under a policy is an answer for one agent (the tools a rule hides are gone, or
 * would be for another agent): a modern result that lets any cache share it across authorization
 * contexts (`cacheScope: "public"`) is passed on as `"private"`, so a shared cache cannot hand one
 * agent's list to another. The same object when nothing changes (legacy results have no scope).
 */
export function privateScope(result: Record<string, unknown>): Record<string, unknown> {
  return result['cacheScope'] === undefined || result['cacheScope'] === 'private' ? result : { ...result, cacheScope: 'private' };
}

/**
 * Whether a result finishes its request. A modern server may answer tools/call, resources/read or
 * prompts/get with `resultType: "input_required"` (a multi round-trip request, MRTR): the client
 * must answer the server's input requests and send the request again (a new id). Such a result is
 * passed to the client untouched and recorded with outcome `pending` and its result type, so an
 * auditor sees that the action has not happened yet; the retry is a call of its own. Undefined
 * means complete (the legacy era has no result types; a modern `complete` is complete).
 */
export function incompleteResult(result: unknown): string | undefined {
  if (result === null || typeof result !== 'object' || Array.isArray(result)) return undefined;
  const t = (result as Record<string, unknown>)['resultType'];
  return t === undefined || t === 'complete' ? undefined : typeof t === 'string' ? t.slice(0, 64) : 'unknown';
}

/**
 * The MRTR members of a retried request, for its tool.call record: the client's answers to the
 * server's input requests and the server's opaque state, recorded as sent (the state is never
 * read or trusted: it is the server's, and it is passed on untouched).
 */
export function roundTrip(params: Record<string, unknown>): Record<string, unknown> {
  return {
    ...(params['inputResponses'] === undefined ? {} : { input_responses: params['inputResponses'] }),
    ...(params['requestState'] === undefined ? {} : { request_state: params['requestState'] }),
  };
}

/**
 * Whether a run's client requests (their distinct methods) are a version probe: the v2 SDK's stdio transport in
 * auto mode launches the server command once only to ask server/discover, then kills it and
 * launches it again for the real connection. Such a run is a normal, complete session (recorded
 * with a note), not a failure, however it was stopped.
 */
export function isVersionProbe(methods: readonly string[]): boolean {
  return methods.length > 0 && methods.every((m) => m === DISCOVER);
}

/**
 * What a server/discover answer says about the server, for the probe's note: the versions it
 * offers, or its error (a 2025-only server answers -32601, which makes the client fall back).
 * A discover error is no fault of anyone's and is not recorded as an error.
 */
export function discoverySummary(result: unknown, error: unknown): Record<string, unknown> {
  if (error !== undefined) {
    const e = error !== null && typeof error === 'object' ? (error as Record<string, unknown>) : {};
    return { server_era: 'legacy', discover_error: { code: e['code'], message: typeof e['message'] === 'string' ? e['message'].slice(0, 200) : undefined } };
  }
  const r = result !== null && typeof result === 'object' ? (result as Record<string, unknown>) : {};
  return { server_era: 'modern', supported_versions: r['supportedVersions'] };
}

/** The version a request asks for: its envelope's claim (modern), or initialize's protocolVersion (2025); undefined otherwise. */
export function requestedVersion(message: unknown): unknown {
  const claimed = claimedVersion(message);
  if (claimed !== undefined || message === null || typeof message !== 'object') return claimed;
  const m = message as { method?: unknown; params?: unknown };
  return m.method === 'initialize' && m.params !== null && typeof m.params === 'object' ? (m.params as { protocolVersion?: unknown }).protocolVersion : undefined;
}

/**
 * A server's error answer that means this client and this server share no era of MCP, replaced by
 * the gateway's own answer: one sentence naming the versions each side speaks and what to do (the
 * server's text names neither, and a client pinned to a version shows only its own). Undefined for
 * every other answer, which passes unchanged. The ledger keeps the server's own answer.
 *
 * - server/discover answered with any error but -32022: by the spec's rule (as the v2 client applies
 *   it) the server is of the 2025 revisions. Answered -32022 with `data.supported` = those revisions:
 *   a client in auto mode finds no modern version in the list and falls back to initialize as before;
 *   one pinned to a modern version stops with this sentence.
 * - initialize answered -32022: the server speaks only the modern revisions it lists.
 */
export function eraMismatch(id: unknown, method: string, requested: unknown, error: unknown): Record<string, unknown> | undefined {
  if (error === null || typeof error !== 'object' || Array.isArray(error)) return undefined;
  const e = error as Record<string, unknown>;
  const version = typeof requested === 'string' ? requested.slice(0, 64) : null;
  const answer = (message: string, supported: readonly string[]) => ({
    jsonrpc: '2.0',
    id,
    error: { code: ErrorCode.UnsupportedProtocolVersion, message, data: { supported, requested: version } },
  });
  if (method === DISCOVER && e['code'] !== ErrorCode.UnsupportedProtocolVersion) {
    const said = typeof e['message'] === 'string' && e['message'] !== '' ? ` ${e['message'].slice(0, 200)}` : '';
    return answer(
      `The MCP server behind this gateway speaks only the 2025 revisions of MCP (through initialize), not ${version ?? 'the 2026-07-28 era'}, as its answer to server/discover shows (error ${String(e['code']).slice(0, 20)}${said}): connect with a 2025 revision, which a v2 client in auto mode does by itself.`,
      LEGACY_VERSIONS,
    );
  }
  if (method === 'initialize' && e['code'] === ErrorCode.UnsupportedProtocolVersion) {
    const listed = asStrings((e['data'] as Record<string, unknown> | undefined)?.['supported']);
    const supported = listed.length > 0 ? listed : MODERN_VERSIONS;
    return answer(
      `The MCP server behind this gateway speaks only ${supported.join(', ')}, not ${version ?? 'the 2025 revision'} that this client asked for in initialize: connect with a client that speaks ${supported[0]!} (the v2 MCP SDK does, in auto mode or pinned to it).`,
      supported,
    );
  }
  return undefined;
}

function asStrings(v: unknown): string[] {
  return Array.isArray(v)
    ? v
        .filter((x): x is string => typeof x === 'string')
        .map((x) => x.slice(0, 64))
        .slice(0, 16)
    : [];
}
