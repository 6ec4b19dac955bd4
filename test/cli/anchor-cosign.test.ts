import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLedger, type AppendRequest } from '../../src/store/index.js';
import { runCli } from '../helpers/ledger.js';
import { tempDir } from '../helpers/tmp.js';

/*
 * External anchoring as two people run it (issue 15): the witness's operator makes a key and runs
 * `witness cosign serve` (the real binary, its own process and state directory); the log's
 * operator seals, runs `witness anchor`, and an auditor runs `witness verify --require-cosigner`.
 */
const dir = tempDir('witness-cli-anchor-');
const file = path.join(dir, 'ledger.db');
const store = `sqlite:${file}`;
const keyFile = path.join(dir, 'witness.key');
const stateDir = path.join(dir, 'state');
const copyDir = path.join(dir, 'copies');
const note = (i: number): AppendRequest => ({ stream: 's', agent: { id: 'agent' }, kind: 'note', data: { text: `n${i}` } });
let vkey: string;
let url: string;
let child: ChildProcess;

async function addAndSeal(i: number): Promise<void> {
  const l = await openLedger(store, { create: true, name: 'anchor-cli' });
  await l.append([note(i)]);
  await l.close();
  const s = await runCli(['seal', '--store', store]);
  expect(s.code, s.stderr).toBe(0);
}

beforeAll(async () => {
  await addAndSeal(0);
  const init = await runCli(['cosign', 'init', '--name', 'witness.test/w1', '-o', keyFile, '--json']);
  expect(init.code, init.stderr).toBe(0);
  vkey = (JSON.parse(init.stdout) as { verifier_key: string }).verifier_key;
  const l = await openLedger(store);
  const origin = l.info.origin;
  const logKey = (await l.publicKeys())[0]!.vkey;
  await l.close();
  fs.mkdirSync(stateDir);
  const bin = path.resolve('bin/witness.js');
  child = spawn(process.execPath, [bin, 'cosign', 'serve', '--key', keyFile, '--state', stateDir, '--listen', '127.0.0.1:0', '--log', `${origin}=${logKey}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  const line = await new Promise<string>((resolve, reject) => {
    readline.createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`cosign serve exited ${code}`)));
  });
  url = /serving (http:\/\/[^/ ]+)\/add-checkpoint/.exec(line)![1]!;
}, 60_000);

afterAll(() => {
  child?.kill('SIGTERM');
});

describe('[R-ANCHOR-COSIGN] witness cosign / anchor / verify --require-cosigner', () => {
  it('refuses to overwrite a cosigner key, in one sentence, exit 2', async () => {
    const again = await runCli(['cosign', 'init', '--name', 'witness.test/w1', '-o', keyFile]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already exists; a cosigner key is never overwritten/);
  });

  it('verify fails while the required cosignature is missing, passes once anchored, and fails again for a newer unanchored checkpoint', async () => {
    expect((await runCli(['verify', '--store', store])).stdout).not.toMatch(/anchor:/);
    const missing = await runCli(['verify', '--store', store, '--require-cosigner', vkey]);
    expect(missing.code).toBe(1);
    expect(missing.stdout).toMatch(/anchor: cosignature_missing: no valid cosignature by witness\.test\/w1\+[0-9a-f]{8} on the newest checkpoint \(size 1\)/);

    const a = await runCli(['anchor', '--store', store, '--cosigner', `${url}=${vkey}`, '--copy-to', copyDir]);
    expect(a.code, a.stdout + a.stderr).toBe(0);
    expect(a.stdout).toMatch(/✔ Cosigned checkpoint 1 by witness\.test\/w1\+/);
    expect(fs.readFileSync(path.join(copyDir, '1.checkpoint'), 'utf8')).toMatch(/\n\n\u2014 .+\n\u2014 witness\.test\/w1 .+\n$/);

    const plain = await runCli(['verify', '--store', store]);
    expect(plain.code).toBe(0);
    expect(plain.stdout).toMatch(/anchor: 1 cosignature\(s\) and 0 time-stamp\(s\) in .+\.anchors\.jsonl were not checked; name the witness keys with --require-cosigner/);
    const ok = await runCli(['verify', '--store', store, '--require-cosigner', vkey]);
    expect(ok.code, ok.stdout).toBe(0);
    expect(ok.stdout).toMatch(/anchor: ✔ every required cosigner vouched for checkpoint 1/);
    expect(ok.stdout).toMatch(/anchor: cosignature by witness\.test\/w1\+[0-9a-f]{8} on checkpoint 1 at \d{4}-.+ verified/);

    await addAndSeal(1);
    const stale = await runCli(['verify', '--store', store, '--require-cosigner', vkey, '--json']);
    expect(stale.code).toBe(1);
    const j = JSON.parse(stale.stdout) as { ok: boolean; anchors: { failures: Array<{ code: string; size: number }> } };
    expect(j.ok).toBe(false);
    expect(j.anchors.failures).toEqual([expect.objectContaining({ code: 'cosignature_missing', size: 2 })]);
    const again = await runCli(['anchor', '--store', store, '--cosigner', `${url}=${vkey}`]);
    expect(again.code, again.stdout).toBe(0);
    expect((await runCli(['verify', '--store', store, '--require-cosigner', vkey])).code).toBe(0);
  });

  it('an edited cosignature in the anchors file fails verify as cosignature_invalid', async () => {
    const anchors = `${file}.anchors.jsonl`;
    const original = fs.readFileSync(anchors, 'utf8');
    const lines = original.trim().split('\n');
    const last = JSON.parse(lines.at(-1)!) as { line: string };
    const raw = Buffer.from(last.line.trim().split(' ').at(-1)!, 'base64');
    raw[20] = raw[20]! ^ 1;
    last.line = `${last.line.trim().split(' ').slice(0, -1).join(' ')} ${raw.toString('base64')}\n`;
    fs.writeFileSync(anchors, [...lines.slice(0, -1), JSON.stringify(last)].join('\n') + '\n');
    try {
      const v = await runCli(['verify', '--store', store, '--require-cosigner', vkey]);
      expect(v.code).toBe(1);
      expect(v.stdout).toMatch(/anchor: cosignature_invalid: the cosignature by witness\.test\/w1\+[0-9a-f]{8} recorded for checkpoint 2 does not verify/);
    } finally {
      fs.writeFileSync(anchors, original);
    }
  });

  it('--copy-to refuses to overwrite a different checkpoint of the same size (a fork), and bad --cosigner is exit 2', async () => {
    const copy = path.join(copyDir, '2.checkpoint');
    fs.writeFileSync(copy, fs.readFileSync(path.join(copyDir, '1.checkpoint'), 'utf8').replace(/\n1\n/, '\n2\n'));
    const r = await runCli(['anchor', '--store', store, '--copy-to', copyDir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/already holds a different checkpoint of size 2 .*a fork; the copy was not overwritten/);
    const bad = await runCli(['anchor', '--store', store, '--cosigner', 'not-a-url']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--cosigner takes URL=VKEY/);
    const wrongType = await runCli([
      'verify',
      '--store',
      store,
      '--require-cosigner',
      await openLedger(store).then(async (l) => {
        const k = (await l.publicKeys())[0]!.vkey;
        await l.close();
        return k;
      }),
    ]);
    expect(wrongType.code).toBe(2);
    expect(wrongType.stderr).toMatch(/not 0x04/);
  });
});
