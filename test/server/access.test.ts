import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACCESS_STREAM, maskText } from '../../src/server/index.js';
import { verifyLedger } from '../../src/store/index.js';
import { tempDir } from '../helpers/tmp.js';
import { serverFixture, type ServerFixture } from './fixture.js';

interface Ev {
  id: string;
  kind: string;
  stream: string;
  data: Record<string, unknown> | null;
  salt: string | null;
  user?: string;
  masked?: boolean;
}

describe('audit.access and what each role reads', () => {
  const dir = tempDir('witness-server-access-');
  let f: ServerFixture;
  let stream: string;
  beforeAll(async () => {
    f = await serverFixture(dir);
    stream = `pii-${randomUUID()}`;
    const res = await f.call('POST', '/v1/events', {
      key: f.keys.agent,
      body: {
        events: [
          { stream, kind: 'session.start', user: 'jane.doe@example.com', data: {} },
          {
            stream,
            kind: 'tool.call',
            resource: 'billing',
            data: {
              tool: 'refund',
              arguments: {
                customer_email: 'jane.doe@example.com',
                card: '4111 1111 1111 1111',
                phone: '+44 20 7946 0958',
                full_name: 'Jane Doe',
                amount: 650,
                order: '2026-11-23',
                note: 'call +1 (555) 010-9999 or mail jane@corp.io',
              },
            },
          },
        ],
      },
    });
    expect(res.status).toBe(201);
  });
  afterAll(async () => f.close());

  const accessEvents = async () => (await f.ledger.readStream(ACCESS_STREAM)).filter((e) => e.kind === 'audit.access');

  it("[R-ACCESS-LOG] an auditor's read of a session is recorded as audit.access (who, role, what, when, from where) before it is answered, and the ledger still verifies", async () => {
    const before = (await accessEvents()).length;
    const res = await f.call('GET', `/v1/sessions/${stream}`, { key: f.keys.auditor });
    expect(res.status).toBe(200);
    const after = await accessEvents();
    expect(after.length).toBe(before + 1);
    const rec = after.at(-1)!;
    expect(rec.principal).toEqual({ id: `test auditor (key:${f.ids.auditor})`, kind: 'human' });
    expect(rec.agent).toEqual({ id: 'witness-server', credential: f.ids.auditor });
    expect(rec.resource).toBe(stream);
    expect(rec.data).toMatchObject({
      role: 'auditor',
      key_id: f.ids.auditor,
      operation: 'view',
      count: 2,
      scope: { route: 'GET /v1/sessions/:stream', request: `/v1/sessions/${stream}` },
      from: 'unknown',
    });
    expect(typeof rec.ts).toBe('string');
    const report = await verifyLedger(f.ledger);
    expect(report.failures).toEqual([]);
    expect(report.ok).toBe(true);
  });

  it('[R-ACCESS-LOG] searches, single events, artifacts, checkpoints and verification by people are recorded; an agent’s ingest and invalid reads are not, a refused read is recorded as denied', async () => {
    const reads: Array<[string, string, string]> = [
      ['GET', `/v1/events?session=${stream}&q=refund`, 'query'],
      ['GET', `/v1/artifacts/${f.built.artifact.sha256}`, 'view'],
      ['GET', '/v1/checkpoints', 'view'],
      ['POST', '/v1/verify', 'verify'],
    ];
    for (const [method, path, operation] of reads) {
      const before = (await accessEvents()).length;
      const res = await f.call(method, path, { key: f.keys.auditor, ...(method === 'POST' ? { body: {} } : {}) });
      expect(res.status, path).toBe(200);
      await res.arrayBuffer();
      const after = await accessEvents();
      expect(after.length, path).toBe(before + 1);
      expect(after.at(-1)!.data, path).toMatchObject({ operation, scope: { request: path } });
    }
    const before = (await accessEvents()).length;
    await f.call('POST', '/v1/events', { key: f.keys.agent, body: { events: [{ stream, kind: 'note', data: { text: 'x' } }] } });
    await f.call('GET', `/v1/sessions/${stream}`, { key: f.keys.approver });
    await f.call('GET', `/v1/events?since=nonsense`, { key: f.keys.auditor });
    // A person refused for their role is recorded, as denied (access-refusals.test.ts); nothing else here is.
    const after = await accessEvents();
    expect(after.length).toBe(before + 1);
    expect(after.at(-1)).toMatchObject({ outcome: 'denied', action: 'GET /v1/sessions/:stream', data: { role: 'approver' } });
  });

  it('[R-DEV-MASK] a developer reads the session with e-mail, card, phone and name masked, no salt, and the auditor reads it whole', async () => {
    const dev = (await (await f.call('GET', `/v1/sessions/${stream}`, { key: f.keys.developer })).json()) as { events: Ev[] };
    const text = JSON.stringify(dev);
    for (const secret of ['jane.doe@example.com', '4111 1111 1111 1111', '+44 20 7946 0958', 'Jane Doe', '(555) 010-9999', 'jane@corp.io']) expect(text, secret).not.toContain(secret);
    const call = dev.events.find((e) => e.kind === 'tool.call')!;
    expect(call.masked).toBe(true);
    expect(call.salt).toBeNull();
    expect(call.data).toMatchObject({
      tool: 'refund',
      arguments: { customer_email: '[MASKED:email]', card: '[MASKED:card]', phone: '[MASKED:phone]', full_name: '[MASKED:full_name]', amount: 650, order: '2026-11-23' },
    });
    expect(dev.events[0]!.user).toBe('[MASKED:email]');

    const aud = (await (await f.call('GET', `/v1/sessions/${stream}`, { key: f.keys.auditor })).json()) as { events: Ev[] };
    expect(JSON.stringify(aud)).toContain('jane.doe@example.com');
    expect(aud.events.every((e) => e.masked === undefined && typeof e.salt === 'string')).toBe(true);
  });

  it('[R-DEV-MASK] a developer cannot find a masked value by free-text search, and cannot fetch artifacts', async () => {
    const hit = (await (await f.call('GET', `/v1/events?session=${stream}&q=jane.doe`, { key: f.keys.auditor })).json()) as { events: Ev[] };
    expect(hit.events.length).toBe(1);
    const miss = (await (await f.call('GET', `/v1/events?session=${stream}&q=jane.doe`, { key: f.keys.developer })).json()) as { events: Ev[] };
    expect(miss.events).toEqual([]);
    expect((await f.call('GET', `/v1/artifacts/${f.built.artifact.sha256}`, { key: f.keys.developer })).status).toBe(403);
  });

  it('masking leaves timestamps, ids, amounts and digests readable', () => {
    const keep = ['2026-11-23T10:00:00.123Z', '0190c5b8-1234-7000-8000-000000000000', 'refund 650.00 EUR', 'a'.repeat(64), 'order 123456789', 'v1.2.3'];
    for (const k of keep) expect(maskText(k), k).toBe(k);
    expect(maskText('card 5500-0000-0000-0004 ok')).toBe('card [MASKED:card] ok');
    expect(maskText('4111 1111 1111 1112')).toBe('4111 1111 1111 1112');
  });
});

describe('GET /v1/sessions', () => {
  const dir = tempDir('witness-server-sessions-');
  let f: ServerFixture;
  beforeAll(async () => {
    f = await serverFixture(dir);
  });
  afterAll(async () => f.close());

  it('[R-ACCESS-LOG] lists sessions newest first with counts, filters and pages them, leaves system streams out, and records the listing', async () => {
    const all = (await (await f.call('GET', '/v1/sessions', { key: f.keys.auditor })).json()) as { sessions: Array<{ stream: string; agents: string[]; toolCalls: number }>; next?: string };
    expect(all.sessions.map((s) => s.stream).sort()).toEqual(Object.values(f.built.sessions).sort());
    const billing = (await (await f.call('GET', '/v1/sessions?agent=billing-bot', { key: f.keys.developer })).json()) as { sessions: Array<{ stream: string; toolCalls: number }> };
    expect(billing.sessions.map((s) => s.stream)).toEqual([f.built.sessions.b]);
    expect(billing.sessions[0]!.toolCalls).toBe(1);
    const first = (await (await f.call('GET', '/v1/sessions?limit=2', { key: f.keys.auditor })).json()) as { sessions: unknown[]; next: string };
    expect(first.sessions).toHaveLength(2);
    const second = (await (await f.call('GET', `/v1/sessions?limit=2&cursor=${first.next}`, { key: f.keys.auditor })).json()) as { sessions: unknown[]; next?: string };
    expect(second.sessions).toHaveLength(1);
    expect(second.next).toBeUndefined();
    expect((await f.call('GET', '/v1/sessions?cursor=bogus', { key: f.keys.auditor })).status).toBe(400);
    expect((await f.call('GET', '/v1/sessions?ended=maybe', { key: f.keys.auditor })).status).toBe(400);
    const listings = (await f.ledger.readStream(ACCESS_STREAM)).filter((e) => (e.data as { scope: { route: string } }).scope.route === 'GET /v1/sessions');
    expect(listings.map((e) => (e.data as { role: string }).role)).toEqual(['auditor', 'developer', 'auditor', 'auditor']);
  });
});
