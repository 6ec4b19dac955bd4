import os from 'node:os';
import { SYSTEM_STREAM_PREFIX, WitnessError, type StoredEvent } from '../../core/index.js';
import { AUDIT_STREAM, ScopeTracker, resolveSpan, type SpanScope } from '../../export/index.js';
import { loadOtlpExport, loadOtlpFollow, type ExportableEvent, type OtlpProtocol } from '../../integrations/index.js';
import { RECORDER_VERSION } from '../../recorder/index.js';
import { maskEvent } from '../../server/index.js';
import { toStored, type Ledger } from '../../store/index.js';
import { type Io, jsonText } from '../output.js';
import { idList, type ScopeFlags } from '../scope-flags.js';
import { openExisting, resolveStore } from '../store-option.js';
import { scopeTime } from './export-siem.js';

/** The flags `witness export --otlp URL` reads. */
export interface OtlpExportFlags extends ScopeFlags {
  otlp: string;
  otlpProtocol?: string;
  otlpHeader?: string[];
  withholdData?: boolean;
  as?: string;
  store?: string;
  sealRecord?: string;
  json?: boolean;
}

/** `--otlp-header K=V` (repeatable) → headers; refuses a pair without a name. */
export function otlpHeaders(pairs: readonly string[] | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const p of pairs ?? []) {
    const i = p.indexOf('=');
    const name = i < 0 ? '' : p.slice(0, i).trim();
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name))
      throw new WitnessError('invalid_argument', `--otlp-header "${p.split('=')[0]}" is not NAME=VALUE; give e.g. --otlp-header authorization="Bearer …".`);
    headers[name] = p.slice(i + 1);
  }
  return headers;
}

const OTLP_PROTOCOLS: readonly OtlpProtocol[] = ['http/protobuf', 'http/json'];

export function otlpProtocol(value: string | undefined): OtlpProtocol {
  const p = value ?? 'http/protobuf';
  if (!(OTLP_PROTOCOLS as readonly string[]).includes(p)) throw new WitnessError('invalid_argument', `--otlp-protocol "${p}" is not supported; use ${OTLP_PROTOCOLS.join(' or ')}.`);
  return p as OtlpProtocol;
}

/**
 * What an OTLP export hands a trace backend, whose readers are developers: an event as the server
 * shows it to the developer role (server/mask.ts: secrets redacted again, personal data masked,
 * salts withheld), and none of Witness's own streams (`witness.*`: API-key records, audit-access
 * records with people's search terms, approvals), which a developer does not read either, unless
 * the export names that stream as a session (`--session witness.keys`).
 */
export const OTLP_EXPORT_ROLE = 'developer';

function exportable(e: StoredEvent, named: readonly string[]): StoredEvent | undefined {
  if (e.stream.startsWith(SYSTEM_STREAM_PREFIX) && !named.includes(e.stream)) return undefined;
  return maskEvent(e);
}

/** The scope's events, a page at a time, as the span mapper reads them. */
async function* scopedEvents(ledger: Ledger, scope: SpanScope, from: number, to: number, withhold: boolean): AsyncIterable<ExportableEvent[]> {
  const tracker = new ScopeTracker(scope);
  for await (const page of ledger.scan(from, 1000)) {
    const out: ExportableEvent[] = [];
    let done = false;
    for (const row of page) {
      if (row.pos >= to) {
        done = true;
        break;
      }
      const stored = toStored(row);
      const e = tracker.inScope(stored) ? exportable(stored, scope.sessions ?? []) : undefined;
      if (e !== undefined) out.push({ ...e, pos: row.pos, ...(withhold ? { data: null } : {}) });
    }
    if (out.length > 0) yield out;
    if (done) return;
  }
}

/**
 * `witness export --otlp URL`: the scope's events sent as spans (src/integrations/otlp-export.ts),
 * recorded as an audit.access event (operation export, format otlp) whether it ends or fails. The
 * record names the endpoint but never the headers: they usually hold a credential.
 */
export async function otlpExportCommand(io: Io, opts: OtlpExportFlags): Promise<void> {
  if (opts.regime !== undefined) throw new WitnessError('invalid_argument', '--regime applies to evidence bundles only; leave it out with --otlp.');
  const protocol = otlpProtocol(opts.otlpProtocol);
  const headers = otlpHeaders(opts.otlpHeader);
  const scope: SpanScope = {
    since: opts.since === undefined ? null : scopeTime(opts.since, '--since'),
    until: opts.until === undefined ? null : scopeTime(opts.until, '--until'),
    agents: idList(opts.agent, '--agent'),
    sessions: idList(opts.session, '--session'),
  };
  if (scope.since !== null && scope.until !== null && scope.since >= scope.until) {
    throw new WitnessError('invalid_argument', `--since ${opts.since} is not before --until ${opts.until}; give a window that is not empty.`);
  }
  const { OtlpExportError, OtlpSender, SpanMapper, sendEvents } = await loadOtlpExport();
  let sender: InstanceType<typeof OtlpSender>;
  try {
    sender = new OtlpSender({ url: opts.otlp, protocol, headers });
  } catch (e) {
    throw new WitnessError('invalid_argument', (e as Error).message);
  }
  const withhold = opts.withholdData === true;
  const actor = opts.as ?? os.userInfo().username;
  const ledger = await openExisting(resolveStore(opts.store), opts.sealRecord === undefined ? {} : { sealRecord: opts.sealRecord });
  const warnings: string[] = [];
  try {
    // Sealed first when this process holds the key, so each span can name a checkpoint covering it.
    if (ledger.canSeal) {
      try {
        await ledger.seal();
      } catch (e) {
        warnings.push(`The ledger could not be sealed, so newer spans carry no witness.checkpoint.size: ${(e as Error).message.replace(/\.$/, '')}.`);
      }
    }
    const cp = await ledger.latestCheckpoint();
    const checkpointSize = cp?.size ?? 0;
    const span = (await resolveSpan(ledger, scope)) ?? null;
    const mapper = new SpanMapper({ origin: ledger.info.origin, checkpointSize, withholdData: withhold });
    let sent = 0;
    let failure: unknown;
    // Spans the endpoint refused for good (a 400, a 413: sendEvents splits their batch to find them): passed over, so the rest still go, and named in the record.
    const skipped: number[] = [];
    let skipReason = '';
    try {
      if (span !== null) {
        await sendEvents(
          scopedEvents(ledger, scope, span.from, span.to, withhold),
          mapper,
          sender,
          (_next, n) => void (sent += n),
          (pos, e) => {
            skipped.push(pos);
            skipReason ||= `HTTP ${e.status}`;
          },
        );
      }
    } catch (e) {
      failure = e;
    } finally {
      await sender.close().catch(() => undefined);
    }
    const [receipt] = await ledger.append([
      {
        stream: AUDIT_STREAM,
        agent: { id: 'witness-cli' },
        principal: { id: actor, kind: 'human' },
        kind: 'audit.access',
        resource: 'otlp-export',
        action: 'export',
        outcome: failure === undefined && skipped.length === 0 ? 'success' : 'error',
        data: {
          actor,
          operation: 'export',
          format: 'otlp',
          protocol,
          endpoint: sender.url,
          scope,
          mode: withhold ? 'withheld' : 'full',
          masked_as: OTLP_EXPORT_ROLE,
          span,
          checkpoint: { size: checkpointSize },
          count: sent,
          complete: failure === undefined && skipped.length === 0,
          ...(skipped.length === 0 ? {} : { skipped }),
        },
      },
    ]);
    if (ledger.canSeal) await ledger.seal().catch(() => undefined);
    if (failure !== undefined) {
      if (failure instanceof OtlpExportError) throw new WitnessError('store_unavailable', failure.message, { cause: failure });
      throw failure;
    }
    if (skipped.length > 0) {
      const leaves = `${skipped.length === 1 ? 'leaf' : 'leaves'} ${skipped.slice(0, 5).join(', ')}${skipped.length > 5 ? ', …' : ''}`;
      throw new WitnessError(
        'store_unavailable',
        `The OTLP endpoint ${sender.url} refused ${skipped.length} ${skipped.length === 1 ? 'span' : 'spans'} for good (${leaves}; ${skipReason}); the other ${sent} were sent, and the export is recorded as incomplete with the leaves it passed over.`,
      );
    }
    const result = { format: 'otlp', protocol, endpoint: sender.url, spans: sent, span, checkpoint: { size: checkpointSize }, accessEvent: receipt?.id, warnings };
    if (opts.json) return io.out(jsonText(result));
    for (const w of warnings) io.err(`witness: ${w}`);
    const range = span === null ? 'no event in scope' : `leaves ${span.from}–${span.to - 1}`;
    io.out(
      `Exported ${sent} event(s) as OpenTelemetry spans to ${sender.url} (${protocol}, ${range}${withhold ? ', payloads withheld' : ''}); each span checks back against the ledger by its witness.ledger.position and witness.event.hash (README "OpenTelemetry export").`,
    );
  } finally {
    await ledger.close();
  }
}

/** `witness serve --otlp-export URL`'s flags. */
export interface ServeOtlpFlags {
  otlpExport?: string;
  otlpExportProtocol?: string;
  otlpExportHeader?: string[];
  otlpExportState?: string;
  otlpExportInterval: string;
}

export interface ServeOtlpSetup {
  url: string;
  protocol: OtlpProtocol;
  headers: Record<string, string>;
  stateFile: string;
  intervalMs: number;
}

/** Read before the server starts: a bad flag stops the start in one sentence. */
export async function otlpExportSetup(opts: ServeOtlpFlags, store: string): Promise<ServeOtlpSetup> {
  const { parseDuration } = await import('./proxy.js');
  const { parseStoreUrl } = await import('../../store/index.js');
  const loc = parseStoreUrl(store);
  const stateFile = opts.otlpExportState ?? (loc.driver === 'sqlite' ? `${loc.path}.otlp-export.json` : undefined);
  if (stateFile === undefined) throw new WitnessError('invalid_argument', 'A PostgreSQL ledger has no directory to keep the OTLP export position beside; give --otlp-export-state FILE.');
  const { tracesUrl } = await loadOtlpExport();
  let url: string;
  try {
    url = tracesUrl(opts.otlpExport!);
  } catch (e) {
    throw new WitnessError('invalid_argument', `--otlp-export: ${(e as Error).message}`);
  }
  return { url, protocol: otlpProtocol(opts.otlpExportProtocol), headers: otlpHeaders(opts.otlpExportHeader), stateFile, intervalMs: parseDuration(opts.otlpExportInterval, '--otlp-export-interval') };
}

/** An `audit.access` record of the continuous export, in the stream the server records reads in; never the headers, which usually hold a credential. */
async function recordServeExport(ledger: Ledger, setup: ServeOtlpSetup, outcome: 'success' | 'error', detail: Record<string, unknown>): Promise<void> {
  await ledger.append([
    {
      stream: AUDIT_STREAM,
      agent: { id: 'witness-server' },
      recorder: { kind: 'server', version: RECORDER_VERSION },
      kind: 'audit.access',
      resource: 'otlp-export',
      action: 'export',
      outcome,
      data: { actor: 'witness serve --otlp-export', operation: 'export', format: 'otlp', protocol: setup.protocol, endpoint: setup.url, mode: 'continuous', masked_as: OTLP_EXPORT_ROLE, ...detail },
    },
  ]);
}

/**
 * Starts following `ledger`; each failed pass is one line on standard error and is retried from the
 * saved position. Events go out as `exportable` makes them (masked as for a developer, no `witness.*`
 * stream). The start is recorded as `audit.access` (operation export, mode continuous, the endpoint
 * and the first leaf); a span the backend refuses for good is recorded the same way with outcome
 * error, `skipped: {from, to}` and the reason, before the export moves past it.
 */
export async function startOtlpExport(setup: ServeOtlpSetup, ledger: Ledger, io: Io): Promise<{ stop(): Promise<void> }> {
  const { OtlpFollower } = await loadOtlpFollow();
  let failing = false;
  let follower: InstanceType<typeof OtlpFollower>;
  try {
    follower = new OtlpFollower(
      {
        origin: ledger.info.origin,
        read: async function* (from: number) {
          for await (const page of ledger.scan(from, 500)) {
            const out: ExportableEvent[] = [];
            for (const row of page) {
              const e = exportable(toStored(row), []);
              if (e !== undefined) out.push({ ...e, pos: row.pos });
            }
            if (out.length > 0) yield out;
          }
        },
        checkpointSize: async () => (await ledger.latestCheckpoint())?.size ?? 0,
      },
      {
        ...setup,
        onSent: () => {
          if (failing) io.err(`witness serve: OTLP export to ${setup.url} resumed.`);
          failing = false;
        },
        onError: (message) => {
          // Once per outage, not once per pass: the position is kept and every pass retries.
          if (!failing) io.err(`witness serve: ${message.replace(/(, then export again)?\.$/, '; the export retries from where it stopped.')}`);
          failing = true;
        },
        onSkipped: async (from, to, error) => {
          await recordServeExport(ledger, setup, 'error', { skipped: { from, to }, reason: error.message, complete: false });
          io.err(`witness serve: the OTLP endpoint refused leaf ${from} for good (${error.message.replace(/\.$/, '')}); recorded as a gap in ${AUDIT_STREAM}, the export goes on.`);
        },
      },
    );
  } catch (e) {
    throw new WitnessError('invalid_argument', (e as Error).message, { cause: e });
  }
  await recordServeExport(ledger, setup, 'success', { from_leaf: follower.position, system_streams: false });
  io.err(
    `witness serve: exporting events as OpenTelemetry spans to ${setup.url} (${setup.protocol}) from leaf ${follower.position}, masked as for the ${OTLP_EXPORT_ROLE} role and without Witness's own streams; position in ${setup.stateFile}.`,
  );
  follower.start();
  return follower;
}
