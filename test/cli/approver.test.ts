import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseSignerKey, parseVerifierKey } from '../../src/core/index.js';
import { parsePolicy } from '../../src/policy/index.js';
import { runBin, runCli } from '../helpers/ledger.js';
import { tempDir } from '../helpers/tmp.js';

/** `witness approver init`: a person's own Ed25519 key pair for signing approvals. */

const dir = tempDir('witness-approver-');

describe('witness approver init', () => {
  it('writes the private key 0600 and the public key, and prints the key, its fingerprint and the policy lines to paste [R-APPROVER-KEY]', async () => {
    const out = path.join(dir, 'keys');
    const r = await runBin(['approver', 'init', '--name', 'alice@acme.example', '--out', out]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const keyFile = path.join(out, 'alice@acme.example.key');
    const pubFile = path.join(out, 'alice@acme.example.pub');
    expect(fs.statSync(keyFile).mode & 0o777).toBe(0o600);
    const signer = parseSignerKey(fs.readFileSync(keyFile, 'utf8').trim());
    const vkey = fs.readFileSync(pubFile, 'utf8').trim();
    expect(signer.verifierKey).toBe(vkey);
    expect(parseVerifierKey(vkey).name).toBe('alice@acme.example');
    expect(r.stdout).toContain(`public key   ${vkey}`);
    expect(r.stdout).toMatch(/fingerprint {2}alice@acme\.example\+[0-9a-f]{8}\n/);
    expect(r.stdout).toContain(`private key  ${keyFile}`);
    // The lines it prints make a valid policy as they are.
    const snippet = r.stdout.slice(r.stdout.indexOf('approvers:'));
    const policy = parsePolicy(`version: 1\ndefault: review\n${snippet}`);
    expect(policy.approvers).toEqual([expect.objectContaining({ id: 'alice@acme.example', key: vkey })]);
    const json = await runCli(['approver', 'init', '--name', 'bob@acme.example', '--out', out, '--json']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({
      name: 'bob@acme.example',
      private_key: path.join(out, 'bob@acme.example.key'),
      public_key: expect.stringMatching(/^bob@acme\.example\+[0-9a-f]{8}\+/),
    });
  });

  it('never overwrites a key, never writes through a symlink, and refuses a name it cannot use [R-APPROVER-KEY]', async () => {
    const out = path.join(dir, 'again');
    expect((await runCli(['approver', 'init', '--name', 'carol', '--out', out])).code).toBe(0);
    const before = fs.readFileSync(path.join(out, 'carol.key'), 'utf8');
    const twice = await runCli(['approver', 'init', '--name', 'carol', '--out', out]);
    expect(twice.code).toBe(1);
    expect(twice.stderr).toMatch(/^witness: .*carol\.key already exists; .*\n$/);
    expect(fs.readFileSync(path.join(out, 'carol.key'), 'utf8')).toBe(before);

    const target = path.join(dir, 'elsewhere.txt');
    fs.symlinkSync(target, path.join(out, 'dave.key'));
    const linked = await runCli(['approver', 'init', '--name', 'dave', '--out', out]);
    expect(linked.code).toBe(1);
    expect(fs.existsSync(target)).toBe(false);
    expect(fs.existsSync(path.join(out, 'dave.pub'))).toBe(false);

    for (const name of ['has space', 'a+b', '../up', '']) {
      const bad = await runCli(['approver', 'init', '--name', name, '--out', out]);
      expect(bad.code, name).toBe(2);
      expect(bad.stderr, name).toMatch(/^witness: --name .* must be /);
    }
  });

  it('refuses a key file that others can read when deciding [R-APPROVER-KEY]', async () => {
    const out = path.join(dir, 'loose');
    expect((await runCli(['approver', 'init', '--name', 'erin', '--out', out])).code).toBe(0);
    const key = path.join(out, 'erin.key');
    fs.chmodSync(key, 0o644);
    const r = await runCli(['approve', '01900000-0000-7000-8000-000000000001', '--key', key, '--store', `sqlite:${path.join(dir, 'none.db')}`]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^witness: The approver key .*erin\.key can be read by other users \(mode 644\); run chmod 600 on it\.\n$/);
  });
});
