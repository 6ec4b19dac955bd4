import type { Ledger } from '../../../src/store/index.js';

/**
 * What a driver hands the contract suite (test/store/ledger.contract.ts). Everything runs on the
 * real database: a fresh SQLite file, a fresh PostgreSQL schema; no mocks.
 */
export interface DriverUnderTest {
  name: string;
  /** A fresh, empty, writable ledger with a signing key of its own. */
  open(): Promise<Ledger>;
  /**
   * Another handle on the same store as `l`, as a second process would open it: a writer with its
   * own connection (two-writer concurrency, reopening), or a reader that needs no private key.
   */
  openAgain(l: Ledger, options?: { readonly?: boolean }): Promise<Ledger>;
  /** Whether `openAgain(l, { readonly: true })` is supported; when false those tests are skipped. */
  readonly: boolean;
  /**
   * How a separate Node process reaches the same store through dist's `openLedger(url)`: the URL
   * and the environment it needs (a signing key, credentials). Omit to skip the cross-process tests.
   */
  childStore?(l: Ledger): { url: string; env?: Record<string, string> };
  /**
   * A copy of the store of `l`, which the caller has closed, taken the way an operator backs it up
   * (SQLite: the database file and what lives beside it, not the -wal/-shm files of a store that
   * is closed), opened as a ledger. Omit to skip the copy test.
   */
  copyClosed?(l: Ledger): Promise<Ledger>;
  /**
   * The test-only edit hook: changes the stored ledger as someone with write access to the
   * database would, in the driver-neutral vocabulary below. With `bypass: true` (the default) the
   * driver's protections (triggers, grants) are lifted for the edit and restored afterwards; with
   * `bypass: false` the same edit is attempted through the store's own surface (plain SQL) and the
   * contract expects the store to refuse it.
   */
  edit(l: Ledger, op: LedgerEdit, options?: { bypass?: boolean }): Promise<void>;
}

/**
 * One stored event as the edit hook writes it: the bytes that matter for integrity. Whatever else
 * a driver stores per event (query columns, index entries) it derives from `header`, as a careful
 * forger would, so that only the chain, the tree and the signatures can tell.
 */
export interface EventImage {
  pos: number;
  id: string;
  stream: string;
  seq: number;
  /** The canonical header text exactly as hashed. */
  header: string;
  /** The canonical payload text; null when erased. */
  data: string | null;
  salt: Buffer | null;
  hash: Buffer;
}

/**
 * The tamper operations every driver implements. Positions are global leaf indices; checkpoint ids
 * are those `checkpoints()` lists.
 */
export type LedgerEdit =
  /** Replace the stored payload text of one event (nothing else). */
  | { kind: 'rewriteData'; pos: number; data: string | null }
  /** Replace (or erase) the payload salt of one event. */
  | { kind: 'rewriteSalt'; pos: number; salt: Buffer | null }
  /** Replace the header of one event, keeping what the driver derives from it in step; the stored hash too when given. */
  | { kind: 'rewriteHeader'; pos: number; header: string; hash?: Buffer }
  /** Replace only the stored hash. */
  | { kind: 'rewriteHash'; pos: number; hash: Buffer }
  /** Write an event over the one at `row.pos` (a REPLACE: old row gone, new one in its place). */
  | { kind: 'replaceEvent'; row: EventImage }
  /** Remove one event; later positions stay where they are (a hole). */
  | { kind: 'deleteEvent'; pos: number }
  /** Add an event at `row.pos`; when that position is taken, it and every later event move up by one. */
  | { kind: 'insertEvent'; row: EventImage }
  /** Exchange the global positions of two events. */
  | { kind: 'swapEvents'; a: number; b: number }
  /** Remove every event at position `from` and beyond. */
  | { kind: 'truncateTail'; from: number }
  /** Replace the signed note and/or the stored consistency proof (hex hashes) of one checkpoint. */
  | { kind: 'rewriteCheckpoint'; id: number; note?: string; consistency?: string[] }
  /** Remove every checkpoint whose id is `from` or later. */
  | { kind: 'deleteCheckpoints'; from: number }
  /** Remove every stored Merkle tree node (what the sealer keeps to serve proofs and resume). */
  | { kind: 'dropTreeNodes' }
  /** Replace the ledger's own public key (the first recorded) with another text. */
  | { kind: 'rewritePublicKey'; vkey: string }
  /** Replace the stored bytes of an artifact, keeping its name (digest). */
  | { kind: 'rewriteArtifact'; sha256: string; bytes: Buffer }
  /** Remove the stored bytes of an artifact. */
  | { kind: 'deleteArtifact'; sha256: string }
  /** Remove the sealer's record of its last checkpoint, kept outside the database (at `sealRecordLocation`). */
  | { kind: 'forgetSealRecord' }
  /**
   * Null `data` and `salt` of one event (and set its header when given) through the purge guard's
   * own door but with no retention.purge record listing it (SQLite: a record listing no leaf is
   * appended on the hook's connection first; PostgreSQL: the transaction's witness.purge flag is
   * set by hand). With `bypass: false` the guard decides: it must admit the bare erasure (which
   * verify then reports as uncovered_purge) and refuse any change to the header.
   */
  | { kind: 'guardedPurge'; pos: number; header?: string };
