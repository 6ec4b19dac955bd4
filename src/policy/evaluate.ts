import { approversFor } from './approvers.js';
import { conditionsOn } from './conditions.js';
import { matchAny } from './glob.js';
import type { CallContext, Effect, Evaluation, Policy, PolicyRule } from './types.js';

/**
 * Deciding a call. Precedence: among all rules that match the call, deny wins over review, and
 * review wins over allow; the deciding rule is the first (in file order) with the winning effect.
 * When no rule matches, the policy's default applies. File order never changes the decision.
 *
 * A condition that cannot be decided (an argument such as "0x3e8" or [900] ordered against a
 * number, a key spelled "Amount" for args.amount, an array where a string test or `in` expects one
 * value; see conditions.ts) fails closed: a deny or review rule applies, an allow rule does not.
 * The upstream server may read such a value as one the rule forbids, so skipping the rule would
 * let the call through unchecked. The decision's reason then says which test was undecided.
 *
 * Evaluation is pure and never throws, whatever the arguments hold.
 */

const RANK: Record<Effect, number> = { allow: 0, review: 1, deny: 2 };

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

function matchesTarget(rule: PolicyRule, agent: string, server: string, tool: string): boolean {
  return matchAny(rule.match.agent, agent) && matchAny(rule.match.server, server) && matchAny(rule.match.tool, tool);
}

export function evaluate(policy: Policy, call: CallContext): Evaluation {
  const agent = str(call.agent);
  const server = str(call.server);
  const tool = str(call.tool);
  const args = call.args;
  const holds = conditionsOn(args);
  let winner: PolicyRule | undefined;
  let winnerUndecided: string | undefined;
  const matched: string[] = [];
  for (const rule of policy.rules) {
    if (!matchesTarget(rule, agent, server, tool)) continue;
    const result = rule.condition === undefined ? { holds: true } : holds(rule.condition);
    if (result.holds === false) continue;
    if (result.holds === 'undecided' && rule.effect === 'allow') continue;
    matched.push(rule.id);
    if (winner === undefined || RANK[rule.effect] > RANK[winner.effect]) {
      winner = rule;
      winnerUndecided = 'why' in result ? result.why : undefined;
    }
  }
  const decision = winner?.effect ?? policy.default;
  const enforced = policy.mode === 'enforce';
  const reason = [winner?.reason, winnerUndecided === undefined ? undefined : `This rule applied because ${winnerUndecided}.`].filter((x) => x !== undefined).join(' ');
  return {
    decision,
    ...(winner !== undefined ? { rule: winner.id } : {}),
    ...(reason !== '' ? { reason } : {}),
    mode: policy.mode,
    enforced,
    ...(enforced ? {} : { wouldBe: decision }),
    matched,
    policyVersion: policy.sha256,
    // Omitted when none are listed (only a policy in shadow mode, or one not yet used by a gateway, can be so): nobody may release.
    ...(decision === 'review' && policy.approvers.length > 0 ? { approvers: approversFor(policy, winner) } : {}),
  };
}

/**
 * The tools an agent is shown by `tools/list`. A tool is hidden only when a rule with `hide: true`
 * (which validation allows only on a deny rule without `when`) matches the agent, the server and
 * the tool: an agent is never shown a tool it may never call. In shadow mode nothing is hidden,
 * since shadow mode changes nothing the agent sees. Accepts names or objects with a `name`.
 */
export function visibleTools<T extends string | { readonly name: string }>(policy: Policy, agent: string, server: string | undefined, tools: readonly T[]): T[] {
  if (policy.mode !== 'enforce') return [...tools];
  const hiding = policy.rules.filter((r) => r.hide && r.effect === 'deny' && r.condition === undefined);
  if (hiding.length === 0) return [...tools];
  const a = str(agent);
  const s = str(server);
  return tools.filter((t) => {
    const name = str(typeof t === 'string' ? t : (t as { name?: unknown } | null)?.name);
    return !hiding.some((r) => matchesTarget(r, a, s, name));
  });
}
