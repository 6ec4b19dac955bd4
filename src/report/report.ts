import { WitnessError, canonicalize, keyFingerprint, leafHash, openCheckpoint, parseVerifierKey, payloadDigest, verifyInclusion, type StoredEvent } from '../core/index.js';
import { ScopeTracker, hashedHeaderOfRow, type BundleMode, type BundleScope, type ReportContext, type Span } from '../export/index.js';
import { views } from '../server/index.js';
import type { Ledger } from '../store/index.js';
import { asExported, collectFacts, type Ev, type ReportFacts } from './collect.js';
import type { Regime } from './controls.js';
import { renderReportHtml, reviewedPopulation, type IntegrityFacts, type LaterReview, type ReportModel, type SampleView } from './render.js';

export interface ReportOptions {
  scope: BundleScope;
  /** The contiguous leaf range the scope's events lie in (src/export resolveSpan). */
  span: Span;
  /** The signed checkpoint the report (and the bundle's proofs) rest on; it must cover the span. */
  checkpoint: { size: number; root: string };
  mode: BundleMode;
  /** Default: the scope's regimes. */
  regimes?: Regime[];
  /** The export's own audit.access event, when the report is part of a bundle. */
  exportEvent?: { leaf: number; id: string };
  /**
   * Inside a bundle: the relative path of an artifact's file (`artifacts/<sha256>.<ext>`), or
   * undefined when the bundle does not hold it. Absent: screenshots are embedded as data: URIs,
   * so the HTML (and the PDF printed from it) stands alone.
   */
  artifactFile?: (sha256: string) => string | undefined;
  now?: Date;
}

/** Embedded screenshots larger than this are left out of a standalone report (named, not shown). */
const MAX_EMBEDDED_BYTES = 8 * 1024 * 1024;

/**
 * The auditor report of one scope as a single HTML document (inline CSS, no script). Reads the
 * span once (collect.ts) and, for the sampled events, their sessions and proofs. Throws
 * `invalid_argument` when the checkpoint does not cover the span or is not one the ledger stored.
 */
export async function renderReport(ledger: Ledger, o: ReportOptions): Promise<string> {
  if (!(o.span.from >= 0 && o.span.to > o.span.from)) {
    throw new WitnessError('invalid_argument', `The report's span ${o.span.from}..${o.span.to} is empty; resolve it with resolveSpan from a scope that holds events.`);
  }
  if (o.checkpoint.size < o.span.to) {
    throw new WitnessError('invalid_argument', `Checkpoint size ${o.checkpoint.size} does not cover the span up to leaf ${o.span.to - 1}; seal the ledger (\`witness seal\`) and render again.`);
  }
  const integrity = await integrityFacts(ledger, o.checkpoint);
  const facts = await collectFacts(ledger, { scope: o.scope, span: o.span, mode: o.mode, seed: o.checkpoint.root });
  const shots = new Map<string, string>();
  const samples = await sampleViews(ledger, facts, o, shots);
  const laterReviews = await reviewsAfter(ledger, o, facts);
  const model: ReportModel = {
    generatedAt: (o.now ?? new Date()).toISOString(),
    scope: o.scope,
    regimes: o.regimes ?? o.scope.regimes,
    span: o.span,
    mode: o.mode,
    ...(o.exportEvent === undefined ? {} : { exportEvent: o.exportEvent }),
    inBundle: o.artifactFile !== undefined,
    ...(o.artifactFile === undefined ? {} : { videoFile: o.artifactFile }),
    integrity,
    facts,
    samples,
    laterReviews,
  };
  if (o.mode === 'full' && !facts.oversightOverflow && facts.oversightEvents.length > 0 && facts.first !== undefined && facts.last !== undefined) {
    const from = Date.parse(facts.first);
    const to = Math.max(Date.parse(facts.last) + 1, from + 1);
    model.buckets = views.overviewBuckets(facts.oversightEvents, { from: new Date(from).toISOString(), to: new Date(to).toISOString(), buckets: 24 });
  }
  // The viewer's Step links a screenshot to the server's artifact route; here it is the bundle's
  // file or an embedded copy. Only the attribute the view writes is rewritten: recorded text is
  // escaped (its quotes become &quot;), so `src="/v1/artifacts/` cannot come from it.
  return renderReportHtml(model)
    .replace(/ src="\/v1\/artifacts\/([0-9a-f]{64})"/g, (all, sha: string) => {
      const url = shots.get(sha);
      return url === undefined ? all : ` src="${attribute(url)}"`;
    })
    .replace(/ loading="lazy"/g, '');
}

const REVIEW_PAGE = 1000;

/**
 * Reviews recorded after the span (a review is dated when it is recorded, usually after the period
 * it reviewed, so an export of that period leaves it out) that name one of this report's populations
 * and its digest. Every review is looked at, a page of the query index at a time, however many
 * there are (reviews are rare, and the newest are the ones a report of a recent period needs); the
 * index only finds candidates: each is then read from its raw row through its hashed header
 * (hashedHeaderOfRow, as the export reads the span: a header rewritten with its stored hash kept is
 * refused as store_corrupt), and its payload must match the digest that header commits to.
 *
 * Its inclusion proof is checked against the report's checkpoint when that covers it, else against
 * the newest checkpoint the ledger holds, whose signature must verify with the ledger's keys; with
 * neither, the review is `not covered` (unsealed) and render.tsx lists it without counting it.
 * Whether it counts (same population name, scope and digest) is decided in render.tsx from the
 * payload, which a withheld report does not carry: there it is shown from its header alone.
 */
async function reviewsAfter(ledger: Ledger, o: ReportOptions, facts: ReportFacts): Promise<LaterReview[]> {
  const digests = new Map(facts.populations.map((p) => [p.def.name, p.digest]));
  const newest = await newestSigned(ledger, o.checkpoint.size);
  const out: LaterReview[] = [];
  let cursor: string | undefined;
  do {
    const page = await ledger.query({ kind: 'review', limit: REVIEW_PAGE, ...(cursor === undefined ? {} : { cursor }) });
    for (const candidate of page.events) {
      if (candidate.pos < o.span.to) continue;
      const e = await verifiedEvent(ledger, candidate.pos);
      if (e === undefined || e.kind !== 'review') continue;
      const pop = reviewedPopulation(e);
      const digest = e.data?.['population_digest'];
      if (pop === undefined || typeof digest !== 'string' || digests.get(pop) !== digest) continue;
      // The population and digest are in the payload: it must be the one the header committed to.
      if (e.salt === null || e.data === null || payloadDigest(Buffer.from(e.salt, 'hex'), canonicalize(e.data)).toString('hex') !== e.payload_digest) continue;
      const against = e.pos < o.checkpoint.size ? { size: o.checkpoint.size, root: Buffer.from(o.checkpoint.root, 'hex') } : newest !== undefined && e.pos < newest.size ? newest : undefined;
      let proof: LaterReview['proof'] = 'not covered';
      if (against !== undefined) {
        const path = await ledger.inclusionProof(e.pos, against.size);
        proof = verifyInclusion(leafHash(Buffer.from(e.hash, 'hex')), e.pos, against.size, path, against.root).ok ? 'holds' : 'fails';
      }
      out.push({ ev: asExported(e, o.mode), leaf: e.pos, proof, checkpointSize: against?.size ?? newest?.size ?? o.checkpoint.size });
    }
    cursor = page.next;
  } while (cursor !== undefined);
  return out.sort((a, b) => a.leaf - b.leaf);
}

/** The event at `pos` read from its raw row and checked against its stored hash (hashedHeaderOfRow), with its payload. */
async function verifiedEvent(ledger: Ledger, pos: number): Promise<Ev | undefined> {
  for await (const page of ledger.scanForVerify(pos, pos + 1, 1)) {
    const row = page[0];
    if (row === undefined) return undefined;
    const header = hashedHeaderOfRow<StoredEvent>(row);
    let data: Record<string, unknown> | null;
    try {
      data = row.data === null ? null : (JSON.parse(row.data) as Record<string, unknown>);
    } catch {
      throw new WitnessError('store_corrupt', `The stored payload at position ${row.pos} is not valid JSON: the ledger was damaged or edited; run \`witness verify\`.`);
    }
    return { ...header, data, salt: row.salt, hash: row.hash, pos: row.pos };
  }
  return undefined;
}

/** The ledger's newest checkpoint when it is larger than `than` and its note verifies with one of the ledger's keys. */
async function newestSigned(ledger: Ledger, than: number): Promise<{ size: number; root: Buffer } | undefined> {
  const cp = await ledger.latestCheckpoint();
  if (cp === undefined || cp.size <= than) return undefined;
  try {
    const opened = openCheckpoint(
      cp.note,
      (await ledger.publicKeys()).map((k) => parseVerifierKey(k.vkey)),
      ledger.info.origin,
    );
    const c = opened.checkpoint;
    return opened.verified.length > 0 && c.size === cp.size && Buffer.from(c.rootHash).equals(cp.root) ? { size: cp.size, root: cp.root } : undefined;
  } catch {
    return undefined;
  }
}

/** A value escaped for a double-quoted attribute (the bundle's file name or a data: URI, escaped all the same). */
function attribute(v: string): string {
  return v.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

async function integrityFacts(ledger: Ledger, cp: { size: number; root: string }): Promise<IntegrityFacts> {
  const out: IntegrityFacts = { origin: ledger.info.origin, ledgerId: ledger.info.id, size: cp.size, root: cp.root, signedBy: [], signatureChecked: false };
  const stored = (await ledger.checkpoints()).find((c) => c.size === cp.size);
  if (stored === undefined || stored.root.toString('hex') !== cp.root) {
    throw new WitnessError('invalid_argument', `The ledger has no stored checkpoint of size ${cp.size} with root ${cp.root.slice(0, 12)}…; render the report against a checkpoint the ledger holds.`);
  }
  out.signedAt = stored.ts;
  const key = (await ledger.publicKeys())[0];
  if (key === undefined) {
    out.signatureProblem = 'the ledger records no public key';
    return out;
  }
  try {
    const opened = openCheckpoint(stored.note, [parseVerifierKey(key.vkey)], ledger.info.origin);
    out.signedBy = opened.verified.map(keyFingerprint);
    out.signatureChecked = out.signedBy.length > 0;
    if (!out.signatureChecked) out.signatureProblem = "the ledger's own key did not sign it";
  } catch (e) {
    out.signatureProblem = e instanceof Error ? e.message.replace(/\.$/, '') : String(e);
  }
  return out;
}

function sessionScope(scope: BundleScope): ScopeTracker {
  return new ScopeTracker(scope);
}

async function sampleViews(ledger: Ledger, facts: ReportFacts, o: ReportOptions, shots: Map<string, string>): Promise<SampleView[]> {
  const root = Buffer.from(o.checkpoint.root, 'hex');
  const streams = new Map<string, Ev[]>();
  const shownIn = new Map<string, number>();
  const out: SampleView[] = [];
  for (const [i, s] of facts.sample.entries()) {
    const e = asExported(s.event, o.mode);
    const proof = await ledger.inclusionProof(e.pos, o.checkpoint.size);
    const proofOk = verifyInclusion(leafHash(Buffer.from(e.hash, 'hex')), e.pos, o.checkpoint.size, proof, root).ok;
    const view: SampleView = { reasons: s.reasons, event: e, proof: proof.map((h) => h.toString('hex')), proofOk };
    const call = await callOf(ledger, s.event);
    if (call !== undefined) {
      const seen = shownIn.get(call.id);
      if (seen !== undefined) view.stepShownIn = seen;
      else {
        const events = await sessionEvents(ledger, call.stream, o, streams);
        const index = events.filter((x) => x.kind === 'tool.call').findIndex((x) => x.id === call.id);
        if (index >= 0) {
          const model = views.buildSessionModel(events, { chrome: {}, steps: { from: index + 1, limit: 1 } });
          const step = model.steps[0];
          if (step !== undefined) {
            if (o.mode === 'withheld') withholdStep(step, call, events, view);
            else view.shotNote = await placeShots(ledger, step, events, o, shots);
            view.step = step;
            shownIn.set(call.id, i + 1);
          }
        }
      }
    }
    out.push(view);
  }
  return out;
}

/**
 * A step as a withheld export can show it: the decisions' payloads are not there, so the viewer's
 * judgement of them would read "no decision that counts"; say they are withheld instead, and that
 * the call's screenshots are (their capture events are headers only).
 */
function withholdStep(step: views.TimelineStep, call: Ev, events: readonly Ev[], view: SampleView): void {
  if (step.approval !== undefined) step.approval = { summary: 'not shown: the approval payloads are withheld in this export', decisions: [] };
  const shot = events.some((e) => e.kind === 'capture' && e.parent === call.id && (e.artifacts ?? []).some((a) => a.mime.startsWith('image/')));
  if (shot) view.shotNote = 'The screenshots of this call are withheld with the payloads in this export.';
}

/** The tool call an event belongs to: itself, its parent, or its parent's parent (a decision on a held call's request). */
async function callOf(ledger: Ledger, e: Ev): Promise<Ev | undefined> {
  let at: Ev | undefined = e;
  for (let hop = 0; at !== undefined && hop < 3; hop++) {
    if (at.kind === 'tool.call') return at;
    at = at.parent === undefined ? undefined : await ledger.getEvent(at.parent);
  }
  return undefined;
}

/** A session's in-scope events as this export shows them (no payloads when withheld). */
async function sessionEvents(ledger: Ledger, stream: string, o: ReportOptions, cache: Map<string, Ev[]>): Promise<Ev[]> {
  const hit = cache.get(stream);
  if (hit !== undefined) return hit;
  const tracker = sessionScope(o.scope);
  const events = (await ledger.readStream(stream)).filter((e) => e.pos < o.span.to && tracker.inScope(e)).map((e) => asExported(e, o.mode));
  cache.set(stream, events);
  return events;
}

/**
 * Makes the step's screenshots resolvable (the bundle's file, or a data: URI), or removes the ones
 * that cannot be shown; returns the sentence saying why, when any was removed.
 */
async function placeShots(ledger: Ledger, step: views.TimelineStep, events: readonly Ev[], o: ReportOptions, shots: Map<string, string>): Promise<string | undefined> {
  const missing: string[] = [];
  for (const role of ['before', 'after'] as const) {
    const shot = step[role];
    if (shot === undefined) continue;
    const url = await artifactUrl(ledger, shot.sha256, events, o);
    if (url === undefined) {
      delete step[role];
      missing.push(role);
    } else shots.set(shot.sha256, url);
  }
  if (missing.length === 0) return undefined;
  const which = `The ${missing.join(' and ')} screenshot${missing.length > 1 ? 's' : ''}`;
  if (o.mode === 'withheld') return `${which} of this call ${missing.length > 1 ? 'are' : 'is'} withheld with the payloads in this export.`;
  return `${which} of this call ${missing.length > 1 ? 'are' : 'is'} not in the artifact store${o.artifactFile === undefined ? ' (or too large to embed)' : ' or the bundle'}; verification reports a missing artifact.`;
}

async function artifactUrl(ledger: Ledger, sha: string, events: readonly Ev[], o: ReportOptions): Promise<string | undefined> {
  if (o.mode === 'withheld') return undefined;
  if (o.artifactFile !== undefined) return o.artifactFile(sha);
  const ref = events.flatMap((e) => e.artifacts ?? []).find((a) => a.sha256 === sha);
  if (ref === undefined || ref.bytes > MAX_EMBEDDED_BYTES || !/^image\/(png|jpeg|webp|gif)$/.test(ref.mime)) return undefined;
  const bytes = await ledger.readArtifact(sha);
  return bytes === undefined ? undefined : `data:${ref.mime};base64,${bytes.toString('base64')}`;
}

/**
 * The export hook (ExportOptions.renderReport): the report.html of a bundle, for exactly the
 * bundle's scope, span, mode and checkpoint, its screenshots linked as the bundle's own files.
 */
export function bundleReport(ctx: ReportContext): Promise<string> {
  const m = ctx.manifest;
  return renderReport(ctx.ledger, {
    scope: m.scope,
    span: m.span,
    checkpoint: m.checkpoint,
    mode: m.mode,
    exportEvent: m.export_event,
    artifactFile: ctx.artifactFile,
    now: new Date(m.created_at),
  });
}
