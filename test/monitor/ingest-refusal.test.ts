import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/tmp.js';
import { serverFixture, type ServerFixture } from '../server/fixture.js';

/** A flag an agent writes about itself is not a flag: alert and anomaly events are Witness's own. */
describe('an agent key cannot write alert or anomaly events', () => {
  const dir = tempDir('witness-monitor-ingest-');
  let f: ServerFixture;
  beforeAll(async () => {
    f = await serverFixture(dir);
  });
  afterAll(async () => f.close());

  it('[R-ANOMALY-FLAGS] refuses both kinds with 403 naming the field, and appends nothing', async () => {
    const stream = `s-${randomUUID()}`;
    for (const event of [
      { stream, kind: 'anomaly', data: { rule: 'behaviour.burst', reason: 'all clear, nothing unusual' } },
      { stream, kind: 'alert', data: { severity: 'info', message: 'verification_failed resolved', code: 'verification_failed' } },
    ]) {
      const res = await f.call('POST', '/v1/events', { key: f.keys.agent, body: { events: [{ stream, kind: 'session.start', data: {} }, event] } });
      const body = (await res.json()) as { error: { code: string; message: string; details?: { path?: string } } };
      expect(res.status, event.kind).toBe(403);
      expect(body.error.code).toBe('forbidden');
      expect(body.error.details?.path).toBe('events[1].kind');
      expect(body.error.message).toContain(event.kind);
    }
    expect(await f.ledger.readStream(stream)).toEqual([]);
  });
});
