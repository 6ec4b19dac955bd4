import type { FC } from 'hono/jsx';
import { normaliseInstant, type BundleMode, type BundleScope, type Span } from '../export/index.js';
import { views } from '../server/index.js';
import { type Ev, type ReportFacts, OVERSIGHT_CAP, SAMPLE_FIRST, SAMPLE_RANDOM, SKEW_LIMIT_MS } from './collect.js';
import { REGIME_TITLES, controlsFor, type ControlRow, type Regime } from './controls.js';
import { REPORT_CSS } from './style.js';

/**
 * The report as one HTML document: inline CSS, no script, no external reference but the bundle's
 * own artifact files (or data: URIs). Everything recorded is rendered as text by hono/jsx, which
 * escapes it; a tool call of the appendix is drawn by the viewer's own Step component.
 */

const { clip, plural, shortHash, showDuration, showTime, showValue } = views;

export type Status = 'evidence present' | 'gap' | 'not assessable from logs';

export interface IntegrityFacts {
  origin: string;
  ledgerId: string;
  size: number;
  root: string;
  /** When the checkpoint was signed, as stored. */
  signedAt?: string;
  /** Fingerprints of the ledger keys whose signature on it verified. */
  signedBy: string[];
  /** Whether the signature was checked against the ledger's own key here. */
  signatureChecked: boolean;
  /** Why not, when it was not. */
  signatureProblem?: string;
}

export interface SampleView {
  reasons: string[];
  event: Ev;
  proof: string[];
  proofOk: boolean;
  /** The tool call it belongs to, drawn as the viewer draws a step. */
  step?: views.TimelineStep;
  /** The sample number whose step already shows this call. */
  stepShownIn?: number;
  /** Why no screenshot is shown, when the call had one. */
  shotNote?: string;
}

export interface ReportModel {
  generatedAt: string;
  scope: BundleScope;
  regimes: Regime[];
  span: Span;
  mode: BundleMode;
  exportEvent?: { leaf: number; id: string };
  inBundle: boolean;
  integrity: IntegrityFacts;
  facts: ReportFacts;
  samples: SampleView[];
  /** Inside a bundle: the file a video is in (undefined when the bundle lacks it). */
  videoFile?: (sha256: string) => string | undefined;
  /** The viewer's per-interval buckets for the oversight chart (full mode). */
  buckets?: views.OverviewBucket[];
  /** Reviews recorded after the span and bound to one of this report's populations (report.ts reviewsAfter). */
  laterReviews?: LaterReview[];
}

/** A review outside the span (recorded after it) bound to a population of this report, and whether its inclusion proof holds. */
export interface LaterReview {
  ev: Ev;
  leaf: number;
  /** Against the report's checkpoint: `not covered` when the review is newer than it. */
  proof: 'holds' | 'fails' | 'not covered';
  checkpointSize: number;
}

const STATUS_CLASS: Record<Status, string> = { 'evidence present': 'present', gap: 'gap', 'not assessable from logs': 'na' };

export function assess(row: ControlRow, m: Pick<ReportModel, 'facts' | 'integrity'>): { status: Status; why: string } {
  const a = row.assess;
  if ('none' in a) return { status: 'not assessable from logs', why: `Not shown by logs: ${a.none}` };
  if ('log' in a) {
    if (m.facts.inScope === 0) return { status: 'gap', why: 'No event is in scope.' };
    if (!m.integrity.signatureChecked) return { status: 'gap', why: `The checkpoint's signature could not be checked: ${m.integrity.signatureProblem ?? 'no key'}.` };
    return { status: 'evidence present', why: `${plural(m.facts.inScope, 'event')} in scope, in a checkpoint signed by ${m.integrity.signedBy.join(', ')}.` };
  }
  if ('retention' in a) {
    const n = m.facts.retention.total;
    return n > 0
      ? { status: 'evidence present', why: `${plural(n, 'retention or hold record')} in scope; whether the period kept meets the rule is for the auditor.` }
      : { status: 'not assessable from logs', why: 'No retention purge, hold or retention change is recorded in scope; the retention period is configured outside the log.' };
  }
  const counts = a.populations.map((name) => ({ name, count: m.facts.populations.find((p) => p.def.name === name)?.count ?? 0 }));
  const total = counts.reduce((s, c) => s + c.count, 0);
  const list = counts.map((c) => `${c.name}: ${c.count}`).join(', ');
  return total > 0
    ? { status: 'evidence present', why: `Population ${list}.` }
    : { status: 'gap', why: `Population ${list}: nothing of this kind was recorded in scope (either none occurred or it was not recorded; the log alone cannot tell which).` };
}

const Facts: FC<{ rows: Array<[string, string | undefined]> }> = ({ rows }) => (
  <dl class="facts">
    {rows
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => (
        <>
          <dt>{k}</dt>
          <dd>{v}</dd>
        </>
      ))}
  </dl>
);

const More: FC<{ shown: number; total: number; what: string }> = ({ shown, total, what }) =>
  total > shown ? <p class="note">{`The first ${shown} of ${plural(total, what)} are listed; the bundle's population files hold all of them.`}</p> : null;

function scopeText(s: BundleScope): string {
  const parts = [
    s.since === null ? undefined : `from ${showTime(s.since)}`,
    s.until === null ? undefined : `until ${showTime(s.until)} (exclusive)`,
    s.agents === null ? undefined : `agents ${s.agents.join(', ')}`,
    s.sessions === null ? undefined : `sessions ${s.sessions.join(', ')}`,
  ].filter((x) => x !== undefined);
  return parts.length === 0 ? 'the whole ledger' : parts.join('; ');
}

const Cover: FC<{ m: ReportModel }> = ({ m }) => (
  <section class="cover" id="cover">
    <p class="sub">Witness evidence report</p>
    <h1>1. Cover and scope</h1>
    <p>
      This report describes the events of one scope of a Witness ledger: what was recorded, what the records show about the controls of the chosen regimes, and a sample of events with the proofs that
      tie them to a signed checkpoint. It is generated from the records; it is not itself the evidence. The evidence is the bundle{m.inBundle ? ' this report is part of' : ''}, which verifies offline
      (<span class="mono">node verify.mjs</span> or <span class="mono">witness verify bundle.zip</span>). Nothing in this report is a claim of compliance: each row of the control matrix says only
      whether the log holds evidence, shows a gap, or cannot speak to the requirement.
    </p>
    <Facts
      rows={[
        ['Ledger', m.integrity.origin],
        ['Scope', scopeText(m.scope)],
        ['Regimes', m.regimes.length === 0 ? 'none chosen' : m.regimes.map((r) => REGIME_TITLES[r]).join('; ')],
        ['Span', `leaves ${m.span.from} to ${m.span.to - 1} (${plural(m.span.to - m.span.from, 'event')}, a contiguous run of the signed tree)`],
        ['In scope', `${plural(m.facts.inScope, 'event')} in ${plural(m.facts.sessions.size, 'session')}`],
        ['First and last event', m.facts.first === undefined ? 'none' : `${showTime(m.facts.first)} – ${showTime(m.facts.last)}`],
        ['Payloads', m.mode === 'full' ? 'included for every in-scope event (full export)' : 'withheld: headers and salted digests only; payload-based details are not shown'],
        ['Export event', m.exportEvent === undefined ? undefined : `leaf ${m.exportEvent.leaf}, id ${m.exportEvent.id} (the audit.access event that binds this bundle's scope, mode and span)`],
        ['Generated', showTime(m.generatedAt)],
      ]}
    />
  </section>
);

const Integrity: FC<{ m: ReportModel }> = ({ m }) => {
  const i = m.integrity;
  return (
    <section class="major" id="integrity">
      <h2>2. Integrity statement</h2>
      <Facts
        rows={[
          ['Checkpoint', `size ${i.size} (covers leaves 0 to ${i.size - 1})`],
          ['Root', i.root],
          ['Signed at', i.signedAt === undefined ? undefined : showTime(i.signedAt)],
          ['Signed by', i.signedBy.length === 0 ? 'no verified signature' : i.signedBy.join(', ')],
          ['Signature', i.signatureChecked ? "verified here with the ledger's own key (its first key row)" : `not verified: ${i.signatureProblem ?? 'no key'}`],
        ]}
      />
      <p>
        Every event is hash-chained to the previous event of its session and is a leaf of an RFC 6962 Merkle tree; the checkpoint above signs that tree's root (C2SP signed note, Ed25519). Each event
        of the span has an inclusion proof to this checkpoint, so an event altered, removed or inserted after signing fails verification, and the span is contiguous, so no event of it can be left out
        unnoticed. The population files are recomputed from the events by every verifier.
      </p>
      <p>
        <b>This report is a reading aid not covered by the signature.</b> It shows the export's own event and the final checkpoint, so it is written after them and only the unsigned manifest lists its
        digest; every verifier says so, and checks its facts from the signed events, not from this page.
      </p>
      <p>
        <b>What this rests on.</b> The signature is only as good as the key it is checked with. The key fingerprint above must be compared with one the auditor recorded independently (when the ledger
        was created, or from a second party); <span class="mono">witness verify bundle.zip --trusted-key &lt;key&gt;</span> pins it. A key carried in the bundle or stored beside the ledger proves only
        that whoever holds that key signed it.
      </p>
    </section>
  );
};

const Logged: FC<{ m: ReportModel }> = ({ m }) => {
  const kinds = [...m.facts.kinds.entries()].sort((a, b) => b[1] - a[1]);
  return (
    <section class="major" id="logged">
      <h2>3. What is logged and what is not</h2>
      <p>
        Logged: every LLM call, tool call and result, policy decision, approval request and decision, screenshot, error, configuration change, review, access to audit data, alert, retention and hold
        event that an agent's SDK, the MCP gateway or the server recorded, with who (agent identity, version, credential, principal), what resource and action, when (the recorder's clock, and the
        receiving server's when it differs), the outcome, and the policy context.
      </p>
      <p>
        Not logged: actions an agent took without going through the SDK, a wrapper or the gateway; what happened inside a tool or a model beyond its inputs and outputs; screens that were not captured;
        payloads redacted at write time (secrets) or purged under a retention policy{m.mode === 'withheld' ? '; and in this bundle, every payload (withheld by the export mode)' : ''}. Events outside
        the scope appear in the bundle as headers only, to prove the span complete.
      </p>
      <table class="list">
        <thead>
          <tr>
            <th>Kind</th>
            <th class="num">In scope</th>
          </tr>
        </thead>
        <tbody>
          {kinds.map(([k, n]) => (
            <tr>
              <td class="mono">{k}</td>
              <td class="num">{n.toLocaleString('en-US')}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <h3>Agents</h3>
      <ul>
        {[...m.facts.agents.entries()].map(([id, versions]) => (
          <li>
            <span class="mono">{id}</span>
            {versions.size === 0 ? '' : ` (versions ${[...versions].join(', ')})`}
          </li>
        ))}
      </ul>
      {m.facts.purged === 0 ? null : <p>{`${plural(m.facts.purged, 'event')} in scope have had their payload purged under a retention policy; their headers and digests still verify.`}</p>}
      <h3>Populations</h3>
      <p>
        The populations an auditor samples from, computed over the in-scope events of the span exactly as the bundle's <span class="mono">populations/&lt;name&gt;.jsonl</span> files are (the digest is
        SHA-256 of that file), so the counts here and there are the same.
      </p>
      <table class="list populations">
        <thead>
          <tr>
            <th>Population</th>
            <th class="num">Events</th>
            <th>Digest</th>
            <th>Query</th>
          </tr>
        </thead>
        <tbody>
          {m.facts.populations.map((p) => (
            <tr>
              <td>{p.def.name}</td>
              <td class="num">{p.count}</td>
              <td class="mono" title={p.digest}>
                {shortHash(p.digest)}
              </td>
              <td class="mono">{p.def.query}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <h3>Narrated videos</h3>
      {m.facts.videos.total === 0 ? (
        <p>No narrated video is recorded in scope.</p>
      ) : (
        <ul>
          {m.facts.videos.items.map((v) => (
            <li>
              {`${showTime(v.event.ts)} · session ${v.event.resource ?? v.event.stream} · `}
              <span class="mono">{m.videoFile?.(v.sha256) ?? `sha256 ${v.sha256}`}</span>
              {m.videoFile !== undefined && m.videoFile(v.sha256) === undefined ? ' (not in this bundle)' : ''}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
};

const Matrix: FC<{ m: ReportModel }> = ({ m }) => {
  const rows = controlsFor(m.regimes);
  return (
    <section class="major" id="controls">
      <h2>4. Control mapping</h2>
      <p>
        Each requirement, paraphrased and cited, against the evidence in the bundle. Status is one of: <b>evidence present</b> (the bundle holds records of the kind the requirement asks for),{' '}
        <b>gap</b> (it holds none), <b>not assessable from logs</b> (the requirement concerns something a log cannot show). Whether a control operates effectively is the auditor's judgement.
      </p>
      {rows.length === 0 ? (
        <p>No regime was chosen (--regime eu-ai-act,soc2,hipaa,sec).</p>
      ) : (
        <table class="matrix">
          <thead>
            <tr>
              <th>Requirement</th>
              <th class="req">What it asks (paraphrase)</th>
              <th>Evidence in the bundle</th>
              <th>Status</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => {
              const a = assess(r, m);
              return (
                <tr>
                  <td>
                    <b>{r.id}</b>
                    <br />
                    <span class="note">{r.citation}</span>
                  </td>
                  <td class="req">{r.requirement}</td>
                  <td>{r.evidence}</td>
                  <td>
                    <span class={`status ${STATUS_CLASS[a.status]}`}>{a.status}</span>
                    <br />
                    <span class="note">{a.why}</span>
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </section>
  );
};

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

const Oversight: FC<{ m: ReportModel }> = ({ m }) => {
  const a = m.facts.approvals;
  const waits = [...a.waits].sort((x, y) => x - y);
  const b = m.buckets;
  return (
    <section class="major" id="oversight">
      <h2>5. Human oversight</h2>
      <div class="totals">
        <div>
          <b>{a.requests}</b>calls held for a person
        </div>
        <div>
          <b>{a.approved}</b>approved
        </div>
        <div>
          <b>{a.denied}</b>denied by a person
        </div>
        <div>
          <b>{a.expired}</b>expired undecided
        </div>
        <div>
          <b>{a.undecided}</b>no decision in scope
        </div>
        <div>
          <b>{a.policyDenials}</b>denied by policy
        </div>
        <div>
          <b>{a.overrides}</b>overrides
        </div>
        <div>
          <b>{a.halts}</b>halts
        </div>
      </div>
      <p>
        Time to decide (request to decision, {plural(waits.length, 'decision')}):{' '}
        {waits.length === 0
          ? 'no decided request in scope.'
          : `median ${showDuration(percentile(waits, 50))}, 90th percentile ${showDuration(percentile(waits, 90))}, longest ${showDuration(waits[waits.length - 1]!)}.`}
      </p>
      {b === undefined || b.length === 0 ? (
        m.mode === 'withheld' ? (
          <p class="note">The per-interval chart reads payloads, which this bundle withholds.</p>
        ) : m.facts.oversightOverflow ? (
          <p class="note">{`More than ${OVERSIGHT_CAP.toLocaleString('en-US')} approval and refusal events are in scope: the per-interval chart is left out; the counts above are complete.`}</p>
        ) : null
      ) : (
        <div class="charts">
          <views.BarChart
            title="Approvals and denials per interval"
            labels={b.map((x) => showTime(x.start))}
            series={[
              { name: 'approvals', values: b.map((x) => x.approvals) },
              { name: 'denials', values: b.map((x) => x.denials) },
            ]}
          />
          <views.LineChart
            title="Mean time to decide"
            labels={b.map((x) => showTime(x.start))}
            series={[{ name: 'wait', values: b.map((x) => x.approvalWaitMs ?? Number.NaN) }]}
            format={showDuration}
          />
        </div>
      )}
    </section>
  );
};

/** The population a review names: its recorded name, else the population whose query it recorded. */
export function reviewedPopulation(e: Ev): string | undefined {
  const d = e.data ?? {};
  const pop = d['population'] !== null && typeof d['population'] === 'object' ? (d['population'] as Record<string, unknown>) : {};
  for (const v of [pop['name'], d['population_name'], d['name']]) if (typeof v === 'string') return v;
  return undefined;
}

/**
 * The population a review counts for in this report: the one it names, when the digest it is bound
 * to is this report's digest of it AND the scope it recorded is this report's scope. The digest
 * alone is not enough: an empty population's file is empty in every scope, so its digest is the
 * SHA-256 of nothing everywhere, and "no overrides in session A" must not count for session B.
 */
export function countedPopulation(r: Ev, digests: ReadonlyMap<string, string>, scope: BundleScope): string | undefined {
  const p = reviewedPopulation(r);
  const d = r.data?.['population_digest'];
  return p !== undefined && typeof d === 'string' && digests.get(p) === d && sameScope(r.data?.['scope'], scope) ? p : undefined;
}

/** Whether a review's recorded scope selects what `scope` selects: the same instants and the same agent and session ids (in any order); regimes do not select events. */
function sameScope(recorded: unknown, scope: BundleScope): boolean {
  if (recorded === null || typeof recorded !== 'object') return false;
  const r = recorded as Record<string, unknown>;
  return sameInstant(r['since'], scope.since) && sameInstant(r['until'], scope.until) && sameIds(r['agents'], scope.agents) && sameIds(r['sessions'], scope.sessions);
}

function sameInstant(recorded: unknown, ours: string | null): boolean {
  if (recorded === null || ours === null) return recorded === ours;
  if (typeof recorded !== 'string') return false;
  try {
    return normaliseInstant(recorded, 'since') === normaliseInstant(ours, 'since');
  } catch {
    return false;
  }
}

function sameIds(recorded: unknown, ours: string[] | null): boolean {
  if (recorded === null || ours === null) return recorded === ours;
  if (!Array.isArray(recorded) || !recorded.every((x) => typeof x === 'string')) return false;
  const a = [...new Set(recorded as string[])].sort();
  const b = [...new Set(ours)].sort();
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function laterReviewWhere(l: LaterReview): string {
  const at = `recorded after this period, at leaf ${l.leaf}`;
  if (l.proof === 'not covered') return `${at}, not yet sealed into a signed checkpoint, so not counted (seal the ledger and report again)`;
  if (l.proof === 'fails') return `${at}; its inclusion proof to checkpoint ${l.checkpointSize} FAILS, so not counted`;
  return `${at}; its inclusion proof to checkpoint ${l.checkpointSize} holds; not in this bundle (check it on the ledger with witness verify)`;
}

const Reviews: FC<{ m: ReportModel }> = ({ m }) => {
  const digests = new Map(m.facts.populations.map((p) => [p.def.name, p.digest]));
  const later = m.laterReviews ?? [];
  const done = new Map<string, number>();
  // A later review counts only once a signed checkpoint holds it (in-span reviews always are: the span is sealed).
  for (const r of [...m.facts.reviews.items, ...later.filter((l) => l.proof === 'holds').map((l) => l.ev)]) {
    const p = countedPopulation(r, digests, m.scope);
    if (p !== undefined) done.set(p, (done.get(p) ?? 0) + 1);
  }
  const due: Array<{ pop: string; month: string; events: number; reviews: number }> = [];
  for (const [pop, months] of m.facts.populationMonths) {
    if (pop === 'reviews') continue;
    for (const [month, events] of [...months.entries()].sort()) due.push({ pop, month, events, reviews: done.get(pop) ?? 0 });
  }
  const met = due.filter((d) => d.reviews > 0).length;
  return (
    <section class="major" id="reviews">
      <h2>6. Reviews performed and due</h2>
      <p>
        <b>The rule used here:</b> one review is due per population per calendar month (UTC) in which that population has at least one event in scope; a review counts for a population only when the
        digest it is bound to is this report's digest of that population (the same events of the same span) and the scope it recorded is this report's scope (an empty population has the same digest in
        every scope), and then for every month of it. A review bound to another digest or scope reviewed another population or scope and is listed, not counted. A review recorded after this period is
        looked up on the ledger, read through its hashed header, and counted when it is bound so and a signed checkpoint holds it (an unsealed one is listed, not counted).{' '}
        {`${met} of ${due.length} due reviews were performed; ${plural(m.facts.reviews.total, 'review event')} in scope.`}
      </p>
      {m.mode === 'withheld' && m.facts.reviews.total + later.length > 0 ? (
        <p class="note">Which population a review covers is in its payload, withheld in this export: no review is counted below.</p>
      ) : null}
      {due.length === 0 ? (
        <p>No population has an event in scope, so no review is due.</p>
      ) : (
        <table class="list">
          <thead>
            <tr>
              <th>Population</th>
              <th>Month</th>
              <th class="num">Events</th>
              <th class="num">Reviews</th>
              <th>Status</th>
            </tr>
          </thead>
          <tbody>
            {due.map((d) => (
              <tr>
                <td>{d.pop}</td>
                <td>{d.month}</td>
                <td class="num">{d.events}</td>
                <td class="num">{d.reviews}</td>
                <td>
                  <span class={`status ${d.reviews > 0 ? 'present' : 'gap'}`}>{d.reviews > 0 ? 'reviewed' : 'not reviewed'}</span>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {m.facts.reviews.items.length === 0 && later.length === 0 ? null : (
        <>
          <h3>Reviews recorded</h3>
          <table class="list">
            <thead>
              <tr>
                <th>When</th>
                <th>Reviewer</th>
                <th>Population</th>
                <th>Disposition</th>
                <th>Bound to digest</th>
                <th>Counts here</th>
              </tr>
            </thead>
            <tbody>
              {[...m.facts.reviews.items.map((r) => ({ r, where: undefined as LaterReview | undefined })), ...later.map((l) => ({ r: l.ev, where: l }))].map(({ r, where }) => {
                const digest = typeof r.data?.['population_digest'] === 'string' ? r.data['population_digest'] : undefined;
                const bound = countedPopulation(r, digests, m.scope);
                const after = where === undefined ? '' : `; ${laterReviewWhere(where)}`;
                const status =
                  bound !== undefined && (where === undefined || where.proof === 'holds')
                    ? `counted for ${bound}${after}`
                    : m.mode === 'withheld'
                      ? `not counted (its payload is withheld)${after}`
                      : bound !== undefined && where !== undefined
                        ? laterReviewWhere(where)
                        : `review of another population or scope (digest ${digest === undefined ? 'none' : shortHash(digest)}…, not this report's)${after}`;
                return (
                  <tr>
                    <td>{showTime(r.ts)}</td>
                    <td>{String(r.data?.['reviewer'] ?? r.principal?.id ?? r.agent.id)}</td>
                    <td>{reviewedPopulation(r) ?? (m.mode === 'withheld' ? '(withheld)' : '(not named)')}</td>
                    <td>{typeof r.data?.['disposition'] === 'string' ? r.data['disposition'] : m.mode === 'withheld' ? '(withheld)' : ''}</td>
                    <td class="mono">{digest === undefined ? '' : shortHash(digest)}</td>
                    <td>{status}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
          <More shown={m.facts.reviews.items.length} total={m.facts.reviews.total} what="review" />
        </>
      )}
    </section>
  );
};

const EventTable: FC<{ events: readonly Ev[]; columns: Array<[string, (e: Ev) => string]> }> = ({ events, columns }) => (
  <table class="list">
    <thead>
      <tr>
        <th>When</th>
        <th>Leaf</th>
        {columns.map(([h]) => (
          <th>{h}</th>
        ))}
      </tr>
    </thead>
    <tbody>
      {events.map((e) => (
        <tr>
          <td>{showTime(e.ts)}</td>
          <td class="num">{e.pos}</td>
          {columns.map(([, f]) => (
            <td>{clip(f(e), 600)}</td>
          ))}
        </tr>
      ))}
    </tbody>
  </table>
);

function d(e: Ev, k: string): string {
  const v = e.data?.[k];
  return v === undefined || v === null ? '' : typeof v === 'string' ? v : showValue(v, 600);
}

const Changes: FC<{ m: ReportModel }> = ({ m }) => (
  <section class="major" id="changes">
    <h2>7. Change timeline</h2>
    {m.facts.changes.total === 0 ? (
      <p>No configuration change (config.change) is recorded in scope.</p>
    ) : (
      <>
        <EventTable
          events={m.facts.changes.items}
          columns={[
            ['Target', (e) => d(e, 'target')],
            ['Description', (e) => d(e, 'description')],
            ['Approved by', (e) => d(e, 'approved_by')],
            ['By', (e) => e.principal?.id ?? e.agent.id],
          ]}
        />
        <More shown={m.facts.changes.items.length} total={m.facts.changes.total} what="change" />
      </>
    )}
  </section>
);

const Access: FC<{ m: ReportModel }> = ({ m }) => (
  <section class="major" id="access">
    <h2>8. Access to logs</h2>
    {m.facts.access.total === 0 ? (
      <p>No access to audit data (audit.access) is recorded in scope.</p>
    ) : (
      <>
        <p>{[...m.facts.accessByActor.entries()].map(([who, n]) => `${who}: ${n}`).join('; ')}</p>
        <EventTable
          events={m.facts.access.items}
          columns={[
            ['Who', (e) => e.principal?.id ?? d(e, 'actor')],
            ['Operation', (e) => e.action ?? d(e, 'operation')],
            ['Resource', (e) => e.resource ?? ''],
            ['Outcome', (e) => e.outcome ?? ''],
          ]}
        />
        <More shown={m.facts.access.items.length} total={m.facts.access.total} what="access" />
      </>
    )}
  </section>
);

const Incidents: FC<{ m: ReportModel }> = ({ m }) => {
  const f = m.facts;
  const errors = [...f.errorsBySource.entries()];
  return (
    <section class="major" id="incidents">
      <h2>9. Incidents, alerts and recording gaps</h2>
      <p>
        {`${plural(f.alerts.total, 'alert')}, ${plural(
          errors.reduce((s, [, n]) => s + n, 0),
          'error event',
        )}${errors.length === 0 ? '' : ` (by source: ${errors.map(([s, n]) => `${s} ${n}`).join(', ')})`}, ${plural(f.recordingGaps.total, 'recorded gap')} in recording.`}
      </p>
      {f.alerts.total === 0 ? null : (
        <>
          <h3>Alerts</h3>
          <EventTable
            events={f.alerts.items}
            columns={[
              ['Severity', (e) => d(e, 'severity')],
              ['Message', (e) => d(e, 'message')],
              ['Code', (e) => d(e, 'code')],
            ]}
          />
          <More shown={f.alerts.items.length} total={f.alerts.total} what="alert" />
        </>
      )}
      {f.recordingGaps.total === 0 ? (
        <p>No recording gap (an error with code recording_gap, written when recording works again) is recorded in scope.</p>
      ) : (
        <>
          <h3>Recording gaps</h3>
          <EventTable
            events={f.recordingGaps.items}
            columns={[
              ['Session', (e) => e.stream],
              ['Message', (e) => d(e, 'message')],
            ]}
          />
        </>
      )}
      {m.mode === 'withheld' ? <p class="note">Error sources and codes are payload fields, withheld in this bundle: recording gaps and failed captures cannot be told apart here.</p> : null}
    </section>
  );
};

const Retention: FC<{ m: ReportModel }> = ({ m }) => (
  <section class="major" id="retention">
    <h2>10. Retention and holds</h2>
    {m.facts.retention.total === 0 ? (
      <p>No retention purge or hold recorded in scope (no retention.purge, hold.placed, hold.released or retention config.change event).</p>
    ) : (
      <EventTable
        events={m.facts.retention.items}
        columns={[
          ['Kind', (e) => e.kind],
          ['Policy or hold', (e) => d(e, 'policy') || d(e, 'hold_id') || d(e, 'description')],
          ['Details', (e) => [d(e, 'before') && `before ${d(e, 'before')}`, d(e, 'count') && `${d(e, 'count')} events`, d(e, 'reason')].filter((x) => x !== '').join(' · ')],
        ]}
      />
    )}
    {m.facts.purged === 0 ? null : <p>{`${plural(m.facts.purged, 'in-scope event')} have had their payload purged.`}</p>}
  </section>
);

const Exceptions: FC<{ m: ReportModel }> = ({ m }) => {
  const f = m.facts;
  return (
    <section class="major" id="exceptions">
      <h2>11. Exceptions</h2>
      <h3>Clock skew</h3>
      <p>{`Events whose received time (received_ts, the server's clock) differs from their recorded time (ts, the recorder's clock) by more than ${SKEW_LIMIT_MS / 1000} s: ${f.skew.total}.`}</p>
      {f.skew.total === 0 ? null : (
        <table class="list">
          <thead>
            <tr>
              <th>Leaf</th>
              <th>Session</th>
              <th>ts</th>
              <th>received_ts</th>
              <th class="num">Difference</th>
            </tr>
          </thead>
          <tbody>
            {f.skew.items.map(({ event: e, deltaMs }) => (
              <tr>
                <td class="num">{e.pos}</td>
                <td class="mono">{clip(e.stream, 80)}</td>
                <td>{showTime(e.ts)}</td>
                <td>{showTime(e.received_ts)}</td>
                <td class="num">{showDuration(deltaMs)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h3>Failed captures</h3>
      {f.failedCaptures.total === 0 ? (
        <p>No failed screenshot capture is recorded in scope.</p>
      ) : (
        <EventTable
          events={f.failedCaptures.items}
          columns={[
            ['Session', (e) => e.stream],
            ['Code', (e) => d(e, 'code')],
            ['Message', (e) => d(e, 'message')],
          ]}
        />
      )}
      <h3>Records of governance kinds out of their place (not honoured)</h3>
      {f.outOfPlace.total === 0 ? (
        <p>Every halt, resume, hold, purge, retention rule, key rotation and approval record in scope is where Witness's own writers record it.</p>
      ) : (
        <>
          <p>
            {`${plural(f.outOfPlace.total, 'record')} of governance kinds in scope ${f.outOfPlace.total === 1 ? 'is' : 'are'} not where Witness's own writers record them (a halt, resume, hold, purge, retention rule or key rotation outside its witness.* stream or from another recorder; an approval request not recorded by the gateway, a decision not recorded by the CLI or the server, an expiry not recorded by the gateway). Witness honours none of them and this report counts none of them above; the populations include them as recorded.${f.outOfPlace.total > f.outOfPlace.items.length ? ` The first ${f.outOfPlace.items.length} are listed.` : ''}`}
          </p>
          <EventTable
            events={f.outOfPlace.items}
            columns={[
              ['Kind', (e) => e.kind],
              ['Session', (e) => e.stream],
              ['Agent', (e) => e.agent.id],
              ['Recorder', (e) => e.recorder?.kind ?? '(none)'],
            ]}
          />
        </>
      )}
    </section>
  );
};

const Sample: FC<{ s: SampleView; n: number; size: number; root: string }> = ({ s, n, size, root }) => {
  const e = s.event;
  return (
    <div class="sample" id={`sample-${n}`}>
      <h3>
        Sample {n} · <span class="mono">{e.kind}</span> · leaf {e.pos}
      </h3>
      <Facts
        rows={[
          ['Picked as', s.reasons.join('; ')],
          ['Event', e.id],
          ['Session', `${e.stream} · seq ${e.seq}`],
          ['When', showTime(e.ts)],
          ['Agent', `${e.agent.id}${e.agent.version === undefined ? '' : ` ${e.agent.version}`}`],
          ['Resource / action', e.resource === undefined && e.action === undefined ? undefined : `${e.resource ?? ''} / ${e.action ?? ''}`],
          ['Outcome', e.outcome],
          ['Policy', e.policy === undefined ? undefined : `${e.policy.decision}${e.policy.rule === undefined ? '' : ` (rule ${e.policy.rule})`}`],
          ['Event hash', e.hash],
        ]}
      />
      <p class="proof">
        <b>Inclusion proof</b> to checkpoint size {size}, root <span class="mono">{shortHash(root)}</span> ({plural(s.proof.length, 'hash', 'hashes')}):{' '}
        <span class="mono">{s.proof.length === 0 ? '(none: the tree has one leaf)' : s.proof.join(' ')}</span> —{' '}
        {s.proofOk ? 'checked while this report was made: it leads to the signed root.' : 'it does NOT lead to the signed root: verify the bundle.'}
      </p>
      {s.step === undefined && s.stepShownIn === undefined && e.kind !== 'tool.call' && e.data !== null ? (
        <>
          <div class="label">Payload</div>
          <pre>{showValue(e.data, 4000)}</pre>
        </>
      ) : null}
      {s.stepShownIn === undefined ? null : <p class="note">{`Its tool call is shown with sample ${s.stepShownIn}.`}</p>}
      {s.step === undefined ? null : (
        <>
          <div class="label">{e.kind === 'tool.call' ? 'The call, as the viewer shows it' : 'The tool call it belongs to, as the viewer shows it'}</div>
          <ol class="steps">
            <views.Step step={s.step} />
          </ol>
        </>
      )}
      {s.shotNote === undefined ? null : <p class="note">{s.shotNote}</p>}
    </div>
  );
};

const Appendix: FC<{ m: ReportModel }> = ({ m }) => (
  <section class="major" id="appendix">
    <h2>Appendix: sampled events</h2>
    <p>
      <b>How the sample is drawn</b> (deterministic; anyone can redraw it from the bundle): the first {SAMPLE_FIRST} events in leaf order of each population, and the {SAMPLE_RANDOM} in-scope tool
      calls with the smallest SHA-256(seed ‖ event hash), where the seed is the 32 bytes of the checkpoint root <span class="mono">{m.facts.sampleSeed}</span> and the event hash is its 32 raw bytes.
      Each is listed once, in leaf order, with every reason it was picked.
    </p>
    {m.samples.length === 0 ? <p>No event is in scope, so nothing was sampled.</p> : m.samples.map((s, i) => <Sample s={s} n={i + 1} size={m.integrity.size} root={m.integrity.root} />)}
  </section>
);

export function renderReportHtml(m: ReportModel): string {
  return views.renderDocument(
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="referrer" content="no-referrer" />
        <title>{`Evidence report · ${clip(m.integrity.origin, 120)} · Witness`}</title>
        {/* Our own constant, not recorded data: inserted as it is, since a style element's text is not unescaped. */}
        <style dangerouslySetInnerHTML={{ __html: REPORT_CSS }} />
      </head>
      <body>
        <main class="report">
          <Cover m={m} />
          <Integrity m={m} />
          <Logged m={m} />
          <Matrix m={m} />
          <Oversight m={m} />
          <Reviews m={m} />
          <Changes m={m} />
          <Access m={m} />
          <Incidents m={m} />
          <Retention m={m} />
          <Exceptions m={m} />
          <Appendix m={m} />
        </main>
      </body>
    </html>,
  );
}
