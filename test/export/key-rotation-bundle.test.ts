import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseSignerKey, signNote } from '../../src/core/index.js';
import { openLedger, sidecarPaths, type AppendRequest } from '../../src/store/index.js';
import { REPO_ROOT, runCli } from '../helpers/ledger.js';
import { tempDir } from '../helpers/tmp.js';
import { refreshManifest } from './verify-v2-fixture.js';

/*
 * An evidence bundle exported across a key rotation (issue 15), run through all three verifiers as an
 * auditor would: `witness verify`, the bundle's own verify.mjs from a directory with no
 * node_modules, and the Python verifier written from docs/FORMAT.md. keys.json carries both keys
 * with their windows in tree sizes; the bundle verifies with both keys pinned; a copy whose newest
 * checkpoint was re-signed by the retired key alone fails as retired_key in all three, and one whose
 * rotation checkpoint lost the new key's signature fails as rotation_unsigned.
 */

const dir = tempDir('witness-rotation-bundle-');
const file = path.join(dir, 'ledger.db');
const store = `sqlite:${file}`;
const note = (i: number): AppendRequest => ({ stream: 's-rot', agent: { id: 'agent' }, kind: 'note', data: { text: `n${i}` } });

interface Verdicts {
  witness: { code: number; failures: string[] };
  mjs: { code: number; failures: string[] };
  python: { code: number; failures: string[] };
}

function run(cmd: string, args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, timeout: 120_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

/** The three verdicts on `bundle` with `keys` pinned (none: the keys the bundle carries). */
async function verdicts(bundle: string, keys: string[]): Promise<Verdicts> {
  const pins = keys.flatMap((k) => ['--trusted-key', k]);
  const w = await runCli(['verify', bundle, '--json', ...pins]);
  const wj = JSON.parse(w.stdout) as { failures: Array<{ code: string }> };
  // verify.mjs as it travels in the bundle, run from a copy outside the repository (no node_modules anywhere up the tree).
  const m = await run(process.execPath, [path.join(bundle, 'verify.mjs'), bundle, '--json', ...pins], path.dirname(bundle));
  const mj = JSON.parse(m.stdout) as { failures: Array<{ code: string }> };
  const p = await run('/usr/bin/python3', [path.join(REPO_ROOT, 'test', 'export', 'independent', 'verify_bundle.py'), bundle, '--json', ...pins], path.dirname(bundle));
  expect(p.stderr, 'verify_bundle.py crashed').toBe('');
  const pj = JSON.parse(p.stdout) as { failures: Array<{ code: string }> };
  return {
    witness: { code: w.code, failures: wj.failures.map((f) => f.code) },
    mjs: { code: m.code, failures: mj.failures.map((f) => f.code) },
    python: { code: p.code, failures: pj.failures.map((f) => f.code) },
  };
}

/** A copy of the bundle whose checkpoint(s) of `size` are re-signed by `keys` only (checkpoint.txt too when it is that one), the manifest's hashes refreshed. */
function forged(name: string, size: number, keys: string[]): string {
  const to = path.join(dir, name);
  fs.cpSync(path.join(dir, 'bundle'), to, { recursive: true });
  const signers = keys.map((k) => parseSignerKey(k));
  const resign = (text: string) => signNote(text.slice(0, text.lastIndexOf('\n\n') + 1), signers);
  const lines = fs
    .readFileSync(path.join(to, 'checkpoints.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as { size: number; note: string });
  let touched = 0;
  for (const l of lines) {
    if (l.size !== size) continue;
    const cpTxt = fs.readFileSync(path.join(to, 'checkpoint.txt'), 'utf8');
    const again = resign(l.note);
    if (cpTxt === l.note) fs.writeFileSync(path.join(to, 'checkpoint.txt'), again);
    l.note = again;
    touched++;
  }
  expect(touched).toBe(1);
  fs.writeFileSync(path.join(to, 'checkpoints.jsonl'), lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
  refreshManifest(to);
  return to;
}

let oldKey = '';
let newKey = '';
let oldVkey = '';
let newVkey = '';
let rotationSize = 0;
let lastSize = 0;

beforeAll(async () => {
  const l = await openLedger(store);
  await l.append([note(0), note(1)]);
  await l.seal();
  await l.close();
  const { key, pub } = sidecarPaths(file);
  oldKey = fs.readFileSync(key, 'utf8').trim();
  oldVkey = fs.readFileSync(pub, 'utf8').trim();

  const r = await runCli(['keys', 'rotate', '--store', store, '--reason', 'yearly rotation', '--json']);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  const rotated = JSON.parse(r.stdout) as { leaf: number; old_key: string; new_key: string; checkpoint: { size: number }; key_file: string; retired_key_file: string };
  expect(rotated.old_key).toBe(oldVkey);
  expect(rotated.key_file).toBe(key);
  expect(fs.readFileSync(rotated.retired_key_file, 'utf8').trim()).toBe(oldKey);
  expect((fs.statSync(key).mode & 0o777).toString(8)).toBe('600');
  newKey = fs.readFileSync(key, 'utf8').trim();
  newVkey = fs.readFileSync(pub, 'utf8').trim();
  expect(newVkey).toBe(rotated.new_key);
  rotationSize = rotated.checkpoint.size;

  const again = await openLedger(store, { create: false, env: {} });
  await again.append([note(2), note(3)]);
  lastSize = (await again.seal())!.size;
  await again.close();

  const e = await runCli(['export', '--store', store, '--session', 's-rot', '-o', path.join(dir, 'bundle')]);
  // The session is left open on purpose (the rotation is what is tested): export warns so, on stderr.
  expect(e.code, e.stderr).toBe(0);
}, 120_000);

describe('a bundle exported across a key rotation', () => {
  it('carries both keys in keys.json with their windows in tree sizes, derived from the ledger', () => {
    const keys = JSON.parse(fs.readFileSync(path.join(dir, 'bundle', 'keys.json'), 'utf8')) as {
      keys: Array<{ vkey: string; from_size: number; until_size: number | null; rotated_at_leaf: number | null; source: string }>;
    };
    expect(keys.keys.map((k) => k.vkey)).toEqual([oldVkey, newVkey]);
    expect(keys.keys[0]).toMatchObject({ from_size: 0, until_size: rotationSize, rotated_at_leaf: null });
    expect(keys.keys[1]).toMatchObject({ from_size: rotationSize, until_size: null, rotated_at_leaf: rotationSize - 1 });
    expect(keys.keys[1]!.source).toMatch(/key\.rotated event at leaf/);
  });

  it('[R-KEY-ROTATION] verifies offline with all three verifiers, with both keys pinned and with the keys it carries', async () => {
    for (const pins of [[oldVkey, newVkey], []]) {
      const v = await verdicts(path.join(dir, 'bundle'), pins);
      expect(v.witness).toEqual({ code: 0, failures: [] });
      expect(v.mjs).toEqual({ code: 0, failures: [] });
      expect(v.python).toEqual({ code: 0, failures: [] });
    }
  });

  it('a checkpoint re-signed by the retired key alone after its window fails as retired_key in all three', async () => {
    expect(lastSize).toBeGreaterThan(rotationSize);
    const b = forged('retired', lastSize, [oldKey]);
    const v = await verdicts(b, [oldVkey, newVkey]);
    for (const x of [v.witness, v.mjs, v.python]) {
      expect(x.code).toBe(1);
      expect(x.failures).toContain('retired_key');
    }
  });

  it('the rotation checkpoint without the new key (or the old key) fails as rotation_unsigned in all three', async () => {
    for (const [name, keys] of [
      ['no-new', [oldKey]],
      ['no-old', [newKey]],
    ] as const) {
      const b = forged(name, rotationSize, [...keys]);
      const v = await verdicts(b, [oldVkey, newVkey]);
      for (const x of [v.witness, v.mjs, v.python]) {
        expect(x.code).toBe(1);
        expect(x.failures).toContain('rotation_unsigned');
      }
    }
  });
});

describe('keys.json is bound and checked against the signed key.rotated events', () => {
  /** A copy of the bundle whose keys.json is rewritten by `edit`, the manifest's hashes refreshed (what a forger can do without any key). */
  function editedKeys(name: string, edit: (keys: Array<Record<string, unknown>>) => Array<Record<string, unknown>>): string {
    const to = path.join(dir, name);
    fs.cpSync(path.join(dir, 'bundle'), to, { recursive: true });
    const k = JSON.parse(fs.readFileSync(path.join(to, 'keys.json'), 'utf8')) as { keys: Array<Record<string, unknown>> };
    fs.writeFileSync(path.join(to, 'keys.json'), `${JSON.stringify({ keys: edit(k.keys) }, null, 2)}\n`);
    refreshManifest(to);
    return to;
  }

  it('the signed export record binds keys.json', () => {
    const events = fs
      .readFileSync(path.join(dir, 'bundle', 'events.jsonl'), 'utf8')
      .trim()
      .split('\n');
    const record = (JSON.parse(events[events.length - 1]!) as { data: { files: Record<string, string> } }).data;
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    expect(record.files['keys.json']).toBe(sha(fs.readFileSync(path.join(dir, 'bundle', 'keys.json'))));
  });

  it('a retired key re-signing the newest checkpoint after the windows were stripped from keys.json fails in all three (review repro)', async () => {
    const stripped = editedKeys('stripped', (keys) => keys.map(({ from_size: _f, until_size: _u, rotated_at_leaf: _r, ...rest }) => rest));
    fs.cpSync(stripped, path.join(dir, 'stripped-retired'), { recursive: true });
    const b = path.join(dir, 'stripped-retired');
    // re-sign the newest checkpoint by the retired key alone, as forge_rot.mjs did
    const cpTxt = fs.readFileSync(path.join(b, 'checkpoint.txt'), 'utf8');
    const again = signNote(cpTxt.slice(0, cpTxt.lastIndexOf('\n\n') + 1), [parseSignerKey(oldKey)]);
    fs.writeFileSync(path.join(b, 'checkpoint.txt'), again);
    const lines = fs
      .readFileSync(path.join(b, 'checkpoints.jsonl'), 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as { note: string });
    lines[lines.length - 1]!.note = again;
    fs.writeFileSync(path.join(b, 'checkpoints.jsonl'), lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
    refreshManifest(b);
    for (const bundle of [stripped, b]) {
      const v = await verdicts(bundle, [oldVkey, newVkey]);
      for (const x of [v.witness, v.mjs, v.python]) {
        expect(x.code, bundle).toBe(1);
        expect(x.failures, bundle).toContain('export_record_mismatch');
        expect(x.failures, bundle).toContain('key_history_mismatch');
      }
    }
  });

  it('a keys.json that drops the rotated key, or moves its rotation, fails in all three', async () => {
    const dropped = editedKeys('dropped', (keys) => [{ ...keys[0], until_size: null }]);
    const moved = editedKeys('moved', (keys) => [keys[0]!, { ...keys[1], rotated_at_leaf: rotationSize - 2 }]);
    for (const bundle of [dropped, moved]) {
      const v = await verdicts(bundle, [oldVkey, newVkey]);
      for (const x of [v.witness, v.mjs, v.python]) {
        expect(x.code, bundle).toBe(1);
        expect(x.failures, bundle).toEqual(expect.arrayContaining(['export_record_mismatch', 'key_history_mismatch']));
      }
    }
  });
});

describe('pinning for a bundle across a rotation', () => {
  it("pinning the key in use at the bundle's checkpoint trusts the older key through keys.json, in all three", async () => {
    const v = await verdicts(path.join(dir, 'bundle'), [newVkey]);
    expect(v.witness).toEqual({ code: 0, failures: [] });
    expect(v.mjs).toEqual({ code: 0, failures: [] });
    expect(v.python).toEqual({ code: 0, failures: [] });
  });

  it('a bundle of everything (the key.rotated payload in scope, its keys compared with keys.json) passes with the current key pinned, in all three', async () => {
    const all = path.join(dir, 'bundle-all');
    const e = await runCli(['export', '--store', store, '--since', '2000-01-01T00:00:00Z', '-o', all]);
    expect(e.code, e.stderr).toBe(0);
    const rotated = fs
      .readFileSync(path.join(all, 'events.jsonl'), 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as { kind: string; data: { old_key?: string; new_key?: string } | null })
      .find((x) => x.kind === 'key.rotated');
    expect(rotated?.data).toMatchObject({ old_key: oldVkey, new_key: newVkey });
    const v = await verdicts(all, [newVkey]);
    expect(v.witness).toEqual({ code: 0, failures: [] });
    expect(v.mjs).toEqual({ code: 0, failures: [] });
    expect(v.python).toEqual({ code: 0, failures: [] });
  });

  it('pinning only the retired key fails: checkpoint.txt is signed by no pinned key, in all three', async () => {
    const v = await verdicts(path.join(dir, 'bundle'), [oldVkey]);
    for (const x of [v.witness, v.mjs, v.python]) {
      expect(x.code).toBe(1);
      expect(x.failures).toEqual(['checkpoint_signature']);
    }
  });

  it('with the current key pinned, a checkpoint re-signed by the retired key alone still fails, in all three', async () => {
    // a checkpoint of the chain after the rotation: retired_key, judged by the windows of the bound keys.json
    const chainForged = await verdicts(forged('retired-pin-new', lastSize, [oldKey]), [newVkey]);
    // checkpoint.txt itself (the stripped-windows forgery above): signed by no pinned key
    const newest = await verdicts(path.join(dir, 'stripped-retired'), [newVkey]);
    for (const [v, code] of [
      [chainForged, 'retired_key'],
      [newest, 'checkpoint_signature'],
    ] as const) {
      for (const x of [v.witness, v.mjs, v.python]) {
        expect(x.code).toBe(1);
        expect(x.failures).toContain(code);
      }
    }
  });
});
