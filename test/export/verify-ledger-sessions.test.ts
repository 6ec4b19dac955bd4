import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, runBin } from '../helpers/ledger.js';
import { tempDir } from '../helpers/tmp.js';
import { buildV2Bundle, refreshManifest, sampleLedger } from './verify-v2-fixture.js';
import { expectPassed, expectRefused, spawn, threeVerdicts } from './verify-three.js';

/**
 * What the three verifiers say of the manifest's ledger and of the sessions they verified, alike
 * (docs/FORMAT.md 7.2, 7.12): `ledger.id` is believed only as the ledger id of the origin the
 * checkpoint signs; `created_at` is informative and no verdict rests on it; "N session(s)" counts
 * agent sessions, not the witness.* streams Witness records itself.
 */

const dir = tempDir('witness-verify-ledger-');
let n = 0;

/** A bundle of session s-refund: its span holds s-refund, s-other and witness.approvals, then the export's witness.audit-access event. */
function bundle() {
  return buildV2Bundle(path.join(dir, `b${++n}`), sampleLedger(), { scope: { sessions: ['s-refund'] }, bound: { 'README.txt': 'how to verify' } });
}

function editManifest(d: string, edit: (m: Record<string, unknown>) => void): void {
  const file = path.join(d, 'manifest.json');
  const m = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  edit(m);
  fs.writeFileSync(file, `${JSON.stringify(m, null, 2)}\n`);
}

/** The counts clause of a PASS headline: "N events in M session(s), verified against K signed checkpoint(s) (tree size S)." */
const countsOf = (text: string) => /: (\d[\d,]* events in \d+ session\(s\), verified against \d+ signed checkpoint\(s\) \(tree size \d+\)\.)$/m.exec(text)?.[1];

describe('the manifest ledger and the session count, in all three verifiers', () => {
  it('count agent sessions only (s-refund and s-other), not the witness.approvals and witness.audit-access streams, and print the same counts', async () => {
    const b = bundle();
    const v = await threeVerdicts(b.dir, b.vkey);
    expectPassed(v);
    expect(v.witness.report.streams).toBe(2);
    expect(v.standalone.report.streams).toBe(2);
    expect(v.python.report.sessions).toBe(2);
    expect([v.standalone.report.events, v.python.report.events]).toEqual([v.witness.report.events, v.witness.report.events]);
    const texts = {
      witness: (await runBin(['verify', b.dir, '--trusted-key', b.vkey])).stdout,
      standalone: (await spawn(process.execPath, [path.join(REPO_ROOT, 'src', 'export', 'standalone', 'verify.mjs'), b.dir, '--trusted-key', b.vkey])).stdout,
      python: (await spawn('/usr/bin/python3', [path.join(REPO_ROOT, 'test', 'export', 'independent', 'verify_bundle.py'), b.dir, '--trusted-key', b.vkey])).stdout,
    };
    const want = `${v.witness.report.events} events in 2 session(s), verified against 2 signed checkpoint(s) (tree size ${b.manifest.checkpoint.size}).`;
    for (const [who, text] of Object.entries(texts)) expect(countsOf(text), `${who}:\n${text}`).toBe(want);
  });

  it('fail a manifest whose ledger.id is not the ledger id of the signed origin as checkpoint_invalid, and only that', async () => {
    const b = bundle();
    editManifest(b.dir, (m) => void ((m['ledger'] as { id: string }).id = '0190c0de-0000-7000-8000-000000000999'));
    expectRefused(await threeVerdicts(b.dir, b.vkey), /ledger/, 'checkpoint_invalid');
  });

  it('pass a manifest whose created_at was changed: it is informative, and no verdict rests on it', async () => {
    const b = bundle();
    editManifest(b.dir, (m) => void (m['created_at'] = '1999-01-01T00:00:00.000Z'));
    refreshManifest(b.dir);
    expectPassed(await threeVerdicts(b.dir, b.vkey));
  });
});
