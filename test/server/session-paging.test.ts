import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppendRequest, Ledger } from '../../src/store/index.js';
import { postgresDriver } from '../store/postgres-driver.js';
import { tempDir } from '../helpers/tmp.js';
import { serverFixture, type ServerFixture } from './fixture.js';

interface Page {
  stream: string;
  events: Array<{ id: string; seq: number; pos: number }>;
  next?: string;
}

/** The handler pages through `Ledger.readStreamPage`, so it is run on both drivers. */
const DRIVERS: Array<{ name: string; ledger: () => (() => Promise<Ledger>) | undefined }> = [
  { name: 'SQLite', ledger: () => undefined },
  {
    name: 'PostgreSQL',
    ledger: () => {
      const driver = postgresDriver('server-session-paging');
      return () => driver.open();
    },
  },
];

describe.each(DRIVERS)('GET /v1/sessions/:stream pages a long session ($name)', ({ ledger: opener }) => {
  const dir = tempDir('witness-server-session-paging-');
  const open = opener();
  const stream = `long-${randomUUID()}`;
  const total = 2_500;
  let f: ServerFixture;
  beforeAll(async () => {
    f = await serverFixture(dir, open === undefined ? {} : { ledger: await open() });
    // Recorded timestamps run backwards (a client's clock is only its claim): the page order is the
    // chain's, by seq, not by time.
    const base = Date.UTC(2026, 10, 1, 12);
    for (let i = 0; i < total; i += 500) {
      const batch: AppendRequest[] = [];
      for (let j = i; j < i + 500; j++) batch.push({ stream, agent: { id: 'pager' }, kind: 'note', ts: new Date(base - j * 1000).toISOString(), data: { text: `step ${j}` } });
      await f.ledger.append(batch);
    }
    // A second session, so that the session list has a next page whose cursor can be misused below.
    await f.ledger.append([{ stream: `short-${randomUUID()}`, agent: { id: 'pager' }, kind: 'note', data: { text: 'short' } }]);
  });
  afterAll(async () => f.close());

  const get = async (query: string) => f.call('GET', `/v1/sessions/${stream}${query}`, { key: f.keys.auditor });

  it('a session of 2,500 events is read completely in pages of 200 by default, in seq order, none twice, the last page without next', async () => {
    const seen: Page['events'] = [];
    const sizes: number[] = [];
    let cursor: string | undefined;
    for (let pages = 0; pages < 50; pages++) {
      const res = await get(cursor === undefined ? '' : `?cursor=${encodeURIComponent(cursor)}`);
      expect(res.status).toBe(200);
      const page = (await res.json()) as Page;
      expect(page.stream).toBe(stream);
      sizes.push(page.events.length);
      seen.push(...page.events);
      if (page.next === undefined) break;
      cursor = page.next;
    }
    expect(sizes).toEqual([...Array<number>(12).fill(200), 100]);
    expect(new Set(seen.map((e) => e.id)).size).toBe(total);
    expect(seen.map((e) => e.seq)).toEqual(Array.from({ length: total }, (_, i) => i));
  });

  it('limit takes up to 1,000 events a page and refuses more, naming the field', async () => {
    const page = (await (await get('?limit=1000')).json()) as Page;
    expect(page.events).toHaveLength(1000);
    expect(page.next).toBeDefined();
    const res = await get('?limit=1001');
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { code: 'invalid_argument' } });
    expect(JSON.stringify(await (await get('?limit=1001')).json())).toContain('limit');
  });

  it('an invalid cursor is a 400, never a 500: garbage, a session-list cursor and a /v1/events cursor handed to a session page', async () => {
    const garbage = await get('?cursor=not-a-cursor');
    expect(garbage.status).toBe(400);
    expect(await garbage.json()).toMatchObject({ error: { code: 'invalid_argument' } });
    const list = (await (await f.call('GET', '/v1/sessions?limit=1', { key: f.keys.auditor })).json()) as { next?: string };
    expect(list.next).toBeDefined();
    const wrong = await get(`?cursor=${encodeURIComponent(list.next!)}`);
    expect(wrong.status).toBe(400);
    const search = (await (await f.call('GET', `/v1/events?session=${stream}&limit=1`, { key: f.keys.auditor })).json()) as { next?: string };
    expect(search.next).toBeDefined();
    const event = await get(`?cursor=${encodeURIComponent(search.next!)}`);
    expect(event.status).toBe(400);
    expect(await event.json()).toMatchObject({ error: { code: 'invalid_argument' } });
    const negative = await get(`?cursor=${Buffer.from(JSON.stringify({ seq: -1 })).toString('base64url')}`);
    expect(negative.status).toBe(400);
  });

  it("a session page's cursor is refused by the event search and the session list, not misread as theirs", async () => {
    const page = (await (await get('?limit=10')).json()) as Page;
    expect(page.next).toBeDefined();
    for (const path of [`/v1/events?cursor=${encodeURIComponent(page.next!)}`, `/v1/sessions?cursor=${encodeURIComponent(page.next!)}`]) {
      const res = await f.call('GET', path, { key: f.keys.auditor });
      expect(res.status, path).toBe(400);
    }
  });

  it('pages read while the session keeps growing end with the events appended meanwhile, none twice', async () => {
    const growing = `growing-${randomUUID()}`;
    const add = async (from: number, n: number) =>
      f.ledger.append(Array.from({ length: n }, (_, i) => ({ stream: growing, agent: { id: 'pager' }, kind: 'note', data: { text: `step ${from + i}` } }) as AppendRequest));
    await add(0, 250);
    const seen: number[] = [];
    let cursor: string | undefined;
    for (let pages = 0; pages < 20; pages++) {
      const res = await f.call('GET', `/v1/sessions/${growing}?limit=100${cursor === undefined ? '' : `&cursor=${encodeURIComponent(cursor)}`}`, { key: f.keys.auditor });
      const page = (await res.json()) as Page;
      seen.push(...page.events.map((e) => e.seq));
      if (pages === 0) await add(250, 120);
      if (page.next === undefined) break;
      cursor = page.next;
    }
    expect(seen).toEqual(Array.from({ length: 370 }, (_, i) => i));
  });

  it('a session that does not exist is still a 404', async () => {
    const res = await f.call('GET', `/v1/sessions/none-${randomUUID()}`, { key: f.keys.auditor });
    expect(res.status).toBe(404);
  });
});
