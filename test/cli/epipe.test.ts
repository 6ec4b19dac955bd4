import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BIN, REPO_ROOT, buildLedger, copyLedger, oneSentence, tamper, type BuiltLedger } from '../helpers/ledger.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * `witness verify … | head -1`: the reader goes away after the first line, and the next write
 * fails with EPIPE. The exit code must still be the verdict — 0 on a pass, 1 on a failure — with
 * no unhandled 'error' event, no stack trace, whatever moment the pipe closes. The real binary
 * (bin/witness.js → dist/) is spawned, as a shell pipeline would run it.
 */

const dir = tempDir('witness-epipe-');

if (!fs.existsSync(path.join(REPO_ROOT, 'dist', 'cli', 'index.js'))) {
  throw new Error('dist/ is missing: run `npx tsc -p tsconfig.build.json` before these tests.');
}

let good: BuiltLedger;
let bad: BuiltLedger;
beforeAll(async () => {
  good = await buildLedger(dir);
  bad = copyLedger(good, dir);
  // One payload edited after the fact: verify fails, at that event.
  tamper(bad.file, (db) => db.prepare("UPDATE events SET data = json_set(data, '$.text', 'edited') WHERE kind = 'note' AND seq = 1 AND stream = ?").run(bad.sessions.c));
}, 60_000);

interface Piped {
  code: number | null;
  signal: NodeJS.Signals | null;
  firstLine: string;
  stderr: string;
}

/**
 * Runs `witness …` with stdout into a pipe whose reader closes after the first line (`head -1`),
 * or, with `closeAt: 'start'`, before the command has written anything at all.
 */
function piped(args: string[], closeAt: 'first-line' | 'start' = 'first-line'): Promise<Piped> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    if (closeAt === 'start') child.stdout.destroy();
    else
      child.stdout.setEncoding('utf8').on('data', (s: string) => {
        out += s;
        if (out.includes('\n')) child.stdout.destroy();
      });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, firstLine: out.split('\n')[0] ?? '', stderr }));
  });
}

describe('witness verify into a pipe that closes early', () => {
  it('exits 0 on a passing ledger every time, when the reader closes after the first line', async () => {
    const runs: Piped[] = [];
    for (let i = 0; i < 20; i++) runs.push(await piped(['verify', '--store', `sqlite:${good.file}`]));
    for (const r of runs) {
      expect(r).toMatchObject({ code: 0, signal: null });
      expect(r.firstLine).toMatch(/\S/);
      expect(r.stderr).not.toMatch(/EPIPE|Unhandled|Error:|\n\s+at /);
    }
  }, 120_000);

  it('exits 1 on a failing ledger every time, when the reader closes after the first line', async () => {
    const runs: Piped[] = [];
    for (let i = 0; i < 10; i++) runs.push(await piped(['verify', '--store', `sqlite:${bad.file}`]));
    for (const r of runs) {
      expect(r).toMatchObject({ code: 1, signal: null });
      expect(r.stderr).not.toMatch(/EPIPE|Unhandled|Error:|\n\s+at /);
    }
  }, 120_000);

  it('exits with the verdict when the reader is gone before anything is written, in text and --json', async () => {
    for (const json of [[], ['--json']]) {
      for (let i = 0; i < 2; i++) {
        const pass = await piped(['verify', '--store', `sqlite:${good.file}`, ...json], 'start');
        expect(pass).toMatchObject({ code: 0, signal: null });
        expect(pass.stderr).not.toMatch(/EPIPE|Unhandled|Error:|\n\s+at /);
        const fail = await piped(['verify', '--store', `sqlite:${bad.file}`, ...json], 'start');
        expect(fail).toMatchObject({ code: 1, signal: null });
        expect(fail.stderr).not.toMatch(/EPIPE|Unhandled|\n\s+at /);
      }
    }
  }, 120_000);

  it('exits with the result for other commands too (sessions, query, verify --json) when the reader is gone', async () => {
    for (const args of [['sessions'], ['query', '--limit', '50'], ['verify', '--json']]) {
      const r = await piped([...args, '--store', `sqlite:${good.file}`], 'start');
      expect({ args, code: r.code, signal: r.signal }).toEqual({ args, code: 0, signal: null });
      expect(r.stderr).toBe('');
    }
  }, 60_000);

  it('exits 1 with one sentence when standard output fails for another reason than a closed reader (a full disk)', async () => {
    if (!fs.existsSync('/dev/full')) return;
    const r = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
      const out = fs.openSync('/dev/full', 'w');
      const child = spawn(process.execPath, [BIN, 'verify', '--store', `sqlite:${good.file}`], { cwd: REPO_ROOT, stdio: ['ignore', out, 'pipe'] });
      fs.closeSync(out);
      let stderr = '';
      child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stderr }));
    });
    expect(r.code).toBe(1);
    expect(oneSentence(r.stderr)).toBe('The output could not be written (ENOSPC), so the command is reported as failed; check where standard output goes.');
  }, 30_000);

  it('exits 0 through a real shell pipeline into head -1', async () => {
    for (let i = 0; i < 5; i++) {
      const r = await new Promise<{ status: string; stderr: string }>((resolve, reject) => {
        const sh = spawn('bash', ['-c', `"${process.execPath}" "${BIN}" verify --store "sqlite:${good.file}" | head -1 >/dev/null; echo "\${PIPESTATUS[0]}"`], {
          cwd: REPO_ROOT,
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        let err = '';
        sh.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
        sh.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
        sh.on('error', reject);
        sh.on('close', () => resolve({ status: out.trim(), stderr: err }));
      });
      expect(r).toEqual({ status: '0', stderr: '' });
    }
  }, 60_000);
});
