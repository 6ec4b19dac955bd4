import { execFile } from 'node:child_process';
import path from 'node:path';
import { expect } from 'vitest';
import { verifyBundle, verifyZipBundle, type BundleVerifyReport } from '../../src/export/index.js';
import { REPO_ROOT } from '../helpers/ledger.js';

/**
 * The three verifiers of a bundle on the same bytes, in one call: `witness verify`'s code
 * (verifyZipBundle / verifyBundle), the standalone verify.mjs from src/ and the independent Python
 * verifier, each with its JSON report, so a test can hold them to one verdict.
 */

const PY = '/usr/bin/python3';
const PY_VERIFIER = path.join(REPO_ROOT, 'test', 'export', 'independent', 'verify_bundle.py');
const STANDALONE = path.join(REPO_ROOT, 'src', 'export', 'standalone', 'verify.mjs');

export interface OneVerdict {
  codes: string[];
  /** Every failure's sentence, joined by " | ". */
  reason: string;
  exit: number;
}
export interface Verdicts {
  witness: OneVerdict & { report: BundleVerifyReport };
  standalone: OneVerdict & { report: { streams: number; events: number } };
  python: OneVerdict & { report: { sessions: number; events: number } };
}

export function spawn(cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: REPO_ROOT, timeout: 60_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

const unique = (xs: string[]) => [...new Set(xs)].sort();

/** The three verifiers on the bundle (a directory or a zip) at `target`, pinned to `key`. */
export async function threeVerdicts(target: string, key: string, zipped = target.endsWith('.zip')): Promise<Verdicts> {
  const [w, s, p] = await Promise.all([
    zipped ? verifyZipBundle(target, { trustedKeys: [key] }) : Promise.resolve(verifyBundle(target, { trustedKeys: [key] })),
    spawn(process.execPath, [STANDALONE, target, '--trusted-key', key, '--json']),
    spawn(PY, [PY_VERIFIER, target, '--trusted-key', key, '--json']),
  ]);
  expect(s.stderr, 'verify.mjs wrote to stderr').toBe('');
  expect(p.stderr, 'verify_bundle.py wrote to stderr').toBe('');
  const sr = JSON.parse(s.stdout) as Verdicts['standalone']['report'] & { failures: Array<{ code: string; reason: string }> };
  const pr = JSON.parse(p.stdout) as Verdicts['python']['report'] & { failures: Array<{ code: string; message: string }> };
  return {
    witness: { codes: unique(w.failures.map((f) => f.code)), reason: w.failures.map((f) => f.reason).join(' | '), exit: w.ok ? 0 : 1, report: w },
    standalone: { codes: unique(sr.failures.map((f) => f.code)), reason: sr.failures.map((f) => f.reason).join(' | '), exit: s.code, report: sr },
    python: { codes: unique(pr.failures.map((f) => f.code)), reason: pr.failures.map((f) => f.message).join(' | '), exit: p.code, report: pr },
  };
}

/** All three refuse with `code` alone, one sentence each matching `why`. */
export function expectRefused(v: Verdicts, why: RegExp, code = 'bundle_invalid'): void {
  for (const [who, r] of Object.entries(v)) {
    expect(r.codes, `${who}: ${r.reason}`).toEqual([code]);
    expect(r.reason, who).toMatch(why);
    expect(r.reason.includes(' | '), `${who} gave more than one failure: ${r.reason}`).toBe(false);
    expect(r.exit, who).toBe(1);
  }
}

export function expectPassed(v: Verdicts): void {
  for (const [who, r] of Object.entries(v)) {
    expect(r.codes, `${who}: ${r.reason}`).toEqual([]);
    expect(r.exit, who).toBe(0);
  }
}
