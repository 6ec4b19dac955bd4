import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type Page } from 'playwright-core';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Capturer } from '../../src/capture/index.js';
import { changedRegion, DEFAULT_TOLERANCE, type ChangedRegion } from '../../src/capture/png-diff.js';

/**
 * The changed region of an after screenshot: real Chromium shots of a small page before and after
 * one element changes, compared with the element's box as the DOM reports it; and, against an
 * independent encoder (pngjs), every row filter PNG has, a tolerance edge and mixed colour types.
 */

const PAGE = (state: { status: string; colour: string }) => `<!doctype html><html><head><title>Order 1042</title><style>
  html, body { margin: 0; font: 20px DejaVu Sans, sans-serif; background: #fff; color: #111; }
  h1 { position: absolute; left: 40px; top: 10px; margin: 0; }
  p { margin: 0 0 8px; }
  #rows { position: absolute; left: 40px; top: 80px; width: 560px; }
  #status { position: absolute; left: 700px; top: 300px; width: 260px; height: 48px; padding: 8px; background: ${state.colour}; }
</style></head><body>
  <h1>Order 1042</h1>
  <div id="rows">${'<p>Line item with a price of $12.50 and a note about delivery</p>'.repeat(12)}</div>
  <div id="status">${state.status}</div>
</body></html>`;

let browser: Browser;
let page: Page;
beforeAll(async () => {
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', '--hide-scrollbars', '--font-render-hinting=none'] });
  page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
}, 60_000);
afterAll(async () => {
  await browser?.close();
});

async function shot(state: { status: string; colour: string }): Promise<{ png: Buffer; box: { x: number; y: number; width: number; height: number } }> {
  await page.setContent(PAGE(state));
  const box = await page.locator('#status').boundingBox();
  return { png: await page.screenshot({ type: 'png' }), box: box! };
}

/** Whether `region` holds every pixel of the CSS box (device scale 1: CSS pixels are image pixels). */
function holds(region: ChangedRegion, box: { x: number; y: number; width: number; height: number }): boolean {
  return region.x <= Math.floor(box.x) && region.y <= Math.floor(box.y) && region.x + region.width >= Math.ceil(box.x + box.width) && region.y + region.height >= Math.ceil(box.y + box.height);
}

function isInside(region: ChangedRegion, box: { x: number; y: number; width: number; height: number }): boolean {
  return region.x >= Math.floor(box.x) && region.y >= Math.floor(box.y) && region.x + region.width <= Math.ceil(box.x + box.width) && region.y + region.height <= Math.ceil(box.y + box.height);
}

describe('the changed region of real Chromium screenshots', () => {
  it("holds the changed element's box and little more when its background and text change, not the whole page [R-CAPTURE-BOUND]", async () => {
    const before = await shot({ status: 'Pending', colour: '#eef' });
    const after = await shot({ status: 'Refunded $650', colour: '#efe' });
    expect(after.box).toEqual(before.box);
    const region = changedRegion(before.png, after.png);
    expect(region).toBeDefined();
    expect(region).toMatchObject({ image_width: 1280, image_height: 720 });
    expect(region!.size_changed).toBeUndefined();
    expect(holds(region!, after.box)).toBe(true);
    // At most a pixel of edge around the box: the unchanged text, title and margins are left out.
    expect(isInside(region!, { x: after.box.x - 1, y: after.box.y - 1, width: after.box.width + 2, height: after.box.height + 2 })).toBe(true);
  });

  it('lies inside the element when only its text changes', async () => {
    const before = await shot({ status: 'Pending', colour: '#eef' });
    const after = await shot({ status: 'Refunded', colour: '#eef' });
    const region = changedRegion(before.png, after.png)!;
    expect(isInside(region, after.box)).toBe(true);
    expect(region.width * region.height).toBeGreaterThan(0);
    expect(region.width * region.height).toBeLessThan(after.box.width * after.box.height);
  });

  it('is absent for two shots of the same page, and for the same bytes', async () => {
    const a = await shot({ status: 'Pending', colour: '#eef' });
    const b = await shot({ status: 'Pending', colour: '#eef' });
    expect(changedRegion(a.png, b.png)).toBeUndefined();
    expect(changedRegion(a.png, a.png)).toBeUndefined();
  });

  it('is the whole after image, flagged, when the two differ in size (a full-page shot whose page grew)', async () => {
    const before = await shot({ status: 'Pending', colour: '#eef' });
    await page.setViewportSize({ width: 1280, height: 900 });
    let taller: Buffer;
    try {
      taller = (await shot({ status: 'Pending', colour: '#eef' })).png;
    } finally {
      await page.setViewportSize({ width: 1280, height: 720 });
    }
    expect(changedRegion(before.png, taller)).toEqual({ x: 0, y: 0, width: 1280, height: 900, image_width: 1280, image_height: 900, size_changed: true });
  });
});

describe("a Capturer's after shot", () => {
  let server: http.Server;
  let base = '';
  let state = { status: 'Pending', colour: '#eef' };
  let capturer: Capturer;
  beforeAll(async () => {
    server = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(PAGE(state));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    capturer = new Capturer();
  }, 60_000);
  afterAll(async () => {
    await capturer?.close();
    server?.close();
  });

  it("carries the region where it differs from the same call's before shot, and none when nothing changed or there is no before shot of that call", async () => {
    const spec = { url: `${base}/orders/{id}` };
    const args = { id: '1042' };
    state = { status: 'Pending', colour: '#eef' };
    const before = await capturer.shoot(spec, args, 'before', 'call-1');
    expect(before?.changedRegion).toBeUndefined();
    state = { status: 'Refunded $650', colour: '#efe' };
    const after = await capturer.shoot(spec, args, 'after', 'call-1');
    const { box } = await shot(state);
    expect(holds(after!.changedRegion!, box)).toBe(true);
    expect(after!.changedRegion!.width).toBeLessThan(1280 / 2);

    // The same page before and after: nothing changed, nothing recorded.
    await capturer.shoot(spec, args, 'before', 'call-2');
    expect((await capturer.shoot(spec, args, 'after', 'call-2'))?.changedRegion).toBeUndefined();
    // Another call's before shot is not this call's, and a call's before shot is used once.
    state = { status: 'Pending', colour: '#eef' };
    await capturer.shoot(spec, args, 'before', 'call-3');
    state = { status: 'Refunded $650', colour: '#efe' };
    expect((await capturer.shoot(spec, args, 'after', 'call-4'))?.changedRegion).toBeUndefined();
    expect((await capturer.shoot(spec, args, 'after', 'call-1'))?.changedRegion).toBeUndefined();
    expect(holds((await capturer.shoot(spec, args, 'after', 'call-3'))!.changedRegion!, box)).toBe(true);
    // No call id: nothing is paired.
    state = { status: 'Pending', colour: '#eef' };
    await capturer.shoot(spec, args, 'before');
    state = { status: 'Refunded $650', colour: '#efe' };
    expect((await capturer.shoot(spec, args, 'after'))?.changedRegion).toBeUndefined();
  }, 60_000);
});

/** A noisy opaque image, so that encoders pick every filter and a wrong unfilter shows. */
function image(width: number, height: number): PNG {
  const png = new PNG({ width, height });
  let seed = 11;
  for (let i = 0; i < png.data.length; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    png.data[i] = (i >> 2) % 3 === 0 ? seed >>> 24 : (i * 7) & 255;
  }
  for (let i = 3; i < png.data.length; i += 4) png.data[i] = 255;
  return png;
}

function copy(src: PNG): PNG {
  const out = new PNG({ width: src.width, height: src.height });
  src.data.copy(out.data);
  return out;
}

function set(png: PNG, x: number, y: number, rgb: [number, number, number]): void {
  const i = (y * png.width + x) * 4;
  png.data[i] = rgb[0];
  png.data[i + 1] = rgb[1];
  png.data[i + 2] = rgb[2];
}

describe('changedRegion against an independent encoder', () => {
  for (const colorType of [2, 6] as const) {
    for (const filterType of [0, 1, 2, 3, 4, -1]) {
      it(`finds the exact box of the changed pixels (colour type ${colorType}, filter ${filterType})`, () => {
        const a = image(83, 57);
        const b = copy(a);
        // Two changed pixels far apart and one between: the box spans them.
        set(b, 70, 20, [1, 2, 3]);
        set(b, 12, 41, [250, 0, 9]);
        set(b, 40, 30, [0, 0, 0]);
        const write = (p: PNG) => PNG.sync.write(p, { colorType, filterType });
        expect(changedRegion(write(a), write(b))).toEqual({ x: 12, y: 20, width: 59, height: 22, image_width: 83, image_height: 57 });
        // The first and last rows and columns.
        const c = copy(a);
        set(c, 0, 0, [0, 0, 0]);
        set(c, 82, 56, [0, 0, 0]);
        expect(changedRegion(write(a), write(c))).toEqual({ x: 0, y: 0, width: 83, height: 57, image_width: 83, image_height: 57 });
        const d = copy(a);
        set(d, 82, 56, [d.data[(56 * 83 + 82) * 4]! ^ 0x80, 0, 0]);
        expect(changedRegion(write(a), write(d))).toEqual({ x: 82, y: 56, width: 1, height: 1, image_width: 83, image_height: 57 });
      });
    }
  }

  it(`ignores a channel moved by up to ${DEFAULT_TOLERANCE} and counts one moved by more`, () => {
    const a = new PNG({ width: 20, height: 10 });
    a.data.fill(200);
    const small = copy(a);
    small.data[(5 * 20 + 5) * 4 + 1] = 200 + DEFAULT_TOLERANCE;
    const large = copy(a);
    large.data[(5 * 20 + 5) * 4 + 1] = 200 - DEFAULT_TOLERANCE - 1;
    const write = (p: PNG) => PNG.sync.write(p, { colorType: 6 });
    expect(changedRegion(write(a), write(small))).toBeUndefined();
    expect(changedRegion(write(a), write(large))).toEqual({ x: 5, y: 5, width: 1, height: 1, image_width: 20, image_height: 10 });
    expect(changedRegion(write(a), write(small), 0)).toEqual({ x: 5, y: 5, width: 1, height: 1, image_width: 20, image_height: 10 });
  });

  it('decodes a changed row against the true row above it, which was skipped as unchanged (a move from 250 to 2 under a row of 3s is not noise)', () => {
    // With filter Up a row is stored as its difference from the row above: decoded against a wrong
    // row above, 250 and 2 would read as 247 and 255, within the tolerance.
    for (const filterType of [2, 4]) {
      const a = new PNG({ width: 20, height: 10 });
      a.data.fill(3);
      for (let i = 3; i < a.data.length; i += 4) a.data[i] = 255;
      const b = copy(a);
      a.data[(5 * 20 + 5) * 4] = 250;
      b.data[(5 * 20 + 5) * 4] = 2;
      const write = (p: PNG) => PNG.sync.write(p, { colorType: 6, filterType });
      expect(changedRegion(write(a), write(b)), `filter ${filterType}`).toEqual({ x: 5, y: 5, width: 1, height: 1, image_width: 20, image_height: 10 });
    }
  });

  it('compares an RGB image with an RGBA one by their pixels', () => {
    const a = image(31, 17);
    const b = copy(a);
    expect(changedRegion(PNG.sync.write(a, { colorType: 2 }), PNG.sync.write(b, { colorType: 6 }))).toBeUndefined();
    set(b, 3, 4, [a.data[(4 * 31 + 3) * 4]! ^ 0xff, 0, 0]);
    expect(changedRegion(PNG.sync.write(a, { colorType: 2 }), PNG.sync.write(b, { colorType: 6 }))).toEqual({ x: 3, y: 4, width: 1, height: 1, image_width: 31, image_height: 17 });
  });

  it('refuses what is not a PNG with one sentence', () => {
    const png = PNG.sync.write(image(4, 4));
    expect(() => changedRegion(png, Buffer.from('not a png'))).toThrow('the screenshot is not a PNG');
  });
});
