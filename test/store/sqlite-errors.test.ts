import { describe, expect, it } from 'vitest';
import { translateSqliteError } from '../../src/store/sqlite/errors.js';

describe('a SQLite driver that cannot load', () => {
  it('is named as better-sqlite3 built for another Node.js, with the command that mends it, not as a bug', () => {
    // What Node throws when a native addon was compiled for another NODE_MODULE_VERSION (after a Node upgrade).
    const e = Object.assign(
      new Error("The module '/x/node_modules/better-sqlite3/build/Release/better_sqlite3.node' was compiled against a different Node.js version using NODE_MODULE_VERSION 115."),
      {
        code: 'ERR_DLOPEN_FAILED',
      },
    );
    const w = translateSqliteError(e, '/tmp/ledger.db');
    expect(w.code).toBe('store_unavailable');
    expect(w.message).toMatch(/better-sqlite3/);
    expect(w.message).toMatch(/npm rebuild better-sqlite3/);
    expect(w.message).not.toMatch(/bug/);
  });

  it('still calls an unknown error a bug to report', () => {
    const w = translateSqliteError(Object.assign(new Error('something odd'), { code: 'SQLITE_MISMATCH' }), '/tmp/ledger.db');
    expect(w.code).toBe('store_fault');
  });
});
