import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { changesSince, realHomePaths, snapshot, temporaryHome } from './real-home.js';
import { tempDir } from './tmp.js';

/** The guard test/setup/real-home-guard.ts runs around every test file, tried on a directory of its own. */

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
// Linux stamps a directory's mtime from a clock that ticks every few milliseconds: wait one tick out.
const TICK = 25;

describe('the real-home guard', () => {
  const root = tempDir('witness-real-home-');

  it('reports a backup left in the watched directory, and one written and removed again', async () => {
    const dir = path.join(root, 'left', 'hooks-backup');
    fs.mkdirSync(dir, { recursive: true });
    const before = snapshot([dir]);
    expect(changesSince(before)).toEqual([]);
    await sleep(TICK);
    fs.writeFileSync(path.join(dir, 'abc.json'), '{}');
    expect(changesSince(before)).toEqual([`${dir} (added abc.json)`]);
    fs.rmSync(path.join(dir, 'abc.json'));
    expect(changesSince(before)).toEqual([`${dir} (an entry was written and removed again)`]);
  });

  it('reports a watched directory or file that appeared, changed or went', async () => {
    const dir = path.join(root, 'new', 'hooks-backup');
    const file = path.join(root, 'settings.json');
    fs.writeFileSync(file, '{}');
    const before = snapshot([dir, file]);
    await sleep(TICK);
    fs.mkdirSync(dir, { recursive: true });
    expect(changesSince(before)).toEqual([`${dir} (created; an entry was written and removed again)`]);
    fs.writeFileSync(`${file}.tmp`, '{"hooks":{}}');
    fs.renameSync(`${file}.tmp`, file);
    expect(changesSince(before)).toEqual([`${dir} (created; an entry was written and removed again)`, `${file} (changed)`]);
    fs.rmSync(file);
    expect(changesSince(before)[1]).toBe(`${file} (removed)`);
  });

  it("watches the state directory's hooks-backup and the four agents' user settings of the real home", () => {
    const home = os.userInfo().homedir;
    expect(realHomePaths({ WITNESS_STATE_DIR: '/srv/witness' })).toContain('/srv/witness/hooks-backup');
    expect(realHomePaths({})).toEqual(
      expect.arrayContaining([
        path.join(home, '.witness', 'hooks-backup'),
        path.join(home, '.claude', 'settings.json'),
        path.join(home, '.codex', 'hooks.json'),
        path.join(home, '.cursor', 'hooks.json'),
        path.join(home, '.gemini', 'settings.json'),
      ]),
    );
  });

  const home = temporaryHome();
  it('temporaryHome points HOME and WITNESS_STATE_DIR of this file (and of every witness it runs) into a temporary directory', () => {
    expect(process.env['HOME']).toBe(home);
    expect(process.env['WITNESS_STATE_DIR']).toBe(path.join(home, '.witness'));
    expect(home.startsWith(os.tmpdir())).toBe(true);
  });
});
