import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { z } from 'zod';
import { listApprovals } from '../../approvals/index.js';
import { WitnessError, type StoredEvent } from '../../core/index.js';
import { RECORDER_VERSION } from '../../recorder/index.js';
import { verifyLedger, type Ledger, type SessionFilter, type SessionSummary } from '../../store/index.js';
import { approveAs, type LedgerContext } from '../approve.js';
import type { RouteContext } from '../context.js';
import { ACCESS_STREAM } from '../access.js';
import { checkPresession, presessionToken } from '../csrf.js';
import type { Caller } from '../keys.js';
import { maskEvent, maskText } from '../mask.js';
import { SESSION_VAR, endPersonSession, startPersonSession, type PersonSession } from '../person-session.js';
import { hiddenFrom, refuseMaskedFilters } from './read.js';
import {
  PATHS,
  STYLESHEET,
  buildSessionModel,
  chaptersVtt,
  integrityBadge,
  localReturnPath,
  overviewBuckets,
  parseSessionFilters,
  pendingApproval,
  renderApprovalsPage,
  renderErrorPage,
  renderIntegrityPage,
  renderOverviewPage,
  renderSessionPage,
  renderSessionsPage,
  renderSignInPage,
  STEPS_PER_PAGE,
  verificationView,
  videoView,
  viewerHeaders,
  type Chrome,
  type Section,
  type SessionRow,
  type SignerView,
  type VerificationView,
} from '../views/index.js';

/**
 * The viewer's pages as route handlers (routes.ts lists them with their roles). Each reads the
 * ledger through the `Ledger` interface, masks for a developer as the API does (mask.ts), fills a
 * view model and answers with the views' headers (the app adds the CSP to every page).
 */

type Stored = StoredEvent & { pos: number };

const SESSIONS_PER_PAGE = 50;
/** The overview counts at most this many events of its window: a chart of a busier day says so in its totals, not by stalling. */
const OVERVIEW_EVENT_LIMIT = 50_000;
const OVERVIEW_HOURS = 24;
/** How long the re-verify button waits for the verification before showing it as running. */
const VERIFY_WAIT_MS = 10_000;

const WITHHELD = 'Screenshots and the video are not shown to developers: images cannot be masked. An auditor sees them.';

export function html(c: Context, body: string, status: ContentfulStatusCode = 200): Response {
  return c.body(body, status, viewerHeaders());
}

/** A refusal or failure as a page, with the person's navigation when signed in. */
export function pageError(c: Context, status: number, code: string, message: string, session?: PersonSession): Response {
  const chrome: Chrome | undefined = session === undefined ? undefined : { user: { name: session.person.name, role: session.person.role }, csrfToken: session.csrfToken };
  return html(c, renderErrorPage({ status, code, message, ...(chrome === undefined ? {} : { chrome }) }), status as ContentfulStatusCode);
}

function sessionOf(ctx: RouteContext): PersonSession | undefined {
  return ctx.c.get(SESSION_VAR) as PersonSession | undefined;
}

function chrome(ctx: RouteContext, active?: Section): Chrome {
  const caller = ctx.caller!;
  const s = sessionOf(ctx);
  const out: Chrome = { user: { name: caller.name ?? `key ${caller.keyId}`, role: caller.role } };
  if (s !== undefined) out.csrfToken = s.csrfToken;
  if (active !== undefined) out.active = active;
  if (caller.role === 'developer') out.masked = true;
  return out;
}

function seen<E extends Stored>(ctx: RouteContext, e: E): E {
  return ctx.caller?.role === 'developer' ? maskEvent(e) : e;
}

/** Where a person lands after signing in when no page was asked for: the first page their role may read. */
function homeOf(role: string): string {
  if (role === 'approver') return PATHS.approvals;
  if (role === 'admin') return PATHS.integrity;
  return PATHS.overview;
}

// ---------------------------------------------------------------- sign-in, sign-out, stylesheet

/** `oidc`: the configured OpenID provider, offered beside the key form. */
export async function signInForm(ctx: RouteContext, oidc?: { label: string }): Promise<Response> {
  const next = localReturnPath(ctx.c.req.query('next'));
  return html(ctx.c, renderSignInPage({ csrfToken: presessionToken(ctx.c), ...(next === undefined ? {} : { next }), ...(oidc === undefined ? {} : { oidc: { label: oidc.label } }) }));
}

export async function signIn(ctx: RouteContext, oidc?: { label: string }): Promise<Response> {
  const c = ctx.c;
  const form = await c.req.parseBody();
  checkPresession(c, form['csrf']);
  const next = localReturnPath(typeof form['next'] === 'string' ? form['next'] : undefined);
  const again = (status: ContentfulStatusCode, error: string) =>
    html(c, renderSignInPage({ csrfToken: presessionToken(c), error, ...(next === undefined ? {} : { next }), ...(oidc === undefined ? {} : { oidc: { label: oidc.label } }) }), status);
  const key = typeof form['api_key'] === 'string' ? form['api_key'].trim() : '';
  if (key === '') return again(400, 'Enter an API key to sign in.');
  await ctx.keys.refresh();
  const auth = ctx.keys.authenticate(`Bearer ${key}`);
  // A key this server did not issue is not recorded: anyone can send one, and it names no one.
  if (!auth.ok) return again(401, auth.message);
  const caller = auth.caller;
  if (caller.role === 'agent') {
    await recordKeySignIn(ctx, caller, 'denied');
    return again(403, 'An agent key may not sign in to the viewer; sign in with a developer, approver, auditor or admin key.');
  }
  // Recorded before the session starts, as an OpenID Connect sign-in is: one that cannot be recorded is refused.
  await recordKeySignIn(ctx, caller, 'success');
  startPersonSession(c, { id: `key:${caller.keyId}`, name: caller.name ?? `key ${caller.keyId}`, role: caller.role, via: 'key', keyId: caller.keyId });
  return c.redirect(next ?? homeOf(caller.role), 303);
}

/** A key sign-in to the viewer, on the access stream beside OpenID Connect ones (oidc.ts): who, as what, from where. */
async function recordKeySignIn(ctx: RouteContext, caller: Caller, outcome: 'success' | 'denied'): Promise<void> {
  const actor = caller.name === undefined ? `key:${caller.keyId}` : `${caller.name} (key:${caller.keyId})`;
  await ctx.ledger.append([
    {
      stream: ACCESS_STREAM,
      agent: { id: 'witness-server', credential: caller.keyId },
      principal: { id: actor, kind: 'human' },
      recorder: { kind: 'server', version: RECORDER_VERSION },
      source: { host: ctx.from },
      kind: 'config.change',
      resource: 'viewer',
      action: 'sign-in',
      outcome,
      data: {
        target: 'other',
        description: outcome === 'success' ? `${actor} signed in to the viewer as ${caller.role} with an API key` : `${actor} was refused sign-in to the viewer: a ${caller.role} key may not sign in`,
        via: 'key',
        key_id: caller.keyId,
        role: caller.role,
        from: ctx.from,
      },
    },
  ]);
  ctx.metrics.appended++;
}

export async function signOut(ctx: RouteContext): Promise<Response> {
  endPersonSession(ctx.c);
  return ctx.c.redirect(PATHS.signIn, 303);
}

export async function stylesheet(ctx: RouteContext): Promise<Response> {
  return ctx.c.body(STYLESHEET, 200, { 'Content-Type': 'text/css; charset=utf-8', 'Cache-Control': 'public, max-age=3600' });
}

// ---------------------------------------------------------------- overview

export async function overview(ctx: RouteContext): Promise<Response> {
  const to = new Date();
  const from = new Date(to.getTime() - OVERVIEW_HOURS * 3_600_000);
  const events: Stored[] = [];
  let cursor: string | undefined;
  do {
    const page = await ctx.ledger.query({ since: from.toISOString(), limit: 1000, ...(cursor === undefined ? {} : { cursor }) });
    events.push(...page.events);
    cursor = page.next;
  } while (cursor !== undefined && events.length < OVERVIEW_EVENT_LIMIT);
  const mine = events.filter((e) => !e.stream.startsWith('witness.') || e.kind !== 'audit.access');
  const buckets = overviewBuckets(mine, { from: from.toISOString(), to: to.toISOString(), buckets: 24 });
  const sum = (k: 'events' | 'toolCalls' | 'denials' | 'approvals' | 'recordingErrors') => buckets.reduce((n, b) => n + b[k], 0);
  const pending = (await listApprovals(ctx.ledger, { status: 'pending', since: new Date(to.getTime() - 7 * 86_400_000).toISOString() })).length;
  const cp = await ctx.ledger.latestCheckpoint();
  await ctx.recordAccess({ count: mine.length });
  return html(
    ctx.c,
    renderOverviewPage({
      chrome: chrome(ctx, 'overview'),
      from: from.toISOString(),
      to: to.toISOString(),
      buckets,
      totals: {
        events: sum('events'),
        sessions: new Set(mine.filter((e) => !e.stream.startsWith('witness.')).map((e) => e.stream)).size,
        toolCalls: sum('toolCalls'),
        denials: sum('denials'),
        approvals: sum('approvals'),
        pendingApprovals: pending,
        recordingErrors: sum('recordingErrors'),
      },
      ...(cp === undefined ? {} : { checkpoint: { size: cp.size, ts: cp.ts } }),
    }),
  );
}

// ---------------------------------------------------------------- sessions

export async function sessionsPage(ctx: RouteContext): Promise<Response> {
  const parsed = parseSessionFilters(ctx.c.req.query());
  if ('error' in parsed) throw new WitnessError('invalid_argument', parsed.error);
  refuseMaskedFilters(ctx, parsed.filters);
  const filter: SessionFilter = { ...parsed.filters };
  const page = await ctx.ledger.listSessions(filter, { limit: SESSIONS_PER_PAGE, ...(parsed.cursor === undefined ? {} : { cursor: parsed.cursor }) });
  const mask = ctx.caller?.role === 'developer';
  const rows: SessionRow[] = page.sessions.map((s) => {
    const row: SessionRow = {
      id: s.stream,
      agent: s.agents[0] ?? 'unknown',
      started: s.start,
      counts: { events: s.events, toolCalls: s.toolCalls, denials: s.denials + s.approvals.denied + s.approvals.expired, approvals: s.approvals.approved },
    };
    if (s.ended) row.ended = s.end;
    if (s.endReason !== undefined) row.endReason = mask ? maskText(s.endReason) : s.endReason;
    return row;
  });
  await ctx.recordAccess({ count: rows.length });
  return html(
    ctx.c,
    renderSessionsPage({
      chrome: chrome(ctx, 'sessions'),
      filters: parsed.filters,
      sessions: rows,
      ...(page.next === undefined ? {} : { next: page.next }),
      ...(parsed.cursor === undefined ? {} : { cursor: parsed.cursor }),
    }),
  );
}

const SessionQuery = z.object({
  id: z.string().min(1, 'must name a session').max(512),
  from: z.coerce.number().int().min(1).max(10_000_000).optional(),
});

export async function sessionPage(ctx: RouteContext, state: PageState): Promise<Response> {
  const q = SessionQuery.safeParse(ctx.c.req.query());
  if (!q.success)
    throw new WitnessError(
      'invalid_argument',
      `The session link is not valid: ${q.error.issues[0]?.path.join('.') ?? 'id'} ${q.error.issues[0]?.message ?? ''}; open the session from the sessions list.`,
    );
  const { id, from = 1 } = q.data;
  if (hiddenFrom(ctx, id)) throw new WitnessError('not_found', 'No session with this id is recorded; open one from the sessions list.');
  const cp = await ctx.ledger.latestCheckpoint();
  // The session's totals come from the store's session index, so only the steps shown are read;
  // a stream that is no session (a system stream, shown to auditors) is walked whole.
  const summary = (await ctx.ledger.listSessions({ session: id }, { limit: 1 })).sessions[0];
  let walk: SessionWalk;
  if (summary !== undefined) {
    walk = await walkWindow(ctx.ledger, id, summary.toolCalls === 0 ? 1 : Math.min(from, summary.toolCalls), summary, cp?.size);
  } else {
    walk = await walkSession(ctx.ledger, id, from, cp?.size);
    if (walk.events === 0) throw new WitnessError('not_found', 'No session with this id is recorded; open one from the sessions list.');
    // A step past the end shows the last step, as the views do for a session read whole.
    if (walk.calls > 0 && from > walk.calls) walk = await walkSession(ctx.ledger, id, walk.calls, cp?.size);
  }
  const video = walk.video ?? (await evidenceVideo(ctx.ledger, id));
  const developer = ctx.caller?.role === 'developer';
  const signers = await signersOf(ctx.ledger, state.last);
  const first = walk.calls === 0 ? 1 : Math.min(from, walk.calls);
  const badge = integrityBadge([{ pos: walk.top }], {
    ...(cp === undefined ? {} : { checkpoint: { id: cp.id, size: cp.size, ts: cp.ts } }),
    signers,
    ...(state.last === undefined ? {} : { last: state.last }),
  });
  // The badge's "n of m unsealed" needs every event's position; the walk counted them instead.
  if (badge.state === 'unsealed') badge.text = `${walk.unsealed} of ${walk.events} events of this session are hash-chained but not yet in a signed checkpoint.`;
  const model = buildSessionModel(
    walk.kept.map((e) => seen(ctx, e)),
    {
      chrome: chrome(ctx, 'sessions'),
      ...(video === undefined || developer ? {} : { videoEvent: video }),
      integrity: badge,
    },
  );
  // The model was built from the window's events alone: number its steps and count the session as a whole.
  for (const step of model.steps) step.index += first - 1;
  model.stepWindow = { from: first, to: first + model.steps.length - 1, total: walk.calls };
  model.session.events = walk.events;
  if (walk.truncated) model.withheld = `${model.withheld === undefined ? '' : `${model.withheld} `}${TRUNCATED}`;
  if (developer) {
    // The API gives developers no artifacts (they cannot be masked); the page agrees and says so.
    for (const step of model.steps) {
      delete step.before;
      delete step.after;
    }
    delete model.video;
    model.withheld = walk.truncated ? `${WITHHELD} ${TRUNCATED}` : WITHHELD;
  }
  await ctx.recordAccess({ count: walk.events, resource: id });
  return html(ctx.c, renderSessionPage(model));
}

/** Events per read while walking a session for its page: the walk holds one read at a time. */
const SESSION_READ = 1_000;
/** At most this many events of one page of steps are kept to build it (200 steps of 50 events each). */
const SESSION_KEEP = 10_000;
const TRUNCATED = `These steps have more than ${SESSION_KEEP.toLocaleString('en-US')} events tied to them; only the first are shown. Read the session in full with GET /v1/sessions/:id or an export.`;

/** What `walkSession` found: the events one page of steps is built from, and the counts of the whole session. */
interface SessionWalk {
  /** In seq order: session.start, session.end, and the window's calls with what the views show of them. */
  kept: Stored[];
  /** Events in the session, tool calls among them, events past the checkpoint, the highest position. */
  events: number;
  calls: number;
  unsealed: number;
  top: number;
  /** The session's own video capture, the last one recorded. */
  video?: Stored;
  /** SESSION_KEEP was reached: the page shows less than the window holds. */
  truncated: boolean;
}

/** How far past the page's last step the walk reads for events tied to its steps that were recorded late (an approval decided after later calls). */
const TIED_SLACK = 1_000;

/**
 * Reads a session a page at a time (an agent can make one arbitrarily long) and keeps only what
 * the STEPS_PER_PAGE steps from step `from` show: each call, the llm.call just before it (its
 * reasoning), the events tied to it by `parent` and to its approval request, and the errors
 * recorded among those steps that name no parent (the page's "other errors"). Everything else is
 * only counted. Memory is bounded by one read and SESSION_KEEP.
 *
 * With `stopAfterWindow`, the walk stops TIED_SLACK events after the first call past the window
 * (an event tied to a step later than that is not shown on the page; the API and an export have
 * it), and its counts cover only what it read: walkWindow takes the session's own from its summary.
 * Without it, the walk reads to the stream's end and counts everything.
 */
async function walkSession(ledger: Ledger, stream: string, from: number, sealedSize: number | undefined, stopAfterWindow = false): Promise<SessionWalk> {
  const walk: SessionWalk = { kept: [], events: 0, calls: 0, unsealed: 0, top: -1, truncated: false };
  const last = from + STEPS_PER_PAGE - 1;
  const tied = new Set<string>();
  let start: Stored | undefined;
  let end: Stored | undefined;
  let reasoning: Stored | undefined;
  let stopAt: number | undefined;
  const keep = (e: Stored) => {
    if (walk.kept.length < SESSION_KEEP) walk.kept.push(e);
    else walk.truncated = true;
  };
  reading: for (let fromSeq: number | undefined = 0; fromSeq !== undefined;) {
    const page = await ledger.readStreamPage(stream, { fromSeq, limit: SESSION_READ });
    for (const e of page.events) {
      if (stopAt !== undefined && e.seq >= stopAt) break reading;
      walk.events += 1;
      walk.top = Math.max(walk.top, e.pos);
      if (sealedSize === undefined || e.pos >= sealedSize) walk.unsealed += 1;
      // Between the previous page's last call and this page's first call once more than `last` calls have been seen.
      const inWindow = walk.calls >= from - 1 && walk.calls < last;
      if (e.kind === 'session.start' && start === undefined) start = e;
      else if (e.kind === 'session.end') end = e;
      else if (e.kind === 'capture' && e.data?.['role'] === 'video') walk.video = e;
      else if (e.kind === 'llm.call') reasoning = e;
      else if (e.kind === 'tool.call') {
        walk.calls += 1;
        if (walk.calls >= from && walk.calls <= last) {
          if (reasoning !== undefined) keep(reasoning);
          keep(e);
          tied.add(e.id);
        }
        reasoning = undefined;
        if (stopAfterWindow && walk.calls === last + 1) stopAt = e.seq + TIED_SLACK;
      } else if (e.parent !== undefined && tied.has(e.parent)) {
        keep(e);
        if (e.kind === 'approval.request') tied.add(e.id);
      } else if (e.kind === 'error' && e.parent === undefined && inWindow) keep(e);
    }
    fromSeq = page.nextSeq;
  }
  const ends = [start, end].filter((e): e is Stored => e !== undefined);
  walk.kept = [...ends, ...walk.kept].sort((a, b) => a.seq - b.seq);
  return walk;
}

/**
 * One page of steps of a session whose totals the store's session index gave (`summary`): the
 * steps are walked from the start only as far as the window (walkSession, stopping after it);
 * the last event (its session.end, the highest position) is read by its seq; the video by the
 * query index; and the events past the checkpoint by a binary search on seq (positions grow with
 * seq within a stream), about 17 one-event reads for 100,000 events. Time grows with `from`, no
 * longer with the session's length.
 */
async function walkWindow(ledger: Ledger, stream: string, from: number, summary: SessionSummary, sealedSize: number | undefined): Promise<SessionWalk> {
  const walk = await walkSession(ledger, stream, from, sealedSize, true);
  const at = async (seq: number): Promise<Stored | undefined> => (await ledger.readStreamPage(stream, { fromSeq: seq, limit: 1 })).events[0];
  // The summary was read first: the stream may have grown since, never shrunk.
  const lastSeq = Math.max(summary.events, walk.events) - 1;
  const lastEvent = await at(lastSeq);
  walk.events = lastSeq + 1;
  walk.calls = Math.max(summary.toolCalls, walk.calls);
  walk.top = Math.max(walk.top, lastEvent?.pos ?? -1);
  if (lastEvent?.kind === 'session.end' && !walk.kept.some((e) => e.id === lastEvent.id)) walk.kept = [...walk.kept, lastEvent];
  walk.unsealed = await unsealedFrom(at, lastSeq, lastEvent, sealedSize);
  walk.video ??= (await videosOf(ledger, stream)).filter((e) => e.stream === stream).at(-1);
  return walk;
}

/** Events of a stream at or past the checkpoint's size: seqs from the first whose position is not below it. */
async function unsealedFrom(at: (seq: number) => Promise<Stored | undefined>, lastSeq: number, lastEvent: Stored | undefined, sealedSize: number | undefined): Promise<number> {
  if (sealedSize === undefined) return lastSeq + 1;
  if (lastEvent === undefined || lastEvent.pos < sealedSize) return 0;
  let lo = 0;
  let hi = lastSeq;
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    const e = await at(mid);
    if (e !== undefined && e.pos >= sealedSize) hi = mid;
    else lo = mid + 1;
  }
  return lastSeq + 1 - lo;
}

/** A video rendered after the session ended lives in the evidence stream, its resource the session id. */
async function evidenceVideo(ledger: Ledger, session: string): Promise<Stored | undefined> {
  return (await videosOf(ledger, session)).filter((e) => e.stream === 'witness.evidence').at(-1);
}

/**
 * The session's video captures, in whichever stream: their resource is the session id. Found by
 * kind and resource alone, which the query index answers at once; adding the stream to the
 * filter made SQLite walk the session's events (0.2 ms against 140 ms for 100,000, measured).
 */
async function videosOf(ledger: Ledger, session: string): Promise<Stored[]> {
  const page = await ledger.query({ kind: 'capture', resource: session, limit: 100 });
  return page.events.filter((e) => e.data?.['role'] === 'video');
}

const EventIdParam = z.object({ id: z.uuid() });

export async function chapters(ctx: RouteContext): Promise<Response> {
  const p = EventIdParam.safeParse(ctx.c.req.param());
  if (!p.success) throw new WitnessError('invalid_argument', 'The chapters link must name a video event by its UUID.');
  const e = await ctx.ledger.getEvent(p.data.id);
  const v = e === undefined || e.kind !== 'capture' ? undefined : videoView(e);
  if (e === undefined || v === undefined) throw new WitnessError('not_found', 'No recorded video has this id; open the session page again.');
  await ctx.recordAccess({ count: v.chapters.length, resource: e.resource ?? e.stream });
  return ctx.c.body(chaptersVtt(v.chapters), 200, { 'Content-Type': 'text/vtt; charset=utf-8' });
}

// ---------------------------------------------------------------- approvals

export async function approvalsPage(ctx: RouteContext): Promise<Response> {
  const now = new Date();
  const views = await listApprovals(ctx.ledger, { status: 'pending', now });
  const s = sessionOf(ctx);
  const flash = s?.flash;
  if (s !== undefined) delete s.flash;
  await ctx.recordAccess({ count: views.length });
  return html(
    ctx.c,
    renderApprovalsPage({
      chrome: { ...chrome(ctx, 'approvals'), pendingApprovals: views.length },
      now: now.toISOString(),
      pending: views.map(pendingApproval),
      ...(flash === undefined ? {} : { flash }),
    }),
  );
}

const DecideForm = z.object({
  request_id: z.string().min(8).max(128),
  arguments_digest: z.string().regex(/^[0-9a-f]{64}$/, 'must be the 64 hex digits shown'),
  decision: z.enum(['approve', 'deny']),
  reason: z.string().max(4096).optional(),
});

export async function decideApproval(ctx: RouteContext, oidc?: LedgerContext['oidc']): Promise<Response> {
  const form = await ctx.c.req.parseBody();
  const parsed = DecideForm.safeParse(form);
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    throw new WitnessError('invalid_argument', `The decision form's ${i?.path.join('.') ?? 'fields'} ${i?.message ?? 'is not valid'}; reload the approvals page and decide again.`);
  }
  const f = parsed.data;
  const caller = ctx.caller!;
  const s = sessionOf(ctx);
  const reason = f.reason === undefined || f.reason.trim() === '' ? undefined : f.reason.trim();
  try {
    const r = await approveAs(
      { ledger: ctx.ledger, metrics: ctx.metrics, ...(oidc === undefined ? {} : { oidc }) },
      { keyId: caller.keyId, name: caller.name, role: caller.role },
      f.request_id,
      f.decision === 'approve' ? 'approved' : 'denied',
      reason,
      {
        expectDigest: f.arguments_digest,
      },
    );
    if (s !== undefined) s.flash = { kind: 'ok', text: `${r.decision === 'approved' ? 'Approved' : 'Denied'} request ${r.requestId} as ${r.approver}.` };
  } catch (e) {
    if (!(e instanceof WitnessError) || s === undefined) throw e;
    s.flash = { kind: 'error', text: e.message };
  }
  return ctx.c.redirect(PATHS.approvals, 303);
}

// ---------------------------------------------------------------- integrity

/** What the pages keep between requests: the last verification the viewer ran, and one running. */
export class PageState {
  last: VerificationView | undefined;
  running: Promise<void> | undefined;

  verify(ledger: Ledger): Promise<void> {
    this.running ??= (async () => {
      const t0 = Date.now();
      const report = await verifyLedger(ledger);
      this.last = verificationView(report, new Date().toISOString(), Date.now() - t0);
    })().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }
}

/** The keys that signed: as the last verification found them, else the ledger's own key (the one verify trusts). */
async function signersOf(ledger: Ledger, last: VerificationView | undefined): Promise<SignerView[]> {
  if (last !== undefined) return last.signers;
  const first = (await ledger.publicKeys())[0];
  if (first === undefined) return [];
  const [name, hash] = first.vkey.split('+');
  return [{ name: first.name, fingerprint: `${name}+${hash}`, source: 'ledger' }];
}

export async function integrityPage(ctx: RouteContext, state: PageState): Promise<Response> {
  const cp = await ctx.ledger.latestCheckpoint();
  const signers = await signersOf(ctx.ledger, state.last);
  await ctx.recordAccess({ count: ctx.ledger.info.size });
  return html(
    ctx.c,
    renderIntegrityPage({
      chrome: chrome(ctx, 'integrity'),
      ledger: { origin: ctx.ledger.info.origin, size: ctx.ledger.info.size },
      ...(cp === undefined ? {} : { checkpoint: { id: cp.id, size: cp.size, ts: cp.ts, rootHex: cp.root.toString('hex') } }),
      signers,
      ...(state.last === undefined ? {} : { last: state.last }),
      ...(state.running === undefined ? {} : { running: true }),
    }),
  );
}

export async function reverify(ctx: RouteContext, state: PageState): Promise<Response> {
  const done = state.verify(ctx.ledger);
  // A failure after the wait is shown by the next verification, not thrown into nobody's hands.
  done.catch(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  // A small ledger is verified before the page comes back; a large one shows as running.
  await Promise.race([done, new Promise<void>((r) => (timer = setTimeout(r, VERIFY_WAIT_MS)))]);
  clearTimeout(timer);
  await ctx.recordAccess({ count: state.last?.events ?? 0 });
  return ctx.c.redirect(PATHS.integrity, 303);
}
