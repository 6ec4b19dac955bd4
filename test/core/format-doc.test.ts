import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { canonicalize } from '../../src/core/canonical-json.js';
import { EVENT_DOMAIN, GENESIS_DOMAIN, eventHash, genesisHash, payloadDigest } from '../../src/core/chain.js';
import { openCheckpoint } from '../../src/core/checkpoint.js';
import { EventHeader } from '../../src/core/event.js';
import { leafHash, nodeHash, rootFromLeafHashes, verifyConsistency, verifyInclusion } from '../../src/core/merkle.js';
import { parseVerifierKey } from '../../src/core/note.js';
import { strictParse } from '../../src/core/strict-json.js';
import { EventsDigest, POPULATIONS, populationLine } from '../../src/export/populations.js';
import { BundleManifestV2, CheckpointLine, ExportRecord, artifactExtension } from '../../src/export/bundle-format.js';

/**
 * docs/FORMAT.md is what an auditor writes a verifier from, without reading this code. Its worked
 * example and its vectors are recomputed here with the code, so the document cannot drift from
 * what Witness hashes and signs. Blocks are found by the `<!-- example: NAME -->` line before them.
 */
const DOC = fs.readFileSync(path.join(import.meta.dirname, '../../docs/FORMAT.md'), 'utf8');

function block(name: string): string {
  const re = new RegExp(`<!-- example: ${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} -->\\n\`\`\`[a-z]*\\n([\\s\\S]*?)\`\`\`\\n`);
  const m = re.exec(DOC);
  if (m === null) throw new Error(`docs/FORMAT.md has no example block ${name}`);
  return m[1]!;
}

const one = (name: string): string => block(name).trim();
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const sha256 = (...parts: Array<Uint8Array | string>): Buffer => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};

interface Line {
  header: Record<string, unknown>;
  data: unknown;
  salt: string;
  hash: string;
  leaf: number;
}

function lines(): Line[] {
  return block('events.jsonl')
    .trimEnd()
    .split('\n')
    .map((l) => {
      const { data, salt, hash, leaf, ...header } = strictParse(l) as Record<string, unknown>;
      return { header, data, salt: salt as string, hash: hash as string, leaf: leaf as number };
    });
}

const note = block('checkpoint.txt');
const origin = note.split('\n')[0]!;

describe('docs/FORMAT.md', () => {
  it('gives JCS vectors that the canonicaliser reproduces, and refusals it refuses', () => {
    const pairs = strictParse(block('jcs-vectors')) as Array<[string, string]>;
    expect(pairs.length).toBeGreaterThan(10);
    for (const [input, output] of pairs) expect(canonicalize(strictParse(input)), input).toBe(output);
    for (const input of strictParse(block('jcs-refused')) as string[]) {
      expect(() => canonicalize(strictParse(input)), input).toThrow();
    }
  });

  it('states the domain prefixes as the bytes the code hashes', () => {
    expect(DOC).toContain(`\`"witness/event/v1\\n"\` is the 17 bytes \`${[...EVENT_DOMAIN].map((b) => b.toString(16).padStart(2, '0')).join(' ')}\``);
    expect(DOC).toContain(`\`"witness/genesis/v1\\n"\` is the 19 bytes \`${[...GENESIS_DOMAIN].map((b) => b.toString(16).padStart(2, '0')).join(' ')}\``);
  });

  it("prints the example's genesis, payload digest, header bytes, prev and event hash as the code computes them", () => {
    const ev = lines();
    expect(ev).toHaveLength(3);
    expect(one('genesis')).toBe(hex(genesisHash(origin, 'sess-1')));
    expect(ev[0]!.header['prev']).toBe(one('genesis'));

    const e1 = ev[1]!;
    expect(one('data-jcs')).toBe(canonicalize(e1.data));
    expect(one('payload-digest')).toBe(hex(payloadDigest(Buffer.from(e1.salt, 'hex'), canonicalize(e1.data))));
    expect(one('payload-digest')).toBe(e1.header['payload_digest']);
    expect(one('header-jcs')).toBe(canonicalize(e1.header));
    expect(DOC).toContain(`then the ${Buffer.byteLength(one('header-jcs'))} bytes of the header text above`);
    expect(one('prev')).toBe(e1.header['prev']);
    expect(one('event-hash')).toBe(hex(eventHash(Buffer.from(one('prev'), 'hex'), one('header-jcs'))));
    expect(one('event-hash')).toBe(e1.hash);
  });

  it("chains the example's events: every digest, hash and prev recomputes, and every header is schema-valid", () => {
    let prev = genesisHash(origin, 'sess-1');
    for (const [i, e] of lines().entries()) {
      expect(e.leaf).toBe(i);
      expect(EventHeader.safeParse(e.header).success).toBe(true);
      expect(e.header['prev']).toBe(hex(prev));
      expect(hex(payloadDigest(Buffer.from(e.salt, 'hex'), canonicalize(e.data)))).toBe(e.header['payload_digest']);
      // The same bytes as the formula in the doc, spelled out without the code's helpers.
      const h = sha256('witness/event/v1\n', prev, canonicalize(e.header));
      expect(hex(h)).toBe(e.hash);
      prev = h;
    }
  });

  it("prints the example's leaf hashes, root, proofs and consistency walk as the code computes them", () => {
    const leaves = lines().map((e) => leafHash(Buffer.from(e.hash, 'hex')));
    expect(one('leaf-hashes').split('\n')).toEqual(leaves.map(hex));
    const root = rootFromLeafHashes(leaves);
    expect(one('root')).toBe(hex(root));
    expect(DOC).toContain(`\`node01 = SHA-256(0x01 ‖ leaf0 ‖ leaf1)\` =\n\`${hex(nodeHash(leaves[0]!, leaves[1]!))}\``);
    for (const l of one('proofs.jsonl').split('\n')) {
      const p = strictParse(l) as { leaf: number; size: number; proof: string[] };
      const steps = p.proof.map((s) => Buffer.from(s, 'hex'));
      expect(verifyInclusion(leaves[p.leaf]!, p.leaf, p.size, steps, root)).toEqual({ ok: true });
    }
    expect(verifyConsistency(2, 3, [leaves[2]!], nodeHash(leaves[0]!, leaves[1]!), root)).toEqual({ ok: true });
  });

  it("prints a checkpoint that opens with the example's key, and the key ID computation", () => {
    const vkey = one('vkey');
    const verifier = parseVerifierKey(vkey);
    const opened = openCheckpoint(note, [verifier], origin);
    expect(opened.checkpoint.size).toBe(3);
    expect(hex(opened.checkpoint.rootHash)).toBe(one('root'));
    expect(opened.checkpoint.extensions[0]).toMatch(/^witness-time \d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    expect(DOC).toContain(`the LF after \`…475Z\`, ${Buffer.byteLength(opened.text)} bytes, without the empty line.`);

    const i = vkey.indexOf('+');
    const j = vkey.indexOf('+', i + 1);
    const name = vkey.slice(0, i);
    const keyBytes = Buffer.from(vkey.slice(j + 1), 'base64');
    expect(keyBytes).toHaveLength(33);
    expect(keyBytes[0]).toBe(1);
    const input = Buffer.concat([Buffer.from(`${name}\n`), keyBytes]);
    expect(one('key-id-input')).toBe(hex(input));
    expect(one('key-id-sha256')).toBe(hex(sha256(input)));
    expect(one('key-id-sha256').slice(0, 8)).toBe(vkey.slice(i + 1, j));
    expect(verifier.keyHash.toString(16).padStart(8, '0')).toBe(vkey.slice(i + 1, j));

    const sigLine = note.split('\n').find((l) => l.startsWith('\u2014 '))!;
    const sig = Buffer.from(sigLine.slice(sigLine.lastIndexOf(' ') + 1), 'base64');
    expect(one('signature-bytes')).toBe(hex(sig));
    expect(verifier.verify(Buffer.from(opened.text), sig.subarray(4))).toBe(true);
  });

  it('prints the v2 events digest and a population line of the example as the exporter computes them', () => {
    const ev = lines();
    const digest = new EventsDigest();
    for (const e of ev) digest.add(e.hash);
    expect(one('events-digest')).toBe(digest.hex());
    const e1 = ev[1]!;
    const line = populationLine(e1.leaf, { ...EventHeader.parse(e1.header), hash: e1.hash });
    expect(block('population-line')).toBe(line);
    expect(one('population-digest')).toBe(hex(sha256(line)));
  });

  it('prints a v2 bundle whose export record, proof and checkpoint history recompute', () => {
    const manifest = strictParse(block('v2-manifest.json')) as BundleManifestV2;
    expect(BundleManifestV2.safeParse(manifest).success).toBe(true);
    const { data, salt, hash, leaf, ...header } = strictParse(one('v2-export-event')) as Record<string, unknown> & { data: ExportRecord; salt: string; hash: string; leaf: number };
    expect(EventHeader.safeParse(header).success).toBe(true);
    expect(header['prev']).toBe(hex(genesisHash(manifest.ledger.origin, 'witness.audit-access')));
    expect(hex(payloadDigest(Buffer.from(salt, 'hex'), canonicalize(data)))).toBe(header['payload_digest']);
    const exportHash = eventHash(Buffer.from(header['prev'] as string, 'hex'), canonicalize(header));
    expect(hex(exportHash)).toBe(hash);
    expect(leaf).toBe(manifest.export_event.leaf);
    expect(header['id']).toBe(manifest.export_event.id);

    // The export record binds what the unsigned manifest says, and the span's events.
    const record = ExportRecord.parse(data);
    expect(canonicalize(record.scope)).toBe(canonicalize(manifest.scope));
    expect([record.mode, record.span, record.count, record.in_scope]).toEqual([manifest.mode, manifest.span, manifest.span.to - manifest.span.from, manifest.in_scope]);
    const digest = new EventsDigest();
    for (const e of lines()) digest.add(e.hash);
    expect(record.events_digest).toBe(digest.hex());

    // The checkpoint history: both notes open, the sizes and roots are theirs, the consistency proof holds.
    const verifier = parseVerifierKey(one('vkey'));
    const cps = one('v2-checkpoints.jsonl')
      .split('\n')
      .map((l) => CheckpointLine.parse(strictParse(l)));
    const opened = cps.map((c) => openCheckpoint(c.note, [verifier], manifest.ledger.origin).checkpoint);
    for (const [i, c] of cps.entries()) {
      expect([opened[i]!.size, hex(opened[i]!.rootHash)]).toEqual([c.size, c.root]);
    }
    expect(cps[0]!.note).toBe(note);
    const [from, to] = [cps[0]!, cps[1]!];
    const proof = to.consistency!.map((h) => Buffer.from(h, 'hex'));
    expect(verifyConsistency(from.size, to.size, proof, Buffer.from(from.root, 'hex'), Buffer.from(to.root, 'hex'))).toEqual({ ok: true });
    expect([to.size, to.root]).toEqual([manifest.checkpoint.size, manifest.checkpoint.root]);

    // The export event is in the tree of the final checkpoint.
    const p = strictParse(one('v2-proof')) as { leaf: number; size: number; proof: string[] };
    expect([p.leaf, p.size]).toEqual([leaf, to.size]);
    const steps = p.proof.map((h) => Buffer.from(h, 'hex'));
    expect(verifyInclusion(leafHash(exportHash), p.leaf, p.size, steps, Buffer.from(to.root, 'hex'))).toEqual({ ok: true });
    expect(DOC).toContain(`\`fr\` is the old root \`${from.root.slice(0, 4)}…${from.root.slice(-4)}\` and\n\`sr\` the new root \`${to.root.slice(0, 4)}…${to.root.slice(-4)}\``);
  });

  it('lists the populations and artifact extensions the exporter uses', () => {
    for (const p of POPULATIONS) {
      expect(DOC).toContain(`| \`${p.name}\` | ${p.title} | \`${p.query}\` | \`${JSON.stringify(p.predicate)}\` |`);
    }
    const mapped = [...DOC.matchAll(/`([a-z]+\/[a-z0-9.+-]+)`\s+→\s+`([a-z0-9.]+)`/g)].map((m) => [m[1]!, m[2]!] as const);
    expect(mapped.length).toBe(15);
    for (const [mime, ext] of mapped) expect(artifactExtension(mime), mime).toBe(ext);
    expect(artifactExtension('application/x-unknown')).toBe('bin');
  });
});
