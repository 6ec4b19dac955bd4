import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { exportBundle, verifyBundle, verifyZipBundle } from '../../src/export/index.js';
import { SqliteLedger } from '../../src/store/index.js';
import { REPO_ROOT, buildLedger, copyLedger, runBin, type BuiltLedger } from '../helpers/ledger.js';
import { tempDir } from '../helpers/tmp.js';
import { crafted, entry } from './standalone-verify-zip.js';

/**
 * The standalone verifier that travels inside every bundle (verify.mjs), run the way an auditor
 * runs it: `node verify.mjs` in a copy of the bundle in the system's temporary directory, with no
 * node_modules anywhere above it, so nothing but Node's built-ins can be what it relies on. Its
 * verdict is held against `witness verify`'s (verifyBundle / verifyZipBundle) on the same bundles:
 * genuine ones pass both with the same counts, and every tamper class fails both with the same
 * first failure code.
 */

interface Failure {
  code: string;
  reason: string;
  leaf?: number;
}
interface Report {
  ok: boolean;
  events: number;
  streams: number;
  checkpoints: number;
  sealedSize: number;
  payloadsAbsent: number;
  artifacts: number;
  failures: Failure[];
  first?: Failure;
  trust: { keys: Array<{ name: string; keyHash: string; source: string }>; statement: string };
  bundle?: { inScope: number; mode: string; withoutPayload: Array<{ from: number; to: number; reason: string }>; populations: Array<{ name: string; title: string; count: number }> };
}

const root = tempDir('witness-standalone-');
let base: BuiltLedger;
/** Bundles as exported: a directory of one session's export (full), a zip of the same, a withheld export of all agents. */
const bundles = { dir: '', zip: '', withheld: '' };

function run(args: string[], cwd: string): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, args, { cwd, encoding: 'utf8', timeout: 60_000, env: { PATH: process.env['PATH'] ?? '' } });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

/** `node verify.mjs [args]` with the verify.mjs that the exporter put inside `bundle` (or beside it, for a zip). */
function standalone(bundle: string, ...args: string[]): { code: number; out: string; err: string; json?: Report } {
  const isDir = fs.statSync(bundle).isDirectory();
  const script = isDir ? path.join(bundle, 'verify.mjs') : path.join(root, 'zipped', 'verify.mjs');
  const r = run([script, ...(isDir ? [] : [bundle]), ...args], os.tmpdir());
  return { ...r, ...(args.includes('--json') && r.out !== '' ? { json: JSON.parse(r.out) as Report } : {}) };
}

async function witnessVerify(bundle: string, opts: { trustedKeys?: string[]; requirePayloads?: boolean } = {}): Promise<Report> {
  return (fs.statSync(bundle).isDirectory() ? verifyBundle(bundle, opts) : await verifyZipBundle(bundle, opts)) as unknown as Report;
}

function copyDir(src: string, name: string): string {
  const dst = path.join(root, name);
  fs.cpSync(src, dst, { recursive: true });
  return dst;
}

const readLines = (file: string) =>
  fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '');
const writeLines = (file: string, lines: string[]) => fs.writeFileSync(file, `${lines.join('\n')}\n`);

beforeAll(async () => {
  base = await buildLedger(root);
  const led = copyLedger(base, root);
  const ledger = SqliteLedger.open({ path: led.file, create: false });
  try {
    const scope = { since: null, until: null, agents: null, sessions: [base.sessions.b], regimes: [] };
    bundles.dir = (await exportBundle(ledger, scope, path.join(root, 'one-session'), { actor: 'auditor@example' })).dir;
    bundles.zip = (await exportBundle(ledger, scope, path.join(root, 'zipped', 'bundle.zip'), { actor: 'auditor@example' })).dir;
    bundles.withheld = (
      await exportBundle(ledger, { since: '2000-01-01T00:00:00.000Z', until: null, agents: null, sessions: null, regimes: ['soc2'] }, path.join(root, 'withheld'), { withholdData: true })
    ).dir;
  } finally {
    await ledger.close();
  }
  // A zip's verify.mjs is beside it, as an auditor who unzipped just that file would have it.
  fs.copyFileSync(path.join(bundles.dir, 'verify.mjs'), path.join(root, 'zipped', 'verify.mjs'));
}, 120_000);

describe('verify.mjs on genuine bundles', () => {
  it('runs from a directory with no node_modules above it', () => {
    for (let d = root; ; d = path.dirname(d)) {
      expect(fs.existsSync(path.join(d, 'node_modules'))).toBe(false);
      if (path.dirname(d) === d) break;
    }
    expect(fs.readFileSync(path.join(bundles.dir, 'verify.mjs'), 'utf8')).not.toMatch(/from '(?!node:)/);
  });

  it('passes the bundle it sits in, with no argument, and says what the verdict rests on', () => {
    const r = run([path.join(bundles.dir, 'verify.mjs')], os.tmpdir());
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    // No key pinned: the headline says the bundle vouches for itself.
    expect(r.out).toMatch(
      /^PASS ✔ Bundle .* is intact, but signed only by keys carried inside the bundle — pin the key from your own record \(--trusted-key\): \d+ events in \d+ session\(s\), verified against \d+ signed checkpoint\(s\)/,
    );
    expect(r.out).toContain('shipped inside the bundle; pin the key you trust with --trusted-key');
    expect(r.out).toMatch(/^ {2}scope: sessions /m);
    expect(r.out).toMatch(/key: {3}\S+\+[0-9a-f]{8} \(bundle\)/);
    expect(r.out).toMatch(/out of scope \(header only\) \(\d+\): leaves /);
  });

  it.each(['dir', 'zip', 'withheld'] as const)('gives the %s bundle the verdict and counts witness verify gives it', async (which) => {
    const b = bundles[which];
    const mine = standalone(b, '--json');
    const theirs = await witnessVerify(b);
    expect(theirs.failures).toEqual([]);
    expect(mine.code).toBe(0);
    expect(mine.json!.failures).toEqual([]);
    for (const k of ['ok', 'events', 'streams', 'checkpoints', 'sealedSize', 'payloadsAbsent', 'artifacts'] as const) expect([k, mine.json![k]]).toEqual([k, theirs[k]]);
    expect(mine.json!.bundle!.inScope).toBe(theirs.bundle!.inScope);
    expect(mine.json!.bundle!.withoutPayload).toEqual(theirs.bundle!.withoutPayload);
    expect(mine.json!.bundle!.populations).toEqual(theirs.bundle!.populations);
    expect(mine.json!.trust.keys).toEqual(theirs.trust.keys);
  });

  it('lists every event of a withheld bundle without payload as withheld or out of scope, and --require-payloads fails it', async () => {
    const r = standalone(bundles.withheld);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/withheld by export mode \(\d+\): leaves \d+/);
    const strict = standalone(bundles.withheld, '--require-payloads', '--json');
    expect(strict.code).toBe(1);
    expect(strict.json!.first!.code).toBe('payload_missing');
    expect((await witnessVerify(bundles.withheld, { requirePayloads: true })).first!.code).toBe('payload_missing');
  });

  it('rests on a pinned key when given one, and fails a bundle when the pinned key signed nothing in it', () => {
    const pinned = standalone(bundles.dir, '--trusted-key', base.vkey);
    expect(pinned.code).toBe(0);
    expect(pinned.out).toContain('pinned by the auditor (--trusted-key)');
    const keyFile = path.join(root, 'pinned.pub');
    fs.writeFileSync(keyFile, `${base.vkey}\n`);
    expect(standalone(bundles.zip, '--trusted-key', keyFile).code).toBe(0);
    const other = 'other+1234abcd+AQ' + 'A'.repeat(42) + '=';
    const wrong = standalone(bundles.dir, '--trusted-key', other);
    expect(wrong.code).toBe(2);
    expect(wrong.err).toMatch(/is not a verifier key/);
  });

  it('ships in the build: the built `witness export` writes it into the bundle, and `witness verify --json` gives the same verdict and counts', async () => {
    const led = copyLedger(base, root);
    const out = path.join(root, 'cli-bundle');
    const e = await runBin(['export', '--store', `sqlite:${led.file}`, '--session', base.sessions.a, '-o', out]);
    expect(e.stderr).toBe('');
    expect(e.code).toBe(0);
    expect(fs.readFileSync(path.join(out, 'verify.mjs'))).toEqual(fs.readFileSync(path.join(REPO_ROOT, 'src', 'export', 'standalone', 'verify.mjs')));
    for (const dir of [out, copyDir(out, 'cli-bundle-tampered')]) {
      if (dir !== out) TAMPERS[0]![1](dir);
      const cli = await runBin(['verify', dir, '--json']);
      const theirs = JSON.parse(cli.stdout) as Report;
      const mine = standalone(dir, '--json');
      expect(mine.code).toBe(cli.code);
      for (const k of ['ok', 'events', 'streams', 'checkpoints', 'sealedSize', 'payloadsAbsent', 'artifacts'] as const) expect([k, mine.json![k]]).toEqual([k, theirs[k]]);
      expect(mine.json!.failures.map((f) => f.code)).toEqual(theirs.failures.map((f) => f.code));
    }
  });

  it('answers bad usage with exit 2 and one sentence', () => {
    expect(standalone(bundles.dir, '--frobnicate').code).toBe(2);
    const missing = run([path.join(bundles.dir, 'verify.mjs'), path.join(root, 'no-such-bundle')], os.tmpdir());
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(/does not exist; pass an evidence bundle/);
  });

  it('sends a version 1 bundle elsewhere with exit 2, reads a ZIP64 archive of small files (`zip -fz`), and refuses ZIP64 placeholders without ZIP64 records', () => {
    const v1 = path.join(root, 'v1-bundle');
    fs.mkdirSync(v1);
    fs.writeFileSync(path.join(v1, 'manifest.json'), JSON.stringify({ format: 'witness-evidence', version: 1, session: 's' }));
    const old = run([path.join(bundles.dir, 'verify.mjs'), v1], os.tmpdir());
    expect([old.code, old.out]).toEqual([2, '']);
    expect(old.err).toMatch(/version 1 bundle; verify it with `witness verify`/);
    // ZIP64 records on a small bundle, as an auditor's `zip -fz` writes them: read, not sent elsewhere.
    const fz = path.join(root, 'fz.zip');
    spawnSync('zip', ['-qr', '-fz', fz, '.'], { cwd: bundles.dir });
    expect(fs.readFileSync(fz).includes(Buffer.from('504b0606', 'hex'))).toBe(true);
    const read = run([path.join(bundles.dir, 'verify.mjs'), fz], os.tmpdir());
    expect([read.code, read.err]).toEqual([0, '']);
    // An end record counting 0xffff entries with no ZIP64 record to hold the count: refused, one sentence.
    const zip = crafted([entry('manifest.json', '{}')]);
    zip.writeUInt16LE(0xffff, zip.length - 22 + 8);
    zip.writeUInt16LE(0xffff, zip.length - 22 + 10);
    const file = path.join(root, 'zip64.zip');
    fs.writeFileSync(file, zip);
    const big = run([path.join(bundles.dir, 'verify.mjs'), file], os.tmpdir());
    expect([big.code, big.err]).toEqual([1, '']);
    expect(big.out).toMatch(
      /bundle_invalid: the zip has 1 central-directory record\(s\) in the \d+ bytes its end record declares, not the 65535 it counts: the central directory is damaged: the bundle was refused\./,
    );
  });
});

/**
 * Each tamper class: an edit of a copy of the genuine one-session bundle (or of the withheld one,
 * whose scope takes in the earlier exports' audit.access events, so its audit-access population is
 * not empty).
 */
const TAMPERS: Array<[string, (dir: string) => void, ('dir' | 'withheld')?]> = [
  [
    'payload edit',
    (dir) => {
      const file = path.join(dir, 'events.jsonl');
      const lines = readLines(file);
      const i = lines.findIndex((l) => (JSON.parse(l) as { data: unknown }).data !== null);
      const ev = JSON.parse(lines[i]!) as { data: Record<string, unknown> };
      ev.data = { ...ev.data, amount: 5000 };
      lines[i] = JSON.stringify(ev);
      writeLines(file, lines);
    },
  ],
  [
    'header edit',
    (dir) => {
      const file = path.join(dir, 'events.jsonl');
      const lines = readLines(file);
      const ev = JSON.parse(lines[1]!) as { action?: string };
      ev.action = 'something-else';
      lines[1] = JSON.stringify(ev);
      writeLines(file, lines);
    },
  ],
  [
    'deleted line',
    (dir) => {
      const file = path.join(dir, 'events.jsonl');
      const lines = readLines(file);
      lines.splice(2, 1);
      writeLines(file, lines);
    },
  ],
  [
    'reordered lines',
    (dir) => {
      const file = path.join(dir, 'events.jsonl');
      const lines = readLines(file);
      [lines[1], lines[2]] = [lines[2]!, lines[1]!];
      writeLines(file, lines);
    },
  ],
  [
    'proof step altered',
    (dir) => {
      const file = path.join(dir, 'proofs.jsonl');
      const lines = readLines(file);
      const p = JSON.parse(lines[1]!) as { proof: string[] };
      p.proof[p.proof.length - 1] = `${p.proof[p.proof.length - 1]!.slice(0, 63)}${p.proof[p.proof.length - 1]!.endsWith('0') ? '1' : '0'}`;
      lines[1] = JSON.stringify(p);
      writeLines(file, lines);
    },
  ],
  [
    'checkpoint signature altered',
    (dir) => {
      const file = path.join(dir, 'checkpoint.txt');
      const note = fs.readFileSync(file, 'utf8');
      const b64 = note.trimEnd().split('\n').pop()!.split(' ').pop()!;
      const raw = Buffer.from(b64, 'base64');
      raw[20] = raw[20]! ^ 0x40;
      fs.writeFileSync(file, note.replace(b64, raw.toString('base64')));
    },
  ],
  [
    'population line removed',
    (dir) => {
      const pops = path.join(dir, 'populations');
      const file = fs
        .readdirSync(pops)
        .map((f) => path.join(pops, f))
        .find((f) => f.endsWith('.jsonl') && readLines(f).length > 0)!;
      writeLines(file, readLines(file).slice(1));
    },
    'withheld',
  ],
  [
    'artifact byte flipped',
    (dir) => {
      const arts = path.join(dir, 'artifacts');
      const file = path.join(arts, fs.readdirSync(arts)[0]!);
      const bytes = fs.readFileSync(file);
      bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 1;
      fs.writeFileSync(file, bytes);
    },
  ],
  [
    'mode lie (manifest says withheld, the signed export record says full)',
    (dir) => {
      const file = path.join(dir, 'manifest.json');
      const m = JSON.parse(fs.readFileSync(file, 'utf8')) as { mode: string };
      m.mode = 'withheld';
      fs.writeFileSync(file, JSON.stringify(m, null, 2));
    },
  ],
  [
    'payload stripped from a full export',
    (dir) => {
      const file = path.join(dir, 'events.jsonl');
      const lines = readLines(file);
      const i = lines.findIndex((l) => (JSON.parse(l) as { data: unknown }).data !== null);
      lines[i] = JSON.stringify({ ...(JSON.parse(lines[i]!) as object), data: null, salt: null });
      writeLines(file, lines);
    },
  ],
];

describe('verify.mjs on tampered bundles', () => {
  it.each(TAMPERS)('fails a bundle after a %s, with the first failure code witness verify names', async (name, edit, which = 'dir') => {
    const dir = copyDir(bundles[which], `tampered-${name.split(' ')[0]}-${name.length}`);
    edit(dir);
    const theirs = await witnessVerify(dir);
    const mine = standalone(dir, '--json');
    expect(theirs.ok).toBe(false);
    expect(mine.code).toBe(1);
    expect(mine.json!.ok).toBe(false);
    expect(mine.json!.first!.code).toBe(theirs.first!.code);
    expect(new Set(mine.json!.failures.map((f) => f.code))).toEqual(new Set(theirs.failures.map((f) => f.code)));
    const text = standalone(dir);
    expect(text.out).toMatch(new RegExp(`^FAIL ✘ Bundle .* FAILED verification.*: ${theirs.first!.code}: `));
  });
});

describe('verify.mjs reading a zip itself', () => {
  const zipOf = (entries: Parameters<typeof crafted>[0]) => {
    const file = path.join(root, `crafted-${Math.random().toString(36).slice(2)}.zip`);
    fs.writeFileSync(file, crafted(entries));
    return file;
  };
  const refused = (file: string, why: RegExp) => {
    const r = standalone(file, '--json');
    expect(r.code).toBe(1);
    expect(r.json!.failures.map((f) => f.code)).toEqual(['bundle_invalid']);
    expect(r.json!.first!.reason).toMatch(why);
  };
  const manifest = () => entry('manifest.json', fs.readFileSync(path.join(bundles.dir, 'manifest.json')));

  it('re-zipped with deflate, the genuine bundle still verifies', () => {
    const names = ['manifest.json', 'events.jsonl', 'proofs.jsonl', 'checkpoint.txt', 'checkpoints.jsonl', 'keys.json', 'system.json', 'README.txt', 'verify.mjs'];
    const all: string[] = [];
    const walk = (rel: string) => {
      for (const d of fs.readdirSync(path.join(bundles.dir, rel), { withFileTypes: true })) {
        const n = rel === '' ? d.name : `${rel}/${d.name}`;
        if (d.isDirectory()) walk(n);
        else all.push(n);
      }
    };
    walk('');
    expect(all).toEqual(expect.arrayContaining(names));
    const file = zipOf(all.map((n) => entry(n, fs.readFileSync(path.join(bundles.dir, n)), { deflate: true })));
    const r = standalone(file);
    expect(r.out).toMatch(/^PASS/);
    expect(r.code).toBe(0);
  });

  it.each([
    ['a path climbing out of the bundle', () => [manifest(), entry('../evil.txt', 'x')], /outside the bundle/],
    ['an absolute path', () => [manifest(), entry('/etc/evil', 'x')], /outside the bundle/],
    ['a name twice', () => [manifest(), entry('events.jsonl', 'a'), entry('events.jsonl', 'b')], /twice/],
    ['a symbolic link', () => [manifest(), entry('events.jsonl', '/etc/passwd', { symlink: true })], /symbolic link/],
    ['an encrypted entry', () => [manifest(), entry('events.jsonl', 'x', { encrypted: true })], /encrypted/],
    ['a name no bundle has', () => [manifest(), entry('payload.exe', 'x')], /no evidence bundle has/],
    ['an entry inflating past the size it declares (a bomb)', () => [manifest(), entry('events.jsonl', Buffer.alloc(4 << 20), { deflate: true, declaredSize: 1000 })], /inflates to more than/],
    ['an entry declaring more than its cap', () => [manifest(), entry('keys.json', Buffer.alloc(10), { deflate: true, declaredSize: 0xfffffff0 })], /more than the/],
  ])('refuses a zip holding %s with one bundle_invalid', (_what, entries, why) => {
    refused(zipOf(entries()), why);
  });

  it('refuses an entry that unpacks to more than 200 times its size, before inflating it', () => {
    refused(zipOf([manifest(), entry('events.jsonl', Buffer.alloc(8 << 20), { deflate: true })]), /more than 200 times its size: a compression bomb/);
  });

  it('reads a bomb no further than the size its entry declares', () => {
    // 64 MiB of zeros deflate to about 64 KiB; declared as 1,000 bytes, it must stop at once.
    const file = zipOf([manifest(), entry('events.jsonl', Buffer.alloc(64 << 20), { deflate: true, declaredSize: 1000 })]);
    const t = Date.now();
    refused(file, /inflates to more than the 1000 bytes/);
    expect(Date.now() - t).toBeLessThan(10_000);
  });
});
