#!/usr/bin/env node
// The published entry point: the compiled CLI. `npm ci` builds dist/ through the prepare script.
import fs from 'node:fs';
import Module from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';

// `witness hook` runs once per tool call of a coding agent: it loads only its own command, bundled
// into one script by scripts/bundle-hook.mjs (dist/hook/hook.cjs) and compiled from the V8 code
// cache made with it, unless tsc has compiled the CLI since the bundle was made: then as compiled
// (dist/cli/commands/hook-main.js).
function loadHook() {
  const file = fileURLToPath(new URL('../dist/hook/hook.cjs', import.meta.url));
  try {
    if (fs.statSync(file).mtimeMs < fs.statSync(new URL('../dist/cli/commands/hook-main.js', import.meta.url)).mtimeMs) return undefined;
  } catch {
    // No bundle (a build without the bundler): the compiled command.
    return undefined;
  }
  let cachedData;
  try {
    cachedData = fs.readFileSync(`${file}.cache`);
  } catch {
    // Compiled from source instead (V8 also ignores a cache another Node version made).
  }
  // Compiled exactly as scripts/bundle-hook.mjs compiles it to make the cache.
  const script = new vm.Script(Module.wrap(fs.readFileSync(file, 'utf8')), { filename: file, cachedData });
  const module = { exports: {} };
  script.runInThisContext()(module.exports, Module.createRequire(file), module, file, path.dirname(file));
  return module.exports;
}
const { guardStandardStreams, main, outputFailure } =
  (process.argv[2] === 'hook' ? loadHook() : undefined) ?? (await import(process.argv[2] === 'hook' ? '../dist/cli/commands/hook-main.js' : '../dist/cli/index.js'));

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
