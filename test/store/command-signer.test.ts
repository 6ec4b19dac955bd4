import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeBase64Strict, generateKey, openNote, parseVerifierKey } from '../../src/core/note.js';
import { commandSigner, openLedger, verifyLedger, type AppendRequest } from '../../src/store/index.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/*
 * The external signer (issue 15): a signing key that lives outside Witness, behind a command. The
 * command here is a real external tool, openssl, holding an Ed25519 key in a PEM file Witness never
 * reads; each checkpoint signature it makes is also checked by openssl itself, not only by Witness.
 * A signer that fails, or answers with a signature of another key, refuses the seal in one sentence
 * and loses nothing: the events stay recorded and the next seal, once it works, covers them.
 */

const dir = tempDir('witness-signer-');
const note = (i: number): AppendRequest => ({ stream: 'signer-session', agent: { id: 'agent' }, kind: 'note', data: { text: `n${i}` } });

function pem(name: string): string {
  const file = path.join(dir, `${name}.pem`);
  execFileSync('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', file]);
  return file;
}

/**
 * A signer script as an operator would write one around openssl (3.0's pkeyutl needs a file for
 * -rawin, hence the temporary copy of stdin). `signKey` differs from `pubKey` only to test a signer
 * that answers with another key; `failFlag`, when it exists, makes signing fail like an HSM offline.
 */
function signerScript(name: string, pubKey: string, signKey = pubKey, failFlag = path.join(dir, 'never')): string {
  const file = path.join(dir, `${name}.sh`);
  fs.writeFileSync(
    file,
    [
      '#!/bin/sh',
      'set -e',
      `if [ "$WITNESS_SIGNER_REQUEST" = public-key ]; then openssl pkey -in '${pubKey}' -pubout; exit 0; fi`,
      `if [ -e '${failFlag}' ]; then echo 'HSM offline' >&2; exit 3; fi`,
      't=$(mktemp)',
      'trap \'rm -f "$t"\' EXIT',
      'cat > "$t"',
      `openssl pkeyutl -sign -inkey '${signKey}' -rawin -in "$t"`,
    ].join('\n'),
    { mode: 0o755 },
  );
  return file;
}

/** Checks the note's one signature with openssl pkeyutl -verify, against the PEM's public key. */
function opensslVerifies(noteText: string, keyPem: string): boolean {
  const split = noteText.lastIndexOf('\n\n');
  const body = noteText.slice(0, split + 1);
  const sigLine = noteText
    .slice(split + 2)
    .trim()
    .split('\n')[0]!;
  const raw = decodeBase64Strict(sigLine.split(' ').pop()!)!;
  const bodyFile = path.join(dir, 'body');
  const sigFile = path.join(dir, 'sig');
  const pubFile = path.join(dir, 'pub.pem');
  fs.writeFileSync(bodyFile, body);
  fs.writeFileSync(sigFile, raw.subarray(4));
  fs.writeFileSync(pubFile, execFileSync('openssl', ['pkey', '-in', keyPem, '-pubout']));
  try {
    return execFileSync('openssl', ['pkeyutl', '-verify', '-pubin', '-inkey', pubFile, '-rawin', '-in', bodyFile, '-sigfile', sigFile], { encoding: 'utf8' }).includes('Success');
  } catch {
    return false;
  }
}

describe('a key file anywhere ($WITNESS_SIGNING_KEY_FILE)', () => {
  it('[R-KEY-EXTERNAL] a SQLite ledger signs with a key kept in another directory, and a missing one is refused in one sentence', async () => {
    const elsewhere = path.join(dir, 'vault');
    fs.mkdirSync(elsewhere, { mode: 0o700 });
    const { signerKey, verifierKey } = generateKey('vault-key');
    const keyFile = path.join(elsewhere, 'ledger.key');
    fs.writeFileSync(keyFile, `${signerKey}\n`, { mode: 0o600 });
    const file = tempDb(dir);
    const l = await openLedger(`sqlite:${file}`, { env: { WITNESS_SIGNING_KEY_FILE: keyFile } });
    try {
      expect(fs.existsSync(`${file}.key`)).toBe(false);
      await l.append([note(0)]);
      const cp = await l.seal();
      expect(openNote(cp!.note, [parseVerifierKey(verifierKey)]).verified).toHaveLength(1);
      expect((await verifyLedger(l, { trustedKeys: [verifierKey] })).ok).toBe(true);
    } finally {
      await l.close();
    }
    await expect(openLedger(`sqlite:${file}`, { create: false, env: { WITNESS_SIGNING_KEY_FILE: path.join(elsewhere, 'gone.key') } })).rejects.toMatchObject({
      code: 'invalid_key',
      message: expect.stringMatching(/gone\.key named by \$WITNESS_SIGNING_KEY_FILE does not exist; restore it, or unset the variable/),
    });
  });
});

describe('command signer ($WITNESS_SIGNER_COMMAND)', () => {
  it('[R-KEY-EXTERNAL] signs checkpoints through openssl holding a key Witness never reads, and openssl verifies them', async () => {
    const key = pem('kms');
    const env = { WITNESS_SIGNER_COMMAND: signerScript('kms', key), WITNESS_SIGNER_NAME: 'kms-key' };
    const file = tempDb(dir);
    const l = await openLedger(`sqlite:${file}`, { env });
    try {
      // No key file was made: the key is the command's.
      expect(fs.existsSync(`${file}.key`)).toBe(false);
      const [row] = await l.publicKeys();
      expect(row?.vkey).toMatch(/^kms-key\+[0-9a-f]{8}\+/);
      await l.append([note(0), note(1)]);
      const cp = await l.seal();
      expect(cp).not.toBeNull();
      expect(opensslVerifies(cp!.note, key)).toBe(true);
      const report = await verifyLedger(l, { trustedKeys: [row!.vkey] });
      expect(report.failures).toEqual([]);
      expect(report.ok).toBe(true);
    } finally {
      await l.close();
    }
  });

  it('[R-KEY-EXTERNAL] a failing signer refuses the seal in one sentence, loses no event, and the next seal covers them once it works', async () => {
    const key = pem('flaky');
    const flag = path.join(dir, 'offline');
    const env = { WITNESS_SIGNER_COMMAND: signerScript('flaky', key, key, flag) };
    const l = await openLedger(`sqlite:${tempDb(dir)}`, { env });
    try {
      await l.append([note(0)]);
      expect((await l.seal())?.size).toBe(1);
      fs.writeFileSync(flag, '');
      const [r] = await l.append([note(1)]);
      await expect(l.seal()).rejects.toMatchObject({
        code: 'invalid_key',
        message: expect.stringMatching(
          /^The signer command \(WITNESS_SIGNER_COMMAND\) failed when asked to sign \(exit 3: HSM offline\); nothing was signed and the events stay unsealed until the next seal succeeds\.$/,
        ),
      });
      expect((await l.latestCheckpoint())?.size).toBe(1);
      expect((await l.getEvent(r!.id))?.data).toEqual({ text: 'n1' });
      fs.rmSync(flag);
      expect((await l.seal())?.size).toBe(2);
      expect((await verifyLedger(l)).ok).toBe(true);
    } finally {
      await l.close();
    }
  });

  it('refuses a signer whose signatures are not by the key it named', () => {
    const named = pem('named');
    const other = pem('other');
    const s = commandSigner(signerScript('liar', named, other));
    expect(() => s.sign(Buffer.from('body\n'))).toThrow(/answered with a signature that does not verify with its public key witness-signer\+[0-9a-f]{8}; nothing was signed/);
    // The public key it gives is the one openssl derives from the PEM.
    const der = execFileSync('openssl', ['pkey', '-in', named, '-pubout', '-outform', 'DER']);
    expect(Buffer.from(parseVerifierKey(s.verifierKey).publicKey).equals(der.subarray(12))).toBe(true);
  });

  it('refuses a command that gives no public key, and one set beside WITNESS_SIGNING_KEY, in one sentence', async () => {
    expect(() => commandSigner('echo not-a-key')).toThrow(/did not answer WITNESS_SIGNER_REQUEST=public-key with an Ed25519 public key .*; fix the command\.$/);
    expect(() => commandSigner('exit 7')).toThrow(/failed when asked to give its public key \(exit 7\); no key was loaded\./);
    await expect(openLedger(`sqlite:${tempDb(dir)}`, { env: { WITNESS_SIGNER_COMMAND: 'true', WITNESS_SIGNING_KEY: 'PRIVATE+KEY+x' } })).rejects.toMatchObject({
      message: expect.stringMatching(/Both WITNESS_SIGNING_KEY and WITNESS_SIGNER_COMMAND are set/),
    });
  });
});
