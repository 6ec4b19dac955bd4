import fs from 'node:fs';
import path from 'node:path';
import {
  chainEvent,
  consistencyProof,
  generateKey,
  genesisHash,
  inclusionProof,
  keyFingerprint,
  leafHash,
  nodeHash,
  parseSignerKey,
  parseVerifierKey,
  prepareEvent,
  rootFromLeafHashes,
  sha256Hex,
  signCheckpoint,
  type NodeSource,
} from '../../src/core/index.js';
import { artifactExtension, type BundleManifestV2, type BundleMode, type BundleScope, type ExportRecord } from '../../src/export/bundle-format.js';
import { EventsDigest, PopulationBuilder, ScopeTracker } from '../../src/export/populations.js';

/**
 * A minimal writer of format-2 evidence bundles for the verifier's tests, built from core's own
 * functions (events chained with prepareEvent/chainEvent, an RFC 6962 tree, Ed25519-signed
 * checkpoints) and the contract of bundle-format.ts and populations.ts — independent of the
 * exporter, so the verifier is tested against the format and not against one writer's habits.
 * The tests also verify bundles written by `witness export` itself.
 */

export interface LedgerEvent {
  stream: string;
  kind: string;
  agent?: string;
  data?: Record<string, unknown>;
  resource?: string;
  action?: string;
  outcome?: string;
  parent?: string;
  policy?: { decision: string; rule?: string };
  /** An artifact the event references, with its bytes (stored in the bundle when the payload travels). */
  artifact?: { bytes: Buffer; mime: string };
}

export interface Built {
  dir: string;
  vkey: string;
  origin: string;
  manifest: BundleManifestV2;
  /** The ids of every ledger event, by leaf. */
  ids: string[];
  /** Every ledger event as stored, payload and salt included, by leaf (for forging a bundle from the ledger). */
  stored: Array<Record<string, unknown>>;
}

const ORIGIN = 'fixture.example/witness/0190c0de-0000-7000-8000-000000000001';
const KEY = generateKey('witness-fixture-v2');

export function buildV2Bundle(
  dir: string,
  events: LedgerEvent[],
  opts: { scope?: Partial<BundleScope>; mode?: BundleMode; start?: Date; earlyCheckpoint?: number; bound?: { 'README.txt'?: string; 'verify.mjs'?: string } } = {},
): Built {
  const scope: BundleScope = { since: null, until: null, agents: null, sessions: null, regimes: [], ...opts.scope };
  const mode = opts.mode ?? 'full';
  const start = (opts.start ?? new Date('2026-11-23T10:00:00.000Z')).getTime();
  const signer = parseSignerKey(KEY.signerKey);

  type Row = { line: Record<string, unknown>; hash: Buffer; artifact?: { sha: string; bytes: Buffer; mime: string } };
  const rows: Row[] = [];
  const heads = new Map<string, { seq: number; prev: Buffer }>();
  const append = (e: LedgerEvent): Row => {
    const leaf = rows.length;
    const head = heads.get(e.stream) ?? { seq: 0, prev: genesisHash(ORIGIN, e.stream) };
    const data = e.kind === 'session.end' ? { reason: 'completed', ...e.data, event_count: head.seq, last_hash: head.prev.toString('hex') } : (e.data ?? {});
    const artifact = e.artifact === undefined ? undefined : { sha: sha256Hex(e.artifact.bytes), bytes: e.artifact.bytes, mime: e.artifact.mime };
    const input: Record<string, unknown> = {
      agent: { id: e.agent ?? 'refund-bot' },
      kind: e.kind,
      data,
      ...(e.resource === undefined ? {} : { resource: e.resource }),
      ...(e.action === undefined ? {} : { action: e.action }),
      ...(e.outcome === undefined ? {} : { outcome: e.outcome }),
      ...(e.parent === undefined ? {} : { parent: e.parent }),
      ...(e.policy === undefined ? {} : { policy: e.policy }),
      ...(artifact === undefined ? {} : { artifacts: [{ sha256: artifact.sha, mime: artifact.mime, bytes: artifact.bytes.length, role: 'after' }] }),
    };
    const ev = prepareEvent(e.stream, input, { now: () => new Date(start + leaf * 1000) });
    const { canonicalHeader, hash } = chainEvent(ev, head.seq, head.prev);
    heads.set(e.stream, { seq: head.seq + 1, prev: hash });
    const line = { ...(JSON.parse(canonicalHeader) as Record<string, unknown>), data: ev.data, salt: ev.salt.toString('hex'), hash: hash.toString('hex'), leaf };
    const row: Row = { line, hash, ...(artifact === undefined ? {} : { artifact }) };
    rows.push(row);
    return row;
  };
  for (const e of events) append(e);

  // The span: the smallest leaf range holding every in-scope event.
  const probe = new ScopeTracker(scope);
  const inScopeLeaves = rows.map((r, i) => (probe.inScope(r.line as never) ? i : -1)).filter((i) => i >= 0);
  if (inScopeLeaves.length === 0) throw new Error('fixture: nothing in scope');
  const span = { from: inScopeLeaves[0]!, to: inScopeLeaves[inScopeLeaves.length - 1]! + 1 };

  // Read the span once, as the exporter does.
  const tracker = new ScopeTracker(scope);
  const digest = new EventsDigest();
  const pops = new PopulationBuilder();
  const lines: string[] = [];
  const artifacts = new Map<string, { bytes: Buffer; mime: string }>();
  let inScope = 0;
  for (let leaf = span.from; leaf < span.to; leaf++) {
    const r = rows[leaf]!;
    digest.add(r.hash.toString('hex'));
    const scoped = tracker.inScope(r.line as never);
    if (scoped) {
      inScope++;
      pops.add(leaf, r.line as never);
    }
    const carries = scoped && mode === 'full';
    lines.push(JSON.stringify(carries ? r.line : { ...r.line, data: null, salt: null }));
    if (carries && r.artifact !== undefined) artifacts.set(r.artifact.sha, { bytes: r.artifact.bytes, mime: r.artifact.mime });
  }
  // The files the record binds (bundle-format.ts BOUND_FILES) are known before it is appended.
  const systemText = `${JSON.stringify({ agents: {}, models: { requested: [], answering: [] } })}\n`;
  const results = pops.results();
  const indexText = `${JSON.stringify({
    span,
    populations: results.map((p) => ({ name: p.def.name, title: p.def.title, query: p.def.query, predicate: p.def.predicate, count: p.count, digest: p.digest })),
  })}\n`;
  const early = opts.earlyCheckpoint ?? Math.max(1, span.from);
  const vk = parseVerifierKey(KEY.verifierKey);
  const keysText = `${JSON.stringify({ keys: [{ vkey: KEY.verifierKey, fingerprint: keyFingerprint(vk), role: 'ledger-signing', valid_from: new Date(start).toISOString(), valid_until: null, source: 'fixture' }] }, null, 2)}\n`;
  const record: ExportRecord = {
    actor: 'auditor@example.com',
    operation: 'export',
    format: 'witness-evidence/2',
    scope,
    mode,
    span,
    events_digest: digest.hex(),
    count: span.to - span.from,
    in_scope: inScope,
    files: {
      'system.json': sha256Hex(systemText),
      'populations/index.json': sha256Hex(indexText),
      'keys.json': sha256Hex(keysText),
      ...Object.fromEntries(Object.entries(opts.bound ?? {}).map(([name, text]) => [name, sha256Hex(text)])),
    },
    checkpoints_from: early,
  };
  const exportRow = append({ stream: 'witness.audit-access', kind: 'audit.access', agent: 'witness-cli', resource: 'bundle', action: 'export', outcome: 'success', data: record });
  lines.push(JSON.stringify(exportRow.line));
  const exportLeaf = rows.length - 1;

  // The tree, a checkpoint covering the export event and an earlier one.
  const leaves = rows.map((r) => leafHash(r.hash));
  const nodes = new Map<string, Buffer>();
  const node = (level: number, index: number): Buffer => {
    if (level === 0) return leaves[index]!;
    const key = `${level}:${index}`;
    let h = nodes.get(key);
    if (h === undefined) nodes.set(key, (h = nodeHash(node(level - 1, 2 * index), node(level - 1, 2 * index + 1))));
    return h;
  };
  const src: NodeSource = { node };
  const size = leaves.length;
  const root = rootFromLeafHashes(leaves);
  const note = signCheckpoint({ origin: ORIGIN, size, rootHash: root }, [signer]);
  const earlyRoot = rootFromLeafHashes(leaves.slice(0, early));
  const earlyNote = signCheckpoint({ origin: ORIGIN, size: early, rootHash: earlyRoot }, [signer]);

  fs.mkdirSync(dir, { recursive: true });
  const files: Record<string, string> = {};
  const write = (name: string, content: string | Buffer) => {
    const p = path.join(dir, ...name.split('/'));
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, content);
    files[name] = sha256Hex(typeof content === 'string' ? Buffer.from(content) : content);
  };
  write('events.jsonl', `${lines.join('\n')}\n`);
  const proofLeaves = [...Array.from({ length: span.to - span.from }, (_, i) => span.from + i), exportLeaf];
  write('proofs.jsonl', proofLeaves.map((l) => `${JSON.stringify({ leaf: l, size, proof: inclusionProof(l, size, src).map((h) => h.toString('hex')) })}\n`).join(''));
  write('checkpoint.txt', note);
  write(
    'checkpoints.jsonl',
    `${JSON.stringify({ size: early, root: earlyRoot.toString('hex'), note: earlyNote })}\n${JSON.stringify({
      size,
      root: root.toString('hex'),
      note,
      consistency: consistencyProof(early, size, src).map((h) => h.toString('hex')),
    })}\n`,
  );
  write('keys.json', keysText);
  write('system.json', systemText);
  for (const [name, text] of Object.entries(opts.bound ?? {})) write(name, text);
  for (const p of results) write(`populations/${p.def.name}.jsonl`, p.text);
  write('populations/index.json', indexText);
  for (const [sha, a] of artifacts) write(`artifacts/${sha}.${artifactExtension(a.mime)}`, a.bytes);
  const manifest: BundleManifestV2 = {
    format: 'witness-evidence',
    version: 2,
    created_at: new Date(start + size * 1000).toISOString(),
    ledger: { id: '0190c0de-0000-7000-8000-000000000001', origin: ORIGIN },
    scope,
    mode,
    span,
    export_event: { leaf: exportLeaf, id: String(exportRow.line['id']) },
    checkpoint: { size, root: root.toString('hex') },
    events: lines.length,
    in_scope: inScope,
    files,
  };
  fs.writeFileSync(path.join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return { dir, vkey: KEY.verifierKey, origin: ORIGIN, manifest, ids: rows.map((r) => String(r.line['id'])), stored: rows.map((r) => r.line) };
}

/** Re-lists every file's digest in manifest.json, as a forger who edits files would. */
export function refreshManifest(dir: string, edit?: (m: BundleManifestV2) => void): void {
  const file = path.join(dir, 'manifest.json');
  const m = JSON.parse(fs.readFileSync(file, 'utf8')) as BundleManifestV2;
  const files: Record<string, string> = {};
  for (const d of fs.readdirSync(dir, { withFileTypes: true })) {
    if (d.name === 'manifest.json') continue;
    if (d.isDirectory()) {
      for (const f of fs.readdirSync(path.join(dir, d.name))) files[`${d.name}/${f}`] = sha256Hex(fs.readFileSync(path.join(dir, d.name, f)));
    } else {
      files[d.name] = sha256Hex(fs.readFileSync(path.join(dir, d.name)));
    }
  }
  m.files = files;
  edit?.(m);
  fs.writeFileSync(file, `${JSON.stringify(m, null, 2)}\n`);
}

/** events.jsonl as parsed lines, and a writer back. */
export function readEvents(dir: string): Array<Record<string, unknown>> {
  return fs
    .readFileSync(path.join(dir, 'events.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

export function writeEvents(dir: string, events: Array<Record<string, unknown>>): void {
  fs.writeFileSync(path.join(dir, 'events.jsonl'), events.map((e) => `${JSON.stringify(e)}\n`).join(''));
}

/**
 * Two sessions of a refund agent interleaved with another agent's session and the system streams:
 * approvals, a denial, an error, a screenshot. Exporting session `s-refund` gives a span holding
 * out-of-scope events of `s-other` between in-scope ones.
 */
export function sampleLedger(): LedgerEvent[] {
  const png = Buffer.from('89504e470d0a1a0a0000000d49484452fixture-screenshot', 'hex');
  return [
    { stream: 's-early', kind: 'session.start', agent: 'other-bot', data: {} },
    { stream: 's-early', kind: 'session.end', agent: 'other-bot' },
    { stream: 's-refund', kind: 'session.start', data: {} },
    { stream: 's-other', kind: 'session.start', agent: 'other-bot', data: {} },
    { stream: 's-refund', kind: 'tool.call', resource: 'billing', action: 'refund', data: { tool: 'refund', arguments: { order: 'A-1042', amount: 650 } } },
    { stream: 's-other', kind: 'note', agent: 'other-bot', data: { text: 'other customer data: B-7' } },
    {
      stream: 'witness.approvals',
      kind: 'approval.request',
      agent: 'witness-gateway',
      resource: 's-refund',
      outcome: 'pending',
      data: { request_id: 'r-1', tool: 'refund', arguments_digest: 'ab'.repeat(32) },
    },
    {
      stream: 's-refund',
      kind: 'policy.decision',
      resource: 'billing',
      action: 'refund',
      outcome: 'denied',
      policy: { decision: 'deny', rule: 'refunds-over-500' },
      data: { decision: 'deny', rule: 'refunds-over-500' },
    },
    { stream: 's-refund', kind: 'capture', resource: 'billing', data: { role: 'after' }, artifact: { bytes: png, mime: 'image/png' } },
    { stream: 's-other', kind: 'error', agent: 'other-bot', outcome: 'error', data: { message: 'boom' } },
    { stream: 's-refund', kind: 'error', outcome: 'error', data: { message: 'refund refused' } },
    { stream: 's-refund', kind: 'session.end' },
    { stream: 's-other', kind: 'session.end', agent: 'other-bot' },
  ];
}
