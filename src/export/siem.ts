import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { WitnessError, leafHash, nodeHash, type StoredEvent } from '../core/index.js';
import { toStored, type Ledger } from '../store/index.js';
import { AUDIT_STREAM } from './bundle.js';
import { OCSF_VERSION, toOcsf } from './ocsf-map.js';
import { ScopeTracker } from './populations.js';
import { normaliseScopeTimes, resolveSpan, type Span, type SpanScope } from './span.js';

/**
 * Exports for SIEMs, one JSON object per line, streamed: the events of a scope (the same scope rules
 * as an evidence bundle: populations.ts ScopeTracker) read from the ledger a page at a time and
 * written line by line, waiting for the output to drain, so neither the ledger nor the output is
 * ever held whole.
 *
 * - `jsonl`: each event in its stored form (header, data, salt, hash) plus `leaf`, exactly as a
 *   bundle's events.jsonl line: what a SIEM's generic JSON input reads.
 * - `ocsf`: each event mapped to OCSF 1.8.0 (ocsf-map.ts), the Witness event, its inclusion proof
 *   and the checkpoint (size, root and its signed note, so each line alone ties its proof to the
 *   ledger's signature) under `unmapped.witness`.
 *
 * Only events covered by the newest signed checkpoint are exported (the ledger is sealed first when
 * this process holds the key), so every OCSF line's proof verifies against that checkpoint. Payloads
 * are as stored (redacted at write time); `withholdData` writes `data` and `salt` as null.
 */
export type SiemFormat = 'ocsf' | 'jsonl';
export const SIEM_FORMATS: readonly SiemFormat[] = ['ocsf', 'jsonl'];

export interface SiemExportOptions {
  format: SiemFormat;
  scope: SpanScope;
  withholdData?: boolean;
  /** Who is exporting: recorded as an audit.access event (operation export). Absent: not recorded. */
  actor?: string;
  /** metadata.product.version of OCSF lines. */
  productVersion?: string;
  /** Rows read per page of the ledger scan. */
  pageSize?: number;
}

export interface SiemExportResult {
  format: SiemFormat;
  /** Lines written. */
  events: number;
  /** The leaf range read (the scope's span, cut at the checkpoint); null when nothing is in scope. */
  span: Span | null;
  /** The newest checkpoint: size, root (hex) and its signed note (C2SP signed-note text), which opens with the ledger's key. */
  checkpoint: { size: number; root: string; note: string };
  /** In-scope events newer than the checkpoint, left out (they have no proof yet). */
  unsealed: number;
  /** The output closed before every line was written (a reader that stopped early, e.g. `| head`). */
  closed: boolean;
  /** The id of the audit.access event recording the export, when an actor was given. */
  accessEvent?: string;
  warnings: string[];
}

/** `out` went away (EPIPE, a closed pipe): stop writing, keep what was written. */
class OutputClosed extends Error {}

/** Writes `text`, and waits for `out` to drain when its buffer is full (backpressure). */
async function writeLine(out: Writable, text: string): Promise<void> {
  if (out.destroyed || out.writableEnded) throw new OutputClosed();
  if (out.write(text)) return;
  const ac = new AbortController();
  try {
    await Promise.race([once(out, 'drain', { signal: ac.signal }), once(out, 'close', { signal: ac.signal }).then(() => Promise.reject(new OutputClosed()))]);
  } catch (e) {
    if (e instanceof OutputClosed) throw e;
    // once() rejects with the stream's 'error': a closed pipe ends the export quietly, anything
    // else (a full disk) is a failure to report.
    if (isClosedPipe(e)) throw new OutputClosed();
    throw e;
  } finally {
    ac.abort();
  }
}

function isClosedPipe(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return code === 'EPIPE' || code === 'ERR_STREAM_DESTROYED' || code === 'ERR_STREAM_WRITE_AFTER_END';
}

const BLOCK_BITS = 8;
const BLOCK = 1 << BLOCK_BITS;

/**
 * Inclusion proofs for a scan of consecutive leaves, without one proof query per leaf (0.45 ms each
 * on SQLite: 11 s of a 20,000-event export). Leaves are taken in aligned blocks of 256: a block that
 * was read whole and lies inside the tree is a node of the tree (RFC 6962's split is at powers of
 * two), so a leaf's proof is its 8 siblings inside the block, computed here from the leaf hashes read,
 * followed by the block's own path, the tail of the ledger's proof for the block's first leaf. A
 * block read in part (the span's edges) asks the ledger for each leaf. Holds one block at a time.
 */
class BlockProofs {
  private block = -1;
  private items: Array<{ pos: number; hash: Buffer; ev: StoredEvent | null }> = [];

  constructor(
    private readonly ledger: Ledger,
    private readonly size: number,
    private readonly emit: (ev: StoredEvent, leaf: number, proof: string[]) => Promise<void>,
  ) {}

  /** Every leaf of the scan, in order; `ev` null for one out of scope (its hash is still needed). */
  async add(pos: number, hash: Buffer, ev: StoredEvent | null): Promise<void> {
    const b = Math.floor(pos / BLOCK);
    if (b !== this.block) {
      await this.flush();
      this.block = b;
    }
    this.items.push({ pos, hash, ev });
  }

  async flush(): Promise<void> {
    const items = this.items;
    this.items = [];
    if (!items.some((i) => i.ev !== null)) return;
    const start = this.block * BLOCK;
    const whole = items.length === BLOCK && items[0]!.pos === start && start + BLOCK <= this.size;
    let levels: Buffer[][] = [];
    let upper: string[] = [];
    if (whole) {
      levels = [items.map((i) => leafHash(i.hash))];
      for (let l = 0; l < BLOCK_BITS; l++) {
        const prev = levels[l]!;
        const next: Buffer[] = [];
        for (let j = 0; j < prev.length; j += 2) next.push(nodeHash(prev[j]!, prev[j + 1]!));
        levels.push(next);
      }
      upper = (await this.ledger.inclusionProof(start, this.size)).slice(BLOCK_BITS).map((h) => h.toString('hex'));
    }
    for (const [index, item] of items.entries()) {
      if (item.ev === null) continue;
      let proof: string[];
      if (whole) {
        proof = [];
        for (let l = 0, k = index; l < BLOCK_BITS; l++, k >>= 1) proof.push(levels[l]![k ^ 1]!.toString('hex'));
        proof.push(...upper);
      } else {
        proof = (await this.ledger.inclusionProof(item.pos, this.size)).map((h) => h.toString('hex'));
      }
      await this.emit(item.ev, item.pos, proof);
    }
  }
}

/**
 * Writes the scope's events to `out` as `options.format` lines. `out` is not ended here (it may be
 * the process's stdout): the caller ends a file it opened. A write error other than a closed pipe
 * is thrown after the export is recorded as failed.
 */
export async function exportSiem(ledger: Ledger, out: Writable, options: SiemExportOptions): Promise<SiemExportResult> {
  // since/until in the form ScopeTracker compares (YYYY-MM-DDTHH:MM:SS.mmmZ), or a refusal.
  const scope = normaliseScopeTimes(options.scope);
  const withhold = options.withholdData === true;
  const warnings: string[] = [];
  if (ledger.canSeal) {
    try {
      await ledger.seal();
    } catch (e) {
      warnings.push(`The ledger could not be sealed, so the export stops at its last checkpoint: ${e instanceof Error ? e.message.replace(/\.$/, '') : String(e)}.`);
    }
  }
  const cp = await ledger.latestCheckpoint();
  if (cp === undefined) {
    throw new WitnessError('invalid_checkpoint', `${ledger.info.location} has no signed checkpoint yet; run \`witness seal\` with the ledger's signing key, then export again.`);
  }
  // The signed note travels with the root, so every proof leads to a signature (README "Proofs in a SIEM").
  const checkpoint = { size: cp.size, root: cp.root.toString('hex'), note: cp.note };
  const full = await resolveSpan(ledger, scope);
  const span = full === undefined ? null : { from: full.from, to: Math.min(full.to, cp.size) };
  const product = { name: 'Witness', vendor_name: 'Witness', ...(options.productVersion === undefined ? {} : { version: options.productVersion }) };
  // An error event on `out` between writes (EPIPE arrives asynchronously) must not go unhandled.
  let outError: unknown;
  const onError = (e: unknown) => void (outError ??= e);
  out.on('error', onError);

  let written = 0;
  let unsealed = 0;
  let closed = false;
  let failure: unknown;
  try {
    if (full !== undefined) {
      const tracker = new ScopeTracker(scope);
      const emit = async (ev: StoredEvent, leaf: number, proof: string[] | undefined) => {
        const line = proof === undefined ? JSON.stringify({ ...ev, leaf }) : JSON.stringify(toOcsf(ev, { leaf, proof, checkpoint, origin: ledger.info.origin, product }));
        if (outError !== undefined) throw isClosedPipe(outError) ? new OutputClosed() : outError;
        await writeLine(out, `${line}\n`);
        written++;
      };
      const proofs = new BlockProofs(ledger, cp.size, emit);
      scan: for await (const page of ledger.scan(full.from, options.pageSize ?? 1000)) {
        for (const row of page) {
          if (row.pos >= full.to) break scan;
          const e = toStored(row);
          const inScope = tracker.inScope(e);
          if (row.pos >= cp.size) {
            if (inScope) unsealed++;
            continue;
          }
          const { pos, ...stored } = e;
          const ev: StoredEvent | null = !inScope ? null : withhold ? { ...stored, data: null, salt: null } : stored;
          if (options.format === 'jsonl') {
            if (ev !== null) await emit(ev, pos, undefined);
          } else {
            await proofs.add(pos, row.hash, ev);
          }
        }
      }
      await proofs.flush();
    }
    if (outError !== undefined && !isClosedPipe(outError)) throw outError;
  } catch (e) {
    if (e instanceof OutputClosed) closed = true;
    else failure = e;
  } finally {
    out.off('error', onError);
    // Swallow a late EPIPE from the last write rather than crash the process.
    if (closed) out.on('error', () => undefined);
  }

  let accessEvent: string | undefined;
  if (options.actor !== undefined) {
    const [receipt] = await ledger.append([
      {
        stream: AUDIT_STREAM,
        agent: { id: 'witness-cli' },
        principal: { id: options.actor, kind: 'human' },
        kind: 'audit.access',
        resource: 'siem-export',
        action: 'export',
        outcome: failure === undefined ? 'success' : 'error',
        data: {
          actor: options.actor,
          operation: 'export',
          format: options.format === 'ocsf' ? `ocsf/${OCSF_VERSION}` : 'jsonl',
          scope: scope,
          mode: withhold ? 'withheld' : 'full',
          span,
          checkpoint: { size: checkpoint.size, root: checkpoint.root },
          count: written,
          complete: failure === undefined && !closed,
        },
      },
    ]);
    accessEvent = receipt?.id;
    if (ledger.canSeal) {
      try {
        await ledger.seal();
      } catch (e) {
        warnings.push(`The export is recorded, but the record of it could not be sealed: ${e instanceof Error ? e.message.replace(/\.$/, '') : String(e)}.`);
      }
    }
  }
  if (failure !== undefined) throw failure;
  if (unsealed > 0) {
    warnings.push(
      `${unsealed} in-scope event(s) newer than checkpoint ${cp.size} were left out: they have no inclusion proof yet; run \`witness seal\` with the ledger's signing key, then export again.`,
    );
  }
  return { format: options.format, events: written, span, checkpoint, unsealed, closed, ...(accessEvent === undefined ? {} : { accessEvent }), warnings };
}
