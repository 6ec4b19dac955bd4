import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { haltState } from '../../src/approvals/index.js';
import { tempDir } from '../helpers/tmp.js';
import { oneSentence } from '../helpers/ledger.js';
import { ROLE_LIST, serverFixture, type ServerFixture } from './fixture.js';
import { Person } from './viewer-person.js';

/**
 * The stop button in `witness serve`, through app.request (no socket) over a real SQLite ledger:
 * the API and the viewer's Stop page, allowed to admins and approvers only, recorded under the
 * caller's own name, and the viewer's form guarded by the session's CSRF token.
 */

describe('halting an agent from the server [R-HALT]', () => {
  const dir = tempDir('witness-server-halt-');
  let f: ServerFixture;
  beforeAll(async () => {
    f = await serverFixture(dir);
  });
  afterAll(async () => f.close());

  const agent = () => `bot-${randomUUID().slice(0, 8)}`;

  it('lets an approver halt and an admin resume over the API, recorded under their key names, never a name from the body', async () => {
    const a = agent();
    const halted = await f.call('POST', `/v1/agents/${a}/halt`, { key: f.keys.approver, body: { reason: 'refunding every order' } });
    expect(halted.status).toBe(201);
    const doc = (await halted.json()) as { event: string; actor: string };
    expect(doc).toMatchObject({ agent: a, halted: true, already: false, actor: 'test approver', reason: 'refunding every order' });
    const e = await f.ledger.getEvent(doc.event);
    expect(e).toMatchObject({
      kind: 'human.halt',
      stream: 'witness.approvals',
      agent: { id: a },
      principal: { id: 'test approver', kind: 'human' },
      recorder: { kind: 'server' },
      data: { actor: 'test approver', reason: 'refunding every order', agent: a, via: `witness serve, API key ${f.ids.approver}` },
    });
    expect((await haltState(f.ledger, a)).halted).toBe(true);

    // Auditors read the state; halting again records nothing.
    const state = await f.call('GET', `/v1/agents/${a}/halt`, { key: f.keys.auditor });
    expect(await state.json()).toMatchObject({ agent: a, halted: true, event: doc.event, actor: 'test approver' });
    const again = await f.call('POST', `/v1/agents/${a}/halt`, { key: f.keys.admin, body: { reason: 'again' } });
    expect(again.status).toBe(200);
    expect(await again.json()).toMatchObject({ already: true, event: doc.event, actor: 'test approver' });

    // A name in the body is refused, not recorded.
    const spoof = await f.call('POST', `/v1/agents/${a}/resume`, { key: f.keys.admin, body: { actor: 'the CEO' } });
    expect(spoof.status).toBe(400);

    const resumed = await f.call('POST', `/v1/agents/${a}/resume`, { key: f.keys.admin, body: { reason: 'fixed' } });
    expect(resumed.status).toBe(201);
    const r = (await resumed.json()) as { event: string; halt: string };
    expect(r.halt).toBe(doc.event);
    expect(await f.ledger.getEvent(r.event)).toMatchObject({
      kind: 'human.resume',
      parent: doc.event,
      principal: { id: 'test admin' },
      data: { actor: 'test admin', agent: a, reason: 'fixed', halt: doc.event },
    });

    const twice = await f.call('POST', `/v1/agents/${a}/resume`, { key: f.keys.admin, body: {} });
    expect(twice.status).toBe(409);
    const err = (await twice.json()) as { error: { code: string; message: string } };
    expect(err.error.code).toBe('conflict');
    expect(oneSentence(err.error.message)).toMatch(new RegExp(`^Agent ${a} is not halted \\(test admin resumed it at .*\\), so there is nothing to resume; nothing was recorded\\.$`));
  });

  it('refuses a halt without a reason (400, one sentence), recording nothing', async () => {
    const a = agent();
    const res = await f.call('POST', `/v1/agents/${a}/halt`, { key: f.keys.admin, body: { reason: ' ' } });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { message: string } };
    expect(oneSentence(body.error.message)).toBe('Cannot halt the agent: reason: say why the agent is halted (--reason); nothing was recorded.');
    expect((await f.ledger.query({ kind: 'human.halt', agent: a })).events).toHaveLength(0);
  });

  it('refuses every other role (403) on the halt and resume routes, and the agent and developer roles on the state', async () => {
    const a = agent();
    for (const role of ROLE_LIST.filter((r) => r !== 'admin' && r !== 'approver')) {
      for (const path of [`/v1/agents/${a}/halt`, `/v1/agents/${a}/resume`]) {
        const res = await f.call('POST', path, { key: f.keys[role], body: { reason: 'x' } });
        expect(res.status, `${role} ${path}`).toBe(403);
        expect(((await res.json()) as { error: { message: string } }).error.message).toContain(`A ${role} key may not call POST`);
      }
      const page = await f.call('POST', '/halts', {
        key: f.keys[role],
        raw: new URLSearchParams({ agent: a, action: 'halt', reason: 'x' }).toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
      expect(page.status, `${role} POST /halts`).toBe(403);
    }
    for (const role of ['agent', 'developer'] as const) expect((await f.call('GET', `/v1/agents/${a}/halt`, { key: f.keys[role] })).status).toBe(403);
    expect((await f.ledger.query({ kind: 'human.halt', agent: a })).events).toHaveLength(0);
  });

  it("halts and resumes from the viewer's Stop page as the signed-in approver, with the session's CSRF token", async () => {
    const a = agent();
    const p = new Person(f);
    expect((await p.signIn(f.keys.approver)).status).toBe(303);
    const csrf = await p.csrf('/halts');
    const page = await (await p.request('GET', '/halts')).text();
    expect(page).toContain('Halt an agent');
    expect(page).toContain('href="/halts"');

    const halted = await p.request('POST', '/halts', { csrf, agent: a, action: 'halt', reason: 'runaway <b>loop</b>' });
    expect(halted.status).toBe(303);
    expect(halted.headers.get('location')).toBe('/halts');
    const after = await (await p.request('GET', '/halts')).text();
    expect(after).toContain(`Halted agent ${a} as test approver`);
    // The reason is recorded text: shown escaped.
    expect(after).toContain('runaway &lt;b&gt;loop&lt;/b&gt;');
    expect(after).not.toContain('<b>loop</b>');
    expect(await haltState(f.ledger, a)).toMatchObject({ halted: true, halt: { actor: 'test approver', reason: 'runaway <b>loop</b>' } });

    const resumed = await p.request('POST', '/halts', { csrf, agent: a, action: 'resume', reason: '' });
    expect(resumed.status).toBe(303);
    expect(await (await p.request('GET', '/halts')).text()).toContain(`Resumed agent ${a} (halted by test approver) as test approver.`);
    expect((await haltState(f.ledger, a)).halted).toBe(false);

    // Resuming again is refused and said on the page, not recorded.
    await p.request('POST', '/halts', { csrf, agent: a, action: 'resume' });
    expect(await (await p.request('GET', '/halts')).text()).toContain(`Agent ${a} is not halted`);
    expect((await f.ledger.query({ kind: 'human.resume', agent: a })).events).toHaveLength(1);
  });

  it('refuses a Stop form without the token, with another token, or posted from another site (403), recording nothing', async () => {
    const a = agent();
    const p = new Person(f);
    await p.signIn(f.keys.admin);
    const csrf = await p.csrf('/halts');
    const form = { agent: a, action: 'halt', reason: 'forged' };
    const none = await p.request('POST', '/halts', form);
    expect(none.status).toBe(403);
    expect(await none.text()).toContain('carries no CSRF token');
    const other = await p.request('POST', '/halts', { ...form, csrf: 'A'.repeat(43) });
    expect(other.status).toBe(403);
    expect(await other.text()).toContain('does not match your session');
    const crossSite = await p.request('POST', '/halts', { ...form, csrf }, { 'sec-fetch-site': 'cross-site' });
    expect(crossSite.status).toBe(403);
    // The API with the session cookie needs the token in a header too.
    const api = await p.request('POST', `/v1/agents/${a}/halt`, undefined, { 'content-type': 'application/json' });
    expect(api.status).toBe(403);
    expect((await f.ledger.query({ kind: 'human.halt', agent: a })).events).toHaveLength(0);
  });

  it('shows an auditor who is halted, without the forms; a developer is refused the page', async () => {
    const a = agent();
    await f.call('POST', `/v1/agents/${a}/halt`, { key: f.keys.admin, body: { reason: 'audit me' } });
    const auditor = new Person(f);
    await auditor.signIn(f.keys.auditor);
    const page = await auditor.request('GET', '/halts');
    expect(page.status).toBe(200);
    const text = await page.text();
    expect(text).toContain(a);
    expect(text).toContain('audit me');
    expect(text).not.toContain('Halt an agent');
    expect(text).not.toContain('value="resume"');
    const dev = new Person(f);
    await dev.signIn(f.keys.developer);
    expect((await dev.request('GET', '/halts')).status).toBe(403);
  });
});
