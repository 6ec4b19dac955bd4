import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { canonicalize, eventHash, generateKey, parseVerifierKey, payloadDigest, type StoredEvent, type VerifyReport } from '../../src/core/index.js';
import { SqliteLedger, sidecarPaths, type AppendRequest, type QueryPage, type RawEventRow } from '../../src/store/index.js';
import { buildLedger, copyLedger, oneSentence, runBin, runCli, tamper, type BuiltLedger } from '../helpers/ledger.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/**
 * The `witness` command, mostly in-process through `main(argv, io)` with a capturing Io, and the
 * real binary (bin/witness.js → dist/, so build first) where the process boundary matters: exit
 * codes, environment variables, stderr without stack traces, output written straight to stdout.
 */

const dir = tempDir('witness-cli-');
let base: BuiltLedger;

beforeAll(async () => {
  base = await buildLedger(dir);
});

const COMMAND_FLAGS: Record<string, string[]> = {
  demo: ['--dir', '--store', '--live', '--model', '--open', '--port', '--json'],
  init: ['--store', '--name', '--roles', '--writer-role', '--auditor-role', '--retention-role', '--json'],
  migrate: ['--from', '--to', '--json'],
  query: ['--store', '--agent', '--session', '--kind', '--resource', '--action', '--outcome', '--since', '--until', '--limit', '--cursor', '--json'],
  verify: ['--store', '--session', '--trusted-key', '--against', '--seal-record', '--json', '--threads', '--require-payloads', '--require-cosigner', '--tsa-cert', '--anchors'],
  export: [
    '--since',
    '--until',
    '--agent',
    '--session',
    '--regime',
    '--out',
    '-o',
    '--withhold-data',
    '--as',
    '--store',
    '--seal-record',
    '--anchors',
    '--format',
    '--otlp',
    '--otlp-protocol',
    '--otlp-header',
    '--json',
  ],
  review: ['--population', '--since', '--until', '--agent', '--session', '--disposition', '--note', '--reviewer', '--store', '--seal-record', '--json'],
  seal: ['--store', '--force', '--adopt', '--against', '--seal-record', '--signer-command', '--json'],
  checkpoint: ['--store', '--json'],
  anchor: ['--store', '--anchors', '--cosigner', '--copy-to', '--s3-endpoint', '--s3-path-style', '--tsa', '--json'],
  'cosign init': ['--name', '--output', '-o', '--json'],
  'cosign serve': ['--key', '--state', '--listen', '--log'],
  proxy: ['--agent', '--policy', '--server', '--store', '--approval-timeout', '--on-record-failure', '--record-lists', '--max-frame-bytes', '--capture'],
  gateway: ['--config', '--store'],
  'gateway-key': ['--agent', '--json'],
  approvals: ['--store', '--all', '--agent', '--json'],
  approve: ['--key', '--as', '--reason', '--role', '--meaning', '--digest', '--store', '--json'],
  deny: ['--key', '--as', '--reason', '--role', '--meaning', '--digest', '--store', '--json'],
  video: ['--output', '-o', '--voice', '--voices', '--speed', '--store', '--json'],
  'approver init': ['--name', '--out', '--json'],
};

describe('help and usage', () => {
  it('prints help for every command with exit 0, mentioning each of its flags and no flag the table lacks', async () => {
    for (const [command, flags] of Object.entries(COMMAND_FLAGS)) {
      const r = await runCli([...command.split(' '), '--help']);
      expect(r.code, command).toBe(0);
      expect(r.stderr, command).toBe('');
      expect(r.stdout, command).toContain(`Usage: witness ${command}`);
      for (const flag of flags) expect(r.stdout, `${command} ${flag}`).toMatch(new RegExp(`(^|[\\s,])${flag}\\b`, 'm'));
      // Every flag the help offers is in the table, so a new or renamed flag is listed (and tested) here.
      const offered = [...r.stdout.matchAll(/^\s+(?:(-[A-Za-z]), )?(--[a-z][a-z0-9-]*)/gm)].flatMap((m) => [m[1], m[2]]).filter((f): f is string => f !== undefined && f !== '-h' && f !== '--help');
      expect(
        offered.filter((f) => !flags.includes(f)),
        command,
      ).toEqual([]);
    }
  });

  it('lists every command in the top-level help, and prints the version, with exit 0', async () => {
    const help = await runCli(['--help']);
    expect(help.code).toBe(0);
    for (const command of Object.keys(COMMAND_FLAGS)) expect(help.stdout).toMatch(new RegExp(`^\\s+${command.split(' ')[0]!}\\b`, 'm'));
    const version = await runCli(['--version']);
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('exits 2 on an unknown command, an unknown flag, a missing flag value or a bad value', async () => {
    const cases = [
      ['frobnicate'],
      ['verify', '--bogus'],
      ['query', '--store'],
      ['query', '--store', `sqlite:${base.file}`, '--limit', '0'],
      ['query', '--store', `sqlite:${base.file}`, '--limit', 'many'],
      ['query', '--store', `sqlite:${base.file}`, '--since', 'last tuesday-ish'],
      ['query', '--store', `sqlite:${base.file}`, '--cursor', 'not-a-cursor'],
      ['init', '--store', `sqlite:${tempDb(dir)}`, '--name', 'has spaces'],
      ['verify', '--store', 'ftp://example.com/ledger'],
    ];
    for (const args of cases) {
      const r = await runCli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).not.toBe('');
    }
  });

  it('exits 2 from the real binary on bad usage, and 0 for --help', async () => {
    const [bad, help] = await Promise.all([runBin(['verify', '--no-such-flag']), runBin(['verify', '--help'])]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/unknown option/);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--trusted-key');
  });
});

describe('witness init', () => {
  it('creates the database, a 0600 signing key and the public key, and prints the fingerprint', async () => {
    const file = tempDb(dir);
    const r = await runCli(['init', '--store', `sqlite:${file}`, '--name', 'acme-prod']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const { key, pub } = sidecarPaths(file);
    expect(fs.existsSync(file)).toBe(true);
    expect(fs.statSync(key).mode & 0o777).toBe(0o600);
    const vkey = fs.readFileSync(pub, 'utf8').trim();
    const v = parseVerifierKey(vkey);
    const fingerprint = `${v.name}+${v.keyHash.toString(16).padStart(8, '0')}`;
    expect(r.stdout).toContain(`Created ledger ${file}`);
    expect(r.stdout).toMatch(/origin\s+acme-prod\/witness\/[0-9a-f-]{36}/);
    expect(r.stdout).toContain(`public key   ${vkey}`);
    expect(r.stdout).toContain(`fingerprint  ${fingerprint}`);
    expect(r.stdout).toContain(`signing key  ${key}`);
    expect(r.stdout).toContain(`seal record  ${sidecarPaths(file).sealed}`);
    expect(r.stdout).toMatch(/protects against edits to the database's rows only; .*WITNESS_SEAL_RECORD/);
    expect(fs.readFileSync(key, 'utf8')).not.toContain(vkey.split('+').slice(2).join('+')); // the private half is not the public key (whose base64 may itself hold a '+')

    const again = await runCli(['init', '--store', `sqlite:${file}`]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(`Ledger already exists at ${file}; nothing changed.`);
    expect(fs.readFileSync(pub, 'utf8').trim()).toBe(vkey);
  });

  it('prints the same facts as JSON with --json', async () => {
    const file = tempDb(dir);
    const r = await runCli(['init', '--store', `sqlite:${file}`, '--json']);
    expect(r.code).toBe(0);
    const json = JSON.parse(r.stdout) as { created: boolean; database: string; origin: string; signingKey: string; publicKeys: Array<{ vkey: string; fingerprint: string }> };
    expect(json).toMatchObject({ created: true, database: file, signingKey: sidecarPaths(file).key, sealRecord: sidecarPaths(file).sealed });
    expect(json.origin).toMatch(/^local\/witness\//);
    expect(json.publicKeys).toEqual([{ vkey: fs.readFileSync(sidecarPaths(file).pub, 'utf8').trim(), fingerprint: expect.stringMatching(/^local\/witness\/.+\+[0-9a-f]{8}$/) }]);
  });

  it('fails in one sentence, exit 1, when the directory does not exist', async () => {
    const missing = path.join(dir, 'no', 'such', 'dir', 'w.db');
    const r = await runCli(['init', '--store', `sqlite:${missing}`]);
    expect(r.code).toBe(1);
    expect(oneSentence(r.stderr)).toContain(path.dirname(missing));
  });
});

describe('witness query', () => {
  let store: string;
  const T = (day: number, min: number) => `2026-01-0${day}T00:0${min}:00.000Z`;

  beforeAll(async () => {
    const file = tempDb(dir);
    store = `sqlite:${file}`;
    const ledger = SqliteLedger.open({ path: file });
    const ev = (stream: string, agent: string, ts: string, kind: string, extra: Record<string, unknown> = {}, data: Record<string, unknown> = {}): AppendRequest =>
      ({ stream, agent: { id: agent }, ts, kind, data, ...extra }) as AppendRequest;
    const refund = { resource: 'billing', action: 'billing.refund' };
    const lookup = { resource: 'crm', action: 'crm.lookup' };
    try {
      await ledger.append([
        ev('s1', 'alpha', T(1, 0), 'session.start'),
        ev('s1', 'alpha', T(1, 1), 'tool.call', { ...refund, outcome: 'pending' }, { tool: 'billing.refund', arguments: { amount: 650 } }),
        ev('s1', 'alpha', T(1, 2), 'tool.result', { ...refund, outcome: 'success' }, { tool: 'billing.refund', is_error: false, output: 'ok' }),
        ev('s1', 'alpha', T(1, 3), 'session.end', {}, { reason: 'completed' }),
        ev('s2', 'beta', T(2, 0), 'session.start'),
        ev('s2', 'beta', T(2, 1), 'tool.call', { ...lookup, outcome: 'pending' }, { tool: 'crm.lookup', arguments: {} }),
        ev('s2', 'beta', T(2, 2), 'tool.result', { ...lookup, outcome: 'error' }, { tool: 'crm.lookup', is_error: true, error: { message: 'timeout' } }),
        ev('s2', 'beta', T(2, 3), 'note', {}, { text: 'gave up' }),
        ev('s2', 'beta', T(2, 4), 'session.end', {}, { reason: 'error' }),
        ev('s3', 'alpha', T(3, 0), 'session.start'),
        ev('s3', 'alpha', T(3, 1), 'tool.call', { ...refund, outcome: 'pending' }, { tool: 'billing.refund', arguments: { amount: 20 } }),
        // Same timestamp as the previous event: paging must break the tie by position.
        ev('s3', 'alpha', T(3, 1), 'tool.result', { ...refund, outcome: 'success' }, { tool: 'billing.refund', is_error: false, output: 'ok' }),
      ]);
    } finally {
      await ledger.close();
    }
  });

  async function query(...args: string[]): Promise<Array<StoredEvent & { pos: number }>> {
    const r = await runCli(['query', '--store', store, '--json', '--limit', '1000', ...args]);
    expect(r.code, args.join(' ')).toBe(0);
    return (JSON.parse(r.stdout) as QueryPage).events;
  }
  const summary = (events: Array<StoredEvent & { pos: number }>) => events.map((e) => `${e.stream}#${e.seq}`);

  it('[R-WHAT-WHEN-RESULT] filters by agent, session, kind, resource, action and outcome', async () => {
    expect(await query('--agent', 'alpha')).toHaveLength(7);
    expect(summary(await query('--agent', 'beta'))).toEqual(['s2#0', 's2#1', 's2#2', 's2#3', 's2#4']);
    expect(summary(await query('--session', 's3'))).toEqual(['s3#0', 's3#1', 's3#2']);
    expect(summary(await query('--kind', 'tool.call'))).toEqual(['s1#1', 's2#1', 's3#1']);
    expect(summary(await query('--resource', 'billing'))).toEqual(['s1#1', 's1#2', 's3#1', 's3#2']);
    expect(summary(await query('--action', 'crm.lookup'))).toEqual(['s2#1', 's2#2']);
    expect(summary(await query('--outcome', 'error'))).toEqual(['s2#2']);
    expect(summary(await query('--outcome', 'success'))).toEqual(['s1#2', 's3#2']);
    expect(summary(await query('--agent', 'alpha', '--kind', 'tool.result'))).toEqual(['s1#2', 's3#2']);
    expect(await query('--agent', 'nobody')).toEqual([]);
  });

  it('filters by a time window: --since inclusive, --until exclusive, ISO-8601 or relative', async () => {
    expect(await query('--since', '2026-01-02T00:00:00.000Z')).toHaveLength(8);
    expect(summary(await query('--until', '2026-01-02T00:00:00.000Z'))).toEqual(['s1#0', 's1#1', 's1#2', 's1#3']);
    expect(summary(await query('--since', '2026-01-02T00:00:00Z', '--until', '2026-01-03T00:00:00Z'))).toEqual(['s2#0', 's2#1', 's2#2', 's2#3', 's2#4']);
    expect(await query('--since', '36500d')).toHaveLength(12);
    expect(await query('--since', '1s ago', '--until', '36500d')).toEqual([]);
  });

  it('pages with --limit and --cursor until exhausted, in time order, without duplicates or gaps', async () => {
    const all = await query();
    expect(all).toHaveLength(12);
    for (const limit of ['1', '5', '12']) {
      const seen: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const r = await runCli(['query', '--store', store, '--json', '--limit', limit, ...(cursor === undefined ? [] : ['--cursor', cursor])]);
        expect(r.code).toBe(0);
        const page = JSON.parse(r.stdout) as QueryPage;
        expect(page.events.length).toBeLessThanOrEqual(Number(limit));
        seen.push(...page.events.map((e) => e.id));
        cursor = page.next;
        pages++;
        expect(pages).toBeLessThanOrEqual(13);
      } while (cursor !== undefined);
      expect(new Set(seen).size, `limit ${limit}`).toBe(seen.length);
      expect(seen, `limit ${limit}`).toEqual(all.map((e) => e.id));
      expect(pages).toBe(Math.ceil(12 / Number(limit)));
    }
  });

  it('prints a table with one event per line, and the cursor to continue when more match', async () => {
    const r = await runCli(['query', '--store', store, '--agent', 'alpha', '--limit', '5']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^TIME\s+AGENT\s+SESSION\s+SEQ\s+KIND\s+ACTION\s+OUTCOME\s+POLICY\s+SUMMARY$/);
    expect(lines.slice(1, 6).every((l) => l.startsWith('2026-01-0') && l.includes('alpha'))).toBe(true);
    expect(lines[2]).toMatch(/tool\.call\s+billing\.refund\s+pending\s+billing\.refund\(\{"amount":650\}\)/);
    expect(r.stdout).toMatch(/More events match: add --cursor \S+/);
    const cursor = /--cursor (\S+)/.exec(r.stdout)![1]!;
    const next = await runCli(['query', '--store', store, '--agent', 'alpha', '--limit', '5', '--cursor', cursor]);
    expect(next.stdout.trimEnd().split('\n')).toHaveLength(3); // header + the last two
    expect(next.stdout).not.toContain('More events match');

    const none = await runCli(['query', '--store', store, '--kind', 'capture']);
    expect(none.code).toBe(0);
    expect(none.stdout.trim()).toBe('No events match.');
  });

  it('reads the store from WITNESS_STORE when --store is not given', async () => {
    const r = await runBin(['query', '--json', '--session', 's2'], { env: { WITNESS_STORE: store } });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect((JSON.parse(r.stdout) as QueryPage).events).toHaveLength(5);
  });
});

describe('witness verify', () => {
  it('exits 0 for an intact ledger and says what the pass rests on', async () => {
    const r = await runCli(['verify', '--store', `sqlite:${base.file}`]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`✔ Ledger ${base.file} is intact: 13 events in 3 session(s), verified against 3 signed checkpoint(s) (tree size 13).`);
    expect(r.stdout).toMatch(/trust: Checkpoints were verified with 1 signing key stored beside the ledger/);
    expect(r.stdout).toMatch(/key: {3}\S+\+[0-9a-f]{8} \(ledger\)/);
  });

  it('prints the full report with --json', async () => {
    const r = await runCli(['verify', '--store', `sqlite:${base.file}`, '--json']);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as VerifyReport;
    expect(Object.keys(report).sort()).toEqual(
      ['artifacts', 'checkpoints', 'events', 'failures', 'ok', 'openSessions', 'payloadsAbsent', 'sealRecord', 'sealedSize', 'streams', 'trust', 'unsealed', 'unverifiable', 'warnings'].sort(),
    );
    expect(report).toMatchObject({ ok: true, unverifiable: false, events: 13, streams: 3, checkpoints: 3, sealedSize: 13, unsealed: 0, artifacts: 1, openSessions: 1, failures: [], warnings: [] });
    expect(report.trust).toEqual({ keys: [{ name: base.origin, keyHash: expect.stringMatching(/^[0-9a-f]{8}$/), source: 'ledger' }], statement: expect.any(String) });
  });

  it('exits 1 after tampering and names the first bad session, seq and leaf', async () => {
    const l = copyLedger(base, dir);
    const pos = l.pos(l.sessions.b, 2);
    tamper(l.file, (db) => {
      const row = db.prepare('SELECT data FROM events WHERE pos = ?').get(pos) as { data: string };
      db.prepare('UPDATE events SET data = ? WHERE pos = ?').run(row.data.replace('"amount":50', '"amount":5000'), pos);
    });
    const r = await runCli(['verify', '--store', `sqlite:${l.file}`]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`✘ Ledger ${l.file} FAILED verification at session ${l.sessions.b}, seq 2, leaf ${pos}: payload_mismatch: `);

    const json = await runCli(['verify', '--store', `sqlite:${l.file}`, '--json']);
    expect(json.code).toBe(1);
    const report = JSON.parse(json.stdout) as VerifyReport;
    expect(report.ok).toBe(false);
    expect(report.first).toMatchObject({ code: 'payload_mismatch', stream: l.sessions.b, seq: 2, leaf: pos, reason: expect.any(String) });
    expect(report.failures).toEqual([report.first]);

    // --session keeps the tampered session's failures and drops the others'.
    const other = await runCli(['verify', '--store', `sqlite:${l.file}`, '--session', l.sessions.a, '--json']);
    expect(other.code).toBe(0);
    expect((JSON.parse(other.stdout) as VerifyReport).ok).toBe(true);
    const same = await runCli(['verify', '--store', `sqlite:${l.file}`, '--session', l.sessions.b]);
    expect(same.code).toBe(1);
    expect(same.stdout).toContain('payload_mismatch');
  });

  it('keeps tree-level failures under --session, since they concern every session', async () => {
    const l = copyLedger(base, dir);
    tamper(l.file, (db) => db.prepare('DELETE FROM events WHERE pos >= 11').run());
    const r = await runCli(['verify', '--store', `sqlite:${l.file}`, '--session', l.sessions.a, '--json']);
    expect(r.code).toBe(1);
    expect((JSON.parse(r.stdout) as VerifyReport).first).toMatchObject({ code: 'checkpoint_beyond_ledger', checkpoint: 3 });
  });

  it('pins --trusted-key given as a key string or as a file, and exits 1 when it did not sign', async () => {
    const store = `sqlite:${base.file}`;
    const asString = await runCli(['verify', '--store', store, '--trusted-key', base.vkey]);
    expect(asString.code).toBe(0);
    expect(asString.stdout).toContain('pinned by the auditor (--trusted-key)');
    expect(asString.stdout).toContain('(pinned)');

    const asFile = await runCli(['verify', '--store', store, '--trusted-key', sidecarPaths(base.file).pub, '--json']);
    expect(asFile.code).toBe(0);
    expect((JSON.parse(asFile.stdout) as VerifyReport).trust.keys.map((k) => k.source)).toEqual(['pinned']);

    const keys = path.join(dir, 'two-keys.pub');
    fs.writeFileSync(keys, `${generateKey('other').verifierKey}\n\n${base.vkey}\n`);
    expect((await runCli(['verify', '--store', store, '--trusted-key', keys])).code).toBe(0);

    const wrong = await runCli(['verify', '--store', store, '--trusted-key', generateKey('other').verifierKey, '--json']);
    expect(wrong.code).toBe(1);
    expect((JSON.parse(wrong.stdout) as VerifyReport).first).toMatchObject({ code: 'checkpoint_signature', checkpoint: 1 });

    // A value that is neither a file nor a key is bad usage (exit 2), named as a possibly wrong path.
    const garbage = await runCli(['verify', '--store', store, '--trusted-key', 'not-a-key']);
    expect(garbage.code).toBe(2);
    expect(oneSentence(garbage.stderr)).toMatch(/--trusted-key not-a-key is not a verifier key \(or a file that does not exist\)/);

    const notKeys = path.join(dir, 'not-keys.txt');
    fs.writeFileSync(notKeys, 'hello\n');
    const badFile = await runCli(['verify', '--store', store, '--trusted-key', notKeys]);
    expect(badFile.code).toBe(2);
    expect(oneSentence(badFile.stderr)).toMatch(/line 1 of .*not-keys\.txt is not a verifier key/);
  });

  it('proves with --against that the ledger still extends a checkpoint saved by `witness checkpoint`, and fails once history is rewritten', async () => {
    const l = copyLedger(base, dir);
    const saved = await runBin(['checkpoint', '--store', `sqlite:${l.file}`]);
    expect(saved.code).toBe(0);
    expect(saved.stdout).toBe(l.checkpoints[2]!.note);
    const file = path.join(dir, 'saved-checkpoint.txt');
    fs.writeFileSync(file, saved.stdout);

    const intact = await runCli(['verify', '--store', `sqlite:${l.file}`, '--against', file, '--trusted-key', l.vkey]);
    expect(intact.code).toBe(0);

    // Rewrite session a's llm.call output and everything after it consistently, drop the old
    // checkpoints and re-seal with the real key: only the saved checkpoint can tell.
    tamper(l.file, (db) => {
      const rows = db.prepare('SELECT * FROM events WHERE stream = ? ORDER BY seq').all(l.sessions.a) as RawEventRow[];
      let prev = rows[0]!.hash;
      for (const r of rows.slice(1)) {
        const h = JSON.parse(r.header) as Record<string, unknown>;
        let data = r.data!;
        if (r.seq === 1) data = data.replace('Let me look that up.', 'No refund for you.');
        if (h['kind'] === 'session.end') data = canonicalize({ ...(JSON.parse(data) as object), last_hash: prev.toString('hex') });
        h['payload_digest'] = payloadDigest(r.salt!, data).toString('hex');
        h['prev'] = prev.toString('hex');
        const header = canonicalize(h);
        prev = eventHash(prev, header);
        db.prepare('UPDATE events SET header = ?, data = ?, hash = ? WHERE pos = ?').run(header, data, prev, r.pos);
      }
      db.exec('DELETE FROM checkpoints; DELETE FROM tree_nodes;');
    });
    // The record beside the ledger would refuse this seal; whoever writes the ledger's directory can
    // delete it too (keeping it elsewhere is test/store/sealer.test.ts's), and then the ledger looks new.
    fs.rmSync(sidecarPaths(l.file).sealed);
    const resealed = await runBin(['seal', '--store', `sqlite:${l.file}`]);
    expect(resealed.code).toBe(0);
    expect((await runCli(['verify', '--store', `sqlite:${l.file}`, '--trusted-key', l.vkey])).code).toBe(0);

    const r = await runCli(['verify', '--store', `sqlite:${l.file}`, '--against', file, '--trusted-key', l.vkey]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/FAILED verification at leaf 12: against_mismatch: The ledger no longer extends the saved checkpoint of size 13/);

    // A missing or non-checkpoint file is bad usage (exit 2), never reported as a tampered ledger.
    const missing = await runCli(['verify', '--store', `sqlite:${l.file}`, '--against', path.join(dir, 'no-such-checkpoint.txt')]);
    expect(missing.code).toBe(2);
    expect(oneSentence(missing.stderr)).toContain('no-such-checkpoint.txt');
    const junk = path.join(dir, 'junk.txt');
    fs.writeFileSync(junk, 'not a checkpoint\n');
    const notCheckpoint = await runCli(['verify', '--store', `sqlite:${l.file}`, '--against', junk]);
    expect(notCheckpoint.code).toBe(2);
    expect(oneSentence(notCheckpoint.stderr)).toMatch(/junk\.txt is not a signed checkpoint/);
  });

  it('fails in one sentence with exit 1 and no stack trace for a missing, non-SQLite or empty file', async () => {
    const missing = path.join(dir, 'missing.db');
    const text = path.join(dir, 'text.db');
    fs.writeFileSync(text, 'This is not a database.\n'.repeat(100));
    const empty = path.join(dir, 'empty.db');
    fs.writeFileSync(empty, '');
    const results = await Promise.all([missing, text, empty].map((f) => runBin(['verify', '--store', `sqlite:${f}`])));
    for (const [i, r] of results.entries()) {
      const f = [missing, text, empty][i]!;
      expect(r.code, f).toBe(1);
      expect(r.stdout, f).toBe('');
      expect(oneSentence(r.stderr), f).toContain(f);
      expect(r.stderr, f).not.toMatch(/Unexpected internal error|\n\s+at /);
    }
    expect(fs.existsSync(missing)).toBe(false);
    expect(fs.statSync(empty).size).toBe(0);
    expect(fs.existsSync(`${missing}.key`)).toBe(false);

    const json = await runCli(['verify', '--store', `sqlite:${missing}`, '--json']);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toEqual({ error: { code: 'not_found', message: expect.stringContaining(missing) } });
  });

  it('[R-CLI-USAGE] fails in one sentence with exit 2 (bad usage) for a bundle directory that does not exist', async () => {
    const r = await runCli(['verify', path.join(dir, 'no-such-bundle')]);
    expect(r.code).toBe(2);
    expect(oneSentence(r.stderr)).toMatch(/no-such-bundle does not exist; pass the evidence bundle directory/);
  });

  // BUG (src/cli/commands/verify.ts onlySession): a --session the ledger does not hold filters every
  // failure away and prints "✔ … is intact" with exit 0, so a mistyped session id passes an audit.
  it('fails --session for a session the ledger does not hold, instead of calling it intact', async () => {
    const r = await runCli(['verify', '--store', `sqlite:${base.file}`, '--session', 'no-such-session']);
    expect(r.code).toBe(1);
    expect(oneSentence(r.stderr)).toContain('no-such-session');
  });

  // BUG (src/cli/commands/verify.ts): with a bundle argument, --against and --session are silently
  // ignored (exit 0), so an auditor who asked for a check against a saved checkpoint gets a pass
  // without that check ever running.
  it('refuses --against and a foreign --session with a bundle instead of silently ignoring them', async () => {
    const bundle = path.join(dir, 'bundle-for-flags');
    expect((await runCli(['export', '--store', `sqlite:${copyLedger(base, dir).file}`, '--session', base.sessions.a, '-o', bundle])).code).toBe(0);
    const saved = path.join(dir, 'saved-for-bundle.txt');
    fs.writeFileSync(saved, base.checkpoints[0]!.note);
    const against = await runCli(['verify', bundle, '--trusted-key', base.vkey, '--against', saved]);
    expect(against.code).not.toBe(0);
    const session = await runCli(['verify', bundle, '--trusted-key', base.vkey, '--session', base.sessions.b]);
    expect(session.code).not.toBe(0);
  });

  it('reads the store from WITNESS_STORE, and defaults to ./witness.db in the working directory', async () => {
    const [fromEnv, fromFlag] = await Promise.all([
      runBin(['verify', '--json'], { env: { WITNESS_STORE: `sqlite:${base.file}` } }),
      runBin(['verify', '--store', `sqlite:${base.file}`, '--json'], { env: { WITNESS_STORE: `sqlite:${path.join(dir, 'elsewhere.db')}` } }),
    ]);
    expect(fromEnv.code).toBe(0);
    expect((JSON.parse(fromEnv.stdout) as VerifyReport).events).toBe(13);
    expect(fromFlag.code).toBe(0); // --store wins over the environment

    const cwd = fs.mkdtempSync(path.join(dir, 'cwd-'));
    const byDefault = await runBin(['verify'], { cwd });
    expect(byDefault.code).toBe(1);
    expect(oneSentence(byDefault.stderr)).toContain(path.join(cwd, 'witness.db'));
    expect(fs.readdirSync(cwd)).toEqual([]);
  });
});

describe('witness gateway-key', () => {
  it('prints a new key and its configuration line, or the same facts as JSON with --json', async () => {
    const text = await runCli(['gateway-key', '--agent', 'support-bot']);
    expect(text.code).toBe(0);
    const key = /^key: (wk_\S+)$/m.exec(text.stdout)?.[1];
    expect(key).toBeDefined();
    const sha = crypto.createHash('sha256').update(key!).digest('hex');
    expect(text.stdout).toContain(`  - { id: "support-bot", key_sha256: "${sha}" }`);

    const r = await runCli(['gateway-key', '--agent', 'support-bot', '--json']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const json = JSON.parse(r.stdout) as { key: string; agent: string; key_sha256: string; config: string };
    expect(json).toEqual({ key: expect.stringMatching(/^wk_[A-Za-z0-9_-]{43}$/), agent: 'support-bot', key_sha256: expect.stringMatching(/^[0-9a-f]{64}$/), config: expect.any(String) });
    expect(json.key).not.toBe(key);
    expect(json.key_sha256).toBe(crypto.createHash('sha256').update(json.key).digest('hex'));
    expect(json.config).toBe(`{ id: "support-bot", key_sha256: "${json.key_sha256}" }`);

    const bad = await runCli(['gateway-key', '--agent', ' ', '--json']);
    expect(bad.code).toBe(2);
    expect(JSON.parse(bad.stdout)).toMatchObject({ error: { code: 'invalid_argument' } });
  });
});

describe('witness seal and witness checkpoint', () => {
  it('seals new events, says when there is nothing to seal, and writes a heartbeat with --force', async () => {
    const l = copyLedger(base, dir);
    const ledger = SqliteLedger.open({ path: l.file });
    try {
      await ledger.append([{ stream: l.sessions.c, kind: 'note', agent: { id: 'ops-bot' }, data: { text: 'late' } } as AppendRequest]);
    } finally {
      await ledger.close();
    }
    const store = `sqlite:${l.file}`;
    const first = await runCli(['seal', '--store', store]);
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/^Sealed checkpoint 4: 14 events, root [0-9a-f]{64}\./);
    expect(first.stdout).toContain(`${l.origin}\n14\n`);

    const nothing = await runCli(['seal', '--store', store]);
    expect(nothing.code).toBe(0);
    expect(nothing.stdout.trim()).toBe('Nothing to seal: every event is already in a signed checkpoint.');
    expect(JSON.parse((await runCli(['seal', '--store', store, '--json'])).stdout)).toEqual({ sealed: false });

    const forced = await runCli(['seal', '--store', store, '--force', '--json']);
    expect(forced.code).toBe(0);
    expect(JSON.parse(forced.stdout)).toEqual({ sealed: true, size: 14, root: expect.stringMatching(/^[0-9a-f]{64}$/), note: expect.stringContaining(`${l.origin}\n14\n`) });

    const cp = JSON.parse((await runCli(['checkpoint', '--store', store, '--json'])).stdout) as { id: number; size: number; root: string; ts: string; note: string };
    expect(cp).toMatchObject({ id: 5, size: 14, root: (JSON.parse(forced.stdout) as { root: string }).root });
    expect((await runCli(['verify', '--store', store, '--trusted-key', l.vkey])).code).toBe(0);
  });

  it('refuses to seal in one sentence, exit 1, without the signing key', async () => {
    const l = copyLedger(base, dir);
    fs.rmSync(sidecarPaths(l.file).key);
    const r = await runCli(['seal', '--store', `sqlite:${l.file}`, '--force']);
    expect(r.code).toBe(1);
    expect(oneSentence(r.stderr)).toMatch(/No signing key/);
  });

  it('refuses in one sentence, exit 1, to print a checkpoint of a ledger that has none', async () => {
    const file = tempDb(dir);
    expect((await runCli(['init', '--store', `sqlite:${file}`])).code).toBe(0);
    const r = await runCli(['checkpoint', '--store', `sqlite:${file}`]);
    expect(r.code).toBe(1);
    expect(oneSentence(r.stderr)).toMatch(/no checkpoint yet; run `witness seal` first/);
  });

  // BUG (src/cli/commands/checkpoint.ts): without --json the note is written with
  // process.stdout.write instead of io.out, so main(argv, io) callers (tests, embedders) lose it;
  // output.ts says Io is "the only place the CLI writes to the terminal".
  it('prints the checkpoint note through the CLI output, so main(argv, io) can capture it', async () => {
    const r = await runCli(['checkpoint', '--store', `sqlite:${base.file}`]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(base.checkpoints[2]!.note);
  });
});
