import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { artifactExtension, exportBundle } from '../../src/export/index.js';
import { SqliteLedger } from '../../src/store/index.js';
import { buildLedger, copyLedger, oneSentence, type BuiltLedger } from '../helpers/ledger.js';
import { tempDir } from '../helpers/tmp.js';

const dir = tempDir('witness-bundle-out-');
let base: BuiltLedger;

beforeAll(async () => {
  base = await buildLedger(dir);
});

describe('where a bundle goes', () => {
  it('refuses -o - in one sentence (a bundle is a directory or a zip, never stdout) and creates no directory named "-"', async () => {
    const copy = copyLedger(base, dir);
    const ledger = SqliteLedger.open({ path: copy.file, create: false });
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      const err = await exportBundle(ledger, { since: null, until: null, agents: null, sessions: [base.sessions.a], regimes: [] }, '-').catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'invalid_argument' });
      expect(oneSentence((err as Error).message)).toMatch(/cannot go to stdout/);
      expect(fs.existsSync(path.join(dir, '-'))).toBe(false);
    } finally {
      process.chdir(cwd);
      await ledger.close();
    }
  });
});

describe('artifact file names', () => {
  it('names an SVG .svg.txt, like HTML, so opening it from disk runs no script', () => {
    expect(artifactExtension('image/svg+xml')).toBe('svg.txt');
    expect(artifactExtension('text/html')).toBe('html.txt');
    expect(artifactExtension('image/png')).toBe('png');
  });
});
