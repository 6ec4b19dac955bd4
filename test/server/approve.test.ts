import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { argumentsDigest, decisionProblem, approvalRequestParts, listedApprovers, newArgumentsSalt } from '../../src/core/index.js';
import { findApproval } from '../../src/approvals/index.js';
import { openWitness, systemWriter, type Witness } from '../../src/recorder/index.js';
import { approveAs } from '../../src/server/approve.js';
import { approverKeysDir, loadApproverKey, oidcApproverKeyId, storeApproverKey } from '../../src/server/approver-keys.js';
import { openLedger } from '../../src/store/index.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/**
 * approveAs, the one function the HTTP routes and the viewer's form decide through: a request
 * written as the gateway writes it in a real SQLite ledger, decided with keys the server holds.
 */

const dir = tempDir('witness-approve-');

async function request(w: Witness, approvers: string[], agent = 'support-bot'): Promise<string> {
  // As the gateway records a held call (the SDK's public path refuses approval.request).
  const s = await systemWriter(w, 'gateway').session({ agent: { id: agent } });
  const salt = newArgumentsSalt();
  const args = { amount: 650, customer: 'c-1' };
  const id = randomUUID();
  await s.record(
    'approval.request',
    {
      request_id: id,
      tool: 'billing.refund',
      arguments: args,
      arguments_salt: salt,
      arguments_digest: argumentsDigest(salt, args),
      approvers,
      policy_version: 'ab'.repeat(32),
      rule: 'refunds-over-500',
      expires_at: new Date(Date.now() + 60_000).toISOString(),
    },
    { id, outcome: 'pending' },
  );
  await w.flush();
  return id;
}

async function setup() {
  const db = tempDb(dir);
  const store = `sqlite:${db}`;
  const gateway = await openWitness({ store });
  const ledger = await openLedger(store, { create: false });
  const keysDir = path.join(dir, `keys-${path.basename(db)}`);
  return { db, store, gateway, ledger, keysDir };
}

describe('approveAs', () => {
  it('records the decision as the person the server-held key names, with their role and the API key as credential, and the decision counts', async () => {
    const { gateway, ledger, keysDir } = await setup();
    try {
      const alice = storeApproverKey(keysDir, '00000000000000a1', { name: 'alice@corp' });
      const id = await request(gateway, [alice.verifierKey]);
      const r = await approveAs({ ledger, approverKeys: keysDir }, { keyId: '00000000000000a1', name: 'Mallory (whatever the key is called)', role: 'approver' }, id, 'approved', 'amount checked');
      expect(r).toMatchObject({ requestId: id, decision: 'approved', approver: 'alice@corp', status: 'approved', fingerprint: alice.fingerprint });
      const d = await ledger.getEvent(r.decisionId);
      expect(d?.data).toMatchObject({ approver: 'alice@corp', role: 'approver', reason: 'amount checked', meaning: expect.stringContaining('API key 00000000000000a1') });
      expect(d?.principal).toEqual({ id: 'alice@corp', kind: 'human' });
      // Recorded by the server, not labelled as a `witness approve` from a terminal.
      expect(d?.recorder?.kind).toBe('server');
      // Judged as the gateway judges it: a signed decision by a listed key.
      const req = await ledger.getEvent(id);
      expect(decisionProblem(approvalRequestParts(req!), d as never, listedApprovers(req as never), ledger.info.origin)).toBeUndefined();
    } finally {
      await gateway.close();
      await ledger.close();
    }
  });

  it('refuses, recording nothing, when the server holds no approver key for the API key', async () => {
    const { gateway, ledger, keysDir } = await setup();
    try {
      const alice = storeApproverKey(keysDir, '00000000000000a1', { name: 'alice@corp' });
      const id = await request(gateway, [alice.verifierKey]);
      const size = ledger.info.size;
      await expect(approveAs({ ledger, approverKeys: keysDir }, { keyId: '00000000000000b2', role: 'approver' }, id, 'approved')).rejects.toMatchObject({
        code: 'forbidden',
        details: { refusal: 'no_approver_key' },
      });
      expect(ledger.info.size).toBe(size);
    } finally {
      await gateway.close();
      await ledger.close();
    }
  });

  it('refuses, in one sentence saying what the admin must run, a person signed in with OpenID Connect whom the config does not list, whose key is missing, or whose key bears another name', async () => {
    const { gateway, ledger, keysDir } = await setup();
    try {
      const issuer = 'https://idp.example';
      const alice = storeApproverKey(keysDir, oidcApproverKeyId(issuer, 'alice'), { name: 'alice@corp' });
      storeApproverKey(keysDir, oidcApproverKeyId(issuer, 'mallory'), { name: 'alice@corp' });
      const id = await request(gateway, [alice.verifierKey]);
      const ctx = {
        ledger,
        approverKeys: keysDir,
        oidc: {
          issuer,
          approvers: [
            { subject: 'bob', name: 'bob@corp' },
            { subject: 'mallory', name: 'mallory@corp' },
          ],
        },
      };
      const as = (subject: string, name: string) => approveAs(ctx, { keyId: `oidc:${subject}`, name, role: 'approver' }, id, 'approved');
      await expect(as('alice', 'Alice')).rejects.toMatchObject({
        code: 'forbidden',
        message: `This server holds no approver signing key for Alice (OpenID Connect subject "alice"), so it cannot sign a decision for you; an admin runs \`witness keys oidc-approver --issuer https://idp.example --subject alice --name <your identity>\`, adds the policy lines it prints, and lists you under oidc.approvers in the server's config (subject: alice).`,
      });
      await expect(as('bob', 'Bob')).rejects.toMatchObject({
        code: 'forbidden',
        message: `This server holds no approver signing key for Bob (OpenID Connect subject "bob"), so it cannot sign a decision for you; an admin runs \`witness keys oidc-approver --issuer https://idp.example --subject bob --name bob@corp\` and adds the policy lines it prints.`,
      });
      await expect(as('mallory', 'Mallory')).rejects.toMatchObject({
        code: 'forbidden',
        message: expect.stringMatching(/names Mallory .* mallory@corp, but the approver key held for them belongs to alice@corp/),
      });
      // Without the server's OpenID Connect configuration nobody signed in that way can decide.
      await expect(approveAs({ ledger, approverKeys: keysDir }, { keyId: 'oidc:alice', name: 'Alice', role: 'approver' }, id, 'approved')).rejects.toMatchObject({ code: 'forbidden' });
      expect((await findApproval(ledger, id)).decisions).toHaveLength(0);
    } finally {
      await gateway.close();
      await ledger.close();
    }
  });

  it('refuses a person whose role is not approver, even when a key is held for them', async () => {
    const { gateway, ledger, keysDir } = await setup();
    try {
      const alice = storeApproverKey(keysDir, '00000000000000a1', { name: 'alice@corp' });
      const id = await request(gateway, [alice.verifierKey]);
      await expect(approveAs({ ledger, approverKeys: keysDir }, { keyId: '00000000000000a1', role: 'auditor' }, id, 'approved')).rejects.toMatchObject({ code: 'forbidden' });
    } finally {
      await gateway.close();
      await ledger.close();
    }
  });

  it('refuses an approver key named as the agent that asked (forbidden), and a second decision (conflict)', async () => {
    const { gateway, ledger, keysDir } = await setup();
    try {
      const bot = storeApproverKey(keysDir, '00000000000000c3', { name: 'support-bot' });
      const alice = storeApproverKey(keysDir, '00000000000000a1', { name: 'alice@corp' });
      const id = await request(gateway, [bot.verifierKey, alice.verifierKey]);
      await expect(approveAs({ ledger, approverKeys: keysDir }, { keyId: '00000000000000c3', role: 'approver' }, id, 'approved')).rejects.toMatchObject({
        code: 'forbidden',
        details: { refusal: 'approver_is_agent' },
      });
      await approveAs({ ledger, approverKeys: keysDir }, { keyId: '00000000000000a1', role: 'approver' }, id, 'denied', 'too much');
      await expect(approveAs({ ledger, approverKeys: keysDir }, { keyId: '00000000000000a1', role: 'approver' }, id, 'approved')).rejects.toMatchObject({
        code: 'conflict',
        message: expect.stringMatching(/already denied by alice@corp/),
      });
      expect((await findApproval(ledger, id)).status).toBe('denied');
    } finally {
      await gateway.close();
      await ledger.close();
    }
  });

  it('refuses an unknown request with not_found', async () => {
    const { gateway, ledger, keysDir } = await setup();
    try {
      storeApproverKey(keysDir, '00000000000000a1', { name: 'alice@corp' });
      await expect(approveAs({ ledger, approverKeys: keysDir }, { keyId: '00000000000000a1', role: 'approver' }, randomUUID(), 'approved')).rejects.toMatchObject({ code: 'not_found' });
    } finally {
      await gateway.close();
      await ledger.close();
    }
  });
});

describe('server-held approver keys', () => {
  it('live beside a SQLite ledger by default, in a 0700 directory, one 0600 file per API key, never overwritten', () => {
    const keysDir = approverKeysDir({ id: 'x', location: path.join(dir, 'w.db') }, undefined, {});
    expect(keysDir).toBe(path.join(dir, 'w.db.approvers'));
    expect(approverKeysDir({ id: 'abc', location: 'postgres://u@h/db?schema=w' }, undefined, {})).toMatch(/\.witness\/postgres\/abc\.approvers$/);
    expect(approverKeysDir({ id: 'abc', location: 'x' }, undefined, { WITNESS_APPROVER_KEYS: '/srv/k' })).toBe('/srv/k');
    const k = storeApproverKey(keysDir, '00000000000000d4', { name: 'dora@corp' });
    expect(fs.statSync(keysDir).mode & 0o777).toBe(0o700);
    expect(fs.statSync(k.file).mode & 0o777).toBe(0o600);
    expect(k.verifierKey).toMatch(/^dora@corp\+[0-9a-f]{8}\+/);
    expect(() => storeApproverKey(keysDir, '00000000000000d4', { name: 'dora@corp' })).toThrow(/must not exist yet/);
    expect(loadApproverKey(keysDir, '00000000000000d4').info.name).toBe('dora@corp');
  });

  it("copy a person's own key, refusing one readable by others or named for someone else", () => {
    const keysDir = path.join(dir, 'linked');
    const own = path.join(dir, 'erin.key');
    storeApproverKey(path.join(dir, 'src'), '00000000000000e5', { name: 'erin@corp' });
    fs.copyFileSync(path.join(dir, 'src', '00000000000000e5.key'), own);
    fs.chmodSync(own, 0o644);
    expect(() => storeApproverKey(keysDir, '00000000000000e6', { from: own })).toThrow(/can be read by other users/);
    fs.chmodSync(own, 0o600);
    expect(() => storeApproverKey(keysDir, '00000000000000e6', { from: own, name: 'frank@corp' })).toThrow(/belongs to erin@corp/);
    expect(storeApproverKey(keysDir, '00000000000000e6', { from: own }).name).toBe('erin@corp');
  });
});
