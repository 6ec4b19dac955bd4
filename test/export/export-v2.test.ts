import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { canonicalize, eventHash, leafHash, openCheckpoint, parseVerifierKey, payloadDigest, strictParse, verifyConsistency, verifyInclusion } from '../../src/core/index.js';
import { BundleManifestV2, PopulationBuilder, ScopeTracker, exportBundle, type BundleScope, type ExportOptions, type ExportResult } from '../../src/export/index.js';
import { extractZip } from '../../src/export/zip.js';
import { KeyHistory, PopulationIndex } from '../../src/export/bundle-format.js';
import { EventsDigest } from '../../src/export/populations.js';
import { SqliteLedger } from '../../src/store/index.js';
import { oneSentence, runCli } from '../helpers/ledger.js';
import { tempDir } from '../helpers/tmp.js';
import { buildDemoLedger, type DemoLedger } from './export-v2-fixture.js';

const dir = tempDir('witness-export-v2-');
let demo: DemoLedger;

beforeAll(async () => {
  demo = await buildDemoLedger(dir);
});

const NONE: BundleScope = { since: null, until: null, agents: null, sessions: null, regimes: [] };
let n = 0;

/** Exports from a fresh copy of the demo ledger (each export appends its own event). */
async function exportOf(scope: Partial<BundleScope>, options: ExportOptions & { zip?: boolean } = {}): Promise<{ out: string; r: ExportResult; db: string }> {
  n++;
  const db = path.join(dir, `copy-${n}.db`);
  for (const suffix of ['', '.key', '.pub', '.seal']) if (fs.existsSync(demo.file + suffix)) fs.copyFileSync(demo.file + suffix, db + suffix);
  for (const f of fs.readdirSync(dir))
    if (f.startsWith(path.basename(demo.file) + '.')) fs.cpSync(path.join(dir, f), path.join(dir, f.replace(path.basename(demo.file), path.basename(db))), { recursive: true });
  const ledger = SqliteLedger.open({ path: db, create: false });
  try {
    const target = path.join(dir, `bundle-${n}${options.zip === true ? '.zip' : ''}`);
    const r = await exportBundle(ledger, { ...NONE, ...scope }, target, { actor: 'auditor@corp', ...options });
    if (options.zip !== true) return { out: target, r, db };
    const unpacked = path.join(dir, `unzipped-${n}`);
    fs.mkdirSync(unpacked);
    expect(await extractZip(target, unpacked, () => 1 << 30)).toBeUndefined();
    return { out: unpacked, r, db };
  } finally {
    await ledger.close();
  }
}

type Line = Record<string, unknown> & { leaf: number; hash: string; data: unknown; salt: string | null; stream: string; kind: string; id: string };

function lines(out: string, name: string): Line[] {
  return fs
    .readFileSync(path.join(out, name), 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => strictParse(l) as Line);
}

/**
 * Checks a bundle the way an auditor's verifier would, from its files alone, and returns what it
 * read: manifest digests, every event's hash and payload digest, every inclusion proof to the
 * signed checkpoint, the checkpoint chain, span contiguity, the export event's binding and every
 * population recomputed.
 */
function checkBundle(out: string) {
  const manifest = BundleManifestV2.parse(strictParse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8')));
  const onDisk = (fs.readdirSync(out, { recursive: true, withFileTypes: true }) as fs.Dirent[])
    .filter((f) => f.isFile())
    .map((f) => path.relative(out, path.join(f.parentPath, f.name)).split(path.sep).join('/'))
    .filter((f) => f !== 'manifest.json')
    .sort();
  expect(Object.keys(manifest.files).sort()).toEqual(onDisk);
  for (const [name, digest] of Object.entries(manifest.files))
    expect(
      createHash('sha256')
        .update(fs.readFileSync(path.join(out, name)))
        .digest('hex'),
      name,
    ).toBe(digest);

  const keys = KeyHistory.parse(strictParse(fs.readFileSync(path.join(out, 'keys.json'), 'utf8')));
  const verifiers = keys.keys.map((k) => parseVerifierKey(k.vkey));
  const note = fs.readFileSync(path.join(out, 'checkpoint.txt'), 'utf8');
  const cp = openCheckpoint(note, verifiers, manifest.ledger.origin);
  expect(cp.verified.length).toBe(1);
  expect(cp.checkpoint.size).toBe(manifest.checkpoint.size);
  const root = Buffer.from(manifest.checkpoint.root, 'hex');
  expect(Buffer.from(cp.checkpoint.rootHash).equals(root)).toBe(true);

  const events = lines(out, 'events.jsonl');
  const proofs = lines(out, 'proofs.jsonl') as unknown as Array<{ leaf: number; size: number; proof: string[] }>;
  expect(events.length).toBe(manifest.events);
  expect(proofs.length).toBe(events.length);
  const span = events.slice(0, -1);
  expect(span.map((e) => e.leaf)).toEqual(Array.from({ length: manifest.span.to - manifest.span.from }, (_, i) => manifest.span.from + i));
  const tracker = new ScopeTracker(manifest.scope);
  const digest = new EventsDigest();
  const pops = new PopulationBuilder();
  let inScope = 0;
  events.forEach((e, i) => {
    const { data, salt, hash, leaf, ...header } = e;
    expect(eventHash(Buffer.from(header['prev'] as string, 'hex'), canonicalize(header)).toString('hex'), `hash of leaf ${leaf}`).toBe(hash);
    if (data !== null) expect(payloadDigest(Buffer.from(salt!, 'hex'), canonicalize(data)).toString('hex')).toBe(header['payload_digest']);
    const p = proofs[i]!;
    expect(p.leaf).toBe(leaf);
    expect(
      verifyInclusion(
        leafHash(Buffer.from(hash, 'hex')),
        leaf,
        p.size,
        p.proof.map((h) => Buffer.from(h, 'hex')),
        root,
      ),
    ).toEqual({ ok: true });
    if (i === events.length - 1) return;
    digest.add(hash);
    const inside = tracker.inScope(e as never);
    if (inside) {
      inScope++;
      pops.add(leaf, e as never);
    }
    // Payload present exactly when in scope and the mode is full.
    expect(data !== null, `payload of leaf ${leaf}`).toBe(inside && manifest.mode === 'full');
    expect(salt !== null).toBe(inside && manifest.mode === 'full');
  });
  expect(inScope).toBe(manifest.in_scope);

  const ex = events.at(-1)!;
  expect(ex).toMatchObject({ kind: 'audit.access', stream: 'witness.audit-access', action: 'export', leaf: manifest.export_event.leaf, id: manifest.export_event.id });
  expect(ex.leaf).toBeGreaterThanOrEqual(manifest.span.to);
  expect(ex.data).toMatchObject({
    operation: 'export',
    format: 'witness-evidence/2',
    scope: manifest.scope,
    mode: manifest.mode,
    span: manifest.span,
    events_digest: digest.hex(),
    count: span.length,
    in_scope: inScope,
  });

  const chain = lines(out, 'checkpoints.jsonl') as unknown as Array<{ size: number; root: string; note: string; consistency?: string[] }>;
  expect(chain.at(-1)!.note).toBe(note);
  for (let i = 0; i < chain.length; i++) {
    const c = chain[i]!;
    expect(openCheckpoint(c.note, verifiers, manifest.ledger.origin).checkpoint.size).toBe(c.size);
    if (i === 0) {
      expect(c.consistency).toBeUndefined();
      continue;
    }
    const prev = chain[i - 1]!;
    expect(
      verifyConsistency(
        prev.size,
        c.size,
        c.consistency!.map((h) => Buffer.from(h, 'hex')),
        Buffer.from(prev.root, 'hex'),
        Buffer.from(c.root, 'hex'),
      ),
    ).toEqual({ ok: true });
  }

  const index = PopulationIndex.parse(strictParse(fs.readFileSync(path.join(out, 'populations', 'index.json'), 'utf8')));
  expect(index.span).toEqual(manifest.span);
  const counts: Record<string, number> = {};
  for (const p of pops.results()) {
    expect(fs.readFileSync(path.join(out, 'populations', `${p.def.name}.jsonl`), 'utf8')).toBe(p.text);
    expect(index.populations.find((x) => x.name === p.def.name)).toMatchObject({ count: p.count, digest: p.digest });
    counts[p.def.name] = p.count;
  }
  const system = strictParse(fs.readFileSync(path.join(out, 'system.json'), 'utf8')) as Record<string, unknown>;
  return { manifest, events, counts, system, artifacts: onDisk.filter((f) => f.startsWith('artifacts/')).sort() };
}

describe('witness export v2', () => {
  it('exports a session with its approvals and video: the span is contiguous, other sessions appear as headers only, and every file is in the manifest', async () => {
    const { out, r } = await exportOf({ sessions: [demo.sessions.s1] });
    const b = checkBundle(out);
    expect(b.manifest.span).toEqual({ from: demo.leaf['s1.start'], to: demo.leaf['video']! + 1 });
    expect(r).toMatchObject({ inScope: 9, artifacts: 4, warnings: [] });
    expect(r.signedBy).toHaveLength(1);
    const byLeaf = new Map(b.events.map((e) => [e.leaf, e]));
    // s2's events and s3's are inside the span, disclosed as headers only.
    for (const k of ['s2.start', 's2.denied', 's3.config', 's3.error']) expect(byLeaf.get(demo.leaf[k]!)).toMatchObject({ data: null, salt: null });
    for (const k of ['s1.llm', 'approval.request', 'approval.decision', 'video']) expect(byLeaf.get(demo.leaf[k]!)!.data).not.toBeNull();
    expect(JSON.stringify(b.events)).toContain('jane@example.com');
    expect(b.artifacts).toEqual([`artifacts/${demo.shots.a}.png`, `artifacts/${demo.shots.b}.png`, `artifacts/${demo.video.mp4}.mp4`, `artifacts/${demo.video.vtt}.vtt`].sort());
    expect(
      fs
        .readFileSync(path.join(out, 'artifacts', `${demo.video.mp4}.mp4`))
        .subarray(4, 8)
        .toString(),
    ).toBe('ftyp');
    expect(b.counts).toMatchObject({ approvals: 2, denials: 0, 'configuration-changes': 0, 'errors-and-gaps': 0 });
    expect(b.system).toMatchObject({
      agents: { 'support-bot': ['1.2.0'], 'witness-cli': [] },
      models: { requested: ['claude-sonnet'], answering: ['claude-sonnet-20261001'] },
      system_prompts: ['a'.repeat(64)],
      tool_definitions: ['b'.repeat(64)],
      policies: [{ version: 'c'.repeat(64), first_leaf: demo.leaf['s1.call'], last_leaf: demo.leaf['s1.call'], events: 1 }],
    });
    for (const f of ['README.txt', 'verify.mjs', 'checkpoint.txt', 'checkpoints.jsonl', 'keys.json', 'system.json', 'populations/index.json']) expect(b.manifest.files[f], f).toBeDefined();
    expect(fs.readFileSync(path.join(out, 'README.txt'), 'utf8')).toContain('node verify.mjs');
  });

  it('exports by agent into a zip: only that agent’s events carry payloads, and its denial is the denials population', async () => {
    const { out, r } = await exportOf({ agents: ['billing-bot'] }, { zip: true });
    const b = checkBundle(out);
    expect(b.manifest.span).toEqual({ from: demo.leaf['s2.start'], to: demo.leaf['s2.end']! + 1 });
    expect(r.inScope).toBe(4);
    expect(b.counts).toMatchObject({ denials: 1, approvals: 0 });
    expect(b.artifacts).toEqual([`artifacts/${demo.shots.c}.png`]);
    expect(b.events.filter((e) => e.data !== null && e.kind !== 'audit.access').every((e) => (e['agent'] as { id: string }).id === 'billing-bot')).toBe(true);
  });

  it('exports by time window: events at or after --since and before --until, the video recorded in the window included', async () => {
    const { out, r } = await exportOf({ since: '2026-11-01T11:00:00Z', until: '2026-11-01T12:00:00Z' });
    const b = checkBundle(out);
    expect(b.manifest.span).toEqual({ from: demo.leaf['s3.start'], to: demo.leaf['video']! + 1 });
    expect(r.inScope).toBe(5);
    expect(b.counts).toMatchObject({ 'configuration-changes': 1, 'errors-and-gaps': 1 });
    expect(b.artifacts).toEqual([`artifacts/${demo.video.mp4}.mp4`, `artifacts/${demo.video.vtt}.vtt`].sort());
  });

  it('withholds every payload and artifact when asked, and still writes the populations and a verifiable bundle', async () => {
    const { out, r } = await exportOf({ sessions: [demo.sessions.s1, demo.sessions.s2] }, { withholdData: true });
    const b = checkBundle(out);
    expect(b.manifest.mode).toBe('withheld');
    expect(r.artifacts).toBe(0);
    expect(b.artifacts).toEqual([]);
    expect(b.events.slice(0, -1).every((e) => e.data === null && e.salt === null)).toBe(true);
    expect(JSON.stringify(b.events)).not.toContain('jane@example.com');
    expect(b.counts).toMatchObject({ approvals: 2, denials: 1 });
    expect(b.system).toMatchObject({ models: null, system_prompts: null, agents: { 'billing-bot': ['0.9.1'], 'support-bot': ['1.2.0'] } });
  });

  it('records the export as a sealed audit.access event before writing, naming the person and binding the span', async () => {
    const { r, db } = await exportOf({ sessions: [demo.sessions.s3] });
    const ledger = SqliteLedger.open({ path: db, create: false });
    try {
      const ev = await ledger.getEvent(r.exportEvent.id);
      expect(ev).toMatchObject({ kind: 'audit.access', action: 'export', principal: { id: 'auditor@corp', kind: 'human' }, agent: { id: 'witness-cli' }, pos: r.exportEvent.leaf });
      expect(ev!.data).toMatchObject({ actor: 'auditor@corp', span: r.span, mode: 'full' });
      expect((await ledger.latestCheckpoint())!.size).toBe(r.exportEvent.leaf + 1);
      expect(r.checkpointSize).toBe(r.exportEvent.leaf + 1);
    } finally {
      await ledger.close();
    }
  });

  it('refuses an empty scope and no scope at all before writing anything', async () => {
    await expect(exportOf({ sessions: ['no-such-session'] })).rejects.toMatchObject({ code: 'not_found' });
    expect(fs.existsSync(path.join(dir, `bundle-${n}`))).toBe(false);
    await expect(exportOf({})).rejects.toMatchObject({ code: 'invalid_argument' });
  });
});

describe('witness export (CLI)', () => {
  const store = () => `sqlite:${demo.file}`;
  it('refuses a bad date, an unknown regime and a missing scope with exit 2 and one sentence', async () => {
    for (const args of [['--since', 'yesterday'], ['--session', 'x', '--regime', 'gdpr'], [], ['--since', '2026-11-02', '--until', '2026-11-01']]) {
      const r = await runCli(['export', ...args, '-o', path.join(dir, 'never'), '--store', store()]);
      expect(r.code, args.join(' ')).toBe(2);
      oneSentence(r.stderr);
      expect(fs.existsSync(path.join(dir, 'never'))).toBe(false);
    }
  });

  it('answers exit 1 for a scope with no events, and writes a bundle for agents and a time window', async () => {
    const none = await runCli(['export', '--session', 'nobody', '-o', path.join(dir, 'none'), '--store', store()]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/No events/);
    const out = path.join(dir, 'cli-bundle.zip');
    const ok = await runCli([
      'export',
      '--agent',
      'support-bot',
      '--since',
      '2026-11-01T10:00:00Z',
      '--until',
      '2026-11-01T11:00:00Z',
      '--regime',
      'soc2,sec',
      '-o',
      out,
      '--store',
      store(),
      '--as',
      'carol',
    ]);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/signed by {2}demo-v2\/witness\//);
    const unpacked = path.join(dir, 'cli-unzipped');
    fs.mkdirSync(unpacked);
    expect(await extractZip(out, unpacked, () => 1 << 30)).toBeUndefined();
    const b = checkBundle(unpacked);
    expect(b.manifest.scope).toEqual({ since: '2026-11-01T10:00:00.000Z', until: '2026-11-01T11:00:00.000Z', agents: ['support-bot'], sessions: null, regimes: ['soc2', 'sec'] });
  });
});
