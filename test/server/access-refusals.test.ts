import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyLedger } from '../../src/store/index.js';
import { ACCESS_STREAM } from '../../src/server/index.js';
import { REFUSALS_PER_MINUTE, RefusalLimiter } from '../../src/server/access.js';
import { tempDir } from '../helpers/tmp.js';
import { serverFixture, type ServerFixture } from './fixture.js';
import { Person } from './viewer-person.js';

interface Refusal {
  outcome: string;
  action?: string;
  principal?: { id: string };
  data: { role: string; key_id: string; operation: string; scope: { route: string; request: string }; refusal?: { status: number; message: string; unrecorded_before?: number } };
}

describe("a signed-in person's refusal for their role", () => {
  const dir = tempDir('witness-server-access-refusals-');
  let f: ServerFixture;
  beforeAll(async () => {
    f = await serverFixture(dir);
  });
  afterAll(async () => f.close());

  const denied = async (): Promise<Refusal[]> => (await f.ledger.readStream(ACCESS_STREAM)).filter((e) => e.kind === 'audit.access' && e.outcome === 'denied') as unknown as Refusal[];

  it('[R-ACCESS-LOG] is recorded as audit.access denied: a developer opening /approvals and calling GET /v1/approvals', async () => {
    expect(await denied()).toHaveLength(0);
    const dev = new Person(f);
    expect((await dev.signIn(f.keys.developer)).status).toBe(303);
    const page = await dev.request('GET', '/approvals');
    expect(page.status).toBe(403);
    expect((await f.call('GET', '/v1/approvals?status=all', { key: f.keys.developer })).status).toBe(403);

    const records = await denied();
    expect(records).toHaveLength(2);
    const [viaPage, viaApi] = records;
    expect(viaPage).toMatchObject({
      outcome: 'denied',
      action: 'GET /approvals',
      principal: { id: `test developer (key:${f.ids.developer})` },
      data: { role: 'developer', key_id: f.ids.developer, scope: { route: 'GET /approvals', request: '/approvals' }, refusal: { status: 403 } },
    });
    expect(viaPage!.data.refusal!.message).toMatch(/^A developer person may not call GET \/approvals; /);
    expect(viaApi).toMatchObject({
      outcome: 'denied',
      data: { role: 'developer', scope: { route: 'GET /v1/approvals', request: '/v1/approvals?status=all' }, refusal: { status: 403 } },
    });
    expect(viaApi!.data.refusal!.message).toMatch(/^A developer key may not call GET \/v1\/approvals; /);
    expect(records.every((r) => r.data.refusal?.unrecorded_before === undefined)).toBe(true);

    const report = await verifyLedger(f.ledger);
    expect(report.ok).toBe(true);
  });

  it('[R-ACCESS-LOG] records neither an agent key refused a read nor a request without a key, and counts what it records', async () => {
    const before = (await denied()).length;
    expect((await f.call('GET', '/v1/events', { key: f.keys.agent })).status).toBe(403);
    expect((await f.call('GET', '/v1/approvals')).status).toBe(401);
    expect(await denied()).toHaveLength(before);
    const metrics = await (await f.call('GET', '/metrics', { key: f.keys.admin })).text();
    expect(metrics).toMatch(/^witness_server_refusals_recorded_total 2$/m);
  });
});

describe('the rate limit on recording refusals', () => {
  it(`[R-ACCESS-LOG] records ${REFUSALS_PER_MINUTE} of a person's refusals a minute and says in the next record how many it left out`, () => {
    let t = 1_000_000;
    const limiter = new RefusalLimiter(REFUSALS_PER_MINUTE, () => t);
    for (let i = 0; i < REFUSALS_PER_MINUTE; i++) expect(limiter.take('k1')).toEqual({ record: true, unrecordedBefore: 0 });
    expect(limiter.take('k1')).toEqual({ record: false });
    expect(limiter.take('k1')).toEqual({ record: false });
    // Another person is not held back by the first.
    expect(limiter.take('k2')).toEqual({ record: true, unrecordedBefore: 0 });
    t += 60_000;
    expect(limiter.take('k1')).toEqual({ record: true, unrecordedBefore: 2 });
    expect(limiter.take('k1')).toEqual({ record: true, unrecordedBefore: 0 });
  });

  it("[R-ACCESS-LOG] leaves a flood of one person's refusals mostly unrecorded, counted in /metrics", async () => {
    const dir = tempDir('witness-server-access-flood-');
    const f = await serverFixture(dir);
    try {
      for (let i = 0; i < REFUSALS_PER_MINUTE + 5; i++) expect((await f.call('GET', '/v1/keys', { key: f.keys.auditor })).status).toBe(403);
      const records = (await f.ledger.readStream(ACCESS_STREAM)).filter((e) => e.kind === 'audit.access' && e.outcome === 'denied');
      expect(records).toHaveLength(REFUSALS_PER_MINUTE);
      const metrics = await (await f.call('GET', '/metrics', { key: f.keys.admin })).text();
      expect(metrics).toMatch(/^witness_server_refusals_unrecorded_total\{reason="rate"\} 5$/m);
    } finally {
      await f.close();
    }
  });
});
