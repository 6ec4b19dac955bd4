import { classifyMessage, idKey } from './jsonrpc.js';

/**
 * Messages parsed and screened at the HTTP edge, waiting for the SDK transport to accept them (it
 * answers some POSTs itself: a wrong Accept header, a missing protocol version, a message its
 * schema refuses). When it accepts one, its onmessage takes the edge's object from here and hands
 * that to the relay: the transport's own copy (validated and rebuilt by zod) is never what gets
 * recorded or forwarded.
 *
 * Messages wait under what both copies share: the kind, and the id of a request or response or the
 * method of a notification. Two POSTs with the same key can be in flight at once (a client reusing
 * an id, two cancellations): then the one taken is the one whose content equals the accepted copy,
 * so a POST the transport refused can never lend its content to one it accepted.
 */
export class Inbox {
  private readonly waiting = new Map<string, unknown[]>();

  /** Puts a message in; the returned function takes it out again unless the transport took it. */
  put(message: unknown): () => void {
    const key = inboxKey(message);
    const list = this.waiting.get(key) ?? [];
    list.push(message);
    this.waiting.set(key, list);
    return () => this.remove(key, message);
  }

  /**
   * The edge's object for a message the transport accepted, or undefined when none waiting can be
   * it (several wait under its key and none has its content).
   */
  take(accepted: unknown): unknown {
    const key = inboxKey(accepted);
    const list = this.waiting.get(key);
    if (list === undefined) return undefined;
    const at = list.length === 1 ? 0 : list.findIndex((m) => sameJson(m, accepted));
    if (at === -1) return undefined;
    const [message] = list.splice(at, 1);
    if (list.length === 0) this.waiting.delete(key);
    return message;
  }

  private remove(key: string, message: unknown): void {
    const list = this.waiting.get(key);
    const at = list?.indexOf(message) ?? -1;
    if (list === undefined || at === -1) return;
    list.splice(at, 1);
    if (list.length === 0) this.waiting.delete(key);
  }
}

/** The kind, and the id of a request or response (`1` and `"1"` differ) or the method of a notification. */
function inboxKey(message: unknown): string {
  const f = classifyMessage(message);
  if (f.type === 'request' || f.type === 'response') return `${f.type} ${idKey(f.id)}`;
  return f.type === 'notification' ? `notification ${f.method}` : f.type;
}

/**
 * Whether two parsed JSON values are equal, members in any order (zod rebuilds objects in its
 * schema's order). With an explicit stack: a parsed message may nest deeper than the call stack.
 */
export function sameJson(a: unknown, b: unknown): boolean {
  const stack: Array<[unknown, unknown]> = [[a, b]];
  for (let pair = stack.pop(); pair !== undefined; pair = stack.pop()) {
    const [x, y] = pair;
    if (x === y) continue;
    if (x === null || y === null || typeof x !== 'object' || typeof y !== 'object') return false;
    if (Array.isArray(x) !== Array.isArray(y)) return false;
    if (Array.isArray(x)) {
      const ys = y as unknown[];
      if (x.length !== ys.length) return false;
      for (let i = 0; i < x.length; i++) stack.push([x[i], ys[i]]);
      continue;
    }
    const xo = x as Record<string, unknown>;
    const yo = y as Record<string, unknown>;
    const keys = Object.keys(xo);
    if (keys.length !== Object.keys(yo).length) return false;
    for (const k of keys) {
      if (!Object.prototype.hasOwnProperty.call(yo, k)) return false;
      stack.push([xo[k], yo[k]]);
    }
  }
  return true;
}
