import { describe, expect, it } from 'vitest';
import { buildStoryboard } from '../../src/capture/index.js';
import type { StoredEvent } from '../../src/core/index.js';
import { buildStoryboard as referenceStoryboard } from './storyboard-reference.js';

/**
 * The storyboard of a long session is built in time linear in its events: the viewer and the
 * video both build it, and a 3,000-call session took 3.3 s when each call scanned every event for
 * the reasoning before it. Work is counted (reads of the events' fields), never timed, and the
 * output is compared with the brute-force version it replaced.
 */

const SESSION = 'sess-linear';
const t0 = Date.parse('2026-11-23T10:00:00.000Z');

/**
 * A session of `calls` tool calls through every path the storyboard tells apart: reasoning
 * before some calls and not others (and twice before one), allow / deny / review, approvals
 * with a counted and an ignored decision, released and unreleased, screenshots before and
 * after, results that succeed, fail, are refused or are missing.
 */
function session(calls: number): StoredEvent[] {
  const events: Array<Record<string, unknown>> = [];
  const add = (e: Record<string, unknown>): string => {
    const seq = events.length;
    const id = `ev-${seq}`;
    events.push({ v: 1, id, stream: SESSION, seq, ts: new Date(t0 + seq * 1000).toISOString(), agent: { id: 'support-bot' }, outcome: 'success', ...e });
    return id;
  };
  add({ kind: 'session.start', data: { purpose: 'Refund damaged orders' } });
  for (let i = 0; i < calls; i++) {
    if (i % 3 !== 2) add({ kind: 'llm.call', data: { output: `Order ${i} arrived damaged. I will refund it. Then move on.` } });
    if (i % 7 === 0) add({ kind: 'llm.call', data: { output: { content: [{ text: `Second thought on ${i}.` }] } } });
    const call = add({ kind: 'tool.call', action: 'refund', data: { tool: 'refund', arguments: { customer_id: `C-${i}`, amount: i, ...(i % 5 === 0 ? { reason: `stated ${i}` } : {}) } } });
    const decision = (['allow', 'deny', 'review'] as const)[i % 3]!;
    add({ kind: 'policy.decision', parent: call, policy: { decision, rule: `rule-${i % 4}` }, data: { decision, rule: `rule-${i % 4}`, reason: `because ${i}` } });
    if (decision === 'review') {
      // The gateway records requests; now and then the agent's own, which no reader believes.
      const request = add({
        kind: 'approval.request',
        parent: call,
        outcome: 'pending',
        recorder: { kind: i % 5 === 4 ? 'sdk' : 'gateway' },
        data: { tool: 'refund', arguments: { amount: i }, arguments_digest: 'ab'.repeat(32) },
      });
      const d1 = add({ kind: 'approval.decision', parent: request, data: { request_id: request, decision: 'approved', approver: `alice-${i % 2}@corp`, reason: 'checked' } });
      if (i % 4 === 2) add({ kind: 'approval.decision', parent: request, data: { request_id: request, decision: 'denied', approver: 'mallory@corp' } });
      if (i % 8 === 2) add({ kind: 'error', data: { code: 'approval_forged', decision_id: d1 } });
      // A release the gateway recorded counts; one recorded by anything else is only a claim.
      if (i % 2 === 0)
        add({
          kind: 'policy.decision',
          parent: call,
          recorder: { kind: i % 4 === 0 ? 'gateway' : 'sdk' },
          policy: { decision: 'allow' },
          data: { decision: 'allow', approval: { request_id: request, decision_id: d1, approver: 'alice-0@corp' } },
        });
    }
    if (i % 2 === 0) add({ kind: 'capture', parent: call, data: { role: 'before' }, artifacts: [{ sha256: `${i}`.padStart(64, 'b'), mime: 'image/png', bytes: 1, role: 'before' }] });
    if (i % 11 !== 10) {
      const outcome = decision === 'deny' ? 'denied' : i % 13 === 0 ? 'error' : 'success';
      add({
        kind: 'tool.result',
        parent: call,
        outcome,
        data: i % 13 === 0 ? { is_error: true, error: { message: `boom ${i}` } } : { output: { content: [{ type: 'text', text: `{"refund_id":"R-${i}"}` }] } },
      });
    }
    if (i % 2 === 0) add({ kind: 'capture', parent: call, data: { role: 'after' }, artifacts: [{ sha256: `${i}`.padStart(64, 'a'), mime: 'image/png', bytes: 1, role: 'after' }] });
  }
  add({ kind: 'session.end', data: { reason: 'completed' } });
  return events as unknown as StoredEvent[];
}

/** The events behind proxies that count every field read: the work a build does, whatever the machine. */
function counted(events: readonly StoredEvent[]): { events: StoredEvent[]; reads: () => number } {
  let reads = 0;
  const handler: ProxyHandler<StoredEvent> = {
    get(target, key, receiver) {
      reads++;
      return Reflect.get(target, key, receiver) as unknown;
    },
  };
  return { events: events.map((e) => new Proxy(e, handler)), reads: () => reads };
}

describe('storyboard in linear time', () => {
  it('tells every step of a 200-call session exactly as the brute-force storyboard does, in any input order', () => {
    const events = session(200);
    const expected = referenceStoryboard(events);
    expect(expected.steps).toHaveLength(202);
    expect(buildStoryboard(events)).toEqual(expected);
    expect(buildStoryboard([...events].reverse())).toEqual(expected);
    // The paths above are all taken, so the agreement means something.
    const told = expected.steps.map((s) => `${s.narration} ${s.rows.map((r) => r.join(': ')).join(' ')}`).join('\n');
    for (const phrase of [
      'The agent reasoned',
      'with customer_id',
      'required human review',
      'approved it',
      'Witness ignored',
      'The call was not made',
      'The call failed',
      'No result was recorded',
      'before and after',
    ]) {
      expect(told).toContain(phrase);
    }
    expect(expected.steps.filter((s) => s.rows.some(([k]) => k === 'Why')).length).toBeLessThan(200);
  });

  it("builds a 3,000-call session's storyboard reading each event's fields a bounded number of times", () => {
    const small = counted(session(300));
    buildStoryboard(small.events);
    const large = counted(session(3000));
    const board = buildStoryboard(large.events);
    expect(board.steps).toHaveLength(3002);
    // Linear: ten times the calls, about ten times the reads (the brute-force build read each
    // event's fields once per call before it: ~100 times more for ten times the calls).
    expect(large.reads() / small.reads()).toBeLessThan(12);
    expect(large.reads() / large.events.length).toBeLessThan(200);
  });
});
