import { describe, expect, it } from 'vitest';
import { canonicalize } from '../../src/core/index.js';
import { canonicalJson } from '../../src/integrations/record-call.js';

describe('the wrappers hash tool definitions over the same canonical JSON as core', () => {
  it('writes what core canonicalize writes for key order, numeric keys, unicode, numbers, undefined members and toJSON', () => {
    const cases: unknown[] = [
      { b: 1, a: [true, null, 'x'], c: { z: 1, y: 2 } },
      { '10': 'a', '2': 'b', '1': 'c', b: 'd' },
      { é: 1, e: 2, '\u{1F600}': 3, '\uFFFF': 4, '': 5 },
      { n: [0, -0, 1e21, 1e-7, 0.1 + 0.2, -1.5, 2 ** 53 - 1] },
      { s: 'line\nbreak "quoted" \u2028 \u0007', u: undefined, arr: [1, null] },
      { when: new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 6)) },
      [{ type: 'function', function: { name: 'get_order', parameters: { type: 'object', properties: { order_id: { type: 'string' } } } } }],
    ];
    for (const c of cases) expect(canonicalJson(c)).toBe(canonicalize(c));
  });
});
