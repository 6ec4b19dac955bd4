import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { generateKey, isWitnessError, strictParse, type StoredEvent, type VerifyReport } from '../../src/core/index.js';
import { AUDIT_STREAM, exportSession, verifyBundle, type BundleManifestV2 } from '../../src/export/index.js';
import { openWitness } from '../../src/index.js';
import { SqliteLedger, sidecarPaths } from '../../src/store/index.js';
import { REPO_ROOT, artifactFile, buildLedger, copyLedger, oneSentence, runBin, runCli, tamper, type BuiltLedger } from '../helpers/ledger.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

const dir = tempDir('witness-export-');
let base: BuiltLedger;

beforeAll(async () => {
  base = await buildLedger(dir);
});

let outCounter = 0;
function outDir(): string {
  outCounter++;
  return path.join(dir, `bundle-${outCounter}`);
}

function readLines(bundle: string, name: string): Array<Record<string, unknown>> {
  return fs
    .readFileSync(path.join(bundle, name), 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => strictParse(l) as Record<string, unknown>);
}

function allText(bundle: string): string {
  let text = '';
  for (const f of fs.readdirSync(bundle, { recursive: true, withFileTypes: true })) {
    if (f.isFile()) text += fs.readFileSync(path.join(f.parentPath, f.name), 'latin1');
  }
  return text;
}

describe('export then verify', () => {
  it('[R-OFFLINE] round-trips a session with its artifact: every event, proof, checkpoint and file digest verifies offline', async () => {
    const out = outDir();
    const ledger = SqliteLedger.open({ path: copyLedger(base, dir).file, create: false });
    let stored: Array<StoredEvent & { pos: number }>;
    try {
      const r = await exportSession(ledger, base.sessions.b, out);
      // Session b's 5 events in a span of 11 leaves (1..11), then the export's own event at leaf 13.
      expect(r).toMatchObject({ dir: out, inScope: 5, events: 12, artifacts: 1, checkpointSize: 14, span: { from: 1, to: 12 } });
      stored = await ledger.readStream(base.sessions.b);
    } finally {
      await ledger.close();
    }
    expect(fs.readdirSync(out).sort()).toEqual([
      'README.txt',
      'artifacts',
      'checkpoint.txt',
      'checkpoints.jsonl',
      'events.jsonl',
      'keys.json',
      'manifest.json',
      'populations',
      'proofs.jsonl',
      'system.json',
      'verify.mjs',
    ]);

    const manifest = strictParse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8')) as BundleManifestV2;
    expect(manifest).toMatchObject({ format: 'witness-evidence', version: 2, scope: { sessions: [base.sessions.b] }, mode: 'full', events: 12, in_scope: 5 });
    expect(manifest.ledger.origin).toBe(base.origin);
    expect(manifest.checkpoint.size).toBe(14);
    for (const [name, digest] of Object.entries(manifest.files)) {
      expect(
        createHash('sha256')
          .update(fs.readFileSync(path.join(out, name)))
          .digest('hex'),
        name,
      ).toBe(digest);
    }
    expect(Object.keys(manifest.files)).toContain(`artifacts/${base.artifact.sha256}.png`);
    expect(fs.readFileSync(path.join(out, 'artifacts', `${base.artifact.sha256}.png`)).equals(base.artifact.bytes)).toBe(true);
    expect((strictParse(fs.readFileSync(path.join(out, 'keys.json'), 'utf8')) as { keys: Array<{ vkey: string }> }).keys.map((k) => k.vkey)).toEqual([base.vkey]);

    const events = readLines(out, 'events.jsonl');
    expect(events.filter((e) => e['stream'] === base.sessions.b).map((e) => [e['seq'], e['leaf'], e['hash']])).toEqual(stored.map((e) => [e.seq, e.pos, e.hash]));
    expect(readLines(out, 'proofs.jsonl').map((p) => [p['leaf'], p['size']])).toEqual(events.map((e) => [e['leaf'], 14]));

    const report = verifyBundle(out, { trustedKeys: [base.vkey] });
    expect(report.failures).toEqual([]);
    expect(report).toMatchObject({ ok: true, events: 12, artifacts: 1 });
    expect(report.trust.keys).toEqual([expect.objectContaining({ name: base.origin, source: 'pinned' })]);
  });

  it('round-trips through the CLI: witness export, then witness verify with the public key file pinned', async () => {
    const out = outDir();
    const exported = await runCli(['export', '--store', `sqlite:${copyLedger(base, dir).file}`, '--session', base.sessions.a, '-o', out]);
    expect(exported.stderr).toBe('');
    expect(exported.code).toBe(0);
    expect(exported.stdout).toContain(`Exported 6 event(s) in scope (leaves 0–9, 11 lines with the export's own record), 0 artifact(s), proofs against checkpoint size 14.`);
    expect(exported.stdout).toContain(out);

    const verified = await runCli(['verify', out, '--trusted-key', sidecarPaths(base.file).pub]);
    expect(verified.code).toBe(0);
    expect(verified.stdout).toContain('(pinned)');
  });

  it('prints the export result as JSON with --json', async () => {
    const out = outDir();
    const r = await runCli(['export', '--store', `sqlite:${copyLedger(base, dir).file}`, '--session', base.sessions.b, '-o', out, '--json']);
    expect(r.code).toBe(0);
    const json = JSON.parse(r.stdout) as { dir: string; events: number; artifacts: number; checkpointSize: number; manifest: BundleManifestV2 };
    expect(json).toMatchObject({ dir: out, inScope: 5, events: 12, artifacts: 1, checkpointSize: 14, manifest: { scope: { sessions: [base.sessions.b] } } });
  });
});

describe('--withhold-data', () => {
  it('[R-WITHHOLD] still verifies, and no payload text, salt or artifact byte is in the bundle', async () => {
    const out = outDir();
    const r = await runCli(['export', '--store', `sqlite:${copyLedger(base, dir).file}`, '--session', base.sessions.b, '-o', out, '--withhold-data']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('payloads withheld');

    const text = allText(out);
    // Payload text recorded in session b (the capture URL, tool arguments and output, the reason).
    for (const secret of ['billing.example', 'A-1042', 'R-1', 'succeeded', '"amount"']) {
      expect(text, secret).not.toContain(secret);
    }
    expect(fs.existsSync(path.join(out, 'artifacts'))).toBe(false);
    expect(text).not.toContain(base.artifact.bytes.toString('latin1'));
    // Every line but the last, the export's own record, whose payload says what the bundle holds.
    for (const e of readLines(out, 'events.jsonl').slice(0, -1)) {
      expect(e['data']).toBeNull();
      expect(e['salt']).toBeNull();
      expect(e['payload_digest']).toMatch(/^[0-9a-f]{64}$/);
    }
    const manifest = strictParse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8')) as BundleManifestV2;
    expect(manifest.mode).toBe('withheld');
    const ledger = SqliteLedger.open({ path: copyLedger(base, dir).file, create: false });
    try {
      for (const e of await ledger.readStream(base.sessions.b)) expect(text).not.toContain(e.salt!);
    } finally {
      await ledger.close();
    }

    const report = verifyBundle(out, { trustedKeys: [base.vkey] });
    expect(report.failures).toEqual([]);
    expect(report).toMatchObject({ ok: true, events: 12 });
  });

  it('keeps the same hashes and proofs as the full export, so either can be shown to the same auditor', async () => {
    const full = outDir();
    const withheld = outDir();
    const ledger = SqliteLedger.open({ path: copyLedger(base, dir).file, create: false });
    try {
      await exportSession(ledger, base.sessions.a, full);
      await exportSession(ledger, base.sessions.a, withheld, { withholdData: true });
    } finally {
      await ledger.close();
    }
    const strip = (e: Record<string, unknown>) => {
      const { data: _d, salt: _s, ...rest } = e;
      return rest;
    };
    // The span's lines (each export's own record, last, differs); each bundle's proofs lead to its own checkpoint.
    expect(readLines(withheld, 'events.jsonl').slice(0, -1).map(strip)).toEqual(readLines(full, 'events.jsonl').slice(0, -1).map(strip));
    expect(verifyBundle(withheld, { trustedKeys: [base.vkey] }).ok).toBe(true);
    expect(verifyBundle(full, { trustedKeys: [base.vkey] }).ok).toBe(true);
  });
});

describe('who exported what', () => {
  it('[R-AUDIT-ACCESS] records each CLI export as an audit.access event naming the person, the session and the scope, sealed', async () => {
    const l = copyLedger(base, dir);
    const out = outDir();
    const r = await runCli(['export', '--store', `sqlite:${l.file}`, '--session', base.sessions.a, '-o', out, '--as', 'auditor@example.com', '--withhold-data']);
    expect(r.code).toBe(0);
    const ledger = SqliteLedger.open({ path: l.file, create: false });
    try {
      const audit = await ledger.readStream(AUDIT_STREAM);
      expect(audit).toHaveLength(1);
      expect(audit[0]).toMatchObject({
        kind: 'audit.access',
        principal: { id: 'auditor@example.com', kind: 'human' },
        resource: 'bundle',
        action: 'export',
        data: { actor: 'auditor@example.com', operation: 'export', scope: { sessions: [base.sessions.a] }, mode: 'withheld', in_scope: 6 },
      });
      expect((await ledger.latestCheckpoint())!.size).toBe(base.size + 1);
    } finally {
      await ledger.close();
    }
  });
});

describe('sealing before export', () => {
  async function unsealedLedger(): Promise<{ file: string; session: string }> {
    const file = tempDb(dir);
    const w = await openWitness({ store: `sqlite:${file}`, seal: { enabled: false }, strict: true });
    let session: string;
    try {
      const s = await w.session({ agent: { id: 'late-bot' } });
      await s.tool('crm.lookup', { customer: 'c-1' }, () => ({ found: true }));
      await s.end();
      session = s.id;
    } finally {
      await w.close();
    }
    const ledger = SqliteLedger.open({ path: file, create: false });
    try {
      expect(await ledger.checkpoints()).toEqual([]);
    } finally {
      await ledger.close();
    }
    return { file, session };
  }

  it('seals an unsealed session first, then exports proofs against that new checkpoint', async () => {
    const { file, session } = await unsealedLedger();
    const out = outDir();
    const r = await runCli(['export', '--store', `sqlite:${file}`, '--session', session, '-o', out]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('proofs against checkpoint size 5');

    const ledger = SqliteLedger.open({ path: file, create: false });
    try {
      // One checkpoint, sealing the session and the export's own audit.access record after it.
      const cps = await ledger.checkpoints();
      expect(cps.map((c) => c.size)).toEqual([5]);
      expect(fs.readFileSync(path.join(out, 'checkpoint.txt'), 'utf8')).toBe(cps[0]!.note);
    } finally {
      await ledger.close();
    }
    const report = verifyBundle(out, { trustedKeys: [fs.readFileSync(sidecarPaths(file).pub, 'utf8').trim()] });
    expect(report.failures).toEqual([]);
    expect(report.ok).toBe(true);
  });

  it('refuses, in one sentence, to export when the signing key is not available (the export records and seals itself)', async () => {
    const { file, session } = await unsealedLedger();
    fs.rmSync(sidecarPaths(file).key);
    const out = outDir();
    const r = await runCli(['export', '--store', `sqlite:${file}`, '--session', session, '-o', out]);
    expect(r.code).toBe(1);
    expect(oneSentence(r.stderr)).toMatch(/needs the ledger's signing key/);
    expect(fs.existsSync(out)).toBe(false);
  });
});

describe('export errors', () => {
  it('refuses an unknown session with a one-sentence not_found error and writes nothing', async () => {
    const out = outDir();
    const ledger = SqliteLedger.open({ path: copyLedger(base, dir).file, create: false });
    let thrown: unknown;
    try {
      await exportSession(ledger, 'no-such-session', out);
    } catch (e) {
      thrown = e;
    } finally {
      await ledger.close();
    }
    expect(isWitnessError(thrown, 'not_found')).toBe(true);
    expect(oneSentence((thrown as Error).message)).toMatch(/^No events in .* no-such-session/);
    expect(fs.existsSync(out)).toBe(false);

    const r = await runCli(['export', '--store', `sqlite:${copyLedger(base, dir).file}`, '--session', 'no-such-session', '-o', out]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(oneSentence(r.stderr)).toMatch(/No events in .* no-such-session/);
    expect(fs.existsSync(out)).toBe(false);

    const json = await runCli(['export', '--store', `sqlite:${copyLedger(base, dir).file}`, '--session', 'no-such-session', '-o', out, '--json']);
    expect(JSON.parse(json.stdout)).toEqual({ error: { code: 'not_found', message: expect.stringMatching(/^No events in .* no-such-session/) } });
  });

  it('refuses an output directory that is not empty, and leaves its contents alone', async () => {
    const out = outDir();
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(out, 'precious.txt'), 'keep me');
    const r = await runCli(['export', '--store', `sqlite:${copyLedger(base, dir).file}`, '--session', base.sessions.a, '-o', out]);
    expect(r.code).toBe(2);
    expect(oneSentence(r.stderr)).toMatch(/already exists and is not an empty directory/);
    expect(fs.readdirSync(out)).toEqual(['precious.txt']);
  });

  it('refuses an output path that is an existing file', async () => {
    const out = `${outDir()}.txt`;
    fs.writeFileSync(out, 'a file');
    const r = await runCli(['export', '--store', `sqlite:${copyLedger(base, dir).file}`, '--session', base.sessions.a, '-o', out]);
    expect(r.code).toBe(2);
    oneSentence(r.stderr);
    expect(fs.readFileSync(out, 'utf8')).toBe('a file');
  });

  it('writes into an existing empty directory', async () => {
    const out = outDir();
    fs.mkdirSync(out);
    const r = await runCli(['export', '--store', `sqlite:${copyLedger(base, dir).file}`, '--session', base.sessions.c, '-o', out]);
    expect(r.code).toBe(0);
    expect(fs.readdirSync(out)).toContain('events.jsonl');
  });

  it('[R-CLI-USAGE] fails in one sentence, at once, for an output path no directory can be made at (/proc/x, under a file)', async () => {
    const file = `${outDir()}.txt`;
    fs.writeFileSync(file, 'a file');
    for (const out of ['/proc/witness-export-test', '/proc/witness-export-test/a/b', path.join(file, 'bundle')]) {
      // The real binary: Node's recursive mkdir loops forever on /proc, which would hang this worker.
      const r = await runBin(['export', '--store', `sqlite:${copyLedger(base, dir).file}`, '--session', base.sessions.a, '-o', out]);
      expect(r.code, out).toBe(2);
      expect(oneSentence(r.stderr), out).toMatch(/^Cannot create the output directory /);
      expect(r.stderr, out).toContain(out);
    }
    // Missing parents of a sane path are still created.
    const nested = path.join(outDir(), 'a', 'b');
    const ok = await runCli(['export', '--store', `sqlite:${copyLedger(base, dir).file}`, '--session', base.sessions.a, '-o', nested]);
    expect(ok.code).toBe(0);
    expect(fs.readdirSync(nested)).toContain('events.jsonl');
  }, 120_000);

  it('needs --session and -o: usage error, exit 2', async () => {
    expect((await runCli(['export', '--store', `sqlite:${copyLedger(base, dir).file}`, '-o', outDir()])).code).toBe(2);
    expect((await runCli(['export', '--store', `sqlite:${copyLedger(base, dir).file}`, '--session', base.sessions.a])).code).toBe(2);
  });

  it('refuses to export from a ledger that does not exist, without creating it', async () => {
    const missing = path.join(dir, 'missing.db');
    const r = await runCli(['export', '--store', `sqlite:${missing}`, '--session', 'x', '-o', outDir()]);
    expect(r.code).toBe(1);
    expect(oneSentence(r.stderr)).toContain(missing);
    expect(fs.existsSync(missing)).toBe(false);
  });
});

describe('verifying an exported bundle', () => {
  it('fails a bundle with checkpoint_signature when a wrong key is pinned, by string or by file', async () => {
    const out = outDir();
    const ledger = SqliteLedger.open({ path: copyLedger(base, dir).file, create: false });
    try {
      await exportSession(ledger, base.sessions.a, out);
    } finally {
      await ledger.close();
    }
    const wrong = generateKey('someone-else').verifierKey;
    const r = verifyBundle(out, { trustedKeys: [wrong] });
    expect(r.ok).toBe(false);
    expect(r.first).toMatchObject({ code: 'checkpoint_signature' });
    expect(r.trust.keys).toEqual([]);

    const keyFile = path.join(dir, 'wrong.pub');
    fs.writeFileSync(keyFile, `${wrong}\n`);
    const cli = await runCli(['verify', out, '--trusted-key', keyFile, '--json']);
    expect(cli.code).toBe(1);
    expect((JSON.parse(cli.stdout) as VerifyReport).first?.code).toBe('checkpoint_signature');
  });

  it("[R-SECOND-KEY] ships only the ledger's own key in keys.json, never a second key someone added to the key table", async () => {
    const copy = copyLedger(base, dir);
    const planted = generateKey('planted').verifierKey;
    tamper(copy.file, (db) => {
      db.prepare('INSERT INTO public_keys (vkey, name, added_at) VALUES (?, ?, ?)').run(planted, 'planted', '2000-01-01T00:00:00.000Z');
    });
    const out = outDir();
    const ledger = SqliteLedger.open({ path: copy.file, create: false });
    let own: string;
    try {
      own = (await ledger.publicKeys())[0]!.vkey;
      await exportSession(ledger, base.sessions.a, out);
    } finally {
      await ledger.close();
    }
    expect(own).not.toBe(planted);
    expect((strictParse(fs.readFileSync(path.join(out, 'keys.json'), 'utf8')) as { keys: Array<{ vkey: string }> }).keys.map((k) => k.vkey)).toEqual([own]);
    expect(verifyBundle(out).ok).toBe(true);
  });

  it('refuses to export, writing nothing, when the sealer refuses to seal the export record (the bundle must prove it)', async () => {
    const copy = copyLedger(base, dir);
    fs.rmSync(sidecarPaths(copy.file).sealed, { force: true }); // checkpoints but no record: the sealer wants --adopt
    const out = outDir();
    const r = await runCli(['export', '--store', `sqlite:${copy.file}`, '--session', base.sessions.a, '-o', out]);
    expect(r.code).toBe(1);
    expect(oneSentence(r.stderr)).toMatch(/--adopt/);
    expect(fs.existsSync(out)).toBe(false);
  });

  it('reports artifact_missing, naming the sha256 and the event, when the ledger lost an artifact before export', async () => {
    const l = copyLedger(base, dir);
    fs.rmSync(artifactFile(l.file, l.artifact.sha256));
    const out = outDir();
    const ledger = SqliteLedger.open({ path: l.file, create: false });
    try {
      expect(await exportSession(ledger, l.sessions.b, out)).toMatchObject({ artifacts: 0 });
    } finally {
      await ledger.close();
    }
    const r = verifyBundle(out, { trustedKeys: [l.vkey] });
    expect(r.failures.map(({ code, artifact, leaf }) => ({ code, artifact, leaf }))).toEqual([{ code: 'artifact_missing', artifact: l.artifact.sha256, leaf: l.pos(l.sessions.b, 1) }]);
  });

  it('[R-TAMPER-TRUNCATE] warns that a session still open when exported has no session.end in the bundle', async () => {
    const out = outDir();
    const ledger = SqliteLedger.open({ path: copyLedger(base, dir).file, create: false });
    try {
      const r = await exportSession(ledger, base.sessions.c, out);
      expect(r.warnings.join(' ')).toContain(`Session ${base.sessions.c} has not ended`);
    } finally {
      await ledger.close();
    }
    // The bundle holds what was recorded; that the session went on is the exporter's warning, not a failure of the bundle.
    expect(verifyBundle(out, { trustedKeys: [base.vkey] }).ok).toBe(true);
  });

  it('refuses a path that is not a bundle directory with a one-sentence not_found error', async () => {
    let thrown: unknown;
    try {
      verifyBundle(path.join(dir, 'no-such-bundle'));
    } catch (e) {
      thrown = e;
    }
    expect(isWitnessError(thrown, 'not_found')).toBe(true);
    oneSentence((thrown as Error).message);
  });

  it('reports bundle_invalid for an empty directory and for one missing its checkpoint or events', async () => {
    const empty = outDir();
    fs.mkdirSync(empty);
    expect(verifyBundle(empty).first).toMatchObject({ code: 'bundle_invalid' });

    const out = outDir();
    const ledger = SqliteLedger.open({ path: copyLedger(base, dir).file, create: false });
    try {
      await exportSession(ledger, base.sessions.a, out);
    } finally {
      await ledger.close();
    }
    for (const name of ['checkpoint.txt', 'events.jsonl', 'manifest.json']) {
      const copy = outDir();
      fs.cpSync(out, copy, { recursive: true });
      fs.rmSync(path.join(copy, name));
      const r = verifyBundle(copy, { trustedKeys: [base.vkey] });
      expect(r.ok, name).toBe(false);
      // A file the manifest lists is a file_mismatch when missing; without a manifest the bundle is unreadable.
      expect(r.first?.code, name).toBe(name === 'manifest.json' ? 'bundle_invalid' : 'file_mismatch');
      expect(r.first?.reason, name).toContain(name);
    }
  });
});

describe('hostile bundle files', () => {
  const MB = 1024 * 1024;

  async function exported(session: 'a' | 'b'): Promise<string> {
    const out = outDir();
    const ledger = SqliteLedger.open({ path: copyLedger(base, dir).file, create: false });
    try {
      await exportSession(ledger, base.sessions[session], out);
    } finally {
      await ledger.close();
    }
    return out;
  }

  /** Writes `unit` over and over until the file is at least `bytes` long, a few MB at a time. */
  function fill(file: string, unit: string, bytes: number, flag: 'w' | 'a' = 'w'): void {
    const block = Buffer.from(unit.repeat(Math.max(1, Math.floor((4 * MB) / unit.length))));
    const fd = fs.openSync(file, flag);
    try {
      for (let n = 0; n < bytes; n += block.length) fs.writeSync(fd, block);
    } finally {
      fs.closeSync(fd);
    }
  }

  /**
   * Verifies in a process of its own (the built verifier), so that its peak memory (maxRSS) is
   * the verifier's alone. Node itself with the module loaded peaks near 60 MB.
   */
  function verifyInChild(bundle: string): Promise<{ ok: boolean; first?: { code: string; reason: string }; failures: number; maxRssMB: number }> {
    const script = `const { verifyBundle } = await import(${JSON.stringify(pathToFileURL(path.join(REPO_ROOT, 'dist', 'export', 'index.js')).href)});
const r = verifyBundle(process.argv[1], { trustedKeys: [process.argv[2]] });
console.log(JSON.stringify({ ok: r.ok, first: r.first, failures: r.failures.length, maxRssMB: Math.round(process.resourceUsage().maxRSS / 1024) }));`;
    return new Promise((resolve, reject) => {
      execFile(process.execPath, ['--input-type=module', '-e', script, bundle, base.vkey], { timeout: 120_000 }, (err, stdout, stderr) => {
        if (err !== null) reject(new Error(`${err.message}\n${stderr}`));
        else resolve(JSON.parse(stdout) as { ok: boolean; first?: { code: string; reason: string }; failures: number; maxRssMB: number });
      });
    });
  }

  it('[R-BUNDLE-BOUNDED] [R-HOSTILE] refuses a 96 MB proofs.jsonl unread, with bundle_invalid, instead of holding it in memory', async () => {
    const out = await exported('a');
    // The genuine proofs, repeated: the old verifier kept the last copy of each and passed.
    fill(path.join(out, 'proofs.jsonl'), fs.readFileSync(path.join(out, 'proofs.jsonl'), 'utf8'), 96 * MB);
    const r = await verifyInChild(out);
    expect(r.ok).toBe(false);
    expect(r.failures).toBe(1);
    expect(r.first).toMatchObject({ code: 'bundle_invalid', reason: expect.stringMatching(/^proofs\.jsonl is \d+ bytes, more than the \d+ bytes it may have/) });
    expect(r.maxRssMB).toBeLessThan(120);
  }, 180_000);

  it('[R-BUNDLE-BOUNDED] refuses a 96 MB line in events.jsonl without ever holding more than its cap', async () => {
    const out = await exported('a');
    const file = path.join(out, 'events.jsonl');
    fs.appendFileSync(file, '{"pad":"');
    fill(file, 'x', 96 * MB, 'a');
    fs.appendFileSync(file, '"}\n');
    const r = await verifyInChild(out);
    expect(r.first).toMatchObject({ code: 'bundle_invalid', reason: expect.stringMatching(/^events\.jsonl line \d+ is longer than 65 MiB/) });
    expect(r.failures).toBe(1);
    expect(r.maxRssMB).toBeLessThan(200);
  }, 180_000);

  it('[R-BUNDLE-BOUNDED] stops at the hundredth failure in 96 MB of junk event lines, and says so', async () => {
    const out = await exported('a');
    fill(path.join(out, 'events.jsonl'), `{"leaf":1,"hash":"${'a'.repeat(64)}"}\n`, 96 * MB, 'a');
    const r = await verifyInChild(out);
    expect(r.ok).toBe(false);
    expect(r.failures).toBe(100);
    expect(r.maxRssMB).toBeLessThan(120);
    const report = verifyBundle(out, { trustedKeys: [base.vkey] });
    expect(report.warnings).toEqual([expect.stringMatching(/^Verification stopped at events\.jsonl line \d+ after 100 failures\.$/)]);
  }, 180_000);

  it('[R-BUNDLE-BOUNDED] refuses an oversized manifest, a proof line longer than any proof, and files that are not regular files', async () => {
    const big = await exported('a');
    fill(path.join(big, 'manifest.json'), ' ', 17 * MB);
    expect(verifyBundle(big, { trustedKeys: [base.vkey] }).first).toMatchObject({
      code: 'bundle_invalid',
      reason: expect.stringMatching(/^manifest\.json is \d+ bytes, more than the 16 MiB it may have/),
    });

    const longProof = await exported('a');
    const proofs = fs.readFileSync(path.join(longProof, 'proofs.jsonl'), 'utf8').split('\n');
    proofs[1] = proofs[1]!.replace('"proof":[', `"proof":[${`"${'0'.repeat(64)}",`.repeat(200)}`);
    fs.writeFileSync(path.join(longProof, 'proofs.jsonl'), proofs.join('\n'));
    const r = verifyBundle(longProof, { trustedKeys: [base.vkey] });
    expect(r.failures).toEqual([{ code: 'bundle_invalid', reason: expect.stringMatching(/^proofs\.jsonl line 2 is longer than 8192 bytes/) }]);

    const linked = await exported('a');
    fs.renameSync(path.join(linked, 'checkpoint.txt'), path.join(dir, 'elsewhere-checkpoint.txt'));
    fs.symlinkSync(path.join(dir, 'elsewhere-checkpoint.txt'), path.join(linked, 'checkpoint.txt'));
    expect(verifyBundle(linked, { trustedKeys: [base.vkey] }).first).toMatchObject({ code: 'bundle_invalid', reason: expect.stringMatching(/^checkpoint\.txt is not a regular file/) });
  });
});
