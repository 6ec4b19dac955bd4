// Bundles `witness hook` (dist/cli/commands/hook-main.js, as tsc compiled it) into dist/hook/, which
// bin/witness.js runs for `witness hook …`. A coding agent starts the hook once per tool call, and
// loading ~230 ES modules and ~90 CommonJS files one by one (zod, yaml, uuid, the store) took most
// of its time on Node 20, which has no module compile cache (module.enableCompileCache is 22.1+).
// Bundled: about ten files, the ones that only some invocations need still loaded lazily
// (policy and YAML only with --policy; the PostgreSQL driver only for postgres:// stores).
//
// Run by `npm run build` after tsc. bin/witness.js uses the bundle only when it is at least as new
// as dist/cli/commands/hook-main.js, so a tsc run on its own never leaves a stale hook running.
//
// What stays outside the bundle: better-sqlite3 (a native addon, loaded from node_modules as
// before) and pg (loaded only for postgres:// stores). The SQLite sealer thread's script
// (store/sqlite/seal-worker.js) is not beside the bundle, so the store seals inline
// (seal-thread.ts, sealThreadAvailable): what a process that records a few events and exits
// wants, since starting the thread loads the store a second time in a new isolate.
//
// Rolldown (https://rolldown.rs, the bundler of Vite): treeshake.moduleSideEffects false for our
// own compiled files lets it drop whole modules whose exports the hook does not use (the
// Anthropic and OpenAI wrappers and the OTLP code that src/integrations/index.ts re-exports);
// https://rolldown.rs/reference/InputOptions.treeshake#modulesideeffects
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DIST = path.join(ROOT, 'dist');
const ENTRY = path.join(DIST, 'cli', 'commands', 'hook-main.js');
const OUT = path.join(DIST, 'hook');

fs.rmSync(OUT, { recursive: true, force: true });
let rolldown;
try {
  ({ rolldown } = await import('rolldown'));
} catch (e) {
  // Without the bundler (a production-only install), `witness hook` runs from the compiled modules: slower, the same behaviour.
  process.stderr.write(`bundle-hook: rolldown cannot be loaded (${e.code ?? e.message}); witness hook will run unbundled.\n`);
  process.exit(0);
}
const escaped = DIST.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const bundle = await rolldown({
  input: { 'hook-main': ENTRY },
  platform: 'node',
  external: [/^better-sqlite3$/, /^pg$/],
  treeshake: { moduleSideEffects: [{ test: new RegExp(`^${escaped}[\\\\/]`), sideEffects: false }] },
  // The PostgreSQL driver's modules are also imported statically by each other: not a fault.
  onLog: (level, log, handler) => (log.code === 'INEFFECTIVE_DYNAMIC_IMPORT' ? undefined : handler(level, log)),
});
// Names without content hashes: bench/hook.ts imports the chunks by name to time module loading.
await bundle.write({ dir: OUT, format: 'esm', entryFileNames: '[name].js', chunkFileNames: '[name].js' });
await bundle.close();
