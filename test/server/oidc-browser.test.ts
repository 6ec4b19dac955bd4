import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listen, parseServerConfig, type RunningServer } from '../../src/server/index.js';
import { openLedger, type Ledger } from '../../src/store/index.js';
import { buildLedger } from '../helpers/ledger.js';
import { tempDir } from '../helpers/tmp.js';
import { CLIENT_ID, CLIENT_SECRET, freePort, startProvider, type TestProvider } from './oidc-fixture.js';

/**
 * The proof as a person lives it, in real Chromium: the sign-in page's OpenID Connect link, the
 * provider's own login and consent pages on another site (127.0.0.2), back to the viewer with a
 * role from the groups claim. Screenshots are kept under test-artifacts/oidc/.
 */
const ARTIFACTS = path.resolve('test-artifacts/oidc');

describe('OpenID Connect sign-in in Chromium', () => {
  const dir = tempDir('witness-oidc-browser-');
  let provider: TestProvider;
  let server: RunningServer;
  let ledger: Ledger;
  let browser: Browser;
  let base: string;

  beforeAll(async () => {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    provider = await startProvider(`${base}/sign-in/oidc/callback`);
    ledger = await openLedger(`sqlite:${(await buildLedger(dir)).file}`, { create: false });
    const { oidc } = parseServerConfig(
      `public_url: ${base}\noidc:\n  issuer: ${provider.issuer}\n  client_id: ${CLIENT_ID}\n  client_secret: ${CLIENT_SECRET}\n  scopes: [openid, profile, groups]\n  label: Test IdP\n  roles:\n    claim: groups\n    map:\n      auditors: auditor\n      devs: developer\n`,
      { source: 'server.yaml', env: {} },
    );
    server = await listen({ ledger, port, host: '127.0.0.1', sealEveryMs: 0, oidc: oidc! });
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await provider?.close();
  });

  async function signIn(login: string, shotPrefix: string) {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${base}/sessions`);
    // Not signed in: sent to the sign-in page, which offers the provider.
    expect(new URL(page.url()).pathname).toBe('/sign-in');
    await page.screenshot({ path: path.join(ARTIFACTS, `${shotPrefix}-1-sign-in.png`) });
    await page.getByRole('link', { name: /Sign in with Test IdP/ }).click();
    await page.waitForURL((u) => u.origin === provider.issuer);
    await page.fill('input[name="login"]', login);
    await page.fill('input[name="password"]', 'any');
    await page.screenshot({ path: path.join(ARTIFACTS, `${shotPrefix}-2-provider-login.png`) });
    await page.click('button[type="submit"]');
    // The provider's consent page, then back to the viewer.
    await page.waitForURL((u) => u.origin === provider.issuer && u.pathname.startsWith('/interaction/'));
    await page.click('button[type="submit"]');
    await page.waitForURL((u) => u.origin === base && u.pathname !== '/sign-in/oidc/callback', { timeout: 15_000 }).catch(() => undefined);
    await page.waitForLoadState('load');
    return { context, page };
  }

  it('[R-OIDC] a person whose groups claim holds "auditors" signs in through the provider and reads the sessions list as an auditor', async () => {
    const { context, page } = await signIn('alice', 'auditor');
    expect(new URL(page.url()).pathname).toBe('/sessions');
    const text = await page.locator('body').innerText();
    expect(text).toContain('Alice Auditor');
    expect(text).toMatch(/auditor/);
    await page.screenshot({ path: path.join(ARTIFACTS, 'auditor-3-sessions.png'), fullPage: true });
    const cookies = await context.cookies(base);
    expect(cookies.find((c) => c.name === 'witness_session')).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
    await context.close();
  });

  it('[R-OIDC] a person whose groups map to no role sees a page saying so and stays signed out', async () => {
    const { context, page } = await signIn('bob', 'unmapped');
    expect(new URL(page.url()).pathname).toBe('/sign-in/oidc/callback');
    expect(await page.locator('body').innerText()).toContain('which this server maps to no role');
    await page.screenshot({ path: path.join(ARTIFACTS, 'unmapped-3-refused.png'), fullPage: true });
    expect((await context.cookies(base)).some((c) => c.name === 'witness_session')).toBe(false);
    await context.close();
  });
});
