import os from 'node:os';
import {
  AGENT_REFUSED_FIELDS,
  AGENT_REFUSED_KINDS,
  SYSTEM_STREAM_PREFIX,
  WitnessError,
  canonicalize,
  isSystemStreamName,
  isWitnessError,
  toJsonValue,
  type ArtifactRef,
  type EventInput,
  type EventKind,
  type PreparedEvent,
} from '../core/index.js';
import { DEFAULT_STORE, openLedger, type AppendReceipt, type AppendRequest, type Ledger, type LedgerReader } from '../store/index.js';
import { parseOptions, type ParsedWitnessOptions, type WitnessOptionsInput } from './options.js';
import { NOT_PLAIN, Redactor } from './redact.js';
import { Session, type SessionHost, type SessionInit, type ToolCapturer } from './session.js';
import { BatchWriter } from './writer.js';

export const RECORDER_VERSION = '0.1.0';

/** The recorders Witness's own writers stamp: the CLI, the gateway, the HTTP server. */
export type SystemRecorderKind = 'cli' | 'gateway' | 'server';

/**
 * The write path of Witness's own writers (the CLI's halt, resume, approvals and video, the
 * gateway, the server): what the SDK refuses (system streams, what a person or Witness itself
 * did) is written here, stamped with the writer's recorder kind unless the event names its own.
 * The package entry (src/index.ts) does not export `systemWriter`, so an agent holding the SDK
 * gets the refusing `Witness.record` only. That is an API boundary, not a security one: code
 * running in the agent's process can reach anything the process can (the ledger file itself), so
 * readers still believe a governance record only by core's `isGovernanceRecord`.
 */
export interface SystemWriter {
  readonly as: SystemRecorderKind;
  /** As `Witness.record`, without the SDK's refusals. */
  record(stream: string, input: EventInput): Promise<AppendReceipt | undefined>;
  /** As `Witness.recordStrict`, without the SDK's refusals. */
  recordStrict(stream: string, input: EventInput): Promise<AppendReceipt>;
  /** A session whose records go through this writer (the gateway's sessions, with its policy decisions and approval requests). */
  session(init: SessionInit): Promise<Session>;
}

/** Who a record is written as (see Witness.write). */
type Stamp = SystemRecorderKind | 'sdk' | undefined;

let grantSystem: (witness: Witness, as: SystemRecorderKind) => SystemWriter;
let grantLedger: (witness: Witness) => Ledger;

/**
 * The recorder's own driver, for tests that look at what it wrote or break it on purpose.
 * Internal: not exported from the package entry, like `systemWriter`.
 */
export function ledgerOf(witness: Witness): Ledger {
  return grantLedger(witness);
}

/** The write path of Witness's own writers on `witness` (see SystemWriter). Internal: not exported from the package entry. */
export function systemWriter(witness: Witness, as: SystemRecorderKind): SystemWriter {
  return grantSystem(witness, as);
}

/** What to use instead, per refused kind: the SDK's refusal names it. */
const INSTEAD: Partial<Record<EventKind, string>> = {
  'human.halt': "`witness halt` (or the server's halt API)",
  'human.resume': "`witness resume` (or the server's resume API)",
  'approval.decision': '`witness approve` / `witness deny`',
  'approval.request': 'the gateway (`witness proxy` or `witness gateway`), which holds the call',
  'policy.decision': 'the gateway (`witness proxy` or `witness gateway`), which evaluates the policy',
  'key.rotated': '`witness keys rotate`',
  'retention.purge': '`witness retention run`',
  'hold.placed': '`witness hold place`',
  'hold.released': '`witness hold release`',
  alert: '`witness monitor`',
  anomaly: '`witness monitor`',
};

/**
 * Why the SDK refuses to record `head` into `stream`, or undefined: a system stream, a kind that
 * records what a person or Witness did (core's AGENT_REFUSED_KINDS, as the server refuses them to
 * agent keys), a header field that states what a person or the gateway did (core's
 * AGENT_REFUSED_FIELDS, refused to agent keys too), or a recorder claim other than the SDK's own.
 * `head` is the recorder's own plain copy of the caller's header (see snapshot): what is checked
 * here is what is written, whatever accessors the caller's object had.
 */
function sdkRefusal(stream: string, head: Readonly<Record<string, unknown>>): WitnessError | undefined {
  const kind = head['kind'];
  if (typeof kind === 'string' && AGENT_REFUSED_KINDS.has(kind as EventKind)) {
    const instead = INSTEAD[kind as EventKind] ?? "Witness's own commands";
    return new WitnessError('forbidden', `The SDK does not record ${kind}, which records what a person or Witness itself did; use ${instead} for that.`, {
      details: { path: 'kind', kind, stream },
    });
  }
  if (typeof stream === 'string' && isSystemStreamName(stream)) {
    return new WitnessError(
      'forbidden',
      `Stream ${JSON.stringify(stream)} is reserved for Witness's own records (names starting with "${SYSTEM_STREAM_PREFIX}"), which the SDK does not write; record under a session id of your own.`,
      { details: { path: 'stream', stream } },
    );
  }
  const recorder = head['recorder'];
  const claimed = typeof recorder === 'object' && recorder !== null ? (recorder as { kind?: unknown }).kind : undefined;
  if (claimed !== undefined && claimed !== 'sdk') {
    return new WitnessError('forbidden', `The SDK records as recorder kind "sdk", not ${JSON.stringify(claimed)}; leave recorder.kind out.`, { details: { path: 'recorder.kind', stream } });
  }
  for (const field of AGENT_REFUSED_FIELDS) {
    if (head[field] !== undefined) {
      return new WitnessError('forbidden', `The SDK does not record ${field}, which states what a person or the Witness gateway did; leave it out and put the agent's own account in data.`, {
        details: { path: field, stream },
      });
    }
  }
  return undefined;
}

/** A caller's event, read once: its header as plain JSON, and its payload as given. */
interface Snapshot {
  head: Record<string, unknown>;
  data: unknown;
}

/**
 * Reads the caller's event once, before anything is checked: each member of the header, and of the
 * recorder claim inside it, is read once into a copy of the recorder's own (accessors and proxies
 * answer once), and that copy is both what sdkRefusal checks and what prepare writes. An accessor
 * that answered `note` to the check and `approval.request` to the writer recorded what was never
 * checked. Not a full toJSON walk of the header (core's toJsonValue): that costs ~3.5 µs a record
 * (Node 20, a tool call's header), while what the refusals read is the top level and recorder.kind;
 * the nested header values are validated and copied once more by the ledger's prepare.
 */
function snapshot(input: unknown): Snapshot {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new WitnessError('invalid_event', 'Invalid event: an event must be an object with agent, kind and data; pass one.', { details: { path: '(root)' } });
  }
  const { data, ...head } = input as Record<string, unknown>;
  const recorder = head['recorder'];
  if (typeof recorder === 'object' && recorder !== null) head['recorder'] = { ...recorder };
  return { head, data };
}

/**
 * Opens (creating when missing) a ledger and returns the recorder. The only call that may throw:
 * bad options or an unusable store are reported here, once, in one sentence.
 */
export async function openWitness(options: WitnessOptionsInput = {}): Promise<Witness> {
  const parsed = parseOptions(options);
  const url = parsed.store ?? process.env['WITNESS_STORE'] ?? DEFAULT_STORE;
  const ledger = await openLedger(url, {
    durability: parsed.durability,
    maxPayloadBytes: parsed.maxPayloadBytes,
    busyTimeoutMs: parsed.busyTimeoutMs,
    ...(parsed.name === undefined ? {} : { name: parsed.name }),
    ...(parsed.sealRecord === undefined ? {} : { sealRecord: parsed.sealRecord }),
  });
  return new Witness(ledger, parsed);
}

export class Witness implements SessionHost {
  static {
    grantLedger = (w) => w.#ledger;
    grantSystem = (w, as) => {
      const host: SessionHost = {
        record: (stream, input) => w.#write(stream, input, as),
        storeOutput: (kind, value) => w.storeOutput(kind, value),
        storeArtifact: (bytes, mime, role) => w.storeArtifact(bytes, mime, role),
        get capturer() {
          return w.capturer;
        },
        sessionEnded: () => w.sessionEnded(),
        now: () => w.now(),
      };
      return Object.freeze({
        as,
        record: (stream: string, input: EventInput) => w.#write(stream, input, as),
        recordStrict: (stream: string, input: EventInput) => w.#writeStrict(stream, input, as),
        session: (init: SessionInit) => w.startSession(host, init),
      });
    };
  }

  /**
   * Not handed out: whoever holds the ledger (or the writer, which holds it) could seal, close or
   * write around the recorder's redaction, batching and refusals. ECMAScript private, not TS
   * `private`: the SDK runs in the agent's process, where TS modifiers do nothing, and the cheap
   * route (`w.ledger.append(…)`) must not be one. Readers get `reader`; tests reach the driver on
   * purpose through `ledgerOf`, which the package entry does not export.
   */
  readonly #ledger: Ledger;
  readonly #writer: BatchWriter;
  private readonly redactor: Redactor;
  private readonly onError: (e: WitnessError) => void;
  private readonly source = { host: os.hostname(), process: String(process.pid) };
  private readonly recorder = { kind: 'sdk' as const, version: RECORDER_VERSION };
  /** `env` and `tenant` from the options, which every event gets unless it names its own; undefined when neither is set. */
  private readonly deployment: Readonly<{ env?: string; tenant?: string }> | undefined;
  private sinceSeal = 0;
  private lastSealAt = Date.now();
  private sealing: Promise<void> | undefined;
  /** The last seal failure reported (code and message), so a repeating one is reported once. */
  private sealFault: string | undefined;
  private readonly timers: NodeJS.Timeout[] = [];
  private closed = false;
  /** close() has begun: no periodic seal starts any more (close seals what is left itself). */
  private closing = false;
  private warnedNoKey = false;

  constructor(
    ledger: Ledger,
    private readonly options: ParsedWitnessOptions,
  ) {
    this.#ledger = ledger;
    // Methods bound one by one, so nothing but these (and watch) is reachable from the reader; `info` is a
    // fresh frozen copy on every read, since the driver's own object is live (its size grows) and an
    // origin changed through it would make the driver chain and sign under the wrong origin.
    this.readOnly = Object.freeze({
      get info() {
        return Object.freeze({ ...ledger.info });
      },
      getEvent: (id: string) => ledger.getEvent(id),
      readStream: (stream: string) => ledger.readStream(stream),
      query: (filter: Parameters<LedgerReader['query']>[0]) => ledger.query(filter),
      readArtifact: (sha256: string) => ledger.readArtifact(sha256),
      // Only when the driver can announce commits (PostgreSQL): the approval desk listens for decisions.
      ...(ledger.watch === undefined ? {} : { watch: ledger.watch.bind(ledger) }),
    });
    this.deployment =
      options.env === undefined && options.tenant === undefined
        ? undefined
        : { ...(options.env === undefined ? {} : { env: options.env }), ...(options.tenant === undefined ? {} : { tenant: options.tenant }) };
    this.onError = options.onError ?? (() => undefined);
    this.redactor = new Redactor(options.redact);
    this.#writer = new BatchWriter(ledger, {
      maxBatch: options.maxBatch,
      maxQueue: options.maxQueue,
      retryForMs: options.retryForMs,
      // Quick commits (BatchWriter.quickAllowed) save an awaited write ~2 µs of its ~45 at
      // durability process, but are off: the faster loop makes a kill -9 land more often between
      // the sealer's first checkpoint commit and its first seal record, after which every later
      // seal is refused (test/recorder/durability.test.ts [R-DURABLE] failed 6 of 9 runs with
      // them, 2 of 11 without; that window is now closed by the sealer's pending note,
      // test/store/seal-crash.test.ts, so they can be turned on once (b) throughput is re-measured
      // with them and test/recorder/writer-batching.test.ts is changed to match). At `power` they would stay off
      // regardless: next to an fsync per commit (~0.3 ms) the turn saved is nothing, and writes
      // from separate callbacks sharing one fsync is what group commit is for.
      quickForMs: 0,
      onError: (e) => this.writeFailed(e),
      onCommit: (r) => this.committed(r),
    });
    if (options.seal.enabled) {
      const tick = setInterval(() => this.maybeSeal(), Math.min(options.seal.everyMs, options.seal.heartbeatMs));
      tick.unref();
      this.timers.push(tick);
    }
  }

  /** The ledger, for reading only (the gateway's approval desk, evidence, approvals): no write, seal or close. */
  get reader(): LedgerReader {
    return this.readOnly;
  }

  /** Built once: the approval desk reads through it on every held call. */
  private readonly readOnly: LedgerReader;

  /** Starts a session: records session.start and resolves once it is durable. */
  async session(init: SessionInit): Promise<Session> {
    return this.startSession(this, init);
  }

  private async startSession(host: SessionHost, init: SessionInit): Promise<Session> {
    const s = new Session(host, init);
    await s.record('session.start', {
      clock: { source: 'system' },
      ...(init.purpose === undefined ? {} : { purpose: init.purpose }),
      ...(init.labels === undefined ? {} : { labels: init.labels }),
    });
    return s;
  }

  // ---------------------------------------------------------------- SessionHost

  /**
   * Records one event through the batching writer. An agent's SDK may not write Witness's own
   * streams (`witness.*`), the kinds that record what a person or Witness did (a halt, a resume,
   * an approval, a hold, a key rotation: core's AGENT_REFUSED_KINDS) or another recorder's name:
   * refused with `forbidden` (thrown when strict, else reported to onError and, in the agent's own
   * session, recorded there as an error).
   */
  async record(stream: string, input: EventInput): Promise<AppendReceipt | undefined> {
    return this.#write(stream, input, undefined);
  }

  /**
   * `as`: the system writer's recorder kind; `sdk`: the recorder's own records (a recording gap),
   * stamped as the SDK's; neither refused. Undefined: the SDK's public path, refused as above.
   */
  async #write(stream: string, input: EventInput, as: Stamp): Promise<AppendReceipt | undefined> {
    if (this.closed) {
      return this.fault(new WitnessError('closed', 'The recorder is closed; call openWitness again before recording.'));
    }
    let prepared: PreparedEvent;
    let event: Snapshot | undefined;
    try {
      event = snapshot(input);
      if (as === undefined) {
        const refused = sdkRefusal(stream, event.head);
        if (refused !== undefined) throw refused;
      }
      prepared = this.#prepare(stream, event, as);
    } catch (e) {
      const err = isWitnessError(e) ? e : new WitnessError('invalid_event', `Invalid event: ${String(e)}.`, { cause: e });
      if (this.options.strict) throw err;
      this.report(err);
      // The rejected record leaves a visible gap rather than none at all (never in a system
      // stream the SDK may not write), told from the copy that was checked, never read again.
      const kind = event?.head['kind'];
      if (kind !== 'error' && (as !== undefined || !isSystemStreamName(stream))) {
        void this.record(stream, {
          agent: event?.head['agent'] as EventInput['agent'],
          kind: 'error',
          outcome: 'error',
          data: { message: `A ${String(kind)} record was rejected: ${err.message}`, code: err.code, source: 'recorder' },
        });
      }
      return undefined;
    }
    return this.#writer.write(prepared);
  }

  /**
   * Records one event outside the batching writer and throws its fault instead of reporting it:
   * for a person's act at the command line (an approval), where "not recorded" must be said.
   */
  async recordStrict(stream: string, input: EventInput): Promise<AppendReceipt> {
    return this.#writeStrict(stream, input, undefined);
  }

  async #writeStrict(stream: string, input: EventInput, as: Stamp): Promise<AppendReceipt> {
    if (this.closed) throw new WitnessError('closed', 'The recorder is closed; call openWitness again before recording.');
    const event = snapshot(input);
    if (as === undefined) {
      const refused = sdkRefusal(stream, event.head);
      if (refused !== undefined) throw refused;
    }
    const prepared = this.#prepare(stream, event, as);
    await this.#writer.drain();
    const [receipt] = await this.#ledger.appendPrepared([prepared]);
    this.committed([receipt!]);
    return receipt!;
  }

  #prepare(stream: string, event: Snapshot, as: Stamp): PreparedEvent {
    // Plain JSON first (toJSON applied, cycles named at their real path), then redaction, so a URL
    // or a class instance whose toJSON() carries a secret is redacted like any other string; data
    // that is plain JSON already is redacted in the same walk (redactPlainJson says why that is
    // the same). Header strings are hashed too and are all a withheld export shows: a URL with a
    // token in `resource`, or a reason an approver typed, must not slip through because it is not
    // in `data`. The header object is built here, so it is redacted in place, not copied again.
    let data = this.redactor.redactPlainJson(event.data);
    if (data === NOT_PLAIN) data = this.redactor.redact(toJsonValue(event.data, { path: 'data' }));
    // Members first, then the spreads: V8 (Node 20) is slow to add members to a literal that opens
    // with a spread (a clone of that object); a prepared context spread first cost ~5 µs here.
    const recorder = as === undefined || as === 'sdk' ? this.recorder : { kind: as, version: RECORDER_VERSION };
    const header: Record<string, unknown> =
      this.deployment === undefined ? { recorder, source: this.source, ...event.head, data, stream } : { recorder, source: this.source, ...this.deployment, ...event.head, data, stream };
    return this.#ledger.prepare([this.redactor.redactOwnHeader(header) as AppendRequest])[0]!;
  }

  /**
   * `value` as `record` would store it inside `data`: plain JSON, then redacted. The gateway digests
   * a call's arguments in this form, so an approval binds what the ledger shows, never a secret.
   */
  redactData(value: unknown): unknown {
    return this.redactor.redact(toJsonValue(value, { path: 'data' }));
  }

  /** Large outputs go to the artifact store and are referenced by digest, never truncated. */
  async storeOutput(kind: EventKind, value: unknown): Promise<{ value: unknown; artifact?: ArtifactRef }> {
    if (value === undefined) return { value: undefined };
    let plain: unknown;
    let bytes: number;
    try {
      plain = this.redactor.redact(toJsonValue(value, { path: 'data.output' }));
      // JCS writes strings and numbers as JSON.stringify does and only orders members, so the
      // native stringify has the canonical byte length: an output that stays inline is
      // canonicalized once, by prepare, instead of twice.
      const json = JSON.stringify(plain);
      bytes = json.length * 3 <= this.options.spillBytes ? json.length : Buffer.byteLength(json);
    } catch {
      // Let validation name the problem on the real record.
      return { value };
    }
    if (bytes <= this.options.spillBytes) return { value };
    let text: string;
    try {
      text = canonicalize(plain);
    } catch {
      return { value };
    }
    try {
      const artifact = await this.#ledger.putArtifact(Buffer.from(text), 'application/json', `${kind}.output`);
      return { value: { $artifact: artifact.sha256, bytes: artifact.bytes, mime: artifact.mime }, artifact };
    } catch (e) {
      this.report(isWitnessError(e) ? e : new WitnessError('store_unavailable', `Could not store a large output: ${String(e)}.`, { cause: e }));
      return { value: { $omitted: 'the output was too large to record inline and could not be stored as an artifact', bytes: Buffer.byteLength(text) } };
    }
  }

  /** Stores bytes in the content-addressed artifact store (screenshots, videos). */
  async storeArtifact(bytes: Uint8Array, mime: string, role?: string): Promise<ArtifactRef> {
    return this.#ledger.putArtifact(bytes, mime, role);
  }

  get capturer(): ToolCapturer | undefined {
    return this.options.capturer;
  }

  async sessionEnded(): Promise<void> {
    if (this.options.seal.enabled) await this.sealNow(false);
  }

  now(): number {
    return performance.now();
  }

  // ---------------------------------------------------------------- sealing

  /** Events lost to a store outage, per stream, to be recorded as a gap once writes work again. */
  private readonly gaps = new Map<string, { agent: string; count: number; from: string; to: string; code: string }>();

  private writeFailed(e: WitnessError): void {
    this.report(e);
    // Events the store lost (an outage, or a fault it has no case for), not events that were refused.
    if (e.code !== 'store_unavailable' && e.code !== 'store_locked' && e.code !== 'store_fault') return;
    const lost = (e.details?.['lost'] ?? []) as Array<{ stream: string; agent: string; ts: string }>;
    for (const l of lost) {
      const g = this.gaps.get(l.stream);
      if (g === undefined) this.gaps.set(l.stream, { agent: l.agent, count: 1, from: l.ts, to: l.ts, code: e.code });
      else {
        g.count++;
        if (l.ts < g.from) g.from = l.ts;
        if (l.ts > g.to) g.to = l.ts;
      }
    }
  }

  /** An outage leaves no trace in the chains (lost events never got a seq), so say so in each. */
  private recordGaps(): void {
    for (const [stream, g] of this.gaps) {
      this.gaps.delete(stream);
      // The gap may be in a system stream (the gateway's): the recorder's own account of its outage.
      void this.#write(
        stream,
        {
          agent: { id: g.agent },
          kind: 'error',
          outcome: 'error',
          data: {
            message: `${g.count} event(s) of this session between ${g.from} and ${g.to} could not be recorded (${g.code}) and are missing from the ledger.`,
            code: 'recording_gap',
            source: 'recorder',
          },
        },
        'sdk',
      );
    }
  }

  private committed(receipts: readonly AppendReceipt[]): void {
    if (this.gaps.size > 0 && receipts.length > 0) this.recordGaps();
    this.sinceSeal += receipts.length;
    if (this.options.seal.enabled && this.sinceSeal >= this.options.seal.everyEvents) setImmediate(() => this.maybeSeal());
  }

  private maybeSeal(): void {
    // A commit's setImmediate or the timer can fire while close() runs: close seals once itself.
    // While a seal runs (on the sealer thread) every commit would ask for another, all queued
    // behind it and each finding next to nothing: the first commit after it asks again if due.
    if (this.closing || this.sealing !== undefined) return;
    const elapsed = Date.now() - this.lastSealAt;
    const due = this.sinceSeal >= this.options.seal.everyEvents || (this.sinceSeal > 0 && elapsed >= this.options.seal.everyMs) || elapsed >= this.options.seal.heartbeatMs;
    if (due) void this.sealNow(elapsed >= this.options.seal.heartbeatMs);
  }

  /** Writes a checkpoint now (also the hourly heartbeat when `force`). Never throws. */
  async sealNow(force = false): Promise<void> {
    if (!this.#ledger.canSeal) {
      if (!this.warnedNoKey) {
        this.warnedNoKey = true;
        this.report(new WitnessError('invalid_key', `No signing key for ${this.#ledger.info.location}; events are chained but no checkpoint is signed until \`witness seal\` runs with the key.`));
      }
      return;
    }
    while (this.sealing !== undefined) await this.sealing;
    let sealed = false;
    const run = (async () => {
      await this.#writer.drain();
      const before = this.sinceSeal;
      try {
        await this.#ledger.seal({ force });
        this.sinceSeal = Math.max(0, this.sinceSeal - before);
        this.lastSealAt = Date.now();
        this.sealFault = undefined;
        sealed = true;
      } catch (e) {
        const err = isWitnessError(e) ? e : new WitnessError('store_unavailable', `Sealing failed: ${String(e)}.`, { cause: e });
        // A refused seal (the ledger no longer extends what this key signed) is retried every
        // interval and fails the same way each time: report it once, not every 10 s.
        const key = `${err.code}\n${err.message}`;
        if (this.sealFault !== key) this.report(err);
        this.sealFault = key;
      }
    })();
    this.sealing = run;
    try {
      await run;
    } finally {
      this.sealing = undefined;
    }
    // Events that arrived during the seal may already be due (maybeSeal skipped them while it ran).
    // Only after a success: a failing seal is retried on the timer, not back to back.
    if (sealed && !this.closing && this.options.seal.enabled) setImmediate(() => this.maybeSeal());
  }

  // ---------------------------------------------------------------- life cycle

  /** Resolves when every accepted event is durable. */
  async flush(): Promise<void> {
    await this.#writer.drain();
  }

  /** Flushes, seals what is unsealed, and closes the ledger. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closing = true;
    await this.#writer.drain();
    // A periodic seal may still be on its way (on the sealer thread): let it finish before the
    // ledger closes under it, or it fails with "ledger is closed" (what broke the off-thread sealer
    // reverted at bbcbecd); sealNow waits for it before sealing what is left.
    if (this.options.seal.enabled && this.sinceSeal > 0) await this.sealNow(false);
    while (this.sealing !== undefined) await this.sealing;
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    await this.#ledger.close();
  }

  private report(e: WitnessError): void {
    try {
      this.onError(e);
    } catch {
      // An onError hook that throws must not take the agent down with it.
    }
  }

  private fault(e: WitnessError): undefined {
    if (this.options.strict) throw e;
    this.report(e);
    return undefined;
  }
}
