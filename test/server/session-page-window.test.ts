import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppendRequest, Ledger } from '../../src/store/index.js';
import { tempDir } from '../helpers/tmp.js';
import { postgresDriver } from '../store/postgres-driver.js';
import { serverFixture, type ServerFixture } from './fixture.js';

/**
 * The viewer's session page on a long session: its totals come from the store's session summary
 * (Ledger.listSessions({ session })), only the window of steps is read, and the header still
 * counts the whole session: events, tool calls, its end, and how many are not yet sealed.
 */
const DRIVERS: Array<{ name: string; ledger: () => (() => Promise<Ledger>) | undefined }> = [
  { name: 'SQLite', ledger: () => undefined },
  {
    name: 'PostgreSQL',
    ledger: () => {
      const driver = postgresDriver('server-session-window');
      return () => driver.open();
    },
  },
];

const CALLS = 450;

describe.each(DRIVERS)('the session page of a long session ($name)', ({ ledger: opener }) => {
  const dir = tempDir('witness-session-window-');
  const open = opener();
  const stream = `long-${randomUUID()}`;
  const agent = { id: 'pager' };
  let f: ServerFixture;
  let unsealed: number;
  let events: number;

  beforeAll(async () => {
    f = await serverFixture(dir, open === undefined ? {} : { ledger: await open() });
    const all: AppendRequest[] = [{ stream, agent, kind: 'session.start', data: { purpose: 'long' } }];
    const callIds: string[] = [];
    for (let i = 1; i <= CALLS; i++) {
      const id = randomUUID();
      callIds.push(id);
      all.push(
        { stream, agent, kind: 'llm.call', data: { model: 'm', input: [{ role: 'user', content: `why ${i}` }], output: { text: `reasoning before call ${i}` } } },
        { stream, agent, id, kind: 'tool.call', resource: 'billing', action: 'lookup', outcome: 'success', data: { tool: 'billing.lookup', arguments: { step: `call-${i}` } } },
      );
      // An error tied to call 5, recorded late: after call 12.
      if (i === 12) all.push({ stream, agent, parent: callIds[4]!, kind: 'error', outcome: 'error', data: { message: 'late word on call five', source: 'tool' } });
    }
    all.push({ stream, agent, kind: 'session.end', data: { reason: 'max_iterations' } });
    events = all.length;
    await f.ledger.append(all.slice(0, 600));
    await f.ledger.seal();
    await f.ledger.append(all.slice(600));
    unsealed = events - 600;
  });
  afterAll(async () => f.close());

  const page = async (query: string) => {
    const res = await f.call('GET', `/session?id=${encodeURIComponent(stream)}${query}`, { key: f.keys.auditor });
    expect(res.status).toBe(200);
    return res.text();
  };

  it('counts the whole session in the header while showing only the first 200 steps, with a late event tied to one of them', async () => {
    const html = await page('');
    expect(html).toContain(`${events.toLocaleString('en-US')} events, ${CALLS} tool calls`);
    expect(html).toContain(`Steps 1–200 of ${CALLS}`);
    expect(html).toContain('(max_iterations)');
    expect(html).toContain('call-1');
    expect(html).toContain('call-200');
    expect(html).not.toContain('call-201&');
    expect(html).not.toContain('call-201"');
    expect(html).toContain('late word on call five');
    expect(html).toContain(`${unsealed} of ${events} events of this session are hash-chained but not yet in a signed checkpoint.`);
  });

  it('shows a later window numbered from its first step, and a step past the end as the last page', async () => {
    const later = await page('&from=401');
    expect(later).toContain(`Steps 401–${CALLS} of ${CALLS}`);
    expect(later).toContain('reasoning before call 401');
    expect(later).not.toContain('reasoning before call 400<');
    const past = await page('&from=9999');
    expect(past).toContain(`Steps ${CALLS}–${CALLS} of ${CALLS}`);
    expect(past).toContain(`call-${CALLS}`);
  });

  it('answers 404 for a session nobody recorded', async () => {
    const res = await f.call('GET', `/session?id=${randomUUID()}`, { key: f.keys.auditor });
    expect(res.status).toBe(404);
  });
});
