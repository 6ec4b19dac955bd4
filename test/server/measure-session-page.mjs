// Measures the viewer's session page on one long session (not a unit test):
//   npx tsc -p tsconfig.build.json && node test/server/measure-session-page.mjs [events=100000] [postgres]
// (`postgres`: a fresh schema on postgres://postgres@127.0.0.1:5432/test, or $WITNESS_TEST_PG_URL, dropped afterwards)
// Builds a SQLite ledger with one session of `events` events (per step: llm.call, tool.call and a
// tool.result tied to it, plus a note), seals it, and times GET /session?id=… in process
// (app.request, an auditor's key) for the first page of steps and for the last, 10 times each.
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createKey, createServer } from '../../dist/server/index.js';
import { openLedger } from '../../dist/store/index.js';

const total = Number(process.argv[2] ?? 100_000);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'witness-measure-session-'));
const pgUrl = process.env.WITNESS_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const schema = `measure_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
const onPostgres = process.argv[3] === 'postgres';
const ledger = onPostgres ? await openLedger(`${pgUrl}?schema=${schema}`, { keyFile: path.join(dir, 'pg.key') }) : await openLedger(`sqlite:${path.join(dir, 'w.db')}`);
const stream = `long-${randomUUID()}`;
const agent = { id: 'measure-bot' };
const t0 = Date.now();
let n = 0;
let batch = [{ stream, agent, kind: 'session.start', data: {} }];
n++;
while (n < total - 1) {
  const call = randomUUID();
  batch.push(
    { stream, agent, kind: 'llm.call', data: { model: 'm', input: [{ role: 'user', content: `step ${n}` }], output: { text: 'calling the tool' } } },
    { stream, agent, id: call, kind: 'tool.call', resource: 'billing', action: 'lookup', outcome: 'success', data: { tool: 'billing.lookup', arguments: { customer: `c-${n}` } } },
    { stream, agent, parent: call, kind: 'note', data: { text: `result of step ${n}` } },
    { stream, agent, kind: 'note', data: { text: 'thinking' } },
  );
  n += 4;
  if (batch.length >= 2000) {
    await ledger.append(batch);
    batch = [];
  }
}
batch.push({ stream, agent, kind: 'session.end', data: { reason: 'completed' } });
await ledger.append(batch);
await ledger.seal();
console.log(`built ${ledger.info.size} events (${n + 1} in the session) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
const { key } = await createKey(ledger, { role: 'auditor', name: 'measure' }, { who: 'measure', recorder: 'cli' });
const app = createServer({ ledger });
const calls = Math.floor((n - 1) / 4);
async function time(label, url) {
  const ms = [];
  let status = 0;
  for (let i = 0; i < 11; i++) {
    const s = performance.now();
    const res = await app.request(url, { headers: { authorization: `Bearer ${key}` } });
    await res.text();
    status = res.status;
    if (i > 0) ms.push(performance.now() - s);
  }
  ms.sort((a, b) => a - b);
  console.log(`${label}: status ${status}, p50 ${ms[5].toFixed(1)} ms, min ${ms[0].toFixed(1)} ms, max ${ms[9].toFixed(1)} ms`);
}
await time('first page of steps', `/session?id=${encodeURIComponent(stream)}`);
await time('middle page of steps', `/session?id=${encodeURIComponent(stream)}&from=${Math.floor(calls / 2)}`);
await time('last page of steps', `/session?id=${encodeURIComponent(stream)}&from=${calls}`);
await ledger.close();
if (onPostgres) {
  const { default: pg } = await import('pg');
  const c = new pg.Client({ connectionString: pgUrl });
  await c.connect();
  await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await c.end();
}
fs.rmSync(dir, { recursive: true, force: true });
