import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approverKeysDir, revokeKey, storeApproverKey } from '../../src/server/index.js';
import { verifyLedger } from '../../src/store/index.js';
import { tempDir } from '../helpers/tmp.js';
import { heldRequest } from './approve-helpers.js';
import { serverFixture, type RoleName, type ServerFixture } from './fixture.js';
import { Person } from './viewer-person.js';

describe('viewer pages', () => {
  const dir = tempDir('witness-viewer-');
  let f: ServerFixture;
  const secretSession = `viewer-${randomUUID()}`;
  beforeAll(async () => {
    f = await serverFixture(dir);
    await f.ledger.append([
      { stream: secretSession, kind: 'session.start', agent: { id: 'support-bot' }, data: { purpose: 'refund for ann.lee@example.com' } },
      {
        stream: secretSession,
        kind: 'tool.call',
        agent: { id: 'support-bot' },
        resource: 'crm',
        action: 'lookup',
        data: { tool: 'lookup', arguments: { email: 'ann.lee@example.com', phone: '+44 20 7946 0958' } },
      },
    ]);
  });
  afterAll(async () => f.close());

  it('[R-ROLES] [R-VIEWER-SIGNIN] an auditor signs in with a key and reads every page, each with the strict CSP', async () => {
    const p = new Person(f);
    const res = await p.signIn(f.keys.auditor);
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/');
    const cookie = res.headers.getSetCookie().find((c) => c.startsWith('witness_session='))!;
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    for (const path of ['/', '/sessions', `/session?id=${f.built.sessions.b}`, '/approvals', '/integrity']) {
      const page = await p.request('GET', path);
      expect(page.status, path).toBe(200);
      expect(page.headers.get('content-security-policy'), path).toContain("script-src 'none'");
      expect(page.headers.get('content-type'), path).toMatch(/^text\/html/);
    }
    const art = await p.request('GET', `/v1/artifacts/${f.built.artifact.sha256}`);
    expect(art.status).toBe(200);
  });

  it('[R-ROLES] [R-VIEWER-SIGNIN] without a session a page redirects to sign-in and comes back after it; an agent key may not sign in', async () => {
    const p = new Person(f);
    const res = await p.request('GET', `/session?id=${f.built.sessions.a}`);
    expect(res.status).toBe(303);
    const to = res.headers.get('location')!;
    expect(to).toMatch(/^\/sign-in\?next=/);
    const next = new URLSearchParams(to.split('?')[1]).get('next')!;
    const signed = await p.signIn(f.keys.developer, next);
    expect(signed.headers.get('location')).toBe(`/session?id=${f.built.sessions.a}`);
    const agent = new Person(f);
    const refused = await agent.signIn(f.keys.agent);
    expect(refused.status).toBe(403);
    expect(await refused.text()).toContain('An agent key may not sign in');
    expect(agent.cookies.has('witness_session')).toBe(false);
    // Both are on the access stream, as OpenID Connect sign-ins are.
    const signIns = (await f.ledger.query({ stream: 'witness.audit-access', kind: 'config.change', limit: 1000 })).events.filter((e) => e.action === 'sign-in');
    expect(signIns.find((e) => e.data?.['key_id'] === f.ids.developer)).toMatchObject({ outcome: 'success', data: { via: 'key', role: 'developer' } });
    expect(signIns.find((e) => e.data?.['key_id'] === f.ids.agent)).toMatchObject({ outcome: 'denied', data: { via: 'key', role: 'agent' } });
  });

  it('[R-ROLES] [R-DEV-MASK] a developer sees personal data masked and no screenshots, and is refused artifacts and the approvals queue', async () => {
    const p = new Person(f);
    await p.signIn(f.keys.developer);
    const page = await (await p.request('GET', `/session?id=${encodeURIComponent(secretSession)}`)).text();
    expect(page).not.toContain('ann.lee@example.com');
    expect(page).toContain('[MASKED');
    const shots = await (await p.request('GET', `/session?id=${f.built.sessions.b}`)).text();
    expect(shots).not.toContain('/v1/artifacts/');
    expect(shots).toContain('not shown to developers');
    expect((await p.request('GET', `/v1/artifacts/${f.built.artifact.sha256}`)).status).toBe(403);
    const q = await p.request('GET', '/approvals');
    expect(q.status).toBe(403);
    expect(q.headers.get('content-type')).toMatch(/^text\/html/);
  });

  it('[R-CSRF] a form posted without the CSRF token, with a wrong one, or from another site is refused 403; with it, it works', async () => {
    const p = new Person(f);
    await p.signIn(f.keys.auditor);
    const token = await p.csrf();
    expect((await p.request('POST', '/integrity/verify', {})).status).toBe(403);
    expect((await p.request('POST', '/integrity/verify', { csrf: token.replace(/^./, (c) => (c === 'a' ? 'b' : 'a')) })).status).toBe(403);
    expect((await p.request('POST', '/integrity/verify', { csrf: token }, { origin: 'https://evil.example' })).status).toBe(403);
    expect((await p.request('POST', '/integrity/verify', { csrf: token }, { 'sec-fetch-site': 'cross-site' })).status).toBe(403);
    expect((await p.request('POST', '/integrity/verify', { csrf: token }, { origin: 'null', 'sec-fetch-site': 'cross-site' })).status).toBe(403);
    const ok = await p.request('POST', '/integrity/verify', { csrf: token }, { origin: 'http://localhost', 'sec-fetch-site': 'same-origin' });
    expect(ok.status).toBe(303);
    // Under the pages' no-referrer policy a browser's same-origin form says `Origin: null`.
    expect((await p.request('POST', '/integrity/verify', { csrf: token }, { origin: 'null', 'sec-fetch-site': 'same-origin' })).status).toBe(303);
    const panel = await (await p.request('GET', '/integrity')).text();
    expect(panel).toMatch(/verified|Verified/);
    // The sign-in form needs its own token too.
    const stranger = new Person(f);
    expect((await stranger.request('POST', '/sign-in', { api_key: f.keys.auditor })).status).toBe(403);
  });

  it('[R-ACCESS-LOG] reading a session page records an audit.access event naming the person and the session, and the ledger still verifies', async () => {
    const p = new Person(f);
    await p.signIn(f.keys.auditor);
    await p.request('GET', `/session?id=${f.built.sessions.a}`);
    const access = (await f.ledger.query({ stream: 'witness.audit-access', kind: 'audit.access', limit: 1000 })).events;
    const mine = access.filter((e) => e.resource === f.built.sessions.a && e.data?.['key_id'] === f.ids.auditor);
    expect(mine.length).toBeGreaterThan(0);
    expect(mine.at(-1)!.data).toMatchObject({ role: 'auditor', operation: 'view' });
    await f.ledger.seal({ force: true });
    expect((await verifyLedger(f.ledger)).ok).toBe(true);
  });

  it('[R-VIEWER-SIGNIN] [R-KEY-REVOKE] revoking the key ends its session at once, and sign-out ends it too', async () => {
    const { createKey } = await import('../../src/server/index.js');
    const { key, record } = await createKey(f.ledger, { role: 'auditor', name: 'short-lived' }, { who: 'test', recorder: 'cli' });
    const p = new Person(f);
    await p.signIn(key);
    expect((await p.request('GET', '/sessions')).status).toBe(200);
    await revokeKey(f.ledger, record.id, { who: 'test', recorder: 'cli' });
    expect((await p.request('GET', '/sessions')).status).toBe(303);
    const q = new Person(f);
    await q.signIn(f.keys.auditor);
    const token = await q.csrf();
    expect((await q.request('POST', '/sign-out', { csrf: token })).status).toBe(303);
    expect((await q.request('GET', '/sessions')).status).toBe(303);
  });

  it('[R-SERVER-APPROVE] an approver approves a held call from the approvals page as themself; a digest other than the one shown is refused and said so', async () => {
    const signer = storeApproverKey(approverKeysDir(f.ledger.info), f.ids.approver, { name: 'ann@acme.example' });
    const id = await heldRequest(f.ledger, [signer.verifierKey]);
    const other = await heldRequest(f.ledger, [signer.verifierKey]);
    const p = new Person(f);
    await p.signIn(f.keys.approver);
    const queue = await (await p.request('GET', '/approvals')).text();
    expect(queue).toContain(id);
    const digest = (await f.ledger.getEvent(id))!.data!['arguments_digest'] as string;
    const csrf = /name="csrf" value="([^"]+)"/.exec(queue)![1]!;
    expect((await p.request('POST', '/approvals/decide', { request_id: id, arguments_digest: digest, decision: 'approve', reason: 'checked' })).status).toBe(403);
    const res = await p.request('POST', '/approvals/decide', { csrf, request_id: id, arguments_digest: digest, decision: 'approve', reason: 'checked the customer' });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/approvals');
    const after = await (await p.request('GET', '/approvals')).text();
    expect(after).toContain(`Approved request ${id} as ann@acme.example`);
    expect(after).not.toContain(`value="${id}"`);
    const decision = (await f.ledger.query({ kind: 'approval.decision', limit: 100 })).events.find((e) => e.data?.['request_id'] === id)!;
    expect(decision.data).toMatchObject({ decision: 'approved', approver: 'ann@acme.example', reason: 'checked the customer' });
    await p.request('POST', '/approvals/decide', { csrf, request_id: other, arguments_digest: 'b'.repeat(64), decision: 'deny' });
    expect(await (await p.request('GET', '/approvals')).text()).toMatch(/notice error[^>]*>[^<]*digest/i);
  });

  it('[R-ROLES] an approver lands on the approvals queue and may not read sessions', async () => {
    const p = new Person(f);
    const res = await p.signIn(f.keys.approver as string);
    expect(res.headers.get('location')).toBe('/approvals');
    expect((await p.request('GET', '/approvals')).status).toBe(200);
    expect((await p.request('GET', '/sessions')).status).toBe(403);
  });
});

export type { RoleName };
