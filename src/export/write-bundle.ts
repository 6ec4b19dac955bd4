import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { WitnessError, keyFingerprint, leafHash, nodeHash, openCheckpoint, parseVerifierKey, sha256Hex, type ArtifactRef, type StoredEvent } from '../core/index.js';
import type { CheckpointRow, Ledger } from '../store/index.js';
import { BundleOut } from './bundle-out.js';
import { BUNDLE_FORMAT_V2, BUNDLE_VERSION_V2, BundleManifestV2, BundleScope, CheckpointLine, PopulationIndex, artifactExtension, type BundleMode } from './bundle-format.js';
import { assertCanSeal, recordExport, type ExportIdentity } from './export-record.js';
import { keyHistory } from './key-history.js';
import { ANCHORS_FILE, anchoredDigest } from './bundle-anchors.js';
import { GOVERNANCE_KINDS, PURGES_FILE, PURGE_PROOFS_FILE, PURGE_STREAM, ledgerPurges } from './purges.js';
import { EventsDigest, PopulationFiles, ScopeTracker, type ScopedHeader } from './populations.js';
import { readmeText } from './readme-text.js';
import { hashedHeaderOfRow, normaliseScopeTimes, resolveSpan, type ScanRow, type Span } from './span.js';
import { SystemFacts } from './system-manifest.js';

/** What the report hook is given: the ledger, the bundle's manifest but its file digests, and where each artifact is in the bundle. */
export interface ReportContext {
  ledger: Ledger;
  manifest: Omit<BundleManifestV2, 'files'>;
  /** `artifacts/<sha256>.<ext>` when the bundle holds that artifact, else undefined. */
  artifactFile: (sha256: string) => string | undefined;
}

export interface ExportOptions {
  /** Export headers and salted digests only (mode `withheld`): shareable without personal data, still verifiable. */
  withholdData?: boolean;
  /**
   * Who is exporting, recorded as the principal of the export's own `audit.access` event (HIPAA
   * 164.312(b) and SOC 2 ask who read audit data, not only what agents did). Default `unknown`.
   */
  actor?: string;
  /** The recording program and where the request came from, when not the CLI (the server passes its own). */
  identity?: Omit<ExportIdentity, 'actor'>;
  now?: Date;
  /** Renders report.html from the ledger and the manifest (src/report implements it). */
  renderReport?: (ctx: ReportContext) => Promise<string>;
  /**
   * The ledger's anchor records (`witness anchor`'s anchors file, read by the caller: src/export may
   * not import src/anchor). Those over a checkpoint the bundle ships go into anchors.jsonl (FORMAT 7.14).
   */
  anchors?: ReadonlyArray<{ readonly checkpoint_sha256: string }>;
}

export interface ExportResult {
  /** The bundle: the zip file or the directory written. */
  dir: string;
  /** Lines of events.jsonl: the span, then the export's own event. */
  events: number;
  inScope: number;
  span: Span;
  exportEvent: { leaf: number; id: string };
  artifacts: number;
  checkpointSize: number;
  /**
   * Fingerprints (`<name>+<key hash>`) of the keys whose signatures on the exported checkpoint
   * verified: what an auditor compares with the key they pin, which must come from their own
   * record, not from the files beside the ledger.
   */
  signedBy: string[];
  manifest: BundleManifestV2;
  /** Things the exporter should know: a session still open, an artifact missing from the store. */
  warnings: string[];
}

/** Rows read per page while the span is read (twice): payloads travel in the second read, so pages stay small. */
const PAGE = 500;

/** Where the standalone verifier sits beside this module (the build copies src/export/standalone/*.mjs to dist/export/standalone/). */
export const STANDALONE_VERIFIER = fileURLToPath(new URL('./standalone/verify.mjs', import.meta.url));

/**
 * Writes an evidence bundle, version 2 (bundle-format.ts), of every event in `scope` to `out` (a
 * `*.zip` path, or a new or empty directory):
 *
 * 1. the span — the smallest contiguous run of leaves holding every in-scope event — is resolved
 *    and read once: the digest of its event hashes, the populations, the system facts and the
 *    artifacts its in-scope events reference;
 * 2. the export's own audit.access event (ExportRecord) is appended and sealed, so the signed tree
 *    says what the bundle holds;
 * 3. the span is read again and written, with that event as the last line and every file streamed
 *    into the zip or directory, then the manifest with every file's digest.
 *
 * Nothing is held whole but the in-scope ids (ScopeTracker's parent rule: about 100 bytes per
 * in-scope event) and the set of artifacts; the populations go to files in a private temporary
 * directory as the span is read, and are streamed into the bundle. BENCHMARKS.md "Evidence bundle
 * export" measures the peak at 10,000 and 100,000 events.
 */
export async function exportBundle(ledger: Ledger, scopeIn: BundleScope, out: string, options: ExportOptions = {}): Promise<ExportResult> {
  if (out === '-') {
    throw new WitnessError(
      'invalid_argument',
      'A bundle is a directory or a zip file, so it cannot go to stdout (-o -); give a path such as -o evidence.zip (only --format ocsf or jsonl can write to stdout).',
    );
  }
  const parsed = BundleScope.safeParse(scopeIn);
  if (!parsed.success)
    throw new WitnessError('invalid_argument', `The export scope is not valid (${parsed.error.issues[0]?.message ?? 'unknown'}); give since and until as ISO times or null, and known regimes.`);
  // The one normalisation of since/until (normaliseScopeTimes), to the form the manifest holds and
  // ScopeTracker compares (YYYY-MM-DDTHH:MM:SS.mmmZ); the CLI's flags arrive in that form already.
  const scope = normaliseScopeTimes(parsed.data);
  if (scope.since === null && scope.until === null && scope.agents === null && scope.sessions === null) {
    throw new WitnessError('invalid_argument', 'An export needs a scope; give --since/--until, --agent or --session.');
  }
  assertCanSeal(ledger);
  BundleOut.check(out);
  const mode: BundleMode = options.withholdData === true ? 'withheld' : 'full';
  const now = options.now ?? new Date();

  const span = await resolveSpan(ledger, scope);
  if (span === undefined) {
    throw new WitnessError('not_found', `No events in ${ledger.info.location} match this scope (${describeScope(scope)}); check the ids with \`witness sessions\` or widen the time window.`);
  }

  // The population files are written while the span is read, and streamed into the bundle after.
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'witness-export-'));
  try {
    return await writeSpan(ledger, { scope, span, mode, now, out, work }, options);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** What exportBundle has settled before it reads the span: `work` is its private temporary directory. */
interface Settled {
  scope: BundleScope;
  span: Span;
  mode: BundleMode;
  now: Date;
  out: string;
  work: string;
}

/** Steps 1 to 3 of exportBundle. */
async function writeSpan(ledger: Ledger, { scope, span, mode, now, out, work }: Settled, options: ExportOptions): Promise<ExportResult> {
  // ---- 1. the span, read once
  const { digest, inScope, pops, system, artifacts, ended, purgeRecords } = await readSpan(ledger, { scope, span, mode, work });
  if (digest.count !== span.to - span.from) {
    throw new WitnessError('store_corrupt', `The ledger has ${digest.count} events at leaves ${span.from}–${span.to - 1}, not ${span.to - span.from}: positions are missing; run \`witness verify\`.`);
  }

  // ---- the files the export record binds (bundle-format.ts BOUND_FILES), written before it is appended
  // The key history (keys.json): the ledger's first key and any key a key.rotated event brought in.
  // Bound by the export record, so it is built now: its times start at the first checkpoint shipped when one is stored already.
  // checkpoints.jsonl's first line: a stored checkpoint, chosen now so the record can name it.
  const firstCheckpoint = await chainStart(ledger, span.from);
  const history = await keyHistory(ledger, firstCheckpoint?.ts);
  const keysText = `${JSON.stringify(history, null, 2)}\n`;
  const keyRows = history.keys;
  const systemText = `${JSON.stringify(system.result(), null, 2)}\n`;
  const index = PopulationIndex.parse({
    span,
    populations: pops.map((p) => ({ name: p.def.name, title: p.def.title, query: p.def.query, predicate: p.def.predicate, count: p.count, digest: p.digest })),
  });
  const indexText = `${JSON.stringify(index, null, 2)}\n`;
  const hasVerifier = fs.existsSync(STANDALONE_VERIFIER);
  const verifierBytes = hasVerifier ? fs.readFileSync(STANDALONE_VERIFIER) : undefined;
  // Anchors over a checkpoint checkpoints.jsonl will ship (every stored one from its first): known now,
  // so bound by the record like keys.json; dropping one cannot pass --require-cosigner, adding one is a mismatch.
  const anchorsText = await anchorLines(ledger, firstCheckpoint, options.anchors ?? []);
  const readme = readmeText(
    {
      format: BUNDLE_FORMAT_V2,
      version: BUNDLE_VERSION_V2,
      created_at: now.toISOString(),
      ledger: { id: ledger.info.id, origin: ledger.info.origin },
      scope,
      mode,
      span,
      events: digest.count + 1,
      in_scope: inScope,
    },
    keyRows.map((k) => keyFingerprint(parseVerifierKey(k.vkey))),
    hasVerifier,
    purgeRecords.length > 0,
    anchorsText !== undefined,
  );
  // The retention.purge records that list the in-scope payloads the purge erased (docs/FORMAT.md 7.13):
  // bound by the record like keys.json, so none can be dropped or added; their proofs come after the seal.
  const purgesText = purgeRecords.length === 0 ? undefined : await storedLines(ledger, purgeRecords);
  const bound: Record<string, string> = {
    'system.json': sha256Hex(systemText),
    'README.txt': sha256Hex(readme),
    ...(verifierBytes === undefined ? {} : { 'verify.mjs': sha256Hex(verifierBytes) }),
    'populations/index.json': sha256Hex(indexText),
    'keys.json': sha256Hex(keysText),
    ...(purgesText === undefined ? {} : { [PURGES_FILE]: sha256Hex(purgesText) }),
    ...(anchorsText === undefined ? {} : { [ANCHORS_FILE]: sha256Hex(anchorsText) }),
  };

  // ---- 2. the export's own record, sealed
  const actor = options.actor ?? 'unknown';
  const recorded = await recordExport(
    ledger,
    { actor, ...options.identity },
    { scope, mode, span, eventsDigest: digest.hex(), count: digest.count, inScope, output: path.resolve(out), files: bound, checkpointsFrom: firstCheckpoint?.size ?? null },
  );
  const cp = recorded.checkpoint;
  // The checkpoint shipped must open with the key shipped, or the bundle is useless: checked before anything is written.
  const signedBy = openCheckpoint(
    cp.note,
    keyRows.map((k) => parseVerifierKey(k.vkey)),
    ledger.info.origin,
  ).verified.map(keyFingerprint);

  // ---- 3. the bundle
  const bundle = BundleOut.open(out, now);
  const warnings: string[] = [];
  let copied = 0;
  let manifest: BundleManifestV2;
  try {
    await bundle.stream('events.jsonl', eventLines(ledger, span, scope, mode, recorded.id));
    await bundle.stream('proofs.jsonl', proofLines(ledger, span, recorded.leaf, cp.size));
    bundle.file('checkpoint.txt', cp.note);
    const chain = await checkpointChain(ledger, firstCheckpoint, cp);
    bundle.file('checkpoints.jsonl', chain.map(({ ts: _ts, ...l }) => `${JSON.stringify(l)}\n`).join(''));
    bundle.file('keys.json', keysText);
    if (purgesText !== undefined) {
      bundle.file(PURGES_FILE, purgesText);
      let proofs = '';
      for (const leaf of purgeRecords) proofs += `${JSON.stringify({ leaf, size: cp.size, proof: (await ledger.inclusionProof(leaf, cp.size)).map((h) => h.toString('hex')) })}\n`;
      bundle.file(PURGE_PROOFS_FILE, proofs);
    }
    if (anchorsText !== undefined) bundle.file(ANCHORS_FILE, anchorsText);
    bundle.file('system.json', systemText);
    bundle.file('populations/index.json', indexText);
    for (const p of pops) await bundle.stream(`populations/${p.def.name}.jsonl`, fs.createReadStream(p.file));

    const written = new Map<string, string>();
    for (const [sha, ref] of artifacts) {
      // Streamed from the store and hashed on the way: a session's video may be hundreds of megabytes.
      const stream = await ledger.readArtifactStream(sha);
      if (stream === undefined) continue; // verify reports it missing, naming the event
      const name = `artifacts/${sha}.${artifactExtension(ref.mime)}`;
      await bundle.stream(name, stream);
      written.set(sha, name);
      copied++;
    }
    if (copied < artifacts.size) warnings.push(`${artifacts.size - copied} referenced artifact(s) are missing from the artifact store and were not exported; run \`witness verify\`.`);

    const head: Omit<BundleManifestV2, 'files'> = {
      format: BUNDLE_FORMAT_V2,
      version: BUNDLE_VERSION_V2,
      created_at: now.toISOString(),
      ledger: { id: ledger.info.id, origin: ledger.info.origin },
      scope,
      mode,
      span,
      export_event: { leaf: recorded.leaf, id: recorded.id },
      checkpoint: { size: cp.size, root: cp.root.toString('hex') },
      events: digest.count + 1,
      in_scope: inScope,
    };
    if (options.renderReport !== undefined) {
      bundle.file('report.html', await options.renderReport({ ledger, manifest: head, artifactFile: (sha) => written.get(sha) }));
    }
    if (verifierBytes !== undefined) bundle.file('verify.mjs', verifierBytes);
    else warnings.push(`The standalone verifier (${STANDALONE_VERIFIER}) is not installed, so the bundle has no verify.mjs; verify it with \`witness verify\`.`);
    bundle.file('README.txt', readme);

    manifest = BundleManifestV2.parse({ ...head, files: { ...bundle.files } });
    bundle.file('manifest.json', `${JSON.stringify(manifest, null, 2)}\n`, false);
    await bundle.finish();
  } finally {
    await bundle.abort();
  }
  for (const s of scope.sessions ?? []) {
    if (!ended.has(s)) warnings.push(`Session ${s} has not ended (or its session.end is outside the time window), so the bundle has no session.end for it and verification will report it incomplete.`);
  }
  return {
    dir: out,
    events: manifest.events,
    inScope,
    span,
    exportEvent: manifest.export_event,
    artifacts: copied,
    checkpointSize: cp.size,
    signedBy,
    manifest,
    warnings,
  };
}

type Header = ScopedHeader & Pick<StoredEvent, 'artifacts' | 'recorder'>;

/**
 * Step 1 of exportBundle: the span read once, for what the export's record binds — the digest of
 * its event hashes, the in-scope count, the populations (written to files in `work`), the system
 * facts — and the artifacts its in-scope events reference and the sessions that ended. A function
 * of its own so that its ScopeTracker, which keeps every in-scope id, is garbage once it returns,
 * not alive beside eventLines' own for the rest of the export.
 */
async function readSpan(ledger: Ledger, { scope, span, mode, work }: Pick<Settled, 'scope' | 'span' | 'mode' | 'work'>) {
  const tracker = new ScopeTracker(scope);
  const digest = new EventsDigest();
  const populations = new PopulationFiles(work);
  const system = new SystemFacts(mode);
  const artifacts = new Map<string, ArtifactRef>();
  const ended = new Set<string>();
  let inScope = 0;
  // In-scope payloads erased by the retention purge: each must be listed by a record the bundle can
  // carry and its verifiers believe (purges.ts), else the export is refused before it records anything.
  const purges = mode === 'full' ? await ledgerPurges(ledger) : undefined;
  const uncovered: number[] = [];
  const shipped = new Set<number>();
  try {
    for await (const page of ledger.scanForVerify(span.from, span.to, PAGE)) {
      for (const row of page) {
        const h = headerOf(row);
        digest.add(row.hash);
        if (!tracker.inScope(h)) continue;
        inScope++;
        if (purges !== undefined && row.data === null) {
          const by = GOVERNANCE_KINDS.includes(h.kind) ? undefined : purges.cover.at(row.pos);
          if (by === undefined) uncovered.push(row.pos);
          else shipped.add(by);
        }
        populations.add(row.pos, { ...h, hash: row.hash });
        system.add(row.pos, { ...h, ...(mode === 'full' && h.kind === 'llm.call' && row.data !== null ? { data: JSON.parse(row.data) as unknown } : {}) });
        if (h.kind === 'session.end') ended.add(h.stream);
        if (mode === 'full') for (const a of h.artifacts ?? []) if (!artifacts.has(a.sha256)) artifacts.set(a.sha256, a);
      }
    }
    if (uncovered.length > 0) {
      // The three bundle verifiers read such a missing payload as stripped (payload_missing).
      throw new WitnessError(
        'conflict',
        `${uncovered.length} in-scope event(s) of this export (first at leaf ${uncovered[0]}) have no payload, and no retention.purge record of ${PURGE_STREAM} written by the CLI or the server lists them, so a full bundle would show them as stripped; run \`witness verify\`, and export with --withhold-data or narrow the scope to leave them out.`,
        { details: { uncovered: uncovered.slice(0, 100) } },
      );
    }
  } catch (e) {
    populations.close();
    throw e;
  }
  return { digest, inScope, pops: populations.finish(), system, artifacts, ended, purgeRecords: [...shipped].sort((a, b) => a - b) };
}

/** The row's hashed header, checked against its stored hash and index columns (span.ts hashedHeaderOfRow). */
function headerOf(row: ScanRow): Header {
  return hashedHeaderOfRow<Header>(row);
}

/**
 * events.jsonl, a line at a time: every event of the span in its stored form plus `leaf` (an
 * out-of-scope one, and any in mode `withheld`, with data and salt null), then the export's own
 * event with its payload. The stored header and payload are copied as text, not re-serialised.
 */
async function* eventLines(ledger: Ledger, span: Span, scope: BundleScope, mode: BundleMode, exportId: string): AsyncGenerator<string> {
  const tracker = new ScopeTracker(scope);
  for await (const page of ledger.scanForVerify(span.from, span.to, PAGE)) {
    let chunk = '';
    for (const row of page) {
      const keep = tracker.inScope(headerOf(row)) && mode === 'full';
      const data = keep && row.data !== null ? row.data : 'null';
      const salt = keep && row.salt !== null ? `"${row.salt}"` : 'null';
      chunk += `${row.header.slice(0, row.header.lastIndexOf('}'))},"data":${data},"salt":${salt},"hash":"${row.hash}","leaf":${row.pos}}\n`;
    }
    yield chunk;
  }
  const ev = await ledger.getEvent(exportId);
  if (ev === undefined) throw new WitnessError('store_corrupt', `The export's own event ${exportId} cannot be read back from the ledger; run \`witness verify\`.`);
  const { pos, ...stored } = ev;
  yield `${JSON.stringify({ ...stored, leaf: pos })}\n`;
}

/** purges.jsonl: the stored events at `leaves` (ascending), each as events.jsonl writes an event with its payload. */
async function storedLines(ledger: Ledger, leaves: readonly number[]): Promise<string> {
  let text = '';
  for (const leaf of leaves) {
    for await (const page of ledger.scanForVerify(leaf, leaf + 1, 1)) {
      for (const row of page) {
        headerOf(row);
        if (row.data === null || row.salt === null) throw new WitnessError('store_corrupt', `The retention.purge record at leaf ${leaf} has lost its payload; run \`witness verify\`.`);
        text += `${row.header.slice(0, row.header.lastIndexOf('}'))},"data":${row.data},"salt":"${row.salt}","hash":"${row.hash}","leaf":${row.pos}}\n`;
      }
    }
  }
  return text;
}

/**
 * anchors.jsonl: the anchor records over a stored checkpoint from `first` on (the ones checkpoints.jsonl
 * can ship), as the anchors file holds them; undefined when there are none.
 */
async function anchorLines(ledger: Ledger, first: CheckpointRow | undefined, records: ReadonlyArray<{ readonly checkpoint_sha256: string }>): Promise<string | undefined> {
  if (first === undefined || records.length === 0) return undefined;
  const shipped = new Set((await ledger.checkpoints()).filter((c) => c.size >= first.size).map((c) => anchoredDigest(c.note)));
  const lines = records.filter((r) => shipped.has(r.checkpoint_sha256)).map((r) => `${JSON.stringify(r)}\n`);
  return lines.length === 0 ? undefined : lines.join('');
}

/** Leaves per block whose lower proof levels are computed here: 2^8. */
const BLOCK_LEVELS = 8;
const BLOCK = 1 << BLOCK_LEVELS;

/**
 * proofs.jsonl: one inclusion proof per line of events.jsonl, to the checkpoint's size.
 *
 * Asking the store for each proof costs ~0.2 ms (17 node reads for 100,000 leaves): 20 s for a
 * 100,000-event span. In an RFC 6962 tree every aligned block of 2^k leaves that ends at or below
 * the size is a complete subtree, so the proofs of its leaves share everything above the block:
 * per block, one proof comes from the store for its upper levels and the lower k levels are hashed
 * here from the block's own leaves (read with the span, one page per block). Leaves of a block the
 * tree does not yet fill (its right edge) get the store's proof, as does the export's own event.
 */
async function* proofLines(ledger: Ledger, span: Span, exportLeaf: number, size: number): AsyncGenerator<string> {
  const line = (leaf: number, proof: readonly Buffer[]) => `${JSON.stringify({ leaf, size, proof: proof.map((h) => h.toString('hex')) })}\n`;
  for (let b = Math.floor(span.from / BLOCK) * BLOCK; b < span.to; b += BLOCK) {
    const lo = Math.max(b, span.from);
    const hi = Math.min(b + BLOCK, span.to);
    let chunk = '';
    const levels = b + BLOCK <= size ? await blockLevels(ledger, b) : undefined;
    if (levels === undefined) {
      for (let leaf = lo; leaf < hi; leaf++) chunk += line(leaf, await ledger.inclusionProof(leaf, size));
    } else {
      const upper = (await ledger.inclusionProof(lo, size)).slice(BLOCK_LEVELS);
      for (let leaf = lo; leaf < hi; leaf++) {
        const proof: Buffer[] = [];
        for (let l = 0, i = leaf - b; l < BLOCK_LEVELS; l++, i >>= 1) proof.push(levels[l]![i ^ 1]!);
        chunk += line(leaf, proof.concat(upper));
      }
    }
    yield chunk;
  }
  yield line(exportLeaf, await ledger.inclusionProof(exportLeaf, size));
}

/** The lower BLOCK_LEVELS levels of the complete subtree over leaves [start, start + BLOCK), leaves first; undefined if the store has fewer rows there. */
async function blockLevels(ledger: Ledger, start: number): Promise<Buffer[][] | undefined> {
  const leaves: Buffer[] = [];
  for await (const page of ledger.scanForVerify(start, start + BLOCK, BLOCK)) for (const row of page) leaves.push(leafHash(Buffer.from(row.hash, 'hex')));
  if (leaves.length !== BLOCK) return undefined;
  const levels = [leaves];
  for (let l = 1; l < BLOCK_LEVELS; l++) {
    const below = levels[l - 1]!;
    const level: Buffer[] = [];
    for (let i = 0; i < below.length; i += 2) level.push(nodeHash(below[i]!, below[i + 1]!));
    levels.push(level);
  }
  return levels;
}

/** The stored checkpoint checkpoints.jsonl starts with: the newest at or below the span's start, or the first when none is; undefined when the ledger has none. */
async function chainStart(ledger: Ledger, from: number): Promise<CheckpointRow | undefined> {
  const all = (await ledger.checkpoints()).sort((a, b) => a.size - b.size || a.id - b.id);
  let start = all[0];
  for (const c of all) if (c.size <= from) start = c;
  return start;
}

/**
 * checkpoints.jsonl: the stored checkpoints from `first` (chainStart, chosen before the export's
 * record was appended, which binds its size) to `final`, each after the first with the consistency
 * proof from the one before; only `final` when the ledger had no checkpoint before.
 */
async function checkpointChain(ledger: Ledger, first: CheckpointRow | undefined, final: CheckpointRow): Promise<Array<CheckpointLine & { ts: string }>> {
  const all = first === undefined ? [] : (await ledger.checkpoints()).filter((c) => c.size >= first.size && c.size <= final.size).sort((a, b) => a.size - b.size || a.id - b.id);
  // One checkpoint per size (a heartbeat re-signs the same tree), the newest of each, `final` last.
  const bySize = new Map<number, CheckpointRow>();
  for (const c of [...all, final]) bySize.set(c.size, c);
  const lines: Array<CheckpointLine & { ts: string }> = [];
  let prev: CheckpointRow | undefined;
  for (const c of [...bySize.values()].sort((a, b) => a.size - b.size)) {
    const line: CheckpointLine = { size: c.size, root: c.root.toString('hex'), note: c.note };
    if (prev !== undefined) line.consistency = (await ledger.consistencyProof(prev.size, c.size)).map((h) => h.toString('hex'));
    lines.push({ ...CheckpointLine.parse(line), ts: c.ts });
    prev = c;
  }
  return lines;
}

function describeScope(s: BundleScope): string {
  const parts = [
    s.since === null ? undefined : `since ${s.since}`,
    s.until === null ? undefined : `until ${s.until}`,
    s.agents === null ? undefined : `agent ${s.agents.join(', ')}`,
    s.sessions === null ? undefined : `session ${s.sessions.join(', ')}`,
  ];
  return parts.filter((p) => p !== undefined).join(', ');
}
