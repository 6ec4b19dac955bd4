import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { WitnessError } from '../../src/core/index.js';
import { loadKeyringKey } from '../../src/server/keyring-key.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * The API-key signing key is refused on the terms an approver's key is (and ssh refuses a private
 * key): a link, something that is not a regular file, or a file other users can read or write.
 */
describe('the API-key signing key file', () => {
  const dir = tempDir('witness-keyring-key-');

  function refusal(file: string): WitnessError {
    try {
      loadKeyringKey(file, false);
    } catch (e) {
      if (e instanceof WitnessError) return e;
      throw e;
    }
    throw new Error(`${file} was accepted`);
  }

  it('is created 0600 and read back when it does not exist', () => {
    const file = path.join(dir, 'new.keyring.key');
    const made = loadKeyringKey(file, true)!;
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(loadKeyringKey(file, false)!.fingerprint).toBe(made.fingerprint);
  });

  it('is refused, naming the chmod that fixes it, when other users can read it', () => {
    const file = path.join(dir, 'readable.keyring.key');
    loadKeyringKey(file, true);
    fs.chmodSync(file, 0o644);
    const e = refusal(file);
    expect(e.code).toBe('invalid_key');
    expect(e.message).toBe(`The API-key signing key ${file} can be read or written by other users (mode 644); run chmod 600 on it.`);
    // create=true must not quietly accept it either.
    expect(() => loadKeyringKey(file, true)).toThrow(/chmod 600/);
    fs.chmodSync(file, 0o620);
    expect(refusal(file).message).toContain('(mode 620)');
    fs.chmodSync(file, 0o600);
    expect(loadKeyringKey(file, false)).toBeDefined();
  });

  it('is refused when it is a directory or a symbolic link', () => {
    const asDir = path.join(dir, 'dir.keyring.key');
    fs.mkdirSync(asDir, { mode: 0o700 });
    expect(refusal(asDir).message).toContain('is not a regular file');
    const real = path.join(dir, 'real.keyring.key');
    loadKeyringKey(real, true);
    const sym = path.join(dir, 'sym.keyring.key');
    fs.symlinkSync(real, sym);
    expect(refusal(sym).message).toContain('is a symbolic link');
  });
});
