import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/**
 * A PostgreSQL server of the test's own that demands a password (scram-sha-256), since the
 * machine's cluster trusts every connection from 127.0.0.1 and so cannot tell a connection that
 * carried the password from one that did not. Debian's server binaries, a fresh cluster in a
 * temporary directory, run as the `postgres` account when the tests run as root (initdb refuses
 * root); every connection is logged, so a test can count which ones authenticated.
 */

const BIN = fs.existsSync('/usr/lib/postgresql') ? path.join('/usr/lib/postgresql', fs.readdirSync('/usr/lib/postgresql').sort().at(-1) ?? '', 'bin') : '';

export interface PasswordServer {
  /** postgres://postgres@127.0.0.1:<port>/postgres, without the password. */
  url: string;
  password: string;
  /** The server log so far. */
  log(): string;
  stop(): void;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export async function startPasswordServer(password: string): Promise<PasswordServer> {
  if (!fs.existsSync(path.join(BIN, 'initdb'))) throw new Error('PostgreSQL server binaries are missing under /usr/lib/postgresql; install postgresql to run the password tests.');
  const asRoot = process.getuid?.() === 0;
  const run = (file: string, args: string[]) => execFileSync(asRoot ? 'runuser' : file, asRoot ? ['-u', 'postgres', '--', file, ...args] : args, { stdio: 'pipe' });
  // Its own directory straight under the temporary root: the server's account must reach it.
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'witness-pg-password-'));
  const pwfile = path.join(home, 'pw');
  fs.writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
  if (asRoot) execFileSync('chown', ['-R', 'postgres', home]);
  const data = path.join(home, 'data');
  const logFile = path.join(home, 'log');
  run(path.join(BIN, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=scram-sha-256', `--pwfile=${pwfile}`, '-N']);
  const port = await freePort();
  run(path.join(BIN, 'pg_ctl'), ['-D', data, '-w', '-l', logFile, '-o', `-p ${port} -k ${home} -c listen_addresses=127.0.0.1 -c log_connections=on -c fsync=off`, 'start']);
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    password,
    log: () => fs.readFileSync(logFile, 'utf8'),
    stop: () => {
      try {
        run(path.join(BIN, 'pg_ctl'), ['-D', data, '-m', 'immediate', 'stop']);
      } finally {
        fs.rmSync(home, { recursive: true, force: true });
      }
    },
  };
}
