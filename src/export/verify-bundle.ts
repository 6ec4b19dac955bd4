import { createHash } from 'node:crypto';
import fs from 'node:fs';
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
import { BUNDLE_FORMAT, BUNDLE_VERSION } from './bundle.js';

export interface VerifyBundleOptions {
  /** Verifier keys the auditor trusts; without them the keys shipped in the bundle are used (and the report says so). */
  trustedKeys?: string[];
}

const MAX_FILE_BYTES = 512 * 1024 * 1024;

/**
 * Verifies an evidence bundle offline: every event's digest, hash and chain link are recomputed,
 * every inclusion proof is checked link by link against the signed checkpoint, the session must
 * end in a session.end that is itself in the signed tree, and artifacts are re-hashed. Hostile
 * files produce failures, never crashes.
 */
export function verifyBundle(dir: string, options: VerifyBundleOptions = {}): VerifyReport {
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
    if (sorted[0] !== undefined) r.first = sorted[0];
    return r;
  };
  const bad = (reason: string): VerifyReport => {
    fail({ code: 'bundle_invalid', reason });
    return report({}, 'bundle', [], 0);
  };

  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    const hint = fs.existsSync(dir) ? ` (to verify a ledger file, use --store sqlite:${dir})` : '';
    throw new WitnessError('not_found', `${dir} is not an evidence bundle directory${hint}; pass the directory written by \`witness export -o\`.`);
  }
  const read = (name: string): string | undefined => {
    const p = path.join(dir, name);
    try {
      const st = fs.lstatSync(p);
      if (!st.isFile() || st.size > MAX_FILE_BYTES) return undefined;
      return fs.readFileSync(p, 'utf8');
    } catch {
      return undefined;
    }
  };

  // --- manifest
  const manifestText = read('manifest.json');
  if (manifestText === undefined) return bad('manifest.json is missing: this is not a Witness evidence bundle.');
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
  if (version > BUNDLE_VERSION) {
    warnings.push(`The bundle is format version ${String(manifest['version'])}, newer than this verifier (${BUNDLE_VERSION}): unverifiable by this version, not necessarily tampered; upgrade Witness.`);
    return report({ unverifiable: true }, 'bundle', [], 0);
  }
  const ledger = manifest['ledger'] as { origin?: unknown } | undefined;
  const origin = typeof ledger?.origin === 'string' ? ledger.origin : undefined;
  const session = typeof manifest['session'] === 'string' ? manifest['session'] : undefined;
  if (origin === undefined || session === undefined) return bad('manifest.json names no ledger origin or session.');

  // --- keys and checkpoint
  const { verifiers, source } = selectVerifiers(options.trustedKeys, (read('keys.txt') ?? '').split('\n'), 'bundle', (_k, e) =>
    fail({ code: 'checkpoint_signature', reason: `keys.txt holds a malformed key: ${e.message}` }),
  );
  const note = read('checkpoint.txt');
  if (note === undefined) return bad('checkpoint.txt is missing: the events cannot be tied to a signed tree.');
  let cp: Checkpoint;
  let usedKeys: NoteKeyId[] = [];
  try {
    const opened = openCheckpoint(note, verifiers, origin);
    cp = opened.checkpoint;
    usedKeys = opened.verified;
  } catch (e) {
    const code = e instanceof WitnessError && (e.code === 'invalid_signature' || e.code === 'invalid_key') ? 'checkpoint_signature' : 'checkpoint_invalid';
    fail({ code, reason: `The bundle's checkpoint does not verify: ${(e as Error).message}` });
    return report({}, source, [], 0);
  }

  // --- proofs
  const proofs = new Map<number, { size: number; proof: Buffer[] }>();
  const proofText = read('proofs.jsonl') ?? '';
  proofText.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    try {
      const p = strictParse(line) as { leaf?: unknown; size?: unknown; proof?: unknown };
      if (!Number.isSafeInteger(p.leaf) || !Number.isSafeInteger(p.size) || !Array.isArray(p.proof)) throw new Error('needs leaf, size and proof');
      const hashes = (p.proof as unknown[]).map((h) => {
        if (typeof h !== 'string' || !/^[0-9a-f]{64}$/.test(h)) throw new Error('a proof step is not 64 hex characters');
        return Buffer.from(h, 'hex');
      });
      proofs.set(p.leaf as number, { size: p.size as number, proof: hashes });
    } catch (e) {
      fail({ code: 'bundle_invalid', reason: `proofs.jsonl line ${i + 1} is malformed: ${(e as Error).message}.` });
    }
  });

  // --- events
  const eventsText = read('events.jsonl');
  if (eventsText === undefined) return bad('events.jsonl is missing.');
  const withheld = manifest['withheld'] === true;
  const chain = new ChainChecker(origin, fail, (w) => warnings.push(w), false, withheld);
  let count = 0;
  let last: { kind: string; seq: number; leaf: number } | undefined;
  const lines = eventsText.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === '') continue;
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
    let headerText: string;
    let dataText: string | null;
    try {
      headerText = canonicalize(header);
      dataText = data === null || data === undefined ? null : canonicalize(data);
    } catch (e) {
      fail({ code: 'non_canonical', stream, seq, leaf: leaf as number, reason: `The event cannot be canonicalised: ${(e as Error).message}` });
      continue;
    }
    const saltBytes = typeof salt === 'string' && /^[0-9a-f]{64}$/.test(salt) ? Buffer.from(salt, 'hex') : salt === null || salt === undefined ? null : Buffer.alloc(0);
    const recomputed = chain.check(
      {
        pos: leaf as number,
        id: String(header['id']),
        stream,
        seq,
        ts: String(header['ts']),
        kind: String(header['kind']),
        agent: '',
        resource: null,
        action: null,
        outcome: null,
        header: headerText,
        data: dataText,
        salt: saltBytes,
        hash: Buffer.from(hash, 'hex'),
      },
      { stream, seq, leaf: leaf as number },
    );
    const p = proofs.get(leaf as number);
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
    const p = path.join(dir, 'artifacts', sha);
    let st: fs.Stats | undefined;
    try {
      st = fs.lstatSync(p);
    } catch {
      st = undefined;
    }
    if (st === undefined) {
      if (withheld) continue;
      fail({ code: 'artifact_missing', artifact: sha, leaf, reason: `Artifact ${sha} referenced at leaf ${leaf} is not in the bundle.` });
      continue;
    }
    // A link or a device (/dev/zero) would make hashing read forever or outside the bundle.
    if (!st.isFile() || st.size > MAX_FILE_BYTES) {
      fail({ code: 'artifact_mismatch', artifact: sha, leaf, reason: `Artifact ${sha} referenced at leaf ${leaf} is not a regular file of at most ${MAX_FILE_BYTES} bytes in the bundle.` });
      continue;
    }
    if (createHash('sha256').update(fs.readFileSync(p)).digest('hex') !== sha) {
      fail({ code: 'artifact_mismatch', artifact: sha, leaf, reason: `Artifact ${sha} referenced at leaf ${leaf} no longer has that SHA-256: its bytes were changed.` });
    }
  }
  if (withheld) warnings.push('Payloads and artifacts were withheld from this bundle: headers, digests and the signed tree were verified, not the content.');

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

function lenientPosition(line: string): { stream?: string; seq?: number; leaf?: number } {
  try {
    const v = JSON.parse(line) as { stream?: unknown; seq?: unknown; leaf?: unknown };
    return {
      ...(typeof v.stream === 'string' ? { stream: v.stream } : {}),
      ...(typeof v.seq === 'number' && Number.isSafeInteger(v.seq) ? { seq: v.seq } : {}),
      ...(typeof v.leaf === 'number' && Number.isSafeInteger(v.leaf) ? { leaf: v.leaf } : {}),
    };
  } catch {
    return {};
  }
}
