import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approverKeysDir, createKey, storeApproverKey } from '../../src/server/index.js';
import { openLedger, verifyLedger, type Ledger } from '../../src/store/index.js';
import { BIN, REPO_ROOT } from '../helpers/ledger.js';
import { tempDir } from '../helpers/tmp.js';
import { heldRequest } from './approve-helpers.js';

/**
 * The viewer end to end as people use it: the real `witness demo --open` (the demo's workflow with
 * screenshots and a narrated video, then `witness serve` on its ledger), driven in real Chromium.
 * Screenshots of each page are kept under test-artifacts/viewer/.
 */

const SHOTS = path.join(REPO_ROOT, 'test-artifacts', 'viewer');
const EMAIL = /[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/;

interface Demo {
  child: ChildProcess;
  url: string;
  origin: string;
  key: string;
  sessionId: string;
  dir: string;
}

/** Starts `witness demo --open --port 0` and waits for the URL and key it prints. */
function startDemo(dir: string): Promise<Demo> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'demo', '--dir', dir, '--open', '--port', '0'], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`witness demo --open printed no URL in 75 s:\n${out}\n${err}`)), 75_000);
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      const url = /^Viewer: (\S+)$/m.exec(out)?.[1];
      const key = /^Sign in with this auditor key \(kept in .+\): (wk_\S+)$/m.exec(out)?.[1];
      if (url !== undefined && key !== undefined && /Stop with Ctrl-C\./.test(out)) {
        clearTimeout(timer);
        const u = new URL(url);
        resolve({ child, url, origin: u.origin, key, sessionId: u.searchParams.get('id')!, dir });
      }
    });
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`witness demo --open exited with ${code}:\n${out}\n${err}`));
    });
  });
}

async function signIn(page: Page, key: string): Promise<void> {
  await page.fill('input[name="api_key"]', key);
  await Promise.all([page.waitForLoadState('load'), page.click('button[type="submit"]')]);
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

describe('the viewer in Chromium on the demo', () => {
  const dir = tempDir('witness-viewer-e2e-');
  let demo: Demo;
  let browser: Browser;
  let auditor: BrowserContext;
  let ledger: Ledger;

  beforeAll(async () => {
    fs.mkdirSync(SHOTS, { recursive: true });
    [demo, browser] = await Promise.all([startDemo(path.join(dir, 'demo')), chromium.launch({ executablePath: '/usr/bin/chromium' })]);
    ledger = await openLedger(`sqlite:${path.join(demo.dir, 'witness.db')}`, { create: false });
    auditor = await browser.newContext();
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await ledger?.close();
    if (demo?.child.exitCode === null) {
      const exited = new Promise((r) => demo.child.once('exit', r));
      demo.child.kill('SIGTERM');
      await exited;
    }
  });

  it('[R-VIEWER-SIGNIN] an auditor signs in, opens the demo session and sees both screenshots of a step and a video that plays', async () => {
    const page = await auditor.newPage();
    await page.goto(demo.url);
    expect(new URL(page.url()).pathname).toBe('/sign-in');
    await shot(page, 'sign-in');
    await signIn(page, demo.key);
    expect(page.url()).toBe(demo.url);
    // The screenshots load lazily: each is scrolled into view and must then decode (it came through the session cookie).
    const imgs = page.locator('img[src^="/v1/artifacts/"]');
    expect(await imgs.count()).toBeGreaterThanOrEqual(2);
    for (const img of await imgs.all()) {
      await img.scrollIntoViewIfNeeded();
      await expect.poll(() => img.evaluate((e: { complete: boolean; naturalWidth: number }) => (e.complete ? e.naturalWidth : 0)), { timeout: 5_000 }).toBeGreaterThan(0);
    }
    const step = page
      .locator('ol.steps > li')
      .filter({ has: page.locator('img[src^="/v1/artifacts/"]') })
      .first();
    expect(await step.locator('img[src^="/v1/artifacts/"]').count()).toBe(2);
    await shot(page, 'session');
    const video = page.locator('video');
    await expect.poll(() => video.evaluate((v: { readyState: number }) => v.readyState), { timeout: 10_000 }).toBeGreaterThanOrEqual(2);
    await video.evaluate((v: { muted: boolean; play(): Promise<void> }) => {
      v.muted = true;
      return v.play();
    });
    await expect.poll(() => video.evaluate((v: { currentTime: number }) => v.currentTime), { timeout: 10_000 }).toBeGreaterThan(0.2);
    const tracks = await page.$$eval('video track', (els) => els.map((e) => e.getAttribute('src')));
    expect(tracks.some((t) => t?.endsWith('/chapters.vtt'))).toBe(true);
    for (const t of tracks) expect((await page.request.get(`${demo.origin}${t}`)).status(), t!).toBe(200);
    await page.close();
  });

  it('[R-ROLES] the auditor reads the overview, sessions list and approvals queue, checks the integrity panel and re-verifies', async () => {
    const page = await auditor.newPage();
    for (const [p, name] of [
      ['/', 'overview'],
      ['/sessions', 'sessions'],
      ['/approvals', 'approvals'],
    ] as const) {
      const res = await page.goto(`${demo.origin}${p}`);
      expect(res!.status(), p).toBe(200);
      expect(res!.headers()['content-security-policy'], p).toContain("default-src 'none'");
      await shot(page, name);
    }
    expect(await page.goto(`${demo.origin}/sessions`).then(() => page.content())).toContain(demo.sessionId);
    await page.goto(`${demo.origin}/integrity`);
    await shot(page, 'integrity');
    await Promise.all([page.waitForURL(`${demo.origin}/integrity`), page.click(`form[action="/integrity/verify"] button`)]);
    const text = await page.textContent('main');
    expect(text).toMatch(/verified|intact|passed/i);
    await shot(page, 'integrity-reverified');
    await page.close();
  });

  it('[R-CSRF] a form posted without the CSRF token is refused 403', async () => {
    const res = await auditor.request.post(`${demo.origin}/integrity/verify`, { form: { nothing: 'here' } });
    expect(res.status()).toBe(403);
    expect(await res.text()).toContain('CSRF');
  });

  it('[R-DEV-MASK] a developer sees personal data masked and no screenshots', async () => {
    const { key } = await createKey(ledger, { role: 'developer', name: 'e2e developer' }, { who: 'test', recorder: 'cli' });
    const auditorPage = await auditor.newPage();
    await auditorPage.goto(demo.url);
    const plain = (await auditorPage.textContent('main')) ?? '';
    await auditorPage.close();
    expect(plain).toMatch(EMAIL);
    const dev = await browser.newContext();
    const page = await dev.newPage();
    await page.goto(demo.url);
    await signIn(page, key);
    await shot(page, 'session-developer');
    const masked = (await page.textContent('main')) ?? '';
    expect(masked).not.toMatch(EMAIL);
    expect(masked).toContain('[MASKED:email]');
    expect(await page.$$eval('img[src^="/v1/artifacts/"]', (els) => els.length)).toBe(0);
    expect(masked).toContain('not shown to developers');
    await dev.close();
  });

  it('[R-SERVER-APPROVE] an approver approves a held call from the approvals page in the browser, as themself', async () => {
    const { key, record } = await createKey(ledger, { role: 'approver', name: 'e2e approver' }, { who: 'test', recorder: 'cli' });
    const signer = storeApproverKey(approverKeysDir(ledger.info), record.id, { name: 'erin@acme.example' });
    const id = await heldRequest(ledger, [signer.verifierKey]);
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    await page.goto(`${demo.origin}/approvals`);
    await signIn(page, key);
    expect(new URL(page.url()).pathname).toBe('/approvals');
    const form = page.locator('form.decide').filter({ has: page.locator(`input[name="request_id"][value="${id}"]`) });
    await form.locator('textarea[name="reason"]').fill('Checked the duplicate charge.');
    await shot(page, 'approvals-pending');
    await Promise.all([page.waitForURL(`${demo.origin}/approvals`), form.locator('button[value="approve"]').click()]);
    expect(await page.textContent('main')).toContain(`Approved request ${id} as erin@acme.example`);
    await shot(page, 'approvals-approved');
    const decision = (await ledger.query({ kind: 'approval.decision', limit: 1000 })).events.find((e) => e.data?.['request_id'] === id);
    expect(decision?.data).toMatchObject({ decision: 'approved', approver: 'erin@acme.example', reason: 'Checked the duplicate charge.' });
    await ctx.close();
  });

  it('[R-ACCESS-LOG] the auditor’s read of the session is an audit.access event in the ledger, and the ledger still verifies', async () => {
    const kept = fs.readFileSync(path.join(demo.dir, 'viewer-auditor.key'), 'utf8').trim();
    const keyId = /^wk_([0-9a-f]{16})_/.exec(kept)![1]!;
    const reads = (await ledger.query({ stream: 'witness.audit-access', kind: 'audit.access', limit: 1000 })).events.filter((e) => e.resource === demo.sessionId);
    const byAuditor = reads.filter((e) => e.data?.['key_id'] === keyId);
    expect(byAuditor.length).toBeGreaterThan(0);
    expect(byAuditor[0]!.data).toMatchObject({ role: 'auditor', operation: 'view', scope: { route: 'GET /session' } });
    const report = await verifyLedger(ledger);
    expect(report.failures).toEqual([]);
    expect(report.ok).toBe(true);
  });
});
