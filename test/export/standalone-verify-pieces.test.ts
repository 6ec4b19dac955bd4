import fs, { readFileSync } from 'node:fs';
import zlib from 'node:zlib';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { canonicalize, eventHash, genesisHash, payloadDigest, strictParse, type EventHeader } from '../../src/core/index.js';
import { exportBundle, verifyBundle as tsVerifyBundle, verifyZipBundle as tsVerifyZipBundle } from '../../src/export/index.js';
import { ScopeTracker as TsScopeTracker } from '../../src/export/populations.js';
import { SqliteLedger } from '../../src/store/index.js';
import { REPO_ROOT, buildLedger, readEvents, type BuiltLedger } from '../helpers/ledger.js';
import { randomJsonValue, rng } from '../helpers/random.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * The pieces of the standalone verifier (src/export/standalone/verify.mjs, plain JavaScript with no
 * dependency) held against known answers — the RFC 8785 and transparency-dev vectors — and against
 * what Witness's own TypeScript core computes on a real ledger: hashes, proofs, signed notes, scope.
 */

interface Standalone {
  jcs(v: unknown): string;
  strictParse(text: string): unknown;
  genesisHex(origin: string, stream: string): string;
  payloadDigestHex(saltHex: string, dataJcs: string): string;
  eventHashHex(prevHex: string, headerJcs: string): string;
  leafHash(entry: Uint8Array): Buffer;
  rootFromInclusionProof(leaf: Buffer, index: number, size: number, proof: Buffer[]): { root?: Buffer; reason?: string };
  consistencyProblem(oldSize: number, newSize: number, proof: Buffer[], oldRoot: Buffer, newRoot: Buffer): string | undefined;
  parseVerifierKey(vkey: string): { name: string; keyHash: number; fingerprint: string };
  openNote(note: string, verifiers: unknown[]): { text: string; verified: Array<{ fingerprint: string }> };
  parseCheckpoint(text: string): { origin: string; size: number; root: Buffer; extensions: string[] };
  headerProblem(h: Record<string, unknown>): string | undefined;
  crc32Table(crc: number, buf: Buffer): number;
  ScopeTracker: new (scope: { since: string | null; until: string | null; agents: string[] | null; sessions: string[] | null }) => { inScope(e: unknown): boolean };
}

const FILE = path.join(REPO_ROOT, 'src', 'export', 'standalone', 'verify.mjs');
let S: Standalone;
const jcsFixture = (name: string): string => readFileSync(path.join(REPO_ROOT, 'test', 'fixtures', 'jcs', name), 'utf8');

beforeAll(async () => {
  S = (await import(pathToFileURL(FILE).href)) as Standalone;
});

describe('the standalone verifier’s RFC 8785 canonical JSON', () => {
  it('reproduces the RFC’s Section 3.2.2 and 3.2.3 examples and the reference test data byte for byte', () => {
    expect(S.jcs(S.strictParse(jcsFixture('rfc8785-3.2.2-input.json')))).toBe(jcsFixture('rfc8785-3.2.2-output.json'));
    expect(S.jcs(S.strictParse(jcsFixture('rfc8785-3.2.3-sorting-input.json')))).toBe(jcsFixture('rfc8785-3.2.3-sorting-output.json'));
    for (const name of ['arrays', 'french', 'structures', 'values', 'weird']) {
      expect(S.jcs(S.strictParse(jcsFixture(`input/${name}.json`)))).toBe(jcsFixture(`output/${name}.json`).replace(/\n+$/, ''));
    }
  });

  it('serialises every Appendix B number the way the RFC prints it, and refuses the integers beyond 2^53', () => {
    const b = JSON.parse(jcsFixture('rfc8785-appendix-b.json')) as { valid: Array<{ ieee754: string; json: string }> };
    for (const v of b.valid) {
      const view = new DataView(new ArrayBuffer(8));
      view.setBigUint64(0, BigInt(`0x${v.ieee754}`));
      const n = view.getFloat64(0);
      if (/^-?\d+$/.test(v.json) && !Number.isSafeInteger(Number(v.json))) expect(() => S.jcs(n)).toThrow(/2\^53/);
      else expect(S.jcs(n)).toBe(v.json);
    }
  });

  it('agrees with the core’s canonicalize on 2,000 random JSON values', () => {
    const r = rng(14);
    for (let i = 0; i < 2000; i++) {
      const v = randomJsonValue(r);
      const text = canonicalize(v);
      expect(S.jcs(S.strictParse(text))).toBe(text);
      expect(S.jcs(S.strictParse(JSON.stringify(v, null, 2)))).toBe(text);
    }
  });
});

describe('the standalone verifier’s strict JSON', () => {
  it.each([
    ['a duplicate member name', '{"a":1,"a":2}', /duplicate/],
    ['an integer beyond 2^53', '{"n":9007199254740993}', /2\^53/],
    ['a lone surrogate', '"\\ud800"', /surrogate/],
    ['a byte order mark', '\ufeff{}', /byte order mark/],
    ['trailing text', '{} x', /after the value/],
    ['a number that overflows', '1e400', /too large/],
    ['a leading zero', '01', /after the value/],
  ])('refuses %s, as the core does', (_what, text, why) => {
    expect(() => S.strictParse(text)).toThrow(why);
    expect(() => strictParse(text)).toThrow();
  });

  it('reads "__proto__" as an ordinary member', () => {
    const v = S.strictParse('{"__proto__":{"x":1},"a":2}') as Record<string, unknown>;
    expect(Object.keys(v)).toEqual(['__proto__', 'a']);
    expect(S.jcs(v)).toBe('{"__proto__":{"x":1},"a":2}');
  });
});

describe('the standalone verifier’s CRC-32 for Node versions without zlib.crc32', () => {
  it('equals zlib’s, in one piece and carried over chunks', () => {
    const data = Buffer.from(Array.from({ length: 100_000 }, (_, i) => (i * 7919) % 256));
    expect(S.crc32Table(0, data)).toBe(zlib.crc32(data));
    expect(S.crc32Table(S.crc32Table(0, data.subarray(0, 333)), data.subarray(333))).toBe(zlib.crc32(data));
    expect(S.crc32Table(0, Buffer.alloc(0))).toBe(0);
  });
});

describe('the standalone verifier’s RFC 9162 proofs', () => {
  const V = JSON.parse(readFileSync(path.join(REPO_ROOT, 'test', 'fixtures', 'merkle', 'transparency-dev-vectors.json'), 'utf8')) as {
    leafInputs: string[];
    rootHashes: string[];
    inclusionProofs: Array<{ index: number; size: number; proof: string[] }>;
    consistencyProofs: Array<{ oldSize: number; newSize: number; proof: string[] }>;
  };
  const hex = (s: string) => Buffer.from(s, 'hex');

  it('checks every transparency-dev inclusion proof, and fails each one with any single step altered', () => {
    for (const v of V.inclusionProofs) {
      const leaf = S.leafHash(hex(V.leafInputs[v.index]!));
      const proof = v.proof.map(hex);
      expect(S.rootFromInclusionProof(leaf, v.index, v.size, proof).root?.toString('hex')).toBe(V.rootHashes[v.size]);
      for (let i = 0; i < proof.length; i++) {
        const bad = proof.map((p, j) => (j === i ? Buffer.from(p.map((b, k) => (k === 0 ? b ^ 1 : b))) : p));
        expect(S.rootFromInclusionProof(leaf, v.index, v.size, bad).root?.toString('hex')).not.toBe(V.rootHashes[v.size]);
      }
      expect(S.rootFromInclusionProof(leaf, v.index, v.size, [...proof, hex(V.rootHashes[1]!)]).root).toBeUndefined();
    }
  });

  it('checks every transparency-dev consistency proof, and refuses one with a step dropped', () => {
    for (const v of V.consistencyProofs) {
      const proof = v.proof.map(hex);
      expect(S.consistencyProblem(v.oldSize, v.newSize, proof, hex(V.rootHashes[v.oldSize]!), hex(V.rootHashes[v.newSize]!))).toBeUndefined();
      if (proof.length > 0) expect(S.consistencyProblem(v.oldSize, v.newSize, proof.slice(1), hex(V.rootHashes[v.oldSize]!), hex(V.rootHashes[v.newSize]!))).toBeDefined();
    }
  });
});

describe('the standalone verifier on a real ledger written by Witness', () => {
  const dir = tempDir('witness-standalone-pieces-');
  let base: BuiltLedger;
  beforeAll(async () => {
    base = await buildLedger(dir);
  });

  it('recomputes every payload digest, event hash and genesis exactly as the core does', async () => {
    const events = await readEvents(base.file);
    expect(events.length).toBe(base.size);
    for (const e of events) {
      const { data, salt, hash, pos: _pos, ...header } = e as unknown as Record<string, unknown> & { data: unknown; salt: string; hash: string; pos: number };
      const headerText = S.jcs(S.strictParse(JSON.stringify(header)));
      expect(headerText).toBe(canonicalize(header));
      expect(S.headerProblem(S.strictParse(JSON.stringify(header)) as Record<string, unknown>)).toBeUndefined();
      const dataText = S.jcs(S.strictParse(JSON.stringify(data)));
      expect(S.payloadDigestHex(salt, dataText)).toBe(payloadDigest(Buffer.from(salt, 'hex'), canonicalize(data)).toString('hex'));
      expect(S.payloadDigestHex(salt, dataText)).toBe(header['payload_digest']);
      expect(S.eventHashHex(header['prev'] as string, headerText)).toBe(hash);
      expect(S.eventHashHex(header['prev'] as string, headerText)).toBe(eventHash(Buffer.from(header['prev'] as string, 'hex'), canonicalize(header)).toString('hex'));
      if (header['seq'] === 0) expect(S.genesisHex(base.origin, header['stream'] as string)).toBe(genesisHash(base.origin, header['stream'] as string).toString('hex'));
    }
  });

  it('opens every checkpoint the sealer signed with the ledger’s key, and proves each event and each checkpoint step from the stored proofs', async () => {
    const key = S.parseVerifierKey(base.vkey);
    expect(key.fingerprint).toBe(base.vkey.split('+').slice(0, 2).join('+'));
    const ledger = SqliteLedger.open({ path: base.file, create: false, readonly: true });
    try {
      const events = await readEvents(base.file);
      let prev: { size: number; root: Buffer } | undefined;
      for (const row of base.checkpoints) {
        const opened = S.openNote(row.note, [key]);
        expect(opened.verified.map((v) => v.fingerprint)).toEqual([key.fingerprint]);
        const cp = S.parseCheckpoint(opened.text);
        expect(cp.origin).toBe(base.origin);
        expect(cp.size).toBe(row.size);
        expect(cp.root.equals(row.root)).toBe(true);
        if (prev !== undefined) {
          const proof = (await ledger.consistencyProof(prev.size, cp.size)).map((b) => Buffer.from(b));
          expect(S.consistencyProblem(prev.size, cp.size, proof, prev.root, cp.root)).toBeUndefined();
          expect(S.consistencyProblem(prev.size, cp.size, proof, prev.root, Buffer.alloc(32))).toMatch(/does not reproduce/);
        }
        for (const e of events.filter((x) => x.pos < cp.size)) {
          const proof = (await ledger.inclusionProof(e.pos, cp.size)).map((b) => Buffer.from(b));
          const leaf = S.leafHash(Buffer.from(e.hash, 'hex'));
          expect(S.rootFromInclusionProof(leaf, e.pos, cp.size, proof).root?.equals(cp.root)).toBe(true);
        }
        prev = { size: cp.size, root: cp.root };
      }
    } finally {
      await ledger.close();
    }
  });

  it('refuses a checkpoint whose signature was altered, and one signed by no trusted key', () => {
    const key = S.parseVerifierKey(base.vkey);
    const note = base.checkpoints[0]!.note;
    const sigLine = note.trimEnd().split('\n').pop()!;
    const b64 = sigLine.split(' ').pop()!;
    const raw = Buffer.from(b64, 'base64');
    raw[10] = raw[10]! ^ 1;
    const forged = note.replace(b64, raw.toString('base64'));
    expect(() => S.openNote(forged, [key])).toThrow(expect.objectContaining({ code: 'checkpoint_signature' }) as Error);
    expect(() => S.openNote(note, [])).toThrow(expect.objectContaining({ code: 'checkpoint_signature' }) as Error);
    expect(() => S.openNote(note.replace(/\n\n/, '\n'), [key])).toThrow();
  });

  it('decides scope as the TypeScript ScopeTracker does, for sessions, agents and time windows', async () => {
    const events = await readEvents(base.file);
    const times = events.map((e) => e.ts).sort();
    const scopes = [
      { since: null, until: null, agents: null, sessions: [base.sessions.a] },
      { since: null, until: null, agents: ['billing-bot'], sessions: null },
      { since: times[3]!, until: times[9]!, agents: null, sessions: null },
      { since: times[2]!, until: null, agents: ['support-bot', 'ops-bot'], sessions: [base.sessions.a, base.sessions.c] },
    ];
    for (const scope of scopes) {
      const mine = new S.ScopeTracker(scope);
      const theirs = new TsScopeTracker(scope);
      for (const e of events) expect(mine.inScope(e)).toBe(theirs.inScope(e as unknown as EventHeader));
    }
  });

  it('compares ts with since/until as strings, as the TypeScript ScopeTracker does, also for a ts that is no real instant', () => {
    const scope = { since: '2026-11-30T00:00:00.000Z', until: '2026-12-01T00:00:00.000Z', agents: null, sessions: null };
    const at = (ts: string) => ({ id: ts, stream: 's', seq: 0, kind: 'note', ts, agent: { id: 'a' } });
    // 11-31 and T24:00 are no instants (Date.parse rolls them into December); 10:05:60 sorts as its text.
    for (const ts of ['2026-11-31T10:00:00.000Z', '2026-11-30T24:00:00.000Z', '2026-11-30T10:05:60.000Z', '2026-11-30T10:00:00Z', '2026-12-01T00:00:00.000Z', '2026-11-29T23:59:59.999Z']) {
      const mine = new S.ScopeTracker(scope);
      const theirs = new TsScopeTracker(scope);
      expect(mine.inScope(at(ts)), ts).toBe(theirs.inScope(at(ts) as unknown as EventHeader));
    }
    expect(new S.ScopeTracker(scope).inScope(at('2026-11-31T10:00:00.000Z'))).toBe(true);
  });
});

describe('the standalone verifier on hostile bytes', () => {
  const dir = tempDir('witness-standalone-fuzz-');
  let bundle: string;
  let zip: string;
  beforeAll(async () => {
    const base = await buildLedger(dir);
    const ledger = SqliteLedger.open({ path: base.file, create: false });
    try {
      const scope = { since: null, until: null, agents: null, sessions: [base.sessions.a], regimes: [] };
      bundle = (await exportBundle(ledger, scope, path.join(dir, 'bundle'))).dir;
      zip = (await exportBundle(ledger, { ...scope, sessions: [base.sessions.b] }, path.join(dir, 'bundle.zip'))).dir;
    } finally {
      await ledger.close();
    }
  }, 60_000);

  it('turns 300 random byte edits of the files it reads into the verdict and first failure code witness verify gives, never an exception', async () => {
    const V = S as unknown as { openSource(p: string): unknown; verifyBundle(src: unknown): Promise<{ ok: boolean; failures: Array<{ code: string }> }> };
    expect((await V.verifyBundle(V.openSource(bundle))).ok).toBe(true);
    const files = ['events.jsonl', 'proofs.jsonl', 'checkpoints.jsonl', 'checkpoint.txt', 'manifest.json', 'keys.json', 'populations/index.json', 'system.json'];
    const r = rng(1414);
    const work = path.join(dir, 'work');
    for (let i = 0; i < 300; i++) {
      fs.rmSync(work, { recursive: true, force: true });
      fs.cpSync(bundle, work, { recursive: true });
      const file = path.join(work, files[i % files.length]!);
      const bytes = fs.readFileSync(file);
      const at = Math.floor(r() * bytes.length);
      const how = Math.floor(r() * 3);
      const edited = how === 0 ? Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + 1)]) : Buffer.from(bytes);
      if (how === 1) edited[at] = (edited[at]! + 1 + Math.floor(r() * 255)) % 256; // never the byte it was
      if (how === 2) edited[at] = edited[at]! ^ (1 << Math.floor(r() * 8));
      fs.writeFileSync(file, edited);
      const report = await V.verifyBundle(V.openSource(work));
      const theirs = tsVerifyBundle(work);
      const what = `edit ${i} of ${files[i % files.length]!} at byte ${at}: ${JSON.stringify(report.failures.slice(0, 3))} vs ${JSON.stringify(theirs.failures.slice(0, 3))}`;
      // manifest.json is not signed: an edit of its spacing or of a field nothing binds (created_at)
      // passes both verifiers; every other file is covered by the manifest's digests.
      if (!file.endsWith('manifest.json')) expect(report.ok, what).toBe(false);
      expect([what, report.ok, report.failures[0]?.code]).toEqual([what, theirs.ok, theirs.failures[0]?.code]);
    }
  }, 120_000);

  it('gives 100 zips with one bit flipped anywhere the verdict and first failure code witness verify gives, never an exception', async () => {
    const V = S as unknown as { verifyTarget(p: string): Promise<{ ok: boolean; failures: Array<{ code: string; reason: string }> }> };
    const bytes = fs.readFileSync(zip);
    const r = rng(5);
    for (let i = 0; i < 100; i++) {
      const edited = Buffer.from(bytes);
      const at = Math.floor(r() * edited.length);
      edited[at] = edited[at]! ^ (1 << Math.floor(r() * 8));
      const file = path.join(dir, `flipped-${i}.zip`);
      fs.writeFileSync(file, edited);
      const mine = await V.verifyTarget(file);
      const theirs = await tsVerifyZipBundle(file);
      const what = `bit flip at byte ${at}: ${JSON.stringify(mine.failures[0])} vs ${JSON.stringify(theirs.failures[0])}`;
      expect([what, mine.ok, mine.failures[0]?.code]).toEqual([what, theirs.ok, theirs.failures[0]?.code]);
      fs.rmSync(file);
    }
  }, 120_000);
});
