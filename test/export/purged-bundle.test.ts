import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { leafRanges } from '../../src/core/index.js';
import { exportBundle } from '../../src/export/index.js';
import { SqliteLedger, runRetention, setRetentionRule, type AppendRequest } from '../../src/store/index.js';
import { tempDb, tempDir } from '../helpers/tmp.js';
import { expectPassed, threeVerdicts, type Verdicts } from './verify-three.js';
import { readEvents, refreshManifest, writeEvents } from './verify-v2-fixture.js';

/*
 * A full evidence bundle of a session whose payloads were partly erased by the retention purge
 * (docs/FORMAT.md 7.13): the bundle carries the retention.purge record that lists them, with its
 * payload and an inclusion proof, bound by the signed export record, and all three verifiers
 * (witness verify, verify.mjs, the Python verifier) pass and name the purge. Taking the record out,
 * widening its leaves, or nulling a payload it does not list fails in all three.
 */

const dir = tempDir('witness-purged-bundle-');
const agent = { id: 'support-bot' };
const NONE = { since: null, until: null, agents: null, sessions: null, regimes: [] };

let vkey = '';
let policy = '';
let purged: number[] = [];
let kept = 0;
let recordLeaf = 0;
let bundle = '';
let windowed = '';

beforeAll(async () => {
  const ledger = SqliteLedger.open({ path: tempDb(dir) });
  try {
    vkey = (await ledger.publicKeys())[0]!.vkey;
    const r = await ledger.append([
      { stream: 's1', agent, kind: 'session.start', data: { purpose: 'refund' } },
      { stream: 's1', agent, kind: 'note', data: { text: 'customer Ann asked for a refund' } },
      { stream: 's1', agent, kind: 'note', data: { text: 'card ending 4242' } },
      { stream: 's1', agent, kind: 'note', data: { text: 'refund done' } },
      { stream: 's2', agent, kind: 'note', data: { text: 'another session, purged too' } },
    ] as AppendRequest[]);
    purged = [r[1]!.pos, r[2]!.pos, r[3]!.pos];
    kept = r[0]!.pos;
    // The retention path a compliance team runs: a rule recorded by the CLI, then a run a year later.
    const who = { actor: 'dpo@corp', recorder: { kind: 'cli' as const } };
    await setRetentionRule(ledger, { match: { kind: 'note' }, olderThan: '30d' }, who);
    await ledger.seal();
    const run = await runRetention(ledger, who, { now: new Date(Date.now() + 365 * 86_400_000) });
    expect(run.purged).toBe(4);
    policy = run.policies[0]!.policy;
    recordLeaf = run.policies[0]!.records[0]!.pos;
    await ledger.seal();
    bundle = path.join(dir, 'bundle');
    await exportBundle(ledger, { ...NONE, sessions: ['s1'] }, bundle, { actor: 'auditor@corp' });
    // A time window holds everything: the purge record is then an in-scope event of the span too.
    windowed = path.join(dir, 'windowed');
    await exportBundle(ledger, { ...NONE, since: '2000-01-01T00:00:00.000Z' }, windowed, { actor: 'auditor@corp' });
  } finally {
    await ledger.close();
  }
});

/** A copy of the bundle, edited by `edit` and its manifest re-listed, as a forger would. */
function forged(name: string, edit: (to: string) => void): string {
  const to = path.join(dir, name);
  fs.cpSync(bundle, to, { recursive: true });
  edit(to);
  refreshManifest(to);
  return to;
}

function expectFailed(v: Verdicts, code: string): void {
  for (const [who, r] of Object.entries(v)) {
    expect(r.exit, `${who}: ${r.reason}`).toBe(1);
    expect(r.codes, `${who}: ${r.reason}`).toContain(code);
  }
}

const purgeLines = (to: string) =>
  fs
    .readFileSync(path.join(to, 'purges.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('a full bundle holding purged payloads', () => {
  it('[R-RETENTION] carries the retention.purge record with its proof, and all three verifiers pass and name the purge', async () => {
    const lines = purgeLines(bundle);
    expect(lines.map((l) => l['leaf'])).toEqual([recordLeaf]);
    expect((lines[0]!['data'] as { policy: string }).policy).toBe(policy);
    expect(fs.readFileSync(path.join(bundle, 'purge-proofs.jsonl'), 'utf8').split('\n').filter(Boolean)).toHaveLength(1);
    expect(fs.readFileSync(path.join(bundle, 'README.txt'), 'utf8')).toContain('purges.jsonl            the retention.purge records listing');
    const events = readEvents(bundle);
    for (const leaf of purged) expect(events.find((e) => e['leaf'] === leaf)!['data']).toBeNull();
    expect(events.find((e) => e['leaf'] === kept)!['data']).toEqual({ purpose: 'refund' });

    const v = await threeVerdicts(bundle, vkey);
    expectPassed(v);
    const named = `3 payloads purged under policy ${policy} by the record at leaf ${recordLeaf}`;
    expect(v.witness.report.warnings.join(' | ')).toContain(named);
    expect(v.witness.report.purged).toMatchObject({ payloads: 3, records: [{ leaf: recordLeaf, policy, count: 3 }] });
    expect(JSON.stringify(v.standalone.report)).toContain(named);
    expect(JSON.stringify(v.python.report)).toContain(named);
  });

  it("[R-RETENTION] passes when the record itself is in scope (a time window), counting the other session's purged payload too", async () => {
    const events = readEvents(windowed);
    expect((events.find((e) => e['leaf'] === recordLeaf)!['data'] as { policy: string }).policy).toBe(policy);
    const v = await threeVerdicts(windowed, vkey);
    expectPassed(v);
    expect(v.witness.report.warnings.join(' | ')).toContain(`4 payloads purged under policy ${policy} by the record at leaf ${recordLeaf}`);
  });

  it("[R-RETENTION] fails in all three when the purge record's proof is dropped", async () => {
    const unproved = forged('unproved', (to) => fs.rmSync(path.join(to, 'purge-proofs.jsonl')));
    const v = await threeVerdicts(unproved, vkey);
    expectFailed(v, 'payload_missing');
  });

  it('[R-RETENTION] passes as a zip too', async () => {
    const zip = path.join(dir, 'bundle.zip');
    execFileSync('zip', ['-qrX', zip, '.'], { cwd: bundle });
    expectPassed(await threeVerdicts(zip, vkey));
  });

  it('[R-RETENTION] fails in all three without the purge record (dropped from the bundle)', async () => {
    const dropped = forged('dropped', (to) => {
      fs.rmSync(path.join(to, 'purges.jsonl'));
      fs.rmSync(path.join(to, 'purge-proofs.jsonl'));
    });
    const v = await threeVerdicts(dropped, vkey);
    expectFailed(v, 'payload_missing');
    expectFailed(v, 'export_record_mismatch');
  });

  it('[R-RETENTION] fails in all three when the record is edited to list one more leaf', async () => {
    const widened = forged('widened', (to) => {
      const [rec] = purgeLines(to);
      const d = rec!['data'] as { leaves: Array<[number, number]>; count: number };
      d.leaves = leafRanges([kept, ...purged, purged[purged.length - 1]! + 1]);
      d.count += 1;
      fs.writeFileSync(path.join(to, 'purges.jsonl'), `${JSON.stringify(rec)}\n`);
      writeEvents(
        to,
        readEvents(to).map((e) => (e['leaf'] === kept ? { ...e, data: null, salt: null } : e)),
      );
    });
    const v = await threeVerdicts(widened, vkey);
    expectFailed(v, 'payload_mismatch');
    expectFailed(v, 'payload_missing');
  });

  it('[R-RETENTION] fails in all three when a payload no record lists is nulled, in a directory and in a rebuilt zip', async () => {
    const stripped = forged('stripped', (to) =>
      writeEvents(
        to,
        readEvents(to).map((e) => (e['leaf'] === kept ? { ...e, data: null, salt: null } : e)),
      ),
    );
    const zipped = path.join(dir, 'stripped.zip');
    execFileSync('zip', ['-qrX', zipped, '.'], { cwd: stripped });
    for (const target of [stripped, zipped]) {
      const v = await threeVerdicts(target, vkey);
      for (const [who, r] of Object.entries(v)) {
        expect(r.codes, `${who}: ${r.reason}`).toEqual(['payload_missing']);
        expect(r.exit, who).toBe(1);
      }
    }
  });
});
