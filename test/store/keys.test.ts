import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { sidecarPaths } from '../../src/store/index.js';
import { oneSentence, runCli } from '../helpers/ledger.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * Issue 9, finding 6: `witness init` must not write the signing key or its public half through a
 * symbolic link that someone planted beside the ledger, whatever the link points to.
 */

const dir = tempDir('witness-keys-');
let n = 0;

function place(): { file: string; victim: string } {
  n += 1;
  const sub = path.join(dir, `case-${n}`);
  fs.mkdirSync(sub);
  const victim = path.join(sub, 'victim.txt');
  fs.writeFileSync(victim, 'precious\n');
  return { file: path.join(sub, 'w.db'), victim };
}

describe('witness init and symbolic links', () => {
  it('[R-KEY-FILES] refuses, in one sentence with exit 1, to write the public key through a link, and leaves its target alone', async () => {
    const { file, victim } = place();
    fs.symlinkSync(victim, sidecarPaths(file).pub);
    const r = await runCli(['init', '--store', `sqlite:${file}`]);
    expect(r.code).toBe(1);
    expect(oneSentence(r.stderr)).toMatch(/\.pub is a symbolic link/);
    expect(fs.readFileSync(victim, 'utf8')).toBe('precious\n');
    expect(fs.existsSync(sidecarPaths(file).key)).toBe(false);
    expect(fs.existsSync(file)).toBe(false);
  });

  it('[R-KEY-FILES] refuses a link where the private key goes, even a dangling one, and creates nothing at its target', async () => {
    const { file } = place();
    const target = path.join(path.dirname(file), 'planted.key');
    fs.symlinkSync(target, sidecarPaths(file).key);
    const r = await runCli(['init', '--store', `sqlite:${file}`]);
    expect(r.code).toBe(1);
    expect(oneSentence(r.stderr)).toMatch(/\.key is a symbolic link/);
    expect(fs.existsSync(target)).toBe(false);
    expect(fs.existsSync(sidecarPaths(file).pub)).toBe(false);
    expect(fs.existsSync(file)).toBe(false);
  });

  it('writes both halves as regular files, the private one with mode 0600, when nothing is planted', async () => {
    const { file } = place();
    const r = await runCli(['init', '--store', `sqlite:${file}`]);
    expect(r.code).toBe(0);
    const { key, pub } = sidecarPaths(file);
    expect(fs.lstatSync(key).isFile()).toBe(true);
    expect(fs.statSync(key).mode & 0o777).toBe(0o600);
    expect(fs.lstatSync(pub).isFile()).toBe(true);
    expect(fs.readdirSync(path.dirname(file)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });
});
