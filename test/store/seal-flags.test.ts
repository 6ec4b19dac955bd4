import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, verifyFile } from '../helpers/ledger.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/**
 * A program using Witness may be started with V8 flags on its command line (`node
 * --max-old-space-size=2048 app.js`, `node --expose-gc app.js`). A worker thread refuses those in
 * its execArgv (ERR_WORKER_INVALID_EXEC_ARGV), which once made the first append fail (the sealer
 * thread is warmed there) and every seal with it. These run the built package in a child started
 * with such a flag: build it first (`npx tsc -p tsconfig.build.json`).
 */

const dir = tempDir('witness-seal-flags-');
const CHILD = path.join(REPO_ROOT, 'test', 'fixtures', 'children', 'seal-child.mjs');

function run(flags: string[], file: string, events: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...flags, CHILD, file, String(events), 'wait-thread'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('a program started with V8 flags', () => {
  for (const flag of ['--max-old-space-size=256', '--expose-gc']) {
    it(`records every event and seals on the sealer thread when started with ${flag}`, async () => {
      const file = tempDb(dir);
      const r = await run([flag], file, 40);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const lines = r.stdout.trim().split('\n');
      expect(lines.filter((l) => l.startsWith('A '))).toHaveLength(40);
      expect(lines).toContain('THREAD yes');
      // session.start plus the 40 notes, every one of them sealed.
      expect(lines).toContain('SEALED 41');
      const report = await verifyFile(file);
      expect(report.failures).toEqual([]);
      expect(report.events).toBe(41);
    }, 60_000);
  }
});
