import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toVtt } from '../../../src/capture/index.js';
import {
  PATHS,
  buildSessionModel,
  chaptersVtt,
  overviewBuckets,
  renderApprovalsPage,
  renderErrorPage,
  renderIntegrityPage,
  renderOverviewPage,
  renderSessionPage,
  renderSessionsPage,
  renderSignInPage,
  sessionRow,
  viewerHeaders,
  STYLESHEET,
  type Chrome,
} from '../../../src/server/views/index.js';
import { tempDir } from '../../helpers/tmp.js';
import { ALL_HOSTILE, HOSTILE, buildFixture, makeMp4, type Fixture } from './fixture.js';

/**
 * The pages in real Chromium, served the way the route layer will serve them: each with
 * viewerHeaders() (the CSP), the stylesheet from its own path, artifacts by digest from the ledger,
 * chapters from the video's event. Hostile pages must fire no dialog and send no request beyond
 * those; every page is screenshot under test-artifacts/views/ for a person to look at.
 */

// The browser globals the page functions below use, typed here because the project compiles
// without the DOM library (module-scoped: nothing leaks into other files).
interface El {
  tagName: string;
  attributes: Iterable<{ name: string }>;
  getAttribute(name: string): string | null;
  getBoundingClientRect(): { x: number; y: number; left: number; top: number; width: number; height: number };
  complete?: boolean;
  naturalWidth?: number;
}
interface VideoEl extends El {
  textTracks: Iterable<{ kind: string; mode: string; cues: Iterable<{ text: string }> | null }>;
  muted: boolean;
  play(): Promise<void>;
  pause(): void;
  error: { code: number } | null;
  duration: number;
  currentTime: number;
}
declare const document: { querySelectorAll(selector: string): Iterable<El> & ArrayLike<El>; querySelector(selector: string): El | null; body: { innerText: string }; documentElement: El };
declare function getComputedStyle(el: El): { display: string; maxHeight: string; fontFamily: string };

const ARTIFACTS = path.resolve('test-artifacts/views');
const dir = tempDir('witness-views-browser-');
let browser: Browser;
let server: http.Server;
let leak: http.Server;
let base = '';
let leakUrl = '';
const leakHits: string[] = [];
const pages = new Map<string, string>();
let fixtures: { hostile: Fixture; plain: Fixture };

function listen(s: http.Server): Promise<string> {
  return new Promise((resolve) => s.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(s.address() as AddressInfo).port}`)));
}

/** The before and after screens of the fixture's refund: a record page, its refund row changed. */
async function screens(b: Browser): Promise<{ before: Buffer; after: Buffer }> {
  const page = await b.newPage({ viewport: { width: 640, height: 400 } });
  const shot = async (status: string, mark: boolean) => {
    await page.setContent(
      `<body style="font:16px sans-serif;margin:0;padding:24px;background:#fff"><h2 style="margin:0 0 16px">Customer C-1042 · Order 1042</h2>` +
        `<p>Item: Espresso machine · $650.00</p><p>Delivered 2026-11-20 · reported damaged</p>` +
        `<div style="position:absolute;left:40px;top:150px;width:360px;height:90px;display:flex;align-items:center;justify-content:center;background:${mark ? '#dafbe1' : '#f6f8fa'};border:1px solid #ccc">Refund: ${status}</div></body>`,
    );
    return page.screenshot({ type: 'png' });
  };
  const before = await shot('none', false);
  const after = await shot('$650.00 refunded (R-2001)', true);
  await page.close();
  return { before, after };
}

beforeAll(async () => {
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  leak = http.createServer((req, res) => {
    leakHits.push(req.url ?? '');
    res.end();
  });
  leakUrl = await listen(leak);
  const png = await screens(browser);
  const mp4 = makeMp4(dir);
  const captions = toVtt([
    { start: 0, end: 1, text: 'Step 1. The agent called refund.' },
    { start: 1, end: 2, text: 'alice approved it.' },
  ]);
  fixtures = {
    hostile: await buildFixture(dir, { leak: leakUrl, png, mp4, captions }),
    plain: await buildFixture(dir, { leak: leakUrl, png, mp4, captions, plain: true }),
  };
  const byDigest = new Map<string, { fx: Fixture; mime: string }>();
  for (const fx of [fixtures.hostile, fixtures.plain]) {
    byDigest.set(fx.shots.before, { fx, mime: 'image/png' });
    byDigest.set(fx.shots.after, { fx, mime: 'image/png' });
    byDigest.set(fx.video.mp4, { fx, mime: 'video/mp4' });
    byDigest.set(fx.video.vtt, { fx, mime: 'text/vtt' });
  }
  server = http.createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://x');
      const art = /^\/v1\/artifacts\/([0-9a-f]{64})$/.exec(url.pathname);
      const chapters = /^\/video\/([0-9a-f-]{36})\/chapters\.vtt$/.exec(url.pathname);
      if (url.pathname.startsWith('/page/') && pages.has(url.pathname.slice(6))) {
        res.writeHead(200, viewerHeaders()).end(pages.get(url.pathname.slice(6)));
      } else if (url.pathname === PATHS.stylesheet) {
        res.writeHead(200, { 'Content-Type': 'text/css; charset=utf-8', 'X-Content-Type-Options': 'nosniff' }).end(STYLESHEET);
      } else if (art !== null && byDigest.has(art[1]!)) {
        const { fx, mime } = byDigest.get(art[1]!)!;
        const bytes = await fx.ledger.readArtifact(art[1]!);
        res.writeHead(200, { 'Content-Type': mime, 'X-Content-Type-Options': 'nosniff', 'Content-Length': bytes!.length }).end(bytes);
      } else if (chapters !== null) {
        const fx = [fixtures.hostile, fixtures.plain].find((f) => f.ids.video === chapters[1]);
        const model = fx === undefined ? undefined : buildSessionModel(fx.events, { chrome: {} }).video;
        if (model === undefined) res.writeHead(404).end();
        else res.writeHead(200, { 'Content-Type': 'text/vtt; charset=utf-8' }).end(chaptersVtt(model.chapters));
      } else {
        res.writeHead(404).end();
      }
    })();
  });
  base = await listen(server);
  fs.mkdirSync(ARTIFACTS, { recursive: true });
});

afterAll(async () => {
  await browser?.close();
  await new Promise((r) => server?.close(r));
  await new Promise((r) => leak?.close(r));
  await fixtures?.hostile.ledger.close();
  await fixtures?.plain.ledger.close();
});

interface Visit {
  page: Page;
  dialogs: string[];
  requests: string[];
  cspViolations: string[];
}

async function visit(name: string, html: string, options: { print?: boolean; width?: number } = {}): Promise<Visit> {
  pages.set(name, html);
  const page = await browser.newPage({ viewport: { width: options.width ?? 1280, height: 800 } });
  const v: Visit = { page, dialogs: [], requests: [], cspViolations: [] };
  page.on('dialog', (d) => {
    v.dialogs.push(d.message());
    void d.dismiss();
  });
  page.on('request', (r) => v.requests.push(r.url()));
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) v.cspViolations.push(m.text());
  });
  if (options.print === true) await page.emulateMedia({ media: 'print' });
  await page.goto(`${base}/page/${name}`, { waitUntil: 'load' });
  await page.waitForLoadState('networkidle');
  return v;
}

/** Every request a page may make: itself, the stylesheet, artifacts by digest, the chapters file. */
function allowedRequest(url: string): boolean {
  if (!url.startsWith(`${base}/`)) return false;
  const p = url.slice(base.length);
  return /^\/page\/[a-z-]+$/.test(p) || p === PATHS.stylesheet || /^\/v1\/artifacts\/[0-9a-f]{64}$/.test(p) || /^\/video\/[0-9a-f-]{36}\/chapters\.vtt$/.test(p);
}

const auditor: Chrome = { user: { name: 'ada@audit.example', role: 'auditor' }, csrfToken: 'tok-123', pendingApprovals: 1 };
const hostileChrome: Chrome = { user: { name: `eve ${HOSTILE.quote}${HOSTILE.script}`, role: 'auditor' }, csrfToken: `tok${HOSTILE.quote}` };

function hostilePages(): Record<string, string> {
  const fx = fixtures.hostile;
  const row = sessionRow(fx.events);
  return {
    'hostile-session': renderSessionPage(buildSessionModel(fx.events, { chrome: hostileChrome, integrity: { state: 'failed', text: ALL_HOSTILE } })),
    'hostile-sessions': renderSessionsPage({ chrome: hostileChrome, filters: { agent: ALL_HOSTILE }, sessions: [row, { ...row, id: ALL_HOSTILE, agent: ALL_HOSTILE }], next: ALL_HOSTILE }),
    'hostile-approvals': renderApprovalsPage({
      chrome: hostileChrome,
      now: '2026-11-23T10:01:00.000Z',
      pending: [
        {
          requestId: ALL_HOSTILE,
          session: HOSTILE.jsUrl,
          agent: ALL_HOSTILE,
          tool: ALL_HOSTILE,
          arguments: { html: ALL_HOSTILE },
          argumentsDigest: ALL_HOSTILE,
          rule: ALL_HOSTILE,
          reason: ALL_HOSTILE,
          requestedAt: '2026-11-23T10:00:00.000Z',
          expiresAt: '2026-11-23T10:05:00.000Z',
          approvers: [ALL_HOSTILE],
        },
      ],
    }),
    'hostile-integrity': renderIntegrityPage({
      chrome: hostileChrome,
      ledger: { origin: ALL_HOSTILE, size: 3 },
      signers: [{ name: ALL_HOSTILE, fingerprint: ALL_HOSTILE, source: 'ledger' }],
      checkpoint: { id: 1, size: 3, ts: ALL_HOSTILE, rootHex: ALL_HOSTILE },
      last: {
        at: ALL_HOSTILE,
        ok: false,
        unverifiable: false,
        events: 3,
        checkpoints: 1,
        sealedSize: 3,
        unsealed: 0,
        firstFailure: ALL_HOSTILE,
        failures: 2,
        trust: ALL_HOSTILE,
        signers: [],
        warnings: [ALL_HOSTILE],
      },
    }),
    'hostile-sign-in': renderSignInPage({ csrfToken: ALL_HOSTILE, oidc: { label: ALL_HOSTILE }, error: ALL_HOSTILE, next: ALL_HOSTILE }),
    'hostile-error': renderErrorPage({ status: 400, code: ALL_HOSTILE, message: ALL_HOSTILE, chrome: hostileChrome }),
  };
}

describe('hostile recorded text in real Chromium, under the viewer CSP', () => {
  it('[R-VIEWER-INERT] fires no dialog, runs no handler, loads nothing from elsewhere, and the pages need nothing the CSP refuses', async () => {
    for (const [name, html] of Object.entries(hostilePages())) {
      const v = await visit(name, html);
      try {
        const dom = await v.page.evaluate(() => ({
          scripts: document.querySelectorAll('script, iframe, object, embed').length,
          handlers: [...document.querySelectorAll('*')].flatMap((el) => [...el.attributes].filter((a) => a.name.startsWith('on')).map((a) => `${el.tagName}.${a.name}`)),
          links: [...document.querySelectorAll('[href], [src], [action]')].map((el) => el.getAttribute('href') ?? el.getAttribute('src') ?? el.getAttribute('action') ?? ''),
          text: document.body.innerText,
        }));
        expect(v.dialogs, name).toEqual([]);
        expect(
          v.requests.filter((u) => !allowedRequest(u)),
          name,
        ).toEqual([]);
        expect(v.cspViolations, name).toEqual([]);
        expect(dom.scripts, name).toBe(0);
        expect(dom.handlers, name).toEqual([]);
        expect(
          dom.links.filter((l) => !l.startsWith('/') || l.startsWith('//')),
          name,
        ).toEqual([]);
        // The hostile text is there for a reader to see, as text.
        expect(dom.text, name).toContain('<script>alert("script-1")</script>');
        // Hovering the element where an attribute injection would have landed runs nothing either.
        await v.page.hover('h1');
        await v.page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
      } finally {
        await v.page.close();
      }
    }
    expect(leakHits).toEqual([]);
  });
});

describe('the pages as a person sees them', () => {
  it('the session timeline shows both screenshots side by side with the changed region, and the narrated video plays with captions and chapters', async () => {
    const fx = fixtures.plain;
    const model = buildSessionModel(fx.events, {
      chrome: auditor,
      integrity: { state: 'verified', text: 'All 17 events of this session are in checkpoint 3 (signed 2026-11-23 10:03:00 UTC by views+1a2b3c4d).' },
    });
    const v = await visit('session', renderSessionPage(model));
    try {
      expect(v.cspViolations).toEqual([]);
      expect(v.requests.filter((u) => !allowedRequest(u))).toEqual([]);
      const shots = await v.page.evaluate(() =>
        [...document.querySelectorAll('.shots img')].map((img) => {
          const r = img.getBoundingClientRect();
          return { loaded: img.complete === true && (img.naturalWidth ?? 0) > 0, x: Math.round(r.x), y: Math.round(r.y), w: Math.round(r.width) };
        }),
      );
      expect(shots).toHaveLength(2);
      expect(shots.every((s) => s.loaded)).toBe(true);
      // Side by side: same row, the after screen to the right of the before screen.
      expect(shots[0]!.y).toBe(shots[1]!.y);
      expect(shots[1]!.x).toBeGreaterThan(shots[0]!.x + shots[0]!.w - 1);
      const box = await v.page.evaluate(() => {
        const rect = document.querySelector('rect.changed')!.getBoundingClientRect();
        const img = document.querySelectorAll('.shots img')[1]!.getBoundingClientRect();
        return { left: (rect.left - img.left) / img.width, top: (rect.top - img.top) / img.height, width: rect.width / img.width };
      });
      // 40/640, 150/400, 360/640 of the image: the outline sits on the changed row.
      expect(box.left).toBeCloseTo(40 / 640, 2);
      expect(box.top).toBeCloseTo(150 / 400, 2);
      expect(box.width).toBeCloseTo(360 / 640, 2);

      await v.page.evaluate(async () => {
        const video = document.querySelector('video') as VideoEl;
        for (const t of video.textTracks) t.mode = 'hidden';
        video.muted = true;
        await video.play();
        await new Promise((r) => setTimeout(r, 600));
        video.pause();
      });
      const video = await v.page.evaluate(() => {
        const el = document.querySelector('video') as VideoEl;
        const tracks = [...el.textTracks].map((t) => ({ kind: t.kind, cues: [...(t.cues ?? [])].map((c) => c.text) }));
        return { error: el.error?.code ?? null, duration: el.duration, currentTime: el.currentTime, tracks };
      });
      expect(video.error).toBeNull();
      expect(video.duration).toBeCloseTo(2, 0);
      expect(video.currentTime).toBeGreaterThan(0);
      expect(video.tracks).toEqual([
        { kind: 'captions', cues: ['Step 1. The agent called refund.', 'alice approved it.'] },
        { kind: 'chapters', cues: ['Overview', 'Step 1: refund', 'Summary'] },
      ]);
      await v.page.evaluate(() => {
        const el = document.querySelector('video') as VideoEl;
        el.currentTime = 0;
      });
      await v.page.screenshot({ path: path.join(ARTIFACTS, 'session.png'), fullPage: true });
    } finally {
      await v.page.close();
    }
    const print = await visit('session-print', renderSessionPage(model), { print: true, width: 800 });
    try {
      const hidden = await print.page.evaluate(() => ({
        nav: getComputedStyle(document.querySelector('.top nav')!).display,
        video: getComputedStyle(document.querySelector('video')!).display,
        pre: getComputedStyle(document.querySelector('pre')!).maxHeight,
      }));
      expect(hidden).toEqual({ nav: 'none', video: 'none', pre: 'none' });
      await print.page.screenshot({ path: path.join(ARTIFACTS, 'session-print.png'), fullPage: true });
    } finally {
      await print.page.close();
    }
  });

  it('every other page renders under the CSP with its stylesheet applied', async () => {
    const fx = fixtures.plain;
    const from = '2026-11-23T09:00:00.000Z';
    const to = '2026-11-23T11:00:00.000Z';
    const buckets = overviewBuckets(fx.events, { from, to, buckets: 24 });
    const rendered: Record<string, string> = {
      sessions: renderSessionsPage({
        chrome: auditor,
        filters: { agent: 'support-bot' },
        sessions: [
          sessionRow(fx.events),
          { id: '01a24bad-b732-74dc-84d0-0a09eec8d23d', agent: 'ops-bot', started: '2026-11-23T09:12:00.000Z', counts: { events: 4, toolCalls: 1, denials: 0, approvals: 0 } },
        ],
        next: 'c2',
      }),
      approvals: renderApprovalsPage({
        chrome: auditor,
        now: '2026-11-23T10:02:00.000Z',
        pending: [
          {
            requestId: fx.ids.request,
            session: fx.session,
            agent: 'support-bot',
            principal: 'customer-12345',
            tool: 'refund',
            server: 'billing',
            arguments: { customer_id: 'C-1042', amount: 650, reason: 'Parcel arrived damaged' },
            argumentsDigest: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
            rule: 'refunds-over-500',
            policyVersion: '823412d1eacb67956220e532959f0104603057c88704863ca38e7cd188fda812',
            reason: 'Refunds over $500 need a supervisor',
            requestedAt: '2026-11-23T10:00:05.000Z',
            expiresAt: '2026-11-23T10:10:05.000Z',
            approvers: ['alice@acme.example', 'bob@acme.example'],
          },
        ],
      }),
      integrity: renderIntegrityPage({
        chrome: auditor,
        ledger: { origin: 'views/witness/01a24bad-b34f-77c2-ac10-646cf2a55ec1', size: 1200, location: '/var/lib/witness/witness.db' },
        checkpoint: { id: 3, size: 1190, ts: '2026-11-23T10:59:50.000Z', rootHex: '5f2c1bd0d7a3a1c7e1e8b5b5e3f0c2d4a6b8c0d2e4f6a8b0c2d4e6f8a0b2c4d6' },
        signers: [{ name: 'views', fingerprint: 'views+1a2b3c4d', source: 'pinned' }],
        last: {
          at: '2026-11-23T11:00:00.000Z',
          ok: true,
          unverifiable: false,
          events: 1200,
          checkpoints: 3,
          sealedSize: 1190,
          unsealed: 10,
          failures: 0,
          trust: 'Checkpoints were verified with 1 signing key pinned by the auditor (--trusted-key).',
          signers: [{ name: 'views', fingerprint: 'views+1a2b3c4d', source: 'pinned' }],
          warnings: [],
          durationMs: 850,
        },
      }),
      overview: renderOverviewPage({
        chrome: auditor,
        from,
        to,
        buckets,
        totals: { events: 17, sessions: 1, toolCalls: 2, denials: 1, approvals: 1, pendingApprovals: 1, recordingErrors: 1 },
        checkpoint: { size: 17, ts: '2026-11-23T10:03:00.000Z' },
      }),
      'sign-in': renderSignInPage({ csrfToken: 'pre-1', oidc: { label: 'Acme SSO' }, error: 'That key is not valid or was revoked.' }),
      error: renderErrorPage({
        status: 403,
        code: 'forbidden',
        message: 'Your role (developer) cannot approve calls; ask an approver.',
        chrome: { ...auditor, user: { name: 'dev@acme.example', role: 'developer' } },
      }),
    };
    for (const [name, html] of Object.entries(rendered)) {
      const v = await visit(name, html);
      try {
        expect(v.cspViolations, name).toEqual([]);
        expect(
          v.requests.filter((u) => !allowedRequest(u)),
          name,
        ).toEqual([]);
        // The stylesheet arrived and applies (system font stack on the root).
        expect(await v.page.evaluate(() => getComputedStyle(document.documentElement).fontFamily), name).toMatch(/system-ui/);
        await v.page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
      } finally {
        await v.page.close();
      }
    }
  });
});
