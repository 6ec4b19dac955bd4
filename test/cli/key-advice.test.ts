import { execFile } from 'node:child_process';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { keyFingerprint, parseVerifierKey } from '../../src/core/index.js';
import { sidecarPaths } from '../../src/store/index.js';
import { BIN, buildLedger, copyLedger, runCli, type BuiltLedger } from '../helpers/ledger.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * `--trusted-key` is worth something only when the key comes from somewhere the ledger's writer
 * cannot reach. The `.pub` file beside the ledger is not such a place: whoever rewrites the
 * ledger can replace it (and the key) together. So the CLI must not hand that file out as the pin
 * to use; it prints the signing key's fingerprint, to compare with the one recorded at creation.
 */

const dir = tempDir('witness-advice-');
let base: BuiltLedger;

beforeAll(async () => {
  base = await buildLedger(dir);
});

describe('after witness export', () => {
  it('[R-KEY-PIN-ADVICE] prints the fingerprint of the key that signed the bundle, and never advises pinning the .pub beside the ledger', async () => {
    const l = copyLedger(base, dir);
    const out = path.join(dir, 'bundle');
    const r = await runCli(['export', '--store', `sqlite:${l.file}`, '--session', l.sessions.a, '-o', out]);
    expect(r.code).toBe(0);
    const fingerprint = keyFingerprint(parseVerifierKey(l.vkey));
    expect(r.stdout).toMatch(new RegExp(`^ {2}signed by +${fingerprint.replace(/[.+]/g, '\\$&')} `, 'm'));
    expect(r.stdout).not.toContain(sidecarPaths(l.file).pub);
    expect(r.stdout).not.toMatch(/--trusted-key \S+\.pub/);

    const json = await runCli(['export', '--store', `sqlite:${l.file}`, '--session', l.sessions.b, '-o', path.join(dir, 'bundle-json'), '--json']);
    expect((JSON.parse(json.stdout) as { signedBy: string[] }).signedBy).toEqual([fingerprint]);
  });
});

describe('after witness demo', () => {
  it('[R-KEY-PIN-ADVICE] prints the fingerprint to record, and never advises pinning the .pub beside the demo ledger', async () => {
    const demo = path.join(dir, 'demo');
    // runBin's 30 s limit is too tight for the whole demo on a busy 2-core machine.
    const r = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [BIN, 'demo', '--dir', demo], { timeout: 240_000 }, (err, stdout, stderr) =>
        resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr }),
      );
    });
    expect(r.code, r.stderr).toBe(0);
    const db = path.join(demo, 'witness.db');
    expect(r.stdout).not.toContain(`${db}.pub`);
    expect(r.stdout).not.toMatch(/--trusted-key \S+\.pub/);
    const vkey = /^ {2}public key +(\S+)$/m.exec(r.stdout)?.[1];
    expect(vkey).toBeDefined();
    expect(r.stdout).toMatch(new RegExp(`^ {2}fingerprint +${keyFingerprint(parseVerifierKey(vkey!)).replace(/[.+]/g, '\\$&')} `, 'm'));
  }, 300_000);
});

describe('after witness init', () => {
  it('[R-KEY-PIN-ADVICE] tells the operator to record the key and fingerprint elsewhere now, and calls the .pub beside the ledger a convenience copy, not the pin', async () => {
    const db = path.join(dir, 'init.db');
    const r = await runCli(['init', '--store', `sqlite:${db}`]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Record this public key and its fingerprint now, outside this machine/m);
    expect(r.stdout).toContain(`${sidecarPaths(db).pub} is a convenience copy only`);
    expect(r.stdout).not.toMatch(/Give auditors the public key \(also in/);
  });
});
