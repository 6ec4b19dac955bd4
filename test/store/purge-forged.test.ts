import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import { v7 as uuidv7 } from 'uuid';
import { beforeEach, describe, expect, it } from 'vitest';
import { canonicalize, eventHash, genesisHash, leafRanges, payloadDigest, type VerifyReport } from '../../src/core/index.js';
import { SqliteLedger, eraseSubject, placeHold, runRetention, setRetentionRule, type Actor, type AppendRequest } from '../../src/store/index.js';
import { headerColumns } from '../helpers/header-columns.js';
import { readRows, runCli, verifyFile, where } from '../helpers/ledger.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/**
 * A retention.purge record forged by whoever can write the SQLite file: appended as an ordinary
 * row (correctly chained, canonical, schema-valid) and followed on the same connection by a raw
 * `UPDATE events SET data = NULL, salt = NULL`, which the database's purge guard admits (it asks
 * only that a retention.purge row was inserted just before). Verify judges the record by the
 * rules the writers keep (docs/FORMAT.md 3.6), from the ledger alone, and reports every leaf a
 * record may not erase as unauthorised_purge, naming the rule, the record's leaf and its policy.
 */

const dir = tempDir('witness-purge-forged-');
const OLD = '2024-01-10T10:00:00.000Z';
const agent = { id: 'support-bot' };
const who: Actor = { actor: 'dpo@acme.example', recorder: { kind: 'cli' } };
const RULE = 'retention:kind=llm.call:180d';

let file: string;

/**
 * Leaves: 0, 1 llm.call about cust-1 (s-old); 2 llm.call (s-old); 3 note (s-old); 4 llm.call in
 * s-held; 5 the config.change of RULE; 6 the hold.placed on s-held; all sealed. 7: an llm.call
 * of 2024 appended after the seal (unsealed).
 */
const L = { cust1: 0, cust1b: 1, plain: 2, note: 3, held: 4, rule: 5, hold: 6, unsealed: 7 } as const;

beforeEach(async () => {
  file = tempDb(dir);
  const l = SqliteLedger.open({ path: file });
  const llm = (stream: string, extra: Record<string, unknown> = {}): AppendRequest =>
    ({ stream, agent, ts: OLD, kind: 'llm.call', data: { model: 'm', input: [{ role: 'user', content: 'refund order A-1 for Ann' }] }, ...extra }) as AppendRequest;
  try {
    await l.append([
      llm('s-old', { subject: 'cust-1' }),
      llm('s-old', { subject: 'cust-1' }),
      llm('s-old'),
      { stream: 's-old', agent, ts: OLD, kind: 'note', data: { text: 'no rule for notes' } } as AppendRequest,
      llm('s-held'),
    ]);
    await setRetentionRule(l, { match: { kind: 'llm.call' }, olderThan: '180d' }, who);
    await placeHold(l, { scope: { session: 's-held' }, reason: 'litigation' }, who);
    await l.seal();
    await l.append([llm('s-late')]);
  } finally {
    await l.close();
  }
});

interface Forgery {
  leaves: number[];
  policy?: string;
  stream?: string;
  recorder?: string | null;
  /** Whether the raw UPDATE follows (false: a record only, every payload left in place). */
  erase?: boolean;
}

/**
 * The attack: one connection to the file, an INSERT of a retention.purge row chained onto the
 * stream's head (as ledger.append would write it), then the raw UPDATE. No trigger is dropped.
 * Returns the record's leaf.
 */
function forgePurge(f: Forgery): number {
  const db = new Database(file);
  try {
    return db.transaction(() => {
      const stream = f.stream ?? 'witness.retention';
      const origin = db.prepare(`SELECT value FROM meta WHERE key = 'origin'`).pluck().get() as string;
      const head = db.prepare('SELECT seq, hash FROM events WHERE stream = ? ORDER BY seq DESC LIMIT 1').get(stream) as { seq: number; hash: Buffer } | undefined;
      const prev = head?.hash ?? genesisHash(origin, stream);
      const pos = db.prepare('SELECT max(pos) + 1 FROM events').pluck().get() as number;
      const data = canonicalize({ policy: f.policy ?? RULE, before: '2025-01-01T00:00:00.000Z', count: f.leaves.length, leaves: leafRanges(f.leaves) });
      const salt = randomBytes(32);
      const recorder = f.recorder === null ? {} : { recorder: { kind: f.recorder ?? 'cli' } };
      const header = canonicalize({
        v: 1,
        id: uuidv7(),
        ts: new Date().toISOString(),
        stream,
        seq: head === undefined ? 0 : head.seq + 1,
        agent: { id: 'witness-governance' },
        principal: { id: 'mallory', kind: 'human' },
        ...recorder,
        kind: 'retention.purge',
        resource: 'retention',
        action: 'purge',
        outcome: 'success',
        payload_digest: payloadDigest(salt, data).toString('hex'),
        prev: Buffer.from(prev).toString('hex'),
      });
      const present = new Set(db.prepare('SELECT name FROM pragma_table_info(?)').pluck().all('events') as string[]);
      const cols: Record<string, unknown> = {
        ...Object.fromEntries(Object.entries(headerColumns(header)).filter(([k]) => present.has(k))),
        pos,
        header,
        data,
        salt,
        hash: eventHash(prev, header),
      };
      const names = Object.keys(cols);
      db.prepare(`INSERT INTO events (${names.map((n) => `"${n}"`).join(', ')}) VALUES (${names.map((n) => `@${n}`).join(', ')})`).run(cols);
      if (f.erase !== false) db.prepare(`UPDATE events SET data = NULL, salt = NULL WHERE pos IN (${f.leaves.map(() => '?').join(', ')})`).run(...f.leaves);
      return pos;
    })();
  } finally {
    db.close();
  }
}

/** Seals what the forgery appended (a forger who can write the file cannot sign; the operator's next seal does), then verifies. */
async function sealAndVerify(options: { threads?: number; chunkEvents?: number } = {}): Promise<VerifyReport> {
  const l = SqliteLedger.open({ path: file });
  try {
    await l.seal();
  } finally {
    await l.close();
  }
  return verifyFile(file, options);
}

async function addRule(request: Parameters<typeof setRetentionRule>[1]): Promise<void> {
  const l = SqliteLedger.open({ path: file });
  try {
    await setRetentionRule(l, request, who);
  } finally {
    await l.close();
  }
}

const unauthorised = (r: VerifyReport) => r.failures.filter((f) => f.code === 'unauthorised_purge');

describe('a forged retention.purge record and a raw UPDATE on the same connection', () => {
  it('[R-RETENTION] the database guard admits the forgery (the hole verify must close)', () => {
    forgePurge({ leaves: [L.plain] });
    expect(readRows(file)[L.plain]!.data).toBeNull();
  });

  const cases: Array<[string, Forgery, number, RegExp]> = [
    ['a governance event (the hold.placed record itself)', { leaves: [L.hold] }, L.hold, /leaf 6 is a hold\.placed event, part of the record of governance, which is never purged/],
    ['a governance event (the retention rule)', { leaves: [L.rule] }, L.rule, /leaf 5 is a config\.change event/],
    ['a held event', { leaves: [L.held] }, L.held, /leaf 4 was under legal hold hold-[0-9a-f-]+ \(placed at leaf 6\), in force at the record/],
    [
      'a policy no rule defined',
      { leaves: [L.plain], policy: 'retention:kind=llm.call:1d' },
      L.plain,
      /no retention rule in witness\.retention defined policy retention:kind=llm\.call:1d before the record/,
    ],
    ['a made-up policy name', { leaves: [L.plain], policy: 'gdpr-cleanup' }, L.plain, /policy gdpr-cleanup is neither erasure:<subject> nor a retention rule's label/],
    ['a rule whose selector does not match', { leaves: [L.note] }, L.note, /the rule kind=llm\.call does not apply to leaf 3 \(a note\)/],
    ['a record outside the governance stream', { leaves: [L.plain], stream: 'witness.forged' }, L.plain, /the record is in stream witness\.forged, not witness\.retention/],
    ['a record by the SDK', { leaves: [L.plain], recorder: 'sdk' }, L.plain, /the record was written by recorder sdk, not the CLI or the server/],
    ['a record with no recorder', { leaves: [L.plain], recorder: null }, L.plain, /the record was written by recorder none, not the CLI or the server/],
    ["another subject's event under erasure", { leaves: [L.plain], policy: 'erasure:cust-1' }, L.plain, /leaf 2 is not about subject cust-1 \(it names no subject\)/],
  ];
  for (const [what, forgery, leaf, reason] of cases) {
    it(`[R-RETENTION] is caught as unauthorised_purge: ${what}`, async () => {
      const at = forgePurge(forgery);
      const r = await sealAndVerify();
      expect(r.ok).toBe(false);
      expect(where(r)).toEqual([{ code: 'unauthorised_purge', stream: readRows(file)[leaf]!.stream, seq: readRows(file)[leaf]!.seq, leaf }]);
      const f = unauthorised(r)[0]!;
      expect(f.reason).toContain(`retention.purge event at leaf ${at} (policy ${forgery.policy ?? RULE})`);
      expect(f.reason).toMatch(reason);
      expect(r.purged?.payloads).toBe(0);
    });
  }

  it('[R-RETENTION] is caught as unauthorised_purge: an event not yet in a signed checkpoint (which the sealer then refuses to sign)', async () => {
    const at = forgePurge({ leaves: [L.unsealed] });
    const l = SqliteLedger.open({ path: file });
    try {
      await expect(l.seal()).rejects.toThrow(/leaf 7 .* does not verify/);
    } finally {
      await l.close();
    }
    const r = await verifyFile(file);
    // Leaf 7 is dated 2024, so it is also an unsealed_gap; the purge's own finding is the one asked for.
    expect(where(r).filter((f) => f.code !== 'unsealed_gap')).toEqual([{ code: 'unauthorised_purge', stream: 's-late', seq: 0, leaf: L.unsealed }]);
    expect(r.failures[0]!.reason).toContain(
      `retention.purge event at leaf ${at} (policy ${RULE}), which may not erase it: leaf 7 was not in a signed checkpoint before the record (the newest then had 7 leaves).`,
    );
  });

  it("[R-RETENTION] [R-ERASURE] judges each leaf on its own: the subject's events pass, another's fails", async () => {
    forgePurge({ leaves: [L.cust1, L.cust1b, L.plain], policy: 'erasure:cust-1' });
    const r = await sealAndVerify();
    expect(where(r)).toEqual([{ code: 'unauthorised_purge', stream: 's-old', seq: 2, leaf: L.plain }]);
    expect(r.purged?.payloads).toBe(2);
  });

  it("[R-RETENTION] [R-ERASURE] is caught as unauthorised_purge: an erasure of the subject's event while a keeping duty binds it", async () => {
    await addRule({ match: { kind: 'llm.call' }, preset: 'hipaa' });
    const at = forgePurge({ leaves: [L.cust1], policy: 'erasure:cust-1' });
    const r = await sealAndVerify();
    expect(where(r)).toEqual([{ code: 'unauthorised_purge', stream: 's-old', seq: 0, leaf: L.cust1 }]);
    expect(r.failures[0]!.reason).toMatch(
      new RegExp(
        `leaf ${at} \\(policy erasure:cust-1\\), which may not erase it: the keeping duty retention:kind=llm\\.call:6y:hipaa \\(set at leaf 8\\) still bound leaf 0, dated ${OLD}, at the record's time `,
      ),
    );
  });

  it('[R-RETENTION] [R-ERASURE] a duty that has run out, or that a later rule for its selector replaced, does not bind an erasure', async () => {
    await addRule({ match: {}, preset: 'eu-ai-act' });
    await addRule({ match: { kind: 'llm.call' }, preset: 'hipaa' });
    await addRule({ match: { kind: 'llm.call' }, olderThan: '30d' });
    forgePurge({ leaves: [L.cust1, L.cust1b], policy: 'erasure:cust-1' });
    const r = await sealAndVerify();
    expect(r.failures).toEqual([]);
    expect(r.purged?.payloads).toBe(2);
  });

  it('[R-RETENTION] a forged record whose leaves still hold their payload is no failure (nothing was erased)', async () => {
    forgePurge({ leaves: [L.held, L.hold], erase: false });
    const r = await sealAndVerify();
    expect(r.failures).toEqual([]);
    expect(r.purged).toMatchObject({ payloads: 0, stillPresent: 2 });
  });

  it('[R-RETENTION] [R-LEGAL-HOLD] erasing the hold.placed record itself leaves a hold of unknown scope, which may cover every leaf the record erased', async () => {
    forgePurge({ leaves: [L.plain, L.hold] });
    const r = await sealAndVerify();
    expect(where(r).map((f) => f.leaf)).toEqual([L.plain, L.hold]);
    expect(r.failures[0]!.reason).toMatch(/the hold placed at leaf 6 was in force at the record, and its payload is gone or names no scope this version reads, so it may cover leaf 2/);
    expect(r.failures[1]!.reason).toMatch(/leaf 6 is a hold\.placed event/);
  });

  it('[R-RETENTION] the earliest record listing a leaf judges it: a later record that keeps the rules and lists it too does not hide one that broke them', async () => {
    const bad = forgePurge({ leaves: [L.plain], stream: 'witness.forged' });
    // A later record whose ranges start lower ([0, 2]) and that may erase all three leaves.
    forgePurge({ leaves: [L.cust1, L.cust1b, L.plain] });
    for (const threads of [undefined, 2]) {
      const r = await sealAndVerify(threads === undefined ? {} : { threads, chunkEvents: 2 });
      expect(where(r)).toEqual([{ code: 'unauthorised_purge', stream: 's-old', seq: 2, leaf: L.plain }]);
      expect(unauthorised(r)[0]!.reason).toContain(`retention.purge event at leaf ${bad} (policy ${RULE})`);
      expect(r.purged?.payloads).toBe(2);
    }
  });

  it('[R-RETENTION] reports the same in worker threads, with the purged leaves across chunk seams', async () => {
    forgePurge({ leaves: [L.cust1, L.plain, L.note, L.held] });
    const one = await sealAndVerify({ threads: 1 });
    const many = await verifyFile(file, { threads: 2, chunkEvents: 2 });
    expect(where(one).map((f) => f.leaf)).toEqual([L.note, L.held]);
    expect(many.failures).toEqual(one.failures);
    expect(many.purged).toEqual(one.purged);
  });

  it('[R-RETENTION] `witness verify` exits 1 naming the rule, the leaf and the policy', async () => {
    forgePurge({ leaves: [L.held] });
    await sealAndVerify();
    const out = await runCli(['verify', '--store', `sqlite:${file}`]);
    expect(out.code).toBe(1);
    expect(out.stdout + out.stderr).toMatch(/unauthorised_purge/);
    expect(out.stdout + out.stderr).toMatch(/leaf 4 was under legal hold/);
  });
});

describe('genuine purges still verify clean', () => {
  it('[R-RETENTION] [R-LEGAL-HOLD] [R-ERASURE] a retention run and a subject erasure pass, in-thread and in worker threads', async () => {
    const l = SqliteLedger.open({ path: file });
    try {
      await l.seal();
      const run = await runRetention(l, who);
      // 0, 1, 2 and 7 (sealed now) are llm.calls of 2024; 4 is held.
      expect(run).toMatchObject({ purged: 4, held: 1 });
      await l.append([{ stream: 's-new', agent, kind: 'note', subject: 'cust-9', data: { text: 'Ann called' } } as AppendRequest]);
      expect(await eraseSubject(l, { subject: 'cust-9', reason: 'DSR-1' }, who)).toMatchObject({ purged: 1 });
      await l.seal();
    } finally {
      await l.close();
    }
    const one = await verifyFile(file, { threads: 1 });
    expect(one.failures).toEqual([]);
    expect(one.purged?.payloads).toBe(5);
    const many = await verifyFile(file, { threads: 2, chunkEvents: 2 });
    expect(many.failures).toEqual([]);
    expect(many.purged).toEqual(one.purged);
  });
});
