import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from '../../src/server/index.js';
import { buildSessionModel, integrityBadge, renderSessionPage } from '../../src/server/views/index.js';
import type { AppendRequest, Ledger } from '../../src/store/index.js';
import { postgresDriver } from '../store/postgres-driver.js';
import { tempDir } from '../helpers/tmp.js';
import { serverFixture, type ServerFixture } from './fixture.js';
import { Person } from './viewer-person.js';

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

describe("the viewer's session page reads a long session in pages, never whole", () => {
  const dir = tempDir('witness-viewer-session-paging-');
  const stream = `steps-${randomUUID()}`;
  const steps = 450;
  const agentId = { id: 'pager' };
  let f: ServerFixture;
  let served: { app: ReturnType<typeof createServer> };
  const reads = { whole: 0, pageLimits: [] as number[] };
  beforeAll(async () => {
    f = await serverFixture(dir);
    await f.ledger.append([{ stream, agent: agentId, kind: 'session.start', data: { purpose: 'a long session' } }]);
    let request: string | undefined;
    for (let i = 1; i <= steps; i += 50) {
      const batch: AppendRequest[] = [];
      for (let n = i; n < i + 50; n++) {
        batch.push({ stream, agent: agentId, kind: 'llm.call', data: { model: 'm', input: [], output: `thinking before step ${n}` } } as AppendRequest);
        batch.push({ stream, agent: agentId, kind: 'tool.call', resource: 'crm', action: `tool${n}`, data: { tool: `tool${n}`, arguments: { n } } } as AppendRequest);
        if (n === 300) batch.push({ stream, agent: agentId, kind: 'error', outcome: 'error', data: { message: 'an error between steps 300 and 301' } } as AppendRequest);
      }
      const receipts = await f.ledger.append(batch);
      const calls = receipts.filter((_, k) => batch[k]!.kind === 'tool.call');
      const results: AppendRequest[] = calls.map(
        (c, k) =>
          ({ stream, agent: agentId, kind: 'tool.result', parent: c.id, outcome: 'success', data: { tool: `tool${i + k}`, is_error: false, output: `result of step ${i + k}` } }) as AppendRequest,
      );
      const held = calls[250 - i];
      if (held !== undefined)
        results.push({
          stream,
          agent: agentId,
          kind: 'approval.request',
          // As the gateway stamps it: the viewer believes no other request (core's isApprovalRecord).
          recorder: { kind: 'gateway' },
          parent: held.id,
          outcome: 'pending',
          data: { request_id: 'req-250', rule: 'big-refund', reason: 'over 500', arguments_digest: 'a'.repeat(64) },
        } as AppendRequest);
      const r = await f.ledger.append(results);
      if (held !== undefined) request = r[r.length - 1]!.id;
    }
    // Decided long after: the step's approval is at the end of the stream, far past its window.
    await f.ledger.append([
      {
        stream,
        agent: { id: 'alice' },
        kind: 'approval.decision',
        parent: request!,
        outcome: 'success',
        data: { request_id: 'req-250', decision: 'approved', approver: 'alice', reason: 'checked', arguments_digest: 'a'.repeat(64) },
      } as AppendRequest,
      { stream, agent: agentId, kind: 'session.end', data: { reason: 'completed' } } as AppendRequest,
    ]);
    // The same ledger behind a second app, counting how the session page reads it.
    const counted = new Proxy(f.ledger, {
      get(target, prop, receiver) {
        if (prop === 'readStream')
          return async (s: string) => {
            if (s === stream) reads.whole += 1;
            return target.readStream(s);
          };
        if (prop === 'readStreamPage')
          return async (s: string, page?: { fromSeq?: number; limit?: number }) => {
            if (s === stream) reads.pageLimits.push(page?.limit ?? 200);
            return target.readStreamPage(s, page);
          };
        const v = Reflect.get(target, prop, receiver) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    served = { app: createServer({ ledger: counted }) };
  });
  afterAll(async () => f.close());

  /** The page from `<h1>` on, without the chrome (whose CSRF token differs between renders). */
  const body = (html: string) => html.slice(html.indexOf('<h1>'), html.indexOf('</main>'));

  it.each([1, 201, 401])('steps from %i show exactly what a whole-stream read shows: reasoning, results, a late approval, counts, paging links', async (from) => {
    const p = new Person(served);
    await p.signIn(f.keys.auditor);
    reads.whole = 0;
    reads.pageLimits = [];
    const res = await p.request('GET', `/session?id=${encodeURIComponent(stream)}${from === 1 ? '' : `&from=${from}`}`);
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(reads.whole).toBe(0);
    expect(reads.pageLimits.length).toBeGreaterThan(0);
    expect(Math.max(...reads.pageLimits)).toBeLessThanOrEqual(1000);
    const whole = await f.ledger.readStream(stream);
    const cp = await f.ledger.latestCheckpoint();
    const model = buildSessionModel(whole, {
      chrome: { user: { name: 'x', role: 'auditor' } },
      steps: { from },
      integrity: integrityBadge(whole, cp === undefined ? {} : { checkpoint: { id: cp.id, size: cp.size, ts: cp.ts }, signers: [] }),
    });
    // "Other errors" (recorded outside any call) are those among this page's steps, not the whole session's.
    if (from !== 201) model.errors = [];
    expect(body(html)).toEqual(body(renderSessionPage(model)));
    expect(html).toContain(`thinking before step ${from}`);
    expect(html).toContain(`result of step ${from + 199 > steps ? steps : from + 199}`);
    if (from === 201) expect(html).toContain('checked');
    if (from === 201) expect(html).toContain('an error between steps 300 and 301');
    else expect(html).not.toContain('an error between steps 300 and 301');
  });

  it('a call with more tied events than a page keeps shows the first of them and says where to read the rest', async () => {
    const crowded = `crowded-${randomUUID()}`;
    const [call] = await f.ledger.append([{ stream: crowded, agent: agentId, kind: 'tool.call', data: { tool: 'noisy', arguments: {} } } as AppendRequest]);
    for (let i = 0; i < 10_500; i += 1_500) {
      const n = Math.min(1_500, 10_500 - i);
      await f.ledger.append(
        Array.from({ length: n }, (_, k) => ({ stream: crowded, agent: agentId, kind: 'error', outcome: 'error', parent: call!.id, data: { message: `noise ${i + k}` } }) as AppendRequest),
      );
    }
    const p = new Person(served);
    await p.signIn(f.keys.auditor);
    const html = await (await p.request('GET', `/session?id=${encodeURIComponent(crowded)}`)).text();
    expect(html).toContain('noise 9998');
    expect(html).not.toContain('noise 9999<');
    expect(html).toContain('more than 10,000 events tied to them; only the first are shown');
    expect(html).toContain('10,501 events');
  });

  it('a step number past the end shows the last step, as a whole read did', async () => {
    const p = new Person(served);
    await p.signIn(f.keys.auditor);
    const html = await (await p.request('GET', `/session?id=${encodeURIComponent(stream)}&from=9000`)).text();
    expect(html).toContain(`Steps ${steps}–${steps} of ${steps}`);
    expect(html).toContain(`result of step ${steps}`);
  });
});
