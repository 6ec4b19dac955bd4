import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_SESSIONS_PER_PERSON, PersonSessions, type Person as SignedIn } from '../../src/server/person-session.js';
import { tempDir } from '../helpers/tmp.js';
import { serverFixture, type ServerFixture } from './fixture.js';
import { Person } from './viewer-person.js';

describe("a person's viewer sessions are capped", () => {
  it(`[R-VIEWER-SIGNIN] keeps at most ${MAX_SESSIONS_PER_PERSON} per key or OpenID Connect subject, ending the oldest first`, () => {
    let t = 0;
    const sessions = new PersonSessions(undefined, () => ++t);
    const alice: SignedIn = { id: 'key:k1', name: 'alice', role: 'auditor', via: 'key', keyId: 'k1' };
    const bob: SignedIn = { id: 'bob-sub', name: 'bob', role: 'developer', via: 'oidc' };
    // An OpenID Connect subject that happens to read like a key sign-in's id is still someone else.
    const lookalike: SignedIn = { id: 'key:k1', name: 'mallory', role: 'developer', via: 'oidc' };
    const bobs = [sessions.start(bob).id, sessions.start(bob).id];
    const other = sessions.start(lookalike).id;
    const ids = Array.from({ length: MAX_SESSIONS_PER_PERSON }, () => sessions.start(alice).id);
    expect(ids.every((id) => sessions.get(id) !== undefined)).toBe(true);

    const newest = sessions.start(alice).id;
    expect(sessions.get(ids[0])).toBeUndefined();
    expect(sessions.get(newest)).toBeDefined();
    expect(ids.slice(1).every((id) => sessions.get(id) !== undefined)).toBe(true);
    // The oldest is the one signed in first, not the one used least recently.
    sessions.start(alice);
    expect(sessions.get(ids[1])).toBeUndefined();
    expect(sessions.get(ids[2])).toBeDefined();
    expect(bobs.every((id) => sessions.get(id) !== undefined)).toBe(true);
    expect(sessions.get(other)).toBeDefined();
    expect(sessions.size).toBe(MAX_SESSIONS_PER_PERSON + 3);
  });
});

describe('signing in with one key again and again', () => {
  const dir = tempDir('witness-server-session-cap-');
  let f: ServerFixture;
  beforeAll(async () => {
    f = await serverFixture(dir);
  });
  afterAll(async () => f.close());

  it(`[R-VIEWER-SIGNIN] ends the key's first browser session at sign-in ${MAX_SESSIONS_PER_PERSON + 1}, and no other key's`, async () => {
    const auditor = new Person(f);
    expect((await auditor.signIn(f.keys.auditor)).status).toBe(303);
    const browsers: Person[] = [];
    for (let i = 0; i < MAX_SESSIONS_PER_PERSON; i++) {
      const b = new Person(f);
      expect((await b.signIn(f.keys.developer)).status).toBe(303);
      browsers.push(b);
    }
    expect((await browsers[0]!.request('GET', '/sessions')).status).toBe(200);
    const late = new Person(f);
    expect((await late.signIn(f.keys.developer)).status).toBe(303);
    const first = await browsers[0]!.request('GET', '/sessions');
    expect(first.status).toBe(303);
    expect(first.headers.get('location')).toMatch(/^\/sign-in/);
    expect((await browsers[1]!.request('GET', '/sessions')).status).toBe(200);
    expect((await late.request('GET', '/sessions')).status).toBe(200);
    expect((await auditor.request('GET', '/sessions')).status).toBe(200);
  });
});
