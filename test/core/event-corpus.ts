/**
 * Event inputs for the tests that compare the write path's compiled checks with zod: one valid
 * event of every kind (and one with every header field), and a mutator that breaks them in the
 * ways callers and attackers do.
 */
import { EVENT_KINDS, type EventKind } from '../../src/core/index.js';
import { pick } from '../helpers/random.js';

const H = 'ab'.repeat(32);
const T = '2026-11-23T10:00:00.123Z';
const U = '0190a3b4-c5d6-7e8f-9a0b-1c2d3e4f5a6b';

export const DATA: Record<EventKind, Record<string, unknown>> = {
  'session.start': { clock: { source: 'system', synced: true, offset_ms: -1.5 }, purpose: 'refunds', labels: { channel: 'support' } },
  'session.end': { reason: 'completed', final_output: { text: 'done' }, event_count: 3, last_hash: H },
  'llm.call': {
    provider: 'anthropic',
    model: 'claude',
    parameters: { temperature: 0.2 },
    input: [{ role: 'user', content: 'hi' }],
    output: 'hello',
    tool_calls: [{ id: 't1', name: 'refund', arguments: { amount: 5 } }],
    usage: { input_tokens: 10, output_tokens: 2 },
    latency_ms: 120,
    system_prompt_sha256: H,
    data_sources: [{ id: 'kb', version: '3' }],
  },
  'tool.call': { tool: 'billing.refund', server: 'billing', arguments: { amount_cents: 650, currency: 'USD' }, jsonrpc_id: 7, requires_approval: false },
  'tool.result': { tool: 'billing.refund', output: { ok: true }, is_error: false, duration_ms: 12, error: { message: 'none', code: 3 } },
  'policy.decision': { decision: 'review', rule: 'refunds-over-500', mode: 'enforce', policy_version: H, arguments_digest: H, arguments_salt: H, approvers: ['alice'] },
  'approval.request': { request_id: 'r1', tool: 'refund', arguments: { a: 1 }, arguments_digest: H, approvers: ['alice'], expires_at: T },
  'approval.decision': { request_id: 'r1', decision: 'approved', approver: 'alice', arguments_digest: H, approver_sig: 'cd'.repeat(64), decided_at: T },
  capture: { role: 'before', url: 'http://localhost/', viewport: { width: 800, height: 600 }, text: 'page' },
  error: { message: 'boom', name: 'Error', code: 'E1', source: 'tool', retryable: true },
  note: { text: 'hello', level: 'info' },
  'config.change': { target: 'policy', description: 'tightened', before_digest: H, after_digest: H },
  review: { reviewer: 'bob', population_digest: H, population: { query: { kind: 'tool.call' }, count: 4 }, attestation: 'reviewed' },
  'human.override': { actor: 'bob', description: 'stopped it', target_event: U },
  'human.halt': { actor: 'bob', reason: 'runaway', agent: 'refund-bot' },
  'human.resume': { actor: 'bob', agent: 'refund-bot', reason: 'fixed', halt: U },
  'audit.access': { actor: 'carol', operation: 'export', scope: { stream: 's' }, count: 10 },
  alert: { severity: 'warning', message: 'slow', code: 'A1' },
  anomaly: { rule: 'new-tool', reason: 'refund-bot used tool delete_customer for the first time', agent: 'refund-bot', target_event: U },
  'key.rotated': { old_key: 'k1', new_key: 'k2' },
  'retention.purge': { policy: 'p', before: T, count: 0 },
  'hold.placed': { hold_id: 'h1', scope: { agent: 'a' }, reason: 'litigation', placed_by: 'legal' },
  'hold.released': { hold_id: 'h1', released_by: 'legal' },
};

/** Every header field a caller may set, filled in. */
export const FULL_HEADER: Record<string, unknown> = {
  id: U,
  ts: T,
  received_ts: T,
  agent: { id: 'support-bot', version: '1.4.2', credential: 'key-1' },
  user: 'customer-1',
  principal: { id: 'alice', kind: 'human' },
  delegation: { id: 'd1', issuer: 'idp', scopes: ['refund', 'read'], expires: T },
  subject: 'p-9',
  recorder: { id: 'r', kind: 'sdk', version: '0.1.0' },
  source: { host: 'h', process: '1' },
  env: 'prod',
  tenant: 't',
  parent: U,
  resource: 'billing',
  action: 'billing.refund',
  outcome: 'pending',
  policy: { decision: 'review', rule: 'r', version: H, reason_code: 'c', mode: 'enforce', approver: 'alice' },
  approvals: [{ approver: 'alice', role: 'lead', decision: 'approved', reason: 'ok', meaning: 'approved', args_digest: H, ts: T }],
  record_class: 'financial-record',
  data_categories: ['pii', 'payment'],
  artifacts: [{ sha256: H, mime: 'image/png', bytes: 3, role: 'before', name: 'shot' }],
};

export function validInputs(): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  for (const kind of EVENT_KINDS) {
    out.push({ agent: { id: 'a' }, kind, data: structuredClone(DATA[kind]) });
    out.push({ ...structuredClone(FULL_HEADER), kind, data: structuredClone(DATA[kind]) });
  }
  return out;
}

/** Values that break a field: wrong types, bounds, formats, surrogates, shapes. */
const HOSTILE: unknown[] = [
  undefined,
  null,
  '',
  'x',
  'x'.repeat(512),
  'x'.repeat(513),
  'x'.repeat(4097),
  '\ud800',
  'a\udc00b',
  '😀'.repeat(300),
  '😀'.repeat(2100),
  'é\u0000"\\\n',
  H,
  H.toUpperCase(),
  `${H}0`,
  T,
  `${T}\n`,
  '2026-11-23T10:00:00Z',
  U,
  U.toUpperCase(),
  0,
  -0,
  1.5,
  -1,
  2 ** 53,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  true,
  [],
  ['a'],
  [1],
  {},
  { id: 'x' },
  { extra: 1 },
  'tool.call',
  'success',
  'review',
  'sdk',
  'human',
  'approved',
  'enforce',
];

type Node = { parent: Record<string, unknown> | unknown[]; key: string | number };

function nodes(v: unknown, out: Node[] = []): Node[] {
  if (Array.isArray(v)) {
    v.forEach((x, i) => {
      out.push({ parent: v, key: i });
      nodes(x, out);
    });
  } else if (typeof v === 'object' && v !== null) {
    for (const [k, x] of Object.entries(v)) {
      out.push({ parent: v as Record<string, unknown>, key: k });
      nodes(x, out);
    }
  }
  return out;
}

/** A copy of `input` with one to three random edits: a value replaced, a member removed or added. */
export function mutate(r: () => number, input: Record<string, unknown>): Record<string, unknown> {
  const copy = structuredClone(input);
  const edits = 1 + Math.floor(r() * 3);
  for (let e = 0; e < edits; e++) {
    const all = nodes(copy);
    if (all.length === 0) break;
    const n = pick(r, all);
    const roll = r();
    if (roll < 0.6) {
      (n.parent as Record<string | number, unknown>)[n.key] = structuredClone(pick(r, HOSTILE));
    } else if (roll < 0.75 && !Array.isArray(n.parent)) {
      delete n.parent[n.key as string];
    } else {
      const target = pick(
        r,
        [copy, ...all.map((x) => (x.parent as Record<string, unknown>)[x.key as string])].filter((x) => typeof x === 'object' && x !== null && !Array.isArray(x)),
      ) as Record<string, unknown>;
      const name = pick(r, ['extra', '__proto__', 'id', 'kind', 'data', 'version', 'toString', '0']);
      Object.defineProperty(target, name, { value: structuredClone(pick(r, HOSTILE)), enumerable: true, writable: true, configurable: true });
    }
  }
  return copy;
}
