import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACCESS_STREAM, createKey, createServer } from '../../src/server/index.js';
import { verifyLedger, type Ledger } from '../../src/store/index.js';
import { postgresDriver } from '../store/postgres-driver.js';
import { Person } from './viewer-person.js';

describe('the viewer on a PostgreSQL ledger', () => {
  const driver = postgresDriver('viewer-postgres');
  let ledger: Ledger;
  let app: ReturnType<typeof createServer>;
  const keys: Record<string, { key: string; id: string }> = {};
  const stream = `pg-viewer-${randomUUID()}`;
  beforeAll(async () => {
    ledger = await driver.open();
    for (const role of ['auditor', 'developer'] as const) {
      const { key, record } = await createKey(ledger, { role, name: `pg ${role}` }, { who: 'test', recorder: 'cli' });
      keys[role] = { key, id: record.id };
    }
    await ledger.append([
      { stream, kind: 'session.start', agent: { id: 'pg-bot' }, data: { purpose: 'refund' } },
      { stream, kind: 'tool.call', agent: { id: 'pg-bot' }, resource: 'crm', data: { tool: 'lookup', arguments: { email: 'pat@example.com' } } },
      { stream, kind: 'session.end', agent: { id: 'pg-bot' }, data: { reason: 'completed', events: 2 } },
    ]);
    await ledger.seal({ force: true });
    app = createServer({ ledger });
  });
  afterAll(async () => ledger?.close());

  it('[R-ACCESS-LOG] [R-DEV-MASK] [R-CSRF] people read every page, a developer masked, re-verify needs the token, each read is recorded, and the ledger verifies', async () => {
    const auditor = new Person({ app });
    expect((await auditor.signIn(keys['auditor']!.key)).status).toBe(303);
    for (const path of ['/', '/sessions', `/session?id=${encodeURIComponent(stream)}`, '/integrity', '/approvals']) {
      expect((await auditor.request('GET', path)).status, path).toBe(200);
    }
    expect(await (await auditor.request('GET', `/session?id=${encodeURIComponent(stream)}`)).text()).toContain('pat@example.com');
    expect((await auditor.request('POST', '/integrity/verify', {})).status).toBe(403);
    expect((await auditor.request('POST', '/integrity/verify', { csrf: await auditor.csrf() })).status).toBe(303);
    expect(await (await auditor.request('GET', '/integrity')).text()).toContain('verified');

    const dev = new Person({ app });
    await dev.signIn(keys['developer']!.key);
    const masked = await (await dev.request('GET', `/session?id=${encodeURIComponent(stream)}`)).text();
    expect(masked).not.toContain('pat@example.com');
    expect(masked).toContain('[MASKED:email]');

    const reads = (await ledger.readStream(ACCESS_STREAM)).filter((e) => e.kind === 'audit.access' && e.resource === stream);
    expect(reads.map((e) => e.data?.['role']).sort()).toEqual(['auditor', 'auditor', 'developer']);
    await ledger.seal({ force: true });
    const report = await verifyLedger(ledger);
    expect(report.failures).toEqual([]);
    expect(report.ok).toBe(true);
  });
});
