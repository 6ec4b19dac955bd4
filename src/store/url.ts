import fs from 'node:fs';
import path from 'node:path';
import { WitnessError } from '../core/index.js';

export type StoreLocation = { driver: 'sqlite'; path: string } | { driver: 'postgres'; url: string };

export const DEFAULT_STORE = 'sqlite:./witness.db';

/**
 * `sqlite:./witness.db`, `sqlite:/abs/path.db`, `sqlite:///abs/path.db`, a bare path, or
 * `postgres://…` (schemes in any case). A bare path whose first segment looks like a scheme
 * (`sqllite:./w.db`) is refused rather than silently created as a file of that name, unless that
 * segment exists (an existing `logs:2026/` directory) or is a drive letter (`C:\\`); write
 * `./name:with:colons.db` or `sqlite:name:with:colons.db` for a new one.
 */
export function parseStoreUrl(url: string): StoreLocation {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  if (scheme === 'postgres' || scheme === 'postgresql') {
    if (!/^[a-z]+:\/\//i.test(url)) throw new WitnessError('invalid_store_url', `The store "${url}" is not a PostgreSQL URL; write postgres://user@host/database.`);
    return { driver: 'postgres', url };
  }
  let p = url;
  if (scheme === 'sqlite') p = url.replace(/^sqlite:(\/\/)?/i, '');
  else if (scheme !== undefined && !/^[a-z]:[\\/]/i.test(url) && !fs.existsSync(url.split(/[\\/]/)[0]!)) {
    const asPath = /^[^:]*:\/\//.test(url) ? '' : `, or write ./${url} for a file name with a colon`;
    throw new WitnessError('invalid_store_url', `The store "${url}" starts with "${scheme}:", which is not a known scheme; use sqlite:<file> or postgres://…${asPath}.`);
  }
  if (p === '' || p === ':memory:') {
    throw new WitnessError('invalid_store_url', `The store "${url}" names no file; use sqlite:./witness.db or another file path.`);
  }
  return { driver: 'sqlite', path: path.resolve(p) };
}

/**
 * The file of a SQLite store. Until the PostgreSQL driver exists (see the issues), this is the one
 * place that says so.
 */
export function sqlitePath(url: string): string {
  const loc = parseStoreUrl(url);
  if (loc.driver !== 'sqlite') {
    throw new WitnessError('invalid_store_url', 'The PostgreSQL driver is not built yet; use a sqlite: store for now.');
  }
  return loc.path;
}

/**
 * Files that live beside a SQLite ledger, never inside it. `sealed` is the last checkpoint the
 * signing key signed for this ledger (see src/store/seal-record.ts).
 */
export function sidecarPaths(dbPath: string): { key: string; pub: string; sealed: string; artifacts: string } {
  return { key: `${dbPath}.key`, pub: `${dbPath}.pub`, sealed: `${dbPath}.sealed`, artifacts: `${dbPath}.artifacts` };
}
