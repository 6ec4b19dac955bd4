import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { canonicalize, eventHash, leafHash, openCheckpoint, parseVerifierKey, payloadDigest, strictParse, verifyConsistency, verifyInclusion } from '../../src/core/index.js';
import { BundleManifestV2, PopulationBuilder, ScopeTracker } from '../../src/export/index.js';
import { KeyHistory, PopulationIndex } from '../../src/export/bundle-format.js';
import { EventsDigest } from '../../src/export/populations.js';

export type Line = Record<string, unknown> & { leaf: number; hash: string; data: unknown; salt: string | null; stream: string; kind: string; id: string };

export function lines(out: string, name: string): Line[] {
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
export function checkBundle(out: string) {
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
