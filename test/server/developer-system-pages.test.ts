import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/tmp.js';
import type { ServerFixture } from './fixture.js';
import { EMAIL, mailSessionFixture } from './mail-session-fixture.js';
import { Person } from './viewer-person.js';

/**
 * The viewer's side of developer-system-streams.test.ts (which says why): the session page of
 * `witness.audit-access` answers 404 to a developer, and the sessions list filtered on a resource
 * the developer sees masked is refused, so a guess cannot be confirmed.
 */
const dir = tempDir('witness-dev-system-pages-');
let f: ServerFixture;
let sess: string;

beforeAll(async () => {
  ({ f, sess } = await mailSessionFixture(dir));
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
