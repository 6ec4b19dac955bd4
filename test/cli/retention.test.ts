import { beforeEach, describe, expect, it } from 'vitest';
import { SqliteLedger, type AppendRequest } from '../../src/store/index.js';
import { oneSentence, readRows, runCli, tamper } from '../helpers/ledger.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/**
 * `witness retention`, `witness hold` and `witness erase` on a real SQLite ledger, through the
 * CLI's main(): what each purges or keeps, what each records, what verify then says, and every
 * refusal in one sentence with nothing changed.
 */

const dir = tempDir('witness-retention-');
let file: string;
const store = () => `sqlite:${file}`;

const OLD = '2024-01-10T10:00:00.000Z';
const RECENT = new Date(Date.now() - 86_400_000).toISOString();
const agent = { id: 'support-bot' };

/**
 * Session s-old (2024): 4 llm.calls (two about subject cust-1), a note, a clinical tool.call about
 * cust-2; session s-held (2024): 2 llm.calls about cust-1; session s-new (yesterday): 1 llm.call.
 * Everything sealed.
 */
beforeEach(async () => {
  file = tempDb(dir);
  const l = SqliteLedger.open({ path: file });
  const llm = (stream: string, ts: string, extra: Record<string, unknown> = {}): AppendRequest =>
    ({ stream, agent, ts, kind: 'llm.call', data: { model: 'm', input: [{ role: 'user', content: 'refund order A-1 for Ann' }] }, ...extra }) as AppendRequest;
  try {
    await l.append([
      llm('s-old', OLD, { subject: 'cust-1' }),
      llm('s-old', OLD, { subject: 'cust-1' }),
      llm('s-old', OLD),
      llm('s-old', OLD),
      { stream: 's-old', agent, ts: OLD, kind: 'note', data: { text: 'kept: no rule for notes' } } as AppendRequest,
      { stream: 's-old', agent, ts: OLD, kind: 'tool.call', subject: 'cust-2', record_class: 'clinical', data: { tool: 'ehr.read', arguments: { patient: 'cust-2' } } } as AppendRequest,
      llm('s-held', OLD, { subject: 'cust-1' }),
      llm('s-held', OLD, { subject: 'cust-1' }),
      llm('s-new', RECENT, { subject: 'cust-1' }),
    ]);
    await l.seal();
  } finally {
    await l.close();
  }
});

const json = <T>(stdout: string) => JSON.parse(stdout) as T;
const payloads = () => readRows(file).map((r) => r.data !== null);

describe('witness retention, hold and erase', () => {
  it('[R-RETENTION] [R-LEGAL-HOLD] purges expired payloads except held ones, records each purge, and verify names it; a dry run changes nothing', async () => {
    const set = await runCli(['retention', 'set', '--kind', 'llm.call', '--older-than', '180d', '--by', 'dpo@acme.example', '--store', store(), '--json']);
    expect(set.code).toBe(0);
    expect(json<{ rule: { policy: string } }>(set.stdout).rule.policy).toBe('retention:kind=llm.call:180d');
    const list = json<{ rules: Array<{ selector: string; period: string; setBy: string }> }>((await runCli(['retention', 'list', '--store', store(), '--json'])).stdout);
    expect(list.rules).toMatchObject([{ selector: 'kind=llm.call', period: '180d', setBy: 'dpo@acme.example' }]);
    const placed = await runCli(['hold', 'place', '--session', 's-held', '--reason', 'litigation', '--case', 'ACME-2026-7', '--store', store(), '--json']);
    expect(placed.code).toBe(0);
    const hold = json<{ hold: string }>(placed.stdout).hold;

    const before = payloads();
    const size = readRows(file).length;
    const dry = await runCli(['retention', 'run', '--dry-run', '--store', store(), '--json']);
    expect(dry.code).toBe(0);
    expect(json<{ purged: number; held: number; dryRun: boolean }>(dry.stdout)).toMatchObject({ dryRun: true, purged: 4, held: 2, heldBy: { [hold]: 2 } });
    expect(payloads()).toEqual(before);
    expect(readRows(file)).toHaveLength(size);

    const run = await runCli(['retention', 'run', '--store', store()]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('retention:kind=llm.call:180d: purged 4 payload(s) dated before');
    expect(run.stdout).toContain('(2 held back by a legal hold)');
    expect(run.stdout).toContain(`hold ${hold} kept 2 event(s).`);
    // Leaves 0–3 purged; the note, the tool.call, the held session and yesterday's call kept.
    expect(payloads().slice(0, 9)).toEqual([false, false, false, false, true, true, true, true, true]);
    const purge = readRows(file).find((r) => r.kind === 'retention.purge')!;
    expect(JSON.parse(purge.data!)).toMatchObject({ policy: 'retention:kind=llm.call:180d', count: 4, leaves: [[0, 3]], held_back: 2 });

    // Unsealed purge record: verify still passes (it warns about the unsealed tail) and names the purge.
    const verify = await runCli(['verify', '--store', store()]);
    expect(verify.code).toBe(0);
    expect(verify.stdout).toContain('purge: 4 payload(s) purged under 1 recorded retention.purge event(s)');
    expect(verify.stdout).toContain(`purge: 4 under policy retention:kind=llm.call:180d (retention.purge at leaf ${purge.pos})`);

    // A second run finds nothing new; once the hold is released the held events go too.
    expect(json<{ purged: number; held: number }>((await runCli(['retention', 'run', '--store', store(), '--json'])).stdout)).toMatchObject({ purged: 0, held: 2 });
    expect((await runCli(['hold', 'release', hold, '--reason', 'case closed', '--store', store()])).code).toBe(0);
    const holds = json<{ holds: Array<{ id: string; released?: { reason: string } }> }>((await runCli(['hold', 'list', '--store', store(), '--json'])).stdout).holds;
    expect(holds).toMatchObject([{ id: hold, released: { reason: 'case closed' } }]);
    const l = SqliteLedger.open({ path: file });
    await l.seal();
    await l.close();
    expect(json<{ purged: number; held: number }>((await runCli(['retention', 'run', '--store', store(), '--json'])).stdout)).toMatchObject({ purged: 2, held: 0 });
    expect(payloads().slice(6, 9)).toEqual([false, false, true]);
    const after = await runCli(['verify', '--store', store(), '--json']);
    expect(json<{ ok: boolean; purged: { payloads: number; records: unknown[] } }>(after.stdout)).toMatchObject({ ok: true, purged: { payloads: 6 } });
  });

  it('[R-RETENTION] a payload nulled by direct SQL is an uncovered purge, which verify fails', async () => {
    tamper(file, (db) => db.prepare('UPDATE events SET data = NULL, salt = NULL WHERE pos = 2').run());
    const r = await runCli(['verify', '--store', store()]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/FAILED verification at session s-old, seq 2, leaf 2: uncovered_purge: /);
  });

  it('[R-ERASURE] [R-LEGAL-HOLD] erases a subject only when no hold or keeping duty covers it, with the same receipt; refusals change nothing', async () => {
    const placed = json<{ hold: string }>((await runCli(['hold', 'place', '--subject', 'cust-1', '--since', '2024-01-01', '--reason', 'regulator inquiry', '--store', store(), '--json'])).stdout);
    const before = payloads();
    const refused = await runCli(['erase', '--subject', 'cust-1', '--reason', 'DSR-17', '--store', store()]);
    expect(refused.code).toBe(1);
    expect(oneSentence(refused.stderr)).toMatch(new RegExp(`^Erasure of subject cust-1 refused: a legal hold covers 5 of its events \\(${placed.hold} \\(5\\)\\); nothing was erased`));
    expect(payloads()).toEqual(before);
    await runCli(['hold', 'release', placed.hold, '--reason', 'inquiry closed', '--store', store()]);

    const released = payloads();
    const dry = json<{ purged: number }>((await runCli(['erase', '--subject', 'cust-1', '--reason', 'DSR-17', '--dry-run', '--store', store(), '--json'])).stdout);
    expect(dry.purged).toBe(5);
    expect(payloads()).toEqual(released);
    const erased = await runCli(['erase', '--subject', 'cust-1', '--reason', 'DSR-17', '--store', store()]);
    expect(erased.code).toBe(0);
    expect(erased.stdout).toMatch(/^Erased 5 payload\(s\) of subject cust-1 under policy erasure:cust-1; recorded by 1 retention\.purge event\(s\) from leaf \d+\.$/m);
    expect(payloads().slice(0, 9)).toEqual([false, false, true, true, true, true, false, false, false]);
    const v = await runCli(['verify', '--store', store()]);
    expect(v.code).toBe(0);
    expect(v.stdout).toContain('purge: 5 under policy erasure:cust-1');

    // A keeping duty (a preset) binds cust-2's clinical record for six years: refused.
    await runCli(['retention', 'set', '--preset', 'hipaa', '--record-class', 'clinical', '--store', store()]);
    const duty = await runCli(['erase', '--subject', 'cust-2', '--reason', 'DSR-18', '--store', store()]);
    expect(duty.code).toBe(1);
    expect(oneSentence(duty.stderr)).toMatch(/^Erasure of subject cust-2 refused: a keeping duty \(retention:record_class=clinical:6y:hipaa, set .*\) still binds 1 of its events/);
    expect(payloads()[5]).toBe(true);
  });

  it('bad usage exits 2 with one sentence and records nothing', async () => {
    const size = readRows(file).length;
    const cases: string[][] = [
      ['retention', 'set', '--kind', 'llm.call', '--older-than', '180d', '--preset', 'hipaa'],
      ['retention', 'set', '--kind', 'llm.call'],
      ['retention', 'set', '--kind', 'llm.call', '--older-than', '10x'],
      ['retention', 'set', '--kind', 'llm.call', '--record-class', 'clinical', '--older-than', '1y'],
      ['retention', 'set', '--preset', 'gdpr'],
      ['hold', 'place', '--reason', 'no scope'],
      ['hold', 'place', '--session', 's-old'],
      ['hold', 'place', '--since', 'yesterday', '--reason', 'r'],
      ['hold', 'place', '--since', '2025-01-02', '--until', '2025-01-01', '--reason', 'r'],
      ['erase', '--reason', 'no subject'],
      ['erase', '--subject', 'cust-1', '--reason', ' '],
    ];
    for (const args of cases) {
      const r = await runCli([...args, '--store', store()]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(() => oneSentence(r.stderr), args.join(' ')).not.toThrow();
    }
    const unknown = await runCli(['hold', 'release', 'hold-nope', '--reason', 'r', '--store', store()]);
    expect(unknown.code).toBe(1);
    expect(oneSentence(unknown.stderr)).toMatch(/^No hold "hold-nope" was ever placed in this ledger/);
    expect(readRows(file)).toHaveLength(size);
  });
});
