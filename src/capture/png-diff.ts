import type { Payload } from '../core/index.js';
import { inflateRows, parsePng, unfilter, type PngImage } from './png-read.js';

/** The bounding box of the pixels that differ between a call's before and after screenshots, as recorded. */
export type ChangedRegion = NonNullable<Payload<'capture'>['changed_region']>;

/**
 * How far a channel may move (0-255) before a pixel counts as changed. Chromium renders the same
 * page to the same pixels (two loads of one page gave byte-identical PNGs), so this only absorbs
 * noise such as a gradient dithered differently or a sub-pixel text offset; a change of content
 * moves channels by far more.
 */
export const DEFAULT_TOLERANCE = 8;

/**
 * The bounding box, in the after image's pixels, of every pixel whose colour differs from the
 * before image by more than `tolerance` in some channel; undefined when none does. Images of
 * different sizes (a full-page shot whose page grew) are not compared pixel by pixel: the whole
 * after image is the region, with `size_changed`.
 *
 * Cost is kept to a few milliseconds for a 1280×720 shot (see the report of the change): both
 * images are inflated, but rows are compared as filtered bytes first and unfiltered and scanned
 * pixel by pixel only around rows that differ (see diffSameLayout).
 */
export function changedRegion(beforePng: Buffer, afterPng: Buffer, tolerance = DEFAULT_TOLERANCE): ChangedRegion | undefined {
  if (beforePng.equals(afterPng)) return undefined;
  const a = parsePng(beforePng);
  const b = parsePng(afterPng);
  const whole = { x: 0, y: 0, width: b.width, height: b.height, image_width: b.width, image_height: b.height };
  if (a.width !== b.width || a.height !== b.height) return { ...whole, size_changed: true };
  const ra = inflateRows(a);
  const rb = inflateRows(b);
  const { width, height } = b;
  const box = { x0: width, y0: height, x1: -1, y1: -1 };
  if (a.bpp === b.bpp) diffSameLayout(a, ra, rb, tolerance, box);
  else diffRows(a, b, ra, rb, tolerance, box);
  if (box.x1 < 0) return undefined;
  return { x: box.x0, y: box.y0, width: box.x1 - box.x0 + 1, height: box.y1 - box.y0 + 1, image_width: width, image_height: height };
}

interface Box {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

/**
 * Same colour type: a row whose filtered bytes match, under a row whose pixels match, has the
 * same pixels (unfiltering reads only the row and the one above), so it is skipped undecoded.
 * The row above a differing row is decoded on demand, in one image only (it is the same in both),
 * from the nearest row that reads nothing above it (filter None or Sub) or the last decoded row.
 */
function diffSameLayout(img: PngImage, ra: Buffer, rb: Buffer, tolerance: number, box: Box): void {
  const { width, height, bpp } = img;
  const line = width * bpp;
  const stride = line + 1;
  let prevA = Buffer.alloc(line);
  let curA = Buffer.alloc(line);
  let prevB = Buffer.alloc(line);
  let curB = Buffer.alloc(line);
  /** The last row whose pixels are in prevA and prevB (-1: none; the row above row 0 is zeros). */
  let decoded = -1;
  let aboveEqual = true;
  for (let y = 0; y < height; y++) {
    const at = y * stride;
    if (aboveEqual && ra.compare(rb, at, at + stride, at, at + stride) === 0) continue;
    if (decoded < y - 1) {
      // Rows decoded+1 … y-1 were skipped, so they are the same in both images.
      let from = y - 1;
      while (from > decoded + 1 && ra[from * stride]! > 1) from--;
      for (let r = from; r < y; r++) {
        unfilter(ra, r * stride, curA, prevA, bpp);
        [prevA, curA] = [curA, prevA];
      }
      prevA.copy(prevB);
    }
    unfilter(ra, at, curA, prevA, bpp);
    unfilter(rb, at, curB, prevB, bpp);
    aboveEqual = curA.equals(curB);
    if (!aboveEqual) scanRow(curA, img, curB, img, tolerance, y, box);
    [prevA, curA] = [curA, prevA];
    [prevB, curB] = [curB, prevB];
    decoded = y;
  }
}

/** Different colour types (never seen from Chromium, which writes RGB): every row of both is decoded and compared as RGBA. */
function diffRows(a: PngImage, b: PngImage, ra: Buffer, rb: Buffer, tolerance: number, box: Box): void {
  const { width, height } = b;
  const la = width * a.bpp;
  const lb = width * b.bpp;
  let prevA = Buffer.alloc(la);
  let curA = Buffer.alloc(la);
  let prevB = Buffer.alloc(lb);
  let curB = Buffer.alloc(lb);
  for (let y = 0; y < height; y++) {
    unfilter(ra, y * (la + 1), curA, prevA, a.bpp);
    unfilter(rb, y * (lb + 1), curB, prevB, b.bpp);
    scanRow(curA, a, curB, b, tolerance, y, box);
    [prevA, curA] = [curA, prevA];
    [prevB, curB] = [curB, prevB];
  }
}

/** Widens `box` by the pixels of row `y` that differ by more than `tolerance`. */
function scanRow(ca: Buffer, a: PngImage, cb: Buffer, b: PngImage, tolerance: number, y: number, box: Box): void {
  const width = b.width;
  let lo = -1;
  let hi = -1;
  for (let x = 0; x < width; x++) {
    if (changed(ca, x * a.bpp, a, cb, x * b.bpp, b, tolerance)) {
      lo = x;
      break;
    }
  }
  if (lo < 0) return;
  for (let x = width - 1; x >= lo; x--) {
    if (changed(ca, x * a.bpp, a, cb, x * b.bpp, b, tolerance)) {
      hi = x;
      break;
    }
  }
  if (lo < box.x0) box.x0 = lo;
  if (hi > box.x1) box.x1 = hi;
  if (y < box.y0) box.y0 = y;
  if (y > box.y1) box.y1 = y;
}

/** Whether one pixel differs by more than `tolerance` in a channel, read as RGBA whatever each image's colour type. */
function changed(ca: Buffer, ia: number, a: PngImage, cb: Buffer, ib: number, b: PngImage, tolerance: number): boolean {
  for (let c = 0; c < 4; c++) {
    if (Math.abs(channel(ca, ia, a, c) - channel(cb, ib, b, c)) > tolerance) return true;
  }
  return false;
}

function channel(row: Buffer, i: number, img: PngImage, c: number): number {
  switch (img.colour) {
    case 6:
      return row[i + c]!;
    case 2:
      return c === 3 ? 255 : row[i + c]!;
    case 4:
      return c === 3 ? row[i + 1]! : row[i]!;
    default:
      return c === 3 ? 255 : row[i]!;
  }
}
