import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe } from 'vitest';
import { openLedger, sidecarPaths } from '../../src/store/index.js';
import { tempDb, tempDir } from '../helpers/tmp.js';
import { ledgerContract, type DriverUnderTest } from './ledger.contract.js';
import { postgresDriver } from './postgres-driver.js';
import { sqliteEdit } from './sqlite-edit-hook.js';

const dir = tempDir('witness-contract-');

type OpenLedger = typeof openLedger;

const DIST_STORE = new URL('../../dist/store/index.js', import.meta.url);

/**
 * The built package's openLedger. Run from the TypeScript sources the SQLite driver seals inline;
 * built, it seals on a thread of its own (src/store/sqlite/seal-thread.ts), and that path owes the
 * same contract.
 */
async function builtOpenLedger(): Promise<OpenLedger> {
  if (!fs.existsSync(fileURLToPath(DIST_STORE))) throw new Error('dist/ is missing: run `npx tsc -p tsconfig.build.json` before the sqlite-built contract tests.');
  return ((await import(DIST_STORE.href)) as { openLedger: OpenLedger }).openLedger;
}

/** `cp witness.db*` as an operator backs up a closed ledger: the database, key, record and artifacts; never -wal or -shm. */
function copyClosedFiles(file: string): string {
  const copy = tempDb(dir);
  fs.copyFileSync(file, copy);
  const from = sidecarPaths(file);
  const to = sidecarPaths(copy);
  for (const k of ['key', 'pub', 'sealed'] as const) if (fs.existsSync(from[k])) fs.copyFileSync(from[k], to[k]);
  if (fs.existsSync(from.artifacts)) fs.cpSync(from.artifacts, to.artifacts, { recursive: true });
  return copy;
}

function sqlite(name: string, open: () => Promise<OpenLedger>): DriverUnderTest {
  return {
    name,
    open: async () => (await open())(`sqlite:${tempDb(dir)}`),
    // A second connection on the same file, as a second process holds one; the key is found beside it.
    openAgain: async (l, options = {}) => (await open())(`sqlite:${l.info.location}`, { create: false, readonly: options.readonly ?? false }),
    readonly: true,
    childStore: (l) => ({ url: `sqlite:${l.info.location}` }),
    copyClosed: async (l) => (await open())(`sqlite:${copyClosedFiles(l.info.location)}`, { create: false }),
    edit: sqliteEdit,
  };
}

/**
 * Every driver runs the same contract; WITNESS_TEST_DRIVERS=sqlite,postgres picks some. The
 * PostgreSQL driver runs on this machine's server (test/store/postgres-driver.ts), and fails loudly
 * when it is down rather than being skipped.
 */
const DRIVERS: Array<[string, () => DriverUnderTest]> = [
  ['sqlite', () => sqlite('sqlite', async () => openLedger)],
  ['sqlite-built', () => sqlite('sqlite-built', builtOpenLedger)],
  ['postgres', () => postgresDriver('postgres')],
];

const wanted = process.env['WITNESS_TEST_DRIVERS']?.split(',').map((s) => s.trim());
for (const [name, make] of DRIVERS) {
  if (wanted === undefined || wanted.includes(name)) describe(`[R-DRIVER-CONTRACT] Ledger contract: ${name}`, () => ledgerContract(make()));
}
