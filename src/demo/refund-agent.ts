import { sha256Hex, canonicalize } from '../core/index.js';
import type { Session } from '../recorder/index.js';

/**
 * A scripted refund agent: deterministic, no API key. It does what a real support agent does —
 * reasons, looks the customer up, hits a refund over the review threshold, waits for a named
 * approver, meets a payment-gateway timeout, retries, notifies the customer and reports back —
 * and records every step through the public SDK, exactly as an integrating team would.
 */

export const DEMO_POLICY = `# refunds over $500 need a human
version: 1
default: allow
rules:
  - id: refunds-over-500
    match: { tool: billing.refund }
    when: "args.amount > 500"
    effect: review
    reason: Refunds over $500 need a billing supervisor.
`;

const MODEL = 'claude-sonnet-4-5';
const SYSTEM_PROMPT = 'You are a support agent for Acme. Refund duplicate charges; refunds over $500 need approval.';

interface Customer {
  id: string;
  name: string;
  orders: Array<{ id: string; amount: number; charges: number }>;
}

/** A tiny in-memory back office standing in for the CRM and payment systems. */
class BackOffice {
  private refundAttempts = 0;
  readonly customer: Customer = { id: 'customer-12345', name: 'J. Doe', orders: [{ id: 'A-1042', amount: 650, charges: 2 }] };

  getCustomer(id: string): Customer {
    if (id !== this.customer.id) throw new Error(`no customer ${id}`);
    return this.customer;
  }

  refund(orderId: string, amount: number): { refund_id: string; status: string; amount: number; order_id: string } {
    this.refundAttempts++;
    if (this.refundAttempts === 1) {
      throw Object.assign(new Error('payment gateway timed out after 5000 ms'), { code: 'ETIMEDOUT' });
    }
    return { refund_id: 'R-77310', status: 'succeeded', amount, order_id: orderId };
  }
}

export interface DemoRunResult {
  sessionId: string;
}

export async function runRefundAgent(session: Session, approver = 'alice@corp'): Promise<DemoRunResult> {
  const office = new BackOffice();
  const user = 'I was charged twice for order A-1042 ($650). Please refund the duplicate.';
  const messages: unknown[] = [{ role: 'user', content: user }];

  await session.llmCall({
    model: MODEL,
    provider: 'scripted',
    responseModel: `${MODEL}-20250929`,
    systemPrompt: SYSTEM_PROMPT,
    input: messages,
    output: 'The customer reports a duplicate charge. I will look up the customer and the order first.',
    toolCalls: [{ id: 'call_1', name: 'crm.get_customer', arguments: { customer_id: 'customer-12345' } }],
    usage: { input_tokens: 412, output_tokens: 38 },
    latencyMs: 820,
    parameters: { temperature: 0 },
    stopReason: 'tool_use',
  });

  const customer = await session.tool('crm.get_customer', { customer_id: 'customer-12345' }, () => office.getCustomer('customer-12345'), {
    server: 'crm',
    subject: 'customer-12345',
  });

  const order = customer.orders[0]!;
  const args = { order_id: order.id, amount: order.amount, reason: 'duplicate charge' };
  await session.llmCall({
    model: MODEL,
    provider: 'scripted',
    responseModel: `${MODEL}-20250929`,
    systemPrompt: SYSTEM_PROMPT,
    input: [...messages, { role: 'tool', name: 'crm.get_customer', content: customer }],
    output: `Order ${order.id} was charged ${order.charges} times for $${order.amount}. I will refund one charge of $${order.amount}.`,
    toolCalls: [{ id: 'call_2', name: 'billing.refund', arguments: args }],
    usage: { input_tokens: 655, output_tokens: 51 },
    latencyMs: 940,
    stopReason: 'tool_use',
  });

  // Policy and approval are recorded the way the gateway will record them (issue: MCP gateway).
  const policyVersion = sha256Hex(DEMO_POLICY);
  const argsDigest = sha256Hex(canonicalize(args));
  await session.record(
    'policy.decision',
    { decision: 'review', rule: 'refunds-over-500', mode: 'enforce', policy_version: policyVersion, tool: 'billing.refund', arguments_digest: argsDigest, reason: 'amount 650 > 500' },
    { resource: 'billing', action: 'billing.refund', outcome: 'pending', policy: { decision: 'review', rule: 'refunds-over-500', version: policyVersion } },
  );
  const requestId = 'apr-0001';
  await session.record(
    'approval.request',
    { request_id: requestId, tool: 'billing.refund', arguments: args, arguments_digest: argsDigest, rule: 'refunds-over-500', reason: 'Refunds over $500 need a billing supervisor' },
    { resource: 'billing', action: 'billing.refund', outcome: 'pending' },
  );
  const approvedAt = new Date().toISOString();
  await session.record(
    'approval.decision',
    {
      request_id: requestId,
      decision: 'approved',
      approver,
      role: 'billing-supervisor',
      reason: 'Duplicate charge confirmed in the payment processor',
      meaning: 'reviewed and approved this refund',
      arguments_digest: argsDigest,
    },
    { resource: 'billing', action: 'billing.refund', outcome: 'success' },
  );
  const approved = {
    resource: 'billing',
    action: 'billing.refund',
    subject: 'customer-12345',
    record_class: 'financial-record',
    policy: { decision: 'review' as const, rule: 'refunds-over-500', version: policyVersion, approver },
    approvals: [{ approver, role: 'billing-supervisor', decision: 'approved' as const, meaning: 'reviewed and approved this refund', args_digest: argsDigest, ts: approvedAt }],
    server: 'billing',
    requiresApproval: true,
  };

  let refund: ReturnType<BackOffice['refund']>;
  try {
    refund = await session.tool('billing.refund', args, () => office.refund(order.id, order.amount), approved);
  } catch (e) {
    await session.error(e, { retryable: true, resource: 'billing', action: 'billing.refund' });
    await session.note('Payment gateway timed out; retrying the approved refund once with the same arguments.');
    refund = await session.tool('billing.refund', args, () => office.refund(order.id, order.amount), approved);
  }

  // The notification call carries a credential by mistake: it is redacted before it is written.
  await session.tool(
    'notify.email',
    { to: 'customer-12345', template: 'refund-issued', headers: { Authorization: 'Bearer sk-live-4f9a8b7c6d5e4f3a2b1c0d9e' } },
    () => ({ delivered: true, message_id: 'msg-5521' }),
    { server: 'notify', subject: 'customer-12345' },
  );

  const final = `Your duplicate charge on order ${order.id} has been refunded: $${refund.amount} (refund ${refund.refund_id}).`;
  await session.llmCall({
    model: MODEL,
    provider: 'scripted',
    systemPrompt: SYSTEM_PROMPT,
    input: [...messages, { role: 'tool', name: 'billing.refund', content: refund }],
    output: final,
    usage: { input_tokens: 802, output_tokens: 29 },
    latencyMs: 610,
    stopReason: 'end_turn',
  });
  await session.end({ reason: 'completed', finalOutput: final });
  return { sessionId: session.id };
}
