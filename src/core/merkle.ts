import crypto, { createHash } from 'node:crypto';
import { WitnessError } from './errors.js';

/**
 * RFC 6962 / RFC 9162 Merkle tree hashing over SHA-256. Pure: the caller supplies stored nodes
 * through a NodeSource, so the same code serves the sealer (SQLite, PostgreSQL) and `verify`.
 *
 * Sizes and indices are plain numbers, limited to safe integers (2^53 - 1 leaves is far beyond any
 * ledger). Every shift is therefore done with division, never with the 32-bit bitwise operators.
 */

export const HASH_SIZE = 32;

// The one-byte prefixes keep a leaf from ever being mistaken for an interior node (second preimage).
const LEAF_PREFIX = Buffer.from([0x00]);
const NODE_PREFIX = Buffer.from([0x01]);

// crypto.hash (Node >= 20.12) digests one buffer without a Hash object, several times cheaper for
// 33- and 65-byte inputs; verify computes two of these per event.
const oneShot = (crypto as { hash?: (alg: string, data: Uint8Array, enc: 'buffer') => Buffer }).hash;

function digestOf(buf: Buffer): Buffer {
  return oneShot === undefined ? createHash('sha256').update(buf).digest() : oneShot('sha256', buf, 'buffer');
}

export function leafHash(entry: Uint8Array): Buffer {
  const buf = Buffer.allocUnsafe(1 + entry.length);
  buf[0] = LEAF_PREFIX[0]!;
  buf.set(entry, 1);
  return digestOf(buf);
}

export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  if (!isHash(left) || !isHash(right)) {
    throw new WitnessError('invalid_argument', `Merkle node children must be ${HASH_SIZE}-byte hashes.`);
  }
  const buf = Buffer.allocUnsafe(1 + 2 * HASH_SIZE);
  buf[0] = NODE_PREFIX[0]!;
  buf.set(left, 1);
  buf.set(right, 1 + HASH_SIZE);
  return digestOf(buf);
}

/** MTH({}) = SHA-256(""). Shared instance: copy it before handing it to code that may mutate. */
export const EMPTY_ROOT: Buffer = createHash('sha256').digest();

export function isHash(h: unknown): h is Uint8Array {
  return h instanceof Uint8Array && h.length === HASH_SIZE;
}

function isSize(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

function sameHash(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}

/** Largest power of two strictly below n (n >= 2): where MTH splits D[n]. */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function isPowerOfTwo(n: number): boolean {
  let k = 1;
  while (k < n) k *= 2;
  return k === n;
}

const half = (n: number): number => Math.floor(n / 2);

/** Naive MTH straight from RFC 6962 2.1; the reference the incremental paths are tested against. */
export function rootFromLeafHashes(leaves: readonly Uint8Array[]): Buffer {
  for (const [i, h] of leaves.entries()) {
    if (!isHash(h)) {
      throw new WitnessError('invalid_argument', `Leaf hash ${i} is not ${HASH_SIZE} bytes; pass leafHash(entry) values.`, {
        details: { index: i },
      });
    }
  }
  const mth = (start: number, end: number): Buffer => {
    const n = end - start;
    if (n === 0) return Buffer.from(EMPTY_ROOT);
    if (n === 1) return Buffer.from(leaves[start] as Uint8Array);
    const k = splitPoint(n);
    return nodeHash(mth(start, start + k), mth(start + k, end));
  };
  return mth(0, leaves.length);
}

/** Source of complete, aligned subtree hashes: node(level, index) covers leaves [index*2^level, (index+1)*2^level). level 0 = leaf hash. */
export interface NodeSource {
  node(level: number, index: number): Uint8Array;
}

function fetchNode(src: NodeSource, level: number, index: number): Uint8Array {
  const h = src.node(level, index);
  if (!isHash(h)) {
    throw new WitnessError('invalid_argument', `Merkle node (level ${level}, index ${index}) is missing or not ${HASH_SIZE} bytes.`, {
      details: { level, index },
    });
  }
  return h;
}

/** Level of the complete node that covers exactly [start, start + n), if there is one. */
function alignedLevel(start: number, n: number): number | undefined {
  let width = 1;
  let level = 0;
  while (width < n) {
    width *= 2;
    level += 1;
  }
  return width === n && start % width === 0 ? level : undefined;
}

function checkRange(start: number, end: number): void {
  if (!isSize(start) || !isSize(end) || start > end) {
    throw new WitnessError('invalid_argument', `Leaf range [${String(start)}, ${String(end)}) is not a range of safe non-negative integers.`);
  }
}

/** Hash of the (possibly incomplete) subtree over leaves [start, end) as MTH defines it, built from complete nodes only (split at largest power of two). */
export function rangeHash(start: number, end: number, src: NodeSource): Buffer {
  checkRange(start, end);
  const hash = (s: number, e: number): Buffer => {
    const n = e - s;
    if (n === 0) return Buffer.from(EMPTY_ROOT);
    const level = alignedLevel(s, n);
    if (level !== undefined) return Buffer.from(fetchNode(src, level, s / 2 ** level));
    const k = splitPoint(n);
    return nodeHash(hash(s, s + k), hash(s + k, e));
  };
  return hash(start, end);
}

/** RFC 6962 2.1.1 PATH(index, D[size]), leaf-side step first. */
export function inclusionProof(index: number, size: number, src: NodeSource): Buffer[] {
  if (!isSize(index) || !isSize(size) || index >= size) {
    throw new WitnessError('invalid_argument', `No inclusion proof for leaf ${String(index)} in a tree of size ${String(size)}; the index must be below the size.`);
  }
  const proof: Buffer[] = [];
  // Recursion depth is the tree height (at most 53), so the stack is never a concern.
  const path = (start: number, end: number): void => {
    const n = end - start;
    if (n === 1) return;
    const mid = start + splitPoint(n);
    if (index < mid) {
      path(start, mid);
      proof.push(rangeHash(mid, end, src));
    } else {
      path(mid, end);
      proof.push(rangeHash(start, mid, src));
    }
  };
  path(0, size);
  return proof;
}

/**
 * RFC 6962 2.1.2 PROOF(oldSize, D[newSize]). The RFC defines it only for 0 < oldSize < newSize;
 * for oldSize 0 or oldSize == newSize this returns the empty proof, which is exactly what
 * verifyConsistency accepts for those cases.
 */
export function consistencyProof(oldSize: number, newSize: number, src: NodeSource): Buffer[] {
  if (!isSize(oldSize) || !isSize(newSize) || oldSize > newSize) {
    throw new WitnessError('invalid_argument', `No consistency proof from size ${String(oldSize)} to ${String(newSize)}; sizes must be safe integers with old <= new.`);
  }
  if (oldSize === 0 || oldSize === newSize) return [];
  const proof: Buffer[] = [];
  // m is absolute: the old tree always ends at leaf oldSize, wherever the current subtree starts.
  const subproof = (start: number, end: number, complete: boolean): void => {
    if (oldSize === end) {
      if (!complete) proof.push(rangeHash(start, end, src));
      return;
    }
    const mid = start + splitPoint(end - start);
    if (oldSize <= mid) {
      subproof(start, mid, complete);
      proof.push(rangeHash(mid, end, src));
    } else {
      subproof(mid, end, false);
      proof.push(rangeHash(start, mid, src));
    }
  };
  subproof(0, newSize, true);
  return proof;
}

export type ProofResult = { ok: true } | { ok: false; reason: string };
export type RootResult = { ok: true; root: Buffer } | { ok: false; reason: string };

const fail = (reason: string): { ok: false; reason: string } => ({ ok: false, reason });

/** Why a proof array is unusable, or undefined if every step is a 32-byte hash. */
function badProof(proof: unknown): string | undefined {
  if (!Array.isArray(proof)) return 'proof is not an array of hashes';
  for (const [i, step] of (proof as unknown[]).entries()) {
    if (!isHash(step)) return `proof step ${i} is not a ${HASH_SIZE}-byte hash`;
  }
  return undefined;
}

/**
 * The root that an inclusion proof implies, per RFC 9162 2.1.3.2. `leaf` is the leaf hash
 * (leafHash(entry)), not the entry. Never throws: hostile input yields ok: false.
 */
export function rootFromInclusionProof(leaf: Uint8Array, index: number, size: number, proof: readonly Uint8Array[]): RootResult {
  if (!isSize(index)) return fail('leaf index is not a safe non-negative integer');
  if (!isSize(size)) return fail('tree size is not a safe non-negative integer');
  if (index >= size) return fail(`leaf index ${index} is not below tree size ${size}`);
  if (!isHash(leaf)) return fail(`leaf hash is not ${HASH_SIZE} bytes`);
  const bad = badProof(proof);
  if (bad !== undefined) return fail(bad);

  let fn = index;
  let sn = size - 1;
  let r: Buffer = Buffer.from(leaf);
  for (const p of proof) {
    if (sn === 0) return fail(`proof has ${proof.length} steps, more than a tree of size ${size} needs for leaf ${index}`);
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      // A right-edge node with no sibling is promoted unchanged, so skip the levels it rises through.
      while (fn % 2 === 0 && fn !== 0) {
        fn /= 2;
        sn = half(sn);
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  if (sn !== 0) return fail(`proof has ${proof.length} steps, fewer than a tree of size ${size} needs for leaf ${index}`);
  return { ok: true, root: r };
}

/**
 * RFC 9162 2.1.3.2. `leaf` is the leaf hash (leafHash(entry)). Never throws.
 * The proof binds `size` only through `root` (sizes whose paths have the same shape are
 * indistinguishable), so root and size must come together from one signed checkpoint.
 */
export function verifyInclusion(leaf: Uint8Array, index: number, size: number, proof: readonly Uint8Array[], root: Uint8Array): ProofResult {
  if (!isHash(root)) return fail(`root is not ${HASH_SIZE} bytes`);
  const got = rootFromInclusionProof(leaf, index, size, proof);
  if (!got.ok) return got;
  if (!sameHash(got.root, root)) return fail(`inclusion proof for leaf ${index} leads to a different root for tree size ${size}`);
  return { ok: true };
}

/**
 * RFC 9162 2.1.4.2, which covers 0 < oldSize < newSize. Outside that range:
 * - oldSize == newSize: consistent iff the proof is empty and the roots are equal (RFC 9162 2.1.4.2);
 * - oldSize == 0: trivially consistent (every tree extends the empty tree) iff the proof is empty
 *   and oldRoot is EMPTY_ROOT; we check the root so a forged "empty" checkpoint cannot slip by.
 * Never throws.
 */
export function verifyConsistency(oldSize: number, newSize: number, proof: readonly Uint8Array[], oldRoot: Uint8Array, newRoot: Uint8Array): ProofResult {
  if (!isSize(oldSize)) return fail('old tree size is not a safe non-negative integer');
  if (!isSize(newSize)) return fail('new tree size is not a safe non-negative integer');
  if (oldSize > newSize) return fail(`old tree size ${oldSize} is larger than new tree size ${newSize}`);
  if (!isHash(oldRoot)) return fail(`old root is not ${HASH_SIZE} bytes`);
  if (!isHash(newRoot)) return fail(`new root is not ${HASH_SIZE} bytes`);
  const bad = badProof(proof);
  if (bad !== undefined) return fail(bad);

  if (oldSize === 0) {
    if (proof.length !== 0) return fail('a consistency proof from the empty tree must be empty');
    if (!sameHash(oldRoot, EMPTY_ROOT)) return fail('old root is not the empty-tree root for size 0');
    if (newSize === 0 && !sameHash(newRoot, EMPTY_ROOT)) return fail('new root is not the empty-tree root for size 0');
    return { ok: true };
  }
  if (oldSize === newSize) {
    if (proof.length !== 0) return fail('a consistency proof between equal sizes must be empty');
    if (!sameHash(oldRoot, newRoot)) return fail(`roots differ for the same tree size ${oldSize}`);
    return { ok: true };
  }
  if (proof.length === 0) return fail(`empty consistency proof from size ${oldSize} to ${newSize}`);

  // When the old tree is a complete subtree its root is a node of the new tree, so it is not sent.
  const path: readonly Uint8Array[] = isPowerOfTwo(oldSize) ? [oldRoot, ...proof] : proof;
  let fn = oldSize - 1;
  let sn = newSize - 1;
  while (fn % 2 === 1) {
    fn = half(fn);
    sn = half(sn);
  }
  let fr: Buffer = Buffer.from(path[0] as Uint8Array);
  let sr: Buffer = Buffer.from(fr);
  for (const c of path.slice(1)) {
    if (sn === 0) return fail(`proof has ${proof.length} steps, more than sizes ${oldSize} -> ${newSize} need`);
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while (fn % 2 === 0 && fn !== 0) {
        fn /= 2;
        sn = half(sn);
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  if (sn !== 0) return fail(`proof has ${proof.length} steps, fewer than sizes ${oldSize} -> ${newSize} need`);
  if (!sameHash(fr, oldRoot)) return fail(`consistency proof does not reproduce the old root of size ${oldSize}`);
  if (!sameHash(sr, newRoot)) return fail(`consistency proof does not reproduce the new root of size ${newSize}`);
  return { ok: true };
}

export interface FrontierJSON {
  size: number;
  hashes: string[];
}

export interface CreatedNode {
  level: number;
  index: number;
  hash: Buffer;
}

function popcount(n: number): number {
  let bits = 0;
  for (let x = n; x > 0; x = half(x)) bits += x % 2;
  return bits;
}

const HEX_HASH = /^[0-9a-f]{64}$/;

/**
 * Incremental tree ("compact range" / frontier of the right edge): O(log n) memory. It holds the
 * roots of the perfect subtrees that make up [0, size), largest (leftmost) first, one per set bit
 * of size, which is all that appending and computing the root ever need.
 */
export class Frontier {
  #size: number;
  readonly #hashes: Buffer[];

  private constructor(size: number, hashes: Buffer[]) {
    this.#size = size;
    this.#hashes = hashes;
  }

  static empty(): Frontier {
    return new Frontier(0, []);
  }

  /** Rejects anything toJSON could not have produced, since a frontier is restored from storage and checkpoints. */
  static fromJSON(s: unknown): Frontier {
    const invalid = (why: string): WitnessError => new WitnessError('invalid_proof', `Merkle frontier is malformed: ${why}.`);
    if (typeof s !== 'object' || s === null || Array.isArray(s)) throw invalid('expected an object {size, hashes}');
    const { size, hashes } = s as { size?: unknown; hashes?: unknown };
    if (!isSize(size)) throw invalid('size must be a safe non-negative integer');
    if (!Array.isArray(hashes)) throw invalid('hashes must be an array of hex strings');
    const want = popcount(size);
    if (hashes.length !== want) throw invalid(`size ${size} needs ${want} hashes, got ${hashes.length}`);
    const parsed = (hashes as unknown[]).map((h, i) => {
      if (typeof h !== 'string' || !HEX_HASH.test(h)) throw invalid(`hashes[${i}] is not 64 lowercase hex characters`);
      return Buffer.from(h, 'hex');
    });
    return new Frontier(size, parsed);
  }

  toJSON(): FrontierJSON {
    return { size: this.#size, hashes: this.#hashes.map((h) => h.toString('hex')) };
  }

  get size(): number {
    return this.#size;
  }

  /** Appends one leaf hash; returns the complete nodes created by this push (level>=0, including the leaf itself at level 0), so a store can persist them for later proofs. */
  push(leafHash: Uint8Array): CreatedNode[] {
    const created: CreatedNode[] = [];
    this.#add(leafHash, created);
    return created;
  }

  /** Appends one leaf hash without reporting nodes: what verify needs, at a fraction of the cost. */
  append(leafHash: Uint8Array): void {
    this.#add(leafHash, undefined);
  }

  #add(leafHash: Uint8Array, created: CreatedNode[] | undefined): void {
    if (!isHash(leafHash)) throw new WitnessError('invalid_argument', `Leaf hash must be ${HASH_SIZE} bytes; pass leafHash(entry).`);
    if (this.#size >= Number.MAX_SAFE_INTEGER) throw new WitnessError('invalid_argument', 'Merkle tree is full: size would exceed 2^53 - 1.');
    let hash: Buffer = Buffer.from(leafHash);
    let index = this.#size;
    let level = 0;
    created?.push({ level, index, hash: Buffer.from(hash) });
    // Each trailing one bit of the old size is a left sibling waiting for exactly this node.
    for (let rest = this.#size; rest % 2 === 1; rest = half(rest)) {
      hash = nodeHash(this.#hashes.pop() as Buffer, hash);
      level += 1;
      index = half(index);
      // Callers get their own copy: the frontier keeps `hash` and must not see their writes.
      created?.push({ level, index, hash: Buffer.from(hash) });
    }
    this.#hashes.push(hash);
    this.#size += 1;
  }

  root(): Buffer {
    const last = this.#hashes.length - 1;
    if (last < 0) return Buffer.from(EMPTY_ROOT);
    let r = this.#hashes[last] as Buffer;
    for (let i = last - 1; i >= 0; i--) r = nodeHash(this.#hashes[i] as Buffer, r);
    return Buffer.from(r);
  }
}
