/**
 * Benchmark — `witness hook claude-code` per invocation (issue 16): a coding agent starts the hook
 * once per tool call, so its wall time is added to every call. Measured side by side in one run,
 * alternating, on the same machine: the real binary answering Claude Code's documented PreToolUse
 * payload (allowed by a policy, recorded into a SQLite ledger), against a bare `node -e 0`, and
 * against the same command run from the compiled modules instead of its bundle (dist/hook/hook.cjs
 * and its V8 code cache, made by scripts/bundle-hook.mjs), which is what it cost before the bundle. To say what limits it, a
 * fresh `node` times the parts on their own: loading better-sqlite3's native addon, loading the
 * bundle, and the SQLite file work the hook cannot skip (opening in WAL mode, a commit, an fsync'd
 * commit and an fsync'd file replace as a seal does, closing).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Config } from './config.js';
import { fmtMs, fmtRatio, freshDbPath, log, mdTable, median, percentile, removeDb, type Section } from './util.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function wall(run: () => void): number {
  const t = performance.now();
  run();
  return performance.now() - t;
}

/** Run in a fresh node: prints the parts' times (ms) as JSON. The bundle is compiled and run as bin/witness.js does it. */
function partsScript(bundle: string, probe: string): string {
  return `
import fs from 'node:fs';
import Module from 'node:module';
import path from 'node:path';
import vm from 'node:vm';
const out = {};
let t = performance.now();
const lap = (name) => { const n = performance.now(); out[name] = n - t; t = n; };
const { default: Database } = await import('better-sqlite3');
new Database(':memory:').close();
lap('addon');
const file = ${JSON.stringify(bundle)};
const script = new vm.Script(Module.wrap(fs.readFileSync(file, 'utf8')), { filename: file, cachedData: fs.readFileSync(file + '.cache') });
if (script.cachedDataRejected) throw new Error('the code cache was rejected');
const module = { exports: {} };
script.runInThisContext()(module.exports, Module.createRequire(file), module, file, path.dirname(file));
lap('modules');
const db = new Database(${JSON.stringify(probe)});
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
db.prepare('SELECT count(*) FROM t').get();
lap('open');
db.prepare('INSERT INTO t (v) VALUES (?)').run('x'.repeat(500));
lap('commit');
db.pragma('synchronous = FULL');
db.prepare('INSERT INTO t (v) VALUES (?)').run('x'.repeat(500));
lap('commitSync');
const tmp = ${JSON.stringify(probe)} + '.rec.tmp';
const fd = fs.openSync(tmp, 'w');
fs.writeSync(fd, 'x'.repeat(300));
fs.fsyncSync(fd);
fs.closeSync(fd);
fs.renameSync(tmp, ${JSON.stringify(probe)} + '.rec');
const dir = fs.openSync(${JSON.stringify(path.dirname(probe))}, 'r');
fs.fsyncSync(dir);
fs.closeSync(dir);
lap('replace');
db.close();
lap('close');
process.stdout.write(JSON.stringify(out));
`;
}

export async function benchHook(cfg: Config): Promise<Section> {
  const n = cfg.quick ? 5 : 40;
  const bin = path.join(ROOT, 'bin', 'witness.js');
  const bundle = path.join(ROOT, 'dist', 'hook', 'hook.cjs');
  const compiled = path.join(ROOT, 'dist', 'cli', 'commands', 'hook-main.js');
  if (!fs.existsSync(bundle) || fs.statSync(bundle).mtimeMs < fs.statSync(compiled).mtimeMs) {
    throw new Error('dist/hook/ is missing or older than dist/cli/: run `npm run build` (which bundles the hook) before this benchmark.');
  }
  const payload = fs.readFileSync(path.join(ROOT, 'test', 'fixtures', 'hooks', 'claude-code', 'pre-tool-use-bash.json'));
  const db = freshDbPath('hook');
  const dbCompiled = freshDbPath('hook-compiled');
  const probe = freshDbPath('hook-probe');
  const policy = path.join(path.dirname(db), 'hook-policy.yaml');
  fs.writeFileSync(policy, 'version: 1\ndefault: allow\nrules:\n  - id: no-rm-rf\n    match: { tool: Bash }\n    when: args.command contains "rm -rf"\n    effect: deny\n');
  const hookArgs = (file: string): string[] => ['hook', 'claude-code', '--agent', 'bench', '--store', `sqlite:${file}`, '--policy', policy];
  // What bin/witness.js does, with the compiled command instead of the bundle.
  const compiledMain = `const m = await import(${JSON.stringify(pathToFileURL(compiled).href)}); m.guardStandardStreams(); process.exitCode = await m.main(['node', 'witness', ...process.argv.slice(1)]);`;
  const runs = {
    bundled: [process.execPath, bin, ...hookArgs(db)],
    compiled: [process.execPath, '--input-type=module', '-e', compiledMain, ...hookArgs(dbCompiled)],
  };
  // The first run of each creates its ledger: not what a tool call pays.
  for (const argv of Object.values(runs)) execFileSync(argv[0]!, argv.slice(1), { input: payload });
  const probeDb = `const { default: D } = await import('better-sqlite3'); const db = new D(${JSON.stringify(probe)}); db.pragma('journal_mode = WAL'); db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)'); db.close();`;
  execFileSync(process.execPath, ['--input-type=module', '-e', probeDb], { cwd: ROOT });
  const hook: number[] = [];
  const hookCompiled: number[] = [];
  const bare: number[] = [];
  const parts: Array<Record<string, number>> = [];
  const script = partsScript(bundle, probe);
  log(`hook: ${n} invocations each of witness hook (bundled and compiled), node -e 0 and the parts alone`);
  for (let i = 0; i < n; i++) {
    bare.push(wall(() => execFileSync(process.execPath, ['-e', '0'])));
    for (const [name, argv] of Object.entries(runs)) {
      const took = wall(() => {
        const r = spawnSync(argv[0]!, argv.slice(1), { input: payload });
        if (r.status !== 0 || r.stdout.length !== 0) throw new Error(`witness hook (${name}) answered ${r.status}: ${r.stdout.toString()}${r.stderr.toString()}`);
      });
      (name === 'bundled' ? hook : hookCompiled).push(took);
    }
    parts.push(JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT }).toString()) as Record<string, number>);
  }
  for (const f of [db, dbCompiled, probe]) removeDb(f);
  for (const f of [policy, `${probe}.rec`]) fs.rmSync(f, { force: true });
  const hp50 = median(hook);
  const bp50 = median(bare);
  const cp50 = median(hookCompiled);
  const ratio = hp50 / bp50;
  const part = (k: string): number => median(parts.map((p) => p[k] ?? Number.NaN));
  const [addon, modules, open, commit, commitSync, replace, close] = ['addon', 'modules', 'open', 'commit', 'commitSync', 'replace', 'close'].map(part) as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const io = open + commit + commitSync + replace + close;
  const extra = hp50 - bp50;
  const limits =
    `Of the ${fmtMs(extra)} ms the hook adds to a bare node (p50s), loading better-sqlite3's native addon takes ${fmtMs(addon)} ms, loading the bundle ${fmtMs(modules)} ms, ` +
    `and SQLite file work like the hook's ${fmtMs(io)} ms (open in WAL mode ${fmtMs(open)}, a commit ${fmtMs(commit)}, an fsync'd commit ${fmtMs(commitSync)}, an fsync'd file replace ${fmtMs(replace)}, close ${fmtMs(close)}); ` +
    `the rest, ${fmtMs(extra - addon - modules - io)} ms, is the hook's own work: reading its flags and the policy, opening the ledger (schema check, signing key), the session lookup, the records, ` +
    'and a checkpoint sealed before it exits (verifying the new events, a synced commit, the seal record replaced and synced), then a close that copies the WAL back into the database.';
  return {
    id: 'hook',
    title: '`witness hook` per invocation (coding-agent hooks)',
    method: [
      `${n} runs each, alternating: \`witness hook claude-code\` (bin/witness.js, which runs the bundle dist/hook/hook.cjs made by scripts/bundle-hook.mjs, compiled from its V8 code cache) fed Claude Code's documented PreToolUse payload for \`Bash\` on stdin, evaluated against a one-rule policy and recorded (session lookup, tool.call, policy.decision, a signed checkpoint at close) into a SQLite ledger; the same command run from the compiled modules (dist/cli/commands/hook-main.js, as before the bundle) into a ledger of its own; a bare \`node -e 0\`; and a fresh \`node\` timing the parts alone (the native addon, the bundle's modules, SQLite open / commit / synced commit / synced file replace / close on a scratch file).`,
    ],
    body: [
      mdTable(
        ['what', 'p50 (ms)', 'p95 (ms)'],
        [
          ['`witness hook claude-code` (PreToolUse, allowed, recorded), bundled', fmtMs(hp50), fmtMs(percentile(hook, 95))],
          ['the same, from the compiled modules (before the bundle)', fmtMs(cp50), fmtMs(percentile(hookCompiled, 95))],
          ['`node -e 0`', fmtMs(bp50), fmtMs(percentile(bare, 95))],
          [
            "loading better-sqlite3's native addon",
            fmtMs(addon),
            fmtMs(
              percentile(
                parts.map((p) => p['addon'] ?? Number.NaN),
                95,
              ),
            ),
          ],
          [
            'loading the bundle (compiled from its code cache, its top level run)',
            fmtMs(modules),
            fmtMs(
              percentile(
                parts.map((p) => p['modules'] ?? Number.NaN),
                95,
              ),
            ),
          ],
          [
            'SQLite: open in WAL mode, commit, fsync’d commit, fsync’d file replace, close',
            fmtMs(io),
            fmtMs(
              percentile(
                parts.map((p) => ['open', 'commit', 'commitSync', 'replace', 'close'].reduce((s, k) => s + (p[k] ?? Number.NaN), 0)),
                95,
              ),
            ),
          ],
        ],
      ),
      `Ratio of p50s: ${fmtRatio(ratio)} bundled, ${fmtRatio(cp50 / bp50)} from the compiled modules. ${limits}`,
    ],
    verdicts: [
      {
        target: '`witness hook` p50 ≤ 2× a bare `node -e 0` p50',
        measured: `${fmtMs(hp50)} ms vs ${fmtMs(bp50)} ms (${fmtRatio(ratio)})`,
        met: ratio <= 2,
        ...(ratio <= 2 ? {} : { note: limits }),
      },
    ],
  };
}
