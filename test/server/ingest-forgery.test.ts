import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildStoryboard } from '../../src/capture/index.js';
import { decideApproval, findApproval } from '../../src/approvals/index.js';
import { argumentsDigest, generateKey, newArgumentsSalt, parseSignerKey, type StoredEvent } from '../../src/core/index.js';
import { openWitness, systemWriter } from '../../src/recorder/index.js';
import { createKey } from '../../src/server/index.js';
import { buildSessionModel } from '../../src/server/views/index.js';
import { tempDir } from '../helpers/tmp.js';
import { serverFixture, type ServerFixture } from './fixture.js';

interface ErrorBody {
  error: { code: string; message: string; details?: { path?: string } };
}

/** A call, a release naming a decision, and the call's result: what a forged approval looks like. */
function forgedRelease(stream: string, recorder: 'sdk' | 'server' | 'gateway'): StoredEvent[] {
  const callId = randomUUID();
  const base = { v: 1, stream, agent: { id: 'bot' }, recorder: { kind: recorder }, prev: 'p', hash: 'h', salt: 's', payload_digest: 'd' };
  const ts = '2026-12-06T10:00:00.000Z';
  return [
    { ...base, id: randomUUID(), seq: 0, pos: 0, ts, kind: 'session.start', data: {} },
    { ...base, id: callId, seq: 1, pos: 1, ts, kind: 'tool.call', action: 'wire_transfer', data: { tool: 'wire_transfer', arguments: { amount: 1_000_000 } } },
    {
      ...base,
      id: randomUUID(),
      seq: 2,
      pos: 2,
      ts,
      parent: callId,
      kind: 'policy.decision',
      outcome: 'success',
      data: { decision: 'allow', reason: 'approved by Alice (CFO)', tool: 'wire_transfer', approval: { request_id: randomUUID(), decision_id: randomUUID(), approver: 'Alice (CFO)' } },
    },
    { ...base, id: randomUUID(), seq: 3, pos: 3, ts, parent: callId, kind: 'tool.result', outcome: 'success', data: { tool: 'wire_transfer', is_error: false, output: 'sent' } },
  ] as unknown as StoredEvent[];
}

describe('an agent key cannot plant what a person or the gateway records', () => {
  const dir = tempDir('witness-server-forgery-');
  let f: ServerFixture;
  beforeAll(async () => {
    f = await serverFixture(dir);
  });
  afterAll(async () => f.close());

  const post = (events: unknown[]) => f.call('POST', '/v1/events', { key: f.keys.agent, body: { events } });

  it('[R-INGEST-IDENTITY] a policy.decision from an agent key is refused, so it can neither release a call nor use up a grant', async () => {
    const res = await post([{ stream: `s-${randomUUID()}`, kind: 'policy.decision', data: { decision: 'allow', approval: { request_id: randomUUID(), decision_id: randomUUID() } } }]);
    const body = (await res.json()) as ErrorBody;
    expect(res.status).toBe(403);
    expect(body.error.code).toBe('forbidden');
    expect(body.error.details?.path).toBe('events[0].kind');
  });

  it('[R-INGEST-IDENTITY] policy, approvals and principal in an agent-key event are refused, naming the field', async () => {
    const fields: Array<[string, unknown]> = [
      ['policy', { decision: 'allow', approver: 'Alice (CFO)' }],
      ['approvals', [{ approver: 'Alice (CFO)', decision: 'approved', reason: 'verified by phone', ts: '2026-12-06T10:00:00.000Z' }]],
      ['principal', { id: 'ceo@corp.example', kind: 'human' }],
    ];
    for (const [field, value] of fields) {
      const stream = `s-${randomUUID()}`;
      const res = await post([{ stream, kind: 'note', [field]: value, data: { text: 'hello' } }]);
      const body = (await res.json()) as ErrorBody;
      expect(res.status, field).toBe(403);
      expect(body.error.details?.path, field).toBe(`events[0].${field}`);
      expect(await f.ledger.readStream(stream)).toEqual([]);
    }
  });

  it("[R-INGEST-IDENTITY] an agent-key event's time is the server's clock, not the time the body claims", async () => {
    const stream = `s-${randomUUID()}`;
    const before = new Date().toISOString();
    const res = await post([{ stream, kind: 'session.start', ts: '2019-01-01T00:00:00.000Z', data: {} }]);
    expect(res.status).toBe(201);
    const [e] = await f.ledger.readStream(stream);
    expect(e!.ts >= before).toBe(true);
    expect(e!.ts).toBe(e!.received_ts);
  });
});

describe('readers believe a release only from the gateway', () => {
  it('[R-VIDEO-APPROVER] the storyboard does not say a person approved a call on a release the gateway did not record', () => {
    for (const recorder of ['sdk', 'server'] as const) {
      const text = JSON.stringify(buildStoryboard(forgedRelease(`s-${randomUUID()}`, recorder)).steps);
      expect(text, recorder).not.toContain('Alice (CFO) approved it');
    }
    // The same events recorded by the gateway are a release it made (after a restart, say).
    expect(JSON.stringify(buildStoryboard(forgedRelease(`s-${randomUUID()}`, 'gateway')).steps)).toContain('Alice (CFO) approved it');
  });

  it('[R-VIDEO-APPROVER] the session view does not present a release the gateway did not record as an approval', () => {
    const shown = (recorder: 'sdk' | 'server' | 'gateway') => {
      const events = forgedRelease(`s-${randomUUID()}`, recorder);
      const step = buildSessionModel(events, { chrome: { title: 'x' } } as never).steps.find((s) => s.callId === events[1]!.id);
      return JSON.stringify(step);
    };
    for (const recorder of ['sdk', 'server'] as const) {
      expect(shown(recorder), recorder).not.toContain('approved by Alice (CFO)');
      expect(shown(recorder), recorder).toContain('not the Witness gateway');
    }
    expect(shown('gateway')).toContain('approved by Alice (CFO)');
  });
});

describe('a grant is used up only by the gateway', () => {
  const dir = tempDir('witness-server-grant-');
  let f: ServerFixture;
  beforeAll(async () => {
    f = await serverFixture(dir);
  });
  afterAll(async () => f.close());

  it('[R-GW-APPROVAL-BINDING] a release naming an approved decision that an SDK recorded leaves the request approved, not consumed', async () => {
    const store = `sqlite:${f.built.file}`;
    const alice = parseSignerKey(generateKey('alice@corp').signerKey);
    const w = await openWitness({ store });
    try {
      // The request as the gateway records it; the SDK's public path refuses approval.request and policy.decision.
      const s = await systemWriter(w, 'gateway').session({ agent: { id: 'bot' } });
      const salt = newArgumentsSalt();
      const args = { amount: 650 };
      const id = randomUUID();
      await s.record(
        'approval.request',
        {
          request_id: id,
          tool: 'billing.refund',
          arguments: args,
          arguments_salt: salt,
          arguments_digest: argumentsDigest(salt, args),
          approvers: [alice.verifierKey],
          policy_version: 'ab'.repeat(32),
          expires_at: new Date(Date.now() + 60_000).toISOString(),
        } as never,
        { id, outcome: 'pending' },
      );
      await w.flush();
      const d = await decideApproval(w, id, { decision: 'approved', signer: alice });
      // The release an agent's process appends past the SDK, stamped sdk, as a writer of the database could.
      await f.ledger.append([
        { stream: s.id, agent: { id: 'bot' }, recorder: { kind: 'sdk' }, kind: 'policy.decision', data: { decision: 'allow', approval: { request_id: id, decision_id: d.decisionId } } as never },
      ]);
      await w.flush();
      const [release] = (await f.ledger.query({ kind: 'policy.decision', limit: 1000 })).events.filter((e) => JSON.stringify(e.data).includes(d.decisionId));
      expect(release?.recorder?.kind).toBe('sdk');
      expect((await findApproval(f.ledger, id)).status).toBe('approved');
    } finally {
      await w.close();
    }
  });
});

describe('one session, one agent', () => {
  const dir = tempDir('witness-server-race-');
  let f: ServerFixture;
  beforeAll(async () => {
    f = await serverFixture(dir);
  });
  afterAll(async () => f.close());

  it('[R-INGEST-IDENTITY] two agent keys posting to one new session id at once: one writes, the other is refused, 10 times over', async () => {
    const other = await createKey(f.ledger, { role: 'agent', agent: 'evil-bot' }, { who: 'test', recorder: 'cli' });
    for (let i = 0; i < 10; i++) {
      const stream = `race-${randomUUID()}`;
      const [a, b] = await Promise.all([
        f.call('POST', '/v1/events', { key: f.keys.agent, body: { events: [{ stream, kind: 'session.start', data: {} }] } }),
        f.call('POST', '/v1/events', { key: other.key, body: { events: [{ stream, kind: 'note', data: { text: 'injected by evil-bot' } }] } }),
      ]);
      expect([a.status, b.status].sort()).toEqual([201, 403]);
      expect(new Set((await f.ledger.readStream(stream)).map((e) => e.agent.id)).size).toBe(1);
    }
  });
});

describe('errors name no server file', () => {
  const dir = tempDir('witness-server-paths-');
  let f: ServerFixture;
  beforeAll(async () => {
    f = await serverFixture(dir);
  });
  afterAll(async () => f.close());

  it('[R-ROLES] a refusal that the store words with the ledger’s location does not give an API client the file path', async () => {
    const res = await f.call('GET', `/v1/approvals/${randomUUID()}`, { key: f.keys.approver });
    const text = await res.text();
    expect(res.status).toBe(404);
    expect(text).not.toContain(f.built.file);
    expect(text).not.toContain(dir);
    expect(text).toContain('[path withheld]');
  });
});
