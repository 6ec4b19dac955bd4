import type { Line } from './bundle-files.js';
import { strictParse, type ChainChecker, type Failure } from '../core/index.js';

/**
 * Checks shared by the bundle verifiers of format 1 and format 2: the inclusion proofs of
 * proofs.jsonl read in step with events.jsonl, and where a line that is not JSON claims to be.
 */

/**
 * Size caps, so that a hostile bundle is refused instead of read into memory. Each file is read
 * once, line by line, holding one line at a time; the caps are far above anything an honest
 * export writes.
 */
export const BUNDLE_LIMITS = {
  /** manifest.json: about 150 bytes per artifact listed. */
  manifestBytes: 16 * 1024 * 1024,
  checkpointBytes: 1024 * 1024,
  keysBytes: 1024 * 1024,
  /** events.jsonl, and each artifact. */
  fileBytes: 512 * 1024 * 1024,
  /** One event: the recorder refuses payloads over 64 MiB (its largest maxPayloadBytes), plus 1 MiB for the header. */
  eventLineBytes: 65 * 1024 * 1024,
  /**
   * One proof line: a proof in a tree of at most 2^53 leaves has at most 53 steps of 64 hex
   * digits (about 3.6 KiB as JSON). proofs.jsonl holds one line per event, so it may be at most
   * this much per line of events.jsonl.
   */
  proofLineBytes: 8 * 1024,
  proofSteps: 64,
} as const;

export interface ParsedProof {
  leaf: number;
  size: number;
  proof: Buffer[];
}

/**
 * The proofs of proofs.jsonl, taken in step with the events, so that neither file is ever held
 * whole: the exporter writes one proof line per event, in the same order (ascending leaf index).
 * A proof for a leaf no event asks for is skipped, still checked for form; an event whose proof
 * is not next in that order has none.
 */
export class ProofReader {
  private pending: ParsedProof | undefined;
  private started = false;
  /** The first line over the cap, which refuses the bundle; nothing is read after it. */
  tooLong: number | undefined;

  constructor(
    private readonly lines: Generator<Line> | undefined,
    private readonly fail: (f: Failure) => void,
    /** The file read, as failures name it. */
    private readonly name = 'proofs.jsonl',
  ) {}

  take(leaf: number): ParsedProof | undefined {
    let p = this.peek();
    while (p !== undefined && p.leaf < leaf) p = this.pending = this.read();
    if (p === undefined || p.leaf !== leaf) return undefined;
    this.pending = this.read();
    return p;
  }

  /** Reads the rest, so a malformed line after the last event's proof is reported too. */
  drain(): void {
    while (this.peek() !== undefined) this.pending = this.read();
  }

  private peek(): ParsedProof | undefined {
    if (!this.started) {
      this.started = true;
      this.pending = this.read();
    }
    return this.pending;
  }

  private read(): ParsedProof | undefined {
    if (this.lines === undefined || this.tooLong !== undefined) return undefined;
    for (let r = this.lines.next(); r.done !== true; r = this.lines.next()) {
      const line = r.value;
      if ('tooLong' in line) {
        this.tooLong = line.n;
        return undefined;
      }
      if (line.text.trim() === '') continue;
      try {
        const p = strictParse(line.text) as { leaf?: unknown; size?: unknown; proof?: unknown };
        if (!Number.isSafeInteger(p.leaf) || !Number.isSafeInteger(p.size) || !Array.isArray(p.proof)) throw new Error('needs leaf, size and proof');
        if (p.proof.length > BUNDLE_LIMITS.proofSteps) throw new Error(`it has ${p.proof.length} steps, more than the ${BUNDLE_LIMITS.proofSteps} any tree needs`);
        const proof = (p.proof as unknown[]).map((h) => {
          if (typeof h !== 'string' || !/^[0-9a-f]{64}$/.test(h)) throw new Error('a proof step is not 64 hex characters');
          return Buffer.from(h, 'hex');
        });
        return { leaf: p.leaf as number, size: p.size as number, proof };
      } catch (e) {
        this.fail({ code: 'bundle_invalid', reason: `${this.name} line ${line.n} is malformed: ${(e as Error).message}.` });
      }
    }
    return undefined;
  }
}

export function lenientPosition(line: string): { stream?: string; seq?: number; leaf?: number } {
  try {
    const v = JSON.parse(line) as { stream?: unknown; seq?: unknown; leaf?: unknown };
    return {
      ...(typeof v.stream === 'string' ? { stream: v.stream } : {}),
      ...(typeof v.seq === 'number' && Number.isSafeInteger(v.seq) ? { seq: v.seq } : {}),
      ...(typeof v.leaf === 'number' && Number.isSafeInteger(v.leaf) ? { leaf: v.leaf } : {}),
    };
  } catch {
    return {};
  }
}

/** Caps of the files only a format-2 bundle has. */
const V2_CAPS = {
  small: 16 * 1024 * 1024,
  /** checkpoints.jsonl: one signed note and its consistency proof per line. */
  checkpointLineBytes: 64 * 1024,
} as const;
export { V2_CAPS };

/**
 * The cap of each name an evidence bundle of format 1 or 2 holds (what the verifiers read it
 * with), or undefined for a name no bundle has. A zip is extracted before its manifest says which
 * format it is, so this knows both; the verifier of each format then refuses the other's names.
 */
export function capOfName(name: string): number | undefined {
  switch (name) {
    case 'manifest.json':
      return BUNDLE_LIMITS.manifestBytes;
    case 'checkpoint.txt':
      return BUNDLE_LIMITS.checkpointBytes;
    case 'keys.txt':
    case 'keys.json':
    case 'README.txt':
    case 'populations/index.json':
      return BUNDLE_LIMITS.keysBytes;
    case 'system.json':
    case 'verify.mjs':
      return V2_CAPS.small;
    case 'events.jsonl':
    case 'proofs.jsonl':
    case 'checkpoints.jsonl':
    case 'purges.jsonl':
    case 'purge-proofs.jsonl':
    case 'anchors.jsonl':
    case 'report.html':
      return BUNDLE_LIMITS.fileBytes;
    default:
      if (/^artifacts\/[0-9a-f]{64}$/.test(name)) return BUNDLE_LIMITS.fileBytes;
      if (ARTIFACT_NAME.test(name) || POPULATION_NAME.test(name)) return BUNDLE_LIMITS.fileBytes;
      return undefined;
  }
}

/** `artifacts/<sha256>.<ext>` of format 2 (artifactExtension gives `html.txt`, hence two parts at most). */
export const ARTIFACT_NAME = /^artifacts\/([0-9a-f]{64})\.([a-z0-9]{1,8}(?:\.[a-z0-9]{1,8})?)$/;
export const POPULATION_NAME = /^populations\/([a-z0-9][a-z0-9-]{0,63})\.jsonl$/;

/** The directories a bundle's names live in (a zip may list them as entries of their own). */
export const BUNDLE_DIRECTORIES = ['artifacts/', 'populations/'] as const;

export type NoPayloadReason = 'out_of_scope' | 'withheld' | 'missing';

/** Runs of consecutive leaves sharing a reason, so a verdict names every leaf in little memory. */
export class LeafRanges {
  readonly ranges: Array<{ from: number; to: number; reason: NoPayloadReason }> = [];
  count = 0;
  add(leaf: number, reason: NoPayloadReason): void {
    this.count++;
    const last = this.ranges[this.ranges.length - 1];
    if (last !== undefined && last.to === leaf && last.reason === reason) last.to = leaf + 1;
    else this.ranges.push({ from: leaf, to: leaf + 1, reason });
  }
}

/** What a bundle line gives the chain check: its header and payload, canonicalised, and its salt and hash as written. */
export interface BundleLineEvent {
  leaf: number;
  stream: string;
  seq: number;
  header: Record<string, unknown>;
  headerText: string;
  dataText: string | null;
  /** The line's `salt` member as parsed: 64 hex digits, null/absent, or anything else (then a wrong salt). */
  salt: unknown;
  hash: string;
}

/**
 * Checks one event of a bundle line with the ledger verifier's own chain check (payload digest,
 * event hash, prev, seq) and returns its recomputed hash. A salt that is not 64 hex digits is
 * checked as an empty one, so the payload digest fails rather than being skipped.
 */
export function checkBundleEvent(chain: ChainChecker, e: BundleLineEvent): Uint8Array {
  const salt = typeof e.salt === 'string' && /^[0-9a-f]{64}$/.test(e.salt) ? Buffer.from(e.salt, 'hex') : e.salt === null || e.salt === undefined ? null : Buffer.alloc(0);
  return chain.check(
    {
      pos: e.leaf,
      id: String(e.header['id']),
      stream: e.stream,
      seq: e.seq,
      ts: String(e.header['ts']),
      kind: String(e.header['kind']),
      agent: '',
      resource: null,
      action: null,
      outcome: null,
      header: e.headerText,
      data: e.dataText,
      salt,
      hash: Buffer.from(e.hash, 'hex'),
    },
    { stream: e.stream, seq: e.seq, leaf: e.leaf },
  );
}
