import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { openWitness } from '../../src/index.js';
import { SqliteLedger, type AppendRequest } from '../../src/store/index.js';
import { BIN, buildLedger, driverOf, oneSentence, runBin, type BuiltLedger } from '../helpers/ledger.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/** `witness export --format ocsf|jsonl` through the built binary (run `npx tsc -p tsconfig.build.json` first). */

const dir = tempDir('witness-siem-cli-');
let base: BuiltLedger;
let big: string;

beforeAll(async () => {
  base = await buildLedger(dir);
  // Big enough (about 1.5 MB of JSONL) that a pipe closed after one line fails a later write.
  big = tempDb(dir);
  const w = await openWitness({ store: `sqlite:${big}`, name: 'siem-cli', strict: true, seal: { enabled: false } });
  try {
    const batch: AppendRequest[] = [];
    for (let i = 0; i < 3000; i++) batch.push({ stream: `s-${i % 7}`, kind: 'note', agent: { id: 'bulk-bot' }, data: { text: 'y'.repeat(300) } });
    await driverOf(w).append(batch);
    await driverOf(w).seal();
  } finally {
    await w.close();
  }
}, 60_000);

const lines = (text: string) =>
  text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('witness export --format', () => {
  it('streams JSONL of a session to standard output with -o -, the summary on standard error', async () => {
    const r = await runBin(['export', '--format', 'jsonl', '--session', base.sessions.b, '-o', '-', '--as', 'dana', '--store', `sqlite:${base.file}`]);
    expect(r.code).toBe(0);
    const got = lines(r.stdout);
    expect(got.map((l) => [l['stream'], l['leaf']])).toEqual([0, 1, 2, 3, 4].map((s) => [base.sessions.b, base.pos(base.sessions.b, s)]));
    expect(r.stderr).toMatch(/^Exported 5 event\(s\) as JSONL to standard output \(leaves \d+–\d+, proofs against checkpoint size \d+\)\.\n$/);
  });

  it('writes OCSF lines to a new file, refuses an existing one and an unknown format with exit 2, and records the export', async () => {
    const out = path.join(dir, 'events.ocsf.jsonl');
    const r = await runBin(['export', '--format', 'ocsf', '--since', '2000-01-01', '-o', out, '--as', 'dana', '--store', `sqlite:${base.file}`, '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.stdout) as { events: number; checkpoint: { size: number }; accessEvent: string };
    const got = lines(fs.readFileSync(out, 'utf8'));
    expect(got.length).toBe(summary.events);
    expect(got.length).toBeGreaterThanOrEqual(base.size);
    expect(got.filter((l) => l['class_uid'] === 6003).length).toBeGreaterThan(0);

    const again = await runBin(['export', '--format', 'ocsf', '-o', out, '--store', `sqlite:${base.file}`]);
    expect(again.code).toBe(2);
    expect(oneSentence(again.stderr)).toMatch(/already exists; choose a new path with -o/);
    const bad = await runBin(['export', '--format', 'xml', '-o', '-', '--store', `sqlite:${base.file}`]);
    expect(bad.code).toBe(2);
    expect(bad.stdout).toBe('');
    expect(oneSentence(bad.stderr)).toMatch(/--format "xml" is not an export format; use one of evidence, ocsf, jsonl\./);

    const ledger = SqliteLedger.open({ path: base.file, create: false, readonly: true });
    try {
      const e = await ledger.getEvent(summary.accessEvent);
      expect(e).toMatchObject({ kind: 'audit.access', action: 'export', principal: { id: 'dana' } });
      expect(e!.data).toMatchObject({ operation: 'export', format: 'ocsf/1.8.0', count: summary.events, complete: true });
    } finally {
      await ledger.close();
    }
  });

  it('exits 0 when the reader closes early (| head -1), and records the export as incomplete', async () => {
    const cmd = `"${process.execPath}" "${BIN}" export --format jsonl -o - --as erin --store "sqlite:${big}" | head -1 > /dev/null; echo "exit=\${PIPESTATUS[0]}"`;
    const r = await new Promise<{ stdout: string; stderr: string }>((resolve, reject) =>
      execFile('bash', ['-c', cmd], { timeout: 60_000 }, (err, stdout, stderr) => (err === null ? resolve({ stdout, stderr }) : reject(err))),
    );
    expect(r.stdout.trim()).toBe('exit=0');
    expect(r.stderr).not.toMatch(/EPIPE|Error|at /);
    const ledger = SqliteLedger.open({ path: big, create: false, readonly: true });
    try {
      const page = await ledger.query({ kind: 'audit.access' });
      const last = page.events[page.events.length - 1]!;
      expect(last.data).toMatchObject({ actor: 'erin', format: 'jsonl', complete: false });
      expect((last.data as { count: number }).count).toBeLessThan(3000);
    } finally {
      await ledger.close();
    }
  }, 60_000);
});
