import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/tmp.js';
import { serverFixture, type ServerFixture } from './fixture.js';
import { Person } from './viewer-person.js';

/**
 * The viewer's side of developer-system-streams.test.ts. A developer reads agents' sessions with personal data masked. Two ways around the mask are
 * closed: Witness's own streams (`witness.audit-access`: who read which session, from where;
 * `witness.keys`: who holds which key) answer 404 to a developer everywhere a stream can be named,
 * and a filter on a header field the developer sees masked (resource, action) is refused, since
 * "which sessions touched mailto:jane@…" would confirm the very value the mask hides.
 */
const dir = tempDir('witness-dev-system-pages-');
let f: ServerFixture;
const sess = `mail-${randomUUID()}`;
const EMAIL = 'mailto:jane.doe@example.com';

beforeAll(async () => {
  f = await serverFixture(dir);
  await f.ledger.append([
    { stream: sess, kind: 'session.start', agent: { id: 'mail-bot' }, data: { purpose: 'x' } },
    { stream: sess, kind: 'tool.call', agent: { id: 'mail-bot' }, resource: EMAIL, action: 'send', data: { tool: 'send', arguments: { body: 'hello' } } },
  ]);
  // An auditor's read puts a record on the access stream naming the auditor and the session.
  expect((await f.call('GET', `/v1/sessions/${encodeURIComponent(sess)}`, { key: f.keys.auditor })).status).toBe(200);
});
afterAll(async () => {
  await f.close();
});

describe('the viewer to a developer', () => {
  it("the viewer's session page of witness.audit-access answers 404 to a developer", async () => {
    const dev = new Person(f);
    expect((await dev.signIn(f.keys.developer)).status).toBe(303);
    const page = await dev.request('GET', '/session?id=witness.audit-access');
    expect(page.status).toBe(404);
    expect(await page.text()).not.toContain(sess);
  });

  it("the viewer's sessions list filtered on a resource is refused to a developer, so a guess cannot be confirmed", async () => {
    const dev = new Person(f);
    await dev.signIn(f.keys.developer);
    const hit = await dev.request('GET', `/sessions?resource=${encodeURIComponent(EMAIL)}`);
    expect(hit.status).toBe(400);
    expect(await hit.text()).not.toContain(sess);
    expect((await dev.request('GET', '/sessions')).status).toBe(200);
  });
});
