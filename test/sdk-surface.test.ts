import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './helpers/ledger.js';

/**
 * `import 'witness'` is what every agent pays at start-up: it must not load Chromium's driver or a
 * PostgreSQL client, which only captures and `postgres://` stores need (they are imported lazily).
 * Both are CommonJS packages, so whatever loads them shows in the CommonJS module cache.
 */
function modulesLoadedBy(imports: string[], then = ''): string[] {
  const script = [
    ...imports.map((m) => `await import(${JSON.stringify(m)});`),
    then,
    `const { createRequire } = await import('node:module');`,
    `console.log(JSON.stringify(Object.keys(createRequire(import.meta.url).cache)));`,
  ].join('\n');
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: REPO_ROOT, encoding: 'utf8' });
  return JSON.parse(out) as string[];
}

const heavy = (files: string[]) => files.filter((f) => /[/\\]node_modules[/\\](playwright-core|pg|pg-[a-z-]+)[/\\]/.test(f));

describe('the SDK facade', () => {
  it('loads neither playwright-core nor pg when imported', () => {
    const facade = pathToFileURL(path.join(REPO_ROOT, 'dist', 'index.js')).href;
    expect(heavy(modulesLoadedBy([facade]))).toEqual([]);
  });

  it('would see playwright-core if something loaded it (the check can fail)', () => {
    expect(heavy(modulesLoadedBy(['playwright-core'])).length).toBeGreaterThan(0);
  });

  it('loads no pg for a SQLite ledger opened, written and closed through openLedger, and loads it for a postgres:// URL', () => {
    const facade = pathToFileURL(path.join(REPO_ROOT, 'dist', 'index.js')).href;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'witness-surface-'));
    const use = (url: string, refused = false) => {
      const body = `const l = await openLedger(${JSON.stringify(url)}); await l.append([{ stream: 's', agent: { id: 'a' }, kind: 'note', data: { text: 'x' } }]); await l.close();`;
      return `const { openLedger } = await import(${JSON.stringify(facade)}); ${refused ? `try { ${body} } catch {}` : body}`;
    };
    expect(heavy(modulesLoadedBy([], use(`sqlite:${path.join(dir, 'w.db')}`)))).toEqual([]);
    // Port 1 refuses the connection: the driver is loaded all the same, which is what this shows.
    expect(heavy(modulesLoadedBy([], use('postgres://postgres@127.0.0.1:1/test?schema=w', true))).some((f) => /[/\\]pg[/\\]/.test(f))).toBe(true);
  });
});
