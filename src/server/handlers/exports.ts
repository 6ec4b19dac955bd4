import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { WitnessError, isWitnessError } from '../../core/index.js';
import { exportSession, type ExportOptions } from '../../export/index.js';
import type { RouteContext } from '../context.js';
import { errorResponse } from '../errors.js';

/** Exports running at once: each reads a session and copies its artifacts, so a few are plenty. */
export const MAX_RUNNING_EXPORTS = 2;
/**
 * How long a finished export (its status and its zip) stays on the server: a day to download it.
 * A bundle holds a whole session unmasked, so it must not outlive its need on the server's disk;
 * whoever needs it later starts a new export, which is recorded again.
 */
export const EXPORT_TTL_MS = 24 * 3_600_000;

export interface ExportJob {
  id: string;
  session: string;
  withheld: boolean;
  status: 'running' | 'done' | 'failed';
  started_at: string;
  /** Who started it: the key's name and id, as the access record names them. */
  started_by: string;
  finished_at?: string;
  /** The session's events (with its approvals and video): the bundle's in-scope events. */
  events?: number;
  /** The leaves the bundle covers (events of other sessions in between are there as headers only). */
  span?: { from: number; to: number };
  artifacts?: number;
  bytes?: number;
  signed_by?: string[];
  warnings?: string[];
  error?: { code: string; message: string };
}

/**
 * Evidence exports started over the API (`POST /v1/exports`), run in the background into
 * `<dir>/<id>.zip`: the directory is the server's own (`witness-exports` under its working
 * directory), never a path from the request. Jobs are kept in this process's memory, so their
 * status is lost when the server restarts; each export stays recorded in the ledger. A finished
 * job and its zip are deleted EXPORT_TTL_MS after it finished: checked on every export request,
 * and by a timer (unref'd, so it never keeps the process alive) in case none comes.
 */
export class ExportRunner {
  private readonly jobs = new Map<string, ExportJob>();
  private running = 0;

  constructor(
    readonly dir: string,
    private readonly onError?: (e: unknown) => void,
    /** Writes report.html into each bundle (createServer's renderReport); without it the bundle has none. */
    private readonly renderReport?: ExportOptions['renderReport'],
  ) {}

  /** POST /v1/exports: checks the session is there, records the export as `audit.access`, then starts it. */
  async start(ctx: RouteContext<unknown, unknown, { session: string; withhold_data?: boolean }>): Promise<Response> {
    this.expire();
    const { session } = ctx.body;
    const withheld = ctx.body.withhold_data === true;
    if ((await ctx.ledger.query({ stream: session, limit: 1 })).events.length === 0) {
      return errorResponse(ctx.c, 'not_found', `No session ${session} in the ledger; find its id with GET /v1/sessions.`);
    }
    if (this.running >= MAX_RUNNING_EXPORTS) {
      return errorResponse(ctx.c, 'conflict', `${this.running} exports are running already; wait until one is done (GET /v1/exports/:id) and start this one again.`);
    }
    const id = randomUUID();
    // The slot is taken before the first await, so simultaneous requests cannot all pass the check.
    this.running++;
    try {
      // Recorded before anything is written: an export whose record cannot be kept is refused.
      await ctx.recordAccess({ resource: session });
    } catch (e) {
      this.running--;
      throw e;
    }
    const caller = ctx.caller!;
    const job: ExportJob = {
      id,
      session,
      withheld,
      status: 'running',
      started_at: new Date().toISOString(),
      started_by: caller.name === undefined ? `key:${caller.keyId}` : `${caller.name} (key:${caller.keyId})`,
    };
    this.jobs.set(id, job);
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const ledger = ctx.ledger;
    // The export's own audit.access event (what the bundle holds, signed into the tree) names the
    // person behind the key, recorded by the server under the key's id.
    void exportSession(ledger, session, this.file(id), {
      withholdData: withheld,
      actor: job.started_by,
      identity: { agent: { id: 'witness-server', credential: caller.keyId }, recorder: { kind: 'server' } },
      ...(this.renderReport === undefined ? {} : { renderReport: this.renderReport }),
    })
      .then((r) => {
        Object.assign(job, {
          status: 'done',
          events: r.inScope,
          span: r.span,
          artifacts: r.artifacts,
          bytes: fs.statSync(this.file(id)).size,
          signed_by: r.signedBy,
          warnings: r.warnings,
        } satisfies Partial<ExportJob>);
      })
      .catch((e: unknown) => {
        job.status = 'failed';
        job.error = isWitnessError(e) ? { code: e.code, message: e.message } : { code: 'internal', message: 'The export failed on a fault in Witness; the server log has the details.' };
        if (!isWitnessError(e)) this.onError?.(e);
      })
      .finally(() => {
        job.finished_at = new Date().toISOString();
        this.running--;
        setTimeout(() => this.expire(), EXPORT_TTL_MS + 1_000).unref();
      });
    return ctx.c.json(this.doc(job), 202, { Location: `/v1/exports/${id}` });
  }

  /** GET /v1/exports/:id: recorded as audit.access, since it says which session was exported, by whom, and its size. */
  async status(ctx: RouteContext<{ id: string }>): Promise<Response> {
    this.expire();
    const job = this.jobs.get(ctx.params.id);
    if (job === undefined) return notFound(ctx);
    await ctx.recordAccess({ resource: job.session });
    return ctx.c.json(this.doc(job));
  }

  /** GET /v1/exports/:id/bundle.zip: the bundle streamed from disk as an attachment, each download recorded. */
  async download(ctx: RouteContext<{ id: string }>): Promise<Response> {
    this.expire();
    const job = this.jobs.get(ctx.params.id);
    if (job === undefined) return notFound(ctx);
    if (job.status === 'running') return errorResponse(ctx.c, 'conflict', `Export ${job.id} is still running; poll GET /v1/exports/${job.id} until its status is done.`);
    if (job.status === 'failed') return errorResponse(ctx.c, 'conflict', `Export ${job.id} failed (${job.error?.message ?? 'no reason'}); start a new one.`);
    let fd: fs.promises.FileHandle;
    try {
      fd = await fs.promises.open(this.file(job.id), 'r');
    } catch (e) {
      throw new WitnessError('not_found', `The bundle of export ${job.id} is no longer on the server; start a new export.`, { cause: e });
    }
    const size = (await fd.stat()).size;
    try {
      await ctx.recordAccess({ resource: job.session, count: size });
    } catch (e) {
      await fd.close();
      throw e;
    }
    const body = Readable.toWeb(fd.createReadStream({ highWaterMark: 1 << 20 })) as ReadableStream<Uint8Array>;
    return new Response(body, {
      status: 200,
      headers: {
        'Content-Type': 'application/zip',
        'Content-Length': String(size),
        'Content-Disposition': `attachment; filename="witness-export-${job.id}.zip"`,
        'X-Content-Type-Options': 'nosniff',
        'Content-Security-Policy': "default-src 'none'; sandbox",
        'Cache-Control': 'private, no-store',
      },
    });
  }

  /** Forgets finished jobs older than EXPORT_TTL_MS and deletes their zips (a running one is never touched). */
  private expire(now = Date.now()): void {
    for (const [id, job] of this.jobs) {
      if (job.finished_at === undefined || now - Date.parse(job.finished_at) <= EXPORT_TTL_MS) continue;
      this.jobs.delete(id);
      try {
        fs.rmSync(this.file(id), { force: true });
      } catch (e) {
        // A zip that cannot be deleted is the operator's to know about; the job is forgotten anyway.
        this.onError?.(e);
      }
    }
  }

  private file(id: string): string {
    return path.join(this.dir, `${id}.zip`);
  }

  private doc(job: ExportJob): ExportJob & { bundle?: string } {
    return job.status === 'done' ? { ...job, bundle: `/v1/exports/${job.id}/bundle.zip` } : { ...job };
  }
}

function notFound(ctx: RouteContext<{ id: string }>): Response {
  return errorResponse(
    ctx.c,
    'not_found',
    `No export ${ctx.params.id} on this server (exports are kept ${EXPORT_TTL_MS / 3_600_000} h after they finish, and until it restarts); start one with POST /v1/exports.`,
  );
}
