import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openWitness } from '../../src/index.js';
import { createServer, parseServerConfig } from '../../src/server/index.js';
import { RECORDED_ERRORS_CACHE_MS, RECORDED_ERRORS_WINDOW_MS, ServerMetrics } from '../../src/server/metrics.js';
import { tempDir } from '../helpers/tmp.js';
import { postgresDriver } from '../store/postgres-driver.js';
import { serverFixture, type ServerFixture } from './fixture.js';
import { Person } from './viewer-person.js';

/** The value of one sample in a Prometheus text answer (`name{labels} value`), or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('/metrics and the failures recorders write into the ledger', () => {
  const dir = tempDir('witness-server-metrics-errors-');
  let f: ServerFixture;
  beforeAll(async () => {
    f = await serverFixture(dir);
  });
  afterAll(async () => f.close());

  it('[R-METRICS] counts the last 24 h of error events by source: a gap the SDK recorded after a store outage, a capture it could not take, the gateway losing a message, a tool failing', async () => {
    expect((await f.ledger.query({ kind: 'error' })).events).toHaveLength(0);

    // The SDK on the same ledger file, as an agent's process would be: a lock held by another
    // connection loses one event, and the recorder records the gap once writes work again.
    const w = await openWitness({ store: `sqlite:${f.built.file}`, busyTimeoutMs: 20, retryForMs: 100, onError: () => {} });
    const s = await w.session({ agent: { id: 'gap-bot' } });
    const other = new Database(f.built.file);
    other.exec('BEGIN EXCLUSIVE');
    expect(await s.note('written while the ledger is locked')).toBeUndefined();
    other.exec('ROLLBACK');
    other.close();
    await s.note('after recovery');
    await w.flush();
    await new Promise((r) => setTimeout(r, 20));
    await w.flush();
    // A tool call that asks for a screenshot from a recorder that has no capturer: recorded as a capture error.
    await s.tool('billing.lookup', { id: 1 }, () => 'ok', { capture: { url: 'http://127.0.0.1:9/customer' } });
    // A tool failing is the agent's world, not Witness's: counted apart.
    await expect(
      s.tool('billing.refund', { amount: 5 }, () => {
        throw new Error('card declined');
      }),
    ).rejects.toThrow('card declined');
    await s.record('error', { message: 'the refund tool said no', source: 'tool' });
    await w.close();
    // What the HTTP gateway writes when it cannot relay a message (http-gateway.ts), on its own stream.
    await f.ledger.append([
      {
        stream: 'witness.gateway',
        agent: { id: 'gw-agent' },
        kind: 'error',
        outcome: 'error',
        recorder: { kind: 'gateway' },
        data: { message: 'The upstream MCP server could not be reached.', code: 'upstream_unreachable', source: 'gateway' },
      },
    ]);

    const written = (await f.ledger.query({ kind: 'error', limit: 100 })).events.map((e) => (e.data as { source?: string; code?: unknown }).code);
    expect(written).toEqual(expect.arrayContaining(['recording_gap', 'no_capturer', 'upstream_unreachable']));

    const res = await f.call('GET', '/metrics', { key: f.keys.admin });
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toContain('# TYPE witness_recorded_errors gauge');
    expect(sample(text, 'witness_recorded_errors{source="recorder"}')).toBe(1);
    expect(sample(text, 'witness_recorded_errors{source="capture"}')).toBe(2); // before and after the call
    expect(sample(text, 'witness_recorded_errors{source="gateway"}')).toBe(1);
    expect(sample(text, 'witness_recorded_errors{source="tool"}')).toBe(1);
    expect(sample(text, 'witness_recorded_errors{source="unknown"}')).toBe(0);
    expect(sample(text, 'witness_recorded_errors_capped')).toBe(0);
  });

  it('[R-METRICS] counts again at most every 30 s, and only errors of the last 24 h', async () => {
    const metrics = new ServerMetrics();
    const now = Date.now();
    const recorder = async (t: number) => sample(await metrics.render(f.ledger, t), 'witness_recorded_errors{source="recorder"}');
    const before = await recorder(now);
    await f.ledger.append([{ stream: 'metrics-cache', agent: { id: 'cache-bot' }, kind: 'error', outcome: 'error', data: { message: 'rejected', code: 'invalid_event', source: 'recorder' } }]);
    expect(await recorder(now + 1_000)).toBe(before);
    expect(await recorder(now + RECORDED_ERRORS_CACHE_MS + 1_000)).toBe(before! + 1);
    // Counting again reads only what is new, and counts nothing twice.
    expect(await recorder(now + 2 * RECORDED_ERRORS_CACHE_MS + 2_000)).toBe(before! + 1);
    await f.ledger.append([{ stream: 'metrics-cache', agent: { id: 'cache-bot' }, kind: 'error', outcome: 'error', data: { message: 'gap', code: 'recording_gap', source: 'recorder' } }]);
    expect(await recorder(now + 3 * RECORDED_ERRORS_CACHE_MS + 3_000)).toBe(before! + 2);
    // A day later, nothing recorded now is in the window.
    expect(await recorder(now + RECORDED_ERRORS_WINDOW_MS + 60_000)).toBe(0);
  });
});

describe('/metrics when error events flood the window', () => {
  const dir = tempDir('witness-server-metrics-flood-');
  let f: ServerFixture;
  beforeAll(async () => {
    f = await serverFixture(dir);
  });
  afterAll(async () => f.close());

  it('[R-METRICS] holds at most the configured number of error events and says its counts are lower bounds', async () => {
    const metrics = new ServerMetrics({ maxRecordedErrors: 3 });
    const error = (i: number) => ({ stream: 'flood', agent: { id: 'flood-bot' }, kind: 'error' as const, outcome: 'error' as const, data: { message: `tool failed ${i}`, source: 'tool' as const } });
    await f.ledger.append([error(1), error(2)]);
    const now = Date.now();
    let text = await metrics.render(f.ledger, now);
    expect(sample(text, 'witness_recorded_errors{source="tool"}')).toBe(2);
    expect(sample(text, 'witness_recorded_errors_capped')).toBe(0);
    await f.ledger.append([error(3), error(4), error(5)]);
    text = await metrics.render(f.ledger, now + RECORDED_ERRORS_CACHE_MS);
    expect(sample(text, 'witness_recorded_errors{source="tool"}')).toBe(3);
    expect(sample(text, 'witness_recorded_errors_capped')).toBe(1);
  });
});

describe('/metrics and refusals that name no one', () => {
  const dir = tempDir('witness-server-metrics-refusals-');
  let f: ServerFixture;
  beforeAll(async () => {
    f = await serverFixture(dir);
  });
  afterAll(async () => f.close());

  it('[R-METRICS] counts unknown, revoked and malformed Bearer keys, and keys refused at the sign-in form, without recording them', async () => {
    const scrape = async () => (await f.call('GET', '/metrics', { key: f.keys.auditor })).text();
    const events = async () => (await f.ledger.query({ limit: 10_000 })).events.length;
    const first = await scrape();
    expect(sample(first, 'witness_server_refused_keys_total{via="bearer"}')).toBe(0);
    expect(sample(first, 'witness_server_refused_keys_total{via="sign-in"}')).toBe(0);
    const size = await events();

    expect((await f.call('GET', '/v1/events', { key: `wk_${'0'.repeat(16)}_${'A'.repeat(43)}` })).status).toBe(401);
    expect((await f.call('GET', '/v1/events', { headers: { authorization: 'Basic dXNlcjpwYXNz' } })).status).toBe(401);
    expect((await f.call('GET', '/no-such-route', { key: 'not-a-key' })).status).toBe(401);
    // No key at all is a browser or a probe, not a wrong key.
    expect((await f.call('GET', '/v1/events')).status).toBe(401);
    const made = await f.call('POST', '/v1/keys', { key: f.keys.admin, body: { role: 'developer', name: 'soon revoked' } });
    const { key, record } = (await made.json()) as { key: string; record: { id: string } };
    expect((await f.call('POST', `/v1/keys/${record.id}/revoke`, { key: f.keys.admin, body: {} })).status).toBe(200);
    expect((await f.call('GET', '/v1/events', { key })).status).toBe(401);

    const person = new Person(f);
    expect((await person.signIn('wk_nonsense')).status).toBe(401);
    expect((await person.signIn(key)).status).toBe(401);

    const text = await scrape();
    expect(sample(text, 'witness_server_refused_keys_total{via="bearer"}')).toBe(4);
    expect(sample(text, 'witness_server_refused_keys_total{via="sign-in"}')).toBe(2);
    // Only the key's creation and revocation were written.
    expect(await events()).toBe(size + 2);
  });

  it('[R-METRICS] counts OpenID Connect refusals before the provider named anyone, by code', async () => {
    const oidc = parseServerConfig(
      ['public_url: http://127.0.0.1:7350', 'oidc:', '  issuer: http://127.0.0.1:9/realm', '  client_id: witness', '  roles:', '    claim: groups', '    map:', '      auditors: auditor'].join('\n'),
      { source: 'server.yaml', env: {} },
    ).oidc!;
    const app = createServer({ ledger: f.ledger, oidc });
    const scrape = async () => (await app.request('/metrics', { headers: { authorization: `Bearer ${f.keys.auditor}` } })).text();
    expect(sample(await scrape(), 'witness_server_oidc_unnamed_refusals_total{code="none"}')).toBe(0);
    // An answer this browser never started a flow for: refused before anyone is asked.
    for (let i = 0; i < 3; i++) expect((await app.request('/sign-in/oidc/callback?state=x&code=y')).status).toBe(400);
    const text = await scrape();
    expect(sample(text, 'witness_server_oidc_unnamed_refusals_total{code="oidc_no_flow"}')).toBe(3);
    expect(text).not.toContain('witness_server_oidc_unnamed_refusals_total{code="none"}');
  });
});

describe('/metrics on PostgreSQL', () => {
  const driver = postgresDriver();
  it('[R-METRICS] counts the error events recorders wrote, by source, from the same Ledger interface', async () => {
    const ledger = await driver.open();
    try {
      const error = (source: string | undefined, code: string) => ({
        stream: 'pg-errors',
        agent: { id: 'pg-bot' },
        kind: 'error' as const,
        outcome: 'error' as const,
        data: { message: `failed: ${code}`, code, ...(source === undefined ? {} : { source }) },
      });
      await ledger.append([
        error('recorder', 'recording_gap'),
        error('capture', 'capture_failed'),
        error('capture', 'no_capturer'),
        error('gateway', 'upstream_unreachable'),
        error(undefined, 'E_AGENT'),
      ] as never);
      const text = await new ServerMetrics().render(ledger);
      expect(sample(text, 'witness_recorded_errors{source="recorder"}')).toBe(1);
      expect(sample(text, 'witness_recorded_errors{source="capture"}')).toBe(2);
      expect(sample(text, 'witness_recorded_errors{source="gateway"}')).toBe(1);
      expect(sample(text, 'witness_recorded_errors{source="unknown"}')).toBe(1);
    } finally {
      await ledger.close();
    }
  });
});
