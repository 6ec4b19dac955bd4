import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  ChainChecker,
  WitnessError,
  canonicalize,
  leafHash,
  openCheckpoint,
  selectVerifiers,
  strictParse,
  MAX_FAILURES,
  trustedKeys,
  verifyInclusion,
  type Checkpoint,
  type Failure,
  type KeySource,
  type NoteKeyId,
  type VerifyReport,
} from '../core/index.js';
import { BUNDLE_FORMAT } from './bundle.js';
import { extractZip, looksLikeZip } from './zip.js';
import { countLines, openBundleFile, readLines, readWhole, sha256OfFile, type BundleFile } from './bundle-files.js';
import { BUNDLE_LIMITS, LeafRanges, ProofReader, capOfName, checkBundleEvent, lenientPosition } from './bundle-checks.js';
import { BUNDLE_VERSION_V2 } from './bundle-format.js';
import { verifyDirectoryV2, type BundleVerifyReport } from './verify-bundle-v2.js';

/** The trust statement of a verdict that checked no checkpoint and no event (a refused or unreadable bundle). */
export const NOTHING_RELIED_ON = 'Nothing was relied on: the bundle was refused before any signature or hash chain was checked.';

export interface VerifyBundleOptions {
  /** Verifier keys the auditor trusts; without them the keys shipped in the bundle are used (and the report says so). */
  trustedKeys?: string[];
  /** Fail on any event that carries no payload, whatever the reason (`witness verify --require-payloads`). */
  requirePayloads?: boolean;
}

export { BUNDLE_LIMITS };

const bytes = (n: number) => (n >= 1024 * 1024 && n % (1024 * 1024) === 0 ? `${n / 1024 / 1024} MiB` : `${n} bytes`);

/**
 * Verifies an evidence bundle directory (what `witness export` writes) offline: every event's digest, hash and chain link are recomputed,
 * every inclusion proof is checked link by link against the signed checkpoint, the session must
 * end in a session.end that is itself in the signed tree, and artifacts are re-hashed. Hostile
 * files produce failures, never crashes. A zip of a bundle is read asynchronously: verifyZipBundle.
 */
export function verifyBundle(bundle: string, options: VerifyBundleOptions = {}): BundleVerifyReport {
  if (looksLikeZip(bundle)) {
    throw new WitnessError('invalid_argument', `${bundle} is a zip bundle; verify it with verifyZipBundle (as \`witness verify\` does), or unzip it and verify the directory.`);
  }
  return verifyDirectory(bundle, options);
}

/**
 * Verifies a zip of an evidence bundle offline: it is extracted (only the names a bundle has,
 * within their caps) into a private directory, and that directory verified as verifyBundle does;
 * an archive refused is one bundle_invalid failure, with nothing written outside that directory.
 */
export async function verifyZipBundle(file: string, options: VerifyBundleOptions = {}): Promise<BundleVerifyReport> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'witness-bundle-'));
  try {
    const refusal = await extractZip(file, tmp, capOfName);
    return verifyDirectory(tmp, options, refusal === undefined ? undefined : `${refusal}: this is not a readable Witness evidence bundle.`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * The session a bundle (directory or zip) says it holds, from its manifest; undefined when that
 * cannot be read. For naming the bundle to a person, not for trusting: verification checks it.
 */
export async function bundleSession(bundle: string): Promise<string | undefined> {
  const zipped = looksLikeZip(bundle);
  const dir = zipped ? fs.mkdtempSync(path.join(os.tmpdir(), 'witness-bundle-')) : bundle;
  try {
    if (zipped && (await extractZip(bundle, dir, capOfName, (name) => name === 'manifest.json')) !== undefined) return undefined;
    const f = openBundleFile(path.join(dir, 'manifest.json'), BUNDLE_LIMITS.manifestBytes);
    if (!('fd' in f)) return undefined;
    try {
      const m = strictParse(readWhole(f)) as { session?: unknown; scope?: { sessions?: unknown } } | null;
      if (typeof m !== 'object' || m === null) return undefined;
      if (typeof m.session === 'string') return m.session;
      // Format 2: a bundle of exactly one session names it in its scope.
      const sessions = m.scope?.sessions;
      return Array.isArray(sessions) && sessions.length === 1 && typeof sessions[0] === 'string' ? sessions[0] : undefined;
    } finally {
      fs.closeSync(f.fd);
    }
  } catch {
    return undefined;
  } finally {
    if (zipped) fs.rmSync(dir, { recursive: true, force: true });
  }
}

function verifyDirectory(dir: string, options: VerifyBundleOptions, refusal?: string): BundleVerifyReport {
  const failures: Failure[] = [];
  const warnings: string[] = [];
  const fail = (f: Failure) => {
    if (failures.length < MAX_FAILURES) failures.push(f);
  };
  const report = (extra: Partial<VerifyReport>, source: KeySource, keys: NoteKeyId[], checkpoints: number): VerifyReport => {
    const sorted = [...failures].sort((a, b) => (a.leaf ?? Number.MAX_SAFE_INTEGER) - (b.leaf ?? Number.MAX_SAFE_INTEGER));
    const r: VerifyReport = {
      ok: sorted.length === 0 && extra.unverifiable !== true,
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
      trust: trustedKeys(keys, source, checkpoints),
      warnings,
    };
    r.ok = sorted.length === 0 && !r.unverifiable;
    // No checkpoint and no event checked: a refused bundle relied on nothing, not on "the hash chains".
    if (checkpoints === 0 && r.events === 0) r.trust = { ...r.trust, statement: NOTHING_RELIED_ON };
    if (sorted[0] !== undefined) r.first = sorted[0];
    return r;
  };
  const bad = (reason: string): VerifyReport => {
    fail({ code: 'bundle_invalid', reason });
    return report({}, 'bundle', [], 0);
  };
  /** A file or line over its cap: the bundle is refused as a whole, whatever else was found. */
  const refuse = (reason: string): VerifyReport => {
    failures.length = 0;
    return bad(reason);
  };

  if (refusal !== undefined) return refuse(refusal);
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    const hint = fs.existsSync(dir) ? ` (to verify a ledger file, use --store sqlite:${dir})` : '';
    throw new WitnessError('not_found', `${dir} is not an evidence bundle directory${hint}; pass the directory written by \`witness export -o\`.`);
  }
  const open = (name: string, max: number): BundleFile => openBundleFile(path.join(dir, name), max);
  /** Why a file cannot be read, in words for a failure reason; undefined when it is open. */
  const unreadable = (name: string, f: BundleFile, max: number): string | undefined => {
    if ('missing' in f) return `${name} is missing`;
    if ('notFile' in f) return `${name} is not a regular file`;
    if ('tooLarge' in f) return `${name} is ${f.size} bytes, more than the ${bytes(max)} it may have`;
    return undefined;
  };
  const readSmall = (name: string, max: number): string | { reason: string } => {
    const f = open(name, max);
    if (!('fd' in f)) return { reason: unreadable(name, f, max)! };
    try {
      return readWhole(f);
    } finally {
      fs.closeSync(f.fd);
    }
  };

  // --- manifest
  const manifestText = readSmall('manifest.json', BUNDLE_LIMITS.manifestBytes);
  if (typeof manifestText !== 'string') return bad(`${manifestText.reason}: this is not a readable Witness evidence bundle.`);
  let manifest: Record<string, unknown>;
  try {
    const m = strictParse(manifestText);
    if (typeof m !== 'object' || m === null || Array.isArray(m)) return bad('manifest.json is not a JSON object.');
    manifest = m as Record<string, unknown>;
  } catch (e) {
    return bad(`manifest.json is not strict JSON: ${(e as Error).message}`);
  }
  if (manifest['format'] !== BUNDLE_FORMAT) return bad('manifest.json does not describe a Witness evidence bundle.');
  const version = manifest['version'];
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1) {
    return bad(`manifest.json has no valid format version (${JSON.stringify(version) ?? 'none'}): it is damaged or not a Witness bundle.`);
  }
  if (version === BUNDLE_VERSION_V2) return verifyDirectoryV2(dir, manifest, options);
  if (version > BUNDLE_VERSION_V2) {
    warnings.push(
      `The bundle is format version ${String(manifest['version'])}, newer than this verifier (${BUNDLE_VERSION_V2}): unverifiable by this version, not necessarily tampered; upgrade Witness.`,
    );
    return report({ unverifiable: true }, 'bundle', [], 0);
  }
  const ledger = manifest['ledger'] as { origin?: unknown } | undefined;
  const origin = typeof ledger?.origin === 'string' ? ledger.origin : undefined;
  const session = typeof manifest['session'] === 'string' ? manifest['session'] : undefined;
  if (origin === undefined || session === undefined) return bad('manifest.json names no ledger origin or session.');

  // --- keys and checkpoint
  const keysText = readSmall('keys.txt', BUNDLE_LIMITS.keysBytes);
  // Shipped keys are a convenience: without --trusted-key they are all there is, so an
  // unreadable keys.txt then fails the checkpoint's signature below.
  const { verifiers, source } = selectVerifiers(options.trustedKeys, (typeof keysText === 'string' ? keysText : '').split('\n'), 'bundle', (_k, e) =>
    fail({ code: 'checkpoint_signature', reason: `keys.txt holds a malformed key: ${e.message}` }),
  );
  const note = readSmall('checkpoint.txt', BUNDLE_LIMITS.checkpointBytes);
  if (typeof note !== 'string') return bad(`${note.reason}: the events cannot be tied to a signed tree.`);
  let cp: Checkpoint;
  let usedKeys: NoteKeyId[];
  try {
    const opened = openCheckpoint(note, verifiers, origin);
    cp = opened.checkpoint;
    usedKeys = opened.verified;
  } catch (e) {
    const code = e instanceof WitnessError && (e.code === 'invalid_signature' || e.code === 'invalid_key') ? 'checkpoint_signature' : 'checkpoint_invalid';
    fail({ code, reason: `The bundle's checkpoint does not verify: ${(e as Error).message}` });
    return report({}, source, [], 0);
  }

  // --- events and their proofs, read side by side
  const eventsFile = open('events.jsonl', BUNDLE_LIMITS.fileBytes);
  if (!('fd' in eventsFile)) return bad(`${unreadable('events.jsonl', eventsFile, BUNDLE_LIMITS.fileBytes)!}.`);
  const withheld = manifest['withheld'] === true;
  /** Leaves whose event carries no payload: a format-1 verdict names them all. */
  const without = new LeafRanges();
  const chain = new ChainChecker(origin, fail, (w) => warnings.push(w), false, withheld);
  let count = 0;
  let last: { kind: string; seq: number; leaf: number } | undefined;
  let proofsFile: BundleFile = { missing: true };
  try {
    // One proof line per event line: a bigger proofs.jsonl holds something else, and is refused
    // before it is read (a 96 MB one once took 356 MB of memory).
    const maxProofs = Math.min(BUNDLE_LIMITS.fileBytes, countLines(eventsFile) * BUNDLE_LIMITS.proofLineBytes);
    proofsFile = open('proofs.jsonl', maxProofs);
    if ('tooLarge' in proofsFile || 'notFile' in proofsFile) {
      return refuse(`${unreadable('proofs.jsonl', proofsFile, maxProofs)!} (${BUNDLE_LIMITS.proofLineBytes} bytes for each line of events.jsonl): the bundle was refused unread.`);
    }
    const proofs = new ProofReader('fd' in proofsFile ? readLines(proofsFile, BUNDLE_LIMITS.proofLineBytes) : undefined, fail);

    for (const read of readLines(eventsFile, BUNDLE_LIMITS.eventLineBytes)) {
      // Past this many failures the verdict cannot change; stop instead of grinding through a
      // hostile file of junk lines.
      if (failures.length >= MAX_FAILURES) {
        warnings.push(`Verification stopped at events.jsonl line ${read.n} after ${MAX_FAILURES} failures.`);
        break;
      }
      if ('tooLong' in read) {
        return refuse(`events.jsonl line ${read.n} is longer than ${bytes(BUNDLE_LIMITS.eventLineBytes)}, more than any recorded event: the bundle was refused without reading it.`);
      }
      const line = read.text;
      const i = read.n - 1;
      if (/^[ \t\r]*$/.test(line)) continue;
      let ev: Record<string, unknown>;
      try {
        const parsed = strictParse(line);
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not a JSON object');
        ev = parsed as Record<string, unknown>;
      } catch (e) {
        // Name the event the line claims to be (read leniently, for the position only), so this is
        // reported where it happened and not after the gap it leaves in the chain.
        const claimed = lenientPosition(line);
        fail({ code: 'bundle_invalid', ...claimed, reason: `events.jsonl line ${i + 1} is not strict JSON: ${(e as Error).message}` });
        continue;
      }
      const { data, salt, hash, leaf, ...header } = ev;
      const seq = typeof header['seq'] === 'number' ? header['seq'] : -1;
      const stream = typeof header['stream'] === 'string' ? header['stream'] : '';
      if (!Number.isSafeInteger(leaf) || typeof hash !== 'string' || !/^[0-9a-f]{64}$/.test(hash)) {
        fail({ code: 'bundle_invalid', stream, seq, reason: `events.jsonl line ${i + 1} lacks a valid leaf index or hash.` });
        continue;
      }
      if (stream !== session) {
        fail({ code: 'bundle_invalid', stream, seq, leaf: leaf as number, reason: `An event of stream ${stream} is in the bundle of session ${session}: it was moved here.` });
      }
      count++;
      if (data === null || data === undefined) without.add(leaf as number, withheld ? 'withheld' : 'missing');
      else if (withheld) {
        // Format 1 declares withholding only in the unsigned manifest: nothing signed says which
        // events may carry a payload, so a bundle that declares it must carry none at all (a
        // format-2 bundle re-labelled as format 1 would otherwise show payloads its mode withholds).
        fail({
          code: 'payload_unexpected',
          stream,
          seq,
          leaf: leaf as number,
          reason: 'The event carries its payload, but manifest.json declares the payloads withheld: a format-1 bundle that withholds must carry none.',
        });
      }
      let headerText: string;
      let dataText: string | null;
      try {
        headerText = canonicalize(header);
        dataText = data === null || data === undefined ? null : canonicalize(data);
      } catch (e) {
        fail({ code: 'non_canonical', stream, seq, leaf: leaf as number, reason: `The event cannot be canonicalised: ${(e as Error).message}` });
        continue;
      }
      const recomputed = checkBundleEvent(chain, { leaf: leaf as number, stream, seq, header, headerText, dataText, salt, hash });
      const p = proofs.take(leaf as number);
      if (proofs.tooLong !== undefined) {
        return refuse(`proofs.jsonl line ${proofs.tooLong} is longer than ${BUNDLE_LIMITS.proofLineBytes} bytes, more than any inclusion proof: the bundle was refused without reading it.`);
      }
      if (p === undefined) {
        fail({ code: 'inclusion_failed', stream, seq, leaf: leaf as number, reason: `No inclusion proof for leaf ${String(leaf)}: the event cannot be shown to be in the signed tree.` });
      } else if (p.size !== cp.size) {
        fail({ code: 'inclusion_failed', stream, seq, leaf: leaf as number, reason: `The proof for leaf ${String(leaf)} is for tree size ${p.size}, not the checkpoint's ${cp.size}.` });
      } else {
        const r = verifyInclusion(leafHash(recomputed), leaf as number, cp.size, p.proof, cp.rootHash);
        if (!r.ok) {
          fail({ code: 'inclusion_failed', stream, seq, leaf: leaf as number, reason: `Leaf ${String(leaf)} is not in the signed tree of size ${cp.size}: ${r.reason}.` });
        }
      }
      last = { kind: String(header['kind']), seq, leaf: leaf as number };
    }
    if (failures.length < MAX_FAILURES) proofs.drain();
    if (proofs.tooLong !== undefined) {
      return refuse(`proofs.jsonl line ${proofs.tooLong} is longer than ${BUNDLE_LIMITS.proofLineBytes} bytes, more than any inclusion proof: the bundle was refused without reading it.`);
    }
  } finally {
    fs.closeSync(eventsFile.fd);
    if ('fd' in proofsFile) fs.closeSync(proofsFile.fd);
  }
  if (last === undefined) {
    fail({ code: 'bundle_invalid', reason: 'events.jsonl holds no events.' });
  } else if (last.kind !== 'session.end') {
    fail({
      code: 'session_incomplete',
      stream: session,
      seq: last.seq + 1,
      reason: `The bundle ends at seq ${last.seq} without the session's signed session.end: its tail was cut off, or the session was still open when exported.`,
    });
  }
  if (typeof manifest['events'] === 'number' && manifest['events'] !== count) {
    fail({ code: 'bundle_invalid', reason: `manifest.json lists ${String(manifest['events'])} events but events.jsonl holds ${count}.` });
  }

  // --- artifacts
  for (const [sha, leaf] of chain.artifactRefs) {
    // A link or a device (/dev/zero) would make hashing read forever or outside the bundle.
    const f = open(path.join('artifacts', sha), BUNDLE_LIMITS.fileBytes);
    if ('missing' in f) {
      if (withheld) continue;
      fail({ code: 'artifact_missing', artifact: sha, leaf, reason: `Artifact ${sha} referenced at leaf ${leaf} is not in the bundle.` });
      continue;
    }
    if (!('fd' in f)) {
      fail({ code: 'artifact_mismatch', artifact: sha, leaf, reason: `Artifact ${sha} referenced at leaf ${leaf} is not a regular file of at most ${BUNDLE_LIMITS.fileBytes} bytes in the bundle.` });
      continue;
    }
    let digest: string;
    try {
      digest = sha256OfFile(f);
    } finally {
      fs.closeSync(f.fd);
    }
    if (digest !== sha) {
      fail({ code: 'artifact_mismatch', artifact: sha, leaf, reason: `Artifact ${sha} referenced at leaf ${leaf} no longer has that SHA-256: its bytes were changed.` });
    }
  }
  if (withheld) warnings.push('Payloads and artifacts were withheld from this bundle: headers, digests and the signed tree were verified, not the content.');
  if (without.count > 0) {
    const leaves = without.ranges.map((r) => (r.to - r.from === 1 ? `${r.from}` : `${r.from}–${r.to - 1}`)).join(', ');
    warnings.push(
      `${without.count} event(s) carry no payload (${withheld ? 'declared withheld' : 'stripped'}): leaves ${leaves}. A bundle of format 1 declares withholding only in the unsigned manifest.json, not in anything signed; format 2 binds it in the signed export record.`,
    );
  }
  if (options.requirePayloads === true && chain.payloadsAbsent > 0) {
    fail({
      code: 'payload_missing',
      reason: `${chain.payloadsAbsent} event(s) of the bundle carry no payload${withheld ? ' (withheld by the export)' : ''}, and --require-payloads asks for every one.`,
    });
  }

  return report(
    {
      events: count,
      streams: chain.streamCount,
      sealedSize: cp.size,
      payloadsAbsent: chain.payloadsAbsent,
      artifacts: chain.artifactRefs.size,
      openSessions: chain.openStreams,
    },
    source,
    usedKeys,
    1,
  );
}
