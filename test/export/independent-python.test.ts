import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { openWitness } from '../../src/index.js';
import { BIN, REPO_ROOT, buildLedger, runBin } from '../helpers/ledger.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * The auditor's test of docs/FORMAT.md: a verifier written in Python from that document alone
 * (test/export/independent/verify_bundle.py, standard library + python3-cryptography, nothing read
 * from src/) must pass the bundles the built CLI writes and fail every tamper class with the code the
 * document names — and `witness verify` must say the same on the same bytes. Where they disagree,
 * the document, the code or the independent reading of it is wrong, and this test says which bundle.
 */

const PY = '/usr/bin/python3';
const HERE = path.join(REPO_ROOT, 'test', 'export', 'independent');
const VERIFIER = path.join(HERE, 'verify_bundle.py');
const DOC_VECTORS = path.join(HERE, 'doc_vectors.py');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}
interface PyReport {
  verdict: 'PASS' | 'FAIL' | 'UNVERIFIABLE';
  keys: string;
  signedBy: string[];
  failures: Array<{ code: string; message: string; leaf?: number; file?: string }>;
  withoutPayload: Array<{ leaf: number; why: string }>;
}
interface WitnessReport {
  ok: boolean;
  unverifiable: boolean;
  payloadsAbsent: number;
  failures: Array<{ code: string }>;
}

function run(cmd: string, args: string[], input?: string, timeout = 60_000): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { cwd: REPO_ROOT, timeout, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1;
      resolve({ code, stdout, stderr });
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

async function python(bundle: string, extra: string[] = []): Promise<{ code: number; report: PyReport }> {
  const r = await run(PY, [VERIFIER, bundle, '--json', ...extra]);
  expect(r.stderr, `verify_bundle.py crashed on ${bundle}`).toBe('');
  return { code: r.code, report: JSON.parse(r.stdout) as PyReport };
}

async function witness(bundle: string, extra: string[] = []): Promise<WitnessReport> {
  const r = await runBin(['verify', bundle, '--json', ...extra]);
  return JSON.parse(r.stdout) as WitnessReport;
}

const codes = (r: { failures: Array<{ code: string }> }): string[] => [...new Set(r.failures.map((f) => f.code))].sort();

// ------------------------------------------------------------------ bundles as maps of files

type Files = Map<string, Buffer>;

function readTree(dir: string): Files {
  const out: Files = new Map();
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, e.name);
      if (e.isDirectory()) walk(full);
      else out.set(path.relative(dir, full).split(path.sep).join('/'), fs.readFileSync(full));
    }
  };
  walk(dir);
  return out;
}

function writeTree(dir: string, files: Files): string {
  for (const [name, bytes] of files) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), bytes);
  }
  return dir;
}

const sha256 = (b: Buffer): string => crypto.createHash('sha256').update(b).digest('hex');
const lines = (b: Buffer): string[] => b.toString('utf8').split('\n').slice(0, -1);
const unlines = (l: string[]): Buffer => Buffer.from(l.map((x) => `${x}\n`).join(''), 'utf8');

/** What an attacker who can rewrite the unsigned manifest does after editing files: list the new digests. */
function redigest(files: Files): void {
  const m = JSON.parse(files.get('manifest.json')!.toString('utf8')) as { files: Record<string, string> };
  for (const name of Object.keys(m.files)) {
    const b = files.get(name);
    if (b !== undefined) m.files[name] = sha256(b);
  }
  files.set('manifest.json', Buffer.from(`${JSON.stringify(m, null, 2)}\n`));
}

// A zip written byte by byte (stored entries), for the archives no honest zip tool writes.
interface ZipEntry {
  name: string;
  data: Buffer;
  symlink?: boolean;
}
/** What a hostile zip adds: an archive comment, bytes before the first entry or after one, a local header name unlike the central one. */
interface ZipOddities {
  comment?: Buffer;
  prefix?: Buffer;
  gapAfter?: { index: number; bytes: Buffer };
  localName?: { index: number; name: string };
}
function zip(entries: ZipEntry[], odd: ZipOddities = {}): Buffer {
  const parts: Buffer[] = odd.prefix === undefined ? [] : [odd.prefix];
  const central: Buffer[] = [];
  let offset = odd.prefix?.length ?? 0;
  for (const [index, e] of entries.entries()) {
    const name = Buffer.from(e.name, 'utf8');
    const localName = odd.localName?.index === index ? Buffer.from(odd.localName.name, 'utf8') : name;
    const crc = zlib.crc32(e.data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0x800, 6);
    local.writeUInt16LE(0, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(e.data.length, 18);
    local.writeUInt32LE(e.data.length, 22);
    local.writeUInt16LE(localName.length, 26);
    const cd = Buffer.alloc(46);
    cd.writeUInt32LE(0x02014b50, 0);
    cd.writeUInt16LE((3 << 8) | 20, 4);
    cd.writeUInt16LE(20, 6);
    cd.writeUInt16LE(0x800, 8);
    cd.writeUInt32LE(crc, 16);
    cd.writeUInt32LE(e.data.length, 20);
    cd.writeUInt32LE(e.data.length, 24);
    cd.writeUInt16LE(name.length, 28);
    cd.writeUInt32LE((((e.symlink === true ? 0o120777 : 0o100644) << 16) >>> 0) as number, 38);
    cd.writeUInt32LE(offset, 42);
    parts.push(local, localName, e.data);
    central.push(cd, name);
    offset += 30 + localName.length + e.data.length;
    if (odd.gapAfter?.index === index) {
      parts.push(odd.gapAfter.bytes);
      offset += odd.gapAfter.bytes.length;
    }
  }
  const cdBuf = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cdBuf.length, 12);
  end.writeUInt32LE(offset, 16);
  end.writeUInt16LE(odd.comment?.length ?? 0, 20);
  return Buffer.concat([...parts, cdBuf, end, odd.comment ?? Buffer.alloc(0)]);
}

// ------------------------------------------------------------------ the ledger and its bundles

const dir = tempDir('witness-independent-');
let ledger: string;
let vkey: string;
let genuineDir: string;
let genuineZip: string;
let genuine: Files;
/** A bundle of one session whose span interleaves another session's events (out of scope: headers only). */
let mixed: Files;
/** The full bundle of that other session, whose payloads an attacker could paste into `mixed`. */
let other: Files;

beforeAll(async () => {
  if (!fs.existsSync(path.join(REPO_ROOT, 'dist', 'cli', 'index.js'))) {
    throw new Error('dist/ is missing: run `npx tsc -p tsconfig.build.json` before this test.');
  }
  // The demo records a support session with approvals, a denial, screenshots, a narrated video and captions.
  const demo = path.join(dir, 'demo');
  const r = await run(process.execPath, [BIN, 'demo', '--dir', demo], undefined, 240_000);
  expect(r.code, r.stderr).toBe(0);
  ledger = `sqlite:${path.join(demo, 'witness.db')}`;
  vkey = /^ {2}public key +(\S+)$/m.exec(r.stdout)![1]!;
  const session = fs
    .readdirSync(demo)
    .find((n) => n.startsWith('evidence-'))!
    .slice('evidence-'.length);
  genuineDir = path.join(dir, 'genuine');
  genuineZip = path.join(dir, 'genuine.zip');
  for (const out of [genuineDir, genuineZip]) {
    const e = await runBin(['export', '--store', ledger, '--session', session, '--as', 'auditor', '-o', out]);
    expect(e.code, e.stderr).toBe(0);
  }
  genuine = readTree(genuineDir);

  // A small SDK-recorded ledger: sessions a and b interleave, b captures a screenshot.
  const built = await buildLedger(dir);
  for (const [session, name] of [
    [built.sessions.b, 'mixed'],
    [built.sessions.a, 'other'],
  ] as const) {
    const e = await runBin(['export', '--store', `sqlite:${built.file}`, '--session', session, '--as', 'auditor', '-o', path.join(dir, name)]);
    expect(e.code, e.stderr).toBe(0);
  }
  mixed = readTree(path.join(dir, 'mixed'));
  other = readTree(path.join(dir, 'other'));
}, 300_000);

let counter = 0;
function tampered(edit: (files: Files) => void, options: { redigest?: boolean; from?: Files } = {}): string {
  const files: Files = new Map([...(options.from ?? genuine)].map(([k, v]) => [k, Buffer.from(v)]));
  edit(files);
  if (options.redigest !== false) redigest(files);
  counter += 1;
  return writeTree(path.join(dir, `tampered-${counter}`), files);
}

/** Index of an events.jsonl line in the span whose event carries a payload, chosen by a predicate. */
function lineWhere(files: Files, pred: (e: Record<string, unknown>) => boolean): number {
  const l = lines(files.get('events.jsonl')!);
  const i = l.findIndex((x, n) => n < l.length - 1 && pred(JSON.parse(x) as Record<string, unknown>));
  if (i < 0) throw new Error('no such event in the genuine bundle');
  return i;
}

function editLine(files: Files, name: string, i: number, edit: (o: Record<string, unknown>) => void): void {
  const l = lines(files.get(name)!);
  const o = JSON.parse(l[i]!) as Record<string, unknown>;
  edit(o);
  l[i] = JSON.stringify(o);
  files.set(name, unlines(l));
}

// ------------------------------------------------------------------ tests

describe('the independent Python verifier, read from docs/FORMAT.md alone', () => {
  it('recomputes every vector and every step of the worked example in docs/FORMAT.md', async () => {
    const r = await run(PY, [DOC_VECTORS, path.join(REPO_ROOT, 'docs', 'FORMAT.md'), '--json']);
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout) as { checks: number; failed: unknown[] };
    expect(out.failed).toEqual([]);
    expect(out.checks).toBeGreaterThan(60);
    expect(r.code).toBe(0);
  });

  it('writes numbers as ECMAScript Number.prototype.toString does, for 20,000 random doubles', async () => {
    const doubles: Buffer[] = [];
    while (doubles.length < 20_000) {
      const b = crypto.randomBytes(8);
      if (Number.isFinite(b.readDoubleLE(0))) doubles.push(b);
    }
    for (const x of [1e21, 1e-7, 1e-6, 5e-324, 0.1, 2 ** 53 - 1, -(2 ** 53 - 1), 9.999999999999999e20, 1.5e-7, 100]) {
      const b = Buffer.alloc(8);
      b.writeDoubleLE(x);
      doubles.push(b);
    }
    const r = await run(PY, [DOC_VECTORS, '--es-numbers'], doubles.map((b) => b.toString('hex')).join('\n'));
    expect(r.stderr).toBe('');
    const got = r.stdout.split('\n');
    const wrong: string[] = [];
    doubles.forEach((b, i) => {
      const x = b.readDoubleLE(0);
      // FORMAT.md 2.2: integers above 2^53 − 1 and below 10^21 are refused, not written.
      const want = Number.isInteger(x) && Math.abs(x) > 2 ** 53 - 1 && Math.abs(x) < 1e21 ? 'refused' : String(x);
      if (got[i] !== want) wrong.push(`${want} written as ${got[i]}`);
    });
    expect(wrong).toEqual([]);
  });

  it('passes the genuine bundle as a zip and as a directory, with the keys it carries and with the key pinned', async () => {
    for (const b of [genuineZip, genuineDir]) {
      const carried = await python(b);
      expect(carried.report.failures).toEqual([]);
      expect(carried.report.verdict).toBe('PASS');
      expect(carried.code).toBe(0);
      expect(carried.report.keys).toMatch(/^carried in the bundle/);
      const pinned = await python(b, ['--trusted-key', vkey]);
      expect(pinned.report.verdict).toBe('PASS');
      expect(pinned.report.keys).toBe('pinned with --trusted-key');
      expect(pinned.report.signedBy).toEqual([vkey.split('+').slice(0, 2).join('+')]);
      expect((await witness(b)).ok).toBe(true);
    }
  });

  it('passes a time-window bundle (other sessions out of scope, headers only) and a withheld one, counting the events without payload as witness verify does', async () => {
    const events = lines(genuine.get('events.jsonl')!).map((l) => JSON.parse(l) as { ts: string });
    const since = events[Math.floor(events.length / 2)]!.ts;
    for (const extra of [[], ['--withhold-data']]) {
      const out = path.join(dir, `window-${extra.length}.zip`);
      const e = await runBin(['export', '--store', ledger, '--since', since, '--as', 'auditor', '-o', out, ...extra]);
      expect(e.code, e.stderr).toBe(0);
      const py = await python(out);
      const w = await witness(out);
      expect(py.report.failures).toEqual([]);
      expect(py.report.verdict).toBe('PASS');
      expect(w.ok).toBe(true);
      expect(py.report.withoutPayload.length).toBe(w.payloadsAbsent);
      if (extra.length > 0) {
        expect(py.report.withoutPayload.length).toBeGreaterThan(0);
        // 7.12 step 12: --require-payloads turns every event without payload into a failure.
        const required = await python(out, ['--require-payloads']);
        expect(codes(required.report)).toEqual(['payload_missing']);
        expect(required.code).toBe(1);
        expect(codes(await witness(out, ['--require-payloads']))).toEqual(['payload_missing']);
      }
    }
  });

  it("passes a session bundle whose span holds another session's events as headers only, and fails a payload revealed or stripped there", async () => {
    const b = path.join(dir, 'mixed');
    const py = await python(b);
    expect(py.report.failures).toEqual([]);
    const outOfScope = py.report.withoutPayload.filter((e) => e.why === 'out of scope');
    expect(outOfScope.length).toBeGreaterThan(0);
    expect(py.report.withoutPayload.length).toBe((await witness(b)).payloadsAbsent);

    // An out-of-scope header's real payload (from the other session's own bundle) pasted in: it verifies, but must not be there.
    const leaf = outOfScope[0]!.leaf;
    const donor = lines(other.get('events.jsonl')!)
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((e) => e['leaf'] === leaf)!;
    const revealed = tampered(
      (f) => {
        const l = lines(f.get('events.jsonl')!);
        const i = l.findIndex((x) => (JSON.parse(x) as { leaf: number }).leaf === leaf);
        editLine(f, 'events.jsonl', i, (o) => Object.assign(o, { data: donor['data'], salt: donor['salt'] }));
      },
      { from: mixed },
    );
    const r1 = await python(revealed);
    expect(codes(r1.report)).toEqual(['payload_unexpected']);
    expect(codes(await witness(revealed))).toEqual(['payload_unexpected']);

    const stripped = tampered(
      (f) =>
        editLine(
          f,
          'events.jsonl',
          lineWhere(f, (e) => e['kind'] === 'capture'),
          (o) => Object.assign(o, { data: null, salt: null }),
        ),
      { from: mixed },
    );
    const r2 = await python(stripped);
    // The capture's artifact is then referenced by no payload-carrying event, so it is unexpected too.
    expect(codes(r2.report)).toEqual(['payload_missing', 'payload_unexpected']);
    expect(codes(await witness(stripped))).toEqual(codes(r2.report));
  });

  it('refuses a pinned key that did not sign the checkpoints (checkpoint_signature)', async () => {
    const other = 'example/witness/01a24c4a-c1f0-729c-af8e-d3efe6a58be8+bcaa270f+AUoj4hC5HBNwuBNsCuUKvdJoDD+GorZDnmpRqflN3dIr';
    const py = await python(genuineZip, ['--trusted-key', other]);
    expect(py.code).toBe(1);
    expect(codes(py.report)).toContain('checkpoint_signature');
    expect(codes(await witness(genuineZip, ['--trusted-key', other]))).toContain('checkpoint_signature');
  });

  // Each tamper rewrites the files and then, as an attacker would, the unsigned manifest's digests,
  // so the failure is the one the tamper class itself causes, not file_mismatch.
  const classes: Array<[string, (f: Files) => void, string]> = [
    [
      'a payload edited',
      (f) =>
        editLine(
          f,
          'events.jsonl',
          lineWhere(f, (e) => e['data'] !== null && e['kind'] === 'tool.call'),
          (o) => void ((o['data'] as Record<string, unknown>)['tampered'] = true),
        ),
      'payload_mismatch',
    ],
    [
      'a header edited',
      (f) =>
        editLine(
          f,
          'events.jsonl',
          lineWhere(f, (e) => e['kind'] === 'tool.result'),
          (o) => void (o['outcome'] = 'success' === o['outcome'] ? 'error' : 'success'),
        ),
      'hash_mismatch',
    ],
    [
      'an event line deleted (with its proof line)',
      (f) => {
        const i = lineWhere(f, (e) => e['kind'] === 'tool.call');
        for (const name of ['events.jsonl', 'proofs.jsonl']) f.set(name, unlines(lines(f.get(name)!).filter((_, n) => n !== i)));
      },
      'span_gap',
    ],
    [
      'two event lines swapped (with their proof lines)',
      (f) => {
        const i = lineWhere(f, (e) => e['kind'] === 'tool.call');
        for (const name of ['events.jsonl', 'proofs.jsonl']) {
          const l = lines(f.get(name)!);
          [l[i], l[i + 1]] = [l[i + 1]!, l[i]!];
          f.set(name, unlines(l));
        }
      },
      'span_gap',
    ],
    [
      'a step of an inclusion proof altered',
      (f) =>
        editLine(f, 'proofs.jsonl', 1, (o) => {
          const p = o['proof'] as string[];
          const s = p[p.length - 1]!;
          p[p.length - 1] = (s[0] === '0' ? '1' : '0') + s.slice(1);
        }),
      'inclusion_failed',
    ],
    [
      'the checkpoint signature altered (in checkpoint.txt and checkpoints.jsonl alike)',
      (f) => {
        const note = f.get('checkpoint.txt')!.toString('utf8');
        const sig = /\u2014 \S+ (\S+)\n$/.exec(note)![1]!;
        const k = 40; // a character in the middle of the signature half: still canonical base64
        const forged = sig.slice(0, k) + (sig[k] === 'A' ? 'B' : 'A') + sig.slice(k + 1);
        f.set('checkpoint.txt', Buffer.from(note.replace(sig, forged)));
        f.set('checkpoints.jsonl', Buffer.from(f.get('checkpoints.jsonl')!.toString('utf8').replace(sig, forged)));
      },
      'checkpoint_signature',
    ],
    [
      'the checkpoint signature made malleable (S + L, which some Ed25519 libraries accept)',
      (f) => {
        const note = f.get('checkpoint.txt')!.toString('utf8');
        const sig = /\u2014 \S+ (\S+)\n$/.exec(note)![1]!;
        const raw = Buffer.from(sig, 'base64');
        const L = 2n ** 252n + 27742317777372353535851937790883648493n;
        let S = BigInt(`0x${Buffer.from(raw.subarray(36)).reverse().toString('hex')}`) + L;
        const out = Buffer.alloc(32);
        for (let i = 0; i < 32; i++, S >>= 8n) out[i] = Number(S & 0xffn);
        const forged = Buffer.concat([raw.subarray(0, 36), out]).toString('base64');
        f.set('checkpoint.txt', Buffer.from(note.replace(sig, forged)));
        f.set('checkpoints.jsonl', Buffer.from(f.get('checkpoints.jsonl')!.toString('utf8').replace(sig, forged)));
      },
      'checkpoint_signature',
    ],
    [
      'a line removed from a population file',
      (f) => {
        const l = lines(f.get('populations/approvals.jsonl')!);
        expect(l.length).toBeGreaterThan(0);
        f.set('populations/approvals.jsonl', unlines(l.slice(1)));
      },
      'population_incomplete',
    ],
    [
      'one byte of an artifact flipped',
      (f) => {
        const name = [...f.keys()].find((n) => n.startsWith('artifacts/') && n.endsWith('.png'))!;
        const b = f.get(name)!;
        const at = b.length >> 1;
        b[at] = b[at]! ^ 0x01;
      },
      'artifact_mismatch',
    ],
    [
      'the manifest lying about the mode (full → withheld)',
      (f) => f.set('manifest.json', Buffer.from(f.get('manifest.json')!.toString('utf8').replace('"mode": "full"', '"mode": "withheld"'))),
      'export_record_mismatch',
    ],
  ];

  for (const [what, edit, code] of classes) {
    it(`fails ${what} with ${code}, as witness verify does`, async () => {
      const b = tampered(edit);
      const py = await python(b);
      expect(py.report.verdict).toBe('FAIL');
      expect(py.code).toBe(1);
      expect(codes(py.report)).toContain(code);
      expect(codes(py.report)).not.toContain('file_mismatch');
      // Not only the verdict: both name the same set of failure codes on the same bytes.
      const w = await witness(b);
      expect(w.ok).toBe(false);
      expect(codes(w)).toEqual(codes(py.report));
    });
  }

  it('fails a file changed without its manifest digest (file_mismatch), and a name no v2 bundle has (bundle_invalid)', async () => {
    const changed = tampered((f) => f.set('README.txt', Buffer.concat([f.get('README.txt')!, Buffer.from('more\n')])), { redigest: false });
    // README.txt is also bound by the signed export record (FORMAT.md 7.8).
    expect(codes((await python(changed)).report)).toEqual(['export_record_mismatch', 'file_mismatch']);
    expect(codes(await witness(changed))).toContain('file_mismatch');
    const added = tampered((f) => f.set('keys.txt', Buffer.from(`${vkey}\n`)), { redigest: false });
    expect(codes((await python(added)).report)).toContain('bundle_invalid');
    expect((await witness(added)).ok).toBe(false);
  });

  it('refuses a zip with a ../ name, an absolute name, a symbolic link or a name twice, as one bundle_invalid', async () => {
    const entries = [...genuine].map(([name, data]) => ({ name, data }));
    const hostile: Array<[string, ZipEntry[]]> = [
      ['dotdot', [...entries, { name: '../evil.txt', data: Buffer.from('x') }]],
      ['absolute', [...entries, { name: '/tmp/evil.txt', data: Buffer.from('x') }]],
      ['symlink', [...entries.filter((e) => e.name !== 'README.txt'), { name: 'README.txt', data: Buffer.from('/etc/passwd'), symlink: true }]],
      ['duplicate', [...entries, { name: 'events.jsonl', data: genuine.get('events.jsonl')! }]],
    ];
    const honest = path.join(dir, 'honest-crafted.zip');
    fs.writeFileSync(honest, zip(entries));
    expect((await python(honest)).report.verdict).toBe('PASS');
    for (const [label, list] of hostile) {
      const file = path.join(dir, `${label}.zip`);
      fs.writeFileSync(file, zip(list));
      const py = await python(file);
      expect(
        py.report.failures.map((f) => f.code),
        label,
      ).toEqual(['bundle_invalid']);
      expect(py.code).toBe(1);
      expect((await witness(file)).ok, label).toBe(false);
    }
  });

  it('agrees with every case of the committed v1 tamper corpus (test/fixtures/tamper): verdict, and the first failure code among its own', async () => {
    const corpus = path.join(REPO_ROOT, 'test', 'fixtures', 'tamper');
    const cases = fs.readdirSync(corpus).filter((d) => fs.existsSync(path.join(corpus, d, 'expected.json')) && fs.existsSync(path.join(corpus, d, 'manifest.json')));
    expect(cases.length).toBeGreaterThan(15);
    for (const name of cases) {
      const expected = JSON.parse(fs.readFileSync(path.join(corpus, name, 'expected.json'), 'utf8')) as { ok: boolean; code?: string | null; unverifiable?: boolean };
      const own = path.join(corpus, name, 'trusted.pub');
      const key = fs.readFileSync(fs.existsSync(own) ? own : path.join(corpus, 'trusted.pub'), 'utf8').trim();
      const py = await python(path.join(corpus, name), ['--trusted-key', key]);
      const want = expected.unverifiable === true ? 'UNVERIFIABLE' : expected.ok ? 'PASS' : 'FAIL';
      expect(py.report.verdict, name).toBe(want);
      if (typeof expected.code === 'string') expect(codes(py.report), name).toContain(expected.code);
    }
  });

  it('says UNVERIFIABLE, not PASS, for a bundle version above 2, and exits 2 on bad usage', async () => {
    const newer = tampered((f) => f.set('manifest.json', Buffer.from(f.get('manifest.json')!.toString('utf8').replace('"version": 2', '"version": 3'))));
    const py = await python(newer);
    expect(py.report.verdict).toBe('UNVERIFIABLE');
    expect(py.code).toBe(1);
    expect((await witness(newer)).unverifiable).toBe(true);
    expect((await run(PY, [VERIFIER, path.join(dir, 'no-such-bundle')])).code).toBe(2);
    expect((await run(PY, [VERIFIER])).code).toBe(2);
  });
});

// ------------------------------------------------------------------ the three verifiers, one verdict

interface StandaloneVerifier {
  verifyTarget(target: string, opts?: { trustedKeys?: string[]; requirePayloads?: boolean }): Promise<{ ok: boolean; failures: Array<{ code: string }> }>;
}
let standaloneModule: StandaloneVerifier | undefined;
/** The standalone verifier every bundle carries (src/export/standalone/verify.mjs), called in-process. */
async function standalone(bundle: string): Promise<{ ok: boolean; failures: Array<{ code: string }> }> {
  standaloneModule ??= (await import(pathToFileURL(path.join(REPO_ROOT, 'src', 'export', 'standalone', 'verify.mjs')).href)) as StandaloneVerifier;
  return standaloneModule.verifyTarget(bundle);
}

/** The set of failure codes each of the three verifiers gives `bundle`: witness verify, verify.mjs, verify_bundle.py. */
async function threeVerdicts(bundle: string): Promise<{ witness: string[]; standalone: string[]; python: string[] }> {
  const [w, s, p] = await Promise.all([witness(bundle), standalone(bundle), python(bundle)]);
  return { witness: codes(w), standalone: codes(s), python: codes(p.report) };
}
const agree = (want: string[]) => ({ witness: want, standalone: want, python: want });

describe('witness verify, verify.mjs and the independent verifier agree where their authors found they did not (issue 14)', () => {
  /** A ledger whose session carries a header label of 3,000 emoji (6,000 UTF-16 units; 3,000 code points). */
  let emoji: Files;
  let emojiDir: string;
  beforeAll(async () => {
    const file = path.join(dir, 'emoji.db');
    const w = await openWitness({ store: `sqlite:${file}`, name: 'emoji', strict: true });
    const s = await w.session({ agent: { id: 'support-bot' }, user: '\u{1F600}'.repeat(3000), purpose: 'a long label' });
    await s.note('counted in code points');
    await s.end();
    await w.close();
    emojiDir = path.join(dir, 'emoji-bundle');
    const e = await runBin(['export', '--store', `sqlite:${file}`, '--session', s.id, '--as', 'auditor', '-o', emojiDir]);
    expect(e.code, e.stderr).toBe(0);
    emoji = readTree(emojiDir);
  }, 120_000);

  it('pass a header label of 3,000 emoji that the SDK recorded (the cap of 4,096 counts code points, not UTF-16 units)', async () => {
    const line = lines(emoji.get('events.jsonl')!).find((l) => l.includes('\u{1F600}'))!;
    expect((JSON.parse(line) as { user: string }).user.length).toBe(6000);
    expect(await threeVerdicts(emojiDir)).toEqual(agree([]));
  });

  it('refuse a header label of 4,097 emoji as invalid_header, and only that (the event keeps its place in scope and in the tree)', async () => {
    const b = tampered(
      (f) => {
        const l = lines(f.get('events.jsonl')!);
        // The stream's last event (its session.end): left out of the chain, nothing after it to break.
        const i = l.findIndex((x) => (JSON.parse(x) as { kind: string }).kind === 'session.end');
        l[i] = l[i]!.replace('{', `{"resource":"${'\u{1F600}'.repeat(4097)}",`);
        f.set('events.jsonl', unlines(l));
      },
      { from: emoji },
    );
    expect(await threeVerdicts(b)).toEqual(agree(['invalid_header']));
  });

  it('fail an index entry of populations/index.json whose title, query or predicate was edited with population_mismatch, and export_record_mismatch (the signed record binds the index)', async () => {
    for (const edit of [
      (e: Record<string, unknown>) => void (e['title'] = 'Nothing to see here'),
      (e: Record<string, unknown>) => void (e['query'] = 'witness query --kind note'),
      (e: Record<string, unknown>) => void (e['predicate'] = { kinds: ['note'] }),
    ]) {
      const b = tampered((f) => {
        const index = JSON.parse(f.get('populations/index.json')!.toString('utf8')) as { populations: Array<Record<string, unknown>> };
        edit(index.populations[1]!);
        f.set('populations/index.json', Buffer.from(JSON.stringify(index, null, 2)));
      });
      expect(await threeVerdicts(b)).toEqual(agree(['export_record_mismatch', 'population_mismatch']));
    }
  });

  it("fail a manifest whose in_scope is not the signed export record's with export_record_mismatch alone", async () => {
    const b = tampered((f) => {
      const m = JSON.parse(f.get('manifest.json')!.toString('utf8')) as { in_scope: number };
      m.in_scope -= 1;
      f.set('manifest.json', Buffer.from(JSON.stringify(m, null, 2)));
    });
    expect(await threeVerdicts(b)).toEqual(agree(['export_record_mismatch']));
  });

  it("fail a manifest whose ledger origin was changed with checkpoint_invalid alone (the signed note's origin line is the one believed)", async () => {
    const b = tampered((f) => {
      const m = JSON.parse(f.get('manifest.json')!.toString('utf8')) as { ledger: { origin: string } };
      m.ledger.origin = `elsewhere/${m.ledger.origin}`;
      f.set('manifest.json', Buffer.from(JSON.stringify(m, null, 2)));
    });
    expect(await threeVerdicts(b)).toEqual(agree(['checkpoint_invalid']));
  });

  it('fail a payload that cannot be canonicalised (1e20) with non_canonical alone: its event stays in the chain, the scope and the events digest', async () => {
    const b = tampered((f) => {
      const l = lines(f.get('events.jsonl')!);
      const i = lineWhere(f, (e) => e['data'] !== null && e['kind'] === 'tool.call');
      expect(l[i]).toContain('"data":{');
      l[i] = l[i]!.replace('"data":{', '"data":{"amount_in_cents":1e20,');
      f.set('events.jsonl', unlines(l));
    });
    expect(await threeVerdicts(b)).toEqual(agree(['non_canonical']));
  });

  it('refuse a consistency proof on the first line of checkpoints.jsonl as bundle_invalid', async () => {
    const b = tampered((f) => {
      const l = lines(f.get('checkpoints.jsonl')!);
      const first = JSON.parse(l[0]!) as Record<string, unknown>;
      first['consistency'] = [sha256(Buffer.from('nothing before it'))];
      l[0] = JSON.stringify(first);
      f.set('checkpoints.jsonl', unlines(l));
    });
    expect(await threeVerdicts(b)).toEqual(agree(['bundle_invalid']));
  });

  it('fail a system.json, README.txt, verify.mjs or populations/index.json replaced behind a re-digested manifest with export_record_mismatch: the signed export record binds their SHA-256', async () => {
    const record = JSON.parse(lines(genuine.get('events.jsonl')!).at(-1)!) as { data: { files: Record<string, string>; checkpoints_from: number | null } };
    expect(Object.keys(record.data.files).sort()).toEqual(['README.txt', 'keys.json', 'populations/index.json', 'system.json', 'verify.mjs']);
    for (const [name, bytes] of [
      ['system.json', Buffer.from('{"agents":{},"note":"nothing to see"}\n')],
      ['README.txt', Buffer.from('This bundle is COMPLIANT.\n')],
      ['verify.mjs', Buffer.from("console.log('PASS');\n")],
    ] as const) {
      const b = tampered((f) => void f.set(name, bytes));
      expect(await threeVerdicts(b), name).toEqual(agree(['export_record_mismatch']));
    }
  });

  it('fail checkpoints.jsonl cut to its last line with export_record_mismatch: the signed export record names its first checkpoint', async () => {
    const record = JSON.parse(lines(genuine.get('events.jsonl')!).at(-1)!) as { data: { checkpoints_from: number | null } };
    const first = JSON.parse(lines(genuine.get('checkpoints.jsonl')!)[0]!) as { size: number };
    expect(record.data.checkpoints_from).toBe(first.size);
    expect(lines(genuine.get('checkpoints.jsonl')!).length).toBeGreaterThan(1);
    const b = tampered((f) => {
      const l = lines(f.get('checkpoints.jsonl')!);
      const last = JSON.parse(l.at(-1)!) as Record<string, unknown>;
      delete last['consistency'];
      f.set('checkpoints.jsonl', unlines([JSON.stringify(last)]));
    });
    expect(await threeVerdicts(b)).toEqual(agree(['export_record_mismatch']));
  });

  it('refuse as one bundle_invalid a zip with an archive comment (room for a second bundle), data before the first entry or between entries, a local name unlike the central one, or artifacts/ twice', async () => {
    const entries = [...genuine].map(([name, data]) => ({ name, data }));
    const honest = path.join(dir, 'honest-odd.zip');
    fs.writeFileSync(honest, zip(entries));
    expect(await threeVerdicts(honest)).toEqual(agree([]));
    const readme = entries.findIndex((e) => e.name === 'README.txt');
    const hostile: Array<[string, Buffer]> = [
      ['comment', zip(entries, { comment: Buffer.from('a second central directory could hide here') })],
      ['prefix', zip(entries, { prefix: Buffer.from('#!/bin/sh\necho PASS\n') })],
      ['gap', zip(entries, { gapAfter: { index: 0, bytes: Buffer.from('hidden bytes') } })],
      ['local-name', zip(entries, { localName: { index: readme, name: 'READMX.txt' } })],
      ['dir-twice', zip([{ name: 'artifacts/', data: Buffer.alloc(0) }, ...entries, { name: 'artifacts/', data: Buffer.alloc(0) }])],
    ];
    for (const [label, bytes] of hostile) {
      const file = path.join(dir, `odd-${label}.zip`);
      fs.writeFileSync(file, bytes);
      expect(await threeVerdicts(file), label).toEqual(agree(['bundle_invalid']));
      expect((await python(file)).report.failures, label).toHaveLength(1);
    }
  });

  it('fail a format-1 bundle declaring withheld whose events still carry payloads (payload_unexpected), and say that format 1 declares withholding only in the unsigned manifest', async () => {
    const tamper = path.join(REPO_ROOT, 'test', 'fixtures', 'tamper');
    const withheld = readTree(path.join(tamper, 'withheld'));
    const original = readTree(path.join(tamper, 'original'));
    const genuineV1 = writeTree(path.join(dir, 'v1-withheld'), withheld);
    const w = await runBin(['verify', genuineV1, '--json', '--trusted-key', fs.readFileSync(path.join(tamper, 'trusted.pub'), 'utf8').trim()]);
    const verdict = JSON.parse(w.stdout) as WitnessReport & { warnings: string[] };
    expect(verdict.ok).toBe(true);
    expect(verdict.warnings.join(' ')).toMatch(/leaves 0, 2–3, 5–6, 8\. A bundle of format 1 declares withholding only in the unsigned manifest\.json/);
    // A v2 bundle's payloads pasted back into a v1 manifest that still says withheld: nothing signed says which events may carry one.
    const b = tampered(
      (f) => {
        const l = lines(f.get('events.jsonl')!);
        l[1] = lines(original.get('events.jsonl')!)[1]!;
        f.set('events.jsonl', unlines(l));
      },
      { from: withheld },
    );
    expect(codes(await witness(b))).toEqual(['payload_unexpected']);
    expect(codes((await python(b)).report)).toEqual(['payload_unexpected']);
    expect((await witness(genuineV1, ['--require-payloads'])).ok).toBe(false);
    expect((await python(genuineV1, ['--require-payloads'])).report.verdict).toBe('FAIL');
  });

  it('print the same span and scope lines as witness verify, say "intact, but signed only by keys carried inside the bundle" without a pinned key, that report.html is a reading aid, and survive a closed pipe', async () => {
    const demo = path.join(dir, 'demo');
    const bundle = path.join(
      demo,
      fs.readdirSync(demo).find((n) => n.startsWith('evidence-'))!,
    );
    const mjs = path.join(REPO_ROOT, 'dist', 'export', 'standalone', 'verify.mjs');
    const texts = {
      witness: (await runBin(['verify', bundle])).stdout,
      standalone: (await run(process.execPath, [mjs, bundle])).stdout,
      python: (await run(PY, [VERIFIER, bundle])).stdout,
    };
    const pick = (t: string, tag: string) => t.split('\n').find((l) => l.startsWith(`  ${tag}:`));
    const span = pick(texts.witness, 'span');
    const scope = pick(texts.witness, 'scope');
    expect(span).toMatch(/^ {2}span: {2}leaves \d+–\d+ \(\d+ events\), \d+ in scope; mode full; export event at leaf \d+$/);
    expect(scope).toMatch(/^ {2}scope: sessions /);
    for (const [who, text] of Object.entries(texts)) {
      expect(pick(text, 'span'), who).toBe(span);
      expect(pick(text, 'scope'), who).toBe(scope);
      expect(text, who).toMatch(/intact, but signed only by keys carried inside the bundle — pin the key from your own record \(--trusted-key\)/);
      expect(text, who).toContain('report.html is a reading aid that is not signed and was not checked; the verified events are events.jsonl');
    }
    const pinned = (await runBin(['verify', bundle, '--trusted-key', vkey])).stdout;
    expect(pinned).toMatch(/✔ .* is intact: /);
    // A refused zip relied on nothing: no verdict may say its hash chains were.
    const refused = path.join(dir, 'odd-comment.zip');
    for (const text of [(await runBin(['verify', refused])).stdout, (await run(process.execPath, [mjs, refused])).stdout]) expect(text).not.toMatch(/hash chains were/);
    // `| head -1` closes the pipe after the first line: a passing bundle still exits 0.
    const piped = await run('/bin/sh', ['-c', `${PY} ${VERIFIER} ${bundle} | head -1 >/dev/null; exit \${PIPESTATUS:-0}`]);
    expect(piped.stderr).toBe('');
    const epipe = await run('/bin/bash', ['-c', `set -o pipefail; ${PY} ${VERIFIER} ${bundle} --trusted-key '${vkey}' | head -c 1 >/dev/null`]);
    expect(epipe.stderr).toBe('');
    expect(epipe.code).toBe(0);
  });

  it('skip a whitespace-only line of events.jsonl as FORMAT.md 2.1 says, all three alike', async () => {
    const b = tampered((f) => {
      const l = lines(f.get('events.jsonl')!);
      l.splice(2, 0, '   \t');
      f.set('events.jsonl', unlines(l));
    });
    expect(await threeVerdicts(b)).toEqual(agree([]));
  });

  it("pass the demo's own bundle, whose report.html the manifest lists", async () => {
    const demo = path.join(dir, 'demo');
    const bundle = path.join(
      demo,
      fs.readdirSync(demo).find((n) => n.startsWith('evidence-'))!,
    );
    const m = JSON.parse(fs.readFileSync(path.join(bundle, 'manifest.json'), 'utf8')) as { files: Record<string, string> };
    expect(m.files['report.html']).toBe(sha256(fs.readFileSync(path.join(bundle, 'report.html'))));
    expect(fs.readFileSync(path.join(bundle, 'report.html'), 'utf8')).toContain('<html');
    // report.html cannot be bound by the signed export record, and its integrity section says so.
    expect(fs.readFileSync(path.join(bundle, 'report.html'), 'utf8')).toContain('This report is a reading aid not covered by the signature.');
    expect(await threeVerdicts(bundle)).toEqual(agree([]));
  });
});
