import type { PNG } from 'pngjs';

/** The colours inside a box, 2 px in from each edge (anti-aliasing at the border is not the question). */
export function colours(png: PNG, x: number, y: number, w: number, h: number): string[] {
  const seen = new Set<string>();
  for (let yy = y + 2; yy < y + h - 2; yy++) for (let xx = x + 2; xx < x + w - 2; xx++) seen.add(png.data.subarray((yy * png.width + xx) * 4, (yy * png.width + xx) * 4 + 4).toString('hex'));
  return [...seen];
}
