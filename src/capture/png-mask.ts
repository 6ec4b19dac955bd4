import zlib from 'node:zlib';
import { inflateRows, parsePng, unfilter } from './png-read.js';

/** A rectangle in CSS pixels, in the same coordinates as `Area`. */
export interface CssRect {
  x: number;
  y: number;
  width: number;
  height: number;
}

/**
 * Paints `rects` (CSS pixels of `area`, the part of the page the PNG shows) solid opaque black
 * into a PNG, in Node, after the pixels have left the browser: whatever the page did between the
 * mask and the screenshot, these pixels are black in what is stored. Edges are rounded outwards.
 *
 * Only the rows a rectangle touches are rewritten (unfiltered, painted, stored with filter None)
 * together with the row below them, whose filter may refer to the row above; every other row keeps
 * the bytes Chromium wrote, so the image is re-deflated but not re-filtered. Measured on a
 * 1280×720 page shot (two loaded cores, median of 15): decoding and encoding it with pngjs cost
 * ~18 + ~55 ms and grew the file by ~45 %; this costs a few milliseconds (see the report of the
 * change for the numbers).
 */
export function paintBlack(png: Buffer, rects: readonly CssRect[], area: CssRect): Buffer {
  const img = parsePng(png);
  const { width, height, bpp, alpha } = img;

  const sx = width / area.width;
  const sy = height / area.height;
  const boxes: Array<[x0: number, y0: number, x1: number, y1: number]> = [];
  for (const r of rects) {
    const x0 = Math.max(0, Math.floor((r.x - area.x) * sx));
    const y0 = Math.max(0, Math.floor((r.y - area.y) * sy));
    const x1 = Math.min(width, Math.ceil((r.x + r.width - area.x) * sx));
    const y1 = Math.min(height, Math.ceil((r.y + r.height - area.y) * sy));
    if (x1 > x0 && y1 > y0) boxes.push([x0, y0, x1, y1]);
  }
  if (boxes.length === 0) return png;

  const raw = inflateRows(img);
  const line = width * bpp;
  const stride = line + 1;
  const top = Math.min(...boxes.map((b) => b[1]));
  // The painted rows, and the one below them: its filter may refer to the row above, which changes.
  const last = Math.min(height - 1, Math.max(...boxes.map((b) => b[3])));
  // Unfiltering starts at the nearest row at or above `top` whose filter does not read the row above.
  let start = top;
  while (start > 0 && raw[start * stride]! > 1) start--;
  let prev = Buffer.alloc(line);
  let cur = Buffer.alloc(line);
  for (let y = start; y <= last; y++) {
    unfilter(raw, y * stride, cur, prev, bpp);
    if (y >= top) {
      const out = raw.subarray(y * stride + 1, y * stride + stride);
      cur.copy(out);
      raw[y * stride] = 0;
      for (const [x0, y0, x1, y1] of boxes) {
        if (y < y0 || y >= y1) continue;
        out.fill(0, x0 * bpp, x1 * bpp);
        if (alpha) for (let i = x0 * bpp + bpp - 1; i < x1 * bpp; i += bpp) out[i] = 255;
      }
    }
    [prev, cur] = [cur, prev];
  }
  const data = zlib.deflateSync(raw.subarray(0, stride * height));
  return Buffer.concat([...img.before, chunk('IDAT', data), ...img.after]);
}

function chunk(type: string, data: Buffer): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  data.copy(out, 8);
  out.writeUInt32BE(zlib.crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}
