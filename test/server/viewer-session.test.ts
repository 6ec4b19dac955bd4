import { describe, expect, it } from 'vitest';
import { Hono } from 'hono';
import { PersonSessions, SESSIONS_VAR, SESSION_COOKIE, currentPersonSession, startPersonSession } from '../../src/server/person-session.js';

describe('person sessions', () => {
  it('[R-VIEWER-SIGNIN] keeps only the hash of a session id: the id is accepted, a guess of the same length is not', () => {
    const s = new PersonSessions();
    const { id, session } = s.start({ id: 'k1', name: 'Ann', role: 'auditor', via: 'key', keyId: 'k1' });
    expect(s.get(id)).toBe(session);
    expect(s.get(id.replace(/.$/, (ch) => (ch === 'A' ? 'B' : 'A')))).toBeUndefined();
    expect(JSON.stringify([...(s as unknown as { byHash: Map<string, unknown> }).byHash.keys()])).not.toContain(id);
  });

  it('[R-VIEWER-SIGNIN] ends a session after the idle time and after the absolute time even when used', () => {
    let t = 0;
    const s = new PersonSessions({ idleMs: 100, absoluteMs: 250 }, () => t);
    const idle = s.start({ id: 'a', name: 'A', role: 'developer', via: 'oidc' }).id;
    const busy = s.start({ id: 'b', name: 'B', role: 'developer', via: 'oidc' }).id;
    t = 90;
    expect(s.get(busy)).toBeDefined();
    t = 150;
    expect(s.get(idle)).toBeUndefined();
    expect(s.get(busy)).toBeDefined();
    t = 240;
    expect(s.get(busy)).toBeDefined();
    t = 260;
    expect(s.get(busy)).toBeUndefined();
  });

  it('[R-VIEWER-SIGNIN] refuses an agent, and ends every session of a revoked key', () => {
    const s = new PersonSessions();
    expect(() => s.start({ id: 'x', name: 'bot', role: 'agent', via: 'key', keyId: 'x' })).toThrow(/may not sign in/);
    const a = s.start({ id: 'k', name: 'A', role: 'approver', via: 'key', keyId: 'k' }).id;
    const b = s.start({ id: 'k', name: 'A', role: 'approver', via: 'key', keyId: 'k' }).id;
    const other = s.start({ id: 'j', name: 'J', role: 'approver', via: 'key', keyId: 'j' }).id;
    expect(s.endForKey('k')).toBe(2);
    expect(s.get(a)).toBeUndefined();
    expect(s.get(b)).toBeUndefined();
    expect(s.get(other)).toBeDefined();
  });

  it('startPersonSession sets an HttpOnly, SameSite=Strict cookie on path / (Secure over https) that identifies the person on the next request', async () => {
    const sessions = new PersonSessions();
    const app = new Hono();
    app.use('*', async (c, next) => {
      c.set(SESSIONS_VAR as never, sessions as never);
      await next();
    });
    app.post('/in', (c) => {
      startPersonSession(c, { id: 'sub-1', name: 'Ann', role: 'auditor', via: 'oidc' });
      return c.text('ok');
    });
    app.get('/me', (c) => c.text(currentPersonSession(c)?.person.name ?? 'nobody'));
    const res = await app.request('http://localhost/in', { method: 'POST' });
    const cookie = res.headers.get('set-cookie')!;
    expect(cookie).toMatch(new RegExp(`^${SESSION_COOKIE}=`));
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    expect(cookie).toMatch(/Path=\//);
    expect(cookie).not.toMatch(/Secure/);
    const secure = await app.request('https://localhost/in', { method: 'POST' });
    expect(secure.headers.get('set-cookie')).toMatch(/Secure/);
    const proxied = await app.request('http://localhost/in', { method: 'POST', headers: { 'x-forwarded-proto': 'https' } });
    expect(proxied.headers.get('set-cookie')).toMatch(/Secure/);
    const pair = cookie.split(';')[0]!;
    expect(await (await app.request('http://localhost/me', { headers: { cookie: pair } })).text()).toBe('Ann');
    expect(await (await app.request('http://localhost/me')).text()).toBe('nobody');
  });
});
