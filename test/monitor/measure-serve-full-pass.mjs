// Measures how `witness serve --monitor` answers while the monitor verifies the whole ledger (not a unit test):
//   npm run build && node test/monitor/measure-serve-full-pass.mjs [events=100000] [seconds=30] [other-checkout/bin/witness.js]
// Builds a sealed SQLite ledger of `events` events (sessions of 50 events, sealed every 10,000),
// lets `witness monitor --once` catch up on it (so the server's passes do only the full pass),
// starts the real binary with --monitor --full-every 1s --monitor-interval 200ms (a full pass is
// due on every pass, back to back), and times GET /healthz one request at a time for `seconds`,
// then the same with no monitor for comparison. Prints p50, p99 and max for each. Given another
// checkout's bin/witness.js (built), runs its serve --monitor too, alternating with this one's, twice.
import { execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openLedger } from '../../dist/store/index.js';

const total = Number(process.argv[2] ?? 100_000);
const seconds = Number(process.argv[3] ?? 30);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const bin = path.join(root, 'bin', 'witness.js');
const other = process.argv[4];
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'witness-measure-full-pass-'));
const file = path.join(dir, 'w.db');
const store = `sqlite:${file}`;

const t0 = Date.now();
const ledger = await openLedger(store, { name: 'measure' });
let n = 0;
let batch = [];
while (n < total) {
  const stream = `s-${randomUUID()}`;
  const agent = { id: `bot-${n % 7}` };
  for (let i = 0; i < 50 && n < total; i++, n++) {
    const kind = i === 0 ? 'session.start' : i % 3 === 0 ? 'tool.call' : 'note';
    const data = kind === 'tool.call' ? { tool: 'billing.lookup', arguments: { customer: `c-${n}` } } : kind === 'note' ? { text: `step ${n}` } : {};
    batch.push({ stream, agent, kind, data, recorder: { kind: 'gateway' } });
  }
  if (batch.length >= 2000) {
    await ledger.append(batch);
    batch = [];
  }
  if (n % 10_000 === 0) {
    if (batch.length > 0) await ledger.append(batch);
    batch = [];
    await ledger.seal();
  }
}
if (batch.length > 0) await ledger.append(batch);
await ledger.seal();
await ledger.close();
console.log(`built ${n} events in ${((Date.now() - t0) / 1000).toFixed(1)} s at ${file}`);

const t1 = Date.now();
execFileSync(process.execPath, [bin, 'monitor', '--once', '--store', store], { stdio: 'ignore' });
console.log(`witness monitor --once (first pass, full verification included): ${((Date.now() - t1) / 1000).toFixed(1)} s`);

async function measure(label, extra, witness = bin) {
  const child = spawn(process.execPath, [witness, 'serve', '--store', store, '--port', '0', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (s) => (out += s));
  child.stderr.setEncoding('utf8').on('data', (s) => (err += s));
  let url;
  for (let i = 0; i < 300 && url === undefined; i++) {
    url = /listening on (http:\/\/\S+?) /.exec(out)?.[1];
    if (url === undefined) await new Promise((r) => setTimeout(r, 100));
  }
  if (url === undefined) throw new Error(`serve did not start: ${err}`);
  const ms = [];
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end) {
    const s = performance.now();
    const res = await fetch(`${url}/healthz`);
    await res.text();
    ms.push(performance.now() - s);
  }
  child.kill('SIGTERM');
  await new Promise((r) => child.on('exit', r));
  ms.sort((a, b) => a - b);
  const q = (p) => ms[Math.min(ms.length - 1, Math.floor(p * ms.length))].toFixed(1);
  const passes = (err.match(/full verification/g) ?? []).length;
  console.log(
    `${label}: ${ms.length} requests in ${seconds} s, p50 ${q(0.5)} ms, p99 ${q(0.99)} ms, max ${ms[ms.length - 1].toFixed(1)} ms${passes > 0 ? ` (${passes} line(s) naming full verification)` : ''}`,
  );
  return err;
}

const monitoring = ['--monitor', '--full-every', '1s', '--monitor-interval', '200ms'];
await measure('no monitor', []);
let err = '';
for (let round = 0; round < (other === undefined ? 1 : 2); round++) {
  if (other !== undefined) await measure(`${other}: serve --monitor, a full pass every pass`, monitoring, other);
  err = await measure('serve --monitor, a full pass every pass', monitoring);
}
const state = JSON.parse(fs.readFileSync(`${file}.monitor.json`, 'utf8'));
console.log(`last full pass: ${JSON.stringify(state.lastFull)}`);
if (/ALERT/.test(err)) console.log(err);
fs.rmSync(dir, { recursive: true, force: true });
