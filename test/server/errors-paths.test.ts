import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serverLocations, withoutServerPaths } from '../../src/server/errors.js';
import { createKey, createServer } from '../../src/server/index.js';
import { openLedger, sidecarPaths, type Ledger } from '../../src/store/index.js';
import { tempDir } from '../helpers/tmp.js';

/** A ledger kept where a person would keep one: in folders whose names have spaces. */
const dir = path.join(tempDir('witness-server-errpaths-'), 'Audit Ledgers', 'support team (prod)');
const file = path.join(dir, 'witness.db');

describe('refusals name no file of the server, even in a folder whose name has spaces', () => {
  let ledger: Ledger;
  let agent: string;
  beforeAll(async () => {
    fs.mkdirSync(dir, { recursive: true });
    const writable = await openLedger(`sqlite:${file}`);
    agent = (await createKey(writable, { role: 'agent', agent: 'bot', name: 'bot' }, { who: 'test', recorder: 'cli' })).key;
    await writable.close();
    ledger = await openLedger(`sqlite:${file}`, { create: false, readonly: true });
  });
  afterAll(async () => ledger?.close());

  it('[R-ROLES] a store refusal reaches the API client with the ledger’s location withheld whole', async () => {
    const app = createServer({ ledger });
    const res = await app.request('/v1/events', {
      method: 'POST',
      headers: { authorization: `Bearer ${agent}`, 'content-type': 'application/json' },
      body: JSON.stringify({ events: [{ stream: 's-1', kind: 'note', data: { text: 'x' } }] }),
    });
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('store_readonly');
    expect(body.error.message).toContain('[path withheld]');
    for (const part of ['Audit', 'Ledgers', 'support team', '(prod)', 'witness.db', 'witness-server-errpaths-']) expect(body.error.message).not.toContain(part);
  });

  it('[R-ROLES] the ledger’s own files (database, signing key, seal record, artifacts, the sidecars’ -wal) are replaced exactly, and other paths by the pattern', () => {
    const locations = serverLocations(ledger.info);
    const side = sidecarPaths(file);
    for (const p of [file, side.key, side.sealed, side.artifacts]) expect(locations).toContain(p);
    const said = (p: string) => withoutServerPaths(`Cannot write ${p}: EACCES; check its permissions.`, locations);
    for (const p of [file, `${file}-wal`, side.key, side.sealed, path.join(side.artifacts, 'ab', 'cd')]) {
      const out = said(p);
      expect(out).toMatch(/^Cannot write \[path withheld\]/);
      expect(out, out).not.toMatch(/support|Ledgers|witness\.db/);
    }
    expect(said('/var/lib/other/witness.db')).toBe('Cannot write [path withheld]: EACCES; check its permissions.');
    expect(withoutServerPaths('See /v1/openapi.json.', locations)).toBe('See /v1/openapi.json.');
  });
});
