import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';

/**
 * A local RFC 3161 time-stamp authority made with `openssl ts`: a CA, a TSA certificate with the
 * critical timeStamping extended key usage, and a tiny HTTP server that answers each request
 * with `openssl ts -reply`.
 */
export const CONFIG = `[ tsa ]
default_tsa = tsa_config1
[ tsa_config1 ]
serial = ./serial
crypto_device = builtin
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256, sha3-256
accuracy = secs:1
ordering = no
tsa_name = no
ess_cert_id_chain = no
ess_cert_id_alg = sha256
[ v3_tsa ]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature
extendedKeyUsage = critical,timeStamping
[ v3_ca ]
basicConstraints = critical,CA:true
keyUsage = critical,keyCertSign,cRLSign
`;

export function makeCa(dir: string, name: string): void {
  const o = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'tsa.cnf'), CONFIG);
  fs.writeFileSync(path.join(dir, 'serial'), '01\n');
  o([
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '2',
    '-subj',
    `/CN=${name} CA`,
    '-config',
    'tsa.cnf',
    '-extensions',
    'v3_ca',
  ]);
  o(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'tsa.key', '-out', 'tsa.csr', '-subj', `/CN=${name} TSA`]);
  o(['x509', '-req', '-in', 'tsa.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'tsa.pem', '-days', '2', '-extfile', 'tsa.cnf', '-extensions', 'v3_tsa']);
}

/** A time-stamp authority over HTTP on 127.0.0.1: each request answered by `openssl ts -reply` with the CA made in `caDir` by makeCa. */
export async function startTsa(caDir: string): Promise<{ server: http.Server; url: string }> {
  const run = promisify(execFile);
  let n = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const q = path.join(caDir, `q${++n}.tsq`);
      fs.writeFileSync(q, Buffer.concat(chunks));
      run('openssl', ['ts', '-reply', '-config', 'tsa.cnf', '-section', 'tsa_config1', '-queryfile', q, '-signer', 'tsa.pem', '-inkey', 'tsa.key', '-chain', 'ca.pem', '-out', `${q}.tsr`], {
        cwd: caDir,
      }).then(
        () => {
          res.writeHead(200, { 'content-type': 'application/timestamp-reply' });
          res.end(fs.readFileSync(`${q}.tsr`));
        },
        (e: Error) => {
          res.writeHead(500);
          res.end(e.message);
        },
      );
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/tsa` };
}
