import { WitnessError } from '../core/index.js';
import type { Ledger } from '../store/index.js';
import { AUDIT_STREAM } from './bundle.js';
import { POPULATIONS, PopulationBuilder, ScopeTracker, type ScopedHeader } from './populations.js';
import { normaliseScopeTimes, resolveSpan, type Span, type SpanScope } from './span.js';

/**
 * `witness review`: a person attests they reviewed one population of a scope (SOC 2 CC7.2/CC4.1,
 * HIPAA 164.308(a)(1)(ii)(D) "information system activity review"), recorded as a `review` event
 * bound to the population's digest and the signed checkpoint it was taken at.
 *
 * The population is computed exactly as an evidence bundle's populations/<name>.jsonl is (the
 * scope's span from resolveSpan, ScopeTracker over every event of it in leaf order, then
 * PopulationBuilder), so the recorded digest equals that file's SHA-256 in a bundle exported with
 * the same scope over the same span. If events are later added to the window, a new export's
 * population differs and the review still names the old digest: what was reviewed, not what is there now.
 */
export const DISPOSITIONS = ['ok', 'escalated'] as const;
export type Disposition = (typeof DISPOSITIONS)[number];

export interface ReviewOptions {
  population: string;
  scope: SpanScope;
  disposition: string;
  note: string;
  reviewer: string;
}

export interface ReviewResult {
  /** The review event. */
  id: string;
  leaf: number;
  reviewer: string;
  disposition: Disposition;
  population: { name: string; query: string; count: number; digest: string };
  span: Span;
  checkpoint: { size: number; root: string };
  /** Whether the review event itself is sealed into a checkpoint yet. */
  sealed: boolean;
  warnings: string[];
}

const PAGE = 2000;

/** Checks the options, computes the population at the newest checkpoint covering its span, and records the review. */
export async function recordReview(ledger: Ledger, options: ReviewOptions): Promise<ReviewResult> {
  // since/until in the form ScopeTracker compares (YYYY-MM-DDTHH:MM:SS.mmmZ), or a refusal.
  const scope = normaliseScopeTimes(options.scope);
  const def = POPULATIONS.find((p) => p.name === options.population);
  if (def === undefined) {
    throw new WitnessError('invalid_argument', `--population "${options.population}" is not a population; use one of ${POPULATIONS.map((p) => p.name).join(', ')}.`);
  }
  if (!(DISPOSITIONS as readonly string[]).includes(options.disposition)) {
    throw new WitnessError('invalid_argument', `--disposition "${options.disposition}" is not a disposition; use ok (nothing found) or escalated (handed on for action).`);
  }
  const disposition = options.disposition as Disposition;
  if (options.note.trim() === '') throw new WitnessError('invalid_argument', '--note is empty; say in a sentence what you reviewed and what you found.');
  if (options.reviewer.trim() === '') throw new WitnessError('invalid_argument', '--reviewer is empty; name the person who did the review.');

  const warnings: string[] = [];
  // The population is taken at a signed checkpoint, so seal what is waiting first when we can.
  if (ledger.canSeal) {
    try {
      await ledger.seal();
    } catch (e) {
      warnings.push(`The ledger could not be sealed first: ${e instanceof Error ? e.message.replace(/\.$/, '') : String(e)}.`);
    }
  }
  const span = await resolveSpan(ledger, scope);
  if (span === undefined) {
    throw new WitnessError('not_found', `No events in ${ledger.info.location} match this scope; check the ids with \`witness sessions\` or widen the time window.`);
  }
  const cp = await ledger.latestCheckpoint();
  if (cp === undefined || cp.size < span.to) {
    throw new WitnessError(
      'invalid_checkpoint',
      `The scope runs to leaf ${span.to - 1}, which no signed checkpoint covers yet; run \`witness seal\` with the ledger's signing key, then review again.`,
    );
  }

  const tracker = new ScopeTracker(scope);
  const builder = new PopulationBuilder();
  for await (const page of ledger.scanForVerify(span.from, span.to, PAGE)) {
    for (const row of page) {
      let h: ScopedHeader;
      try {
        h = JSON.parse(row.header) as ScopedHeader;
      } catch {
        throw new WitnessError('store_corrupt', `The stored event at position ${row.pos} is not valid JSON: the ledger was damaged or edited; run \`witness verify\`.`);
      }
      if (tracker.inScope(h)) builder.add(row.pos, { ...h, hash: row.hash });
    }
  }
  const got = builder.results().find((r) => r.def.name === def.name)!;
  const checkpoint = { size: cp.size, root: cp.root.toString('hex') };
  const reviewer = options.reviewer.trim();
  const sessions = scope.sessions;

  const [receipt] = await ledger.append([
    {
      stream: AUDIT_STREAM,
      agent: { id: 'witness-cli' },
      principal: { id: reviewer, kind: 'human' },
      kind: 'review',
      // A review of one session's population names that session, so an export of the session
      // carries it (ScopeTracker's system-stream rule).
      resource: sessions !== null && sessions.length === 1 ? sessions[0]! : `population/${def.name}`,
      action: 'review',
      outcome: 'success',
      data: {
        reviewer,
        population_digest: got.digest,
        population: { name: def.name, query: def.query, count: got.count },
        attestation: options.note,
        disposition,
        span: { from: span.from, to: span.to },
        checkpoint,
        scope: scope,
      },
    },
  ]);
  if (receipt === undefined) throw new WitnessError('store_fault', 'The store accepted the review but returned no receipt for it; run `witness verify` and report it.');
  let sealed = false;
  if (ledger.canSeal) {
    try {
      sealed = (await ledger.seal()) !== null;
    } catch (e) {
      warnings.push(`The review is recorded, but could not be sealed: ${e instanceof Error ? e.message.replace(/\.$/, '') : String(e)}.`);
    }
  }
  return { id: receipt.id, leaf: receipt.pos, reviewer, disposition, population: { name: def.name, query: def.query, count: got.count, digest: got.digest }, span, checkpoint, sealed, warnings };
}
