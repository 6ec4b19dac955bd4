import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Capturer } from '../../src/capture/index.js';
import type { StoredEvent } from '../../src/core/index.js';
import { openWitness } from '../../src/recorder/index.js';
import { buildSessionModel, renderSessionPage } from '../../src/server/views/index.js';
import { thrown } from '../helpers/errors.js';
import { artifactFile, verifyFile, readEvents } from '../helpers/ledger.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/**
 * Screenshots with the real Chromium from Debian (scripts/setup-system.sh installs it), of a real
 * page served on loopback whose state the "tool" changes, recorded through the SDK into SQLite.
 */

const dir = tempDir('witness-capture-');
const balances = new Map<string, number>([['C-1042', 1200]]);

// Fixed layout, so the test knows where the balance and the card number are drawn.
function page(id: string): string {
  const balance = balances.get(id);
  return `<!doctype html><html><head><title>Customer ${id}</title><style>
    body { margin: 0; font: 32px DejaVu Sans, sans-serif; background: #fff; color: #111; }
    #balance { position: absolute; left: 40px; top: 100px; width: 600px; height: 60px; }
    .card-number { position: absolute; left: 40px; top: 300px; width: 600px; height: 60px; background: #eef; }
  </style></head><body>
    <h1 style="position:absolute;left:40px;top:0;margin:0">Customer ${id}</h1>
    <div id="balance">Balance: $${balance}</div>
    <div class="card-number">Card 4111 1111 1111 1111</div>
  </body></html>`;
}

let base = '';
const server = http.createServer((req, res) => {
  const m = /^\/customers\/([^/]+)$/.exec(req.url ?? '');
  if (req.url === '/slow') return void setTimeout(() => res.end('late'), 5000);
  if (req.url === '/broken') {
    res.writeHead(500, { 'content-type': 'text/html' });
    return void res.end('<h1>Internal error</h1>');
  }
  if (m === null || !balances.has(decodeURIComponent(m[1]!))) {
    res.writeHead(404);
    return void res.end('not found');
  }
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  res.end(page(decodeURIComponent(m[1]!)));
});

let capturer: Capturer;
beforeAll(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  capturer = new Capturer();
  await capturer.browser.warm();
}, 60_000);
afterAll(async () => {
  await capturer?.close();
  server.close();
});

function region(png: PNG, x0: number, y0: number, w: number, h: number): Buffer {
  const out = Buffer.alloc(w * h * 4);
  for (let y = 0; y < h; y++) png.data.copy(out, y * w * 4, ((y0 + y) * png.width + x0) * 4, ((y0 + y) * png.width + x0 + w) * 4);
  return out;
}

describe('captures around a tool call', () => {
  it('stores before and after PNGs bound to the call, whose pixels and text show the balance change, with the card number masked in both [R-CAPTURE-BOUND] [R-MASK]', async () => {
    const store = tempDb(dir);
    const w = await openWitness({ store: `sqlite:${store}`, capturer, strict: true });
    let s;
    try {
      s = await w.session({ agent: { id: 'billing-bot' } });
      const result = await s.tool(
        'billing.refund',
        { customer_id: 'C-1042', amount: 650 },
        () => {
          balances.set('C-1042', balances.get('C-1042')! - 650);
          return { refund_id: 'R-1', status: 'succeeded' };
        },
        { capture: { url: `${base}/customers/{customer_id}`, mask: ['.card-number'] } },
      );
      expect(result).toEqual({ refund_id: 'R-1', status: 'succeeded' });
      await s.end();
    } finally {
      await w.close();
    }
    const evs = await readEvents(store);
    expect(evs.map((e) => `${e.kind}${e.kind === 'capture' ? `:${String(e.data?.['role'])}` : ''}`)).toEqual([
      'session.start',
      'tool.call',
      'capture:before',
      'tool.result',
      'capture:after',
      'session.end',
    ]);
    const call = evs[1]!;
    const [before, after] = [evs[2]!, evs[4]!];
    for (const c of [before, after]) {
      expect(c.parent).toBe(call.id);
      expect(c.data).toMatchObject({ url: `${base}/customers/C-1042`, viewport: { width: 1280, height: 720 }, title: 'Customer C-1042', http_status: 200, masked_selectors: ['.card-number'] });
      expect(c.artifacts).toEqual([expect.objectContaining({ mime: 'image/png', role: c.data?.['role'] })]);
      expect(String(c.data?.['text'])).not.toContain('4111');
      expect(String(c.data?.['text'])).toContain('[masked]');
    }
    expect(before.data?.['text']).toContain('Balance: $1200');
    expect(after.data?.['text']).toContain('Balance: $550');
    // The after shot names where it differs from the before shot: inside the balance line, not the whole page.
    expect(before.data?.['changed_region']).toBeUndefined();
    const changed = after.data?.['changed_region'] as { x: number; y: number; width: number; height: number };
    expect(changed).toMatchObject({ image_width: 1280, image_height: 720 });
    expect([changed.x >= 40, changed.y >= 100, changed.x + changed.width <= 640, changed.y + changed.height <= 160, changed.width > 0]).toEqual([true, true, true, true, true]);
    // The viewer draws it over the after screenshot, from the recorded event.
    const html = renderSessionPage(buildSessionModel(evs, { chrome: {} }));
    expect(html).toContain(`<rect class="changed" x="${changed.x}" y="${changed.y}" width="${changed.width}" height="${changed.height}"></rect>`);

    const png = (e: StoredEvent) => PNG.sync.read(fs.readFileSync(artifactFile(store, e.artifacts![0]!.sha256)));
    const [a, b] = [png(before), png(after)];
    expect([a.width, a.height]).toEqual([1280, 720]);
    // The balance line differs; the title above it does not.
    expect(region(a, 40, 100, 600, 60).equals(region(b, 40, 100, 600, 60))).toBe(false);
    expect(region(a, 40, 0, 600, 60).equals(region(b, 40, 0, 600, 60))).toBe(true);
    // The masked card number is one uniform black box, in both images.
    for (const img of [a, b]) {
      const box = region(img, 42, 302, 596, 56);
      const colours = new Set<string>();
      for (let i = 0; i < box.length; i += 4) colours.add(box.subarray(i, i + 4).toString('hex'));
      expect([...colours]).toEqual(['000000ff']);
    }
    expect((await verifyFile(store)).ok).toBe(true);

    // One byte of a stored screenshot changed: verification names the artifact.
    const file = artifactFile(store, before.artifacts![0]!.sha256);
    const bytes = fs.readFileSync(file);
    bytes[bytes.length - 20] = bytes[bytes.length - 20]! ^ 0x01;
    fs.chmodSync(file, 0o644);
    fs.writeFileSync(file, bytes);
    const report = await verifyFile(store);
    expect(report.ok).toBe(false);
    expect(report.failures.map((f) => [f.code, f.artifact])).toContainEqual(['artifact_mismatch', before.artifacts![0]!.sha256]);
  });

  it('records a page that fails to load, times out or lacks an argument as an error event, and the tool call still completes [R-CAPTURE-SAFE]', async () => {
    const store = tempDb(dir);
    const w = await openWitness({ store: `sqlite:${store}`, capturer, strict: true });
    try {
      const s = await w.session({ agent: { id: 'billing-bot' } });
      const closed = http.createServer();
      await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
      const deadPort = (closed.address() as AddressInfo).port;
      await new Promise<void>((r) => closed.close(() => r()));
      const results = [
        await s.tool('lookup', { id: 1 }, () => 'ok-1', { capture: { url: `http://127.0.0.1:${deadPort}/x`, after: false } }),
        await s.tool('lookup', { id: 2 }, () => 'ok-2', { capture: { url: `${base}/slow`, after: false, timeoutMs: 300 } }),
        await s.tool('lookup', { id: 3 }, () => 'ok-3', { capture: { url: `${base}/customers/{customer_id}`, after: false } }),
        await s.tool('lookup', { id: 4 }, () => 'ok-4', { capture: { url: 'file:///etc/passwd', after: false } }),
        await s.tool('lookup', { id: 5 }, () => 'ok-5', { capture: { url: `${base}/broken`, after: false } }),
      ];
      expect(results).toEqual(['ok-1', 'ok-2', 'ok-3', 'ok-4', 'ok-5']);
      await s.end();
    } finally {
      await w.close();
    }
    const evs = await readEvents(store);
    const errors = evs.filter((e) => e.kind === 'error');
    expect(errors.map((e) => e.data?.['source'])).toEqual(['capture', 'capture', 'capture', 'capture']);
    expect(errors.map((e) => e.data?.['code'])).toEqual(['capture_failed', 'capture_failed', 'capture_failed', 'capture_failed']);
    expect(String(errors[0]!.data?.['message'])).toMatch(/could not be captured: .*ERR_CONNECTION_REFUSED/);
    expect(String(errors[1]!.data?.['message'])).toMatch(/could not be captured: .*Timeout 300ms exceeded/);
    expect(String(errors[2]!.data?.['message'])).toBe(`The capture URL ${base}/customers/{customer_id} needs the argument customer_id, which this call does not have as a string or number.`);
    expect(String(errors[3]!.data?.['message'])).toMatch(/is not http or https/);
    const calls = evs.filter((e) => e.kind === 'tool.call');
    expect(errors.map((e) => e.parent)).toEqual(calls.slice(0, 4).map((e) => e.id));
    // A 500 page is still evidence: captured, with its status.
    expect(evs.find((e) => e.kind === 'capture')!.data).toMatchObject({ http_status: 500, text: 'Internal error' });
    expect(evs.filter((e) => e.kind === 'tool.result').every((e) => e.outcome === 'success')).toBe(true);
  });

  it('keeps every argument inside its path segment: "..", "." and values with / \\ ? # or %2e never change which page is captured [R-CAPTURE-SAFE]', async () => {
    // A lenient web server that answers every path, so a climbed path would be captured, not 404.
    const requested: string[] = [];
    const site = http.createServer((req, res) => {
      if (req.url !== '/favicon.ico') requested.push(req.url ?? '');
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(req.url?.startsWith('/customers/') ? '<title>Customer</title>customer page' : '<title>Admin</title>ADMIN CONSOLE');
    });
    await new Promise<void>((r) => site.listen(0, '127.0.0.1', r));
    const origin = `http://127.0.0.1:${(site.address() as AddressInfo).port}`;
    const store = tempDb(dir);
    const w = await openWitness({ store: `sqlite:${store}`, capturer, strict: true });
    // Each value, and the single path segment the server must see (undefined: refused, nothing requested).
    const cases: Array<[string, string | undefined]> = [
      ['..', undefined],
      ['.', undefined],
      ['%2e%2e', '%252e%252e'],
      ['.%2E', '.%252E'],
      ['../admin', '..%2Fadmin'],
      ['a/../../admin', 'a%2F..%2F..%2Fadmin'],
      ['..\\..\\admin', '..%5C..%5Cadmin'],
      ['x?debug=1', 'x%3Fdebug%3D1'],
      ['x#top', 'x%23top'],
      ['...', '...'],
      ['C-1042', 'C-1042'],
    ];
    try {
      const s = await w.session({ agent: { id: 'billing-bot' } });
      for (const [value] of cases) {
        expect(await s.tool('lookup', { customer_id: value }, () => `ok ${value}`, { capture: { url: `${origin}/customers/{customer_id}/profile`, after: false } })).toBe(`ok ${value}`);
      }
      // Two placeholders that make ".." only together are refused too; a ".." in the query is harmless.
      expect(await s.tool('lookup', { a: '.', b: '.' }, () => 'ok', { capture: { url: `${origin}/customers/{a}{b}/profile`, after: false } })).toBe('ok');
      expect(await s.tool('lookup', { q: '..' }, () => 'ok', { capture: { url: `${origin}/customers/search?q={q}`, after: false } })).toBe('ok');
      await s.end();
    } finally {
      await w.close();
      site.close();
    }
    expect(requested).toEqual([...cases.filter(([, seg]) => seg !== undefined).map(([, seg]) => `/customers/${seg}/profile`), '/customers/search?q=..']);
    const evs = await readEvents(store);
    expect(evs.filter((e) => e.kind === 'capture').every((e) => e.data?.['title'] === 'Customer')).toBe(true);
    const errors = evs.filter((e) => e.kind === 'error');
    expect(errors.map((e) => e.data?.['message'])).toEqual([
      `The capture URL ${origin}/customers/{customer_id}/profile would get the path segment ".." from this call's arguments, which would leave the page it names; the page was not captured.`,
      `The capture URL ${origin}/customers/{customer_id}/profile would get the path segment "." from this call's arguments, which would leave the page it names; the page was not captured.`,
      `The capture URL ${origin}/customers/{a}{b}/profile would get the path segment ".." from this call's arguments, which would leave the page it names; the page was not captured.`,
    ]);
    expect(errors.map((e) => e.data?.['code'])).toEqual(['capture_failed', 'capture_failed', 'capture_failed']);
    expect(evs.filter((e) => e.kind === 'tool.result').every((e) => e.outcome === 'success')).toBe(true);
  });

  it('names the missing Chromium and the command that installs it, in one sentence [R-MISSING-PROGRAM]', () => {
    for (const make of [() => new Capturer({ executablePath: '/nonexistent/chromium' }), () => new Capturer({ env: { ...process.env, WITNESS_CHROMIUM: '/nonexistent/chromium' } })]) {
      const err = thrown(make);
      expect(err.code).toBe('missing_program');
      expect((err as Error).message).toBe(
        'chromium is not installed (looked at /nonexistent/chromium); install it with `sudo sh scripts/setup-system.sh` (or `apt-get install chromium`), or set WITNESS_CHROMIUM to its path.',
      );
    }
  });
});
