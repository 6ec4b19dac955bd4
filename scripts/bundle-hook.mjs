// Bundles `witness hook` (dist/cli/commands/hook-main.js, as tsc compiled it) into one CommonJS
// file, dist/hook/hook.cjs, with a V8 code cache beside it (hook.cjs.cache), which bin/witness.js
// runs for `witness hook …`. A coding agent starts the hook once per tool call, and loading ~230 ES
// modules and ~90 CommonJS files one by one (zod, yaml, uuid, the store) took most of its time on
// Node 20, which has no module compile cache (module.enableCompileCache is 22.1+). One script can
// be compiled from a code cache (vm.Script cachedData, https://nodejs.org/api/vm.html#new-vmscriptcode-options):
// V8 then deserializes what it compiled here instead of parsing 2 MB of JavaScript again. A cache
// made by another Node version or with other V8 flags is rejected by V8 and the script compiles
// as usual: slower, the same behaviour.
//
// Run by `npm run build` after tsc. bin/witness.js uses the bundle only when it is at least as new
// as dist/cli/commands/hook-main.js, so a tsc run on its own never leaves a stale hook running.
//
// What stays outside the bundle: better-sqlite3 (a native addon, required from node_modules when
// the store first opens a SQLite file, see LAZY_SQLITE) and pg (required only for postgres://
// stores). The SQLite sealer thread's script (store/sqlite/seal-worker.js) is not beside the
// bundle, so the store seals inline (seal-thread.ts, sealThreadAvailable): what a process that
// records a few events and exits wants, since starting the thread loads the store a second time
// in a new isolate.
//
// Rolldown (https://rolldown.rs, the bundler of Vite): treeshake.moduleSideEffects false for our
// own compiled files lets it drop whole modules whose exports the hook does not use (the
// Anthropic and OpenAI wrappers that src/integrations/index.ts re-exports);
// https://rolldown.rs/reference/InputOptions.treeshake#modulesideeffects
import fs from 'node:fs';
import Module from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DIST = path.join(ROOT, 'dist');
const ENTRY = path.join(DIST, 'cli', 'commands', 'hook-main.js');
const OUT = path.join(DIST, 'hook');
const FILE = path.join(OUT, 'hook.cjs');

fs.rmSync(OUT, { recursive: true, force: true });
let rolldown;
try {
  ({ rolldown } = await import('rolldown'));
} catch (e) {
  // Without the bundler (a production-only install), `witness hook` runs from the compiled modules: slower, the same behaviour.
  process.stderr.write(`bundle-hook: rolldown cannot be loaded (${e.code ?? e.message}); witness hook will run unbundled.\n`);
  process.exit(0);
}
// The store imports better-sqlite3 at its top level, which in one bundle is a require as the hook
// loads: an addon this Node.js cannot load (built for another version, the everyday case after a
// Node upgrade) would then fail the whole hook before it could answer. Required where the store
// constructs its Database (its only use of the import, `new Database(file, options)`), the failure
// is the store's, answered as --fail says like any ledger fault, and a postgres:// store never
// loads it. A store that came to use anything else of the module fails this build (no such export).
const LAZY_SQLITE = '\0witness:lazy-better-sqlite3';
const lazySqlite = {
  name: 'witness-lazy-better-sqlite3',
  resolveId: (id, importer) => (id !== 'better-sqlite3' ? null : importer === LAZY_SQLITE ? { id, external: true } : LAZY_SQLITE),
  load: (id) => (id === LAZY_SQLITE ? 'export default function Database(file, options) {\n  return new (require("better-sqlite3"))(file, options);\n}\n' : null),
};
const escaped = DIST.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const bundle = await rolldown({
  input: ENTRY,
  platform: 'node',
  external: [/^pg$/],
  plugins: [lazySqlite],
  treeshake: { moduleSideEffects: [{ test: new RegExp(`^${escaped}[\\\\/]`), sideEffects: false }] },
  logLevel: 'warn',
});
// One file (dynamic imports inlined, `import('pg')` as require): a vm.Script has no module loader
// to resolve a chunk or an ES module with.
await bundle.write({ file: FILE, format: 'cjs', codeSplitting: false, dynamicImportInCjs: false });
await bundle.close();

// The cache, made exactly as bin/witness.js compiles the file, after its top level has run so that
// what runs at load (zod's schemas, commander) is in it compiled.
const script = new vm.Script(Module.wrap(fs.readFileSync(FILE, 'utf8')), { filename: FILE });
const module = { exports: {} };
script.runInThisContext()(module.exports, Module.createRequire(FILE), module, FILE, OUT);
fs.writeFileSync(`${FILE}.cache`, script.createCachedData());
