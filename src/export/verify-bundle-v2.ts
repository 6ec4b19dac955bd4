import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
  ChainChecker,
  MAX_FAILURES,
  WitnessError,
  EventHeader,
  canonicalize,
  genesisHash,
  judgeCheckpointKeys,
  keyFingerprint,
  leafHash,
  openCheckpoint,
  parseVerifierKey,
  selectVerifiers,
  strictParse,
  trustedKeys,
  verifyConsistency,
  verifyInclusion,
  type Checkpoint,
  type Failure,
  type KeyWindow,
  type NoteKeyId,
  type NoteVerifier,
  type VerifyReport,
} from '../core/index.js';
import { countLines, openBundleFile, readLines, readWhole, sha256OfFile, type BundleFile } from './bundle-files.js';
import { ARTIFACT_NAME, BUNDLE_LIMITS, LeafRanges, POPULATION_NAME, ProofReader, V2_CAPS, capOfName, checkBundleEvent, lenientPosition, type NoPayloadReason } from './bundle-checks.js';
import { BOUND_FILES, BundleManifestV2, CheckpointLine, ExportRecord, KeyHistory, PopulationIndex, artifactExtension, type BundleMode, type BundleScope } from './bundle-format.js';
import { bundleKeyWindows, keyHistoryProblems } from './key-history.js';
import { EventsDigest, POPULATIONS, PopulationBuilder, ScopeTracker, type ScopedHeader } from './populations.js';
import { GOVERNANCE_KINDS, isRotationHeader, purgeSentence } from './purges.js';
import { readBundlePurges } from './verify-purges.js';

/** The stream and action of the audit.access event an export appends (bundle-format.ts ExportRecord). */
const EXPORT_STREAM = 'witness.audit-access';
/** Streams Witness itself records (approvals, audit access, evidence, …); every other stream is an agent session. */
const SYSTEM_STREAM_PREFIX = 'witness.';

/** Said by every verdict on a bundle holding report.html (verify.mjs and the Python verifier say the same). */
export const REPORT_HTML_NOTE = 'report.html is a reading aid that is not signed and was not checked; the verified events are events.jsonl.';

/** What a format-2 verdict rests on and covers, beyond VerifyReport's counts. */
export interface BundleVerdict {
  version: 2;
  ledger: { id: string; origin: string };
  scope: BundleScope;
  mode: BundleMode;
  /** Leaves `from <= leaf < to`. */
  span: { from: number; to: number };
  /** Events of the span, and how many of them the verifier found in scope (ScopeTracker). */
  spanEvents: number;
  inScope: number;
  exportEvent: { leaf: number; id: string };
  checkpoint: { size: number; root: string };
  /** Each population as recomputed from the span (what populations/<name>.jsonl had to hold). */
  populations: Array<{ name: string; title: string; count: number }>;
  /**
   * Every event of the span without a payload, as runs of consecutive leaves [from, to) sharing a
   * reason: `out_of_scope` (only its header is disclosed), `withheld` (the export's mode), or
   * `missing` (stripped from a full export: a failure).
   */
  withoutPayload: Array<{ from: number; to: number; reason: NoPayloadReason }>;
  withoutPayloadCount: number;
  /** Artifacts referenced by events carrying their payload, all present and re-hashed when ok. */
  artifacts: number;
}

export type BundleVerifyReport = VerifyReport & { bundle?: BundleVerdict };

export interface VerifyV2Options {
  trustedKeys?: string[];
  requirePayloads?: boolean;
}

/** A line of only JSON whitespace (FORMAT.md 2.1: skipped, as every verifier does). */
const BLANK = /^[ \t\r]*$/;
const bytes = (n: number) => (n >= 1024 * 1024 && n % (1024 * 1024) === 0 ? `${n / 1024 / 1024} MiB` : `${n} bytes`);
const range = (from: number, to: number) => (to - from === 1 ? `leaf ${from}` : `leaves ${from}–${to - 1}`);
const REASON_WORDS: Record<NoPayloadReason, string> = {
  out_of_scope: 'out of scope (header only)',
  withheld: 'withheld by export mode',
  missing: 'stripped from a full export',
};

/**
 * Verifies a bundle of format 2 (bundle-format.ts) in `dir`, offline: files against the manifest;
 * the key history and checkpoint.txt (pinned keys, else keys.json); checkpoints.jsonl (each note
 * signed, each consistent with the one before, the last one checkpoint.txt); events.jsonl read one
 * line at a time beside proofs.jsonl — every payload digest, hash and chain link between events
 * of a stream present (genesis at seq 0), every inclusion proof, the span contiguous; payload
 * presence against the mode and the scope (ScopeTracker); the export's own signed audit.access
 * event against the manifest and the recomputed EventsDigest; every population recomputed and
 * compared byte for byte; every artifact an event with its payload references present under its
 * extension and re-hashed, and none other. Memory follows streams, populations and artifacts,
 * never the number of events.
 */
export function verifyDirectoryV2(dir: string, raw: Record<string, unknown>, options: VerifyV2Options): BundleVerifyReport {
  const failures: Failure[] = [];
  const warnings: string[] = [];
  const fail = (f: Failure) => {
    if (failures.length < MAX_FAILURES) failures.push(f);
  };
  const usedKeys = new Map<string, NoteKeyId>();
  let source: 'pinned' | 'bundle' = 'bundle';
  let checkpoints = 0;
  const report = (extra: Partial<VerifyReport>, bundle?: BundleVerdict): BundleVerifyReport => {
    const sorted = [...failures].sort((a, b) => (a.leaf ?? Number.MAX_SAFE_INTEGER) - (b.leaf ?? Number.MAX_SAFE_INTEGER));
    const r: BundleVerifyReport = {
      ok: sorted.length === 0,
      unverifiable: false,
      events: 0,
      streams: 0,
      checkpoints,
      sealedSize: 0,
      unsealed: 0,
      payloadsAbsent: 0,
      artifacts: 0,
      openSessions: 0,
      ...extra,
      failures: sorted,
      trust: trustedKeys([...usedKeys.values()], source, checkpoints),
      warnings,
      ...(bundle === undefined ? {} : { bundle }),
    };
    if (checkpoints === 0 && r.events === 0) r.trust = { ...r.trust, statement: 'Nothing was relied on: the bundle was refused before any signature or hash chain was checked.' };
    if (sorted[0] !== undefined) r.first = sorted[0];
    return r;
  };
  const bad = (reason: string): BundleVerifyReport => {
    fail({ code: 'bundle_invalid', reason });
    return report({});
  };
  const refuse = (reason: string): BundleVerifyReport => {
    failures.length = 0;
    return bad(reason);
  };

  // --- manifest
  const parsed = BundleManifestV2.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return bad(`manifest.json (format 2) field ${issue?.path.join('.') || '(root)'} is invalid: ${issue?.message ?? 'unknown problem'}; the bundle is damaged or not written by Witness.`);
  }
  const m = parsed.data;
  const origin = m.ledger.origin;
  if (m.span.from > m.span.to) return bad(`manifest.json's span starts at leaf ${m.span.from}, after its end ${m.span.to}.`);
  if (m.export_event.leaf < m.span.to) return bad(`manifest.json puts the export event at leaf ${m.export_event.leaf}, inside the span ending at ${m.span.to}.`);
  if (m.checkpoint.size <= m.export_event.leaf) return bad(`manifest.json's checkpoint (size ${m.checkpoint.size}) does not cover the export event at leaf ${m.export_event.leaf}.`);

  const open = (name: string, max: number): BundleFile => openBundleFile(path.join(dir, ...name.split('/')), max);
  const unreadable = (name: string, f: BundleFile, max: number): string => {
    if ('missing' in f) return `${name} is missing`;
    if ('notFile' in f) return `${name} is not a regular file`;
    if ('tooLarge' in f) return `${name} is ${f.size} bytes, more than the ${bytes(max)} it may have`;
    return `${name} cannot be read`;
  };
  const readSmall = (name: string, max: number): string | { reason: string } => {
    const f = open(name, max);
    if (!('fd' in f)) return { reason: unreadable(name, f, max) };
    try {
      return readWhole(f);
    } finally {
      fs.closeSync(f.fd);
    }
  };
  const readJson = (name: string, max: number): unknown => {
    const text = readSmall(name, max);
    if (typeof text !== 'string') {
      fail({ code: 'bundle_invalid', reason: `${text.reason}: a format-2 bundle has it.` });
      return undefined;
    }
    try {
      return strictParse(text);
    } catch (e) {
      fail({ code: 'bundle_invalid', reason: `${name} is not strict JSON: ${(e as Error).message}` });
      return undefined;
    }
  };

  // --- files: every one listed in the manifest, re-hashed; nothing else in the bundle
  const present = listBundle(dir);
  const digests = new Map<string, string>();
  for (const name of present) {
    const cap = capOfName(name);
    if (cap === undefined || name === 'keys.txt' || /^artifacts\/[0-9a-f]{64}$/.test(name)) {
      fail({ code: 'bundle_invalid', reason: `The bundle holds ${JSON.stringify(name)}, which no format-2 bundle has.` });
      continue;
    }
    if (name === 'manifest.json') continue;
    const f = open(name, cap);
    if (!('fd' in f)) {
      if ('tooLarge' in f) return refuse(`${unreadable(name, f, cap)}: the bundle was refused unread.`);
      fail({ code: 'bundle_invalid', reason: `${unreadable(name, f, cap)}.` });
      continue;
    }
    try {
      digests.set(name, sha256OfFile(f));
    } finally {
      fs.closeSync(f.fd);
    }
    if (!(name in m.files)) fail({ code: 'file_mismatch', reason: `${name} is in the bundle but not listed in manifest.json: it was added after the export.` });
  }
  for (const [name, sha] of Object.entries(m.files)) {
    const got = digests.get(name);
    if (got === undefined) {
      if (!present.includes(name)) fail({ code: 'file_mismatch', reason: `manifest.json lists ${name}, which is not in the bundle: it was removed.` });
    } else if (got !== sha) {
      fail({ code: 'file_mismatch', reason: `${name} does not have the SHA-256 manifest.json lists for it: it was changed after the export.` });
    }
  }

  // --- keys and checkpoint.txt
  const keysRaw = readJson('keys.json', BUNDLE_LIMITS.keysBytes);
  let shipped: string[] = [];
  // The key windows keys.json states (docs/FORMAT.md "Key history and rotation"), checked on every checkpoint.
  let windows: KeyWindow[] | undefined;
  let history: KeyHistory['keys'] | undefined;
  if (keysRaw !== undefined) {
    const k = KeyHistory.safeParse(keysRaw);
    if (!k.success) {
      const issue = k.error.issues[0];
      fail({ code: 'bundle_invalid', reason: `keys.json field ${issue?.path.join('.') || '(root)'} is invalid: ${issue?.message ?? 'unknown problem'}.` });
    } else {
      shipped = k.data.keys.map((key) => key.vkey);
      history = k.data.keys;
      windows = bundleKeyWindows(k.data.keys);
      for (const [i, key] of k.data.keys.entries()) {
        try {
          if (keyFingerprint(parseVerifierKey(key.vkey)) !== key.fingerprint) {
            fail({ code: 'bundle_invalid', reason: `keys.json key ${i + 1} gives the fingerprint ${key.fingerprint}, which is not its key's: the key history was edited.` });
          }
        } catch (e) {
          fail({ code: 'checkpoint_signature', reason: `keys.json key ${i + 1} is malformed: ${(e as Error).message}` });
        }
      }
    }
  }
  // Shipped keys are a convenience: without --trusted-key they are all there is.
  const selected = selectVerifiers(options.trustedKeys, shipped, 'bundle', () => undefined);
  // Pinning a key of a rotated history trusts the other keys keys.json lists (bound by the export
  // record), each within its window, provided checkpoint.txt, the newest, is signed by a pinned key:
  // so an auditor pins the key in use at the bundle's checkpoint, never a retired one alone.
  const pinnedIds = new Set(selected.source === 'pinned' ? selected.verifiers.map(keyFingerprint) : []);
  const verifiers = selected.source === 'pinned' && shipped.length > 1 ? [...selected.verifiers, ...extraVerifiers(shipped, pinnedIds)] : selected.verifiers;
  source = selected.source === 'pinned' ? 'pinned' : 'bundle';
  const note = readSmall('checkpoint.txt', BUNDLE_LIMITS.checkpointBytes);
  if (typeof note !== 'string') return bad(`${note.reason}: the events cannot be tied to a signed tree.`);
  let cp: Checkpoint;
  try {
    const opened = openCheckpoint(note, verifiers, origin);
    cp = opened.checkpoint;
    for (const k of opened.verified) usedKeys.set(keyFingerprint(k), k);
    if (pinnedIds.size > 0 && !opened.verified.some((k) => pinnedIds.has(keyFingerprint(k)))) {
      fail({
        code: 'checkpoint_signature',
        reason: `checkpoint.txt (size ${opened.checkpoint.size}) is signed by ${opened.verified.map(keyFingerprint).join(' and ')} but by no key you pinned: pin the key in use at the bundle's checkpoint (older keys are trusted through keys.json from it).`,
      });
    }
    const wrong = windows === undefined ? undefined : judgeCheckpointKeys(windows, cp.size, opened.verified);
    if (wrong !== undefined) fail({ code: wrong.code, reason: `The bundle's checkpoint: ${wrong.reason}` });
  } catch (e) {
    const code = e instanceof WitnessError && (e.code === 'invalid_signature' || e.code === 'invalid_key') ? 'checkpoint_signature' : 'checkpoint_invalid';
    fail({ code, reason: `The bundle's checkpoint does not verify: ${(e as Error).message}` });
    return report({});
  }
  const cpRoot = Buffer.from(cp.rootHash).toString('hex');
  if (cp.size !== m.checkpoint.size || cpRoot !== m.checkpoint.root) {
    fail({ code: 'checkpoint_invalid', reason: `manifest.json names checkpoint size ${m.checkpoint.size}, but checkpoint.txt signs size ${cp.size} with another root.` });
  }
  // The manifest is not signed: its ledger id is believed only as the part of the signed origin after its last "/witness/" (docs/FORMAT.md 7.2).
  const signedId = ledgerIdOf(origin);
  if (signedId !== m.ledger.id) {
    fail({
      code: 'checkpoint_invalid',
      reason: `manifest.json names ledger ${JSON.stringify(m.ledger.id)}, but checkpoint.txt signs the log of ${signedId === undefined ? 'no ledger id' : `ledger ${JSON.stringify(signedId)}`} (origin ${JSON.stringify(origin)}).`,
    });
  }
  checkpoints = 1;

  // --- checkpoints.jsonl: each signed, each consistent with the previous, the last checkpoint.txt
  const logSizes: number[] = [];
  checkpoints = checkCheckpointLog(open, unreadable, verifiers, origin, note, fail, usedKeys, logSizes, windows) ?? 1;

  // --- purges.jsonl: the retention.purge records an absent in-scope payload may be listed by (docs/FORMAT.md 7.13)
  const purges = readBundlePurges(open, cp, origin, fail, (w) => warnings.push(w));
  /** Record leaf → how many in-scope payloads of the span it shows purged. */
  const purgedBy = new Map<number, number>();

  // --- events.jsonl beside proofs.jsonl
  const eventsFile = open('events.jsonl', BUNDLE_LIMITS.fileBytes);
  if (!('fd' in eventsFile)) return bad(`${unreadable('events.jsonl', eventsFile, BUNDLE_LIMITS.fileBytes)}.`);
  const chain = new ChainChecker(origin, fail, (w) => warnings.push(w), false, true);
  const entries = chain.trackEntries();
  // The export event is checked on its own: audit.access events recorded between the span's end
  // and the export (by others) are not in the bundle, so its seq may rightly skip ahead.
  const exportChain = new ChainChecker(origin, fail, (w) => warnings.push(w), false, false);
  const exportEntries = exportChain.trackEntries();
  const tracker = new ScopeTracker(m.scope);
  const spanDigest = new EventsDigest();
  const populations = new PopulationBuilder();
  const without = new LeafRanges();
  /** sha256 → the extensions its referencing events' MIME types give, and the first such leaf. */
  const wanted = new Map<string, { exts: Set<string>; leaf: number }>();
  let expectLeaf = m.span.from;
  let lines = 0;
  let inScope = 0;
  let exportEvent: { header: Record<string, unknown>; data: unknown; leaf: number } | undefined;
  const rotations = new Map<number, unknown>();
  let proofsFile: BundleFile = { missing: true };
  try {
    const maxProofs = Math.min(BUNDLE_LIMITS.fileBytes, countLines(eventsFile) * BUNDLE_LIMITS.proofLineBytes);
    proofsFile = open('proofs.jsonl', maxProofs);
    if ('tooLarge' in proofsFile || 'notFile' in proofsFile) {
      return refuse(`${unreadable('proofs.jsonl', proofsFile, maxProofs)} (${BUNDLE_LIMITS.proofLineBytes} bytes for each line of events.jsonl): the bundle was refused unread.`);
    }
    const proofs = new ProofReader('fd' in proofsFile ? readLines(proofsFile, BUNDLE_LIMITS.proofLineBytes) : undefined, fail);
    const tooLongProof = () =>
      refuse(`proofs.jsonl line ${proofs.tooLong!} is longer than ${BUNDLE_LIMITS.proofLineBytes} bytes, more than any inclusion proof: the bundle was refused without reading it.`);
    /** Marks `leaf` as the next of the span, reporting what is missing or repeated before it. */
    const place = (leaf: number, at: { stream?: string; seq?: number }) => {
      if (leaf === expectLeaf) {
        expectLeaf++;
        return;
      }
      if (leaf < expectLeaf) {
        fail({ code: 'span_gap', ...at, leaf, reason: `Leaf ${leaf} appears again or out of order in events.jsonl (leaf ${expectLeaf} was due): events were reordered or inserted.` });
      } else {
        fail({
          code: 'span_gap',
          ...at,
          leaf,
          reason: `${range(expectLeaf, Math.min(leaf, m.span.to))} of the span ${m.span.from}–${m.span.to - 1} are missing from events.jsonl: events were left out.`,
        });
        expectLeaf = leaf + 1;
      }
    };

    for (const read of readLines(eventsFile, BUNDLE_LIMITS.eventLineBytes)) {
      if (failures.length >= MAX_FAILURES) {
        warnings.push(`Verification stopped at events.jsonl line ${read.n} after ${MAX_FAILURES} failures.`);
        break;
      }
      if ('tooLong' in read) {
        return refuse(`events.jsonl line ${read.n} is longer than ${bytes(BUNDLE_LIMITS.eventLineBytes)}, more than any recorded event: the bundle was refused without reading it.`);
      }
      const line = read.text;
      if (BLANK.test(line)) continue;
      lines++;
      let ev: Record<string, unknown>;
      try {
        const p = strictParse(line);
        if (typeof p !== 'object' || p === null || Array.isArray(p)) throw new Error('not a JSON object');
        ev = p as Record<string, unknown>;
      } catch (e) {
        const claimed = lenientPosition(line);
        fail({ code: 'bundle_invalid', ...claimed, reason: `events.jsonl line ${read.n} is not strict JSON: ${(e as Error).message}` });
        // Counted where it claims to be, so the one bad line is not also a gap in the span.
        if (claimed.leaf !== undefined && claimed.leaf < m.span.to) place(claimed.leaf, {});
        continue;
      }
      const { data, salt, hash, leaf, ...header } = ev;
      const seq = typeof header['seq'] === 'number' ? header['seq'] : -1;
      // Copied (see flat): a failure keeps it, and must not keep the line it was cut from.
      const stream = typeof header['stream'] === 'string' ? flat(header['stream']) : '';
      if (typeof leaf !== 'number' || !Number.isSafeInteger(leaf) || leaf < 0 || typeof hash !== 'string' || !/^[0-9a-f]{64}$/.test(hash)) {
        fail({ code: 'bundle_invalid', stream, seq, reason: `events.jsonl line ${read.n} lacks a valid leaf index or hash.` });
        continue;
      }
      if (exportEvent !== undefined) {
        fail({ code: 'bundle_invalid', stream, seq, leaf, reason: `events.jsonl line ${read.n} follows the export event, which must be the last line.` });
        continue;
      }
      const isExport = leaf === m.export_event.leaf;
      if (!isExport) {
        if (leaf >= m.span.to) {
          fail({ code: 'span_gap', stream, seq, leaf, reason: `Leaf ${leaf} is outside the span ${m.span.from}–${m.span.to - 1} and is not the export event (leaf ${m.export_event.leaf}).` });
          continue;
        }
        place(leaf, { stream, seq });
      }
      // docs/FORMAT.md 7.12 step 7.3: a header that cannot be canonicalised fails the schema (3.2)
      // too, and is judged as one that does: reported once, out of its chain, its line's hash
      // standing in for its proof and the events digest. A payload that cannot be canonicalised
      // is non_canonical, and its event still takes its place in the chain, the scope and the tree.
      let headerText: string;
      try {
        headerText = canonicalize(header);
      } catch (e) {
        const unsupported = header['v'] !== 1;
        fail({
          code: unsupported ? 'unsupported_version' : 'invalid_header',
          stream,
          seq,
          leaf,
          reason: `The header ${unsupported ? 'has another version and ' : ''}cannot be canonicalised: ${(e as Error).message}`,
        });
        headerText = '';
      }
      let dataText: string | null = null;
      let payloadCanonical = true;
      if (data !== null && data !== undefined) {
        try {
          dataText = canonicalize(data);
        } catch (e) {
          payloadCanonical = false;
          fail({ code: 'non_canonical', stream, seq, leaf, reason: `The payload cannot be canonicalised, so its digest cannot be checked: ${(e as Error).message}` });
        }
      }
      const checker = isExport ? exportChain : chain;
      const met = isExport ? exportEntries : entries;
      const recomputed: Uint8Array =
        headerText === '' ? Buffer.from(hash, 'hex') : checkBundleEvent(checker, { leaf, stream, seq, header, headerText, dataText, salt: payloadCanonical ? salt : null, hash });
      // A stream's first event in the bundle continues a chain the bundle does not hold, unless
      // it is seq 0: then it must start from this ledger's genesis for that stream.
      for (const first of met) {
        if (first.seq === 0 && first.prev !== genesisHash(origin, first.stream).toString('hex')) {
          fail({ code: 'wrong_genesis', stream, seq, leaf, reason: `Stream ${first.stream} does not start from this ledger's genesis for it: the event was moved from another stream or ledger.` });
        }
      }
      met.length = 0;
      const p = proofs.take(leaf);
      if (proofs.tooLong !== undefined) return tooLongProof();
      if (p === undefined) {
        fail({ code: 'inclusion_failed', stream, seq, leaf, reason: `No inclusion proof for leaf ${leaf}: the event cannot be shown to be in the signed tree.` });
      } else if (p.size !== cp.size) {
        fail({ code: 'inclusion_failed', stream, seq, leaf, reason: `The proof for leaf ${leaf} is for tree size ${p.size}, not the checkpoint's ${cp.size}.` });
      } else {
        const r = verifyInclusion(leafHash(recomputed), leaf, cp.size, p.proof, cp.rootHash);
        if (!r.ok) fail({ code: 'inclusion_failed', stream, seq, leaf, reason: `Leaf ${leaf} is not in the signed tree of size ${cp.size}: ${r.reason}.` });
      }
      const hasPayload = data !== null && data !== undefined;
      // keys.json is checked against these after the span (keyHistoryProblems); a payload that does not match its digest has failed already.
      // Only a key.rotated of witness.keys by the CLI rotates a key; one anywhere else is an ordinary event (docs/FORMAT.md 7.6).
      if (!isExport && isRotationHeader(header)) rotations.set(leaf, hasPayload ? data : undefined);
      if (isExport) {
        exportEvent = { header, data, leaf };
        continue;
      }
      const hashHex = Buffer.from(recomputed).toString('hex');
      spanDigest.add(hashHex);
      const scoped = scopedHeader(header);
      const scopedIn = scoped !== undefined && tracker.inScope(scoped);
      if (scopedIn) {
        inScope++;
        populations.add(leaf, { ...scoped, hash: hashHex });
      }
      const due = m.mode === 'full' && scopedIn;
      if (hasPayload && !due) {
        fail({
          code: 'payload_unexpected',
          stream,
          seq,
          leaf,
          reason: scopedIn
            ? `The event carries its payload, but the bundle's mode is withheld: no in-scope payload may travel.`
            : `The event is outside the bundle's scope but carries its payload: a bundle must not carry data outside its scope.`,
        });
      }
      if (!hasPayload) {
        const reason: NoPayloadReason = !scopedIn ? 'out_of_scope' : m.mode === 'withheld' ? 'withheld' : 'missing';
        // Listed by a purge record the bundle proved (7.13), and not a governance record (never purged): purged, not stripped.
        const by = reason === 'missing' && !GOVERNANCE_KINDS.includes(String(header['kind'])) ? purges?.cover.at(leaf) : undefined;
        if (by !== undefined) {
          purgedBy.set(by, (purgedBy.get(by) ?? 0) + 1);
          if (options.requirePayloads === true) fail({ code: 'payload_missing', stream, seq, leaf, reason: 'The payload was purged under retention, and --require-payloads asks for every one.' });
        } else {
          without.add(leaf, reason);
        }
        if (reason === 'missing' && by === undefined) {
          fail({
            code: 'payload_missing',
            stream,
            seq,
            leaf,
            reason: 'The event is in scope of a full export but carries no payload, and no retention.purge record of the bundle lists it: it was stripped from the bundle.',
          });
        }
      } else if (headerText !== '' && (!Array.isArray(header['artifacts']) || EventHeader.safeParse(header).success)) {
        // A header that fails the schema requires no artifact (docs/FORMAT.md 7.12 step 7.3).
        for (const a of artifactRefs(header)) {
          const w = wanted.get(a.sha256);
          if (w === undefined) wanted.set(flat(a.sha256), { exts: new Set([artifactExtension(a.mime)]), leaf });
          else w.exts.add(artifactExtension(a.mime));
        }
      }
    }
    if (failures.length < MAX_FAILURES) proofs.drain();
    if (proofs.tooLong !== undefined) return tooLongProof();
  } finally {
    fs.closeSync(eventsFile.fd);
    if ('fd' in proofsFile) fs.closeSync(proofsFile.fd);
  }
  if (expectLeaf < m.span.to) {
    fail({ code: 'span_gap', leaf: expectLeaf, reason: `${range(expectLeaf, m.span.to)} of the span ${m.span.from}–${m.span.to - 1} are missing from events.jsonl: its tail was cut off.` });
  }
  if (lines !== m.events) fail({ code: 'bundle_invalid', reason: `manifest.json lists ${m.events} lines of events but events.jsonl holds ${lines}.` });

  // --- the export's own signed event
  const spanEvents = m.span.to - m.span.from;
  if (history !== undefined) for (const reason of keyHistoryProblems(history, rotations, m.span)) fail({ code: 'key_history_mismatch', reason });
  checkExportEvent(exportEvent, m, { digest: spanDigest.hex(), count: spanEvents, inScope }, { digests, present, checkpointSizes: logSizes }, fail);

  // --- populations, recomputed
  const recomputed = populations.results();
  checkPopulations(recomputed, readJson('populations/index.json', BUNDLE_LIMITS.keysBytes), m, present, open, fail);

  // --- artifacts: exactly those referenced by events carrying their payload
  const artifactFiles = new Map<string, string>();
  for (const name of present) {
    const a = ARTIFACT_NAME.exec(name);
    if (a !== null) artifactFiles.set(a[1]!, a[2]!);
  }
  for (const [sha, w] of wanted) {
    const ext = artifactFiles.get(sha);
    if (ext === undefined) {
      fail({ code: 'artifact_missing', artifact: sha, leaf: w.leaf, reason: `Artifact ${sha} referenced at leaf ${w.leaf} is not in the bundle.` });
      continue;
    }
    if (!w.exts.has(ext)) {
      fail({ code: 'bundle_invalid', artifact: sha, leaf: w.leaf, reason: `Artifact ${sha} is named .${ext}, but the events referencing it give ${[...w.exts].map((e) => `.${e}`).join(' or ')}.` });
    }
    const got = digests.get(`artifacts/${sha}.${ext}`);
    if (got !== undefined && got !== sha) {
      fail({ code: 'artifact_mismatch', artifact: sha, leaf: w.leaf, reason: `Artifact ${sha} referenced at leaf ${w.leaf} no longer has that SHA-256: its bytes were changed.` });
    }
  }
  for (const [sha, ext] of artifactFiles) {
    if (!wanted.has(sha)) {
      fail({
        code: 'payload_unexpected',
        artifact: sha,
        reason: `artifacts/${sha}.${ext} is referenced by no event of the bundle that carries its payload: a bundle must not carry data outside its scope or mode.`,
      });
    }
  }

  // --- system.json: free-form (docs/FORMAT.md), but a strict JSON object
  const system = readJson('system.json', V2_CAPS.small);
  if (system !== undefined && (typeof system !== 'object' || system === null || Array.isArray(system))) {
    fail({ code: 'bundle_invalid', reason: 'system.json is not a JSON object.' });
  }

  if (options.requirePayloads === true) {
    for (const r of without.ranges) {
      fail({
        code: 'payload_missing',
        leaf: r.from,
        reason: `${range(r.from, r.to)} carr${r.to - r.from === 1 ? 'ies' : 'y'} no payload (${REASON_WORDS[r.reason]}), and --require-payloads asks for every one.`,
      });
    }
  }
  const purgedRecords = [...purgedBy].sort((a, b) => a[0] - b[0]).map(([leaf, count]) => ({ leaf, id: purges?.records.get(leaf)?.id ?? '', policy: purges?.records.get(leaf)?.policy ?? '', count }));
  for (const p of purgedRecords) warnings.push(purgeSentence(p.count, p.policy, p.leaf));
  const purgedCount = purgedRecords.reduce((n, p) => n + p.count, 0);
  if (m.mode === 'withheld') warnings.push('Payloads and artifacts were withheld from this bundle (mode withheld): headers, digests and the signed tree were verified, not the content.');
  // report.html shows the export event and the final checkpoint, so the record cannot bind it (docs/FORMAT.md 7.2).
  if (present.includes('report.html')) warnings.unshift(REPORT_HTML_NOTE);
  // The bundle's verify.mjs is bound by the record; whether it is the one this Witness ships is worth saying too.
  const shippedVerifier = shippedVerifierDigest();
  const bundledVerifier = digests.get('verify.mjs');
  if (bundledVerifier !== undefined && shippedVerifier !== undefined && bundledVerifier !== shippedVerifier) {
    warnings.push("This bundle's verify.mjs is not the one this Witness ships (another Witness version wrote it, or it was replaced): trust this verdict, not what that file prints.");
  }

  return report(
    {
      events: lines,
      // Agent sessions only (docs/FORMAT.md 7.12): the witness.* system streams (approvals, audit access, …) are not sessions.
      streams: chain.exits().exits.filter((x) => !x.stream.startsWith(SYSTEM_STREAM_PREFIX)).length,
      sealedSize: cp.size,
      payloadsAbsent: without.count + purgedCount,
      artifacts: wanted.size,
      openSessions: chain.openStreams,
      ...(purges === undefined ? {} : { purged: { payloads: purgedCount, stillPresent: 0, records: purgedRecords } }),
    },
    {
      version: 2,
      ledger: m.ledger,
      scope: m.scope,
      mode: m.mode,
      span: m.span,
      spanEvents,
      inScope,
      exportEvent: m.export_event,
      checkpoint: m.checkpoint,
      populations: recomputed.map((p) => ({ name: p.def.name, title: p.def.title, count: p.count })),
      withoutPayload: without.ranges,
      withoutPayloadCount: without.count,
      artifacts: wanted.size,
    },
  );
}

/** The ledger id a checkpoint origin `<name>/witness/<ledger uuid>` names: what follows its last "/witness/"; undefined when it has none. */
function ledgerIdOf(origin: string): string | undefined {
  const cut = origin.lastIndexOf('/witness/');
  return cut > 0 ? origin.slice(cut + '/witness/'.length) : undefined;
}

/** SHA-256 of the standalone verifier this Witness ships beside this module (dist/export/standalone/verify.mjs), or undefined when it is not installed. */
function shippedVerifierDigest(): string | undefined {
  try {
    return createHash('sha256')
      .update(fs.readFileSync(new URL('./standalone/verify.mjs', import.meta.url)))
      .digest('hex');
  } catch {
    return undefined;
  }
}

/** The names of the files in a bundle directory, `/`-separated: the top level and its two folders. */
function listBundle(dir: string): string[] {
  const names: string[] = [];
  for (const d of fs.readdirSync(dir, { withFileTypes: true })) {
    if (d.isDirectory() && (d.name === 'artifacts' || d.name === 'populations')) {
      for (const f of fs.readdirSync(path.join(dir, d.name))) names.push(`${d.name}/${f}`);
    } else {
      names.push(d.name);
    }
  }
  return names.sort();
}

/** The header fields ScopeTracker reads, when they have their types (ChainChecker reports a header that is not valid). */
function scopedHeader(h: Record<string, unknown>): ScopedHeader | undefined {
  const agent = h['agent'] as { id?: unknown } | undefined;
  if (typeof h['id'] !== 'string' || typeof h['stream'] !== 'string' || typeof h['seq'] !== 'number' || typeof h['kind'] !== 'string' || typeof h['ts'] !== 'string') return undefined;
  if (typeof agent !== 'object' || agent === null || typeof agent.id !== 'string') return undefined;
  // ScopeTracker keeps the id of every in-scope event (for the parent rule). A string parsed out of
  // a line may be a slice that keeps the whole line alive (V8 sliced strings): measured, 40,000
  // events of 1.4 KiB held 56 MB that way. A copy of the id holds only its 36 characters.
  return { ...(h as unknown as ScopedHeader), id: flat(h['id']) };
}

/** Whether two parsed JSON values are equal (their JCS texts); a value that cannot be canonicalised equals nothing. */
function sameJson(a: unknown, b: unknown): boolean {
  try {
    return canonicalize(a) === canonicalize(b);
  } catch {
    return false;
  }
}

/** A copy of `s` that shares no storage with the string it was cut from. */
function flat(s: string): string {
  return Buffer.from(s, 'utf8').toString('utf8');
}

function artifactRefs(h: Record<string, unknown>): Array<{ sha256: string; mime: string }> {
  const list = h['artifacts'];
  if (!Array.isArray(list)) return [];
  return list.filter(
    (a): a is { sha256: string; mime: string } => typeof a === 'object' && a !== null && typeof a.sha256 === 'string' && /^[0-9a-f]{64}$/.test(a.sha256) && typeof a.mime === 'string',
  );
}

/** Returns how many checkpoints verified, or undefined when checkpoints.jsonl could not be read. */
function checkCheckpointLog(
  open: (name: string, max: number) => BundleFile,
  unreadable: (name: string, f: BundleFile, max: number) => string,
  verifiers: ReturnType<typeof selectVerifiers>['verifiers'],
  origin: string,
  /** checkpoint.txt's text, which the last line's note must be byte for byte. */
  cpNote: string,
  fail: (f: Failure) => void,
  usedKeys: Map<string, NoteKeyId>,
  /** Filled in: the sizes its lines name, in order (the export record binds the first). */
  sizes: number[],
  /** keys.json's key windows, when it states them: each line's signers are judged by them. */
  windows?: readonly KeyWindow[],
): number | undefined {
  const f = open('checkpoints.jsonl', BUNDLE_LIMITS.fileBytes);
  if (!('fd' in f)) {
    fail({ code: 'bundle_invalid', reason: `${unreadable('checkpoints.jsonl', f, BUNDLE_LIMITS.fileBytes)}: a format-2 bundle has it.` });
    return undefined;
  }
  let prev: { size: number; root: Uint8Array } | undefined;
  let lastNote: string | undefined;
  let valid = 0;
  let n = 0;
  try {
    for (const read of readLines(f, V2_CAPS.checkpointLineBytes)) {
      if ('tooLong' in read) {
        fail({ code: 'bundle_invalid', checkpoint: read.n, reason: `checkpoints.jsonl line ${read.n} is longer than ${V2_CAPS.checkpointLineBytes} bytes, more than any checkpoint.` });
        return valid;
      }
      if (BLANK.test(read.text)) continue;
      const first = n === 0;
      n = read.n;
      lastNote = undefined;
      let line: CheckpointLine;
      try {
        const r = CheckpointLine.safeParse(strictParse(read.text));
        if (!r.success) throw new Error(`field ${r.error.issues[0]?.path.join('.') || '(root)'} is invalid`);
        line = r.data;
      } catch (e) {
        fail({ code: 'bundle_invalid', checkpoint: read.n, reason: `checkpoints.jsonl line ${read.n} is malformed: ${(e as Error).message}.` });
        prev = undefined;
        continue;
      }
      lastNote = line.note;
      sizes.push(line.size);
      // The first line has no previous checkpoint in the bundle: a proof there proves nothing, so
      // it is refused rather than ignored (docs/FORMAT.md 7.5).
      if (first && line.consistency !== undefined) {
        fail({
          code: 'bundle_invalid',
          checkpoint: read.n,
          reason: 'The first line of checkpoints.jsonl carries a consistency proof, but there is no checkpoint before it in the bundle to prove it from.',
        });
      }
      let c: Checkpoint;
      try {
        const opened = openCheckpoint(line.note, verifiers, origin);
        c = opened.checkpoint;
        for (const k of opened.verified) usedKeys.set(keyFingerprint(k), k);
        const wrong = windows === undefined ? undefined : judgeCheckpointKeys(windows, c.size, opened.verified);
        if (wrong !== undefined) fail({ code: wrong.code, checkpoint: read.n, reason: `Checkpoint on line ${read.n} of checkpoints.jsonl: ${wrong.reason}` });
      } catch (e) {
        const code = e instanceof WitnessError && (e.code === 'invalid_signature' || e.code === 'invalid_key') ? 'checkpoint_signature' : 'checkpoint_invalid';
        fail({ code, checkpoint: read.n, reason: `Checkpoint on line ${read.n} of checkpoints.jsonl does not verify: ${(e as Error).message}` });
        prev = undefined;
        continue;
      }
      const root = Buffer.from(c.rootHash).toString('hex');
      if (c.size !== line.size || root !== line.root) {
        fail({ code: 'checkpoint_invalid', checkpoint: read.n, reason: `checkpoints.jsonl line ${read.n} says size ${line.size}, but its signed note says size ${c.size} with another root.` });
      }
      if (prev !== undefined) {
        if (c.size < prev.size) {
          fail({ code: 'consistency_failed', checkpoint: read.n, reason: `Checkpoint on line ${read.n} has size ${c.size}, smaller than the previous line's ${prev.size}: history was rolled back.` });
        } else {
          const proof = (line.consistency ?? []).map((h) => Buffer.from(h, 'hex'));
          const r = verifyConsistency(prev.size, c.size, proof, prev.root, c.rootHash);
          if (!r.ok) {
            fail({
              code: 'consistency_failed',
              checkpoint: read.n,
              reason: `Checkpoint on line ${read.n} (size ${c.size}) is not consistent with the previous line's (size ${prev.size}): ${r.reason}; history was rewritten.`,
            });
          }
        }
      }
      prev = { size: c.size, root: c.rootHash };
      valid++;
    }
  } finally {
    fs.closeSync(f.fd);
  }
  if (n === 0) {
    fail({ code: 'bundle_invalid', reason: 'checkpoints.jsonl holds no checkpoint; it must end with checkpoint.txt.' });
  } else if (lastNote !== cpNote) {
    fail({ code: 'checkpoint_invalid', checkpoint: n, reason: 'The note on the last line of checkpoints.jsonl is not checkpoint.txt byte for byte.' });
  }
  return valid;
}

function checkExportEvent(
  ev: { header: Record<string, unknown>; data: unknown; leaf: number } | undefined,
  m: BundleManifestV2,
  span: { digest: string; count: number; inScope: number },
  bundle: { digests: ReadonlyMap<string, string>; present: readonly string[]; checkpointSizes: readonly number[] },
  fail: (f: Failure) => void,
): void {
  const at = { leaf: m.export_event.leaf };
  const no = (reason: string) => fail({ code: 'export_record_mismatch', ...at, reason });
  if (ev === undefined) return no(`events.jsonl holds no export event at leaf ${m.export_event.leaf}: nothing signed says what this bundle must hold.`);
  const h = ev.header;
  if (h['id'] !== m.export_event.id) no(`The event at leaf ${ev.leaf} is ${String(h['id'])}, not the export event ${m.export_event.id} manifest.json names.`);
  if (h['kind'] !== 'audit.access' || h['stream'] !== EXPORT_STREAM || h['action'] !== 'export') {
    return no(`The event at leaf ${ev.leaf} is not an export's audit.access event of ${EXPORT_STREAM}.`);
  }
  if (ev.data === null || ev.data === undefined) return no('The export event carries no payload, so what it binds cannot be checked.');
  const r = ExportRecord.safeParse(ev.data);
  if (!r.success) {
    return no(
      `The export event's payload field ${r.error.issues[0]?.path.join('.') || '(root)'} is missing or invalid, so it is not an export record of this format (v2 bundles written before the record bound files and checkpoints_from were never released).`,
    );
  }
  const rec = r.data;
  if (canonicalize(rec.scope) !== canonicalize(m.scope)) no("manifest.json's scope is not the scope the signed export event recorded.");
  if (rec.mode !== m.mode) no(`manifest.json says mode ${m.mode}, but the signed export event recorded mode ${rec.mode}.`);
  if (rec.span.from !== m.span.from || rec.span.to !== m.span.to) {
    no(`manifest.json's span ${m.span.from}–${m.span.to - 1} is not the span ${rec.span.from}–${rec.span.to - 1} the signed export event recorded.`);
  }
  if (rec.count !== span.count) no(`The signed export event counts ${rec.count} events in the span, not ${span.count}.`);
  // manifest.in_scope is bound by the export record: a manifest that disagrees with it, or with the
  // recomputed count, is the export record's mismatch (docs/FORMAT.md 7.12 step 8), reported once.
  if (rec.in_scope !== span.inScope) no(`The signed export event counts ${rec.in_scope} events in scope, but ${span.inScope} of the span are.`);
  else if (m.in_scope !== rec.in_scope) no(`manifest.json says ${m.in_scope} events are in scope, but the signed export event recorded ${rec.in_scope}.`);
  if (rec.events_digest !== span.digest) no('The events of the bundle are not the events the signed export event recorded (events digest differs): events were dropped, swapped or added.');
  // The files known before the record was appended are bound by their SHA-256 (docs/FORMAT.md 7.8).
  for (const name of Object.keys(rec.files)) {
    if (!(BOUND_FILES as readonly string[]).includes(name)) no(`The signed export event binds ${JSON.stringify(name)}, which is no file it binds.`);
  }
  for (const name of BOUND_FILES) {
    const want = rec.files[name];
    const got = bundle.digests.get(name);
    if (want === undefined) {
      if (bundle.present.includes(name)) no(`${name} is in the bundle, but the signed export event binds no ${name}: it was added after the export.`);
    } else if (got === undefined) {
      if (!bundle.present.includes(name)) no(`The signed export event binds ${name}, which is not in the bundle.`);
    } else if (got !== want) {
      no(`${name} is not the file the signed export event binds (its SHA-256 differs): it was replaced after the export.`);
    }
  }
  const first = bundle.checkpointSizes[0];
  if (rec.checkpoints_from === null) {
    if (bundle.checkpointSizes.length > 1) no('The signed export event says the ledger had no checkpoint before it, so checkpoints.jsonl must hold only checkpoint.txt, but it holds more.');
  } else if (first !== undefined && first !== rec.checkpoints_from) {
    no(`checkpoints.jsonl starts at size ${first}, but the signed export event says it starts at size ${rec.checkpoints_from}: checkpoints were cut from it.`);
  }
}

function checkPopulations(
  recomputed: ReturnType<PopulationBuilder['results']>,
  indexRaw: unknown,
  m: BundleManifestV2,
  present: readonly string[],
  open: (name: string, max: number) => BundleFile,
  fail: (f: Failure) => void,
): void {
  if (indexRaw === undefined) return;
  const parsed = PopulationIndex.safeParse(indexRaw);
  if (!parsed.success) {
    fail({ code: 'bundle_invalid', reason: `populations/index.json field ${parsed.error.issues[0]?.path.join('.') || '(root)'} is invalid.` });
    return;
  }
  const index = parsed.data;
  if (index.span.from !== m.span.from || index.span.to !== m.span.to) {
    fail({ code: 'population_mismatch', reason: "populations/index.json's span is not the manifest's." });
  }
  const known = new Set(POPULATIONS.map((p) => p.name));
  if (index.populations.map((e) => e.name).join('\n') !== POPULATIONS.map((p) => p.name).join('\n')) {
    fail({ code: 'population_mismatch', reason: 'populations/index.json does not list the populations of this format, each once, in the order of docs/FORMAT.md 7.9.' });
  }
  for (const entry of index.populations) {
    const def = POPULATIONS.find((p) => p.name === entry.name);
    if (def !== undefined && (entry.title !== def.title || entry.query !== def.query || !sameJson(entry.predicate, def.predicate))) {
      fail({ code: 'population_mismatch', reason: `populations/index.json gives ${entry.name} another title, query or predicate than docs/FORMAT.md 7.9 defines: the index was edited.` });
    }
    if (!known.has(entry.name)) fail({ code: 'population_mismatch', reason: `populations/index.json lists ${JSON.stringify(entry.name)}, which is no population of this format.` });
  }
  for (const name of present) {
    const p = POPULATION_NAME.exec(name);
    if (p !== null && !known.has(p[1]!)) fail({ code: 'bundle_invalid', reason: `${name} is no population of this format.` });
  }
  for (const pop of recomputed) {
    const name = pop.def.name;
    const entry = index.populations.find((e) => e.name === name);
    if (entry === undefined) {
      fail({ code: 'population_incomplete', reason: `populations/index.json lists no population ${name}.` });
      continue;
    }
    if (entry.count !== pop.count || entry.digest !== pop.digest) {
      const fewer = entry.count < pop.count;
      fail({
        code: fewer ? 'population_incomplete' : 'population_mismatch',
        reason: `populations/index.json gives ${name} ${entry.count} events, but the span holds ${pop.count} of it${fewer ? '' : ' (or other ones)'}.`,
      });
    }
    const file = `populations/${name}.jsonl`;
    const f = open(file, BUNDLE_LIMITS.fileBytes);
    if (!('fd' in f)) {
      fail({ code: 'population_incomplete', reason: `${file} is missing or unreadable, but the span holds ${pop.count} of its events.` });
      continue;
    }
    // Held as a set of lines: a population is small next to the span, and the recomputed one is in memory already.
    const have = new Set<string>();
    let text: string;
    try {
      text = readWhole(f);
    } finally {
      fs.closeSync(f.fd);
    }
    if (text === pop.text) continue;
    for (const l of text.split('\n')) if (l !== '') have.add(`${l}\n`);
    const expected = pop.text.split('\n').filter((l) => l !== '');
    const lost = expected.find((l) => !have.has(`${l}\n`));
    if (lost !== undefined) {
      const leaf = (JSON.parse(lost) as { leaf: number }).leaf;
      fail({ code: 'population_incomplete', leaf, reason: `${file} leaves out the event at leaf ${leaf}, which the span holds and the population includes.` });
    } else {
      fail({ code: 'population_mismatch', reason: `${file} is not the population recomputed from the span: it holds other events, or other bytes.` });
    }
  }
}

/** The keys of keys.json not pinned already, as verifiers (a malformed one failed above and is left out). */
function extraVerifiers(shipped: readonly string[], pinned: ReadonlySet<string>): NoteVerifier[] {
  const out: NoteVerifier[] = [];
  for (const vkey of shipped) {
    try {
      const v = parseVerifierKey(vkey);
      if (!pinned.has(keyFingerprint(v))) out.push(v);
    } catch {
      // reported as keys.json's malformed key
    }
  }
  return out;
}
