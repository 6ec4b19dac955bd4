import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll } from 'vitest';
import { tempDir } from './tmp.js';

/**
 * Tests never write into the real home directory: `witness hooks install` keeps its backup in
 * $WITNESS_STATE_DIR/hooks-backup, else ~/.witness/hooks-backup, and `--user` edits
 * ~/.claude/settings.json and its kind. A test file that runs the CLI calls {@link temporaryHome};
 * test/setup/real-home-guard.ts then fails any file during which those real paths changed.
 */

/** Points HOME and WITNESS_STATE_DIR at a fresh temporary directory for this test file (and every `witness` it starts, which inherit them); restored after. */
export function temporaryHome(): string {
  const home = tempDir('witness-home-');
  const saved = { HOME: process.env['HOME'], WITNESS_STATE_DIR: process.env['WITNESS_STATE_DIR'] };
  process.env['HOME'] = home;
  process.env['WITNESS_STATE_DIR'] = path.join(home, '.witness');
  afterAll(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });
  return home;
}

/** The real paths a test must leave alone: the backup directory of every state directory a witness run here could pick, and the agents' user settings. */
export function realHomePaths(env: NodeJS.ProcessEnv = process.env): string[] {
  const homes = [...new Set([os.userInfo().homedir, env['HOME']].filter((h): h is string => typeof h === 'string' && h !== ''))];
  const states = [...homes.map((h) => path.join(h, '.witness')), ...(env['WITNESS_STATE_DIR'] ? [env['WITNESS_STATE_DIR']] : [])];
  const settings = homes.flatMap((h) => ['.claude/settings.json', '.codex/hooks.json', '.cursor/hooks.json', '.gemini/settings.json'].map((f) => path.join(h, f)));
  return [...new Set([...states.map((s) => path.join(s, 'hooks-backup')), ...settings])];
}

interface Seen {
  path: string;
  /** Modification and change times in nanoseconds and the inode, or null when absent: a file written in place or replaced by a rename differs in one of them. */
  stamp: string | null;
  entries: string[];
}

function look(p: string): Seen {
  let st: fs.BigIntStats;
  try {
    st = fs.lstatSync(p, { bigint: true });
  } catch {
    return { path: p, stamp: null, entries: [] };
  }
  // A directory's mtime moves when an entry is created, renamed or removed: a backup written and removed again within the file still shows.
  return { path: p, stamp: `${st.mtimeNs}/${st.ctimeNs}/${st.ino}/${st.size}`, entries: st.isDirectory() ? fs.readdirSync(p).sort() : [] };
}

/** What `paths` look like now. */
export function snapshot(paths: string[] = realHomePaths()): Seen[] {
  return paths.map(look);
}

/** The paths of `before` that changed since, each with what it is now. */
export function changesSince(before: Seen[]): string[] {
  const changed: string[] = [];
  for (const was of before) {
    const now = look(was.path);
    if (now.stamp === was.stamp) continue;
    if (now.stamp === null) {
      changed.push(`${was.path} (removed)`);
      continue;
    }
    if (!fs.lstatSync(was.path).isDirectory()) {
      changed.push(`${was.path} (${was.stamp === null ? 'created' : 'changed'})`);
      continue;
    }
    const added = now.entries.filter((e) => !was.entries.includes(e));
    const gone = was.entries.filter((e) => !now.entries.includes(e));
    const what = [...(added.length > 0 ? [`added ${added.join(', ')}`] : []), ...(gone.length > 0 ? [`removed ${gone.join(', ')}`] : [])];
    changed.push(`${was.path} (${was.stamp === null ? 'created; ' : ''}${what.length > 0 ? what.join('; ') : 'an entry was written and removed again'})`);
  }
  return changed;
}
