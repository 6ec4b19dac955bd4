/**
 * Benchmark — `witness hook claude-code` per invocation (issue 16): a coding agent starts the hook
 * once per tool call, so its wall time is added to every call. Measured side by side in one run,
 * alternating, on the same machine: the real binary answering Claude Code's documented PreToolUse
 * payload (allowed by a policy, recorded into a SQLite ledger), against a bare `node -e 0`. To say
 * what limits it, the time to import the hook's modules alone (no ledger, no stdin) is measured too.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config } from './config.js';
import { fmtMs, fmtRatio, freshDbPath, log, mdTable, median, percentile, removeDb, type Section } from './util.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function wall(run: () => void): number {
  const t = performance.now();
  run();
  return performance.now() - t;
}

export async function benchHook(cfg: Config): Promise<Section> {
  const n = cfg.quick ? 5 : 40;
  const bin = path.join(ROOT, 'bin', 'witness.js');
  const payload = fs.readFileSync(path.join(ROOT, 'test', 'fixtures', 'hooks', 'claude-code', 'pre-tool-use-bash.json'));
  const db = freshDbPath('hook');
  const policy = path.join(path.dirname(db), 'hook-policy.yaml');
  fs.writeFileSync(policy, 'version: 1\ndefault: allow\nrules:\n  - id: no-rm-rf\n    match: { tool: Bash }\n    when: args.command contains "rm -rf"\n    effect: deny\n');
  const args = [bin, 'hook', 'claude-code', '--agent', 'bench', '--store', `sqlite:${db}`, '--policy', policy];
  // The first run creates the ledger: not what a tool call pays.
  execFileSync(process.execPath, args, { input: payload });
  const hook: number[] = [];
  const bare: number[] = [];
  const imports: number[] = [];
  const importHook = `const t=performance.now();await import(${JSON.stringify(path.join(ROOT, 'dist', 'cli', 'commands', 'hook-main.js'))});await import(${JSON.stringify(path.join(ROOT, 'dist', 'cli', 'commands', 'hook-run.js'))});process.stdout.write(String(performance.now()-t))`;
  log(`hook: ${n} invocations each of witness hook, node -e 0 and the import alone`);
  for (let i = 0; i < n; i++) {
    bare.push(wall(() => execFileSync(process.execPath, ['-e', '0'])));
    hook.push(
      wall(() => {
        const r = spawnSync(process.execPath, args, { input: payload });
        if (r.status !== 0 || r.stdout.length !== 0) throw new Error(`witness hook answered ${r.status}: ${r.stdout.toString()}${r.stderr.toString()}`);
      }),
    );
    imports.push(Number(execFileSync(process.execPath, ['--input-type=module', '-e', importHook]).toString()));
  }
  removeDb(db);
  fs.rmSync(policy, { force: true });
  const hp50 = median(hook);
  const bp50 = median(bare);
  const ratio = hp50 / bp50;
  const ip50 = median(imports);
  return {
    id: 'hook',
    title: '`witness hook` per invocation (coding-agent hooks)',
    method: [
      `${n} runs each, alternating: \`witness hook claude-code\` (bin/witness.js, its fast path that loads only the hook command) fed Claude Code's documented PreToolUse payload for \`Bash\` on stdin, evaluated against a one-rule policy and recorded (session lookup, tool.call, policy.decision) into a SQLite ledger; a bare \`node -e 0\`; and, in a fresh \`node\`, the import of the hook's modules alone (hook-main.js and hook-run.js: core, store, recorder, policy, approvals).`,
    ],
    body: [
      mdTable(
        ['what', 'p50 (ms)', 'p95 (ms)'],
        [
          ['`witness hook claude-code` (PreToolUse, allowed, recorded)', fmtMs(hp50), fmtMs(percentile(hook, 95))],
          ['`node -e 0`', fmtMs(bp50), fmtMs(percentile(bare, 95))],
          ["importing the hook's modules (inside a running node)", fmtMs(ip50), fmtMs(percentile(imports, 95))],
        ],
      ),
      `Ratio of p50s: ${fmtRatio(ratio)}. Of the hook's p50, ${fmtMs(ip50)} ms is module loading; the rest is node's own start (${fmtMs(bp50)} ms) and the hook's work (opening the ledger, one query, three records, closing).`,
    ],
    verdicts: [
      {
        target: '`witness hook` p50 ≤ 2× a bare `node -e 0` p50',
        measured: `${fmtMs(hp50)} ms vs ${fmtMs(bp50)} ms (${fmtRatio(ratio)})`,
        met: ratio <= 2,
        ...(ratio <= 2
          ? {}
          : {
              note: `Module loading (${fmtMs(ip50)} ms p50 for core, store, recorder, policy and approvals as separate ES modules, zod schemas built at import) is most of the gap; a bundled or snapshotted hook entry would be the next step.`,
            }),
      },
    ],
  };
}
