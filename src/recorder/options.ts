import { z } from 'zod';
import { WitnessError, formatPath } from '../core/index.js';
import type { RedactionRule } from './redact.js';
import type { ToolCapturer } from './session.js';

/**
 * Recorder options, parsed once at open. A bad option fails there with one sentence; after that
 * the recorder's own faults go to `onError`, never into the agent's code.
 */
export const WitnessOptions = z.strictObject({
  /** `sqlite:./witness.db` (default: $WITNESS_STORE, else sqlite:./witness.db). */
  store: z.string().min(1).optional(),
  /** `process`: an awaited record survives kill -9. `power`: also power loss (fsync per commit). */
  durability: z.enum(['process', 'power']).default('process'),
  /**
   * How long one append waits for another process's write lock. SQLite appends are synchronous,
   * so this bounds how long a locked ledger can stall the agent's event loop per attempt.
   */
  busyTimeoutMs: z.number().int().nonnegative().max(60_000).default(1000),
  /**
   * Where the sealer records the last checkpoint its key signed (a file path; default
   * $WITNESS_SEAL_RECORD, else `<db>.sealed` beside the ledger). Put it, with the key, where the
   * database's writers cannot write, or they can roll it back.
   */
  sealRecord: z.string().min(1).optional(),
  /** First part of the checkpoint origin of a new ledger. */
  name: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1-64 letters, digits, dots, dashes or underscores')
    .optional(),
  /** Payloads above this are refused (or spilled into an artifact for tool and LLM outputs). */
  maxPayloadBytes: z
    .number()
    .int()
    .positive()
    .max(64 * 1024 * 1024)
    .default(1024 * 1024),
  /** Tool/LLM outputs larger than this are stored as artifacts and referenced by digest. */
  spillBytes: z
    .number()
    .int()
    .positive()
    .default(256 * 1024),
  /** Events waiting to be committed before `record` calls wait (backpressure, never drops). */
  maxQueue: z.number().int().positive().default(10_000),
  maxBatch: z.number().int().positive().max(100_000).default(1000),
  /** How long to keep retrying a failing store before reporting the events lost to onError. */
  retryForMs: z.number().int().nonnegative().default(30_000),
  seal: z
    .strictObject({
      /** Seal after this many new events. */
      everyEvents: z.number().int().positive().default(1000),
      /** Seal at least this often while events arrive. */
      everyMs: z.number().int().positive().default(10_000),
      /** Write a heartbeat checkpoint this often even when idle, so a silent gap is itself evidence. */
      heartbeatMs: z
        .number()
        .int()
        .positive()
        .default(60 * 60 * 1000),
      enabled: z.boolean().default(true),
    })
    .prefault({}),
  redact: z
    .strictObject({
      patterns: z.array(z.object({ name: z.string().min(1), pattern: z.instanceof(RegExp) })).optional(),
      keys: z.array(z.string()).optional(),
      builtins: z.boolean().optional(),
    })
    .optional(),
  /** Reject the returned promise on invalid input instead of reporting it (for tests and development). */
  strict: z.boolean().default(false),
  onError: z.custom<(error: WitnessError) => void>((v) => typeof v === 'function', 'must be a function').optional(),
  /** Takes the screenshots tool calls ask for (`new Capturer()` from src/capture). */
  capturer: z.custom<ToolCapturer>((v) => v !== null && typeof v === 'object' && typeof (v as { shoot?: unknown }).shoot === 'function', 'must have a shoot() method (a Capturer)').optional(),
  env: z.string().optional(),
  tenant: z.string().optional(),
});

export type WitnessOptionsInput = z.input<typeof WitnessOptions> & {
  redact?: { patterns?: RedactionRule[]; keys?: string[]; builtins?: boolean };
  onError?: (error: WitnessError) => void;
  capturer?: ToolCapturer;
};
export type ParsedWitnessOptions = z.output<typeof WitnessOptions>;

export function parseOptions(input: unknown): ParsedWitnessOptions {
  const r = WitnessOptions.safeParse(input ?? {});
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  throw new WitnessError('invalid_argument', `Invalid Witness option ${formatPath(issue?.path ?? [])}: ${issue?.message ?? 'invalid'}; fix it where you call openWitness.`, {
    cause: r.error,
  });
}
