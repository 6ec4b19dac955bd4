import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { main, type Io } from '../../src/cli/index.js';
import { listKeys } from '../../src/server/index.js';
import { openLedger } from '../../src/store/index.js';
import { person } from '../helpers/approvers.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/** `witness keys create --role approver`: the API key and the approver signing key the server signs with for it. */

function capture(): Io & { text: () => string; errors: () => string } {
  const out: string[] = [];
  const err: string[] = [];
  return { out: (t) => void out.push(t), err: (t) => void err.push(t), isTTY: false, text: () => out.join('\n'), errors: () => err.join('\n') };
}

const dir = tempDir('witness-approve-keys-');

async function newStore(): Promise<{ db: string; store: string }> {
  const db = tempDb(dir);
  const store = `sqlite:${db}`;
  await (await openLedger(store)).close();
  return { db, store };
}

describe('witness keys create --role approver', () => {
  it('creates a 0600 approver signing key beside the ledger and prints the policy lines for its public key', async () => {
    const { db, store } = await newStore();
    const io = capture();
    expect(await main(['node', 'witness', 'keys', 'create', '--role', 'approver', '--name', 'alice@corp', '--store', store], io)).toBe(0);
    const id = /Key ([0-9a-f]{16}) \(approver\)/.exec(io.text())![1]!;
    const file = path.join(`${db}.approvers`, `${id}.key`);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(file, 'utf8')).toMatch(/^PRIVATE\+KEY\+alice@corp\+/);
    expect(io.text()).toMatch(/approvers:\n {2}- id: alice@corp\n {4}key: "alice@corp\+[0-9a-f]{8}\+[A-Za-z0-9+/=]+"/);
    // The private key never reaches the ledger.
    const secret = /^PRIVATE\+KEY\+[^+]+\+[0-9a-f]{8}\+(.+)$/.exec(fs.readFileSync(file, 'utf8').trim())![1]!;
    expect(secret.length).toBeGreaterThan(40);
    expect(fs.readFileSync(db).includes(secret)).toBe(false);
  });

  it("links a person's own key into --approver-keys with --json, and revoking the API key deletes the server's copy", async () => {
    const { store } = await newStore();
    const keysDir = path.join(dir, 'held');
    const bob = person(dir, 'bob@corp');
    const io = capture();
    expect(await main(['node', 'witness', 'keys', 'create', '--role', 'approver', '--approver-key', bob.file, '--approver-keys', keysDir, '--store', store, '--json'], io)).toBe(0);
    const created = JSON.parse(io.text()) as { id: string; name: string; approver: { name: string; public_key: string; file: string } };
    expect(created).toMatchObject({ name: 'bob@corp', approver: { name: 'bob@corp', public_key: bob.vkey, file: path.join(keysDir, `${created.id}.key`) } });
    const revoke = capture();
    expect(await main(['node', 'witness', 'keys', 'revoke', created.id, '--approver-keys', keysDir, '--store', store], revoke)).toBe(0);
    expect(revoke.text()).toMatch(/approver signing key the server held for it is deleted/);
    expect(fs.existsSync(created.approver.file)).toBe(false);
  });

  it('refuses, creating no API key, an approver without an identity, a name that is not one, or a linked key of someone else', async () => {
    const { store } = await newStore();
    const carol = person(dir, 'carol@corp');
    for (const [args, message] of [
      [[], /needs the approver's identity/],
      [['--name', 'not a name'], /must be the approver's identity/],
      [['--approver-key', carol.file, '--name', 'dave@corp'], /belongs to carol@corp, not to dave@corp/],
    ] as const) {
      const io = capture();
      expect(await main(['node', 'witness', 'keys', 'create', '--role', 'approver', ...args, '--store', store], io)).toBe(2);
      expect(io.errors()).toMatch(message);
    }
    const io = capture();
    expect(await main(['node', 'witness', 'keys', 'create', '--role', 'auditor', '--approver-keys', dir, '--store', store], io)).toBe(2);
    expect(io.errors()).toMatch(/for approver keys only/);
    const ledger = await openLedger(store, { create: false, readonly: true });
    try {
      expect(await listKeys(ledger)).toEqual([]);
    } finally {
      await ledger.close();
    }
  });
});
