import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateKey, keyFingerprint, openNote, parseCheckpoint, parseSignerKey, parseVerifierKey, signNote, type NoteSigner } from '../../src/core/index.js';
import { installRotatedKey, loadSigner, openLedger, rotateSigningKey, sidecarPaths, verifyLedger, type AppendRequest, type Ledger } from '../../src/store/index.js';
import { tempDb, tempDir } from '../helpers/tmp.js';
import type { LedgerEdit } from './contract/driver.js';
import { postgresEdit } from './postgres-edit-hook.js';
import { testSchemas } from './postgres-driver.js';
import { sqliteEdit } from './sqlite-edit-hook.js';

/*
 * Key rotation on both drivers (issue 15): `key.rotated` is recorded and sealed by the old and the
 * new key together, later checkpoints by the new key alone; verify passes across it, with the
 * ledger's own key or either key pinned; a checkpoint forged with the retired key after its window
 * is caught (retired_key), and so is a rotation checkpoint missing either signature
 * (rotation_unsigned). The forgeries go in through each driver's test-only edit hook, as anyone
 * with write access to the database could put them there.
 */

const note = (i: number): AppendRequest => ({ stream: 'rot-session', agent: { id: 'agent' }, kind: 'note', data: { text: `n${i}` } });

interface Harness {
  name: string;
  /** A fresh ledger and where its key file is. */
  fresh(): Promise<{ l: Ledger; keyFile: string; pubFile: string; reopen: () => Promise<Ledger>; reopenWith: (env: NodeJS.ProcessEnv) => Promise<Ledger> }>;
  edit(l: Ledger, op: LedgerEdit): Promise<void>;
}

const dir = tempDir('witness-rotation-');
const pg = testSchemas('rot');

const harnesses: Harness[] = [
  {
    name: 'sqlite',
    fresh: async () => {
      const file = tempDb(dir);
      const url = `sqlite:${file}`;
      const { key, pub } = sidecarPaths(file);
      return {
        l: await openLedger(url),
        keyFile: key,
        pubFile: pub,
        reopen: () => openLedger(url, { create: false, env: {} }),
        reopenWith: (env) => openLedger(url, { create: false, env }),
      };
    },
    edit: (l, op) => sqliteEdit(l, op),
  },
  {
    name: 'postgres',
    fresh: async () => {
      const s = pg.schema();
      const pubFile = s.keyFile.replace(/\.key$/, '.pub');
      return {
        l: await openLedger(s.url, { keyFile: s.keyFile }),
        keyFile: s.keyFile,
        pubFile,
        reopen: () => openLedger(s.url, { create: false, keyFile: s.keyFile, env: {} }),
        reopenWith: (env) => openLedger(s.url, { create: false, keyFile: path.join(pg.dir, 'absent.key'), env }),
      };
    },
    edit: (l, op) => postgresEdit(l, op),
  },
];

/** The keys whose signatures on `noteText` verify, as fingerprints. */
function signers(noteText: string, keys: readonly NoteSigner[]): string[] {
  return openNote(
    noteText,
    keys.map((k) => parseVerifierKey(k.verifierKey)),
  ).verified.map((k) => keyFingerprint(k));
}

/** A note over the same body as `noteText`, signed by `keys` only. */
function resign(noteText: string, keys: readonly NoteSigner[]): string {
  const body = noteText.slice(0, noteText.lastIndexOf('\n\n') + 1);
  parseCheckpoint(body);
  return signNote(body, keys);
}

for (const h of harnesses) {
  describe(`key rotation (${h.name})`, () => {
    /** A ledger rotated once: events and a checkpoint before, the rotation, events and a checkpoint after with the new key. */
    async function rotated() {
      const f = await h.fresh();
      await f.l.append([note(0), note(1)]);
      await f.l.seal();
      const oldSigner = loadSigner(f.keyFile, {})!;
      const newKeyText = generateKey(f.l.info.origin).signerKey;
      const newSigner = parseSignerKey(newKeyText);
      const result = await rotateSigningKey(f.l, { oldSigner, newSigner, reason: 'yearly rotation', who: 'tester' });
      await f.l.close();
      return { ...f, oldSigner, newSigner, newKeyText, result };
    }

    it('[R-KEY-ROTATION] seals the rotation with both keys, later checkpoints with the new key only, and verify passes across it', async () => {
      const f = await h.fresh();
      await f.l.append([note(0), note(1)]);
      await f.l.seal();
      const oldSigner = loadSigner(f.keyFile, {})!;
      const generated = generateKey(f.l.info.origin);
      const newSigner = parseSignerKey(generated.signerKey);
      const { rotation, checkpoint } = await rotateSigningKey(f.l, { oldSigner, newSigner, reason: 'yearly rotation', who: 'tester' });
      expect(rotation.oldKey).toBe(oldSigner.verifierKey);
      expect(rotation.newKey).toBe(newSigner.verifierKey);
      expect(checkpoint.size).toBe(rotation.leaf + 1);
      expect(signers(checkpoint.note, [oldSigner, newSigner]).sort()).toEqual([keyFingerprint(oldSigner), keyFingerprint(newSigner)].sort());
      // The rotation is in the ledger, signed: its payload names both keys.
      const ev = await f.l.getEvent(rotation.id);
      expect(ev?.kind).toBe('key.rotated');
      expect(ev?.data).toMatchObject({ old_key: oldSigner.verifierKey, new_key: newSigner.verifierKey, reason: 'yearly rotation' });
      await f.l.close();

      installRotatedKey(f.keyFile, f.pubFile, generated.signerKey, oldSigner);
      const l = await f.reopen();
      try {
        await l.append([note(2)]);
        const after = await l.seal();
        expect(after).not.toBeNull();
        expect(signers(after!.note, [oldSigner, newSigner])).toEqual([keyFingerprint(newSigner)]);

        const report = await verifyLedger(l);
        expect(report.failures).toEqual([]);
        expect(report.ok).toBe(true);
        expect(report.trust.keys.map((k) => `${k.name}+${k.keyHash}`).sort()).toEqual([keyFingerprint(oldSigner), keyFingerprint(newSigner)].sort());
        expect(report.warnings.join(' ')).toMatch(/signing key was rotated/);
        // Either key pinned carries the trust across the rotation; an unrelated key does not.
        for (const pinned of [oldSigner.verifierKey, newSigner.verifierKey]) {
          const r = await verifyLedger(l, { trustedKeys: [pinned] });
          expect(r.failures).toEqual([]);
          expect(r.trust.keys.length).toBe(2);
        }
        const stranger = generateKey('stranger').verifierKey;
        expect((await verifyLedger(l, { trustedKeys: [stranger] })).ok).toBe(false);
      } finally {
        await l.close();
      }
    });

    it('a rotation recorded before `witness keys rotate` stamped its recorder (none in the header) still counts: later seals with the new key, verify passes', async () => {
      const f = await h.fresh();
      await f.l.append([note(0)]);
      await f.l.seal();
      const oldSigner = loadSigner(f.keyFile, {})!;
      const generated = generateKey(f.l.info.origin);
      const newSigner = parseSignerKey(generated.signerKey);
      // What rotateSigningKey wrote until it stamped recorder cli: the same event with no recorder member.
      const [r] = await f.l.append([
        {
          stream: 'witness.keys',
          agent: { id: 'witness-cli' },
          principal: { id: 'tester', kind: 'human' },
          kind: 'key.rotated',
          resource: 'signing-key',
          action: 'rotate',
          outcome: 'success',
          data: { old_key: oldSigner.verifierKey, new_key: newSigner.verifierKey, old_fingerprint: keyFingerprint(oldSigner), new_fingerprint: keyFingerprint(newSigner) },
        },
      ]);
      expect((await f.l.getEvent(r!.id))?.recorder).toBeUndefined();
      expect(await f.l.seal({ cosigners: [newSigner] })).not.toBeNull();
      await f.l.close();
      installRotatedKey(f.keyFile, f.pubFile, generated.signerKey, oldSigner);
      const l = await f.reopen();
      try {
        await l.append([note(1)]);
        const after = await l.seal();
        expect(after).not.toBeNull();
        expect(signers(after!.note, [oldSigner, newSigner])).toEqual([keyFingerprint(newSigner)]);
        const report = await verifyLedger(l);
        expect(report.failures).toEqual([]);
        expect(report.trust.keys).toHaveLength(2);
      } finally {
        await l.close();
      }
    });

    it('refuses to seal with the retired key, in one sentence naming the key in use', async () => {
      const f = await rotated();
      const oldText = fs.readFileSync(f.keyFile, 'utf8').trim();
      // The key file still holds the old key (not installed): a writer holding it may not sign.
      const l = await f.reopenWith({ WITNESS_SIGNING_KEY: oldText });
      try {
        await l.append([note(9)]);
        await expect(l.seal()).rejects.toMatchObject({ code: 'seal_refused', message: expect.stringMatching(/retired by the key rotation at leaf \d+.*sign with the key in use/) });
        // Nothing acknowledged is lost: the event stays, unsealed.
        expect(l.info.size).toBeGreaterThan(f.result.rotation.leaf + 1);
      } finally {
        await l.close();
      }
    });

    it('refuses to cover a key.rotated event without its new key (a writer appending one cannot get it sealed)', async () => {
      const f = await h.fresh();
      const stranger = generateKey('intruder');
      // Shaped as `witness keys rotate` records it (witness.keys, recorder cli): one elsewhere rotates nothing (rotation-outside-keys.test.ts).
      await f.l.append([
        { stream: 'witness.keys', agent: { id: 'x' }, recorder: { kind: 'cli' }, kind: 'key.rotated', data: { old_key: loadSigner(f.keyFile, {})!.verifierKey, new_key: stranger.verifierKey } },
      ]);
      await expect(f.l.seal()).rejects.toMatchObject({ message: expect.stringMatching(/key rotation at leaf 0 .* is not sealed yet, and its checkpoint needs the new key/) });
      expect(await f.l.latestCheckpoint()).toBeUndefined();
      await f.l.close();
    });

    it('[R-KEY-ROTATION] catches a checkpoint forged with the retired key after its window (retired_key)', async () => {
      const f = await rotated();
      installRotatedKey(f.keyFile, f.pubFile, f.newKeyText, f.oldSigner);
      const l = await f.reopen();
      try {
        await l.append([note(2), note(3)]);
        const genuine = await l.seal();
        const cps = await l.checkpoints();
        const last = cps[cps.length - 1]!;
        expect(last.size).toBe(genuine!.size);
        await h.edit(l, { kind: 'rewriteCheckpoint', id: last.id, note: resign(last.note, [f.oldSigner]) });
        const report = await verifyLedger(l);
        expect(report.ok).toBe(false);
        expect(report.failures.map((x) => x.code)).toContain('retired_key');
        const bad = report.failures.find((x) => x.code === 'retired_key')!;
        expect(bad.checkpoint).toBe(last.id);
        expect(bad.reason).toMatch(/retired by the checkpoint of size \d+/);
      } finally {
        await l.close();
      }
    });

    it('catches a rotation checkpoint without the new key or without the old key (rotation_unsigned)', async () => {
      const f = await rotated();
      for (const only of [[f.oldSigner], [f.newSigner]]) {
        const l = await f.reopenWith({});
        try {
          const cp = (await l.checkpoints()).find((c) => c.size === f.result.checkpoint.size)!;
          await h.edit(l, { kind: 'rewriteCheckpoint', id: cp.id, note: resign(f.result.checkpoint.note, only) });
          const report = await verifyLedger(l);
          expect(report.ok).toBe(false);
          const bad = report.failures.find((x) => x.code === 'rotation_unsigned');
          expect(bad?.checkpoint).toBe(cp.id);
          expect(bad?.reason).toMatch(/must be signed by both the old and the new key, but .* did not sign it/);
          await h.edit(l, { kind: 'rewriteCheckpoint', id: cp.id, note: f.result.checkpoint.note });
          expect((await verifyLedger(l)).ok).toBe(true);
        } finally {
          await l.close();
        }
      }
    });
  });
}
