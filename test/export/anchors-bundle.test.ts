import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { anchorLatest, generateCosignerKey, parseCosignerSignerKey, parseCosignerVerifierKey, startCosigner, type RunningCosigner } from '../../src/anchor/index.js';
import { parseVerifierKey } from '../../src/core/index.js';
import type { Ledger } from '../../src/store/index.js';
import { makeCa, startTsa } from '../anchor/tsa-authority.js';
import { REPO_ROOT, runCli } from '../helpers/ledger.js';
import { tempDir } from '../helpers/tmp.js';
import { Agent, newLedger } from '../monitor/fixture.js';
import { spawn } from './verify-three.js';

const STANDALONE = path.join(REPO_ROOT, 'src', 'export', 'standalone', 'verify.mjs');
const PY = path.join(REPO_ROOT, 'test', 'export', 'independent', 'verify_bundle.py');

interface Three {
  witness: { exit: number; codes: string[]; text: string };
  standalone: { exit: number; codes: string[]; text: string };
  python: { exit: number; codes: string[]; text: string };
}

const codes = (fs: Array<{ code: string }>) => [...new Set(fs.map((f) => f.code))].sort();

/** witness verify, verify.mjs and verify_bundle.py on one bundle, with the same extra flags; their codes and JSON. */
async function three(bundle: string, logKey: string, extra: string[]): Promise<Three> {
  const [w, s, p] = await Promise.all([
    runCli(['verify', bundle, '--trusted-key', logKey, '--json', ...extra]),
    spawn(process.execPath, [STANDALONE, bundle, '--trusted-key', logKey, '--json', ...extra]),
    spawn('/usr/bin/python3', [PY, bundle, '--trusted-key', logKey, '--json', ...extra.filter((a, i) => a !== '--tsa-cert' && extra[i - 1] !== '--tsa-cert')]),
  ]);
  // witness verify --json keeps the anchors' verdict beside the bundle's, as for a ledger.
  const wr = JSON.parse(w.stdout) as { failures: Array<{ code: string }>; anchors?: { failures: Array<{ code: string }> } };
  const sr = JSON.parse(s.stdout) as { failures: Array<{ code: string }> };
  const pr = JSON.parse(p.stdout) as { failures: Array<{ code: string }> };
  return {
    witness: { exit: w.code, codes: codes([...wr.failures, ...(wr.anchors?.failures ?? [])]), text: w.stdout },
    standalone: { exit: s.code, codes: codes(sr.failures), text: s.stdout + s.stderr },
    python: { exit: p.code, codes: codes(pr.failures), text: p.stdout + p.stderr },
  };
}

describe('[R-ANCHOR-BUNDLE] evidence bundles carry the ledger’s cosignatures and time-stamps (anchors.jsonl), checked by all three verifiers', () => {
  const dir = tempDir('witness-anchors-bundle-');
  const ca = path.join(dir, 'ca');
  const other = path.join(dir, 'other');
  const w = generateCosignerKey('witness.test/w1');
  const stranger = generateCosignerKey('witness.test/w2');
  const label = `witness.test/w1+${w.verifierKey.split('+')[1]}`;
  let tsa: http.Server;
  let tsaUrl: string;
  let cosigner: RunningCosigner;
  let ledger: Ledger;
  let file: string;
  let store: string;
  let logKey: string;
  let oldAnchors: string;

  const exportTo = async (name: string, anchors?: string): Promise<string> => {
    const out = path.join(dir, name);
    const r = await runCli(['export', '--store', store, '--agent', 'bot', '-o', out, '--as', 'auditor', ...(anchors === undefined ? [] : ['--anchors', anchors])]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    return out;
  };

  beforeAll(async () => {
    makeCa(ca, 'Test');
    makeCa(other, 'Other');
    ({ server: tsa, url: tsaUrl } = await startTsa(ca));

    ({ ledger, file, url: store } = await newLedger(dir, 'anchored'));
    logKey = (await ledger.publicKeys())[0]!.vkey;
    const stateDir = path.join(dir, 'witness-state');
    fs.mkdirSync(stateDir);
    cosigner = await startCosigner({ signer: parseCosignerSignerKey(w.signerKey), stateDir, logs: new Map([[ledger.info.origin, [parseVerifierKey(logKey)]]]) });
    const verifier = parseCosignerVerifierKey(w.verifierKey);
    const anchors = `${file}.anchors.jsonl`;
    const bot = new Agent(ledger, 'bot');
    await bot.call('crm.lookup', new Date().toISOString());
    await ledger.seal();
    // The first checkpoint cosigned and time-stamped: kept aside as an anchors file over a checkpoint that does not cover the span.
    expect((await anchorLatest(ledger, { anchorsFile: anchors, cosigners: [{ url: cosigner.url, verifier }], tsa: [tsaUrl] })).refused).toEqual([]);
    oldAnchors = path.join(dir, 'old.anchors.jsonl');
    fs.copyFileSync(anchors, oldAnchors);
    await bot.call('billing.refund', new Date().toISOString());
    await ledger.seal();
    expect((await anchorLatest(ledger, { anchorsFile: anchors, cosigners: [{ url: cosigner.url, verifier }], tsa: [tsaUrl] })).refused).toEqual([]);
    await ledger.close();
  }, 60_000);
  afterAll(async () => {
    await cosigner.close();
    await new Promise<void>((r) => tsa.close(() => r()));
  });

  it('an anchored ledger exports anchors.jsonl, bound by the signed export record, and all three verifiers pass --require-cosigner naming the cosigner', async () => {
    const bundle = await exportTo('anchored');
    const lines = fs.readFileSync(path.join(bundle, 'anchors.jsonl'), 'utf8').trim().split('\n');
    expect(lines.map((l) => (JSON.parse(l) as { type: string }).type).sort()).toEqual(['cosignature', 'cosignature', 'timestamp', 'timestamp']);
    const v = await three(bundle, logKey, ['--require-cosigner', w.verifierKey]);
    for (const [who, r] of Object.entries(v)) {
      expect(r.codes, `${who}: ${r.text}`).toEqual([]);
      expect(r.exit, who).toBe(0);
    }
    const human = await runCli(['verify', bundle, '--trusted-key', logKey, '--require-cosigner', w.verifierKey]);
    expect(human.stdout).toContain(`anchor: cosignature by ${label} on checkpoint`);
    const mjs = await spawn(process.execPath, [STANDALONE, bundle, '--trusted-key', logKey, '--require-cosigner', w.verifierKey]);
    expect(mjs.stdout).toContain(`anchor: cosignature by ${label} on checkpoint`);
    expect(v.python.text).toContain(`cosignature by ${label} on checkpoint`);
    // The same from a zip: every verifier reads anchors.jsonl out of the archive.
    const zipped = await exportTo('anchored.zip');
    for (const [who, r] of Object.entries(await three(zipped, logKey, ['--require-cosigner', w.verifierKey]))) expect([r.exit, r.codes], `${who}: ${r.text}`).toEqual([0, []]);
    // Another witness's key is not satisfied by this one's cosignature.
    const wrong = await three(bundle, logKey, ['--require-cosigner', stranger.verifierKey]);
    for (const [who, r] of Object.entries(wrong)) expect(r.codes, who).toEqual(['cosignature_missing']);
    // Dropping a line of anchors.jsonl is caught by the export record's binding.
    const dropped = path.join(dir, 'dropped');
    fs.cpSync(bundle, dropped, { recursive: true });
    fs.writeFileSync(path.join(dropped, 'anchors.jsonl'), `${lines.filter((l) => !l.includes('"timestamp"')).join('\n')}\n`);
    const d = await three(dropped, logKey, []);
    for (const [who, r] of Object.entries(d)) expect(r.exit, `${who}: ${r.text}`).toBe(1);
    // A line that is no anchor record (no type) is anchors_unreadable in all three, never a crash.
    fs.appendFileSync(path.join(dropped, 'anchors.jsonl'), `${JSON.stringify({ v: 1, size: 1, checkpoint_sha256: '0'.repeat(64) })}\n`);
    for (const [who, r] of Object.entries(await three(dropped, logKey, []))) expect(r.codes, `${who}: ${r.text}`).toContain('anchors_unreadable');
  });

  it('a bundle without anchors fails --require-cosigner with cosignature_missing in all three', async () => {
    const bundle = await exportTo('bare', path.join(dir, 'none.anchors.jsonl'));
    expect(fs.existsSync(path.join(bundle, 'anchors.jsonl'))).toBe(false);
    const v = await three(bundle, logKey, ['--require-cosigner', w.verifierKey]);
    for (const [who, r] of Object.entries(v)) {
      expect(r.codes, `${who}: ${r.text}`).toEqual(['cosignature_missing']);
      expect(r.exit, who).toBe(1);
    }
    // Without the flag the bundle verifies as before.
    for (const [who, r] of Object.entries(await three(bundle, logKey, []))) expect(r.exit, who).toBe(0);
  });

  it('a cosignature line edited by one byte is cosignature_invalid in all three', async () => {
    const edited = path.join(dir, 'edited.anchors.jsonl');
    const recs = fs
      .readFileSync(`${file}.anchors.jsonl`, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; line?: string });
    const last = recs.filter((r) => r.type === 'cosignature').at(-1)!;
    // One base64 character of the signature changed: still a well-formed line, no longer a valid signature.
    const at = last.line!.length - 10;
    last.line = last.line!.slice(0, at) + (last.line![at] === 'A' ? 'B' : 'A') + last.line!.slice(at + 1);
    fs.writeFileSync(edited, recs.map((r) => `${JSON.stringify(r)}\n`).join(''));
    const bundle = await exportTo('edited', edited);
    const v = await three(bundle, logKey, ['--require-cosigner', w.verifierKey]);
    for (const [who, r] of Object.entries(v)) {
      expect(r.codes, `${who}: ${r.text}`).toContain('cosignature_invalid');
      expect(r.exit, who).toBe(1);
    }
  });

  it('a valid cosignature over an older checkpoint that does not cover the span is not counted: cosignature_missing', async () => {
    const bundle = await exportTo('old', oldAnchors);
    expect(fs.readFileSync(path.join(bundle, 'anchors.jsonl'), 'utf8')).toContain('"cosignature"');
    const v = await three(bundle, logKey, ['--require-cosigner', w.verifierKey]);
    for (const [who, r] of Object.entries(v)) expect(r.codes, `${who}: ${r.text}`).toEqual(['cosignature_missing']);
  });

  it('witness verify and verify.mjs with --tsa-cert report the TSA time from the signed token and refuse another CA', async () => {
    const bundle = await exportTo('stamped');
    const ok = await three(bundle, logKey, ['--tsa-cert', path.join(ca, 'ca.pem')]);
    for (const [who, r] of Object.entries(ok)) expect(r.exit, `${who}: ${r.text}`).toBe(0);
    const timeLine = /anchor: time-stamp by http:\/\/127\.0\.0\.1:\d+\/tsa on checkpoint \d+: \d{4}-\d\d-\d\dT[\d:.]+Z \(openssl ts -verify OK\)/;
    expect((await runCli(['verify', bundle, '--trusted-key', logKey, '--tsa-cert', path.join(ca, 'ca.pem')])).stdout).toMatch(timeLine);
    expect((await spawn(process.execPath, [STANDALONE, bundle, '--trusted-key', logKey, '--tsa-cert', path.join(ca, 'ca.pem')])).stdout).toMatch(timeLine);
    expect(ok.python.text).toMatch(/time-stamp\(s\) in anchors.jsonl were not checked here/);
    const wrong = await three(bundle, logKey, ['--tsa-cert', path.join(other, 'ca.pem')]);
    expect(wrong.witness.codes).toEqual(['timestamp_invalid', 'timestamp_missing']);
    expect(wrong.standalone.codes).toEqual(['timestamp_invalid', 'timestamp_missing']);
    expect(wrong.witness.exit).toBe(1);
    expect(wrong.standalone.exit).toBe(1);
  });
});
