import path from 'node:path';
import { WitnessError } from '../core/index.js';

export type StoreLocation = { driver: 'sqlite'; path: string } | { driver: 'postgres'; url: string };

export const DEFAULT_STORE = 'sqlite:./witness.db';

/** `sqlite:./witness.db`, `sqlite:/abs/path.db`, a bare path, or `postgres://…`. */
export function parseStoreUrl(url: string): StoreLocation {
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    return { driver: 'postgres', url };
  }
  let p = url;
  if (url.startsWith('sqlite://')) p = url.slice('sqlite://'.length);
  else if (url.startsWith('sqlite:')) p = url.slice('sqlite:'.length);
  else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    throw new WitnessError('invalid_store_url', `Unsupported store "${url}"; use sqlite:./witness.db (or a postgres:// URL once that driver exists).`);
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

/** Files that live beside a SQLite ledger, never inside it. */
export function sidecarPaths(dbPath: string): { key: string; pub: string; artifacts: string } {
  return { key: `${dbPath}.key`, pub: `${dbPath}.pub`, artifacts: `${dbPath}.artifacts` };
}
