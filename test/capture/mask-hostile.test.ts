import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Capturer } from '../../src/capture/index.js';
import { colours } from '../helpers/png.js';

/**
 * Masking that the captured page cannot switch off: the page's scripts may patch the DOM API,
 * remove the mask's overlay, make the masked element visible again or move it, and the stored PNG
 * still shows solid black where the secret is, and the recorded text still reads [masked]. Real
 * Chromium, pixels read back from the PNG.
 */

const SECRET = '4111 1111 1111 1111';
/** The secret's own background: where it shows in the PNG, the secret was drawn. */
const TELL = 'eeeeffff';
const STYLE = `<style>
  html, body { margin: 0; font: 24px DejaVu Sans, sans-serif; background: #fff; color: #111; }
  .secret { position: absolute; left: 40px; top: 100px; width: 300px; height: 40px; margin: 0; background: #eef; }
  h1 { position: absolute; left: 40px; top: 0; margin: 0; }
</style>`;

const PAGES: Record<string, string> = {
  // A page script (an ad, an injected widget, a compromised dependency) replaces the DOM methods
  // an in-page script would use.
  '/patched': `<script>
    const none = function () { return document.createDocumentFragment().childNodes; };
    Document.prototype.querySelectorAll = none;
    DocumentFragment.prototype.querySelectorAll = none;
    Element.prototype.querySelectorAll = none;
    Element.prototype.getBoundingClientRect = function () { return new DOMRect(0, 0, 0, 0); };
  </script>`,
  // A page (a framework re-rendering, or hostile) that undoes any change to its DOM at once.
  '/observer': `<script>
    new MutationObserver((records) => {
      for (const r of records) {
        for (const n of r.addedNodes) if (n.parentNode) n.parentNode.removeChild(n);
        if (r.type === 'attributes' && r.target.getAttribute('style') !== null) r.target.removeAttribute('style');
        if (r.type === 'characterData' && r.target.data !== r.oldValue) r.target.data = r.oldValue;
      }
    }).observe(document.documentElement, { subtree: true, childList: true, attributes: true, characterData: true, characterDataOldValue: true });
    setInterval(() => { for (const el of document.querySelectorAll('.secret')) { el.style.cssText = 'visibility: visible !important'; } }, 0);
  </script>`,
  // A page that moves the secret and makes it visible again as soon as the mask touches it: from a
  // MutationObserver and from a timer.
  '/moving': `<script>
    const el = document.querySelector('.secret');
    let done = false;
    const move = () => { el.style.cssText = 'left: 700px !important; top: 400px !important; visibility: visible !important'; };
    new MutationObserver(() => { if (done) return; done = true; move(); setTimeout(move, 0); }).observe(el, { attributes: true });
  </script>`,
  // The same without a line of script: the page's CSS moves the secret once an overlay is added to
  // the document, shows its text though the element is hidden, and clips any popover away.
  '/css': `<style>
    html:has(> div[popover]) .secret { left: 700px; top: 400px; }
    .secret span { visibility: visible !important; }
    div[popover] { clip-path: inset(50%) !important; }
  </style>`,
};

let base = '';
const server = http.createServer((req, res) => {
  const script = PAGES[req.url ?? ''] ?? '';
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  res.end(`<!doctype html><html><head><title>Hostile</title>${STYLE}</head><body><h1>Account</h1><p class="secret"><span>Card ${SECRET}</span></p>${script}</body></html>`);
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

describe('masking in a page that fights it', () => {
  for (const [path, what] of [
    ['/patched', 'patches querySelectorAll and getBoundingClientRect'],
    ['/observer', 'removes added elements, strips styles and restores text at once'],
    ['/moving', 'moves the secret and makes it visible when the mask touches it'],
    ['/css', 'moves the secret, shows its text and clips overlays away in its CSS alone'],
  ] as const) {
    it(`a page that ${what} still has its secret stored as solid black pixels and read as [masked] [R-MASK]`, async () => {
      const shot = (await capturer.shoot({ url: `${base}${path}`, mask: ['.secret'], after: false }, {}, 'before'))!;
      const png = PNG.sync.read(shot.png);
      expect([png.width, png.height]).toEqual([1280, 720]);
      expect(colours(png, 40, 100, 300, 40)).toEqual(['000000ff']);
      if (path === '/css') expect(colours(png, 700, 400, 300, 40)).toEqual(['000000ff']);
      // Nowhere else in the shot is the secret's box drawn either (it would be, wherever it moved).
      expect(colours(png, 0, 0, png.width, png.height)).not.toContain(TELL);
      // Positive control: the page itself is drawn.
      expect(colours(png, 40, 0, 300, 40).length).toBeGreaterThan(1);
      expect(shot.masked).toBe(1);
      expect(shot.text).not.toContain('4111');
      expect(shot.text).toContain('[masked]');
    }, 60_000);
  }

  it('masks a secret that moves in a full-page shot too [R-MASK]', async () => {
    const shot = (await capturer.shoot({ url: `${base}/css`, mask: ['.secret'], fullPage: true, after: false }, {}, 'before'))!;
    const png = PNG.sync.read(shot.png);
    expect(colours(png, 40, 100, 300, 40)).toEqual(['000000ff']);
    expect(colours(png, 700, 400, 300, 40)).toEqual(['000000ff']);
    expect(colours(png, 0, 0, png.width, png.height)).not.toContain(TELL);
    expect(shot.text).not.toContain('4111');
  }, 60_000);
});
