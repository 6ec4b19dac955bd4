import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeDirectory } from '../../src/export/index.js';
import { thrown } from '../helpers/errors.js';
import { REPO_ROOT } from '../helpers/ledger.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * The one way Witness makes a directory a person named (`export -o`, `demo --dir`): level by level
 * from the nearest existing ancestor, so that a refusal is final and said in one sentence, never
 * Node's recursive mkdir, which retries forever where the file system answers ENOENT (/proc, /sys).
 */

const dir = tempDir('witness-directory-');
const OUTPUT = { what: 'output directory', flag: '-o' };

describe('makeDirectory', () => {
  it('creates every missing level, with the mode asked for, and leaves an existing directory as it is', () => {
    const nested = path.join(dir, 'a', 'b', 'c');
    makeDirectory(nested, { ...OUTPUT, mode: 0o700 });
    for (const d of [path.join(dir, 'a'), path.join(dir, 'a', 'b'), nested]) {
      expect(fs.statSync(d).isDirectory(), d).toBe(true);
      expect(fs.statSync(d).mode & 0o777, d).toBe(0o700);
    }
    fs.chmodSync(nested, 0o755);
    makeDirectory(nested, { ...OUTPUT, mode: 0o700 });
    expect(fs.statSync(nested).mode & 0o777).toBe(0o755);
  });

  it('[R-CLI-USAGE] refuses a path that is a file, or lies under one, in one sentence naming the path and the flag', () => {
    const file = path.join(dir, 'a-file');
    fs.writeFileSync(file, 'not a directory\n');
    const exists = thrown(() => makeDirectory(file, { what: 'demo directory', flag: '--dir' }));
    expect(exists.code).toBe('invalid_argument');
    expect(exists.message).toBe(`The demo directory ${file} exists and is not a directory; choose another path with --dir.`);
    const under = thrown(() => makeDirectory(path.join(file, 'run'), OUTPUT));
    expect(under.code).toBe('invalid_argument');
    expect(under.message).toBe(`Cannot create the output directory ${path.join(file, 'run')} (${file} is not a directory); choose a writable path with -o.`);
  });

  it('[R-CLI-USAGE] gives up at once where the file system answers ENOENT for a directory whose parent exists (/proc)', async () => {
    // In a process of its own (the built module), so that a regression to a retrying mkdir fails
    // this test by its timeout instead of hanging the test worker.
    const script = `import { makeDirectory } from ${JSON.stringify(path.join(REPO_ROOT, 'dist', 'export', 'index.js'))};
try { makeDirectory(process.argv[1], { what: 'output directory', flag: '-o' }); console.log('{}'); }
catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`;
    const out = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, ['--input-type=module', '-e', script, '/proc/witness-directory-test/a'], { timeout: 10_000 }, (err, stdout, stderr) =>
        err === null ? resolve(stdout) : reject(new Error(`${err.message}\n${stderr}`)),
      ),
    );
    expect(JSON.parse(out)).toEqual({
      code: 'invalid_argument',
      message: 'Cannot create the output directory /proc/witness-directory-test/a (the file system refused it (ENOENT)); choose a writable path with -o.',
    });
  });
});
