import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Transform, pipeline as pipe, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { WitnessError, keyFingerprint, openCheckpoint, parseVerifierKey, sha256Hex, type StoredEvent } from '../core/index.js';
import type { CheckpointRow, Ledger } from '../store/index.js';
import { createZip, type ZipWriter } from './zip.js';

/**
 * An evidence bundle is a directory an auditor can verify with no database and no trust in us:
 *
 *   manifest.json     what the bundle holds, the ledger origin, the session, file digests
 *   events.jsonl      the session's events, each with its global leaf index
 *   proofs.jsonl      an RFC 6962 inclusion proof per event against the checkpoint
 *   checkpoint.txt    the signed checkpoint (C2SP signed note) the proofs lead to
 *   keys.txt          the ledger's own public key (verifier key string), for convenience only
 *   artifacts/<sha>   screenshots, large outputs: each named by its SHA-256
 */
export const BUNDLE_FORMAT = 'witness-evidence';
export const BUNDLE_VERSION = 1;
/** The stream where reads and exports of audit data are themselves recorded. */
export const AUDIT_STREAM = 'witness.audit-access';

export interface BundleManifest {
  format: typeof BUNDLE_FORMAT;
  version: number;
  created_at: string;
  ledger: { id: string; origin: string };
  session: string;
  agent: string;
  events: number;
  checkpoint: { size: number; root: string };
  withheld: boolean;
  files: Record<string, string>;
}

export interface ExportOptions {
  /** Export headers and salted digests only: shareable without personal data, still verifiable. */
  withholdData?: boolean;
  /**
   * Who is exporting: recorded as an `audit.access` event in the ledger's audit stream (HIPAA
   * 164.312(b) and SOC 2 ask who read audit data, not only what agents did).
   */
  actor?: string;
  now?: Date;
}

export interface ExportResult {
  dir: string;
  events: number;
  artifacts: number;
  checkpointSize: number;
  /**
   * Fingerprints (`<name>+<key hash>`) of the keys whose signatures on the exported checkpoint
   * verified: what an auditor compares with the key they pin, which must come from their own
   * record, not from the files beside the ledger.
   */
  signedBy: string[];
  manifest: BundleManifest;
  /** Things the exporter should know, e.g. that the session is still open. */
  warnings: string[];
}

export async function exportSession(ledger: Ledger, session: string, outDir: string, options: ExportOptions = {}): Promise<ExportResult> {
  const events = await ledger.readStream(session);
  if (events.length === 0) {
    throw new WitnessError('not_found', `No session ${session} in ${ledger.info.location}; list sessions with \`witness query --kind session.start\`.`);
  }
  const lastPos = Math.max(...events.map((e) => e.pos));
  let cp = await ledger.latestCheckpoint();
  if ((cp === undefined || cp.size <= lastPos) && ledger.canSeal) cp = (await ledger.seal()) ?? cp;
  if (cp === undefined || cp.size <= lastPos) {
    throw new WitnessError('invalid_checkpoint', `Session ${session} is not yet covered by a signed checkpoint; run \`witness seal\` with the ledger's signing key, then export again.`);
  }
  // Only the ledger's own key (its first key row) travels: any other key in the table was put there
  // by someone who can write the database, never by the sealer, and a bundle must not carry it to an
  // auditor as if it were the ledger's (verify names such a key and does not trust it either).
  const keys = (await ledger.publicKeys()).slice(0, 1).map((k) => k.vkey);
  // The checkpoint shipped must open with the keys shipped, or the bundle is useless: check before
  // anything is written, so a refused export leaves no half-written directory.
  const signedBy = openCheckpoint(
    cp.note,
    keys.map((k) => parseVerifierKey(k)),
    ledger.info.origin,
  ).verified.map(keyFingerprint);
  // A bundle named *.zip is written straight into the zip (a hidden file beside it, renamed into
  // place when whole), the artifacts streamed from the store: no directory, no second copy.
  const zipOut = /\.zip$/i.test(outDir) ? outDir : undefined;
  let sink: BundleSink;
  let zip: ZipWriter | undefined;
  if (zipOut !== undefined) {
    if (fs.existsSync(zipOut)) throw new WitnessError('invalid_argument', `The output ${zipOut} already exists; choose a new path with -o.`);
    makeDirectory(path.dirname(path.resolve(zipOut)), { what: 'output directory', flag: '-o' });
    zip = createZip(zipOut, options.now);
    sink = zipSink(zip);
  } else {
    prepareEmptyDir(outDir);
    sink = directorySink(outDir);
  }
  let written: Written;
  try {
    written = await writeBundle(ledger, session, sink, events, cp, keys, options);
    await zip?.finish();
  } finally {
    await zip?.abort();
  }
  const out = zipOut ?? outDir;
  const { manifest, copied, referenced } = written;
  const withhold = manifest.withheld;
  // After the zip is in place: the record says what was handed out, where.
  if (options.actor !== undefined) {
    await ledger.append([
      {
        stream: AUDIT_STREAM,
        agent: { id: 'witness-cli' },
        principal: { id: options.actor, kind: 'human' },
        kind: 'audit.access',
        resource: session,
        action: 'export',
        outcome: 'success',
        data: { actor: options.actor, operation: 'export', scope: { session, withheld: withhold, dir: path.resolve(out) }, count: events.length },
      },
    ]);
  }
  const warnings: string[] = [];
  if (options.actor !== undefined && ledger.canSeal) {
    // The bundle is complete and the access is recorded; sealing that record is the ledger's next
    // job, not a reason to report the export as failed. A refused seal (the ledger no longer extends
    // the sealer's record, or it needs adopting) is said once here and again by `witness seal`.
    try {
      await ledger.seal();
    } catch (e) {
      warnings.push(`The bundle is complete and this export is recorded, but the record of it could not be sealed: ${e instanceof Error ? e.message.replace(/\.$/, '') : String(e)}.`);
    }
  }
  if (events[events.length - 1]!.kind !== 'session.end') {
    warnings.push(`Session ${session} has not ended, so the bundle has no session.end and its verification will report it incomplete; export again after the session ends.`);
  }
  if (copied < referenced && !withhold) {
    warnings.push(`${referenced - copied} referenced artifact(s) are missing from the artifact store and were not exported; run \`witness verify\`.`);
  }
  return { dir: out, events: events.length, artifacts: copied, checkpointSize: cp.size, signedBy, manifest, warnings };
}

interface Written {
  manifest: BundleManifest;
  /** Artifacts copied into the bundle, and how many its events reference. */
  copied: number;
  referenced: number;
}

async function writeBundle(
  ledger: Ledger,
  session: string,
  out: BundleSink,
  events: ReadonlyArray<StoredEvent & { pos: number }>,
  cp: CheckpointRow,
  keys: string[],
  options: ExportOptions,
): Promise<Written> {
  const withhold = options.withholdData === true;
  const files: Record<string, string> = {};
  const write = (name: string, text: string) => {
    const bytes = Buffer.from(text);
    out.file(name, bytes);
    files[name] = sha256Hex(bytes);
  };

  const eventLines: string[] = [];
  const proofLines: string[] = [];
  const artifacts = new Set<string>();
  for (const ev of events) {
    const { pos, ...stored } = ev;
    const line: StoredEvent & { leaf: number } = { ...stored, ...(withhold ? { data: null, salt: null } : {}), leaf: pos };
    eventLines.push(JSON.stringify(line));
    const proof = await ledger.inclusionProof(pos, cp.size);
    proofLines.push(JSON.stringify({ leaf: pos, size: cp.size, proof: proof.map((h) => h.toString('hex')) }));
    for (const a of ev.artifacts ?? []) artifacts.add(a.sha256);
  }
  write('events.jsonl', `${eventLines.join('\n')}\n`);
  write('proofs.jsonl', `${proofLines.join('\n')}\n`);
  write('checkpoint.txt', cp.note);
  write('keys.txt', `${keys.join('\n')}\n`);

  let copied = 0;
  if (!withhold && artifacts.size > 0) {
    out.directory('artifacts');
    for (const sha of artifacts) {
      // Streamed from the store to the file or zip and hashed on the way: a session's video may
      // be hundreds of megabytes, and readArtifact would hold it whole.
      const stream = await ledger.readArtifactStream(sha);
      if (stream === undefined) continue; // verify reports it missing, naming the event
      const name = `artifacts/${sha}`;
      const hash = createHash('sha256');
      const hashed = new Transform({
        transform(chunk: Buffer, _enc, done) {
          hash.update(chunk);
          done(null, chunk);
        },
      });
      // pipe() with a callback passes the store's error on to `hashed`, where the sink sees it.
      await out.stream(
        name,
        pipe(stream, hashed, () => undefined),
      );
      files[name] = hash.digest('hex');
      copied++;
    }
  }

  const manifest: BundleManifest = {
    format: BUNDLE_FORMAT,
    version: BUNDLE_VERSION,
    created_at: (options.now ?? new Date()).toISOString(),
    ledger: { id: ledger.info.id, origin: ledger.info.origin },
    session,
    agent: events[0]!.agent.id,
    events: events.length,
    checkpoint: { size: cp.size, root: cp.root.toString('hex') },
    withheld: withhold,
    files,
  };
  out.file('manifest.json', Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`));
  return { manifest, copied, referenced: artifacts.size };
}

/** Where a bundle's files go: a directory, or a zip being written. Names are `/`-separated. */
interface BundleSink {
  file(name: string, bytes: Buffer): void;
  directory(name: string): void;
  /** Resolves once `source` is written whole. */
  stream(name: string, source: Readable): Promise<void>;
}

function directorySink(dir: string): BundleSink {
  const at = (name: string) => path.join(dir, ...name.split('/'));
  return {
    file: (name, bytes) => fs.writeFileSync(at(name), bytes, { flag: 'wx' }),
    directory: (name) => fs.mkdirSync(at(name)),
    stream: (name, source) => pipeline(source, fs.createWriteStream(at(name), { flags: 'wx' })),
  };
}

function zipSink(zip: ZipWriter): BundleSink {
  return {
    file: (name, bytes) => zip.addBuffer(name, bytes),
    directory: (name) => zip.addDirectory(name),
    stream: (name, source) => zip.addStream(name, source),
  };
}

function prepareEmptyDir(dir: string): void {
  if (fs.existsSync(dir)) {
    const st = fs.statSync(dir);
    if (!st.isDirectory() || fs.readdirSync(dir).length > 0) {
      throw new WitnessError('invalid_argument', `The output ${dir} already exists and is not an empty directory; choose a new path with -o.`);
    }
    return;
  }
  makeDirectory(dir, { what: 'output directory', flag: '-o' });
}

/** What a directory a person named is for, as its errors say it. */
export interface DirectoryUse {
  /** The noun in the errors: `output directory`, `demo directory`. */
  what: string;
  /** The option that chooses another path: `-o`, `--dir`. */
  flag: string;
  /** The mode of each directory created (an existing one is left as it is). */
  mode?: number;
}

/**
 * Makes `dir` and any missing parents, or throws `invalid_argument` in one sentence naming `dir`
 * (as given) and `use.flag`. An existing directory is fine; an existing file is not.
 *
 * Not fs.mkdirSync(dir, { recursive: true }): on a file system that answers ENOENT for a
 * directory whose parent exists (/proc, /sys) it retries forever. One level at a time, from the
 * nearest existing ancestor, any refusal is final.
 */
export function makeDirectory(dir: string, use: DirectoryUse): void {
  const missing: string[] = [];
  let at = path.resolve(dir);
  while (!fs.existsSync(at)) {
    missing.unshift(at);
    const parent = path.dirname(at);
    if (parent === at) break;
    at = parent;
  }
  if (missing.length === 0 && !fs.statSync(at).isDirectory()) {
    throw new WitnessError('invalid_argument', `The ${use.what} ${dir} exists and is not a directory; choose another path with ${use.flag}.`);
  }
  for (const d of missing) {
    try {
      fs.mkdirSync(d, use.mode === undefined ? undefined : { mode: use.mode });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? 'error';
      const why =
        code === 'ENOTDIR'
          ? `${path.dirname(d)} is not a directory`
          : code === 'EACCES' || code === 'EPERM'
            ? 'permission denied'
            : code === 'EROFS'
              ? 'read-only file system'
              : `the file system refused it (${code})`;
      throw new WitnessError('invalid_argument', `Cannot create the ${use.what} ${dir} (${why}); choose a writable path with ${use.flag}.`, { cause: e });
    }
  }
}
