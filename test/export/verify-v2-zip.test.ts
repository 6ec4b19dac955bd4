import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import yazl from 'yazl';
import { describe, expect, it } from 'vitest';
import { verifyZipBundle } from '../../src/export/index.js';
import { tempDir } from '../helpers/tmp.js';
import { buildV2Bundle, sampleLedger, type Built } from './verify-v2-fixture.js';

/**
 * Zip archives of format-2 bundles: the v2 names extract and verify; every hostile shape the
 * verifier must refuse (a path out of the bundle, an absolute path, a symbolic link, a name twice,
 * an encrypted entry, a compression bomb) is crafted here byte by byte and refused as one
 * bundle_invalid sentence, with nothing written outside the verifier's private directory.
 */

const dir = tempDir('witness-verify-v2-zip-');
let n = 0;

function bundle(): Built {
  n++;
  return buildV2Bundle(path.join(dir, `b${n}`), sampleLedger(), { scope: { sessions: ['s-refund'] } });
}

/** The files of a bundle directory, `/`-separated, in a stable order. */
function namesOf(root: string): string[] {
  const out: string[] = [];
  for (const d of fs.readdirSync(root, { withFileTypes: true })) {
    if (d.isDirectory()) for (const f of fs.readdirSync(path.join(root, d.name))) out.push(`${d.name}/${f}`);
    else out.push(d.name);
  }
  return out.sort();
}

/** Zips a bundle directory with yazl, then lets `extra` add entries; returns the archive's bytes. */
async function zipOf(b: Built, extra: (z: yazl.ZipFile) => void = () => undefined, compress = false): Promise<Buffer> {
  const z = new yazl.ZipFile();
  for (const name of namesOf(b.dir)) z.addBuffer(fs.readFileSync(path.join(b.dir, ...name.split('/'))), name, { compress });
  extra(z);
  z.end();
  const chunks: Buffer[] = [];
  for await (const c of z.outputStream as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

async function verdictOf(bytes: Buffer, b: Built, name = `z${++n}.zip`): Promise<Awaited<ReturnType<typeof verifyZipBundle>>> {
  const file = path.join(dir, name);
  fs.writeFileSync(file, bytes);
  return verifyZipBundle(file, { trustedKeys: [b.vkey] });
}

function expectRefused(r: Awaited<ReturnType<typeof verifyZipBundle>>, pattern: RegExp): void {
  expect(r.ok).toBe(false);
  expect(r.failures).toHaveLength(1);
  expect(r.failures[0]!.code).toBe('bundle_invalid');
  expect(r.failures[0]!.reason).toMatch(pattern);
  // One sentence.
  expect(r.failures[0]!.reason.split(/\.\s/).length).toBe(1);
}

describe('zip bundles of format 2', () => {
  it('extract every v2 name (populations/, checkpoints.jsonl, keys.json, system.json, artifacts/<sha>.<ext>, README.txt) and verify, stored or deflated', async () => {
    n++;
    // README.txt and verify.mjs are bound by the signed export record (FORMAT.md 7.8); report.html is not.
    const b = buildV2Bundle(path.join(dir, `b${n}`), sampleLedger(), { scope: { sessions: ['s-refund'] }, bound: { 'README.txt': 'how to verify', 'verify.mjs': '// verifier' } });
    fs.writeFileSync(path.join(b.dir, 'report.html'), '<html></html>');
    const { refreshManifest } = await import('./verify-v2-fixture.js');
    refreshManifest(b.dir);
    for (const compress of [false, true]) {
      const r = await verdictOf(
        await zipOf(
          b,
          (z) => {
            z.addEmptyDirectory('populations/');
            z.addEmptyDirectory('artifacts/');
          },
          compress,
        ),
        b,
      );
      expect(r.failures).toEqual([]);
      expect(r.ok).toBe(true);
      expect(r.bundle!.artifacts).toBe(1);
    }
  });

  it('refuses an entry whose path leads out of the bundle, or is absolute', async () => {
    const b = bundle();
    const escape = await zipOf(b, (z) => z.addBuffer(Buffer.from('x'), 'QQQQ.json'));
    expectRefused(await verdictOf(Buffer.from(escape.toString('latin1').split('QQQQ').join('../x'), 'latin1'), b), /"\.\.\/x\.json", which points outside the bundle/);
    const absolute = await zipOf(b, (z) => z.addBuffer(Buffer.from('x'), 'QQQQ/passwd'));
    expectRefused(await verdictOf(Buffer.from(absolute.toString('latin1').split('QQQQ').join('/etc'), 'latin1'), b), /"\/etc\/passwd", which points outside the bundle/);
    expect(fs.existsSync(path.join(dir, 'x.json'))).toBe(false);
  });

  it('refuses a symbolic-link entry (Unix mode 0o120000 in its external attributes), even under a name a bundle has', async () => {
    const b = bundle();
    fs.rmSync(path.join(b.dir, 'system.json'));
    const bytes = await zipOf(b, (z) => z.addBuffer(Buffer.from('/etc/passwd'), 'system.json', { mode: 0o120777 }));
    expectRefused(await verdictOf(bytes, b), /holds "system\.json" as a symbolic link, which a bundle never has/);
  });

  it('refuses a name given twice, and an encrypted entry', async () => {
    const b = bundle();
    const twice = await zipOf(b, (z) => z.addBuffer(Buffer.from('{}'), 'keys.json'));
    expectRefused(await verdictOf(twice, b), /holds "keys\.json" more than once/);
    const encrypted = path.join(dir, 'encrypted.zip');
    execFileSync('zip', ['-qr0', '-P', 'secret', encrypted, '.'], { cwd: b.dir });
    expectRefused(await verifyZipBundle(encrypted, { trustedKeys: [b.vkey] }), /encrypted, which a bundle never is/);
  });

  it('refuses a compression bomb: an entry claiming more than 200 times its compressed size', async () => {
    const b = bundle();
    const bomb = await zipOf(b, (z) => z.addBuffer(Buffer.alloc(16 * 1024 * 1024), 'report.html', { compress: true }));
    expect(bomb.length).toBeLessThan(1024 * 1024);
    expectRefused(await verdictOf(bomb, b), /holds "report\.html" claiming 16777216 bytes from \d+ compressed, more than 200 to 1: a compression bomb, not evidence/);
  });

  it('refuses a name no bundle has', async () => {
    const b = bundle();
    const bytes = await zipOf(b, (z) => z.addBuffer(Buffer.from('x'), 'populations/../../x.jsonl'.replace('../../', 'sub/')));
    expectRefused(await verdictOf(bytes, b), /holds an entry "populations\/sub\/x\.jsonl", which no Witness evidence bundle has/);
  });
});
