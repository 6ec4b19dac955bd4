import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { paintBlack } from '../../src/capture/png-mask.js';

/**
 * Painting black into a PNG after the screenshot, checked against an independent decoder (pngjs):
 * every row filter PNG has, with and without alpha, and every pixel outside the boxes unchanged.
 */

/** A noisy image, so that encoders pick every filter and a wrong unfilter shows. */
function image(width: number, height: number): PNG {
  const png = new PNG({ width, height });
  let seed = 7;
  for (let i = 0; i < png.data.length; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    png.data[i] = (i >> 2) % 3 === 0 ? seed >>> 24 : (i * 13) & 255;
  }
  for (let i = 3; i < png.data.length; i += 4) png.data[i] = 255;
  return png;
}

function expectPainted(before: PNG, after: PNG, boxes: Array<[number, number, number, number]>, alpha: boolean): void {
  expect([after.width, after.height]).toEqual([before.width, before.height]);
  for (let y = 0; y < before.height; y++) {
    for (let x = 0; x < before.width; x++) {
      const i = (y * before.width + x) * 4;
      const inside = boxes.some(([x0, y0, x1, y1]) => x >= x0 && x < x1 && y >= y0 && y < y1);
      const want = inside ? '000000ff' : before.data.subarray(i, i + 4).toString('hex');
      const got = after.data.subarray(i, i + 4).toString('hex');
      if (got !== want) throw new Error(`pixel ${x},${y} is ${got}, expected ${want} (alpha ${alpha})`);
    }
  }
}

describe('paintBlack', () => {
  for (const colorType of [2, 6] as const) {
    for (const filterType of [0, 1, 2, 3, 4, -1]) {
      it(`paints boxes solid black and leaves every other pixel as it was (colour type ${colorType}, filter ${filterType})`, () => {
        const src = image(97, 61);
        const bytes = PNG.sync.write(src, { colorType, filterType });
        const expected = PNG.sync.read(bytes);
        // One box in the middle, one across the right edge down to the last row, one of zero size.
        const out = paintBlack(
          bytes,
          [
            { x: 10.4, y: 20.5, width: 30.2, height: 9 },
            { x: 90, y: 55, width: 40, height: 40 },
            { x: 5, y: 5, width: 0, height: 10 },
          ],
          { x: 0, y: 0, width: 97, height: 61 },
        );
        expectPainted(
          expected,
          PNG.sync.read(out),
          [
            [10, 20, 41, 30],
            [90, 55, 97, 61],
          ],
          colorType === 6,
        );
      });
    }
  }

  it('maps page coordinates through the area the PNG shows and its device scale', () => {
    const src = image(80, 60);
    const bytes = PNG.sync.write(src);
    // The PNG shows the page from (100, 200), 40×30 CSS pixels at device scale 2.
    const out = paintBlack(bytes, [{ x: 110, y: 205, width: 5, height: 5 }], { x: 100, y: 200, width: 40, height: 30 });
    expectPainted(PNG.sync.read(bytes), PNG.sync.read(out), [[20, 10, 30, 20]], false);
  });

  it('returns the PNG untouched when no box falls inside it', () => {
    const bytes = PNG.sync.write(image(20, 20));
    expect(paintBlack(bytes, [{ x: 30, y: 0, width: 5, height: 5 }], { x: 0, y: 0, width: 20, height: 20 })).toBe(bytes);
  });

  it('refuses what is not a PNG rather than store it unmasked', () => {
    expect(() => paintBlack(Buffer.from('not a png'), [{ x: 0, y: 0, width: 1, height: 1 }], { x: 0, y: 0, width: 1, height: 1 })).toThrow('the screenshot is not a PNG');
  });
});
