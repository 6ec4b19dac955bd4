import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { canonicalize, eventHash, generateKey, parseCheckpoint, parseSignerKey, sha256Hex, signCheckpoint } from '../../src/core/index.js';
import { exportBundle, verifyBundle, type BundleScope, type BundleVerifyReport } from '../../src/export/index.js';
import { SqliteLedger } from '../../src/store/index.js';
import { tempDir } from '../helpers/tmp.js';
import { buildDemoLedger } from './export-v2-fixture.js';
import { buildV2Bundle, readEvents, refreshManifest, sampleLedger, writeEvents, type Built } from './verify-v2-fixture.js';

/**
 * `witness verify` on evidence bundles of format 2: a genuine bundle (from `exportBundle` and from
 * the independent fixture writer) passes, and each tamper class of the format-1 negative corpus
 * (test/fixtures/tamper), redone on a v2 bundle, is caught with its code, as are the failures only
 * v2 can have: a gap in the span, an incomplete population, a mode the signed export record does
 * not say, a stripped payload, a payload outside the scope, a file changed behind the manifest.
 */

const dir = tempDir('witness-verify-v2-');
let n = 0;
const REFUND: Partial<BundleScope> = { sessions: ['s-refund'] };

function fresh(opts: Parameters<typeof buildV2Bundle>[2] = { scope: REFUND }): Built {
  n++;
  return buildV2Bundle(path.join(dir, `b${n}`), sampleLedger(), opts);
}

function verify(b: Built, extra: { requirePayloads?: boolean; trustedKeys?: string[] } = {}): BundleVerifyReport {
  return verifyBundle(b.dir, { trustedKeys: [b.vkey], ...extra });
}

/** The leaf of the first event of `stream` with `kind` in the fixture's bundle. */
function leafOf(b: Built, kind: string, stream = 's-refund'): number {
  const e = readEvents(b.dir).find((x) => x['kind'] === kind && x['stream'] === stream);
  return e!['leaf'] as number;
}

function expectFirst(r: BundleVerifyReport, code: string, where: { leaf?: number } = {}): void {
  expect(r.ok, JSON.stringify(r.failures.slice(0, 3))).toBe(false);
  expect(r.failures.map((f) => f.code)).toContain(code);
  expect(r.first?.code).toBe(code);
  if (where.leaf !== undefined) expect(r.first?.leaf).toBe(where.leaf);
}

/** Drops the proof line of `leaf` from proofs.jsonl. */
function dropProof(b: Built, leaf: number): void {
  const file = path.join(b.dir, 'proofs.jsonl');
  const kept = fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '' && (JSON.parse(l) as { leaf: number }).leaf !== leaf);
  fs.writeFileSync(file, kept.map((l) => `${l}\n`).join(''));
}

describe('a genuine format-2 bundle', () => {
  it('from the fixture writer verifies, and the verdict says what it rests on: pinned key, span, mode, scope, populations, every event without payload and why', () => {
    const b = fresh();
    const r = verify(b);
    expect(r.failures).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.trust.keys.map((k) => k.source)).toEqual(['pinned']);
    expect(r.checkpoints).toBe(2);
    expect(r.bundle).toMatchObject({
      version: 2,
      mode: 'full',
      span: b.manifest.span,
      inScope: b.manifest.in_scope,
      exportEvent: b.manifest.export_event,
      artifacts: 1,
    });
    expect(r.bundle!.populations.find((p) => p.name === 'denials')?.count).toBe(1);
    expect(r.bundle!.populations.find((p) => p.name === 'approvals')?.count).toBe(1);
    // s-other's three events in the span travel as headers only.
    expect(r.bundle!.withoutPayload.every((w) => w.reason === 'out_of_scope')).toBe(true);
    expect(r.bundle!.withoutPayloadCount).toBe(3);
    const unpinned = verifyBundle(b.dir);
    expect(unpinned.ok).toBe(true);
    expect(unpinned.trust.keys.map((k) => k.source)).toEqual(['bundle']);
    expect(unpinned.trust.statement).toMatch(/shipped inside the bundle/);
  });

  it('withheld verifies with every in-scope event listed as withheld by export mode and no artifact', () => {
    const b = fresh({ scope: REFUND, mode: 'withheld' });
    const r = verify(b);
    expect(r.failures).toEqual([]);
    expect(r.bundle!.mode).toBe('withheld');
    const reasons = new Map<string, number>();
    for (const w of r.bundle!.withoutPayload) reasons.set(w.reason, (reasons.get(w.reason) ?? 0) + w.to - w.from);
    expect(reasons.get('withheld')).toBe(b.manifest.in_scope);
    expect(reasons.get('out_of_scope')).toBe(3);
    expect(fs.existsSync(path.join(b.dir, 'artifacts'))).toBe(false);
  });

  it('--require-payloads fails a bundle with any event without payload, naming the leaves and why, and passes one without', () => {
    const b = fresh();
    const r = verify(b, { requirePayloads: true });
    expect(r.ok).toBe(false);
    expect(r.failures.every((f) => f.code === 'payload_missing')).toBe(true);
    expect(r.failures[0]!.reason).toMatch(/out of scope.*--require-payloads/);
    // A time window holding only s-refund's first events: nothing out of scope in the span.
    const all = fresh({ scope: { agents: ['refund-bot'], since: '2026-11-23T10:00:04.000Z', until: '2026-11-23T10:00:05.000Z' } });
    const ok = verify(all, { requirePayloads: true });
    expect(ok.failures).toEqual([]);
  });

  describe('written by exportBundle from a real SQLite ledger', () => {
    let out: { dir: string; withheld: string; vkey: string };
    beforeAll(async () => {
      fs.mkdirSync(path.join(dir, 'demo'));
      const demo = await buildDemoLedger(path.join(dir, 'demo'));
      const ledger = SqliteLedger.open({ path: demo.file, create: false });
      try {
        const none: BundleScope = { since: null, until: null, agents: null, sessions: null, regimes: [] };
        await exportBundle(ledger, { ...none, sessions: [demo.sessions.s1] }, path.join(dir, 'real'), { actor: 'auditor@corp' });
        await exportBundle(ledger, { ...none, agents: ['billing-bot'] }, path.join(dir, 'real-withheld.zip'), { actor: 'auditor@corp', withholdData: true });
      } finally {
        await ledger.close();
      }
      const keys = JSON.parse(fs.readFileSync(path.join(dir, 'real', 'keys.json'), 'utf8')) as { keys: Array<{ vkey: string }> };
      out = { dir: path.join(dir, 'real'), withheld: path.join(dir, 'real-withheld.zip'), vkey: keys.keys[0]!.vkey };
    }, 60_000);

    it('verifies, its session video and screenshots re-hashed under their extensions', async () => {
      const r = verifyBundle(out.dir, { trustedKeys: [out.vkey] });
      expect(r.failures).toEqual([]);
      expect(r.ok).toBe(true);
      expect(r.bundle!.artifacts).toBeGreaterThanOrEqual(3);
      const { verifyZipBundle } = await import('../../src/export/index.js');
      const z = await verifyZipBundle(out.withheld, { trustedKeys: [out.vkey] });
      expect(z.failures).toEqual([]);
      expect(z.bundle!.mode).toBe('withheld');
    });

    it("carries the verify.mjs this Witness ships, bound by the signed export record; another one is named in the verdict's notes", () => {
      const r = verifyBundle(out.dir, { trustedKeys: [out.vkey] });
      expect(r.warnings.join(' ')).not.toMatch(/verify\.mjs is not the one/);
      n++;
      const other = buildV2Bundle(path.join(dir, `b${n}`), sampleLedger(), { scope: REFUND, bound: { 'verify.mjs': "console.log('PASS');\n" } });
      const o = verify(other);
      expect(o.ok).toBe(true);
      expect(o.warnings.join(' ')).toMatch(/This bundle's verify\.mjs is not the one this Witness ships/);
    });
  });
});

describe('the tamper corpus, redone on a format-2 bundle', () => {
  it('payload-edited: payload_mismatch at the tool call', () => {
    const b = fresh();
    const ev = readEvents(b.dir);
    const call = ev.find((e) => e['kind'] === 'tool.call')!;
    (call['data'] as { arguments: { amount: number } }).arguments.amount = 6500;
    writeEvents(b.dir, ev);
    refreshManifest(b.dir);
    expectFirst(verify(b), 'payload_mismatch', { leaf: call['leaf'] as number });
  });

  it('header-edited: hash_mismatch; header-edited-rehashed: inclusion_failed', () => {
    const b = fresh();
    const ev = readEvents(b.dir);
    const e = ev.find((x) => x['kind'] === 'policy.decision')!;
    e['outcome'] = 'success';
    writeEvents(b.dir, ev);
    refreshManifest(b.dir);
    expectFirst(verify(b), 'hash_mismatch', { leaf: e['leaf'] as number });

    const c = fresh();
    const ev2 = readEvents(c.dir);
    const idx = ev2.findIndex((x) => x['kind'] === 'note');
    const note = ev2[idx]!;
    // Recompute its hash as a forger with the source would: the edited header no longer is the signed leaf.
    const { data, salt, hash, leaf, ...header } = note;
    void data;
    void salt;
    void hash;
    header['resource'] = 'forged';
    note['resource'] = 'forged';
    note['hash'] = eventHash(Buffer.from(String(header['prev']), 'hex'), canonicalize(header)).toString('hex');
    writeEvents(c.dir, ev2);
    refreshManifest(c.dir);
    const r = verify(c);
    expectFirst(r, 'inclusion_failed', { leaf: leaf as number });
  });

  it('event-deleted: span_gap naming the missing leaf', () => {
    const b = fresh();
    const gone = leafOf(b, 'policy.decision');
    writeEvents(
      b.dir,
      readEvents(b.dir).filter((e) => e['leaf'] !== gone),
    );
    dropProof(b, gone);
    refreshManifest(b.dir, (m) => (m.events -= 1));
    const r = verify(b);
    expect(r.failures.find((f) => f.code === 'span_gap')?.reason).toContain(`leaf ${gone}`);
    expect(r.failures.map((f) => f.code)).toContain('seq_gap');
    expect(r.failures.map((f) => f.code)).toContain('export_record_mismatch');
  });

  it('tail-truncated: span_gap for the cut-off end of the span', () => {
    const b = fresh();
    const ev = readEvents(b.dir);
    const last = ev[ev.length - 2]!;
    writeEvents(
      b.dir,
      ev.filter((e) => e !== last),
    );
    dropProof(b, last['leaf'] as number);
    refreshManifest(b.dir, (m) => (m.events -= 1));
    const r = verify(b);
    expect(r.failures.find((f) => f.code === 'span_gap')?.reason).toMatch(/cut off/);
  });

  it('events-reordered: span_gap and seq_out_of_order', () => {
    const b = fresh();
    const ev = readEvents(b.dir);
    const i = ev.findIndex((e) => e['kind'] === 'tool.call');
    [ev[i], ev[i + 1]] = [ev[i + 1]!, ev[i]!];
    writeEvents(b.dir, ev);
    refreshManifest(b.dir);
    const codes = verify(b).failures.map((f) => f.code);
    expect(codes).toContain('span_gap');
  });

  it('event-inserted: a forged event in the span is not in the signed tree', () => {
    const b = fresh();
    const ev = readEvents(b.dir);
    const i = ev.findIndex((e) => e['kind'] === 'error' && e['stream'] === 's-refund');
    const copy = { ...ev[i]!, data: { message: 'forged' } };
    ev.splice(i, 0, copy);
    writeEvents(b.dir, ev);
    refreshManifest(b.dir, (m) => (m.events += 1));
    const r = verify(b);
    expect(r.ok).toBe(false);
    expect(r.failures.map((f) => f.code)).toEqual(expect.arrayContaining(['span_gap', 'payload_mismatch']));
  });

  it('stream-moved: an event relabelled into another stream breaks its hash', () => {
    const b = fresh();
    const ev = readEvents(b.dir);
    const e = ev.find((x) => x['kind'] === 'capture')!;
    e['stream'] = 's-other';
    writeEvents(b.dir, ev);
    refreshManifest(b.dir);
    const codes = verify(b).failures.map((f) => f.code);
    expect(codes).toContain('hash_mismatch');
  });

  it("a stream's seq 0 chained from another genesis (the hash recomputed) is wrong_genesis there, and not in the signed tree", () => {
    const b = fresh();
    const ev = readEvents(b.dir);
    const start = ev.find((x) => x['kind'] === 'session.start' && x['stream'] === 's-refund')!;
    const { data, salt, hash, leaf, ...header } = start;
    void data;
    void salt;
    void hash;
    header['prev'] = 'ab'.repeat(32);
    start['prev'] = header['prev'];
    start['hash'] = eventHash(Buffer.from(String(header['prev']), 'hex'), canonicalize(header)).toString('hex');
    writeEvents(b.dir, ev);
    refreshManifest(b.dir);
    const codes = verify(b)
      .failures.filter((f) => f.leaf === leaf)
      .map((f) => f.code);
    expect(codes).toEqual(expect.arrayContaining(['wrong_genesis', 'inclusion_failed']));
  });

  it('proof-step-flipped: inclusion_failed at that leaf', () => {
    const b = fresh();
    const file = path.join(b.dir, 'proofs.jsonl');
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    const p = JSON.parse(lines[2]!) as { leaf: number; proof: string[] };
    p.proof[1] = (p.proof[1]![0] === 'a' ? 'b' : 'a') + p.proof[1]!.slice(1);
    lines[2] = JSON.stringify(p);
    fs.writeFileSync(file, lines.join('\n'));
    refreshManifest(b.dir);
    expectFirst(verify(b), 'inclusion_failed', { leaf: p.leaf });
  });

  it('artifact-replaced: artifact_mismatch', () => {
    const b = fresh();
    const art = fs.readdirSync(path.join(b.dir, 'artifacts'))[0]!;
    fs.writeFileSync(path.join(b.dir, 'artifacts', art), 'other bytes');
    refreshManifest(b.dir);
    expectFirst(verify(b), 'artifact_mismatch', { leaf: leafOf(b, 'capture') });
  });

  it('checkpoint-signature-forged, resigned-by-other-key and wrong-trusted-key: checkpoint_signature when the key is pinned', () => {
    const b = fresh();
    const file = path.join(b.dir, 'checkpoint.txt');
    const note = fs.readFileSync(file, 'utf8');
    const sigAt = note.lastIndexOf(' ') + 5;
    fs.writeFileSync(file, note.slice(0, sigAt) + (note[sigAt] === 'A' ? 'B' : 'A') + note.slice(sigAt + 1));
    refreshManifest(b.dir);
    expectFirst(verify(b), 'checkpoint_signature');

    const c = fresh();
    const other = generateKey('witness-fixture-v2');
    const cpFile = path.join(c.dir, 'checkpoint.txt');
    const body = fs.readFileSync(cpFile, 'utf8').split('\n\n')[0]! + '\n';
    const cp = parseCheckpoint(body);
    fs.writeFileSync(cpFile, signCheckpoint({ origin: cp.origin, size: cp.size, rootHash: cp.rootHash }, [parseSignerKey(other.signerKey)]));
    refreshManifest(c.dir);
    expectFirst(verify(c), 'checkpoint_signature');

    const d = fresh();
    expectFirst(verifyBundle(d.dir, { trustedKeys: [other.verifierKey] }), 'checkpoint_signature');
  });

  it('duplicate-key and integer-beyond-2-53: bundle_invalid naming the line', () => {
    const b = fresh();
    const file = path.join(b.dir, 'events.jsonl');
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    lines[1] = lines[1]!.replace('{', '{"outcome":"error",').replace(/,"outcome":"[a-z]+"/, '') + '';
    lines[1] = lines[1]!.replace('{', '{"kind":"note",');
    lines[3] = lines[3]!.replace('"seq":', '"amount":12345678901234567891,"seq":');
    fs.writeFileSync(file, lines.join('\n'));
    refreshManifest(b.dir);
    const r = verify(b);
    const reasons = r.failures.filter((f) => f.code === 'bundle_invalid').map((f) => f.reason);
    expect(reasons.some((x) => x.includes('events.jsonl line 2 is not strict JSON'))).toBe(true);
    expect(reasons.some((x) => x.includes('events.jsonl line 4 is not strict JSON'))).toBe(true);
  });

  it('manifest-version-not-a-number is bundle_invalid; newer-bundle-version (3) is unverifiable, not failed', () => {
    const b = fresh();
    refreshManifest(b.dir, (m) => ((m as unknown as { version: unknown }).version = '2'));
    expectFirst(verify(b), 'bundle_invalid');
    const c = fresh();
    refreshManifest(c.dir, (m) => ((m as unknown as { version: unknown }).version = 3));
    const r = verify(c);
    expect(r).toMatchObject({ ok: false, unverifiable: true, failures: [] });
  });

  it('newer-event-version: unsupported_version at that event', () => {
    const b = fresh();
    const ev = readEvents(b.dir);
    const e = ev.find((x) => x['kind'] === 'session.end' && x['stream'] === 's-refund')!;
    e['v'] = 2;
    writeEvents(b.dir, ev);
    refreshManifest(b.dir);
    expectFirst(verify(b), 'unsupported_version', { leaf: e['leaf'] as number });
  });
});

describe('failures only a format-2 bundle can have', () => {
  it('a file changed behind the manifest is file_mismatch, as is one added or removed', () => {
    const b = fresh();
    fs.appendFileSync(path.join(b.dir, 'system.json'), ' ');
    fs.writeFileSync(path.join(b.dir, 'README.txt'), 'added');
    fs.rmSync(path.join(b.dir, 'populations', 'reviews.jsonl'));
    const reasons = verify(b)
      .failures.filter((f) => f.code === 'file_mismatch')
      .map((f) => f.reason);
    expect(reasons.join(' | ')).toMatch(/system\.json does not have the SHA-256/);
    expect(reasons.join(' | ')).toMatch(/README\.txt is in the bundle but not listed/);
    expect(reasons.join(' | ')).toMatch(/lists populations\/reviews\.jsonl, which is not in the bundle/);
  });

  it('a population missing one of its events is population_incomplete at that leaf, even with its index and the manifest fixed up', () => {
    const b = fresh();
    const file = path.join(b.dir, 'populations', 'denials.jsonl');
    const denied = JSON.parse(fs.readFileSync(file, 'utf8').split('\n')[0]!) as { leaf: number };
    fs.writeFileSync(file, '');
    const indexFile = path.join(b.dir, 'populations', 'index.json');
    const index = JSON.parse(fs.readFileSync(indexFile, 'utf8')) as { populations: Array<{ name: string; count: number; digest: string }> };
    const entry = index.populations.find((p) => p.name === 'denials')!;
    entry.count = 0;
    entry.digest = sha256Hex('');
    fs.writeFileSync(indexFile, JSON.stringify(index));
    refreshManifest(b.dir);
    const r = verify(b);
    // The index fixed up is not the one the signed export record binds (FORMAT.md 7.8).
    expect(r.failures.map((f) => f.code).sort()).toEqual(['export_record_mismatch', 'population_incomplete', 'population_incomplete']);
    expect(r.failures.find((f) => f.leaf !== undefined)?.leaf).toBe(denied.leaf);
  });

  it('a mode lie (manifest says withheld, the signed export record says full) is export_record_mismatch', () => {
    const b = fresh();
    writeEvents(
      b.dir,
      readEvents(b.dir).map((e, i, all) => (i === all.length - 1 ? e : { ...e, data: null, salt: null })),
    );
    fs.rmSync(path.join(b.dir, 'artifacts'), { recursive: true });
    refreshManifest(b.dir, (m) => (m.mode = 'withheld'));
    const r = verify(b);
    expect(r.failures.map((f) => f.code)).toEqual(['export_record_mismatch']);
    expect(r.first!.reason).toMatch(/mode withheld, but the signed export event recorded mode full/);
  });

  it('checkpoints.jsonl: a consistency step changed is consistency_failed, a last line that is not checkpoint.txt is checkpoint_invalid', () => {
    const b = fresh();
    const file = path.join(b.dir, 'checkpoints.jsonl');
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    const last = JSON.parse(lines[1]!) as { consistency: string[]; note: string };
    last.consistency[0] = (last.consistency[0]![0] === 'a' ? 'b' : 'a') + last.consistency[0]!.slice(1);
    lines[1] = JSON.stringify(last);
    fs.writeFileSync(file, lines.join('\n'));
    refreshManifest(b.dir);
    expect(verify(b).failures.map((f) => f.code)).toEqual(['consistency_failed']);

    const c = fresh();
    const cfile = path.join(c.dir, 'checkpoints.jsonl');
    fs.writeFileSync(cfile, `${fs.readFileSync(cfile, 'utf8').split('\n')[0]!}\n`);
    refreshManifest(c.dir);
    const r = verify(c);
    expect(r.failures.map((f) => f.code)).toEqual(['checkpoint_invalid']);
    expect(r.first!.reason).toMatch(/not checkpoint\.txt byte for byte/);
  });

  it("the export event's record edited and re-committed, or missing, is caught", () => {
    const b = fresh();
    const ev = readEvents(b.dir);
    const exp = ev[ev.length - 1]!;
    (exp['data'] as { mode: string }).mode = 'withheld';
    writeEvents(b.dir, ev);
    refreshManifest(b.dir);
    expect(verify(b).failures.map((f) => f.code)).toEqual(expect.arrayContaining(['payload_mismatch', 'export_record_mismatch']));

    const c = fresh();
    writeEvents(c.dir, readEvents(c.dir).slice(0, -1));
    refreshManifest(c.dir, (m) => (m.events -= 1));
    const r = verify(c);
    expect(r.failures.map((f) => f.code)).toEqual(['export_record_mismatch']);
    expect(r.first!.reason).toMatch(/no export event at leaf/);
  });

  it('a payload stripped from a full export is payload_missing at that leaf', () => {
    const b = fresh();
    const ev = readEvents(b.dir);
    const e = ev.find((x) => x['kind'] === 'tool.call')!;
    e['data'] = null;
    e['salt'] = null;
    writeEvents(b.dir, ev);
    refreshManifest(b.dir);
    const r = verify(b);
    expectFirst(r, 'payload_missing', { leaf: e['leaf'] as number });
    expect(r.bundle!.withoutPayload).toContainEqual({ from: e['leaf'], to: (e['leaf'] as number) + 1, reason: 'missing' });
  });

  it('an out-of-scope event carrying its payload is refused (payload_unexpected): a bundle must not carry data outside its scope', () => {
    const b = fresh();
    const ev = readEvents(b.dir);
    const note = ev.find((x) => x['kind'] === 'note' && x['data'] === null)!;
    // The ledger's own stored event, payload and salt included: still the signed leaf.
    writeEvents(
      b.dir,
      ev.map((e) => (e === note ? b.stored[note['leaf'] as number]! : e)),
    );
    refreshManifest(b.dir);
    const r = verify(b);
    expectFirst(r, 'payload_unexpected', { leaf: note['leaf'] as number });
    expect(r.first!.reason).toMatch(/outside the bundle's scope/);
  });

  it('an artifact no payload-carrying event references, or under the wrong extension, is refused', () => {
    const b = fresh();
    fs.writeFileSync(path.join(b.dir, 'artifacts', `${'e'.repeat(64)}.png`), 'stray');
    const art = fs.readdirSync(path.join(b.dir, 'artifacts')).find((f) => !f.startsWith('e'))!;
    fs.renameSync(path.join(b.dir, 'artifacts', art), path.join(b.dir, 'artifacts', art.replace('.png', '.jpg')));
    refreshManifest(b.dir);
    const r = verify(b);
    expect(r.failures.map((f) => f.code).sort()).toEqual(['bundle_invalid', 'payload_unexpected']);
    expect(r.failures.find((f) => f.code === 'bundle_invalid')!.reason).toMatch(/is named \.jpg, but the events referencing it give \.png/);
  });
});
