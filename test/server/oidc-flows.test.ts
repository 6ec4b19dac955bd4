import { serve, type ServerType } from '@hono/node-server';
import { Hono } from 'hono';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseServerConfig } from '../../src/server/index.js';
import { FLOW_TTL_MS, MAX_PENDING_FLOWS, OidcSignIn, SignInRefused } from '../../src/server/oidc.js';
import { CLIENT_ID, CLIENT_SECRET, CookieBrowser, freePort, signInAtProvider, startProvider, type TestProvider } from './oidc-fixture.js';

/**
 * The flow store's limits, on a clock the test moves: a flow expires after FLOW_TTL_MS, and at most
 * MAX_PENDING_FLOWS wait at once (the oldest go first), so sign-in starts nobody finishes cannot
 * grow the server's memory. The provider is real; the app around OidcSignIn is the least that
 * serves its two steps.
 */
describe('OpenID Connect flows kept between redirect and callback', () => {
  let provider: TestProvider;
  let http: ServerType;
  let base: string;
  let now = 1_000_000;
  let oidc: OidcSignIn;

  beforeAll(async () => {
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    provider = await startProvider(`${base}/sign-in/oidc/callback`);
    const config = parseServerConfig(
      `public_url: ${base}\noidc:\n  issuer: ${provider.issuer}\n  client_id: ${CLIENT_ID}\n  client_secret: ${CLIENT_SECRET}\n  scopes: [openid, profile, groups]\n  roles:\n    claim: groups\n    map:\n      auditors: auditor\n`,
      { env: {} },
    );
    oidc = new OidcSignIn(config.oidc!, () => now);
    const app = new Hono();
    app.get('/sign-in/oidc', (c) => oidc.start(c));
    app.get('/sign-in/oidc/callback', async (c) => {
      try {
        const { person } = await oidc.finish(c);
        return c.text(`${person.subject} ${person.role}`);
      } catch (e) {
        if (e instanceof SignInRefused) return c.text(e.code, e.status);
        throw e;
      }
    });
    http = await new Promise<ServerType>((resolve) => {
      const s = serve({ fetch: app.fetch, port, hostname: '127.0.0.1' }, () => resolve(s));
    });
    expect((http.address() as AddressInfo).port).toBe(port);
  }, 30_000);

  afterAll(async () => {
    await new Promise<void>((resolve) => http?.close(() => resolve()));
    await provider?.close();
  });

  async function begin(browser: CookieBrowser): Promise<string> {
    const res = await browser.get(`${base}/sign-in/oidc`);
    expect(res.status).toBe(302);
    return res.headers.get('location')!;
  }

  it('finishes a flow answered within its lifetime', async () => {
    const browser = new CookieBrowser();
    const callback = await signInAtProvider(browser, await begin(browser), 'alice');
    now += FLOW_TTL_MS - 1;
    const res = await browser.get(callback);
    expect([res.status, await res.text()]).toEqual([200, 'alice auditor']);
  });

  it('refuses a flow answered after its lifetime', async () => {
    const browser = new CookieBrowser();
    const callback = await signInAtProvider(browser, await begin(browser), 'alice');
    now += FLOW_TTL_MS + 1;
    const res = await browser.get(callback);
    expect([res.status, await res.text()]).toEqual([400, 'oidc_no_flow']);
  });

  it(`keeps at most ${MAX_PENDING_FLOWS.toLocaleString('en-US')} flows waiting, dropping the oldest first`, async () => {
    const first = new CookieBrowser();
    const callback = await signInAtProvider(first, await begin(first), 'alice');
    const flooder = new CookieBrowser();
    for (let i = 0; i < MAX_PENDING_FLOWS; i++) await flooder.get(`${base}/sign-in/oidc`);
    expect(oidc.pending).toBe(MAX_PENDING_FLOWS);
    const res = await first.get(callback);
    expect([res.status, await res.text()]).toEqual([400, 'oidc_no_flow']);
  }, 60_000);
});
