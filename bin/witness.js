#!/usr/bin/env node
// The published entry point: the compiled CLI. `npm ci` builds dist/ through the prepare script.
import fs from 'node:fs';

// `witness hook` runs once per tool call of a coding agent: it loads only its own command, bundled
// into a few files by scripts/bundle-hook.mjs (dist/hook/) unless tsc has compiled the CLI since
// the bundle was made, then as compiled (dist/cli/commands/hook-main.js).
function hookEntry() {
  try {
    if (fs.statSync(new URL('../dist/hook/hook-main.js', import.meta.url)).mtimeMs >= fs.statSync(new URL('../dist/cli/commands/hook-main.js', import.meta.url)).mtimeMs)
      return '../dist/hook/hook-main.js';
  } catch {
    // No bundle (a build without the bundler): the compiled command.
  }
  return '../dist/cli/commands/hook-main.js';
}
const { guardStandardStreams, main, outputFailure } = await import(process.argv[2] === 'hook' ? hookEntry() : '../dist/cli/index.js');

// Before anything is written: a reader that closes early (`witness verify | head -1`) must not turn
// a verdict into exit 1 (src/cli/output.ts).
guardStandardStreams();
const code = await main(process.argv);
// A failed write is reported on a later tick than the write: let every such report arrive first.
await new Promise((resolve) => setImmediate(resolve));
const lost = outputFailure();
if (code === 0 && lost !== undefined) {
  // The command worked but what it printed was lost (not a reader that closed: that is EPIPE).
  process.stderr.write(`witness: The output could not be written (${lost.code ?? lost.message}), so the command is reported as failed; check where standard output goes.\n`);
  process.exitCode = 1;
} else {
  process.exitCode = code;
}
