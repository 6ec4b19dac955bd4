import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACCESS_STREAM, createKey, createServer, revokeKey } from '../../src/server/index.js';
import { verifyLedger, type Ledger } from '../../src/store/index.js';
import { postgresDriver } from '../store/postgres-driver.js';

describe('the API on a PostgreSQL ledger', () => {
  const driver = postgresDriver('server-postgres');
  let ledger: Ledger;
  let app: ReturnType<typeof createServer>;
  const keys: Record<string, { key: string; id: string }> = {};
  beforeAll(async () => {
    ledger = await driver.open();
    for (const [role, extra] of [
      ['agent', { agent: 'pg-bot' }],
      ['auditor', {}],
      ['developer', {}],
    ] as const) {
      const { key, record } = await createKey(ledger, { role, ...extra }, { who: 'test', recorder: 'cli' });
      keys[role] = { key, id: record.id };
    }
    app = createServer({ ledger });
  });
  afterAll(async () => ledger?.close());

  const call = (method: string, path: string, key: string, body?: unknown) =>
    app.request(path, { method, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });

  it("[R-INGEST-IDENTITY] [R-ACCESS-LOG] [R-KEY-REVOKE] ingest under the key's agent, search and read with audit.access, a key revoked through a second handle refused, and the ledger verifies", async () => {
    const stream = `pg-${randomUUID()}`;
    const ingest = await call('POST', '/v1/events', keys['agent']!.key, {
      events: [
        { stream, kind: 'session.start', agent: { id: 'not-me' }, data: {} },
        { stream, kind: 'tool.call', resource: 'billing', data: { tool: 'refund', arguments: { email: 'a@b.example', amount: 5 } } },
      ],
    });
    expect(ingest.status).toBe(201);
    expect((await ledger.readStream(stream)).map((e) => e.agent)).toEqual([
      { id: 'pg-bot', credential: keys['agent']!.id },
      { id: 'pg-bot', credential: keys['agent']!.id },
    ]);

    const page = (await (await call('GET', `/v1/events?session=${stream}&q=refund&limit=1`, keys['auditor']!.key)).json()) as { events: Array<{ kind: string }> };
    expect(page.events.map((e) => e.kind)).toEqual(['tool.call']);
    const dev = await (await call('GET', `/v1/sessions/${stream}`, keys['developer']!.key)).text();
    expect(dev).not.toContain('a@b.example');
    expect((await call('GET', '/v1/events?cursor=zzz', keys['auditor']!.key)).status).toBe(400);

    const access = (await ledger.readStream(ACCESS_STREAM)).map((e) => (e.data as { role: string; operation: string }).role);
    expect(access).toEqual(['auditor', 'developer']);

    const other = await driver.openAgain(ledger);
    try {
      await revokeKey(other, keys['auditor']!.id, { who: 'alice', recorder: 'cli' });
    } finally {
      await other.close();
    }
    expect((await call('GET', '/v1/checkpoints', keys['auditor']!.key)).status).toBe(401);

    await ledger.seal();
    const verify = (await verifyLedger(ledger)) as { ok: boolean; failures: unknown[] };
    expect(verify.failures).toEqual([]);
    expect(verify.ok).toBe(true);
  });
});
