import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseStoreUrl } from '../../src/store/index.js';
import { isWitnessError } from '../../src/core/index.js';
import { buildLedger, oneSentence, runBin, runCli, type BuiltLedger } from '../helpers/ledger.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * Bad usage is answered like every other error: exit 2 and one sentence on stderr saying what is
 * wrong and what to do, never commander's multi-line text, an "internal error", or a guess that
 * turns a typo into a path.
 */

const dir = tempDir('witness-usage-');
let base: BuiltLedger;

beforeAll(async () => {
  base = await buildLedger(dir);
});

describe("commander's usage errors", () => {
  const cases: Array<[string[], RegExp]> = [
    [['verify', '--bogus'], /unknown option '--bogus'.*witness verify --help/],
    [['query', '--stor', 'x'], /unknown option '--stor' \(did you mean --store\?\).*witness query --help/],
    [['query', '--store'], /option '--store <url>' argument missing.*witness query --help/],
    [['frobnicate'], /unknown command 'frobnicate'.*witness --help/],
    // -o is optional to commander since --otlp sends instead of writing; the command says which it needs.
    [['export', '--session', 'x'], /witness export needs -o <path> \(or --otlp <url> to send spans\).*witness export --help/],
    [['approve'], /missing required argument 'request'.*witness approve --help/],
    [['verify', 'one', 'two'], /too many arguments for 'verify'; expected 1 argument but got 2.*witness verify --help/],
  ];

  it('[R-CLI-USAGE] print one sentence naming the command to get help for, and exit 2', async () => {
    for (const [args, expected] of cases) {
      const r = await runCli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stdout, args.join(' ')).toBe('');
      expect(oneSentence(r.stderr), args.join(' ')).toMatch(expected);
    }
  });

  it('[R-CLI-USAGE] print one sentence from the real binary too, and an error object with --json', async () => {
    const r = await runBin(['verify', '--bogus']);
    expect(r.code).toBe(2);
    expect(oneSentence(r.stderr)).toMatch(/^unknown option '--bogus'/);
    const json = await runCli(['query', '--json', '--limit']);
    expect(json.code).toBe(2);
    expect(JSON.parse(json.stdout)).toEqual({ error: { code: 'invalid_argument', message: expect.stringContaining("option '--limit <n>' argument missing") } });
    oneSentence(json.stderr);
  });

  it('still print help with exit 0 for --help, and the version for --version', async () => {
    const help = await runCli(['verify', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: witness verify');
    expect(help.stderr).toBe('');
    expect((await runCli(['--version'])).code).toBe(0);
  });
});

describe('out-of-range times', () => {
  it('[R-CLI-USAGE] refuse --since and --until spans or times beyond the years 0000-9999 as bad usage, not an internal error', async () => {
    const store = `sqlite:${base.file}`;
    for (const [flag, value] of [
      ['--since', '99999999999h'],
      ['--until', '9999999999999d'],
      ['--since', '+275760-09-13T00:00:00.000Z'],
      ['--since', '10000-01-01'],
      ['--until', '2026-02-30'],
    ] as const) {
      const r = await runCli(['query', '--store', store, flag, value]);
      expect(r.code, `${flag} ${value}`).toBe(2);
      const sentence = oneSentence(r.stderr);
      expect(sentence, `${flag} ${value}`).toContain(`${flag} "${value}"`);
      expect(sentence).not.toMatch(/internal error/i);
    }
  });

  it('[R-CLI-USAGE] still accept ISO-8601 times with an offset and spans up to the year 0000', async () => {
    const store = `sqlite:${base.file}`;
    for (const args of [
      ['--since', '2020-01-01T10:00:00+02:00'],
      ['--since', '2020-01-01'],
      ['--since', '700000d'],
      ['--until', '2999-12-31T23:59:59.999Z'],
    ]) {
      const r = await runCli(['query', '--store', store, '--json', ...args]);
      expect(r.code, args.join(' ')).toBe(0);
      expect((JSON.parse(r.stdout) as { events: unknown[] }).events.length, args.join(' ')).toBe(13);
    }
  });
});

describe('verify with a path that is not there', () => {
  it('[R-CLI-USAGE] exits 2 (bad usage), not 1 (verification failed), for a bundle directory that does not exist', async () => {
    const r = await runBin(['verify', '/no/such/dir']);
    expect(r.code).toBe(2);
    expect(oneSentence(r.stderr)).toMatch(/^\/no\/such\/dir does not exist/);
  });

  it('[R-CLI-USAGE] exits 2 for a bundle argument that is a file, pointing at --store for a ledger file', async () => {
    const r = await runCli(['verify', base.file]);
    expect(r.code).toBe(2);
    expect(oneSentence(r.stderr)).toContain(`--store sqlite:${base.file}`);
  });
});

describe('a mistyped store scheme', () => {
  it('[R-CLI-USAGE] is bad usage naming the known schemes, and creates nothing', async () => {
    const cwd = fs.mkdtempSync(path.join(dir, 'cwd-'));
    for (const store of ['sqllite:./w.db', 'sqlite3:w.db', 'postgress://db.example/w', 'file:w.db']) {
      const r = await runBin(['init', '--store', store], { cwd });
      expect(r.code, store).toBe(2);
      const sentence = oneSentence(r.stderr);
      expect(sentence, store).toContain(`"${store.split(':')[0]}:"`);
      expect(sentence, store).toMatch(/sqlite:.*postgres:\/\//);
    }
    expect(fs.readdirSync(cwd)).toEqual([]);
    expect(
      isWitnessError(
        catchError(() => parseStoreUrl('sqllite:/tmp/w.db')),
        'invalid_store_url',
      ),
    ).toBe(true);
  });

  it('[R-CLI-USAGE] keeps sane paths working: ./a:b, an existing directory a:b/, a drive letter, any case of sqlite:', async () => {
    const cwd = fs.mkdtempSync(path.join(dir, 'colons-'));
    const r = await runBin(['init', '--store', './dir:with:colons.db'], { cwd });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(fs.existsSync(path.join(cwd, 'dir:with:colons.db'))).toBe(true);

    fs.mkdirSync(path.join(cwd, 'logs:2026'));
    const inDir = await runBin(['init', '--store', 'logs:2026/w.db'], { cwd });
    expect(inDir.code).toBe(0);
    expect(fs.existsSync(path.join(cwd, 'logs:2026', 'w.db'))).toBe(true);
    // The file now exists, so the same spelling keeps naming it.
    expect((await runBin(['verify', '--store', 'dir:with:colons.db'], { cwd })).code).toBe(0);

    expect(parseStoreUrl('SQLite:/var/lib/w.db')).toEqual({ driver: 'sqlite', path: '/var/lib/w.db' });
    expect(parseStoreUrl('sqlite:///var/lib/w.db')).toEqual({ driver: 'sqlite', path: '/var/lib/w.db' });
    expect(parseStoreUrl('C:\\ledgers\\w.db').driver).toBe('sqlite');
    expect(parseStoreUrl('postgres://u@db.example/w')).toEqual({ driver: 'postgres', url: 'postgres://u@db.example/w' });
  });
});

function catchError(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  return undefined;
}
