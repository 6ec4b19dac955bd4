import { describe, expect, it } from 'vitest';
import { Inbox, sameJson } from '../../src/gateway/inbox.js';

/**
 * The HTTP edge's inbox: the object parsed and screened at the edge is what the relay gets for a
 * message the SDK transport accepted, and never the object of another POST that the transport
 * refused, even when both carry the same id.
 */

describe('the HTTP edge inbox', () => {
  it('hands back the edge object whose content equals the accepted copy when two with the same id wait', () => {
    const inbox = new Inbox();
    const refused = { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'pay', arguments: { to: 'attacker' } } };
    const accepted = { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'pay', arguments: { to: 'alice' } } };
    const withdrawRefused = inbox.put(refused);
    const withdrawAccepted = inbox.put(accepted);
    // The transport's copy: the same content, members rebuilt in another order.
    const copy = { id: 1, params: { arguments: { to: 'alice' }, name: 'pay' }, method: 'tools/call', jsonrpc: '2.0' };
    expect(inbox.take(copy)).toBe(accepted);
    withdrawAccepted();
    withdrawRefused();
    expect(inbox.take(copy)).toBeUndefined();
  });

  it('hands back nothing when several wait under the key and none has the accepted content, and nothing once withdrawn', () => {
    const inbox = new Inbox();
    inbox.put({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 1 } });
    const withdraw = inbox.put({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 2 } });
    expect(inbox.take({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 3 } })).toBeUndefined();
    withdraw();
    // One left under the key: it is the only POST in flight that can have been accepted.
    expect(inbox.take({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 1 } })).toEqual({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 1 } });
    const one = { jsonrpc: '2.0', id: 'a', method: 'ping' };
    inbox.put(one)();
    expect(inbox.take(one)).toBeUndefined();
  });

  it('compares JSON values member by member in any order, arrays in order, "__proto__" members and deep nesting included', () => {
    expect(sameJson(JSON.parse('{"a":1,"__proto__":{"x":1}}'), JSON.parse('{"__proto__":{"x":1},"a":1}'))).toBe(true);
    expect(sameJson(JSON.parse('{"a":1,"__proto__":{"x":1}}'), JSON.parse('{"a":1,"__proto__":{"x":2}}'))).toBe(false);
    expect(sameJson({ a: [1, 2] }, { a: [2, 1] })).toBe(false);
    expect(sameJson({ a: 1 }, { a: 1, b: undefined })).toBe(false);
    expect(sameJson({ a: null }, { a: {} })).toBe(false);
    expect(sameJson({ a: '1' }, { a: 1 })).toBe(false);
    const deep = (n: number): string => '['.repeat(n) + ']'.repeat(n);
    expect(sameJson(JSON.parse(deep(100_000)), JSON.parse(deep(100_000)))).toBe(true);
  });
});
