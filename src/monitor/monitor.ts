import { z } from 'zod';
import { WitnessError, type EventInput, type VerifyRow } from '../core/index.js';
import { listApprovals } from '../approvals/index.js';
import { RECORDER_VERSION } from '../recorder/index.js';
import type { AppendRequest, Ledger } from '../store/index.js';
import { ALERT_CODES, AlertBook, type AlertMessage, type Condition } from './alerts.js';
import { BehaviourConfig, BehaviourRules, type AnomalyFlag, type ObservedEvent } from './behaviour.js';
import { fullPass } from './full-pass.js';
import { GOVERNANCE_KINDS, governanceAct } from './governance.js';
import { verifyNewCheckpoints } from './incremental.js';
import { MonitorMetrics } from './metrics.js';
import type { AlertSink } from './sinks.js';
import { freshState, loadState, saveState, type MonitorState } from './state.js';

/** The stream the monitor records its `alert` and `anomaly` events in; its own events are never flagged or alerted on. */
export const MONITOR_STREAM = 'witness.monitor';
export const MONITOR_AGENT = 'witness-monitor';

const HOUR = 3_600_000;
/** On a first pass (no state yet), recording and capture failures this recent still alert; older ones are history. */
const RECENT_MS = 24 * HOUR;

export const MonitorConfig = z.strictObject({
  /** An approval request waiting longer than this alerts (approval_pending). */
  approvalPendingMs: z
    .number()
    .int()
    .min(1)
    .default(15 * 60_000),
  /**
   * Approval requests made this long ago at most are watched (holds last minutes: the gateway's
   * --approval-timeout is 5 m by default), as the server's /metrics counts them. Listing reads the
   * window's requests, decisions and policy decisions, which a busy gateway writes for every call…
   */
  approvalWindowMs: z
    .number()
    .int()
    .min(1)
    .default(24 * HOUR),
  /** …so it is done at most this often, not every pass. */
  approvalsEveryMs: z.number().int().min(0).default(60_000),
  /** Unsealed events older than this with no new checkpoint alert (sealing_stalled). */
  sealStallMs: z
    .number()
    .int()
    .min(1)
    .default(5 * 60_000),
  /** The whole ledger is verified this often (verifyLedger); new checkpoints every pass. */
  fullEveryMs: z.number().int().min(1).default(HOUR),
  /** On the first pass, flag the history too instead of only learning from it. */
  backfill: z.boolean().default(false),
  /** Record alerts and anomaly flags in the ledger (false for a read-only ledger). */
  record: z.boolean().default(true),
  /** Verifier keys to trust instead of the ledger's own. */
  trustedKeys: z.array(z.string()).optional(),
  /** Where verify's worker threads open the ledger (a big ledger's full pass); default its location. */
  url: z.string().optional(),
  behaviour: BehaviourConfig.default(BehaviourConfig.parse({})),
  /**
   * Acts of governance not to announce (e.g. a nightly `retention.purge`). Only the ones recorded
   * where Witness records them: one found elsewhere (governance_misplaced) is always announced.
   */
  quietGovernance: z.array(z.enum(GOVERNANCE_KINDS)).default([]),
});
export type MonitorConfig = z.input<typeof MonitorConfig>;

export interface PassReport {
  at: string;
  /** Events read in this pass (the monitor's own included). */
  events: number;
  flags: AnomalyFlag[];
  alerts: AlertMessage[];
  verified: { checkpoint: number | null; size: number; checkedNow: number; failures: string[] };
  /** The scheduled full verification when one ran; `thread` is the worker thread it ran on (0: the monitor's own). */
  full: { ok: boolean; events: number; failures: number; first?: string; thread: number; seconds: number } | null;
  unsealed: number;
  /** Events the monitor recorded (alerts and flags). */
  recorded: number;
  /** Sinks that gave up, and recording that failed: one sentence each. */
  errors: string[];
}

export interface MonitorDeps {
  statePath: string;
  sinks?: AlertSink[];
  metrics?: MonitorMetrics;
  now?: () => Date;
}

/**
 * One pass reads what was appended since the last (anomaly rules, recorded failures, halts),
 * verifies new checkpoints (and the whole ledger when due), looks at sealing and approvals,
 * records what it found, sends alerts, and saves where it stopped. `run` repeats it.
 */
export class Monitor {
  private readonly config: z.output<typeof MonitorConfig>;
  readonly metrics: MonitorMetrics;
  private readonly sinks: AlertSink[];
  private readonly now: () => Date;
  /** The state this process continues from (undefined until its first pass: then the file's). */
  private state: MonitorState | undefined;
  /** Findings the ledger has not taken yet (a read-only or failing store), offered again each pass. */
  private unrecorded: AppendRequest[] = [];
  private readonly failing: Record<string, Condition> = {};
  private approvalsCheckedAt: number | undefined;
  /** Set by `run`: a full pass under way is abandoned when it aborts (it only reads). */
  private stopping: AbortSignal | undefined;

  constructor(
    private readonly ledger: Ledger,
    config: MonitorConfig,
    private readonly deps: MonitorDeps,
  ) {
    const parsed = MonitorConfig.safeParse(config);
    if (!parsed.success) throw new WitnessError('invalid_argument', `Monitor setting ${parsed.error.issues[0]?.path.join('.')} is invalid: ${parsed.error.issues[0]?.message}.`);
    this.config = parsed.data;
    this.metrics = deps.metrics ?? new MonitorMetrics();
    this.sinks = deps.sinks ?? [];
    this.now = deps.now ?? (() => new Date());
  }

  async pass(): Promise<PassReport> {
    const now = this.now();
    // This process's state when it has one (ahead of the file when a save failed), else the file's.
    // A copy: a pass that throws midway leaves the state it started from.
    const loaded = this.state === undefined ? loadState(this.deps.statePath, this.ledger.info.id) : structuredClone(this.state);
    const state: MonitorState = loaded ?? freshState(this.ledger.info.id);
    const learnOnly = loaded === undefined && !this.config.backfill;
    const book = new AlertBook(state.conditions, now);
    const rules = new BehaviourRules(this.config.behaviour, state.behaviour);
    const report: PassReport = {
      at: now.toISOString(),
      events: 0,
      flags: [],
      alerts: [],
      verified: { checkpoint: null, size: 0, checkedNow: 0, failures: [] },
      full: null,
      unsealed: 0,
      recorded: 0,
      errors: [],
    };

    // 1. What was appended since the last pass.
    const already = await this.alreadyRecorded(state.savedAt);
    for await (const page of this.ledger.scanForVerify(state.cursor, undefined, 1000)) {
      for (const row of page) {
        state.cursor = row.pos + 1;
        report.events++;
        const e = observed(row);
        if (e === undefined) continue;
        // On the first pass history is learned, not alerted on, except failures recorded lately.
        const history = learnOnly && now.getTime() - Date.parse(e.ts) > RECENT_MS;
        // Before the monitor's own stream is passed over: a governance kind there is not the monitor's.
        this.governanceAlert(e, book, history);
        if (e.stream === MONITOR_STREAM) continue;
        for (const f of rules.observe(e, learnOnly)) if (!already.flags.has(`${f.rule}\n${f.target_event}`)) report.flags.push(f);
        this.eventAlerts(e, book, history);
      }
    }
    this.metrics.eventsProcessed += report.events;

    // 2. New checkpoints, and the whole ledger when due.
    const inc = await verifyNewCheckpoints(this.ledger, state.verified, this.config.trustedKeys);
    state.verified = inc.state;
    report.verified = { checkpoint: inc.state?.checkpoint ?? null, size: inc.state?.size ?? 0, checkedNow: inc.checkpoints, failures: inc.failures.map((f) => f.reason) };
    let failed = inc.failures[0]?.reason;
    if (failed !== undefined) MonitorMetrics.bump(this.metrics.verificationFailures, 'incremental');
    const fullDue = state.lastFull === undefined || now.getTime() - Date.parse(state.lastFull.at) >= this.config.fullEveryMs;
    const started = performance.now();
    const done = fullDue
      ? await fullPass(this.ledger, {
          ...(this.config.trustedKeys === undefined ? {} : { trustedKeys: this.config.trustedKeys }),
          ...(this.config.url === undefined ? {} : { url: this.config.url }),
          ...(this.stopping === undefined ? {} : { signal: this.stopping }),
        })
      : undefined;
    if (done !== undefined) {
      const r = done.report;
      state.lastFull = { at: now.toISOString(), ok: r.ok, events: r.events, ...(r.first === undefined ? {} : { first: r.first.reason }) };
      report.full = {
        ok: r.ok,
        events: r.events,
        failures: r.failures.length,
        ...(r.first === undefined ? {} : { first: r.first.reason }),
        thread: done.thread,
        seconds: Math.round(performance.now() - started) / 1000,
      };
      this.metrics.lastFullVerify = Math.floor(Date.now() / 1000);
      this.metrics.lastFullVerifyOk = r.ok ? 1 : 0;
      if (!r.ok) {
        MonitorMetrics.bump(this.metrics.verificationFailures, 'full');
        failed ??= `${r.failures.length} failure(s), the first: ${r.first?.reason ?? 'unknown'}`;
      }
    }
    if (failed !== undefined) {
      book.raise({
        code: 'verification_failed',
        key: 'verification_failed',
        message: `The ledger ${this.ledger.info.location} does not verify: ${failed}`,
        ...(inc.failures.length > 0 ? { details: { failures: inc.failures.slice(0, 5) } } : {}),
      });
    } else if (report.full?.ok === true) book.clear('verification_failed', `The ledger ${this.ledger.info.location} verifies again (full pass over ${report.full.events} events).`);

    // 3. Sealing.
    await this.checkSealing(state, book, now, report);

    // 4. Approvals.
    if (this.approvalsCheckedAt === undefined || now.getTime() - this.approvalsCheckedAt >= this.config.approvalsEveryMs) {
      await this.checkApprovals(book, now);
      this.approvalsCheckedAt = now.getTime();
    }
    for (const [key, c] of Object.entries(state.conditions)) {
      if (c.oneShot === true && now.getTime() - Date.parse(c.since) > this.config.approvalWindowMs) delete state.conditions[key];
    }

    // 5. Record, send, save. Findings the ledger did not take are kept and offered again each
    // pass; the state file is saved only once everything is recorded, so a restart redoes the rest.
    report.alerts = book.messages({ id: this.ledger.info.id, origin: this.ledger.info.origin, location: this.ledger.info.location });
    // Sent before they are recorded and the place saved: a monitor stopped in between sends them
    // again (at least once; an alert about one event keeps its id), and records them once, since
    // what it recorded is found in the ledger (alreadyRecorded).
    report.errors.push(...(await this.send(report.alerts)));
    if (this.config.record) this.unrecorded.push(...report.flags.map(flagEvent), ...report.alerts.filter((a) => !already.alerts.has(a.key)).map(alertEvent));
    const problems: string[] = [];
    if (this.unrecorded.length > 0) {
      try {
        await this.ledger.append(this.unrecorded);
        report.recorded = this.unrecorded.length;
        this.unrecorded = [];
      } catch (e) {
        problems.push(
          `The monitor could not record ${this.unrecorded.length} finding(s) in ${this.ledger.info.location} (${(e as Error).message.replace(/\.$/, '')}); it offers them again every pass.`,
        );
      }
    }
    this.state = state;
    if (this.unrecorded.length === 0) {
      state.savedAt = new Date().toISOString();
      try {
        saveState(this.deps.statePath, state);
      } catch (e) {
        problems.push((e as Error).message);
      }
    }
    report.errors.push(...problems);
    report.errors.push(...(await this.send(this.failureChange(problems, now))));
    for (const f of report.flags) MonitorMetrics.bump(this.metrics.anomalies, f.rule);
    for (const a of report.alerts) if (a.status === 'firing') MonitorMetrics.bump(this.metrics.alertsFired, a.code);
    this.metrics.alertsActive.clear();
    for (const code of Object.keys(ALERT_CODES)) this.metrics.alertsActive.set(code, 0);
    for (const c of Object.values(state.conditions)) MonitorMetrics.bump(this.metrics.alertsActive, c.code);
    this.metrics.ledgerSize = state.cursor;
    this.metrics.verifiedSize = state.verified?.size ?? 0;
    this.metrics.lastPass = Math.floor(Date.now() / 1000);
    return report;
  }

  /**
   * Passes until `signal` aborts, `intervalMs` apart. A pass that fails is reported to `onError`
   * and, once until a pass succeeds again, to the sinks as monitor_failed.
   */
  async run(intervalMs: number, signal: AbortSignal, onPass: (r: PassReport) => void, onError: (e: Error) => void): Promise<void> {
    this.stopping = signal;
    while (!signal.aborted) {
      try {
        onPass(await this.pass());
      } catch (e) {
        this.metrics.passErrors++;
        onError(e as Error);
        const message = `A monitor pass over ${this.ledger.info.location} failed: ${(e as Error).message}`;
        for (const err of await this.send(this.failureChange([message], this.now()))) onError(new Error(err));
      }
      // Stopped during the pass: an abort event has already fired and will not fire again.
      if (signal.aborted) break;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, intervalMs);
        signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
      });
    }
  }

  /** monitor_failed as a condition of this process (sent to the sinks only: the ledger may be what fails): fires on the first problem, resolves on the first clean pass. */
  private failureChange(problems: readonly string[], now: Date): AlertMessage[] {
    const book = new AlertBook(this.failing, now);
    if (problems.length > 0) book.raise({ code: 'monitor_failed', key: 'monitor_failed', message: problems.join(' ') });
    else book.clear('monitor_failed', `The monitor over ${this.ledger.info.location} records and saves again.`);
    return book.messages({ id: this.ledger.info.id, origin: this.ledger.info.origin, location: this.ledger.info.location });
  }

  private async send(alerts: readonly AlertMessage[]): Promise<string[]> {
    const errors: string[] = [];
    await Promise.all(
      this.sinks.map(async (sink) => {
        for (const a of alerts) {
          try {
            await sink.send(a);
          } catch (e) {
            MonitorMetrics.bump(this.metrics.deliveryFailures, sink.name);
            errors.push((e as Error).message);
          }
        }
      }),
    );
    return errors;
  }

  /**
   * Flags, and alerts about one event (governance), recorded after the state was last saved: by a
   * pass that stopped before saving, and so not to be recorded again.
   */
  private async alreadyRecorded(savedAt: string | undefined): Promise<{ flags: Set<string>; alerts: Set<string> }> {
    const flags = new Set<string>();
    const alerts = new Set<string>();
    for (const kind of ['anomaly', 'alert'] as const) {
      let cursor: string | undefined;
      do {
        const page = await this.ledger.query({ stream: MONITOR_STREAM, kind, ...(savedAt === undefined ? {} : { since: savedAt }), limit: 1000, ...(cursor === undefined ? {} : { cursor }) });
        for (const e of page.events) {
          const d = e.data;
          if (d === null) continue;
          if (kind === 'anomaly' && typeof d['rule'] === 'string' && typeof d['target_event'] === 'string') flags.add(`${d['rule']}\n${d['target_event']}`);
          if (kind === 'alert' && typeof d['key'] === 'string' && d['key'].startsWith(GOVERNANCE_KEY)) alerts.add(d['key']);
        }
        cursor = page.next;
      } while (cursor !== undefined);
    }
    return { flags, alerts };
  }

  /**
   * Every act of governance is announced, once per event (keyed by its id, dated by its time, so
   * the alert's id is the same whichever pass raises it); one outside its place louder. On a first
   * pass, acts in their place older than a day are history; misplaced ones are announced whatever
   * their age.
   */
  private governanceAlert(e: ObservedEvent, book: AlertBook, history: boolean): void {
    const act = governanceAct(e);
    if (act === undefined) return;
    const key = `${GOVERNANCE_KEY}${e.id}`;
    // A time written behind the recorder's back may be no time at all: the alert then dates from now.
    const since = Number.isFinite(Date.parse(e.ts)) ? e.ts : undefined;
    if (act.misplaced !== undefined) {
      book.raise({
        code: 'governance_misplaced',
        key,
        ...(since === undefined ? {} : { since }),
        oneShot: true,
        message: `A ${act.kind} event ${e.id} ${act.misplaced}, so Witness did not record it and readers that check its place ignore it; it says ${act.what}.`,
        details: act.details,
      });
    } else if (!history && !this.config.quietGovernance.includes(act.kind)) {
      book.raise({ code: 'governance', key, ...(since === undefined ? {} : { since }), oneShot: true, message: `${act.what} (${act.kind} ${e.id}).`, details: act.details });
    }
  }

  private eventAlerts(e: ObservedEvent, book: AlertBook, learnOnly: boolean): void {
    const d = e.data ?? {};
    // A halt or resume counts only where Witness records them (the gateways' halt watch agrees).
    const placed = (e.kind !== 'human.halt' && e.kind !== 'human.resume') || governanceAct(e)?.misplaced === undefined;
    if (e.kind === 'human.halt' && placed) {
      const agent = typeof d['agent'] === 'string' ? d['agent'] : e.agent;
      book.raise({
        code: 'agent_halted',
        key: `agent_halted:${agent}`,
        message: `${String(d['actor'] ?? 'someone')} halted agent ${agent}: ${String(d['reason'] ?? '(no reason given)')}`,
        details: { halt: e.id, agent },
      });
    } else if (e.kind === 'human.resume' && placed && typeof d['agent'] === 'string') {
      book.clear(`agent_halted:${d['agent']}`, `${String(d['actor'] ?? 'someone')} resumed agent ${d['agent']}.`);
    } else if (e.kind === 'capture') {
      book.clear(`capture_failed:${e.agent}`, `Screenshots by ${e.agent} are stored again.`);
    }
    if (e.kind !== 'error' || learnOnly) return;
    const code = d['code'];
    const message = typeof d['message'] === 'string' ? d['message'] : '(no message)';
    if (code === 'recording_gap') {
      // One alert per agent per clock hour: an outage leaves a gap record in every session it hit.
      book.raise({ code: 'recording_gap', key: `recording_gap:${e.agent}:${e.ts.slice(0, 13)}`, message: `${e.agent}: ${message}`, oneShot: true, details: { event: e.id, stream: e.stream } });
    } else if (code === 'capture_failed' || code === 'no_capturer' || d['source'] === 'capture') {
      book.raise({ code: 'capture_failed', key: `capture_failed:${e.agent}`, message: `A screenshot for ${e.agent} failed: ${message}`, details: { event: e.id, stream: e.stream } });
    }
  }

  private async checkSealing(state: MonitorState, book: AlertBook, now: Date, report: PassReport): Promise<void> {
    const latest = await this.ledger.latestCheckpoint();
    const sealed = latest?.size ?? 0;
    report.unsealed = Math.max(0, state.cursor - sealed);
    this.metrics.sealedSize = sealed;
    this.metrics.unsealed = report.unsealed;
    // The oldest unsealed event not the monitor's own (its records wait for the recorder's next seal).
    let oldest: string | undefined;
    let pages = 0;
    for await (const page of this.ledger.scanForVerify(sealed, undefined, 500)) {
      oldest = page.find((r) => r.stream !== MONITOR_STREAM)?.ts;
      if (oldest !== undefined || ++pages >= 20) break;
    }
    const age = oldest === undefined ? 0 : now.getTime() - Date.parse(oldest);
    this.metrics.oldestUnsealedAgeSeconds = Math.max(0, Math.floor(age / 1000));
    if (oldest !== undefined && age > this.config.sealStallMs) {
      book.raise({
        code: 'sealing_stalled',
        key: 'sealing_stalled',
        message: `${report.unsealed} event(s) in ${this.ledger.info.location} wait unsealed, the oldest since ${oldest}, and the newest checkpoint is ${latest === undefined ? 'none' : `from ${latest.ts}`}: is a recorder with the signing key running (or run \`witness seal\`)?`,
        details: { unsealed: report.unsealed, oldest, checkpoint: latest?.id ?? null },
      });
    } else book.clear('sealing_stalled', `Events in ${this.ledger.info.location} are sealed again (checkpoint ${latest?.id ?? 'none'}, size ${sealed}).`);
  }

  private async checkApprovals(book: AlertBook, now: Date): Promise<void> {
    const views = await listApprovals(this.ledger, { since: new Date(now.getTime() - this.config.approvalWindowMs).toISOString(), now });
    const pending = new Set<string>();
    for (const v of views) {
      const id = v.request.id;
      const what = `${v.request.agent.id}'s call of ${v.tool ?? 'a tool'}${v.rule === undefined ? '' : ` (rule ${v.rule})`}`;
      if (v.status === 'pending') {
        const waited = now.getTime() - Date.parse(v.request.ts);
        if (waited > this.config.approvalPendingMs) {
          pending.add(`approval_pending:${id}`);
          book.raise({
            code: 'approval_pending',
            key: `approval_pending:${id}`,
            message: `Approval request ${id} for ${what} has waited ${Math.round(waited / 60_000)} min for a decision (until ${v.expiresAt}).`,
            details: { request: id },
          });
        }
      } else if (v.status === 'expired') {
        book.raise({
          code: 'approval_expired',
          key: `approval_expired:${id}`,
          message: `Approval request ${id} for ${what} expired at ${v.expiresAt} without a decision that was used.`,
          details: { request: id },
          oneShot: true,
        });
      }
    }
    this.metrics.pendingApprovals = views.filter((v) => v.status === 'pending').length;
    book.clearExcept('approval_pending:', pending, (c) => `Decided or withdrawn: ${c.message}`);
  }
}

function observed(row: VerifyRow): ObservedEvent | undefined {
  let header: { agent?: { id?: unknown }; outcome?: unknown; recorder?: { kind?: unknown }; principal?: { id?: unknown } };
  let data: Record<string, unknown> | null = null;
  try {
    header = JSON.parse(row.header) as typeof header;
    if (row.data !== null) {
      const d: unknown = JSON.parse(row.data);
      if (d !== null && typeof d === 'object' && !Array.isArray(d)) data = d as Record<string, unknown>;
    }
  } catch {
    // A row that does not parse is verification's finding, not a behaviour to judge.
    return undefined;
  }
  const agent = typeof header.agent?.id === 'string' ? header.agent.id : row.agent;
  return {
    pos: row.pos,
    id: row.id,
    stream: row.stream,
    ts: row.ts,
    kind: row.kind,
    agent,
    outcome: typeof header.outcome === 'string' ? header.outcome : undefined,
    data,
    ...(typeof header.recorder?.kind === 'string' ? { recorder: header.recorder.kind } : {}),
    ...(typeof header.principal?.id === 'string' ? { principal: header.principal.id } : {}),
  };
}

const monitorFields = { agent: { id: MONITOR_AGENT }, recorder: { kind: 'cli' as const, id: MONITOR_AGENT, version: RECORDER_VERSION } };

/** The key of an alert about one act of governance: this, then the event's id. */
const GOVERNANCE_KEY = 'governance:';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function flagEvent(f: AnomalyFlag): AppendRequest {
  const input: EventInput = {
    ...monitorFields,
    kind: 'anomaly',
    parent: f.target_event,
    resource: f.agent,
    action: f.rule,
    data: { rule: f.rule, reason: f.reason, agent: f.agent, target_event: f.target_event, ...(f.evidence ?? {}) },
  };
  return { ...input, stream: MONITOR_STREAM };
}

function alertEvent(a: AlertMessage): AppendRequest {
  // The event an alert is about (a recording gap, a failed capture, a halt, an approval request) is
  // its parent, so an export of that agent or session carries the alert (FORMAT.md scope rule).
  const about = [a.details?.['event'], a.details?.['halt'], a.details?.['request']].find((v): v is string => typeof v === 'string' && UUID.test(v));
  const input: EventInput = {
    ...monitorFields,
    ...(about === undefined ? {} : { parent: about }),
    kind: 'alert',
    action: a.status,
    data: { severity: a.severity, message: a.message, code: a.code, status: a.status, key: a.key, since: a.since, alert_id: a.id, ...(a.details === undefined ? {} : { details: a.details }) },
  };
  return { ...input, stream: MONITOR_STREAM };
}
