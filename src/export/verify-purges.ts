import fs from 'node:fs';
import { ChainChecker, PurgeCover, canonicalize, genesisHash, leafHash, purgeRecordOf, strictParse, verifyInclusion, type Failure, type PurgeRecord } from '../core/index.js';
import { readLines, type BundleFile } from './bundle-files.js';
import { BUNDLE_LIMITS, ProofReader, checkBundleEvent } from './bundle-checks.js';
import { PURGES_FILE, PURGE_PROOFS_FILE, purgeHeaderProblem } from './purges.js';

/** The purge records of a bundle that passed every check of docs/FORMAT.md 7.13: which leaves they list, and by which record. */
export interface BundlePurges {
  cover: PurgeCover;
  records: Map<number, PurgeRecord>;
}

/**
 * Reads purges.jsonl beside purge-proofs.jsonl (docs/FORMAT.md 7.13), before events.jsonl: each
 * line a stored event with its payload, its header, payload digest and hash checked as any event's,
 * its proof leading to the checkpoint's root, and it must be a retention.purge record of
 * witness.retention by the CLI or the server whose leaves are ascending, disjoint, below its own
 * leaf and add up to its count. A line that fails covers nothing, and is reported. Undefined when
 * the bundle has no purges.jsonl.
 */
export function readBundlePurges(
  open: (name: string, max: number) => BundleFile,
  cp: { size: number; rootHash: Uint8Array },
  origin: string,
  fail: (f: Failure) => void,
  warn: (w: string) => void,
): BundlePurges | undefined {
  const f = open(PURGES_FILE, BUNDLE_LIMITS.fileBytes);
  if ('missing' in f) return undefined;
  const records = new Map<number, PurgeRecord>();
  const done = () => ({ cover: PurgeCover.of([...records.values()]), records });
  if (!('fd' in f)) {
    fail({ code: 'bundle_invalid', reason: `${PURGES_FILE} is not a regular file within its cap.` });
    return done();
  }
  const pf = open(PURGE_PROOFS_FILE, BUNDLE_LIMITS.fileBytes);
  const proofs = new ProofReader('fd' in pf ? readLines(pf, BUNDLE_LIMITS.proofLineBytes) : undefined, fail, PURGE_PROOFS_FILE);
  let last = -1;
  try {
    for (const read of readLines(f, BUNDLE_LIMITS.eventLineBytes)) {
      if ('tooLong' in read) {
        fail({ code: 'bundle_invalid', reason: `${PURGES_FILE} line ${read.n} is longer than any recorded event.` });
        break;
      }
      if (read.text.trim() === '') continue;
      const bad = (reason: string, leaf?: number) =>
        fail({ code: 'bundle_invalid', ...(leaf === undefined ? {} : { leaf }), reason: `${PURGES_FILE} line ${read.n} ${reason}; it lists no purged payload.` });
      let ev: Record<string, unknown>;
      try {
        const p = strictParse(read.text);
        if (typeof p !== 'object' || p === null || Array.isArray(p)) throw new Error('not a JSON object');
        ev = p as Record<string, unknown>;
      } catch (e) {
        bad(`is not strict JSON (${(e as Error).message})`);
        continue;
      }
      const { data, salt, hash, leaf, ...header } = ev;
      if (typeof leaf !== 'number' || !Number.isSafeInteger(leaf) || leaf < 0 || typeof hash !== 'string' || !/^[0-9a-f]{64}$/.test(hash)) {
        bad('lacks a valid leaf index or hash');
        continue;
      }
      if (leaf <= last) {
        bad(`holds leaf ${leaf} after leaf ${last}, out of order`, leaf);
        continue;
      }
      last = leaf;
      const stream = typeof header['stream'] === 'string' ? header['stream'] : '';
      const seq = typeof header['seq'] === 'number' ? header['seq'] : -1;
      const at = { stream, seq, leaf };
      let headerText: string;
      let dataText: string | null = null;
      try {
        headerText = canonicalize(header);
        if (data !== null && data !== undefined) dataText = canonicalize(data);
      } catch (e) {
        fail({ code: 'non_canonical', ...at, reason: `The purge record in ${PURGES_FILE} cannot be canonicalised: ${(e as Error).message}` });
        continue;
      }
      // Each record on its own: records of witness.retention between them are not in the bundle.
      let failed = false;
      const chain = new ChainChecker(
        origin,
        (x) => {
          failed = true;
          fail(x);
        },
        warn,
        false,
        true,
      );
      const entries = chain.trackEntries();
      const recomputed = checkBundleEvent(chain, { leaf, stream, seq, header, headerText, dataText, salt, hash });
      const first = entries[0];
      if (first !== undefined && first.seq === 0 && first.prev !== genesisHash(origin, first.stream).toString('hex')) {
        fail({ code: 'wrong_genesis', ...at, reason: `Stream ${first.stream} does not start from this ledger's genesis for it: the purge record was moved from another stream or ledger.` });
        failed = true;
      }
      const p = proofs.take(leaf);
      if (p === undefined || p.size !== cp.size) {
        fail({ code: 'inclusion_failed', ...at, reason: `The purge record at leaf ${leaf} has no inclusion proof in ${PURGE_PROOFS_FILE} for the checkpoint's size ${cp.size}.` });
        continue;
      }
      const r = verifyInclusion(leafHash(recomputed), leaf, cp.size, p.proof, cp.rootHash);
      if (!r.ok) {
        fail({ code: 'inclusion_failed', ...at, reason: `The purge record at leaf ${leaf} is not in the signed tree of size ${cp.size}: ${r.reason}.` });
        continue;
      }
      if (failed) continue;
      const wrong = purgeHeaderProblem(header);
      if (wrong !== undefined) {
        bad(`holds the event at leaf ${leaf}, which ${wrong}`, leaf);
        continue;
      }
      const rec = purgeRecordOf({
        leaf,
        id: String(header['id']),
        kind: String(header['kind']),
        payloadDigest: String(header['payload_digest']),
        data: dataText,
        salt: typeof salt === 'string' ? salt : null,
      });
      if (typeof rec === 'string') {
        // The payload matched its digest (the chain check passed), so what is wrong is its shape.
        bad(dataText === null ? `holds the purge record at leaf ${leaf} without its payload, so what it lists cannot be read` : `is not a purge record a bundle can rely on: ${rec}`, leaf);
        continue;
      }
      records.set(leaf, rec);
    }
    proofs.drain();
  } finally {
    fs.closeSync(f.fd);
    if ('fd' in pf) fs.closeSync(pf.fd);
  }
  if (!('fd' in pf)) fail({ code: 'bundle_invalid', reason: `The bundle has ${PURGES_FILE} but no readable ${PURGE_PROOFS_FILE}, so no purge record can be shown to be in the signed tree.` });
  return done();
}
