import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/tmp.js';
import type { ServerFixture } from './fixture.js';
import { EMAIL, mailSessionFixture } from './mail-session-fixture.js';

/**
 * A developer reads agents' sessions with personal data masked. Two ways around the mask are
 * closed: Witness's own streams (`witness.audit-access`: who read which session, from where;
 * `witness.keys`: who holds which key) answer 404 to a developer everywhere a stream can be named,
 * and a filter on a header field the developer sees masked (resource, action) is refused, since
 * "which sessions touched mailto:jane@…" would confirm the very value the mask hides.
 */
const dir = tempDir('witness-dev-system-');
let f: ServerFixture;

beforeAll(async () => {
  ({ f } = await mailSessionFixture(dir));
});
afterAll(async () => {
  await f.close();
});

async function errorOf(res: Response): Promise<{ status: number; code: string; message: string; path?: string }> {
  const body = (await res.json()) as { error: { code: string; message: string; path?: string; details?: { path?: string } } };
  return { status: res.status, code: body.error.code, message: body.error.message, ...(body.error.path === undefined ? {} : { path: body.error.path }) };
}

describe("a developer and Witness's own streams", () => {
  it('GET /v1/sessions/witness.audit-access and witness.keys answer 404 to a developer, and 200 to an auditor', async () => {
    for (const stream of ['witness.audit-access', 'witness.keys']) {
      const dev = await f.call('GET', `/v1/sessions/${stream}`, { key: f.keys.developer });
      expect(dev.status, stream).toBe(404);
      expect(JSON.stringify(await dev.json())).not.toContain('test auditor');
      expect((await f.call('GET', `/v1/sessions/${stream}`, { key: f.keys.auditor })).status, stream).toBe(200);
    }
  });

  it('GET /v1/events/:id of an access record answers 404 to a developer, as if there were none', async () => {
    const record = (await f.ledger.readStream('witness.audit-access')).at(-1)!;
    const dev = await f.call('GET', `/v1/events/${record.id}`, { key: f.keys.developer });
    expect(await errorOf(dev)).toMatchObject({ status: 404, code: 'not_found' });
    expect((await f.call('GET', `/v1/events/${record.id}`, { key: f.keys.auditor })).status).toBe(200);
  });

  it("GET /v1/events?session=witness.audit-access answers 404 to a developer, and a search without a session leaves Witness's streams out", async () => {
    expect((await f.call('GET', '/v1/events?session=witness.audit-access', { key: f.keys.developer })).status).toBe(404);
    const all = (await (await f.call('GET', '/v1/events?limit=1000', { key: f.keys.developer })).json()) as { events: Array<{ stream: string }> };
    expect(all.events.length).toBeGreaterThan(0);
    expect(all.events.filter((e) => e.stream.startsWith('witness.'))).toEqual([]);
    const forAuditor = (await (await f.call('GET', '/v1/events?limit=1000', { key: f.keys.auditor })).json()) as { events: Array<{ stream: string }> };
    expect(forAuditor.events.some((e) => e.stream === 'witness.audit-access')).toBe(true);
  });
});

describe('a developer filtering on a masked header field', () => {
  it('GET /v1/events?resource= and ?action= are refused with 400 naming the field; an auditor filters as before', async () => {
    for (const field of ['resource', 'action']) {
      const value = field === 'resource' ? EMAIL : 'send';
      const err = await errorOf(await f.call('GET', `/v1/events?${field}=${encodeURIComponent(value)}`, { key: f.keys.developer }));
      expect(err).toMatchObject({ status: 400, code: 'invalid_argument' });
      expect(err.message).toContain(field);
    }
    const aud = (await (await f.call('GET', `/v1/events?resource=${encodeURIComponent(EMAIL)}`, { key: f.keys.auditor })).json()) as { events: unknown[] };
    expect(aud.events).toHaveLength(1);
  });

  it('GET /v1/sessions?resource= is refused with 400 naming the field', async () => {
    const err = await errorOf(await f.call('GET', `/v1/sessions?resource=${encodeURIComponent(EMAIL)}`, { key: f.keys.developer }));
    expect(err).toMatchObject({ status: 400, code: 'invalid_argument' });
    expect(err.message).toContain('resource');
    expect((await f.call('GET', `/v1/sessions?resource=${encodeURIComponent(EMAIL)}`, { key: f.keys.auditor })).status).toBe(200);
  });
});
