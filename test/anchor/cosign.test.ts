import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addCheckpoint,
  anchorLatest,
  checkCosignatures,
  cosign,
  cosignedMessage,
  generateCosignerKey,
  parseCosignatureLine,
  parseCosignerSignerKey,
  parseCosignerVerifierKey,
  readAnchors,
  startCosigner,
  verifyCosignature,
  type RunningCosigner,
} from '../../src/anchor/index.js';
import { generateKey, parseVerifierKey, signCheckpoint, parseSignerKey } from '../../src/core/index.js';
import { openLedger, type Ledger } from '../../src/store/index.js';
import { Agent, newLedger } from '../monitor/fixture.js';
import { tempDir } from '../helpers/tmp.js';

const ts = () => new Date().toISOString();

describe('cosignature/v1 keys and lines (C2SP tlog-cosignature)', () => {
  it('signs "cosignature/v1\\ntime <t>\\n" + the checkpoint body under key id SHA-256(name\\n 0x04 key)[:4], with the timestamp in the signature', () => {
    const { signerKey, verifierKey } = generateCosignerKey('witness.example/w1');
    const signer = parseCosignerSignerKey(signerKey);
    const verifier = parseCosignerVerifierKey(verifierKey);
    expect(signer.vkey).toBe(verifierKey);
    expect(Buffer.from(verifierKey.split('+').slice(2).join('+'), 'base64')[0]).toBe(0x04);
    const body = 'example.com/log\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n';
    const line = cosign(signer, body, 1679315147);
    expect(cosignedMessage(body, 1679315147).toString()).toBe(`cosignature/v1\ntime 1679315147\n${body}`);
    const c = parseCosignatureLine(line)!;
    expect(c.timestamp).toBe(1679315147);
    expect(verifyCosignature(verifier, body, c)).toBe(true);
    // The same signature over another body, or with the timestamp changed, fails.
    expect(verifyCosignature(verifier, body.replace('5', '6'), c)).toBe(false);
    expect(verifyCosignature(verifier, body, { ...c, timestamp: c.timestamp + 1 })).toBe(false);
  });

  it('refuses a log note key (type 0x01) as a cosigner key, in one sentence', () => {
    const { verifierKey } = generateKey('log.example');
    expect(() => parseCosignerVerifierKey(verifierKey)).toThrow(/not 0x04 \(an Ed25519 cosignature key\)/);
  });
});

describe('[R-ANCHOR-COSIGN] a cosigning witness (C2SP tlog-witness add-checkpoint) against real ledgers', () => {
  const dir = tempDir('witness-anchor-cosign-');
  const stateDir = path.join(dir, 'witness-state');
  let ledger: Ledger;
  let file: string;
  let url: string;
  let logVkey: string;
  let witness: RunningCosigner;
  const w = generateCosignerKey('witness.test/w1');
  const signer = parseCosignerSignerKey(w.signerKey);
  const verifier = parseCosignerVerifierKey(w.verifierKey);

  beforeAll(async () => {
    fs.mkdirSync(stateDir);
    ({ ledger, file, url } = await newLedger(dir, 'main'));
    await new Agent(ledger, 'bot').call('crm.lookup', ts());
    await ledger.seal();
    logVkey = (await ledger.publicKeys())[0]!.vkey;
    witness = await startCosigner({ signer, stateDir, logs: new Map([[ledger.info.origin, [parseVerifierKey(logVkey)]]]) });
  });
  afterAll(async () => {
    await witness.close();
    await ledger.close();
  });

  it('cosigns the first checkpoint and each one that extends it, learning the old size from 409 when the log does not know it', async () => {
    const anchors = `${file}.anchors.jsonl`;
    const first = await anchorLatest(ledger, { anchorsFile: anchors, cosigners: [{ url: witness.url, verifier }] });
    expect(first.refused).toEqual([]);
    expect(first.cosigned).toHaveLength(1);
    await new Agent(ledger, 'bot').call('billing.refund', ts());
    const cp2 = (await ledger.seal())!;
    // A fresh anchors file: the log side guesses 0, the witness answers 409 with its size, the retry carries the proof.
    const second = await anchorLatest(ledger, { anchorsFile: path.join(dir, 'other.anchors.jsonl'), cosigners: [{ url: witness.url, verifier }] });
    expect(second).toMatchObject({ size: cp2.size, refused: [] });
    const { records, unreadable } = readAnchors(path.join(dir, 'other.anchors.jsonl'));
    const verdict = checkCosignatures(await ledger.checkpoints(), records, unreadable, [verifier]);
    expect(verdict).toMatchObject({ ok: true, head: { size: cp2.size }, failures: [] });
    expect(verdict.checked).toEqual([{ cosigner: `witness.test/w1+${w.verifierKey.split('+')[1]}`, size: cp2.size, timestamp: expect.any(Number) }]);
    const state = JSON.parse(
      fs.readFileSync(
        path.join(
          stateDir,
          fs.readdirSync(stateDir).find((f) => f.endsWith('.json'))!,
        ),
        'utf8',
      ),
    );
    expect(state.size).toBe(cp2.size);
  });

  it('refuses a forked log: a copy of the ledger that grew differently gets 409 at the same size and 422 beyond it, and the witness keeps its state', async () => {
    await ledger.close();
    const forkFile = path.join(dir, 'fork.db');
    for (const suffix of ['', '.key', '.pub', '.sealed']) if (fs.existsSync(file + suffix)) fs.copyFileSync(file + suffix, forkFile + suffix);
    ledger = await openLedger(url);
    const fork = await openLedger(`sqlite:${forkFile}`);
    try {
      const before = fs.readFileSync(
        path.join(
          stateDir,
          fs.readdirSync(stateDir).find((f) => f.endsWith('.json'))!,
        ),
        'utf8',
      );
      // Same size, different events: 409 Conflict for a second root at one size.
      await new Agent(ledger, 'bot').call('email.send', ts());
      await ledger.seal();
      await new Agent(fork, 'bot').call('files.delete', ts());
      const forkCp = (await fork.seal())!;
      expect(forkCp.size).toBe((await ledger.latestCheckpoint())!.size);
      const good = await anchorLatest(ledger, { anchorsFile: `${file}.anchors.jsonl`, cosigners: [{ url: witness.url, verifier }] });
      expect(good.refused).toEqual([]);
      const same = await anchorLatest(fork, { anchorsFile: `${forkFile}.anchors.jsonl`, cosigners: [{ url: witness.url, verifier }] });
      expect(same.cosigned).toEqual([]);
      expect(same.refused[0]).toMatchObject({ code: 'conflict' });
      expect(same.refused[0]!.message).toMatch(/refused to cosign size \d+: it has cosigned a different tree of the same size/);
      // The fork grows past the witness's size: its proof cannot connect to the cosigned root, 422.
      await new Agent(fork, 'bot').call('files.delete', ts());
      await fork.seal();
      const beyond = await anchorLatest(fork, { anchorsFile: `${forkFile}.anchors.jsonl`, cosigners: [{ url: witness.url, verifier }] });
      expect(beyond.refused[0]!.message).toMatch(/does not extend the checkpoint of size \d+ it cosigned before \(a forked or rewritten log\)/);
      expect(readAnchors(`${forkFile}.anchors.jsonl`).records).toEqual([]);
      // The refusals are kept as evidence; the state still names the genuine ledger's checkpoint.
      const refused = fs.readFileSync(path.join(stateDir, 'refused.jsonl'), 'utf8').trim().split('\n');
      expect(refused.map((l) => JSON.parse(l).status)).toEqual([409, 422]);
      expect(
        fs.readFileSync(
          path.join(
            stateDir,
            fs.readdirSync(stateDir).find((f) => f.endsWith('.json'))!,
          ),
          'utf8',
        ),
      ).not.toBe(before);
      const verdict = checkCosignatures(await fork.checkpoints(), readAnchors(`${forkFile}.anchors.jsonl`).records, [], [verifier]);
      expect(verdict.ok).toBe(false);
      expect(verdict.failures[0]).toMatchObject({ code: 'cosignature_missing' });
    } finally {
      await fork.close();
    }
  });

  it('refuses a second witness on the same state directory while the first runs, in one sentence', async () => {
    await expect(startCosigner({ signer, stateDir, logs: new Map() })).rejects.toThrow(/Another witness \(pid \d+\) serves the state directory .+; stop it first/);
    // A lock left by a process that is gone is taken over.
    const other = path.join(dir, 'stale-state');
    fs.mkdirSync(other);
    fs.writeFileSync(path.join(other, 'lock'), '2147483646\n');
    const w2 = await startCosigner({ signer, stateDir: other, logs: new Map() });
    expect(fs.readFileSync(path.join(other, 'lock'), 'utf8').trim()).toBe(String(process.pid));
    await w2.close();
    expect(fs.existsSync(path.join(other, 'lock'))).toBe(false);
  });

  it("answers with the spec's status codes: 404 unknown origin, 403 untrusted signature, 400 old size above the checkpoint, 409 with text/x.tlog.size", async () => {
    const cp = (await ledger.latestCheckpoint())!;
    const opts = { signer, stateDir, logs: new Map([[ledger.info.origin, [parseVerifierKey(logVkey)]]]) };
    const other = generateKey('intruder');
    const forged = signCheckpoint({ origin: ledger.info.origin, size: cp.size + 10, rootHash: cp.root }, [parseSignerKey(other.signerKey)]);
    expect(addCheckpoint(opts, `old 0\n\n${forged}`).status).toBe(403);
    const unknown = signCheckpoint({ origin: 'elsewhere/log', size: 1, rootHash: cp.root }, [parseSignerKey(other.signerKey)]);
    expect(addCheckpoint(opts, `old 0\n\n${unknown}`).status).toBe(404);
    expect(addCheckpoint(opts, `old ${cp.size + 1}\n\n${cp.note}`).status).toBe(400);
    expect(addCheckpoint(opts, `old 07\n\n${cp.note}`).status).toBe(400);
    const conflict = addCheckpoint(opts, `old 1\n\n${cp.note}`);
    expect(conflict).toEqual({ status: 409, contentType: 'text/x.tlog.size', body: `${cp.size}\n` });
    // The latest checkpoint again, from its own size: accepted (same root), cosigned afresh.
    const again = addCheckpoint(opts, `old ${cp.size}\n\n${cp.note}`);
    expect(again.status).toBe(200);
    expect(again.body).toMatch(/^\u2014 witness\.test\/w1 [A-Za-z0-9+/=]+\n$/);
    const res = await fetch(`${witness.url}/add-checkpoint`);
    expect(res.status).toBe(405);
  });
});
