import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { isWitnessError } from '../../src/core/errors.js';
import {
  EMPTY_ROOT,
  Frontier,
  HASH_SIZE,
  type NodeSource,
  type ProofResult,
  consistencyProof,
  inclusionProof,
  leafHash,
  nodeHash,
  rangeHash,
  rootFromInclusionProof,
  rootFromLeafHashes,
  verifyConsistency,
  verifyInclusion,
} from '../../src/core/merkle.js';
import { rng } from '../helpers/random.js';

/**
 * Known-answer data lives in the fixture so its provenance is stated once, next to the values:
 * transparency-dev/merkle testonly/constants.go and proof/verify_test.go, plus the accumulated
 * digests of draft-ietf-plants-merkle-tree-certs Appendix C (see the fixture's "_source").
 */
interface Vectors {
  emptyRoot: string;
  someHash: string;
  leafInputs: string[];
  nodeHashes: string[][];
  rootHashes: string[];
  compactTrees: Array<Array<[number, number]>>;
  inclusionProofs: Array<{ index: number; size: number; proof: string[] }>;
  consistencyProofs: Array<{ oldSize: number; newSize: number; proof: string[] }>;
  subtreeVectors: { maxSize: number; subtreeHashes: string; subtreeInclusionProofs: string };
}

const V = JSON.parse(readFileSync(new URL('../fixtures/merkle/transparency-dev-vectors.json', import.meta.url), 'utf8')) as Vectors;

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const unhex = (s: string): Buffer => Buffer.from(s, 'hex');
const hexAll = (bs: readonly Uint8Array[]): string[] => bs.map(hex);

function at<T>(xs: readonly T[], i: number): T {
  const x = xs[i];
  if (x === undefined) throw new Error(`test bug: no element ${i}`);
  return x;
}

/** How the store will serve proofs: a map filled from Frontier.push outputs. */
class MapSource implements NodeSource {
  readonly nodes = new Map<string, Buffer>();
  node(level: number, index: number): Uint8Array {
    const h = this.nodes.get(`${level}/${index}`);
    if (h === undefined) throw new Error(`test source has no node ${level}/${index}`);
    return h;
  }
}

interface Built {
  frontier: Frontier;
  src: MapSource;
  /** Frontier.root() after each push, indexed by tree size. */
  roots: Buffer[];
}

function build(leaves: readonly Uint8Array[]): Built {
  const frontier = Frontier.empty();
  const src = new MapSource();
  const roots = [frontier.root()];
  for (const leaf of leaves) {
    for (const n of frontier.push(leaf)) src.nodes.set(`${n.level}/${n.index}`, n.hash);
    roots.push(frontier.root());
  }
  return { frontier, src, roots };
}

function randomLeaves(seed: number, n: number): Buffer[] {
  const next = rng(seed);
  return Array.from({ length: n }, () => {
    const entry = Buffer.alloc(Math.floor(next() * 40));
    for (let i = 0; i < entry.length; i++) entry[i] = Math.floor(next() * 256);
    return leafHash(entry);
  });
}

function split(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** RFC 6962 2.1.1 PATH transcribed literally over arrays: an oracle independent of NodeSource. */
function refPath(m: number, leaves: readonly Uint8Array[]): Buffer[] {
  const n = leaves.length;
  if (n <= 1) return [];
  const k = split(n);
  return m < k ? [...refPath(m, leaves.slice(0, k)), rootFromLeafHashes(leaves.slice(k))] : [...refPath(m - k, leaves.slice(k)), rootFromLeafHashes(leaves.slice(0, k))];
}

/** RFC 6962 2.1.2 SUBPROOF transcribed literally over arrays. */
function refSubproof(m: number, leaves: readonly Uint8Array[], complete: boolean): Buffer[] {
  const n = leaves.length;
  if (m === n) return complete ? [] : [rootFromLeafHashes(leaves)];
  const k = split(n);
  return m <= k ? [...refSubproof(m, leaves.slice(0, k), complete), rootFromLeafHashes(leaves.slice(k))] : [...refSubproof(m - k, leaves.slice(k), false), rootFromLeafHashes(leaves.slice(0, k))];
}

function flipBit(proof: readonly Buffer[], step: number, bit: number): Buffer[] {
  const copy = proof.map((p) => Buffer.from(p));
  const target = at(copy, step);
  target[bit >> 3] = (target[bit >> 3] ?? 0) ^ (1 << (bit & 7));
  return copy;
}

function expectRejected(r: ProofResult): void {
  expect(r.ok).toBe(false);
  if (!r.ok) expect(r.reason).toMatch(/\S/);
}

const SOME_HASH = unhex(V.someHash);
const vectorLeaves = V.leafInputs.map((s) => leafHash(unhex(s)));
const vectorRoot = (size: number): Buffer => unhex(at(V.rootHashes, size));

interface InclusionProbe {
  desc: string;
  leaf: Uint8Array;
  index: number;
  size: number;
  proof: Uint8Array[];
  root: Uint8Array;
}

/** Ported from corruptInclusionProof in transparency-dev/merkle proof/verify_test.go. */
function corruptInclusion(leaf: Buffer, index: number, size: number, proof: Buffer[], root: Buffer): InclusionProbe[] {
  const probe = (desc: string, p: Partial<InclusionProbe>): InclusionProbe => ({ desc, leaf, index, size, proof, root, ...p });
  const probes = [
    probe('index - 1', { index: index - 1 }),
    probe('index + 1', { index: index + 1 }),
    probe('index ^ 2', { index: index ^ 2 }),
    probe('size * 2', { size: size * 2 }),
    probe('size / 2', { size: Math.floor(size / 2) }),
    probe('wrong leaf', { leaf: Buffer.from('WrongLeaf') }),
    probe('wrong 32-byte leaf', { leaf: SOME_HASH }),
    probe('empty root', { root: EMPTY_ROOT }),
    probe('random root', { root: SOME_HASH }),
    probe('trailing garbage', { proof: [...proof, Buffer.alloc(0)] }),
    probe('trailing root', { proof: [...proof, root] }),
    probe('preceding garbage', { proof: [Buffer.alloc(0), ...proof] }),
    probe('preceding root', { proof: [root, ...proof] }),
  ];
  proof.forEach((_, i) => probes.push(probe(`modified proof[${i}] bit 3`, { proof: flipBit(proof, i, 3) })));
  if (proof.length > 0) probes.push(probe('removed component', { proof: proof.slice(0, -1) }));
  if (proof.length > 1) probes.push(probe('inserted component', { proof: [at(proof, 0), SOME_HASH, ...proof.slice(1)] }));
  return probes;
}

interface ConsistencyProbe {
  desc: string;
  oldSize: number;
  newSize: number;
  proof: Uint8Array[];
  oldRoot: Uint8Array;
  newRoot: Uint8Array;
}

/** Ported from corruptConsistencyProof in transparency-dev/merkle proof/verify_test.go. */
function corruptConsistency(oldSize: number, newSize: number, proof: Buffer[], oldRoot: Buffer, newRoot: Buffer): ConsistencyProbe[] {
  const probe = (desc: string, p: Partial<ConsistencyProbe>): ConsistencyProbe => ({ desc, oldSize, newSize, proof, oldRoot, newRoot, ...p });
  const probes = [
    probe('oldSize - 1', { oldSize: oldSize - 1 }),
    probe('oldSize + 1', { oldSize: oldSize + 1 }),
    probe('oldSize ^ 2', { oldSize: oldSize ^ 2 }),
    probe('newSize * 2', { newSize: newSize * 2 }),
    probe('newSize / 2', { newSize: Math.floor(newSize / 2) }),
    probe('wrong old root', { oldRoot: Buffer.from('WrongRoot') }),
    probe('wrong new root', { newRoot: Buffer.from('WrongRoot') }),
    probe('wrong 32-byte old root', { oldRoot: SOME_HASH }),
    probe('wrong 32-byte new root', { newRoot: SOME_HASH }),
    probe('swapped roots', { oldRoot: newRoot, newRoot: oldRoot }),
    probe('empty proof', { proof: [] }),
    probe('trailing garbage', { proof: [...proof, Buffer.alloc(0)] }),
    probe('trailing old root', { proof: [...proof, oldRoot] }),
    probe('trailing new root', { proof: [...proof, newRoot] }),
    probe('preceding garbage', { proof: [Buffer.alloc(0), ...proof] }),
    probe('preceding old root', { proof: [oldRoot, ...proof] }),
    probe('preceding new root', { proof: [newRoot, ...proof] }),
    probe('preceding proof[0]', { proof: [at(proof, 0), ...proof] }),
    probe('truncated proof', { proof: proof.slice(0, -1) }),
  ];
  proof.forEach((_, i) => probes.push(probe(`modified proof[${i}] bit 4`, { proof: flipBit(proof, i, 4) })));
  return probes;
}

describe('Merkle hashing primitives', () => {
  it('computes the empty-tree root as SHA-256 of the empty string', () => {
    expect(hex(EMPTY_ROOT)).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(hex(EMPTY_ROOT)).toBe(V.emptyRoot);
    expect(hex(rootFromLeafHashes([]))).toBe(V.emptyRoot);
    expect(HASH_SIZE).toBe(32);
  });

  it('hashes the reference leaf inputs to the published leaf hashes', () => {
    expect(hexAll(vectorLeaves)).toEqual(at(V.nodeHashes, 0));
  });

  it('prefixes leaves with 0x00 and interior nodes with 0x01', () => {
    const l = Buffer.from('entry');
    expect(leafHash(l)).toEqual(
      createHash('sha256')
        .update(Buffer.from([0]))
        .update(l)
        .digest(),
    );
    const a = leafHash(Buffer.from('a'));
    const b = leafHash(Buffer.from('b'));
    expect(nodeHash(a, b)).toEqual(
      createHash('sha256')
        .update(Buffer.from([1]))
        .update(a)
        .update(b)
        .digest(),
    );
  });

  it('computes the published root for every tree size from 0 to 8', () => {
    for (let size = 0; size <= 8; size++) {
      expect(hex(rootFromLeafHashes(vectorLeaves.slice(0, size))), `size ${size}`).toBe(at(V.rootHashes, size));
    }
  });

  it('refuses leaf hashes that are not 32 bytes when computing a root', () => {
    expect(() => rootFromLeafHashes([Buffer.alloc(31)])).toThrow(expect.objectContaining({ code: 'invalid_argument' }));
  });

  it('refuses to hash interior nodes from children that are not 32 bytes', () => {
    expect(() => nodeHash(Buffer.alloc(32), Buffer.alloc(33))).toThrow(expect.objectContaining({ code: 'invalid_argument' }));
  });
});

describe('known-answer vectors from transparency-dev/merkle', () => {
  const { frontier, src, roots } = build(vectorLeaves);

  it('creates exactly the published complete nodes when leaves are pushed one by one', () => {
    const created = new Map([...src.nodes].map(([k, v]) => [k, hex(v)]));
    const published = new Map(V.nodeHashes.flatMap((row, level) => row.map((h, index) => [`${level}/${index}`, h] as const)));
    expect(created).toEqual(published);
  });

  it('keeps the published compact range after every push', () => {
    const f = Frontier.empty();
    for (let size = 0; size <= 8; size++) {
      const want = at(V.compactTrees, size).map(([level, index]) => at(at(V.nodeHashes, level), index));
      expect(f.toJSON(), `size ${size}`).toEqual({ size, hashes: want });
      if (size < 8) f.push(at(vectorLeaves, size));
    }
  });

  it('computes the published root for every size with Frontier, rangeHash and the naive MTH alike', () => {
    expect(frontier.size).toBe(8);
    for (let size = 0; size <= 8; size++) {
      expect(hex(at(roots, size)), `frontier, size ${size}`).toBe(at(V.rootHashes, size));
      expect(hex(rangeHash(0, size, src)), `rangeHash, size ${size}`).toBe(at(V.rootHashes, size));
    }
  });

  it.each(V.inclusionProofs)('produces and verifies the published inclusion proof for leaf $index of $size', ({ index, size, proof }) => {
    const generated = inclusionProof(index, size, src);
    expect(hexAll(generated)).toEqual(proof);
    const leaf = at(vectorLeaves, index);
    expect(verifyInclusion(leaf, index, size, proof.map(unhex), vectorRoot(size))).toEqual({ ok: true });
    const implied = rootFromInclusionProof(leaf, index, size, generated);
    expect(implied.ok && hex(implied.root)).toBe(at(V.rootHashes, size));
  });

  it.each(V.inclusionProofs)('rejects every transparency-dev corruption of the inclusion proof for leaf $index of $size', ({ index, size, proof }) => {
    const probes = corruptInclusion(at(vectorLeaves, index), index, size, proof.map(unhex), vectorRoot(size));
    const accepted = probes.filter((p) => verifyInclusion(p.leaf, p.index, p.size, p.proof, p.root).ok).map((p) => p.desc);
    expect(accepted).toEqual([]);
  });

  it.each(V.consistencyProofs)('produces and verifies the published consistency proof from $oldSize to $newSize', ({ oldSize, newSize, proof }) => {
    expect(hexAll(consistencyProof(oldSize, newSize, src))).toEqual(proof);
    expect(verifyConsistency(oldSize, newSize, proof.map(unhex), vectorRoot(oldSize), vectorRoot(newSize))).toEqual({ ok: true });
  });

  it.each(V.consistencyProofs.filter((c) => c.proof.length > 0))('rejects every transparency-dev corruption of the consistency proof from $oldSize to $newSize', ({ oldSize, newSize, proof }) => {
    const probes = corruptConsistency(oldSize, newSize, proof.map(unhex), vectorRoot(oldSize), vectorRoot(newSize));
    const accepted = probes.filter((p) => verifyConsistency(p.oldSize, p.newSize, p.proof, p.oldRoot, p.newRoot).ok).map((p) => p.desc);
    expect(accepted).toEqual([]);
  });

  it('verifies a single-entry tree exactly when leaf and root are the same 32-byte hash', () => {
    // Mirrors TestVerifyInclusionSingleEntry in transparency-dev/merkle proof/verify_test.go.
    const h = leafHash(Buffer.from('data'));
    const empty = Buffer.alloc(0);
    expect(verifyInclusion(h, 0, 1, [], h)).toEqual({ ok: true });
    expectRejected(verifyInclusion(empty, 0, 1, [], h));
    expectRejected(verifyInclusion(h, 0, 1, [], empty));
    expectRejected(verifyInclusion(empty, 0, 1, [], empty));
  });

  it('rejects the degenerate inclusion probes of transparency-dev for every bad (index, size)', () => {
    // Mirrors the first loop of TestVerifyInclusion: (0,0), (1,0) and (2,1) are out of range, and
    // (0,1) must not verify against mismatched or malformed roots and leaves.
    for (const [index, size] of [
      [0, 0],
      [0, 1],
      [1, 0],
      [2, 1],
    ] as const) {
      expectRejected(verifyInclusion(SOME_HASH, index, size, [], Buffer.alloc(0)));
      expectRejected(verifyInclusion(Buffer.alloc(0), index, size, [], EMPTY_ROOT));
      expectRejected(verifyInclusion(SOME_HASH, index, size, [], EMPTY_ROOT));
    }
  });
});

describe('known-answer vectors from draft-ietf-plants-merkle-tree-certs Appendix C', () => {
  // Leaf i is the single byte i; a subtree [start, end) is valid when start is a multiple of
  // BIT_CEIL(end - start). Each output is written as a text line into one rolling SHA-256.
  const { maxSize, subtreeHashes, subtreeInclusionProofs } = V.subtreeVectors;
  const leaves = Array.from({ length: maxSize }, (_, i) => leafHash(Buffer.from([i])));
  const { src } = build(leaves);
  const bitCeil = (n: number): number => {
    let k = 1;
    while (k < n) k *= 2;
    return k;
  };
  const validSubtrees = (): Array<[number, number]> => {
    const out: Array<[number, number]> = [];
    for (let end = 1; end <= maxSize; end++) {
      for (let start = 0; start < end; start++) if (start % bitCeil(end - start) === 0) out.push([start, end]);
    }
    return out;
  };

  it('matches the accumulated hash of every valid subtree up to 130 leaves (C.1) via rangeHash', () => {
    const acc = createHash('sha256');
    for (const [start, end] of validSubtrees()) acc.update(`[${start}, ${end}) ${hex(rangeHash(start, end, src))}\n`);
    expect(acc.digest('hex')).toBe(subtreeHashes);
  });

  it('matches the accumulated inclusion proofs for every leaf of every valid subtree (C.2)', () => {
    const acc = createHash('sha256');
    for (const [start, end] of validSubtrees()) {
      // A valid subtree is aligned to its own height, so its nodes are the big tree's nodes shifted.
      const sub: NodeSource = { node: (level, index) => src.node(level, start / 2 ** level + index) };
      for (let index = start; index < end; index++) {
        const proof = inclusionProof(index - start, end - start, sub);
        acc.update(`${index} [${start}, ${end})${proof.map((p) => ` ${hex(p)}`).join('')}\n`);
      }
    }
    expect(acc.digest('hex')).toBe(subtreeInclusionProofs);
  });
});

describe('random trees', () => {
  it('agrees on the root of every prefix of a 300-leaf tree across naive MTH, Frontier and rangeHash', () => {
    const leaves = randomLeaves(42, 300);
    const { src, roots } = build(leaves);
    for (let n = 0; n <= leaves.length; n++) {
      const naive = hex(rootFromLeafHashes(leaves.slice(0, n)));
      expect(hex(at(roots, n)), `frontier, size ${n}`).toBe(naive);
      expect(hex(rangeHash(0, n, src)), `rangeHash, size ${n}`).toBe(naive);
    }
  });

  it('hashes arbitrary unaligned ranges the way MTH hashes the same slice', () => {
    const leaves = randomLeaves(7, 100);
    const { src } = build(leaves);
    for (let start = 0; start <= 100; start += 3) {
      for (let end = start; end <= 100; end += 5) {
        expect(hex(rangeHash(start, end, src)), `[${start}, ${end})`).toBe(hex(rootFromLeafHashes(leaves.slice(start, end))));
      }
    }
  });

  it.each([1, 2, 3, 4, 5])('proves and verifies inclusion of every leaf, matching RFC 6962 PATH (seed %i)', (seed) => {
    const size = 1 + Math.floor(rng(seed * 1000)() * 300);
    const leaves = randomLeaves(seed, size);
    const { src } = build(leaves);
    // Proofs must hold for every earlier tree size too, since checkpoints are cut at any size.
    for (const n of new Set([size, Math.ceil(size / 2), Math.max(1, size - 1), Math.min(size, 64)])) {
      const root = rootFromLeafHashes(leaves.slice(0, n));
      for (let i = 0; i < n; i++) {
        const proof = inclusionProof(i, n, src);
        expect(hexAll(proof), `leaf ${i} of ${n}`).toEqual(hexAll(refPath(i, leaves.slice(0, n))));
        expect(verifyInclusion(at(leaves, i), i, n, proof, root), `leaf ${i} of ${n}`).toEqual({ ok: true });
      }
    }
  });

  it.each([1, 2, 3, 4, 5])('proves and verifies consistency for many size pairs, matching RFC 6962 PROOF (seed %i)', (seed) => {
    const next = rng(seed * 7919);
    const size = 1 + Math.floor(next() * 300);
    const leaves = randomLeaves(seed, size);
    const { src, roots } = build(leaves);
    const pairs: Array<[number, number]> = [];
    for (let m = 0; m <= size; m++) pairs.push([m, size]);
    for (let k = 0; k < 300; k++) {
      const a = Math.floor(next() * (size + 1));
      const b = Math.floor(next() * (size + 1));
      pairs.push([Math.min(a, b), Math.max(a, b)]);
    }
    for (const [m, n] of pairs) {
      const proof = consistencyProof(m, n, src);
      const want = m === 0 || m === n ? [] : refSubproof(m, leaves.slice(0, n), true);
      expect(hexAll(proof), `${m} -> ${n}`).toEqual(hexAll(want));
      expect(verifyConsistency(m, n, proof, at(roots, m), at(roots, n)), `${m} -> ${n}`).toEqual({ ok: true });
    }
  });
});

/**
 * A tree far too large to build, whose leaves are all the same filler except a few chosen ones: any
 * node not covering a chosen leaf is the filler subtree of its height. That keeps every node
 * consistent with its children while costing O(height) per lookup.
 */
class SparseTree implements NodeSource {
  readonly #filler: Buffer[] = [leafHash(Buffer.from('filler'))];
  readonly #special: Map<number, Buffer>;

  constructor(special: readonly number[]) {
    this.#special = new Map(special.map((i) => [i, leafHash(Buffer.from(`leaf ${i}`))]));
    for (let l = 1; l <= 53; l++) this.#filler.push(nodeHash(at(this.#filler, l - 1), at(this.#filler, l - 1)));
  }

  leaf(index: number): Buffer {
    return this.#special.get(index) ?? at(this.#filler, 0);
  }

  node(level: number, index: number): Uint8Array {
    const start = index * 2 ** level;
    const end = start + 2 ** level;
    if (![...this.#special.keys()].some((i) => i >= start && i < end)) return at(this.#filler, level);
    if (level === 0) return this.leaf(index);
    return nodeHash(this.node(level - 1, 2 * index), this.node(level - 1, 2 * index + 1));
  }
}

describe('sizes beyond 32 bits', () => {
  const sizes = [2 ** 32 + 1, 2 ** 40 + 12_345, Number.MAX_SAFE_INTEGER];

  it.each(sizes)('proves and verifies inclusion in a tree of %i leaves without 32-bit truncation', (size) => {
    const indices = [0, 2 ** 32 - 1, 2 ** 32, Math.floor(size / 3), size - 1];
    const tree = new SparseTree(indices);
    const root = rangeHash(0, size, tree);
    for (const i of indices) {
      const proof = inclusionProof(i, size, tree);
      expect(verifyInclusion(tree.leaf(i), i, size, proof, root), `leaf ${i}`).toEqual({ ok: true });
      expectRejected(verifyInclusion(tree.leaf(i), i + 1, size, proof, root));
      expectRejected(verifyInclusion(tree.leaf(i), i, size - 1, proof, rangeHash(0, size - 1, tree)));
    }
  });

  it.each(sizes)('proves and verifies consistency into a tree of %i leaves without 32-bit truncation', (size) => {
    const olds = [1, 2 ** 31, 2 ** 32, 2 ** 32 + 1, Math.floor(size / 2), size - 1].filter((m) => m < size);
    const tree = new SparseTree([0, 2 ** 32, size - 1, ...olds.map((m) => m - 1)]);
    const newRoot = rangeHash(0, size, tree);
    for (const m of olds) {
      const proof = consistencyProof(m, size, tree);
      const oldRoot = rangeHash(0, m, tree);
      expect(verifyConsistency(m, size, proof, oldRoot, newRoot), `${m} -> ${size}`).toEqual({ ok: true });
      expectRejected(verifyConsistency(m, size, proof, newRoot, oldRoot));
    }
  });
});

describe('tampered inclusion proofs', () => {
  // Leaves beyond 37 exist only so the wrong-size checks have real roots of other sizes.
  const leaves = randomLeaves(99, 50);
  const { src, roots } = build(leaves);
  const root = at(roots, 37);

  it('rejects an inclusion proof with one flipped bit in any step', () => {
    for (const i of [0, 1, 17, 31, 32, 36]) {
      const proof = inclusionProof(i, 37, src);
      for (let step = 0; step < proof.length; step++) {
        for (let bit = 0; bit < 8 * HASH_SIZE; bit++) {
          expectRejected(verifyInclusion(at(leaves, i), i, 37, flipBit(proof, step, bit), root));
        }
      }
    }
  });

  it('rejects an inclusion proof with a step added, removed or swapped', () => {
    for (let i = 0; i < 37; i++) {
      const proof = inclusionProof(i, 37, src);
      const leaf = at(leaves, i);
      expectRejected(verifyInclusion(leaf, i, 37, [...proof, SOME_HASH], root));
      expectRejected(verifyInclusion(leaf, i, 37, [SOME_HASH, ...proof], root));
      expectRejected(verifyInclusion(leaf, i, 37, proof.slice(1), root));
      expectRejected(verifyInclusion(leaf, i, 37, proof.slice(0, -1), root));
      expectRejected(verifyInclusion(leaf, i, 37, [...proof].reverse(), root));
    }
  });

  it('rejects an inclusion proof checked against the wrong index, size, leaf or root', () => {
    for (let i = 0; i < 37; i++) {
      const proof = inclusionProof(i, 37, src);
      const leaf = at(leaves, i);
      for (let j = 0; j < 37; j++) if (j !== i) expectRejected(verifyInclusion(leaf, j, 37, proof, root));
      // RFC 9162 binds the size only through the root (sizes 33..64 give leaf 0 the same path
      // shape), so the attack to rule out is presenting the proof against another size's real root.
      for (let n = 1; n <= 50; n++) if (n !== 37) expectRejected(verifyInclusion(leaf, i, n, proof, at(roots, n)));
      expectRejected(verifyInclusion(leaf, i, 74, proof, root));
      expectRejected(verifyInclusion(leaf, i, 18, proof, root));
      expectRejected(verifyInclusion(at(leaves, (i + 1) % 37), i, 37, proof, root));
      expectRejected(verifyInclusion(leaf, i, 37, proof, at(roots, 36)));
      expectRejected(verifyInclusion(leaf, i, 37, proof, EMPTY_ROOT));
    }
  });

  it('rejects an index at or beyond the tree size', () => {
    const proof = inclusionProof(36, 37, src);
    for (const index of [37, 38, 2 ** 40]) {
      const r = verifyInclusion(at(leaves, 36), index, 37, proof, root);
      expectRejected(r);
      expect(!r.ok && r.reason).toMatch(/not below tree size/);
    }
    expectRejected(verifyInclusion(at(leaves, 0), 0, 0, [], EMPTY_ROOT));
  });

  it('rejects hashes that are not 32 bytes in the leaf, root or any step without throwing', () => {
    const proof = inclusionProof(5, 37, src);
    const leaf = at(leaves, 5);
    for (const bad of [Buffer.alloc(0), Buffer.alloc(31), Buffer.alloc(33), 'a'.repeat(32), null, undefined, 7, {}] as unknown as Uint8Array[]) {
      expectRejected(verifyInclusion(bad, 5, 37, proof, root));
      expectRejected(verifyInclusion(leaf, 5, 37, proof, bad));
      for (let step = 0; step < proof.length; step++) {
        const p: Uint8Array[] = [...proof];
        p[step] = bad;
        expectRejected(verifyInclusion(leaf, 5, 37, p, root));
      }
    }
    // A 32-byte prefix of a longer buffer is not a 32-byte hash.
    expectRejected(verifyInclusion(Buffer.concat([leaf, Buffer.alloc(1)]), 5, 37, proof, root));
  });

  it('rejects negative, fractional, NaN, infinite and unsafe sizes without throwing', () => {
    const proof = inclusionProof(5, 37, src);
    const leaf = at(leaves, 5);
    for (const bad of [-1, -0.5, 1.5, Number.NaN, Infinity, -Infinity, 2 ** 53, 2 ** 64, '37', null, undefined, 37n] as unknown as number[]) {
      expectRejected(verifyInclusion(leaf, bad, 37, proof, root));
      expectRejected(verifyInclusion(leaf, 5, bad, proof, root));
      const r = rootFromInclusionProof(leaf, 5, bad, proof);
      expect(r.ok).toBe(false);
    }
  });

  it('rejects a proof that is not an array of hashes without throwing', () => {
    for (const bad of [null, undefined, 'proof', 42, {}, { length: 0 }, Buffer.alloc(64)] as unknown as Uint8Array[][]) {
      expectRejected(verifyInclusion(at(leaves, 0), 0, 37, bad, root));
    }
  });
});

describe('tampered consistency proofs', () => {
  const leaves = randomLeaves(123, 60);
  const { src, roots } = build(leaves);
  const rootOf = (n: number): Buffer => at(roots, n);

  it('rejects a consistency proof with one flipped bit in any step', () => {
    for (const [m, n] of [
      [1, 50],
      [3, 7],
      [16, 50],
      [17, 50],
      [32, 33],
      [49, 50],
    ] as const) {
      const proof = consistencyProof(m, n, src);
      for (let step = 0; step < proof.length; step++) {
        for (let bit = 0; bit < 8 * HASH_SIZE; bit++) {
          expectRejected(verifyConsistency(m, n, flipBit(proof, step, bit), rootOf(m), rootOf(n)));
        }
      }
    }
  });

  it('rejects a consistency proof with a step added, removed or reordered', () => {
    for (let m = 1; m < 50; m++) {
      const proof = consistencyProof(m, 50, src);
      const check = (p: Uint8Array[]): ProofResult => verifyConsistency(m, 50, p, rootOf(m), rootOf(50));
      expectRejected(check([...proof, SOME_HASH]));
      expectRejected(check([SOME_HASH, ...proof]));
      expectRejected(check([rootOf(m), ...proof]));
      expectRejected(check(proof.slice(1)));
      expectRejected(check(proof.slice(0, -1)));
      expectRejected(check([]));
      if (proof.length > 1) expectRejected(check([...proof].reverse()));
    }
  });

  it('rejects a consistency proof checked against the wrong sizes or roots', () => {
    for (let m = 1; m < 50; m++) {
      const proof = consistencyProof(m, 50, src);
      for (let other = 1; other < 50; other++) {
        if (other !== m) expectRejected(verifyConsistency(other, 50, proof, rootOf(m), rootOf(50)));
        if (other !== m) expectRejected(verifyConsistency(other, 50, proof, rootOf(other), rootOf(50)));
        if (other !== m) expectRejected(verifyConsistency(m, 50, proof, rootOf(other), rootOf(50)));
      }
      // As with inclusion, a new size is bound only through the new root.
      for (let n = m; n <= 60; n++) if (n !== 50) expectRejected(verifyConsistency(m, n, proof, rootOf(m), rootOf(n)));
      expectRejected(verifyConsistency(m, 100, proof, rootOf(m), rootOf(50)));
      expectRejected(verifyConsistency(m, 25, proof, rootOf(m), rootOf(50)));
      expectRejected(verifyConsistency(m, 50, proof, rootOf(m), rootOf(49)));
      expectRejected(verifyConsistency(m, 50, proof, rootOf(50), rootOf(m)));
    }
  });

  it('rejects an old size larger than the new size', () => {
    const r = verifyConsistency(8, 5, [], rootOf(8), rootOf(5));
    expectRejected(r);
    expect(!r.ok && r.reason).toMatch(/larger than/);
    expectRejected(verifyConsistency(1, 0, [], rootOf(1), EMPTY_ROOT));
  });

  it('accepts only an empty proof and equal roots between equal sizes', () => {
    for (const n of [1, 2, 7, 50]) {
      expect(verifyConsistency(n, n, [], rootOf(n), rootOf(n))).toEqual({ ok: true });
      expect(consistencyProof(n, n, src)).toEqual([]);
      expectRejected(verifyConsistency(n, n, [], rootOf(n), SOME_HASH));
      expectRejected(verifyConsistency(n, n, [rootOf(n)], rootOf(n), rootOf(n)));
      expectRejected(verifyConsistency(n, n, [EMPTY_ROOT], rootOf(n), rootOf(n)));
    }
  });

  it('treats size 0 as consistent with any tree, but only with an empty proof and the empty-tree root', () => {
    // RFC 9162 defines consistency proofs for 0 < old < new only; we accept the empty tree as the
    // trivial prefix of every tree and insist on its well-known root (see verifyConsistency).
    expect(consistencyProof(0, 50, src)).toEqual([]);
    expect(verifyConsistency(0, 50, [], EMPTY_ROOT, rootOf(50))).toEqual({ ok: true });
    expect(verifyConsistency(0, 0, [], EMPTY_ROOT, EMPTY_ROOT)).toEqual({ ok: true });
    expectRejected(verifyConsistency(0, 50, [], SOME_HASH, rootOf(50)));
    expectRejected(verifyConsistency(0, 50, [EMPTY_ROOT], EMPTY_ROOT, rootOf(50)));
    expectRejected(verifyConsistency(0, 0, [], SOME_HASH, SOME_HASH));
    expectRejected(verifyConsistency(0, 0, [], EMPTY_ROOT, SOME_HASH));
  });

  it('rejects hashes that are not 32 bytes in either root or any step without throwing', () => {
    const proof = consistencyProof(13, 50, src);
    for (const bad of [Buffer.alloc(0), Buffer.alloc(31), Buffer.alloc(33), 'x'.repeat(32), null, undefined, 1, []] as unknown as Uint8Array[]) {
      expectRejected(verifyConsistency(13, 50, proof, bad, rootOf(50)));
      expectRejected(verifyConsistency(13, 50, proof, rootOf(13), bad));
      expectRejected(verifyConsistency(5, 5, [], bad, bad));
      for (let step = 0; step < proof.length; step++) {
        const p: Uint8Array[] = [...proof];
        p[step] = bad;
        expectRejected(verifyConsistency(13, 50, p, rootOf(13), rootOf(50)));
      }
    }
  });

  it('rejects negative, fractional, NaN, infinite and unsafe sizes without throwing', () => {
    const proof = consistencyProof(13, 50, src);
    for (const bad of [-1, -13, 13.5, Number.NaN, Infinity, -Infinity, 2 ** 53, 2 ** 70, '13', null, undefined, 13n] as unknown as number[]) {
      expectRejected(verifyConsistency(bad, 50, proof, rootOf(13), rootOf(50)));
      expectRejected(verifyConsistency(13, bad, proof, rootOf(13), rootOf(50)));
    }
  });
});

describe('hostile input', () => {
  it('never throws on random garbage passed to the verifiers', () => {
    const next = rng(2024);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)] as T;
    const randomHash = (): Buffer => Buffer.from(Array.from({ length: HASH_SIZE }, () => Math.floor(next() * 256)));
    const values = (): unknown =>
      pick([
        () => Math.floor(next() * 20),
        () => -Math.floor(next() * 20),
        () => next() * 20,
        () => pick([Number.NaN, Infinity, -Infinity, 2 ** 53, Number.MAX_SAFE_INTEGER, -0, 0]),
        () => randomHash(),
        () => Buffer.alloc(Math.floor(next() * 70)),
        () => pick([null, undefined, 'str', {}, 5n, true, Symbol('s')]),
        () => Array.from({ length: Math.floor(next() * 6) }, () => pick([randomHash(), Buffer.alloc(3), null])),
      ])();
    for (let k = 0; k < 5000; k++) {
      const a = Array.from({ length: 5 }, values) as [never, never, never, never, never];
      const results = [verifyInclusion(a[0], a[1], a[2], a[3], a[4]), verifyConsistency(a[0], a[1], a[2], a[3], a[4]), rootFromInclusionProof(a[0], a[1], a[2], a[3])];
      for (const r of results) {
        if (!r.ok) expect(typeof r.reason).toBe('string');
      }
    }
  });
});

describe('proof generation', () => {
  const { src } = build(randomLeaves(5, 10));

  it('refuses out-of-range arguments with invalid_argument', () => {
    const calls = [
      () => inclusionProof(10, 10, src),
      () => inclusionProof(0, 0, src),
      () => inclusionProof(-1, 10, src),
      () => inclusionProof(1.5, 10, src),
      () => consistencyProof(11, 10, src),
      () => consistencyProof(-1, 10, src),
      () => consistencyProof(0, Number.NaN, src),
      () => rangeHash(5, 4, src),
      () => rangeHash(0, 2 ** 53, src),
    ];
    for (const call of calls) {
      let caught: unknown;
      try {
        call();
      } catch (e) {
        caught = e;
      }
      expect(isWitnessError(caught, 'invalid_argument')).toBe(true);
    }
  });

  it('reports a node source that returns a missing or malformed hash as invalid_argument', () => {
    const broken: NodeSource = { node: (level) => (level === 0 ? Buffer.alloc(HASH_SIZE) : (undefined as unknown as Uint8Array)) };
    expect(() => rangeHash(0, 4, broken)).toThrow(expect.objectContaining({ code: 'invalid_argument' }));
    const short: NodeSource = { node: () => Buffer.alloc(16) };
    expect(() => inclusionProof(0, 2, short)).toThrow(expect.objectContaining({ code: 'invalid_argument' }));
  });

  it('hashes the empty range to the empty-tree root without touching the source', () => {
    const untouchable: NodeSource = {
      node: () => {
        throw new Error('should not be called');
      },
    };
    expect(rangeHash(7, 7, untouchable)).toEqual(EMPTY_ROOT);
  });
});

describe('Frontier', () => {
  it('starts empty with the empty-tree root', () => {
    const f = Frontier.empty();
    expect(f.size).toBe(0);
    expect(f.root()).toEqual(EMPTY_ROOT);
    expect(f.toJSON()).toEqual({ size: 0, hashes: [] });
  });

  it('returns the leaf and every completed parent from push', () => {
    const f = Frontier.fromJSON(Frontier.empty().toJSON());
    const leaves = randomLeaves(3, 8);
    const levels = leaves.map((l) => f.push(l).map((n) => [n.level, n.index]));
    expect(levels).toEqual([
      [[0, 0]],
      [
        [0, 1],
        [1, 0],
      ],
      [[0, 2]],
      [
        [0, 3],
        [1, 1],
        [2, 0],
      ],
      [[0, 4]],
      [
        [0, 5],
        [1, 2],
      ],
      [[0, 6]],
      [
        [0, 7],
        [1, 3],
        [2, 1],
        [3, 0],
      ],
    ]);
  });

  it('round-trips through JSON at every size and keeps growing identically', () => {
    const leaves = randomLeaves(11, 70);
    const f = Frontier.empty();
    for (let n = 0; n < leaves.length; n++) {
      const copy = Frontier.fromJSON(JSON.parse(JSON.stringify(f)));
      expect(copy.size).toBe(n);
      expect(copy.root()).toEqual(f.root());
      expect(copy.toJSON()).toEqual(f.toJSON());
      const a = f.push(at(leaves, n));
      const b = copy.push(at(leaves, n));
      expect(b).toEqual(a);
      expect(copy.root()).toEqual(f.root());
    }
  });

  it('restores a frontier near 2^53 and refuses to grow past the largest safe size', () => {
    const full = Frontier.fromJSON({ size: Number.MAX_SAFE_INTEGER, hashes: Array.from({ length: 53 }, () => 'ab'.repeat(32)) });
    expect(() => full.push(leafHash(Buffer.from('x')))).toThrow(expect.objectContaining({ code: 'invalid_argument' }));
    const almost = Frontier.fromJSON({ size: Number.MAX_SAFE_INTEGER - 1, hashes: Array.from({ length: 52 }, () => 'cd'.repeat(32)) });
    const created = almost.push(leafHash(Buffer.from('x')));
    expect(created.map((n) => [n.level, n.index])).toEqual([[0, Number.MAX_SAFE_INTEGER - 1]]);
    expect(almost.size).toBe(Number.MAX_SAFE_INTEGER);
  });

  const malformed: Array<[string, unknown]> = [
    ['null', null],
    ['an array', []],
    ['a string', '{"size":0,"hashes":[]}'],
    ['an empty object', {}],
    ['a missing hashes field', { size: 0 }],
    ['hashes that are not an array', { size: 1, hashes: 'ab'.repeat(32) }],
    ['a negative size', { size: -1, hashes: [] }],
    ['a fractional size', { size: 1.5, hashes: ['ab'.repeat(32)] }],
    ['a string size', { size: '1', hashes: ['ab'.repeat(32)] }],
    ['an unsafe size', { size: 2 ** 53, hashes: ['ab'.repeat(32)] }],
    ['a NaN size', { size: Number.NaN, hashes: [] }],
    ['too few hashes for the size', { size: 3, hashes: ['ab'.repeat(32)] }],
    ['too many hashes for the size', { size: 4, hashes: ['ab'.repeat(32), 'cd'.repeat(32)] }],
    ['hashes for an empty tree', { size: 0, hashes: ['ab'.repeat(32)] }],
    ['a short hash', { size: 1, hashes: ['ab'.repeat(31)] }],
    ['a long hash', { size: 1, hashes: ['ab'.repeat(33)] }],
    ['uppercase hex', { size: 1, hashes: ['AB'.repeat(32)] }],
    ['non-hex characters', { size: 1, hashes: ['zz'.repeat(32)] }],
    ['a number instead of a hash', { size: 1, hashes: [42] }],
    ['a null hash', { size: 1, hashes: [null] }],
  ];

  it.each(malformed)('rejects frontier JSON with %s as invalid_proof', (_desc, input) => {
    let caught: unknown;
    try {
      Frontier.fromJSON(input as never);
    } catch (e) {
      caught = e;
    }
    expect(isWitnessError(caught, 'invalid_proof')).toBe(true);
  });

  it('refuses leaf hashes that are not 32 bytes', () => {
    const f = Frontier.empty();
    for (const bad of [Buffer.alloc(0), Buffer.alloc(31), Buffer.alloc(33), 'ab'.repeat(32)] as unknown as Uint8Array[]) {
      expect(() => f.push(bad)).toThrow(expect.objectContaining({ code: 'invalid_argument' }));
    }
    expect(f.size).toBe(0);
  });

  it('shares no buffers with its callers', () => {
    const leaves = randomLeaves(8, 5);
    const f = Frontier.empty();
    const input = Buffer.from(at(leaves, 0));
    const created = f.push(input);
    const before = f.root();
    input.fill(0);
    at(created, 0).hash.fill(0);
    f.root().fill(0);
    expect(f.root()).toEqual(before);
    Frontier.empty().root().fill(0);
    expect(hex(EMPTY_ROOT)).toBe(V.emptyRoot);
  });
});
