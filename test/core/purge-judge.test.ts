import { describe, expect, it } from 'vitest';
import { PurgeJudge, retentionPolicyLabel, type PurgedLeaf, type RuleFact } from '../../src/core/index.js';

const rule = (leaf: number, match: RuleFact['match'], period: string, duty = false): RuleFact => {
  const selector =
    match.kind !== undefined
      ? `kind=${match.kind}`
      : match.record_class !== undefined
        ? `record_class=${match.record_class}`
        : match.data_category !== undefined
          ? `data_category=${match.data_category}`
          : 'all';
  return { leaf, selector, match, period, duty, policy: retentionPolicyLabel(selector, period) };
};

const leaf = (pos: number, header: string, kind = 'tool.call'): PurgedLeaf => ({ pos, kind, stream: 's1', agent: 'a1', ts: '2026-01-01T00:00:00.000Z', header });

/** A header that counts how often it is searched: the judge reads it only when a rule needs a field from it. */
function countedHeader(text: string): { header: string; reads: () => number } {
  let n = 0;
  const h = {
    includes: (s: string) => {
      n++;
      return text.includes(s);
    },
    toString: () => text,
  };
  return { header: h as unknown as string, reads: () => n };
}

describe('PurgeJudge: a purged leaf judged by the rule of its record', () => {
  it('[R-RETENTION] a retention rule for every event, or for a kind, judges an erased leaf without reading its header', () => {
    for (const match of [{}, { kind: 'tool.call' }]) {
      const r = rule(5, match, '30d');
      const judge = new PurgeJudge({ records: [{ leaf: 100, policy: r.policy, sealed: 90, rule: 0 }], holds: [], rules: [r] });
      const h = countedHeader('{"record_class":"audit","data_categories":["health"]}');
      expect(judge.problem(100, leaf(10, h.header))).toBeUndefined();
      expect(h.reads()).toBe(0);
    }
  });

  it('[R-RETENTION] a rule for a record class or a data category erases only the leaves whose header names it', () => {
    const byClass = rule(5, { record_class: 'audit' }, '30d');
    const byCategory = rule(6, { data_category: 'health' }, '30d');
    const judge = new PurgeJudge({
      records: [
        { leaf: 100, policy: byClass.policy, sealed: 90, rule: 0 },
        { leaf: 101, policy: byCategory.policy, sealed: 90, rule: 1 },
      ],
      holds: [],
      rules: [byClass, byCategory],
    });
    expect(judge.problem(100, leaf(10, '{"record_class":"audit"}'))).toBeUndefined();
    expect(judge.problem(100, leaf(11, '{"record_class":"billing"}'))).toBe('the rule record_class=audit does not apply to leaf 11 (a tool.call)');
    expect(judge.problem(101, leaf(12, '{"data_categories":["contact","health"]}'))).toBeUndefined();
    expect(judge.problem(101, leaf(13, '{"data_categories":["contact"]}'))).toBe('the rule data_category=health does not apply to leaf 13 (a tool.call)');
  });

  it('[R-RETENTION] [R-ERASURE] a keeping duty for a data category binds an erasure of a leaf in that category, and only of one', () => {
    const duty = { ...rule(5, { data_category: 'health' }, '6y', true), preset: 'hipaa' as const };
    const judge = new PurgeJudge({
      records: [{ leaf: 100, policy: 'erasure:alice', sealed: 90, erasure: 'alice', ts: '2026-06-01T00:00:00.000Z', duties: [0] }],
      holds: [],
      rules: [duty],
    });
    expect(judge.problem(100, leaf(10, '{"subject":"alice","data_categories":["health"]}'))).toMatch(/^the keeping duty .* still bound leaf 10/);
    expect(judge.problem(100, leaf(11, '{"subject":"alice","data_categories":["contact"]}'))).toBeUndefined();
    expect(judge.problem(100, leaf(12, '{"subject":"bob","data_categories":["contact"]}'))).toBe('leaf 12 is not about subject alice (it names bob)');
  });
});
