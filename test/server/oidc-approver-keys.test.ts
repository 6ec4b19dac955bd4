import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { main, type Io } from '../../src/cli/index.js';
import { WitnessError } from '../../src/core/index.js';
import { ACCESS_STREAM, oidcApproverKeyId, parseServerConfig } from '../../src/server/index.js';
import { openLedger } from '../../src/store/index.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/** `witness keys oidc-approver` and the config's oidc.approvers: how an OpenID Connect person is bound to a server-held approver key. */

function capture(): Io & { text: () => string; errors: () => string } {
  const out: string[] = [];
  const err: string[] = [];
  return { out: (t) => void out.push(t), err: (t) => void err.push(t), isTTY: false, text: () => out.join('\n'), errors: () => err.join('\n') };
}

const dir = tempDir('witness-oidc-approver-keys-');
const ISSUER = 'https://login.example.com/realms/corp';

const CONFIG = (approvers: string) => `
public_url: https://witness.example.com
oidc:
  issuer: ${ISSUER}
  client_id: witness
  client_secret: s3cret
  roles:
    claim: groups
    map:
      approvers: approver
${approvers}`;

function refusal(text: string): WitnessError {
  try {
    parseServerConfig(text, { source: 'server.yaml', env: {} });
  } catch (e) {
    if (e instanceof WitnessError) return e;
    throw e;
  }
  throw new Error('the config was accepted');
}

describe('witness keys oidc-approver', () => {
  it('makes a 0600 key named by the issuer and subject, records that it did, and prints the policy lines and the config entry', async () => {
    const db = tempDb(dir);
    const store = `sqlite:${db}`;
    await (await openLedger(store)).close();
    const config = path.join(dir, 'server.yaml');
    fs.writeFileSync(config, CONFIG(''));
    const io = capture();
    expect(await main(['node', 'witness', 'keys', 'oidc-approver', '--config', config, '--subject', '248289761001', '--name', 'alice@corp', '--store', store], io), io.errors()).toBe(0);
    const file = path.join(`${db}.approvers`, `${oidcApproverKeyId(ISSUER, '248289761001')}.key`);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(file, 'utf8')).toMatch(/^PRIVATE\+KEY\+alice@corp\+/);
    expect(io.text()).toMatch(/approvers:\n {2}- id: alice@corp\n {4}key: "alice@corp\+[0-9a-f]{8}\+[A-Za-z0-9+/=]+"/);
    expect(io.text()).toContain('oidc:\n  approvers:\n    - subject: "248289761001"\n      name: alice@corp');
    const ledger = await openLedger(store, { create: false });
    try {
      const made = (await ledger.readStream(ACCESS_STREAM)).filter((e) => e.action === 'approver-key.create');
      expect(made).toHaveLength(1);
      expect(made[0]!.data).toMatchObject({ issuer: ISSUER, subject: '248289761001', name: 'alice@corp', public_key: expect.stringMatching(/^alice@corp\+/) });
    } finally {
      await ledger.close();
    }
    // The same person twice is refused: a key is never overwritten.
    const again = capture();
    expect(await main(['node', 'witness', 'keys', 'oidc-approver', '--issuer', ISSUER, '--subject', '248289761001', '--name', 'alice@corp', '--store', store], again)).toBe(1);
    expect(again.errors()).toMatch(/must not exist yet/);
  });

  it('the same subject at another issuer is another key', () => {
    expect(oidcApproverKeyId(ISSUER, 'alice')).not.toBe(oidcApproverKeyId('https://other.example.com', 'alice'));
    expect(oidcApproverKeyId(ISSUER, 'alice')).toMatch(/^oidc-[0-9a-f]{32}$/);
  });

  it('refuses to run without exactly one of --issuer and --config, or without --name', async () => {
    const store = `sqlite:${tempDb(dir)}`;
    for (const args of [
      ['--subject', 'x', '--name', 'a@b'],
      ['--subject', 'x', '--issuer', ISSUER, '--config', 'server.yaml', '--name', 'a@b'],
      ['--subject', 'x', '--issuer', ISSUER],
    ]) {
      const io = capture();
      expect(await main(['node', 'witness', 'keys', 'oidc-approver', ...args, '--store', store], io), args.join(' ')).toBe(2);
      expect(
        io
          .errors()
          .split('\n')
          .filter((l) => l.trim() !== ''),
      ).toHaveLength(1);
    }
  });
});

describe("the server config's oidc.approvers", () => {
  it('binds subjects (a numeric one read as a string) to approver names, in the order written', () => {
    const config = parseServerConfig(CONFIG('  approvers:\n    - subject: 248289761001\n      name: alice@corp\n    - subject: "b0b"\n      name: bob@corp\n'), { env: {} });
    expect(config.oidc?.approvers).toEqual([
      { subject: '248289761001', name: 'alice@corp' },
      { subject: 'b0b', name: 'bob@corp' },
    ]);
    expect(parseServerConfig(CONFIG(''), { env: {} }).oidc?.approvers).toEqual([]);
  });

  it('refuses an approver named by email, a subject listed twice, a missing name and an unknown key, each in one sentence with its line', () => {
    expect(refusal(CONFIG('  approvers:\n    - email: alice@corp.example\n      name: alice@corp\n')).message).toBe(
      "server.yaml line 12: oidc.approvers[0] names a person by email, which can be reassigned to someone else; bind them by the provider's subject instead (subject: <their sub claim>).",
    );
    expect(refusal(CONFIG('  approvers:\n    - subject: a\n      name: alice@corp\n    - subject: a\n      name: bob@corp\n')).message).toBe(
      'server.yaml line 14: oidc.approvers[1].subject "a" is listed twice; list each person once.',
    );
    expect(refusal(CONFIG('  approvers:\n    - subject: a\n')).message).toBe('server.yaml line 12: oidc.approvers[0].name is missing.');
    expect(refusal(CONFIG('  approvers:\n    - subject: a\n      name: alice@corp\n      nmae: x\n')).message).toMatch(
      /^server\.yaml line 14: oidc\.approvers\[0\] has an unknown key "nmae"; did you mean "name"\?\.?$/,
    );
  });
});
