import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openWitness } from '../../src/index.js';
import { sidecarPaths } from '../../src/store/index.js';
import { BIN } from '../helpers/ledger.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * An auditor reads a ledger with an account of their own, which may read the ledger but write
 * nothing beside it (a root-owned directory): `verify` and `query` must work there, without the
 * private key and without creating SQLite's -shm file.
 */

const READER = 'nobody';
const canSwitchUser = process.getuid?.() === 0 && spawnSync('runuser', ['-u', READER, '--', 'true']).status === 0;

function asReader(args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync('runuser', ['-u', READER, '--', process.execPath, BIN, ...args], { encoding: 'utf8', cwd: '/', timeout: 60_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

describe.runIf(canSwitchUser)('a reader without write access', () => {
  it('verifies and queries a ledger in a directory it cannot write, without reading the private key', async () => {
    const dir = tempDir('witness-readonly-');
    const file = path.join(dir, 'witness.db');
    const w = await openWitness({ store: `sqlite:${file}` });
    const s = await w.session({ agent: { id: 'support-bot' } });
    await s.tool('billing.refund', { amount: 50 }, () => ({ ok: true }));
    await s.end({ reason: 'completed' });
    await w.close();
    // Root owns everything; the reader may enter and read, never write. The key stays 0600.
    fs.chmodSync(dir, 0o755);
    for (const f of fs.readdirSync(dir)) {
      const p = path.join(dir, f);
      if (fs.statSync(p).isFile()) fs.chmodSync(p, p === sidecarPaths(file).key || p === sidecarPaths(file).sealed ? 0o600 : 0o644);
    }
    const before = fs.readdirSync(dir).sort();

    const v = asReader(['verify', '--store', `sqlite:${file}`, '--json']);
    expect(v.stderr).toBe('');
    expect(v.code).toBe(0);
    expect((JSON.parse(v.stdout) as { ok: boolean; events: number }).ok).toBe(true);

    const q = asReader(['query', '--store', `sqlite:${file}`, '--kind', 'tool.call', '--json']);
    expect(q.stderr).toBe('');
    expect(q.code).toBe(0);
    expect((JSON.parse(q.stdout) as { events: Array<{ action: string }> }).events.map((e) => e.action)).toEqual(['billing.refund']);

    expect(fs.readdirSync(dir).sort()).toEqual(before);
    // The reader really could not write there (so the test proves what it claims).
    expect(() => execFileSync('runuser', ['-u', READER, '--', 'touch', path.join(dir, 'probe')], { stdio: 'ignore' })).toThrow();
  });
});
