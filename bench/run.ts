/**
 * `npm run bench` — runs the benchmark suite and writes BENCHMARKS.md.
 *
 *   node --expose-gc dist-bench/bench/run.js [--quick] [--only name[,name…]] [--out file] [--keep]
 *
 *   --quick / BENCH_QUICK=1   smaller sizes and 3 repetitions (a smoke run, under a minute)
 *   --only / BENCH_ONLY       append, recorder, verify, query, memory, gateway, modern, capture, postgres, server, export, backtest, purge, hook, integrations, otlp (comma-separated)
 *   --out                     where to write the report (default: BENCHMARKS.md for a full run,
 *                             dist-bench/BENCHMARKS.partial.md for --quick or --only, so a smoke
 *                             run never overwrites the published numbers)
 *   --keep                    keep the temporary databases under os.tmpdir()
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { benchAppend } from './append.js';
import { benchBacktest } from './backtest.js';
import { makeConfig, type Config } from './config.js';
import { benchCapture } from './capture.js';
import { benchExport } from './export.js';
import { benchGateway } from './gateway.js';
import { benchGatewayModern } from './gateway-modern.js';
import { benchHook } from './hook.js';
import { benchIntegrations } from './integrations.js';
import { LargeLedgers } from './ledgers.js';
import { benchMemory } from './memory.js';
import { benchOtlp } from './otlp.js';
import { benchPostgres } from './postgres.js';
import { benchPurge } from './purge.js';
import { benchQuery } from './query.js';
import { benchRecorder } from './recorder.js';
import { benchServer } from './server.js';
import { benchVerify } from './verify.js';
import { benchDir, cleanupBenchDir, elapsedSeconds, fmtInt, fmtMiB, fmtMs, gc, log, mdTable, median, verdictWord, type Section } from './util.js';

/** Highest 1-minute load average seen at section boundaries: other work on the machine skews numbers. */
let maxLoad = 0;
const loads: string[] = [];
function noteLoad(when: string): void {
  const l = os.loadavg()[0] ?? 0;
  maxLoad = Math.max(maxLoad, l);
  loads.push(`${when} ${l.toFixed(2)}`);
  log(`load average (1 min) ${when}: ${l.toFixed(2)}`);
}

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const NAMES = ['append', 'recorder', 'verify', 'query', 'memory', 'gateway', 'modern', 'capture', 'postgres', 'server', 'export', 'backtest', 'purge', 'hook', 'otlp', 'integrations'] as const;
type Name = (typeof NAMES)[number];

interface Args {
  quick: boolean;
  only: Name[];
  out: string | undefined;
  keep: boolean;
  raw: string[];
}

function parseArgs(argv: string[]): Args {
  const args: Args = { quick: process.env['BENCH_QUICK'] === '1', only: [], out: undefined, keep: false, raw: argv };
  const only = (v: string | undefined) => {
    if (v === undefined || v === '') throw new Error('--only needs a benchmark name');
    for (const n of v.split(',')) {
      const name = n.trim();
      if (!(NAMES as readonly string[]).includes(name)) throw new Error(`unknown benchmark "${name}"; choose from ${NAMES.join(', ')}`);
      args.only.push(name as Name);
    }
  };
  if (process.env['BENCH_ONLY'] !== undefined && process.env['BENCH_ONLY'] !== '') only(process.env['BENCH_ONLY']);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--quick') args.quick = true;
    else if (a === '--keep') args.keep = true;
    else if (a === '--only') only(argv[++i]);
    else if (a.startsWith('--only=')) only(a.slice('--only='.length));
    else if (a === '--out') args.out = argv[++i];
    else if (a.startsWith('--out=')) args.out = a.slice('--out='.length);
    else if (a === '--help' || a === '-h') {
      process.stdout.write(`usage: npm run bench -- [--quick] [--only ${NAMES.join('|')}[,…]] [--out FILE] [--keep]\n`);
      process.exit(0);
    } else throw new Error(`unknown argument "${a}"; try --help`);
  }
  return args;
}

// ---------------------------------------------------------------- the machine

function tryRead(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

function osName(): string {
  const pretty = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(tryRead('/etc/os-release'))?.[1];
  return `${pretty ?? os.type()} (kernel ${os.release()}, ${os.arch()})`;
}

function tmpFilesystem(): string {
  const dir = fs.realpathSync(os.tmpdir());
  let best = { mount: '', fs: 'unknown', dev: '' };
  for (const line of tryRead('/proc/mounts').split('\n')) {
    const [dev, mount, type] = line.split(' ');
    if (dev === undefined || mount === undefined || type === undefined) continue;
    if ((dir === mount || dir.startsWith(mount.endsWith('/') ? mount : `${mount}/`)) && mount.length >= best.mount.length) best = { mount, fs: type, dev };
  }
  return `${dir} on ${best.fs} (${best.dev} mounted at ${best.mount})`;
}

/** Median time of one 4 KiB write + fdatasync in os.tmpdir(): what an fsync-per-commit costs here. */
function fsyncLatencyMs(): number {
  const file = path.join(benchDir(), 'fsync-probe');
  const fd = fs.openSync(file, 'w');
  const buf = Buffer.alloc(4096, 1);
  const xs: number[] = [];
  for (let i = 0; i < 100; i++) {
    const t = performance.now();
    fs.writeSync(fd, buf);
    fs.fdatasyncSync(fd);
    xs.push(performance.now() - t);
  }
  fs.closeSync(fd);
  fs.rmSync(file);
  return median(xs);
}

/** Read-only git queries (GIT_OPTIONAL_LOCKS=0: not even the index stat cache is rewritten). */
function git(args: string[]): string {
  try {
    return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', env: { ...process.env, GIT_OPTIONAL_LOCKS: '0' }, stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return '';
  }
}

function machine(): Array<[string, string]> {
  const cpus = os.cpus();
  const require = createRequire(import.meta.url);
  const bsqlVersion = (require('better-sqlite3/package.json') as { version: string }).version;
  const db = new Database(':memory:');
  const sqlite = db.prepare('SELECT sqlite_version()').pluck().get() as string;
  db.close();
  const commit = git(['rev-parse', '--short=12', 'HEAD']).trim();
  const dirty = git(['status', '--porcelain', '--untracked-files=no', '--', 'src'])
    .split('\n')
    .map((l) => l.replace(/^\s*\S+\s+/, '').trim())
    .filter((l) => l !== '');
  return [
    ['CPU', `${cpus[0]?.model.trim() ?? 'unknown'} — ${cpus.length} logical cores (os.availableParallelism ${os.availableParallelism()})`],
    ['RAM', `${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB`],
    ['OS', osName()],
    ['Node.js', `${process.version} (V8 ${process.versions.v8})`],
    ['SQLite', `${sqlite} (better-sqlite3 ${bsqlVersion})`],
    ['Temp directory', tmpFilesystem()],
    ['fdatasync of 4 KiB there', `${fmtMs(fsyncLatencyMs())} ms (median of 100)`],
    ['Code', commit === '' ? 'not a git checkout' : `commit ${commit}${dirty.length > 0 ? ` plus uncommitted changes to ${dirty.map((f) => `\`${f}\``).join(', ')}` : ' (src/ unmodified)'}`],
  ];
}

// ---------------------------------------------------------------- report

function sectionMarkdown(s: Section): string {
  const out = [`## ${s.title}`, ...s.method, ...s.body];
  if (s.verdicts.length > 0) {
    out.push(
      mdTable(
        ['target', 'measured', 'verdict'],
        s.verdicts.map((v) => [v.target, v.measured, verdictWord(v)]),
      ),
    );
    const notes = s.verdicts.filter((v) => v.note !== undefined).map((v) => `- ${verdictWord(v).replaceAll('*', '')} — ${v.target}: ${v.note}`);
    if (notes.length > 0) out.push(notes.join('\n'));
  }
  return out.join('\n\n');
}

function report(args: Args, cfg: Config, info: Array<[string, string]>, sections: Section[], ledgers: LargeLedgers, date: Date, failed: string[]): string {
  const cmdArgs = args.raw.length > 0 ? ` -- ${args.raw.join(' ')}` : '';
  const nodeCmd = ['node', ...process.execArgv, path.relative(ROOT, process.argv[1] ?? 'dist-bench/bench/run.js'), ...args.raw].join(' ');
  const all = sections.flatMap((s) => s.verdicts.map((v) => ({ s, v })));
  const met = all.filter((x) => x.v.met).length;
  const unmeasured = all.filter((x) => x.v.notMeasured === true).length;
  const lines: string[] = [
    '# Witness benchmarks',
    '_Generated by `bench/run.ts`. Do not edit by hand: rerun the command below on the machine you care about._',
    mdTable(
      ['', ''],
      [
        ['Date', date.toISOString()],
        ['Command', `\`npm run bench${cmdArgs}\` (runs \`${nodeCmd}\` after compiling)`],
        ['Mode', cfg.quick ? '**quick** (smoke sizes — not the published numbers)' : 'full'],
        ['Benchmarks', sections.map((s) => s.id).join(', ') + (failed.length > 0 ? ` (failed: ${failed.join(', ')})` : '')],
        ['Suite run time', `${elapsedSeconds().toFixed(0)} s`],
        ['Load average (1 min) at section boundaries', loads.join(', ')],
      ],
    ),
    ...(maxLoad > os.cpus().length * 0.75
      ? [
          `> **Note:** the machine was busy with other work during this run (1-minute load average up to ${maxLoad.toFixed(2)} on ${os.cpus().length} cores; the benchmark itself accounts for about 1). Absolute numbers are lower and noisier than on an idle machine; the sides of each comparison are interleaved, so ratios are less affected.`,
        ]
      : []),
    '## Machine',
    mdTable(['', ''], info),
    '## Summary',
    `${met} of ${all.length - unmeasured} targets met${unmeasured > 0 ? ` (${unmeasured} more not measured in this run)` : ''}. Medians of ${cfg.reps} repetitions unless a section says otherwise; every side of a comparison ran in the same process, on the same rows, interleaved.`,
    mdTable(
      ['benchmark', 'target', 'measured', 'verdict'],
      all.map(({ s, v }) => [s.title.replace(/^\d+\.\s*/, ''), v.target, v.measured, verdictWord(v)]),
    ),
  ];
  for (const s of sections) lines.push(sectionMarkdown(s));
  const b = ledgers.info;
  if (b !== undefined) {
    lines.push(
      '## The shared large ledger',
      `Benchmarks 3–5 and 9's reads share one ledger built per run in \`${os.tmpdir()}\` with \`SqliteLedger.prepare()\` + \`appendPrepared()\` in batches of ${fmtInt(b.batch)}, sealed (Merkle nodes + signed checkpoint) every ${fmtInt(b.sealEvery)} events: ${fmtInt(b.events)} events, ${fmtInt(b.sessions)} sessions of 20–80 events (session.start, llm.call → tool.call → tool.result cycles, session.end) by ${b.agents} agents, ~16 sessions interleaved at a time, explicit \`ts\` rising evenly over one month (January 2026), ${b.checkpoints} checkpoints, ${fmtMiB(b.bytes)} MiB on disk. It took ${b.seconds.toFixed(1)} s to build (${fmtInt(b.events / b.seconds)} events/s including sealing). Smaller sizes are file copies taken while it grew; everything is deleted at the end of the run.`,
    );
  }
  lines.push(
    '## Method notes',
    [
      '- Every timing uses `performance.now()` in one Node process started with `--expose-gc`; a full GC runs before each timed repetition. Progress goes to stderr.',
      '- Databases live in a fresh directory under `os.tmpdir()`; each append/recorder repetition uses a new file, so no side benefits from a warmer or smaller database.',
      '- The code measured is the compiled TypeScript of `src/` (tsc output in `dist-bench/src`), the same code `npm run build` ships.',
      "- Targets are the issue's, unchanged; where the issue names no number (memory) the section states the criterion used.",
      '- `npm run bench -- --quick` (or `BENCH_QUICK=1`) is a smoke run with small sizes; `--only append,verify,…` runs a subset; both write `dist-bench/BENCHMARKS.partial.md` unless `--out` is given. `node dist-bench/bench/profile.js append|verify|recorder [events]` prints a CPU profile of one hot path.',
    ].join('\n'),
  );
  return `${lines.join('\n\n')}\n`;
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const cfg = makeConfig(args.quick);
  const selected = new Set<Name>(args.only.length > 0 ? args.only : NAMES);
  const date = new Date();
  log(`Witness benchmarks (${cfg.quick ? 'quick' : 'full'}): ${[...selected].join(', ')}; temp dir ${benchDir()}`);
  if (typeof (globalThis as { gc?: unknown }).gc !== 'function') log('warning: run with node --expose-gc for stable numbers');
  const info = machine();

  const sizes: number[] = [];
  if (selected.has('verify')) sizes.push(cfg.verify.events);
  if (selected.has('query')) sizes.push(cfg.query.events);
  if (selected.has('server')) sizes.push(cfg.query.events);
  if (selected.has('memory')) sizes.push(...cfg.memory.sizes);
  const ledgers = new LargeLedgers(cfg, sizes);

  const runners: Record<Name, () => Promise<Section>> = {
    append: () => benchAppend(cfg),
    recorder: () => benchRecorder(cfg),
    verify: () => benchVerify(cfg, ledgers),
    query: () => benchQuery(cfg, ledgers),
    memory: () => benchMemory(cfg, ledgers),
    gateway: () => benchGateway(cfg),
    modern: () => benchGatewayModern(cfg),
    capture: () => benchCapture(cfg),
    postgres: () => benchPostgres(cfg),
    server: () => benchServer(cfg, ledgers),
    export: () => benchExport(cfg),
    backtest: () => benchBacktest(cfg),
    purge: () => benchPurge(cfg),
    integrations: () => benchIntegrations(cfg),
    hook: () => benchHook(cfg),
    otlp: () => benchOtlp(cfg),
  };
  const sections: Section[] = [];
  const failed: string[] = [];
  for (const name of NAMES) {
    if (!selected.has(name)) continue;
    log(`=== ${name}`);
    noteLoad(`before ${name}`);
    try {
      sections.push(await runners[name]());
    } catch (e) {
      failed.push(name);
      log(`${name} FAILED: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      sections.push({ id: name, title: `${name} (failed)`, method: [], body: [`The benchmark failed: \`${e instanceof Error ? e.message : String(e)}\``], verdicts: [] });
    }
    gc();
  }

  noteLoad('at the end');
  const full = !cfg.quick && args.only.length === 0;
  const out = path.resolve(ROOT, args.out ?? (full ? 'BENCHMARKS.md' : 'dist-bench/BENCHMARKS.partial.md'));
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, report(args, cfg, info, sections, ledgers, date, failed));
  if (args.keep) log(`kept the databases in ${benchDir()}`);
  else cleanupBenchDir();

  const rows = sections.flatMap((s) => s.verdicts.map((v) => `${verdictWord(v).replaceAll('*', '').padEnd(12)}  ${s.id.padEnd(8)}  ${v.target}: ${v.measured}`));
  process.stdout.write(`${rows.join('\n')}\n\nReport written to ${out} (${elapsedSeconds().toFixed(0)} s).\n`);
  if (failed.length > 0) process.exitCode = 1;
}

process.on('SIGINT', () => {
  cleanupBenchDir();
  process.exit(130);
});

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  cleanupBenchDir();
  process.exit(1);
});
