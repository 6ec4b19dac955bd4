import { describe, expect, it } from 'vitest';
import { recordedMethods, screenClientMessage } from '../../src/gateway/jsonrpc.js';

/**
 * The screening every client message goes through before the relay handles it, on the corner
 * cases the end-to-end tests (smuggling.test.ts) do not reach: what must pass untouched, and
 * ambiguities that only some readers see.
 */

const RECORDED = recordedMethods(false);
const screen = (text: string) => screenClientMessage(text, JSON.parse(text), RECORDED);

describe('screening a client message', () => {
  it('passes well-formed calls whose strings hold colons, quotes and backslashes, and a __proto__ argument, counting members exactly [R-GW-NO-SMUGGLE]', () => {
    for (const text of [
      '{"jsonrpc":"2.0","id":"a:b","method":"tools/call","params":{"name":"echo","arguments":{"k:\\"x\\":":"v\\\\","t":"\\\\\\":","n":{"m":":"},"__proto__":{"admin":true}}}}',
      '{"jsonrpc":"2.0","id":0,"method":"tools/call","params":{"name":"get-tiny-image"}}',
      '{"jsonrpc":"2.0","id":-9007199254740991,"method":"resources/read","params":{"uri":"file:///tmp/a b","_meta":{"progressToken":"x"}}}',
      '{"jsonrpc":"2.0","id":"p","method":"prompts/get","params":{"name":"simple","arguments":{"Topic":"refunds","topic":"x"}}}'.replace(',"topic":"x"', ''),
      '{ "jsonrpc" : "2.0" , "id" : 3 , "method" : "tools/call" , "params" : { "name" : "x" , "arguments" : { "amount" : 1e300 } } }',
    ]) {
      expect(screen(text), text).toBeUndefined();
    }
  });

  it('lets unknown and unrecorded methods through as they are, odd ids included, but not a list method that is recorded when it is misspelled [R-GW-NO-SMUGGLE]', () => {
    expect(screen('{"jsonrpc":"2.0","id":null,"method":"ping"}')).toBeUndefined();
    expect(screen('{"jsonrpc":"1.0","id":1.5,"method":"vendor/thing","params":[1,2]}')).toBeUndefined();
    expect(screen('{"jsonrpc":"2.0","id":2,"method":"Tools/List"}')).toBeUndefined();
    expect(screenClientMessage('{"jsonrpc":"2.0","id":2,"method":"Tools/List"}', { jsonrpc: '2.0', id: 2, method: 'Tools/List' }, recordedMethods(true))).toMatchObject({
      code: 'invalid_request',
      answerId: 2,
    });
    expect(screen('[1]')).toBeUndefined();
    expect(screen('42')).toBeUndefined();
  });

  it('refuses keys that are equal after Unicode compatibility folding (the Kelvin sign is K) or that differ by an invisible character [R-GW-NO-SMUGGLE]', () => {
    const kelvin = screen('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"lin\\u212a":"a","link":"b"}}}');
    expect(kelvin).toMatchObject({ code: 'ambiguous_keys', answerId: 1, rpcCode: -32600 });
    expect(kelvin!.problem).toContain('params.arguments');
    expect(kelvin!.problem).toContain('"lin\\u212a"');
    const hidden = screen('{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":1},"para\\u200bms":{"name":"wire"}}');
    expect(hidden).toMatchObject({ code: 'ambiguous_keys' });
    expect(screen('{"jsonrpc":"2.0","id":1,"ｍｅｔｈｏｄ":"tools/call","params":{"name":"wire"}}')).toMatchObject({ code: 'invalid_request', answerId: 1 });
  });

  it('drops rather than answers a response or notification it refuses, and names a repeated key [R-GW-NO-SMUGGLE]', () => {
    expect(screen('{"jsonrpc":"2.0","id":4,"result":{"a":1,"a":2}}')).toMatchObject({ code: 'ambiguous_keys', answerId: undefined, notification: false });
    expect(screen('{"jsonrpc":"2.0","method":"notifications/progress","params":{"p":1,"p":2}}')).toMatchObject({ code: 'ambiguous_keys', answerId: undefined, notification: true });
    expect(screen('{"jsonrpc":"2.0","id":4,"method":"ping","id":5}')!.problem).toMatch(/^it gives the key "id" twice in one object/);
  });

  it('walks a message nested 100,000 levels deep without overflowing the stack, and finds a lone surrogate in it [R-GW-NO-SMUGGLE]', () => {
    const depth = 100_000;
    const deep = (leaf: string) => `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"a":${'['.repeat(depth)}${leaf}${']'.repeat(depth)}}}}`;
    expect(screen(deep('1'))).toBeUndefined();
    const bad = screen(deep('"\\ud800"'));
    expect(bad).toMatchObject({ code: 'invalid_params', answerId: 1 });
    expect(bad!.problem).toMatch(/^its params\.arguments\.a\[0\]\[0\].*contains a lone surrogate/);
  });
});
