import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyLedger } from '../../src/store/index.js';
import { tempDir } from '../helpers/tmp.js';
import { AGENT_ID, serverFixture, type ServerFixture } from './fixture.js';

interface Receipt {
  id: string;
  stream: string;
  seq: number;
  pos: number;
  hash: string;
}

describe('POST /v1/events', () => {
  const dir = tempDir('witness-server-ingest-');
  let f: ServerFixture;
  beforeAll(async () => {
    f = await serverFixture(dir);
  });
  afterAll(async () => f.close());

  const post = (body: unknown, key = f.keys.agent) => f.call('POST', '/v1/events', { key, body });

  it("[R-INGEST-IDENTITY] an event whose body names another agent, credential and recorder is stored under the key's agent and key id, by the server", async () => {
    const stream = `s-${randomUUID()}`;
    const res = await post({
      events: [
        { stream, kind: 'session.start', agent: { id: 'billing-bot', version: '2.0.1', credential: 'stolen' }, recorder: { kind: 'sdk' }, data: {} },
        { stream, kind: 'tool.call', agent: { id: 'root' }, resource: 'billing', action: 'refund', data: { tool: 'refund', arguments: { amount: 650 } } },
      ],
    });
    expect(res.status).toBe(201);
    const { receipts } = (await res.json()) as { receipts: Receipt[] };
    expect(receipts.map((r) => [r.stream, r.seq])).toEqual([
      [stream, 0],
      [stream, 1],
    ]);
    const stored = await f.ledger.readStream(stream);
    expect(stored.map((e) => e.agent)).toEqual([
      { id: AGENT_ID, version: '2.0.1', credential: f.ids.agent },
      { id: AGENT_ID, credential: f.ids.agent },
    ]);
    expect(stored.every((e) => e.recorder?.kind === 'server' && typeof e.received_ts === 'string')).toBe(true);
    expect(stored.map((e) => e.hash)).toEqual(receipts.map((r) => r.hash));
    expect((await verifyLedger(f.ledger)).ok).toBe(true);
  });

  it('[R-INGEST-IDENTITY] an agent key cannot write a system stream, a human act, or into another agent’s session', async () => {
    const cases: Array<[unknown, number, string]> = [
      [{ stream: 'witness.keys', kind: 'config.change', data: { target: 'key', description: 'x' } }, 403, 'events[0].stream'],
      [{ stream: `s-${randomUUID()}`, kind: 'approval.decision', data: {} }, 403, 'events[0].kind'],
      [{ stream: `s-${randomUUID()}`, kind: 'approval.request', data: { request_id: 'r1', arguments_digest: 'a'.repeat(64) } }, 403, 'events[0].kind'],
      [{ stream: `s-${randomUUID()}`, kind: 'audit.access', data: { actor: 'me', operation: 'view' } }, 403, 'events[0].kind'],
      [{ stream: f.built.sessions.a, kind: 'note', data: { text: 'mine now' } }, 403, 'stream'],
    ];
    for (const [event, status, path] of cases) {
      const res = await post({ events: [event] });
      const body = (await res.json()) as { error: { code: string; message: string; details?: { path?: string } } };
      expect(res.status, JSON.stringify(event)).toBe(status);
      expect(body.error.code).toBe('forbidden');
      expect(body.error.details?.path).toBe(path);
    }
    expect((await f.ledger.readStream(f.built.sessions.a)).every((e) => e.agent.id !== AGENT_ID)).toBe(true);
  });

  it('an invalid event is refused with 400 naming the field, and nothing of the batch is appended', async () => {
    const stream = `s-${randomUUID()}`;
    const res = await post({
      events: [
        { stream, kind: 'note', data: { text: 'ok' } },
        { stream, kind: 'llm.call', data: { input: [] } },
      ],
    });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: string; message: string; details: { path: string } } };
    expect(body.error.code).toBe('invalid_event');
    expect(body.error.details.path).toBe('events[1].data.model');
    expect(body.error.message).toContain('events[1]');
    expect(await f.ledger.readStream(stream)).toEqual([]);
  });

  it('a batch that is empty, too large, or not a list is refused with 400 naming events', async () => {
    for (const body of [{ events: [] }, { events: Array.from({ length: 1001 }, () => ({ stream: 's', kind: 'note', data: { text: '' } })) }, { events: 'x' }, { event: [] }]) {
      const res = await post(body);
      expect(res.status).toBe(400);
      const e = (await res.json()) as { error: { details: { path: string } } };
      expect(e.error.details.path).toMatch(/^event/);
    }
  });

  it('an event id sent twice, or an event after its session ended, is refused with 400, never 500', async () => {
    const stream = `s-${randomUUID()}`;
    const id = '0190c5b8-0000-7000-8000-' + randomUUID().slice(-12);
    expect((await post({ events: [{ id, stream, kind: 'session.start', data: {} }] })).status).toBe(201);
    const again = await post({ events: [{ id, stream, kind: 'note', data: { text: 'x' } }] });
    expect(again.status).toBe(400);
    expect(((await again.json()) as { error: { code: string } }).error.code).toBe('invalid_event');
    expect((await post({ events: [{ stream, kind: 'session.end', data: { reason: 'completed' } }] })).status).toBe(201);
    const late = await post({ events: [{ stream, kind: 'note', data: { text: 'after the end' } }] });
    expect(late.status).toBe(400);
  });

  it('secrets in an ingested event are redacted before they are written', async () => {
    const stream = `s-${randomUUID()}`;
    const res = await post({
      events: [{ stream, kind: 'tool.call', data: { tool: 'http', arguments: { url: 'https://x', headers: { Authorization: 'Bearer abcdefghijklmnop' }, password: 'hunter2' } } }],
    });
    expect(res.status).toBe(201);
    const [e] = await f.ledger.readStream(stream);
    expect(JSON.stringify(e!.data)).not.toContain('hunter2');
    expect(JSON.stringify(e!.data)).not.toContain('abcdefghijklmnop');
  });

  it('the events appended by this server, the ingest errors, pending approvals and the last verification are in /metrics', async () => {
    // A call held for review, as the gateway records it, waiting since a minute ago.
    await f.ledger.append([
      {
        stream: f.built.sessions.c,
        agent: { id: 'ops-bot' },
        kind: 'approval.request',
        recorder: { kind: 'gateway' },
        ts: new Date(Date.now() - 60_000).toISOString(),
        action: 'restart',
        data: { request_id: 'held-1', tool: 'restart', arguments_digest: 'b'.repeat(64), expires_at: new Date(Date.now() + 600_000).toISOString() },
      },
    ]);
    const verified = await f.call('POST', '/v1/verify', { key: f.keys.auditor, body: {} });
    expect(verified.status).toBe(200);
    expect(await verified.json()).toMatchObject({ ok: true, failures: [] });
    const res = await f.call('GET', '/metrics', { key: f.keys.auditor });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    expect(Number(/^witness_server_events_appended_total (\d+)$/m.exec(text)?.[1])).toBeGreaterThanOrEqual(3);
    expect(text).toMatch(/^witness_server_ingest_errors_total\{code="forbidden"\} 5$/m);
    expect(text).toMatch(/^witness_server_ingest_errors_total\{code="invalid_event"\} \d+$/m);
    expect(text).toMatch(/^witness_server_ingest_errors_total\{code="invalid_argument"\} 4$/m);
    expect(text).toMatch(/^witness_last_checkpoint_age_seconds \d+$/m);
    expect(text).toMatch(/^witness_last_verify_ok 1$/m);
    expect(text).toMatch(/^witness_pending_approvals 1$/m);
    expect(Number(/^witness_oldest_pending_approval_age_seconds (\d+)$/m.exec(text)?.[1])).toBeGreaterThanOrEqual(59);
    expect(text).toMatch(/^witness_last_verify_failures 0$/m);
    expect(Number(/^witness_last_verify_timestamp_seconds (\d+)$/m.exec(text)?.[1])).toBeGreaterThan(Date.now() / 1000 - 60);
  });
});
