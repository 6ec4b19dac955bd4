import { ErrorCode } from './error-codes.js';
import type { JsonRpcId } from './jsonrpc.js';

/**
 * What crosses the relay while the agent is halted besides the agent's own requests (those are
 * refused in relay.ts): the server's requests to the agent, the agent's answers to them, and the
 * agent's notifications. A halt must stop the agent acting through any of them: a server that asks
 * "really delete every order?" and acts on the answer would otherwise let a halted agent finish a
 * destructive call with `{"action": "accept"}`, and a server may act on a notification it defines.
 */

/**
 * The agent's notifications forwarded while it is halted: the protocol's own, which only describe
 * the client or stop work (MCP 2025-06-18 ClientNotification: initialized, cancelled, progress,
 * roots/list_changed). Anything else (a server's own notification methods, tasks/status) is
 * dropped and recorded: a halt must not depend on knowing what a server does with a method.
 */
export const NOTIFICATIONS_WHILE_HALTED: ReadonlySet<string> = new Set(['notifications/initialized', 'notifications/cancelled', 'notifications/progress', 'notifications/roots/list_changed']);

/**
 * The server's requests the agent still sees and answers while halted: ping, which asks nothing of
 * it. Every other one (elicitation/create, sampling/createMessage, roots/list, a method of the
 * server's own) is answered by the gateway (see haltAnswer) and never reaches the agent.
 */
export const SERVER_REQUESTS_WHILE_HALTED: ReadonlySet<string> = new Set(['ping']);

/** A request the server sent the agent, kept until it is answered. */
export interface ServerRequest {
  id: JsonRpcId;
  method: string;
  params: unknown;
  /** The agent's call it belongs to, when exactly one was open when it came (stdio does not say). */
  call?: { callId: string; tool: string } | undefined;
}

/**
 * The gateway's own answer to a server's request the halted agent may not answer: an elicitation is
 * declined (MCP: the user explicitly refused, so the server must not act), anything else gets the
 * JSON-RPC error a halt answers with (-32052) and the sentence `why`.
 */
export function haltAnswer(id: JsonRpcId, method: string, why: string): { message: Record<string, unknown>; answered: Record<string, unknown> } {
  if (method === 'elicitation/create') {
    const answered = { action: 'decline' };
    return { message: { jsonrpc: '2.0', id, result: answered }, answered };
  }
  const answered = { error: { code: ErrorCode.Halted, message: why } };
  return { message: { jsonrpc: '2.0', id, ...answered }, answered };
}

/** What the agent sent as its answer, for the record: its result or its error, nothing else. */
export function answerOf(message: unknown): Record<string, unknown> {
  const m = message !== null && typeof message === 'object' && !Array.isArray(message) ? (message as Record<string, unknown>) : {};
  return { ...('result' in m ? { result: m['result'] } : {}), ...('error' in m ? { error: m['error'] } : {}) };
}
