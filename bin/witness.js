#!/usr/bin/env node
// The published entry point: the compiled CLI. `npm ci` builds dist/ through the prepare script.
// `witness hook` runs once per tool call of a coding agent: it loads only its own command (hook-main.js).
const { guardStandardStreams, main, outputFailure } = await import(process.argv[2] === 'hook' ? '../dist/cli/commands/hook-main.js' : '../dist/cli/index.js');

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
