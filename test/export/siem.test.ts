import { Writable } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import { generateKey, leafHash, openCheckpoint, parseVerifierKey, verifyInclusion, type StoredEvent } from '../../src/core/index.js';
import { OCSF_REQUIRED, OCSF_VERSION, apiActivity, exportSiem, type SiemExportOptions } from '../../src/export/index.js';
import { SqliteLedger, type Ledger } from '../../src/store/index.js';
import { buildLedger, copyLedger, type BuiltLedger } from '../helpers/ledger.js';
import { tempDir } from '../helpers/tmp.js';

const dir = tempDir('witness-siem-');
let base: BuiltLedger;

beforeAll(async () => {
  base = await buildLedger(dir);
});

const everything = { since: null, until: null, agents: null, sessions: null };

/** A Writable that keeps what it is given, as text. */
function sink(): Writable & { text: () => string } {
  const chunks: Buffer[] = [];
  const w = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk);
      done();
    },
  });
  return Object.assign(w, { text: () => Buffer.concat(chunks).toString('utf8') });
}

async function run(b: BuiltLedger, options: Partial<SiemExportOptions>): Promise<{ lines: Array<Record<string, unknown>>; ledger: Ledger; result: Awaited<ReturnType<typeof exportSiem>> }> {
  const copy = copyLedger(b, dir);
  const ledger = SqliteLedger.open({ path: copy.file, create: false });
  const out = sink();
  const result = await exportSiem(ledger, out, { format: 'ocsf', scope: everything, ...options });
  const lines = out
    .text()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { lines, ledger, result };
}

const at = (o: unknown, path: string): unknown => path.split('.').reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], o);

/** The OCSF 1.8.0 requirements the README documents: required attributes per class, and the at-least-one constraints of the objects used. */
function ocsfProblems(line: Record<string, unknown>): string[] {
  const problems: string[] = [];
  const cls = line['class_uid'] as number;
  const required = OCSF_REQUIRED[cls];
  if (required === undefined) return [`class_uid ${cls} is not one the export documents`];
  for (const p of required) if (at(line, p) === undefined || at(line, p) === null) problems.push(`${p} missing`);
  if (line['type_uid'] !== cls * 100 + (line['activity_id'] as number)) problems.push('type_uid is not class_uid * 100 + activity_id');
  if (!Number.isInteger(line['time'])) problems.push('time is not an integer (ms)');
  const actor = line['actor'] as Record<string, unknown> | undefined;
  if (actor !== undefined && !['user', 'app_name', 'session', 'process', 'invoked_by', 'app_uid'].some((k) => actor[k] !== undefined)) problems.push('actor has none of its at-least-one attributes');
  const user = actor?.['user'] as Record<string, unknown> | undefined;
  if (user !== undefined && user['uid'] === undefined && user['name'] === undefined) problems.push('actor.user has neither uid nor name');
  const src = line['src_endpoint'] as Record<string, unknown> | undefined;
  if (src !== undefined && !['ip', 'uid', 'name', 'hostname', 'svc_name'].some((k) => src[k] !== undefined)) problems.push('src_endpoint has none of ip, uid, name, hostname');
  if (![0, 1, 2, 3, 4, 5, 6, 99].includes(line['severity_id'] as number)) problems.push('severity_id out of its enum');
  if (line['status_id'] !== undefined && ![0, 1, 2, 99].includes(line['status_id'] as number)) problems.push('status_id out of its enum');
  return problems;
}

describe('OCSF export', () => {
  it('maps every event to a documented OCSF 1.8.0 class with every required attribute, tool calls as API Activity', async () => {
    const { lines, ledger } = await run(base, {});
    try {
      expect(lines).toHaveLength(base.size);
      for (const l of lines) expect(ocsfProblems(l), JSON.stringify(l)).toEqual([]);
      for (const l of lines) expect(at(l, 'metadata.version')).toBe(OCSF_VERSION);
      const witness = (l: Record<string, unknown>) => at(l, 'unmapped.witness.event') as StoredEvent;
      const refund = lines.find((l) => witness(l).kind === 'tool.call' && at(l, 'api.operation') === 'billing.refund')!;
      expect(refund).toMatchObject({ class_uid: 6003, category_uid: 6, activity_id: 3, type_uid: 600303, status_id: 99, severity_id: 1 });
      expect(refund['time']).toBe(Date.parse(witness(refund).ts));
      expect(refund['actor']).toMatchObject({ app_name: 'billing-bot', session: { uid: base.sessions.b } });
      const result = lines.find((l) => witness(l).kind === 'tool.result' && at(l, 'api.operation') === 'billing.refund')!;
      expect(result).toMatchObject({ class_uid: 6003, status_id: 1, status: 'Success' });
      const lookup = lines.find((l) => witness(l).kind === 'tool.call' && at(l, 'api.operation') === 'crm.lookup')!;
      expect(lookup).toMatchObject({ activity_id: 2, actor: { app_name: 'support-bot', user: { uid: 'customer-12345' } } });
      const note = lines.find((l) => witness(l).kind === 'note')!;
      expect(note).toMatchObject({ class_uid: 0, category_uid: 0, activity_id: 99, type_uid: 99, activity_name: 'note' });
      // Base Event has actor only through the host profile, which the line declares; API Activity has its own.
      expect(at(note, 'metadata.profiles')).toEqual(['host']);
      expect(at(refund, 'metadata.profiles')).toBeUndefined();
    } finally {
      await ledger.close();
    }
  });

  it('carries the stored event, its leaf and an inclusion proof that verifies against the newest checkpoint under unmapped', async () => {
    const { lines, ledger, result } = await run(base, {});
    try {
      const cp = (await ledger.latestCheckpoint())!;
      expect(result.checkpoint).toEqual({ size: cp.size, root: cp.root.toString('hex'), note: cp.note });
      for (const l of lines) {
        const w = at(l, 'unmapped.witness') as { event: StoredEvent; leaf: number; inclusion_proof: { leaf: number; tree_size: number; hashes: string[] }; checkpoint: { size: number; root: string } };
        expect(w.checkpoint).toEqual(result.checkpoint);
        const leaf = leafHash(Buffer.from(w.event.hash, 'hex'));
        const proof = w.inclusion_proof.hashes.map((h) => Buffer.from(h, 'hex'));
        expect(verifyInclusion(leaf, w.leaf, w.inclusion_proof.tree_size, proof, cp.root)).toEqual({ ok: true });
        expect(w.event.data).not.toBeNull();
      }
      // A proof of another event's hash at this leaf fails: the check is real.
      const [a, b] = lines.map((l) => at(l, 'unmapped.witness') as { event: StoredEvent; leaf: number; inclusion_proof: { hashes: string[] } });
      expect(
        verifyInclusion(
          leafHash(Buffer.from(b!.event.hash, 'hex')),
          a!.leaf,
          cp.size,
          a!.inclusion_proof.hashes.map((h) => Buffer.from(h, 'hex')),
          cp.root,
        ).ok,
      ).toBe(false);
    } finally {
      await ledger.close();
    }
  });

  it("ties every proof to a signature: each line carries the checkpoint's signed note, which opens with the ledger's key and whose root is the root the proof leads to", async () => {
    const { lines, ledger } = await run(base, {});
    try {
      expect(lines.length).toBeGreaterThan(1);
      for (const l of lines) {
        const w = at(l, 'unmapped.witness') as { event: StoredEvent; leaf: number; inclusion_proof: { tree_size: number; hashes: string[] }; checkpoint: { size: number; root: string; note: string } };
        // Only the note and the key an auditor pins: nothing read from the ledger.
        const opened = openCheckpoint(w.checkpoint.note, [parseVerifierKey(base.vkey)], base.origin);
        expect(opened.checkpoint.size).toBe(w.inclusion_proof.tree_size);
        expect(Buffer.from(opened.checkpoint.rootHash).toString('hex')).toBe(w.checkpoint.root);
        const proof = w.inclusion_proof.hashes.map((h) => Buffer.from(h, 'hex'));
        expect(verifyInclusion(leafHash(Buffer.from(w.event.hash, 'hex')), w.leaf, w.inclusion_proof.tree_size, proof, opened.checkpoint.rootHash)).toEqual({ ok: true });
      }
      // Another key does not open it.
      expect(() => openCheckpoint(at(lines[0], 'unmapped.witness.checkpoint.note') as string, [parseVerifierKey(generateKey('other').verifierKey)])).toThrow();
    } finally {
      await ledger.close();
    }
  });

  it('reads the activity from the verb in a tool name or MCP method', () => {
    expect(apiActivity('get_customer')).toBe(2);
    expect(apiActivity('resources/read')).toBe(2);
    expect(apiActivity('createInvoice')).toBe(1);
    expect(apiActivity('billing.refund')).toBe(3);
    expect(apiActivity('files.delete')).toBe(4);
    expect(apiActivity('frobnicate')).toBe(99);
  });
});

describe('JSONL export', () => {
  it('writes each in-scope event in its stored form plus leaf, in leaf order, and records the export as audit.access', async () => {
    const { lines, ledger, result } = await run(base, { format: 'jsonl', scope: { ...everything, sessions: [base.sessions.b] }, actor: 'alice' });
    try {
      expect(lines.map((l) => l['stream'])).toEqual(Array(5).fill(base.sessions.b));
      expect(lines.map((l) => l['leaf'])).toEqual([0, 1, 2, 3, 4].map((s) => base.pos(base.sessions.b, s)));
      for (const l of lines) {
        const { leaf, ...stored } = l;
        const e = await ledger.getEvent(stored['id'] as string);
        const { pos, ...want } = e!;
        expect(stored).toEqual(want);
        expect(leaf).toBe(pos);
      }
      const access = await ledger.getEvent(result.accessEvent!);
      expect(access).toMatchObject({ kind: 'audit.access', stream: 'witness.audit-access', action: 'export', outcome: 'success', principal: { id: 'alice' } });
      expect(access!.data).toMatchObject({ actor: 'alice', operation: 'export', format: 'jsonl', mode: 'full', count: 5, complete: true });
    } finally {
      await ledger.close();
    }
  });

  it('drops payloads and salts with withholdData, keeping every hash', async () => {
    const { lines, ledger } = await run(base, { format: 'jsonl', withholdData: true });
    try {
      expect(lines).toHaveLength(base.size);
      for (const l of lines) expect([l['data'], l['salt'], typeof l['hash']]).toEqual([null, null, 'string']);
    } finally {
      await ledger.close();
    }
  });
});
