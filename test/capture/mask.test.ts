import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Capturer } from '../../src/capture/index.js';
import { thrown } from '../helpers/errors.js';
import { colours } from '../helpers/png.js';

/**
 * Masking where a plain `document.querySelectorAll` and a plain overlay would fail: inside a web
 * component's shadow root, inside a modal dialog (the top layer, painted above any z-index), below
 * the fold of a full-page shot. Real Chromium, pixels read back from the PNG.
 */

const SECRET = '4111 1111 1111 1111';
const PAGE = `<!doctype html><html><head><title>Masking</title><style>
  html, body { margin: 0; font: 24px DejaVu Sans, sans-serif; background: #fff; color: #111; }
  .secret { position: absolute; width: 300px; height: 40px; margin: 0; background: #eef; }
  #light { left: 40px; top: 100px; }
  card-box { position: absolute; left: 40px; top: 200px; width: 300px; height: 40px; }
  dialog { position: fixed; left: 400px; top: 300px; margin: 0; padding: 0; border: 0; width: 300px; height: 40px; }
  dialog .secret { position: static; }
  #deep { left: 40px; top: 1500px; }
  #end { position: absolute; left: 0; top: 1960px; height: 40px; }
</style></head><body>
  <h1 style="position:absolute;left:40px;top:0;margin:0">Account</h1>
  <p class="secret" id="light">Card ${SECRET}</p>
  <card-box></card-box>
  <p class="secret" id="deep">Deep ${SECRET}</p>
  <p id="end">end of page</p>
  <dialog><p class="secret">Dialog ${SECRET}</p></dialog>
  <script>
    customElements.define('card-box', class extends HTMLElement {
      constructor() {
        super();
        this.attachShadow({ mode: 'open' }).innerHTML = '<style>p { margin: 0; width: 300px; height: 40px; background: #efe; }</style><p class="secret">Shadow ${SECRET}</p>';
      }
    });
    document.querySelector('dialog').showModal();
  </script>
</body></html>`;

let base = '';
const server = http.createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  res.end(PAGE);
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

describe('masking', () => {
  it('paints solid black over masked elements in the page, in an open shadow root and in a modal dialog, and reads them as [masked] [R-MASK]', async () => {
    const shot = (await capturer.shoot({ url: `${base}/account`, mask: ['.secret'], after: false }, {}, 'before'))!;
    const png = PNG.sync.read(shot.png);
    expect([png.width, png.height]).toEqual([1280, 720]);
    for (const [x, y] of [
      [40, 100],
      [40, 200],
      [400, 300],
    ] as const) {
      expect(colours(png, x, y, 300, 40)).toEqual(['000000ff']);
    }
    // Positive control: the page itself is drawn (the heading is not one colour).
    expect(colours(png, 40, 0, 300, 40).length).toBeGreaterThan(1);
    expect(shot.masked).toBe(4);
    expect(shot.text).not.toContain('4111');
    expect(shot.text).toContain('[masked]');
    expect(shot.title).toBe('Masking');
  });

  it('masks an element below the fold of a full-page shot [R-MASK]', async () => {
    const shot = (await capturer.shoot({ url: `${base}/account`, mask: ['.secret'], fullPage: true, after: false }, {}, 'before'))!;
    const png = PNG.sync.read(shot.png);
    expect(png.width).toBe(1280);
    expect(png.height).toBeGreaterThanOrEqual(2000);
    expect(colours(png, 40, 1500, 300, 40)).toEqual(['000000ff']);
    expect(colours(png, 40, 100, 300, 40)).toEqual(['000000ff']);
  });

  it('refuses to take the shot when a mask selector is not valid CSS, rather than store it unmasked [R-MASK]', async () => {
    const err = await capturer.shoot({ url: `${base}/account`, mask: ['.secret', 'p['], after: false }, {}, 'before').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(
      thrown(() => {
        throw err;
      }),
    ).toMatchObject({ code: 'capture_failed' });
    expect((err as Error).message).toBe(`The page ${base}/account could not be captured: the mask selector "p[" is not a valid CSS selector.`);
  });
});
