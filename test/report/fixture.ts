import { randomUUID } from 'node:crypto';
import { PNG } from 'pngjs';
import { openLedger, type AppendRequest, type Ledger } from '../../src/store/index.js';
import { tempDb } from '../helpers/tmp.js';

/**
 * A demo-like ledger for the report, written through the Ledger API with fixed times:
 *
 *   refund session   support-bot 1.4.2: llm.call (reasoning with a <script>), billing.refund held
 *                    for review, approved by alice 90 s later, before/after screenshots (magenta
 *                    box before, cyan box after), result, session.end
 *   ops session      ops-bot: iam.set_role denied by policy, an error whose received_ts is 5 min
 *                    after its ts (clock skew), a config.change, session.end
 *   witness.audit-access   an auditor's query
 *
 * No override, halt or review is recorded: those populations are empty (gap rows).
 */
export const MAGENTA = [255, 0, 255] as const;
export const CYAN = [0, 255, 255] as const;

export function boxPng(colour: readonly [number, number, number], w = 640, h = 400): Buffer {
  const png = new PNG({ width: w, height: h });
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const inBox = x >= w / 4 && x < (3 * w) / 4 && y >= h / 4 && y < (3 * h) / 4;
      const i = (y * w + x) * 4;
      png.data[i] = inBox ? colour[0] : 255;
      png.data[i + 1] = inBox ? colour[1] : 255;
      png.data[i + 2] = inBox ? colour[2] : 255;
      png.data[i + 3] = 255;
    }
  }
  return PNG.sync.write(png);
}

export const SCRIPT_TEXT = '<script>alert("pwned")</script>';

export interface ReportLedger {
  file: string;
  store: string;
  refund: string;
  ops: string;
  callId: string;
  shots: { before: string; after: string };
}

const t = (s: number) => new Date(Date.UTC(2026, 10, 23, 10, 0, 0) + s * 1000).toISOString();
const HEX = (c: string) => c.repeat(64);

export async function buildReportLedger(dir: string): Promise<ReportLedger> {
  const file = tempDb(dir);
  const store = `sqlite:${file}`;
  const ledger: Ledger = await openLedger(store, { name: 'report-test' });
  try {
    const before = await ledger.putArtifact(boxPng(MAGENTA), 'image/png', 'before');
    const after = await ledger.putArtifact(boxPng(CYAN), 'image/png', 'after');
    const refund = `refund-${randomUUID()}`;
    const ops = `ops-${randomUUID()}`;
    const support = { id: 'support-bot', version: '1.4.2' };
    const opsBot = { id: 'ops-bot' };
    const callId = randomUUID();
    const requestId = randomUUID();
    const denied = randomUUID();
    const review = { decision: 'review' as const, rule: 'refunds-over-500' };
    const batch: AppendRequest[] = [
      { stream: refund, agent: support, ts: t(0), kind: 'session.start', data: { purpose: 'refund a duplicate charge' } },
      { stream: ops, agent: opsBot, ts: t(1), kind: 'session.start', data: {} },
      {
        stream: refund,
        agent: support,
        ts: t(2),
        kind: 'llm.call',
        data: { model: 'claude-sonnet', input: [{ role: 'user', content: 'I was charged twice' }], output: `The customer was charged twice; I will refund order A-1042. ${SCRIPT_TEXT}` },
      },
      {
        stream: refund,
        agent: support,
        ts: t(3),
        id: callId,
        kind: 'tool.call',
        resource: 'billing',
        action: 'refund',
        outcome: 'pending',
        data: { tool: 'billing.refund', arguments: { order: 'A-1042', amount: 750, note: SCRIPT_TEXT } },
      },
      { stream: refund, agent: support, ts: t(3), parent: callId, kind: 'policy.decision', policy: review, outcome: 'pending', data: { decision: 'review', rule: 'refunds-over-500' } },
      {
        stream: refund,
        agent: support,
        ts: t(4),
        parent: callId,
        kind: 'capture',
        artifacts: [before],
        data: { role: 'before', url: 'http://127.0.0.1/billing/A-1042', title: 'Order A-1042', viewport: { width: 640, height: 400 } },
      },
      {
        stream: refund,
        agent: support,
        ts: t(5),
        id: requestId,
        parent: callId,
        kind: 'approval.request',
        // As the writers stamp them: the gateway holds the call, alice decides through the CLI.
        recorder: { kind: 'gateway', version: '0.1.0' },
        policy: review,
        outcome: 'pending',
        data: { request_id: requestId, arguments_digest: HEX('a'), rule: 'refunds-over-500' },
      },
      { stream: ops, agent: opsBot, ts: t(10), id: denied, kind: 'tool.call', resource: 'iam', action: 'set_role', data: { tool: 'iam.set_role', arguments: { user_id: 'u-17', role: 'admin' } } },
      {
        stream: ops,
        agent: opsBot,
        ts: t(10),
        parent: denied,
        kind: 'policy.decision',
        outcome: 'denied',
        policy: { decision: 'deny', rule: 'no-admin-grants' },
        data: { decision: 'deny', rule: 'no-admin-grants' },
      },
      { stream: ops, agent: opsBot, ts: t(11), received_ts: t(311), kind: 'error', data: { message: 'upstream timed out', source: 'tool' } },
      {
        stream: ops,
        agent: opsBot,
        ts: t(12),
        kind: 'config.change',
        principal: { id: 'carol@corp', kind: 'human' },
        data: { target: 'policy', description: 'raised the refund review threshold to 500', approved_by: 'dave@corp' },
      },
      {
        stream: refund,
        agent: support,
        ts: t(95),
        parent: requestId,
        kind: 'approval.decision',
        recorder: { kind: 'cli', version: '0.1.0' },
        outcome: 'success',
        principal: { id: 'alice@corp', kind: 'human' },
        data: { request_id: requestId, decision: 'approved', approver: 'alice@corp', arguments_digest: HEX('a'), reason: 'duplicate charge confirmed' },
      },
      {
        stream: refund,
        agent: support,
        ts: t(96),
        parent: callId,
        kind: 'capture',
        artifacts: [after],
        data: { role: 'after', url: 'http://127.0.0.1/billing/A-1042', title: 'Order A-1042 refunded', viewport: { width: 640, height: 400 } },
      },
      {
        stream: refund,
        agent: support,
        ts: t(96),
        parent: callId,
        kind: 'tool.result',
        outcome: 'success',
        data: { tool: 'billing.refund', is_error: false, output: { refund_id: 'R-1' }, duration_ms: 120 },
      },
      { stream: refund, agent: support, ts: t(97), kind: 'session.end', data: { reason: 'completed', final_output: 'Refunded.' } },
      { stream: ops, agent: opsBot, ts: t(98), kind: 'session.end', data: { reason: 'completed' } },
      {
        stream: 'witness.audit-access',
        agent: { id: 'witness-server' },
        ts: t(99),
        kind: 'audit.access',
        principal: { id: 'amy@audit', kind: 'human' },
        resource: refund,
        action: 'query',
        outcome: 'success',
        data: { actor: 'amy@audit', operation: 'query' },
      },
    ];
    for (const e of batch) await ledger.append([e]);
    await ledger.seal();
    return { file, store, refund, ops, callId, shots: { before: before.sha256, after: after.sha256 } };
  } finally {
    await ledger.close();
  }
}
