import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findApproval } from '../../src/approvals/index.js';
import { createOidcApproverKey, listen, parseServerConfig, type OidcConfig, type RunningServer } from '../../src/server/index.js';
import { openLedger, verifyLedger, type Ledger } from '../../src/store/index.js';
import { buildLedger } from '../helpers/ledger.js';
import { tempDir } from '../helpers/tmp.js';
import { heldRequest } from './approve-helpers.js';
import { CLIENT_ID, CLIENT_SECRET, CookieBrowser, freePort, signInAtProvider, startProvider, type TestProvider } from './oidc-fixture.js';

/**
 * OpenID Connect sign-in against a real provider (oidc-provider) on 127.0.0.2, the Witness
 * server on 127.0.0.1, both over real HTTP; the browser is a cookie jar that follows redirects by
 * hand so each test can tamper with one step.
 */
describe('OpenID Connect sign-in', () => {
  const dir = tempDir('witness-oidc-');
  let provider: TestProvider;
  let server: RunningServer;
  let ledger: Ledger;
  let base: string;
  let oidc: OidcConfig;
  let carolKey: string;

  beforeAll(async () => {
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    provider = await startProvider(`${base}/sign-in/oidc/callback`);
    const built = await buildLedger(dir);
    ledger = await openLedger(`sqlite:${built.file}`, { create: false });
    // The config file the way an administrator writes it; the map is tried in this order.
    const config = parseServerConfig(
      [
        `public_url: ${base}`,
        'oidc:',
        `  issuer: ${provider.issuer}`,
        `  client_id: ${CLIENT_ID}`,
        '  client_secret_env: TEST_OIDC_SECRET',
        '  scopes: [openid, profile, groups]',
        '  label: Test IdP',
        '  roles:',
        '    claim: groups',
        '    map:',
        '      auditors: auditor',
        '      approvers: approver',
        '      devs: developer',
        // carol has a key the server holds for her; dave is listed, but nobody made his key yet.
        '  approvers:',
        '    - subject: carol',
        '      name: carol@corp',
        '    - subject: dave',
        '      name: dave@corp',
      ].join('\n'),
      { source: 'server.yaml', env: { TEST_OIDC_SECRET: CLIENT_SECRET } },
    );
    oidc = config.oidc!;
    carolKey = (await createOidcApproverKey(ledger, { issuer: provider.issuer, subject: 'carol', name: 'carol@corp' }, { who: 'test-admin' })).verifierKey;
    server = await listen({ ledger, port, host: '127.0.0.1', sealEveryMs: 0, oidc });
  }, 30_000);

  afterAll(async () => {
    await server?.close();
    await provider?.close();
  });

  /** GET /sign-in/oidc: the redirect to the provider, checked for PKCE S256, state and nonce. */
  async function begin(browser: CookieBrowser, next?: string): Promise<URL> {
    const res = await browser.get(`${base}/sign-in/oidc${next === undefined ? '' : `?next=${encodeURIComponent(next)}`}`);
    expect(res.status).toBe(302);
    const flowCookie = res.headers.getSetCookie().find((c) => c.startsWith('witness_oidc='));
    expect(flowCookie).toMatch(/HttpOnly/i);
    expect(flowCookie).toMatch(/SameSite=Lax/i);
    const url = new URL(res.headers.get('location')!);
    expect(url.origin).toBe(provider.issuer);
    expect(url.searchParams.get('code_challenge_method')).toBe('S256');
    expect(url.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(url.searchParams.get('state')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(url.searchParams.get('nonce')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(url.searchParams.get('scope')).toBe('openid profile groups');
    return url;
  }

  async function signInEvents(): Promise<Array<{ outcome: string; data: Record<string, unknown> }>> {
    const events = await ledger.readStream('witness.audit-access');
    return events.filter((e) => e.kind === 'config.change' && e.action === 'sign-in').map((e) => ({ outcome: e.outcome ?? '', data: (e.data ?? {}) as Record<string, unknown> }));
  }

  it('[R-OIDC] an account whose groups claim holds "auditors" signs in as an auditor and opens the sessions page', async () => {
    const browser = new CookieBrowser();
    const auth = await begin(browser, '/sessions');
    const callback = await signInAtProvider(browser, auth.href, 'alice');
    expect(callback.startsWith(`${base}/sign-in/oidc/callback?`)).toBe(true);
    const res = await browser.get(callback);
    const body = await res.text();
    expect(res.status, body).toBe(200);
    // A page that moves on by itself: the session cookie is SameSite=Strict, kept off a redirect chain begun at the provider.
    expect(body).toMatch(/<meta http-equiv="refresh" content="0;url=\/sessions" ?\/?>/);
    expect(body).toContain('Signed in as Alice Auditor (auditor)');
    const session = res.headers.getSetCookie().find((c) => c.startsWith('witness_session='));
    expect(session).toMatch(/HttpOnly/i);
    expect(session).toMatch(/SameSite=Strict/i);
    expect(browser.cookie(base, 'witness_oidc')).toBeUndefined();

    const sessions = await browser.get(`${base}/sessions`);
    expect(sessions.status).toBe(200);
    expect(await sessions.text()).toContain('Alice Auditor');

    const recorded = (await signInEvents()).filter((e) => e.data['subject'] === 'alice');
    expect(recorded).toHaveLength(1);
    expect(recorded[0]).toMatchObject({ outcome: 'success', data: { via: 'oidc', role: 'auditor', claim: 'groups', matched: 'auditors', name: 'Alice Auditor', issuer: provider.issuer } });
  });

  it('[R-OIDC] an account whose groups map to no role is refused with a page saying why, and given no session and no default role', async () => {
    const browser = new CookieBrowser();
    const auth = await begin(browser);
    const res = await browser.get(await signInAtProvider(browser, auth.href, 'bob'));
    const body = await res.text();
    expect(res.status).toBe(403);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(body).toContain('Bob Contractor signed in at Test IdP but has groups &quot;contractors&quot;, which this server maps to no role');
    expect(res.headers.getSetCookie().some((c) => c.startsWith('witness_session='))).toBe(false);
    expect((await browser.get(`${base}/sessions`)).status).toBe(303);
    expect((await signInEvents()).filter((e) => e.data['subject'] === 'bob')).toMatchObject([{ outcome: 'denied', data: { code: 'oidc_no_role', name: 'Bob Contractor' } }]);
  });

  it('[R-OIDC] a callback whose state was changed is refused, and the flow it belonged to cannot be finished afterwards', async () => {
    const browser = new CookieBrowser();
    const auth = await begin(browser);
    const callback = new URL(await signInAtProvider(browser, auth.href, 'alice'));
    const flow = browser.cookie(base, 'witness_oidc')!;
    const tampered = new URL(callback);
    tampered.searchParams.set('state', 'x' + callback.searchParams.get('state')!.slice(1));
    const res = await browser.get(tampered.href);
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('does not carry the state this sign-in was started with');
    // The genuine answer, with the flow cookie put back, finds nothing: a flow is taken before it is checked.
    browser.setCookie(base, 'witness_oidc', flow);
    const genuine = await browser.get(callback.href);
    expect(genuine.status).toBe(400);
    expect(genuine.headers.getSetCookie().some((c) => c.startsWith('witness_session='))).toBe(false);
  });

  it('[R-OIDC] a callback replayed after a sign-in, with or without the flow cookie, is refused', async () => {
    const browser = new CookieBrowser();
    const auth = await begin(browser);
    const callback = await signInAtProvider(browser, auth.href, 'alice');
    const flow = browser.cookie(base, 'witness_oidc')!;
    expect((await browser.get(callback)).status).toBe(200);

    const thief = new CookieBrowser();
    const replay = await thief.get(callback);
    expect(replay.status).toBe(400);
    expect(await replay.text()).toContain('not one this browser started here, or it expired or was already used');
    thief.setCookie(base, 'witness_oidc', flow);
    const withCookie = await thief.get(callback);
    expect(withCookie.status).toBe(400);
    expect(withCookie.headers.getSetCookie().some((c) => c.startsWith('witness_session='))).toBe(false);
  });

  it('[R-OIDC] a code obtained by another browser cannot be finished in this one (login CSRF)', async () => {
    const attacker = new CookieBrowser();
    const auth = await begin(attacker);
    const callback = await signInAtProvider(attacker, auth.href, 'alice');
    const victim = new CookieBrowser();
    // The victim started a flow of their own, so they hold a flow cookie, just not this one.
    await begin(victim);
    const res = await victim.get(callback);
    expect(res.status).toBe(400);
    expect(res.headers.getSetCookie().some((c) => c.startsWith('witness_session='))).toBe(false);
  });

  it('[R-OIDC] an ID token carrying another nonce than the one the flow sent is refused, and only counted: nobody was named, so nothing is recorded', async () => {
    const browser = new CookieBrowser();
    const auth = await begin(browser);
    // The provider is asked for a token bound to another nonce; state and PKCE stay genuine.
    auth.searchParams.set('nonce', 'a-nonce-this-server-never-sent-0000000000000');
    const res = await browser.get(await signInAtProvider(browser, auth.href, 'alice'));
    const body = await res.text();
    expect(res.status).toBe(403);
    expect(body).toMatch(/nonce/i);
    expect(res.headers.getSetCookie().some((c) => c.startsWith('witness_session='))).toBe(false);
    expect((await signInEvents()).filter((e) => e.data['code'] === 'oidc_exchange_failed')).toHaveLength(0);
  });

  it('[R-OIDC] a code issued for another PKCE challenge cannot be exchanged with this flow', async () => {
    const browser = new CookieBrowser();
    const auth = await begin(browser);
    auth.searchParams.set('code_challenge', createHash('sha256').update('someone else').digest('base64url'));
    const res = await browser.get(await signInAtProvider(browser, auth.href, 'alice'));
    expect(res.status).toBe(403);
    expect(await res.text()).toContain('The sign-in could not be completed with Test IdP');
  });

  /** Signs `login` in through the provider and returns the browser with its session, and the approvals page's CSRF token. */
  async function signedIn(login: string): Promise<{ browser: CookieBrowser; csrf: string | undefined; page: Response }> {
    const browser = new CookieBrowser();
    const auth = await begin(browser);
    const res = await browser.get(await signInAtProvider(browser, auth.href, login));
    expect(res.status).toBe(200);
    const page = await browser.get(`${base}/approvals`);
    const csrf = /name="csrf" value="([^"]+)"/.exec(await page.clone().text())?.[1];
    return { browser, csrf, page };
  }

  async function decideOnPage(browser: CookieBrowser, csrf: string, id: string, decision: 'approve' | 'deny', reason: string): Promise<Response> {
    const digest = (await findApproval(ledger, id)).argumentsDigest;
    return browser.post(`${base}/approvals/decide`, { csrf, request_id: id, arguments_digest: digest, decision, reason });
  }

  it('[R-SERVER-APPROVE] an OpenID Connect approver the config binds to a held key approves a held call from the approvals page: the decision names her key and her issuer and subject, and releases the call', async () => {
    const id = await heldRequest(ledger, [carolKey]);
    const { browser, csrf, page } = await signedIn('carol');
    expect(page.status).toBe(200);
    expect(await page.text()).toContain(id);
    const res = await decideOnPage(browser, csrf!, id, 'approve', 'customer verified');
    expect(res.status).toBe(303);
    const after = await findApproval(ledger, id);
    // findApproval counts a decision only when its signature verifies against a key the request allows: what the gateway waits for.
    expect(after.status).toBe('approved');
    expect(after.decision?.data).toMatchObject({
      decision: 'approved',
      approver: 'carol@corp',
      approver_key: carolKey,
      role: 'approver',
      reason: 'customer verified',
      meaning: expect.stringContaining(`OpenID Connect ${provider.issuer} subject carol`),
    });
    const shown = await (await browser.get(`${base}/approvals`)).text();
    expect(shown).toContain(`Approved request ${id} as carol@corp.`);
    expect((await verifyLedger(ledger)).ok).toBe(true);
  });

  it('[R-SERVER-APPROVE] the same approver denies through the API with her session cookie and the X-CSRF-Token header, and is refused without the header', async () => {
    const id = await heldRequest(ledger, [carolKey]);
    const { browser, csrf } = await signedIn('carol');
    const cookie = `witness_session=${browser.cookie(base, 'witness_session')!}`;
    const post = (headers: Record<string, string>) =>
      fetch(`${base}/v1/approvals/${id}/deny`, { method: 'POST', headers: { cookie, 'content-type': 'application/json', ...headers }, body: JSON.stringify({ reason: 'not this one' }) });
    const without = await post({});
    expect(without.status).toBe(403);
    expect(((await without.json()) as { error: { message: string } }).error.message).toContain('CSRF token');
    const res = await post({ 'x-csrf-token': csrf! });
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({ request_id: id, decision: 'denied', approver: 'carol@corp', status: 'denied' });
  });

  it('[R-SERVER-APPROVE] an OpenID Connect approver without a held key is refused with the one sentence saying what the admin must run, and nothing is recorded', async () => {
    const id = await heldRequest(ledger, [carolKey]);
    const { browser, csrf } = await signedIn('dave');
    const res = await decideOnPage(browser, csrf!, id, 'approve', 'looks fine');
    expect(res.status).toBe(303);
    const shown = await (await browser.get(`${base}/approvals`)).text();
    expect(shown).toContain(
      `This server holds no approver signing key for Dave Approver (OpenID Connect subject &quot;dave&quot;), so it cannot sign a decision for you; an admin runs \`witness keys oidc-approver --issuer ${provider.issuer} --subject dave --name dave@corp\` and adds the policy lines it prints.`,
    );
    const after = await findApproval(ledger, id);
    expect([after.status, after.decisions.length]).toEqual(['pending', 0]);
  });

  it('[R-SERVER-APPROVE] a developer signed in through OpenID Connect cannot decide (403), and the request stays pending', async () => {
    const id = await heldRequest(ledger, [carolKey]);
    const browser = new CookieBrowser();
    const auth = await begin(browser);
    expect((await browser.get(await signInAtProvider(browser, auth.href, 'erin'))).status).toBe(200);
    const sessions = await (await browser.get(`${base}/sessions`)).text();
    const csrf = /name="csrf" value="([^"]+)"/.exec(sessions)?.[1];
    expect(csrf).toBeDefined();
    const res = await decideOnPage(browser, csrf!, id, 'approve', 'let me');
    expect(res.status).toBe(403);
    expect(await res.text()).toContain('A developer person may not call POST /approvals/decide');
    expect((await findApproval(ledger, id)).status).toBe('pending');
  });

  it('answers the OpenID Connect routes with a 404 page in one sentence when no oidc section is configured', async () => {
    const other = await listen({ ledger: await openLedger(`sqlite:${(await buildLedger(dir)).file}`, { create: false }), port: 0, host: '127.0.0.1', sealEveryMs: 0 });
    try {
      for (const path of ['/sign-in/oidc', '/sign-in/oidc/callback?code=x&state=y']) {
        const res = await fetch(`${other.url}${path}`, { redirect: 'manual' });
        expect(res.status, path).toBe(404);
        expect(await res.text()).toContain('OpenID Connect sign-in is not configured on this server');
      }
    } finally {
      await other.close();
    }
  });
});
