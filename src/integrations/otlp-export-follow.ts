import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { OtlpSender, SpanMapper, sendEvents, type ExportableEvent, type OtlpExportError, type OtlpSenderOptions } from './otlp-export.js';

/**
 * Continuous OTLP export (`witness serve --otlp-export URL`): follows the ledger by polling, as the
 * monitor does, and sends each committed event once as a span, in ledger order.
 *
 * Delivery is at least once: the position is saved in the state file after the endpoint accepts a
 * batch, so a crash between the two sends that batch again on restart (same span ids, derived from
 * the events), and nothing is skipped unless the backend refuses it for good: a span refused with a
 * 4xx that is about the batch (sendEvents' onRefused) is handed to `onSkipped`, to be recorded as a
 * gap, and the export goes on past it instead of stalling at it for ever. It runs beside ingest and
 * never holds it up: a slow or absent endpoint only delays the export, which resumes from the saved
 * position.
 */
export interface FollowSource {
  /** The ledger's origin: names the traces, and ties the state file to this ledger. */
  origin: string;
  /** Committed events from leaf `from` on, in pages. */
  read(from: number): AsyncIterable<ExportableEvent[]>;
  /** Leaves covered by the newest signed checkpoint (0 when none). */
  checkpointSize(): Promise<number>;
}

export interface FollowOptions extends OtlpSenderOptions {
  /** Where the next position is kept between runs. */
  stateFile: string;
  intervalMs: number;
  withholdData?: boolean;
  /** After each accepted batch. */
  onSent?: (count: number, next: number) => void;
  /** One sentence per failed pass; the next pass retries from the saved position. */
  onError?: (message: string) => void;
  /**
   * A span the backend refused for good, passed over (leaves `from` to `to`, `to` excluded).
   * Awaited before the position moves past it, so a record of the gap is written first; when it
   * throws, the pass fails and the span is tried again next pass.
   */
  onSkipped?: (from: number, to: number, error: OtlpExportError) => Promise<void> | void;
}

const FollowState = z.object({ origin: z.string(), next: z.number().int().nonnegative(), url: z.string().optional() });
type FollowState = z.infer<typeof FollowState>;

/** The saved position, or 0 for a new file; refuses one written for another ledger. */
export function readFollowState(file: string, origin: string): number {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw new Error(`The OTLP export state file ${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)}); fix its permissions or choose another.`, { cause: e });
  }
  const parsed = FollowState.safeParse(
    (() => {
      try {
        return JSON.parse(text) as unknown;
      } catch {
        return undefined;
      }
    })(),
  );
  if (!parsed.success) throw new Error(`The OTLP export state file ${file} is not one Witness wrote; move it away to export the whole ledger again.`);
  if (parsed.data.origin !== origin) throw new Error(`The OTLP export state file ${file} belongs to the ledger "${parsed.data.origin}", not "${origin}"; give this ledger its own state file.`);
  return parsed.data.next;
}

/** Written to a temporary file and renamed over the old one, so a crash leaves the old position or the new, never half of one. */
function writeFollowState(file: string, state: FollowState): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  fs.writeFileSync(tmp, `${JSON.stringify(state)}\n`, { mode: 0o600 });
  fs.renameSync(tmp, file);
}

export class OtlpFollower {
  private readonly sender: OtlpSender;
  private readonly mapper: SpanMapper;
  private next: number;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly source: FollowSource,
    private readonly options: FollowOptions,
  ) {
    this.sender = new OtlpSender(options);
    this.mapper = new SpanMapper({ origin: source.origin, checkpointSize: 0, withholdData: options.withholdData === true });
    this.next = readFollowState(options.stateFile, source.origin);
  }

  /** The next leaf to send. */
  get position(): number {
    return this.next;
  }

  get url(): string {
    return this.sender.url;
  }

  /** One pass: everything committed since the saved position. */
  async pass(): Promise<number> {
    this.mapper.checkpointSize = await this.source.checkpointSize();
    const onSkipped = this.options.onSkipped;
    return sendEvents(
      this.source.read(this.next),
      this.mapper,
      this.sender,
      (next, count) => {
        this.next = next;
        writeFollowState(this.options.stateFile, { origin: this.source.origin, next, url: this.sender.url });
        this.options.onSent?.(count, next);
      },
      onSkipped === undefined ? undefined : (pos, e) => onSkipped(pos, pos + 1, e),
    );
  }

  start(): void {
    const tick = () => {
      if (this.stopped) return;
      this.running = this.pass()
        .then(
          () => undefined,
          (e: unknown) => this.options.onError?.(e instanceof Error ? e.message : String(e)),
        )
        .finally(() => {
          if (!this.stopped) this.timer = setTimeout(tick, this.options.intervalMs);
        });
    };
    tick();
  }

  /** Finishes the pass under way (its position saved), then stops. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    await this.running;
    await this.sender.close();
  }
}
