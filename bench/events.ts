/**
 * Deterministic event inputs of realistic shape with ~300-byte payloads (canonical JSON of `data`).
 * The same generator feeds Witness and every baseline, so all sides write the same rows.
 */
import type { AppendRequest } from '../src/store/index.js';
import { hexOf, pick, randInt, rng } from './util.js';

const REASONS = [
  'Customer reported a duplicate charge on the March invoice; refund approved under the standard policy.',
  'Order arrived damaged according to the photo in the ticket; full refund per the returns policy, no restock fee.',
  'Subscription was cancelled within the 14-day window; prorated refund of the unused period as required by law.',
  'Shipping took longer than the guaranteed delivery date; refund of the express shipping fee only, goods kept.',
];

const NOTES = [
  'Checked the payment history and the previous refunds for this customer before calling the tool.',
  'The amount is below the auto-approval threshold, so no human review was requested for this step.',
  'Customer asked for the refund to go back to the original card rather than as store credit.',
];

/** A UUID-shaped id (v7 layout) drawn from the generator, so runs are reproducible. */
export function fakeUuid(r: () => number): string {
  return `${hexOf(r, 8)}-${hexOf(r, 4)}-7${hexOf(r, 3)}-${'89ab'[Math.floor(r() * 4)]}${hexOf(r, 3)}-${hexOf(r, 12)}`;
}

/** The `data` of a tool.call: ~300 bytes once canonicalised. */
export function toolCallData(r: () => number): { tool: string; arguments: Record<string, unknown> } {
  return {
    tool: 'billing.refund',
    arguments: {
      customer_id: `cus_${hexOf(r, 14)}`,
      order_id: `ord_${hexOf(r, 12)}`,
      amount_cents: randInt(r, 100, 500_000),
      currency: 'USD',
      reason: pick(r, REASONS),
      idempotency_key: hexOf(r, 20),
      ticket: `T-${randInt(r, 100_000, 999_999)}`,
    },
  };
}

/** `count` tool.call inputs spread round-robin over `streams` sessions of 100 agents (no ts: stamped at prepare, as in production). */
export function toolCallInputs(count: number, streams: number, seed: number): AppendRequest[] {
  const r = rng(seed);
  const streamIds = Array.from({ length: streams }, () => fakeUuid(r));
  const out: AppendRequest[] = [];
  for (let i = 0; i < count; i++) {
    const s = i % streams;
    out.push({
      stream: streamIds[s]!,
      agent: { id: `agent-${s % 100}` },
      kind: 'tool.call',
      resource: 'billing',
      action: 'refund',
      outcome: 'success',
      data: toolCallData(r),
    });
  }
  return out;
}

// ---------------------------------------------------------------- the large ledger's timeline

export const MONTH_START = Date.UTC(2026, 0, 1);
export const MONTH_MS = 31 * 24 * 3600 * 1000;

const TOOLS = ['billing.refund', 'billing.invoice', 'crm.lookup', 'crm.update', 'notify.email', 'kb.search'];

interface Active {
  stream: string;
  agent: string;
  left: number;
  step: number;
}

/**
 * A month of agent activity: `total` events, ts rising evenly from MONTH_START to the end of the
 * month, ~16 sessions interleaved at any moment, each 20–80 events long (session.start, then
 * llm.call → tool.call → tool.result cycles, then session.end), each run by one of `agents` agents.
 */
export class Timeline {
  private readonly r: () => number;
  private readonly slots: Array<Active | undefined>;
  private i = 0;
  sessions = 0;

  constructor(
    private readonly total: number,
    private readonly agents: number,
    seed: number,
    concurrent = 16,
  ) {
    this.r = rng(seed);
    this.slots = new Array<Active | undefined>(concurrent).fill(undefined);
  }

  get produced(): number {
    return this.i;
  }

  next(): AppendRequest {
    const r = this.r;
    const ts = new Date(MONTH_START + Math.floor((this.i * MONTH_MS) / this.total)).toISOString();
    this.i++;
    const slot = Math.floor(r() * this.slots.length);
    let a = this.slots[slot];
    if (a === undefined) {
      a = { stream: fakeUuid(r), agent: `agent-${Math.floor(r() * this.agents)}`, left: randInt(r, 18, 79), step: 0 };
      this.slots[slot] = a;
      this.sessions++;
      return {
        stream: a.stream,
        ts,
        agent: { id: a.agent, version: '1.4.2' },
        kind: 'session.start',
        data: { clock: { source: 'system' }, purpose: pick(r, REASONS), labels: { channel: 'support', region: 'eu-west-1' } },
      };
    }
    if (a.left === 0) {
      this.slots[slot] = undefined;
      return {
        stream: a.stream,
        ts,
        agent: { id: a.agent, version: '1.4.2' },
        kind: 'session.end',
        data: { reason: 'completed', final_output: pick(r, NOTES) },
      };
    }
    a.left--;
    const phase = a.step++ % 3;
    const tool = pick(r, TOOLS);
    const [resource, action] = tool.split('.') as [string, string];
    const base = { stream: a.stream, ts, agent: { id: a.agent, version: '1.4.2' } };
    if (phase === 0) {
      return {
        ...base,
        kind: 'llm.call',
        data: {
          provider: 'anthropic',
          model: 'claude-sonnet-4-5',
          input: [{ role: 'user', content: pick(r, REASONS) }],
          output: pick(r, NOTES),
          usage: { input_tokens: randInt(r, 200, 4000), output_tokens: randInt(r, 20, 800) },
          latency_ms: randInt(r, 300, 9000),
        },
      };
    }
    if (phase === 1) {
      return { ...base, kind: 'tool.call', resource, action, outcome: 'pending', data: { ...toolCallData(r), tool } };
    }
    return {
      ...base,
      kind: 'tool.result',
      resource,
      action,
      outcome: 'success',
      data: {
        tool,
        output: { id: `re_${hexOf(r, 16)}`, status: 'succeeded', amount_cents: randInt(r, 100, 500_000), message: pick(r, NOTES) },
        is_error: false,
        duration_ms: randInt(r, 5, 2000),
      },
    };
  }
}
