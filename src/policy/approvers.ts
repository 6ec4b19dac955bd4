import { WitnessError } from '../core/index.js';
import type { Approver, Policy, PolicyRule } from './types.js';

/**
 * Who may release a call held for review. The policy file lists approvers once, with their public
 * keys, and each review rule may narrow the list to some of them; the policy version (the file's
 * SHA-256) therefore covers who may approve what.
 */

/** The approvers who may release a call that `rule` (or, when undefined, the default) sent to review. */
export function approversFor(policy: Policy, rule: PolicyRule | undefined): readonly Approver[] {
  const ids = rule?.approvers;
  if (ids === undefined) return policy.approvers;
  return policy.approvers.filter((a) => ids.includes(a.id));
}

/**
 * A gateway enforcing a policy that can hold a call refuses to start when nobody could release
 * it: such a call would only ever time out. Shadow mode holds nothing, so it needs no approvers.
 * Throws `invalid_policy` naming the line of the first rule (or the default) that reviews.
 */
export function requireApprovers(policy: Policy): void {
  if (policy.mode !== 'enforce' || policy.approvers.length > 0) return;
  const index = policy.rules.findIndex((r) => r.effect === 'review');
  const fix = 'but the policy lists no approvers who could release them; add an approvers: list with their public keys (`witness approver init` makes one).';
  if (index >= 0) {
    const rule = policy.rules[index]!;
    throw new WitnessError('invalid_policy', `${policy.source} line ${rule.line}: rules[${index}] holds calls for review, ${fix}`, {
      details: { file: policy.source, line: rule.line, path: `rules[${index}]` },
    });
  }
  if (policy.default === 'review') {
    throw new WitnessError('invalid_policy', `${policy.source} line ${policy.defaultLine}: default is review, ${fix}`, { details: { file: policy.source, line: policy.defaultLine, path: 'default' } });
  }
}
