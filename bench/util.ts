/**
 * Shared helpers for the benchmark suite: timing, statistics, temp files, progress and Markdown.
 * Nothing here measures anything by itself.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { rng } from '../test/helpers/random.js';

export { rng };

const started = performance.now();

/** Progress goes to stderr so stdout stays clean for the summary. */
export function log(msg: string): void {
  const s = ((performance.now() - started) / 1000).toFixed(1).padStart(6);
  process.stderr.write(`[bench ${s}s] ${msg}\n`);
}

/** Runs a full GC when node was started with --expose-gc (the bench script does). */
export function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (typeof g === 'function') {
    g();
    g();
  }
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Nearest-rank percentile (p in 0..100). */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const rank = Math.min(s.length, Math.max(1, Math.ceil((p / 100) * s.length)));
  return s[rank - 1]!;
}

export function min(xs: readonly number[]): number {
  return xs.reduce((a, b) => Math.min(a, b), Number.POSITIVE_INFINITY);
}

export function max(xs: readonly number[]): number {
  return xs.reduce((a, b) => Math.max(a, b), Number.NEGATIVE_INFINITY);
}

export function randInt(r: () => number, lo: number, hiExclusive: number): number {
  return lo + Math.floor(r() * (hiExclusive - lo));
}

export function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)]!;
}

export function hexOf(r: () => number, chars: number): string {
  let s = '';
  for (let i = 0; i < chars; i++) s += '0123456789abcdef'[Math.floor(r() * 16)];
  return s;
}

// ---------------------------------------------------------------- files

let benchRoot: string | undefined;

/** One directory under os.tmpdir() per run; removed at the end unless --keep. */
export function benchDir(): string {
  benchRoot ??= fs.mkdtempSync(path.join(os.tmpdir(), 'witness-bench-'));
  return benchRoot;
}

export function cleanupBenchDir(): void {
  if (benchRoot !== undefined) fs.rmSync(benchRoot, { recursive: true, force: true });
  benchRoot = undefined;
}

let counter = 0;
/** A fresh database path inside the run's directory. */
export function freshDbPath(label: string): string {
  counter++;
  return path.join(benchDir(), `${label}-${counter}.db`);
}

/** Removes a SQLite file and everything Witness or SQLite keeps beside it. */
export function removeDb(file: string): void {
  for (const suffix of ['', '-wal', '-shm', '-journal', '.key', '.pub', '.sealed']) fs.rmSync(file + suffix, { force: true });
  fs.rmSync(`${file}.artifacts`, { recursive: true, force: true });
}

export function fileBytes(file: string): number {
  let total = 0;
  for (const suffix of ['', '-wal']) {
    try {
      total += fs.statSync(file + suffix).size;
    } catch {
      // absent
    }
  }
  return total;
}

// ---------------------------------------------------------------- formatting

export function fmtInt(n: number): string {
  if (!Number.isFinite(n)) return 'n/a';
  return Math.round(n).toLocaleString('en-US');
}

/** Milliseconds with sensible precision. */
export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return 'n/a';
  if (ms >= 100) return ms.toFixed(0);
  if (ms >= 10) return ms.toFixed(1);
  if (ms >= 1) return ms.toFixed(2);
  return ms.toFixed(3);
}

export function fmtUs(us: number): string {
  if (!Number.isFinite(us)) return 'n/a';
  if (us >= 100) return us.toFixed(0);
  if (us >= 10) return us.toFixed(1);
  return us.toFixed(2);
}

export function fmtRatio(x: number): string {
  if (!Number.isFinite(x)) return 'n/a';
  return x >= 10 ? `${x.toFixed(1)}×` : `${x.toFixed(2)}×`;
}

export function fmtMiB(bytes: number): string {
  if (!Number.isFinite(bytes)) return 'n/a';
  return (bytes / (1024 * 1024)).toFixed(1);
}

export function fmtPct(x: number): string {
  return `${(x * 100).toFixed(0)} %`;
}

/** A GitHub-flavoured Markdown table; the first column is left-aligned, the rest right-aligned. */
export function mdTable(headers: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const align = headers.map((_, i) => (i === 0 ? ':---' : '---:'));
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`;
  return [line(headers), line(align), ...rows.map(line)].join('\n');
}

// ---------------------------------------------------------------- results

export interface Verdict {
  /** The target as the issue states it. */
  target: string;
  /** What was measured, in the target's unit. */
  measured: string;
  met: boolean;
  /** The target could not be measured in this run (then `met` is false and `note` says why). */
  notMeasured?: boolean;
  /** One sentence on what limits it, when missed (or a caveat when met). */
  note?: string;
}

export interface Section {
  id: string;
  title: string;
  /** Paragraphs of Markdown: method, sizes, what the baseline is. */
  method: string[];
  /** Markdown blocks (tables, paragraphs) in order. */
  body: string[];
  verdicts: Verdict[];
}

export function verdictTable(vs: readonly Verdict[]): string {
  return mdTable(
    ['target', 'measured', 'verdict'],
    vs.map((v) => [v.target, v.measured, verdictWord(v)]),
  );
}

export function verdictWord(v: Verdict): string {
  return v.notMeasured === true ? '**NOT MEASURED**' : v.met ? '**MET**' : '**MISSED**';
}

/** Seconds since the suite started, for the report. */
export function elapsedSeconds(): number {
  return (performance.now() - started) / 1000;
}
