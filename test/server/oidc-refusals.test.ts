import { serve, type ServerType } from '@hono/node-server';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listen, parseServerConfig, type RunningServer } from '../../src/server/index.js';
import { OidcSignIn, SignInRefused } from '../../src/server/oidc.js';
import { openLedger, type Ledger } from '../../src/store/index.js';
import { buildLedger } from '../helpers/ledger.js';
import { tempDir } from '../helpers/tmp.js';
import { CLIENT_ID, CLIENT_SECRET, CookieBrowser, freePort, signInAtProvider, startProvider, type TestProvider } from './oidc-fixture.js';

/**
 * Refusals that come before the provider has named anyone (a provider error in the redirect, a
 * failed code exchange, a wrong state) are answerable by anyone who can start a flow, so they must
 * cost the ledger nothing: no event, and none of the redirect's text kept. They are counted in
 * memory instead. A refusal of someone the provider did name (no role maps) stays recorded
 * (oidc.test.ts).
 */
const ACCESS = 'witness.audit-access';

function configFor(base: string, issuer: string) {
  return parseServerConfig(
    [
      `public_url: ${base}`,
      'oidc:',
      `  issuer: ${issuer}`,
      `  client_id: ${CLIENT_ID}`,
      '  client_secret_env: S',
      '  scopes: [openid, profile, groups]',
      '  roles:',
      '    claim: groups',
      '    map:',
      '      auditors: auditor',
    ].join('\n'),
    { source: 'server.yaml', env: { S: CLIENT_SECRET } },
  ).oidc!;
}

describe('OpenID Connect refusals before the provider names anyone', () => {
  const dir = tempDir('witness-oidc-refusals-');
  let provider: TestProvider;
  let server: RunningServer;
  let ledger: Ledger;
  let base: string;

  beforeAll(async () => {
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    provider = await startProvider(`${base}/sign-in/oidc/callback`);
    ledger = await openLedger(`sqlite:${(await buildLedger(dir)).file}`, { create: false });
    server = await listen({ ledger, port, host: '127.0.0.1', sealEveryMs: 0, oidc: configFor(base, provider.issuer) });
  }, 30_000);

  afterAll(async () => {
    await server?.close();
    await provider?.close();
  });

  async function accessEvents(): Promise<number> {
    return (await ledger.readStream(ACCESS)).length;
  }

  it('a callback carrying a provider error and any description, for a flow this server started, appends nothing to the ledger', async () => {
    const before = await accessEvents();
    for (let i = 0; i < 5; i++) {
      const browser = new CookieBrowser();
      const start = await browser.get(`${base}/sign-in/oidc`);
      const state = new URL(start.headers.get('location')!).searchParams.get('state')!;
      const desc = 'admin alice@corp approved export of all patient sessions';
      const res = await browser.get(`${base}/sign-in/oidc/callback?state=${state}&error=access_denied&error_description=${encodeURIComponent(desc)}`);
      expect(res.status).toBe(403);
    }
    expect(await accessEvents()).toBe(before);
    expect(JSON.stringify(await ledger.readStream(ACCESS))).not.toContain('approved export of all patient sessions');
  });

  it('a code exchange that fails (an ID token bound to a nonce this server never sent) appends nothing to the ledger', async () => {
    const before = await accessEvents();
    const browser = new CookieBrowser();
    const auth = new URL((await browser.get(`${base}/sign-in/oidc`)).headers.get('location')!);
    auth.searchParams.set('nonce', 'a-nonce-this-server-never-sent-0000000000000');
    const res = await browser.get(await signInAtProvider(browser, auth.href, 'alice'));
    expect(res.status).toBe(403);
    expect(await res.text()).toMatch(/nonce/i);
    expect(await accessEvents()).toBe(before);
  });

  it('an account the provider named but whose groups map to no role is still recorded as a refused sign-in', async () => {
    const before = await accessEvents();
    const browser = new CookieBrowser();
    const auth = (await browser.get(`${base}/sign-in/oidc`)).headers.get('location')!;
    const res = await browser.get(await signInAtProvider(browser, auth, 'bob'));
    expect(res.status).toBe(403);
    const events = await ledger.readStream(ACCESS);
    expect(events.length).toBe(before + 1);
    expect(events.at(-1)).toMatchObject({ kind: 'config.change', action: 'sign-in', outcome: 'denied', data: { code: 'oidc_no_role', subject: 'bob' } });
  });

  it('sets the flow cookie Secure when a TLS proxy in front says the browser used https', async () => {
    const res = await fetch(`${base}/sign-in/oidc`, { headers: { 'x-forwarded-proto': 'https' }, redirect: 'manual' });
    expect(res.status).toBe(302);
    expect(res.headers.getSetCookie().find((c) => c.startsWith('witness_oidc='))).toMatch(/;\s*Secure/i);
    const plain = await fetch(`${base}/sign-in/oidc`, { redirect: 'manual' });
    expect(plain.headers.getSetCookie().find((c) => c.startsWith('witness_oidc='))).not.toMatch(/;\s*Secure/i);
  });
});

describe('OpenID Connect refusals counted in memory', () => {
  let provider: TestProvider;
  let http: ServerType;
  let base: string;
  let oidc: OidcSignIn;

  beforeAll(async () => {
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    provider = await startProvider(`${base}/sign-in/oidc/callback`);
    oidc = new OidcSignIn(configFor(base, provider.issuer));
    const app = new Hono();
    app.get('/sign-in/oidc', (c) => oidc.start(c));
    app.get('/sign-in/oidc/callback', async (c) => {
      try {
        await oidc.finish(c);
        return c.text('signed in');
      } catch (e) {
        if (e instanceof SignInRefused) return c.text(e.code, e.status);
        throw e;
      }
    });
    http = await new Promise<ServerType>((resolve) => {
      const s = serve({ fetch: app.fetch, port, hostname: '127.0.0.1' }, () => resolve(s));
    });
  }, 30_000);

  afterAll(async () => {
    await new Promise<void>((resolve) => http?.close(() => resolve()));
    await provider?.close();
  });

  it('counts each refusal that named nobody by its code, and not a refusal of someone the provider named', async () => {
    const providerError = new CookieBrowser();
    const state = new URL((await providerError.get(`${base}/sign-in/oidc`)).headers.get('location')!).searchParams.get('state')!;
    expect((await providerError.get(`${base}/sign-in/oidc/callback?state=${state}&error=access_denied`)).status).toBe(403);

    const wrongState = new CookieBrowser();
    await wrongState.get(`${base}/sign-in/oidc`);
    expect((await wrongState.get(`${base}/sign-in/oidc/callback?state=nope&code=x`)).status).toBe(400);
    expect((await new CookieBrowser().get(`${base}/sign-in/oidc/callback?state=nope&code=x`)).status).toBe(400);

    const bob = new CookieBrowser();
    const auth = (await bob.get(`${base}/sign-in/oidc`)).headers.get('location')!;
    expect((await bob.get(await signInAtProvider(bob, auth, 'bob'))).status).toBe(403);

    expect(Object.fromEntries(oidc.unnamedRefusals)).toEqual({ oidc_provider_refused: 1, oidc_state_mismatch: 1, oidc_no_flow: 1 });
  });
});
