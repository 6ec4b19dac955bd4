import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { REQUIREMENTS } from './requirements.js';

const root = fileURLToPath(new URL('.', import.meta.url));

function testFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const p = path.join(dir, d.name);
    if (d.isDirectory()) return d.name === 'fixtures' ? [] : testFiles(p);
    return d.name.endsWith('.test.ts') && d.name !== 'requirements.test.ts' ? [p] : [];
  });
}

const sources = testFiles(root).map((f) => fs.readFileSync(f, 'utf8'));
const cited = new Set(sources.flatMap((s) => [...s.matchAll(/\[(R-[A-Z-]+)\]/g)].map((m) => m[1]!)));

describe('requirements manifest', () => {
  it.each(Object.keys(REQUIREMENTS))('has a test citing %s', (id) => {
    expect(cited.has(id), `no test names [${id}]`).toBe(true);
  });

  it('cites no requirement that the manifest does not define', () => {
    const unknown = [...cited].filter((id) => !(id in REQUIREMENTS));
    expect(unknown).toEqual([]);
  });
});
