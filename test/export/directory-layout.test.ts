import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'vitest';
import { tempDir } from '../helpers/tmp.js';
import { buildV2Bundle, sampleLedger } from './verify-v2-fixture.js';
import { expectPassed, expectRefused, threeVerdicts } from './verify-three.js';

/**
 * A directory bundle holds the files of docs/FORMAT.md 7.1 and the folders artifacts/ and
 * populations/, nothing else: a folder no bundle has, even empty, is refused by all three verifiers
 * alike (the Python verifier used to walk past empty ones).
 */
describe('a directory bundle with a folder no bundle has', () => {
  const dir = tempDir('witness-dir-layout-');
  let n = 0;
  const bundle = () => buildV2Bundle(path.join(dir, `b${++n}`), sampleLedger(), { scope: { sessions: ['s-refund'] }, bound: { 'README.txt': 'how to verify' } });

  it('is refused, empty or not, at the top or inside artifacts/, by all three verifiers', async () => {
    const honest = bundle();
    expectPassed(await threeVerdicts(honest.dir, honest.vkey));
    const empty = bundle();
    fs.mkdirSync(path.join(empty.dir, 'junkdir'));
    expectRefused(await threeVerdicts(empty.dir, empty.vkey), /holds "junkdir", which no format-2 bundle has/);
    const full = bundle();
    fs.mkdirSync(path.join(full.dir, 'junkdir'));
    fs.writeFileSync(path.join(full.dir, 'junkdir', 'note.txt'), 'unlisted');
    expectRefused(await threeVerdicts(full.dir, full.vkey), /holds "junkdir", which no format-2 bundle has/);
    const nested = bundle();
    fs.mkdirSync(path.join(nested.dir, 'artifacts', 'sub'), { recursive: true });
    expectRefused(await threeVerdicts(nested.dir, nested.vkey), /holds "artifacts\/sub", which no format-2 bundle has/);
  });
});
