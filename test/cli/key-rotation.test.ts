import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateKey, parseSignerKey } from '../../src/core/index.js';
import { openLedger, sidecarPaths, type AppendRequest } from '../../src/store/index.js';
import { runCli } from '../helpers/ledger.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/*
 * `witness keys rotate` as a person runs it (issue 15): twice in a row, with a key of their own
 * (--new-key), and with the key in use behind a signer command (--signer-command, openssl), where
 * Witness changes nothing it does not own and says where the new key is. Bad input is one sentence,
 * exit 2, and records nothing.
 */

const dir = tempDir('witness-cli-rotate-');
const note = (i: number): AppendRequest => ({ stream: 's', agent: { id: 'agent' }, kind: 'note', data: { text: `n${i}` } });

async function ledgerWithEvents(env: NodeJS.ProcessEnv = {}): Promise<{ file: string; store: string }> {
  const file = tempDb(dir);
  const l = await openLedger(`sqlite:${file}`, { env });
  await l.append([note(0), note(1)]);
  await l.close();
  return { file, store: `sqlite:${file}` };
}

describe('witness keys rotate', () => {
  it('rotates twice, the second time to a key given with --new-key, and the ledger verifies across both', async () => {
    const { file, store } = await ledgerWithEvents();
    const first = await runCli(['keys', 'rotate', '--store', store, '--reason', 'first']);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/^Rotated the signing key of .*: \S+ → \S+ \(key\.rotated at leaf 2\); checkpoint 3 is signed by both, later ones by the new key only\./);
    expect(fs.existsSync(`${sidecarPaths(file).key}.next`)).toBe(false);
    const mine = generateKey('my-own-key');
    const keyFile = path.join(dir, 'mine.key');
    fs.writeFileSync(keyFile, `${mine.signerKey}\n`, { mode: 0o600 });
    const second = await runCli(['keys', 'rotate', '--store', store, '--new-key', keyFile, '--json']);
    expect(second.code, second.stderr).toBe(0);
    const j = JSON.parse(second.stdout) as { new_key: string; leaf: number };
    expect(j.new_key).toBe(mine.verifierKey);
    expect(fs.readFileSync(sidecarPaths(file).key, 'utf8').trim()).toBe(mine.signerKey);
    const v = await runCli(['verify', '--store', store, '--json']);
    expect(v.code, v.stdout).toBe(0);
    const report = JSON.parse(v.stdout) as { ok: boolean; trust: { keys: unknown[] } };
    expect(report.ok).toBe(true);
    expect(report.trust.keys).toHaveLength(3);
    // The first key is kept beside the ledger, retired, not deleted.
    const retiredFile = fs.readdirSync(path.dirname(file)).find((f) => f.startsWith(`${path.basename(file)}.key.retired-`));
    expect(retiredFile).toBeDefined();
  });

  it('refuses a --new-key that is not a key, and the key in use given again, in one sentence with exit 2, recording nothing', async () => {
    const { file, store } = await ledgerWithEvents();
    const junk = path.join(dir, 'junk.key');
    fs.writeFileSync(junk, 'not a key\n');
    const bad = await runCli(['keys', 'rotate', '--store', store, '--new-key', junk]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--new-key .*junk\.key is not a readable signing key \(.*\); give a file written by witness \(PRIVATE\+KEY\+…\) or leave --new-key out to generate one\./);
    const same = await runCli(['keys', 'rotate', '--store', store, '--new-key', sidecarPaths(file).key]);
    expect(same.code).toBe(2);
    expect(same.stderr).toMatch(/The new signing key is the key in use; give a different key/);
    const l = await openLedger(store, { create: false, env: {} });
    try {
      expect((await l.query({ kind: 'key.rotated' })).events).toEqual([]);
    } finally {
      await l.close();
    }
  });

  it('with the key behind --signer-command (openssl), leaves the signer alone and says where the new key is; the new key then seals', async () => {
    const pem = path.join(dir, 'hsm.pem');
    execFileSync('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', pem]);
    const script = path.join(dir, 'hsm.sh');
    fs.writeFileSync(
      script,
      [
        '#!/bin/sh',
        'set -e',
        `if [ "$WITNESS_SIGNER_REQUEST" = public-key ]; then openssl pkey -in '${pem}' -pubout; exit 0; fi`,
        't=$(mktemp)',
        'trap \'rm -f "$t"\' EXIT',
        'cat > "$t"',
        `openssl pkeyutl -sign -inkey '${pem}' -rawin -in "$t"`,
      ].join('\n'),
      { mode: 0o755 },
    );
    const { file, store } = await ledgerWithEvents({ WITNESS_SIGNER_COMMAND: script });
    // witness seal takes the same flag: the checkpoint is signed by the command's key, no key file made.
    const sealed = await runCli(['seal', '--store', store, '--signer-command', script]);
    expect(sealed.code, sealed.stderr).toBe(0);
    expect(sealed.stdout).toMatch(/^Sealed checkpoint \d+: 2 events/);
    expect(fs.existsSync(sidecarPaths(file).key)).toBe(false);
    const r = await runCli(['keys', 'rotate', '--store', store, '--signer-command', script, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as { key_file: string | null; new_key_file: string; new_key: string };
    expect(j.key_file).toBeNull();
    expect(j.new_key_file).toBe(`${sidecarPaths(file).key}.next`);
    const next = fs.readFileSync(j.new_key_file, 'utf8').trim();
    expect(parseSignerKey(next).verifierKey).toBe(j.new_key);
    // The retired signer command may not seal any more; the new key does.
    const old = await openLedger(store, { create: false, env: { WITNESS_SIGNER_COMMAND: script } });
    try {
      await old.append([note(5)]);
      await expect(old.seal()).rejects.toMatchObject({ code: 'seal_refused', message: expect.stringMatching(/was retired by the key rotation/) });
    } finally {
      await old.close();
    }
    const l = await openLedger(store, { create: false, env: { WITNESS_SIGNING_KEY: next } });
    try {
      expect((await l.seal())?.size).toBe(l.info.size);
    } finally {
      await l.close();
    }
    const v = await runCli(['verify', '--store', store, '--json']);
    expect(v.code, v.stdout).toBe(0);
  });
});
