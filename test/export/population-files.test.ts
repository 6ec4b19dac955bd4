import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { exportBundle, verifyZipBundle } from '../../src/export/index.js';
import { openWitness } from '../../src/index.js';
import { SqliteLedger, type AppendRequest } from '../../src/store/index.js';
import { POPULATIONS, PopulationBuilder, PopulationFiles, populationLine, type ScopedHeader } from '../../src/export/populations.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

const root = tempDir('witness-population-files-');
let n = 0;
const fresh = () => {
  const d = path.join(root, `d${++n}`);
  fs.mkdirSync(d);
  return d;
};

const KINDS = ['tool.call', 'approval.request', 'approval.decision', 'config.change', 'human.halt', 'review', 'audit.access', 'error', 'note'];
const OUTCOMES = [undefined, 'success', 'error', 'denied'] as const;

/** A header of every shape the predicates look at: kinds, outcomes, a policy deny now and then. */
function header(i: number): ScopedHeader & { hash: string } {
  const outcome = OUTCOMES[i % OUTCOMES.length];
  return {
    id: `0190e2c4-0000-7000-8000-${String(i).padStart(12, '0')}`,
    stream: `s-${i % 3}`,
    seq: Math.floor(i / 3),
    kind: KINDS[i % KINDS.length]!,
    ts: new Date(Date.UTC(2026, 10, 1) + i).toISOString(),
    agent: { id: 'a' },
    ...(outcome === undefined ? {} : { outcome }),
    ...(i % 7 === 0 ? { policy: { decision: 'deny', rule: 'r' } } : {}),
    hash: i.toString(16).padStart(64, '0'),
  } as ScopedHeader & { hash: string };
}

describe('PopulationFiles (the exporter writes each population to a file as the span is read)', () => {
  it('writes the same text, count and SHA-256 as PopulationBuilder for every population', () => {
    const dir = fresh();
    const files = new PopulationFiles(dir);
    const builder = new PopulationBuilder();
    for (let i = 0; i < 5_000; i++) {
      files.add(1_000 + i, header(i));
      builder.add(1_000 + i, header(i));
    }
    const got = files.finish();
    const want = builder.results();
    expect(got.map((p) => p.def.name)).toEqual(POPULATIONS.map((p) => p.name));
    for (const [i, p] of got.entries()) {
      const w = want[i]!;
      expect(p.file).toBe(path.join(dir, `${p.def.name}.jsonl`));
      expect(fs.readFileSync(p.file, 'utf8'), p.def.name).toBe(w.text);
      expect({ count: p.count, digest: p.digest }, p.def.name).toEqual({ count: w.count, digest: w.digest });
    }
    // Every population is non-empty here, so none of the comparisons above is of two empty files.
    expect(got.every((p) => p.count > 0)).toBe(true);
  });

  it('does not hold a large population: its lines reach the file while the span is still being read', () => {
    const dir = fresh();
    const files = new PopulationFiles(dir);
    const file = path.join(dir, 'errors-and-gaps.jsonl');
    // 2,000 errors of about 200 bytes a line: far past the 64 KiB gathered before a write.
    let total = 0;
    for (let i = 0; i < 2_000; i++) {
      const h = { ...header(i), kind: 'error' as const };
      files.add(i, h);
      total += Buffer.byteLength(populationLine(i, h));
    }
    expect(total).toBeGreaterThan(300 * 1024);
    expect(fs.statSync(file).size).toBeGreaterThanOrEqual(total - 64 * 1024);
    const errors = files.finish().find((p) => p.def.name === 'errors-and-gaps');
    expect(errors).toMatchObject({ file, count: 2_000 });
    expect(fs.statSync(file).size).toBe(fs.readFileSync(file).length);
    expect(fs.readFileSync(file, 'utf8').split('\n').length - 1).toBe(2_000);
  });

  it('refuses a directory that already holds a population file, and leaves that file as it was', () => {
    const dir = fresh();
    fs.writeFileSync(path.join(dir, 'reviews.jsonl'), 'not ours\n');
    expect(() => new PopulationFiles(dir)).toThrow(/EEXIST/);
    expect(fs.readFileSync(path.join(dir, 'reviews.jsonl'), 'utf8')).toBe('not ours\n');
  });

  it('refuses a directory that does not exist', () => {
    expect(() => new PopulationFiles(path.join(root, 'absent'))).toThrow(/ENOENT/);
  });

  it('writes empty files for empty populations, with the SHA-256 of no bytes', () => {
    const got = new PopulationFiles(fresh()).finish();
    for (const p of got) {
      expect(fs.readFileSync(p.file, 'utf8')).toBe('');
      expect(p).toMatchObject({ count: 0, digest: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' });
    }
  });
});

describe('exportBundle with large populations', () => {
  /** `events` events of one agent, every other one a failed tool call (in errors-and-gaps), sealed. */
  async function failingLedger(events: number): Promise<string> {
    const file = tempDb(root);
    const w = await openWitness({ store: `sqlite:${file}`, name: 'pop-files', strict: true, seal: { enabled: false } });
    await w.close();
    const ledger = SqliteLedger.open({ path: file, create: false });
    try {
      const batch: AppendRequest[] = [];
      for (let i = 0; i < events; i++) {
        batch.push({
          stream: 'sess-fails',
          agent: { id: 'flaky-bot' },
          kind: 'tool.call',
          resource: 'crm',
          action: 'lookup',
          outcome: i % 2 === 0 ? 'error' : 'success',
          data: { tool: 'crm.lookup', arguments: { n: i } },
        });
      }
      await ledger.append(batch);
      await ledger.seal();
    } finally {
      await ledger.close();
    }
    return file;
  }

  /** Runs `fn` with os.tmpdir() pointing at a fresh directory; returns what it left there. */
  async function inTmp(fn: () => Promise<unknown>): Promise<string[]> {
    const tmp = fresh();
    const was = process.env['TMPDIR'];
    process.env['TMPDIR'] = tmp;
    try {
      await fn().catch((e: unknown) => e);
    } finally {
      if (was === undefined) delete process.env['TMPDIR'];
      else process.env['TMPDIR'] = was;
    }
    return fs.readdirSync(tmp);
  }

  it('streams each population file into the bundle, which verifies, and leaves no temporary files', async () => {
    const file = await failingLedger(3_000);
    const out = path.join(fresh(), 'b.zip');
    const ledger = SqliteLedger.open({ path: file, create: false });
    let result: Awaited<ReturnType<typeof exportBundle>> | undefined;
    try {
      expect(await inTmp(async () => (result = await exportBundle(ledger, { since: null, until: null, agents: ['flaky-bot'], sessions: null, regimes: [] }, out)))).toEqual([]);
    } finally {
      await ledger.close();
    }
    expect(result?.inScope).toBe(3_000);
    const report = await verifyZipBundle(out);
    expect(report.first).toBeUndefined();
    expect(report.bundle?.populations.find((p) => p.name === 'errors-and-gaps')).toMatchObject({ count: 1_500 });
    expect(report.ok).toBe(true);
  }, 120_000);

  it('removes its population files when the export fails after reading the span', async () => {
    const file = await failingLedger(200);
    // The zip's folder is a regular file: refused when the bundle is opened, after the span was read and the export recorded.
    const blocker = path.join(fresh(), 'not-a-dir');
    fs.writeFileSync(blocker, 'x');
    const ledger = SqliteLedger.open({ path: file, create: false });
    let failure: unknown;
    try {
      const left = await inTmp(async () => {
        try {
          await exportBundle(ledger, { since: null, until: null, agents: ['flaky-bot'], sessions: null, regimes: [] }, path.join(blocker, 'b.zip'));
        } catch (e) {
          failure = e;
        }
      });
      expect(left).toEqual([]);
    } finally {
      await ledger.close();
    }
    expect(String(failure)).toMatch(/The output directory .*not-a-dir exists and is not a directory/);
  }, 120_000);
});
