import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Capturer } from '../../src/capture/index.js';
import { openWitness } from '../../src/recorder/index.js';
import { readEvents, verifyFile } from '../helpers/ledger.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/**
 * A page that shows secrets as text (a settings page, a debug dump), screenshotted by the real
 * Chromium through `s.tool(…, { capture })`, which records through Session.shootAndRecord: the page
 * text, title and URL kept with the screenshot are redacted like every other recorded string.
 */

const dir = tempDir('witness-capture-redaction-');
const PAGE_API_KEY = 'page-ak-qwz-5521';
const PAGE_TOKEN = 'page-tok-qwz-8080';
const PAGE_JSON_PASSWORD = 'page-json-qwz-pw';
const PAGE_COOKIE = 'page-sess-qwz-77';
const TITLE_SECRET = 'title-pw-qwz-12';
const URL_AUTH = 'url-auth-qwz-404';

const server = http.createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  res.end(`<!doctype html><html><head><title>Settings (password: ${TITLE_SECRET})</title></head>
    <body style="font:20px sans-serif">
      <h1>Integration settings</h1>
      <p>Webhook: https://hooks.example/in?api_key=${PAGE_API_KEY}&amp;channel=ops</p>
      <p>Retry with token=${PAGE_TOKEN} after 3 s</p>
      <pre>{"service": "billing", "password": "${PAGE_JSON_PASSWORD}", "region": "eu-west-1"}</pre>
      <pre>Set-Cookie: session=${PAGE_COOKIE}; Path=/; HttpOnly</pre>
      <p>Balance: $1200 for customer C-1042</p>
    </body></html>`);
});

let base = '';
let capturer: Capturer;
beforeAll(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  capturer = new Capturer();
}, 60_000);
afterAll(async () => {
  await capturer?.close();
  server.close();
});

function ledgerFiles(db: string): string[] {
  return [db, `${db}-wal`, `${db}-shm`].filter((f) => fs.existsSync(f));
}

describe('redaction of captured page text', () => {
  it('[R-REDACT] records the text, title and URL of a captured page with the secrets it shows redacted', async () => {
    const store = tempDb(dir);
    const w = await openWitness({ store: `sqlite:${store}`, capturer, strict: true });
    try {
      const s = await w.session({ agent: { id: 'settings-bot' } });
      await s.tool('settings.view', { page: 'integrations' }, () => ({ ok: true }), { capture: { url: `${base}/settings?auth=${URL_AUTH}`, before: true, after: false } });
      await s.end();
    } finally {
      await w.close();
    }
    const events = await readEvents(store);
    const shot = events.find((e) => e.kind === 'capture')!;
    expect(shot).toBeDefined();
    const text = shot.data?.['text'] as string;
    // Positive control: the page text was captured, and what is not secret is kept.
    expect(text).toContain('Balance: $1200 for customer C-1042');
    expect(text).toContain(`api_key=[REDACTED:query-secret]&channel=ops`);
    expect(text).toContain('token=[REDACTED:assigned-secret] after 3 s');
    expect(text).toContain('"password": "[REDACTED:assigned-secret]", "region": "eu-west-1"');
    expect(text).toContain('Set-Cookie: [REDACTED:assigned-secret]');
    expect(shot.data?.['title']).toBe('Settings (password: [REDACTED:assigned-secret])');
    expect(shot.data?.['url']).toBe(`${base}/settings?auth=[REDACTED:query-secret]`);

    const secrets = [PAGE_API_KEY, PAGE_TOKEN, PAGE_JSON_PASSWORD, PAGE_COOKIE, TITLE_SECRET, URL_AUTH];
    const leaked = ledgerFiles(store).flatMap((f) => {
      const bytes = fs.readFileSync(f);
      return secrets.filter((s) => bytes.includes(Buffer.from(s))).map((s) => `${path.basename(f)}: ${s}`);
    });
    expect(leaked).toEqual([]);
    expect((await verifyFile(store)).ok).toBe(true);
  });
});
