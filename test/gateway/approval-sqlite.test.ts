import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, describe, expect, it } from 'vitest';
import type { StoredEvent } from '../../src/core/index.js';
import { keySha256 } from '../../src/gateway/index.js';
import { openLedger, type Ledger } from '../../src/store/index.js';
import { person, writeReviewPolicy } from '../helpers/approvers.js';
import { BIN, REPO_ROOT, oneSentence, runBin } from '../helpers/ledger.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/**
 * Consume-once on one SQLite ledger file shared by two `witness gateway` processes on one host
 * (each its own connection and its own memory of used grants), as test/gateway/approval-postgres.test.ts
 * does on PostgreSQL: only the ledger itself can stop the second release of one grant.
 */

const dir = tempDir('witness-approval-sqlite-');
const EVERYTHING = path.join(REPO_ROOT, 'node_modules', '@modelcontextprotocol', 'server-everything', 'dist', 'index.js');
const AGENT_KEY = 'wk_support-test-key-0000000000000000000000000000';
const alice = person(dir, 'alice@corp');
const POLICY = writeReviewPolicy(path.join(dir, 'review-big-sums.yaml'), [alice]);
// Both gateways look for decisions this often, so both usually see a decision within the same few milliseconds.
const POLL_MS = 20;
const ROUNDS = 8;

if (!fs.existsSync(path.join(REPO_ROOT, 'dist', 'cli', 'index.js'))) {
  throw new Error('dist/ is missing: run `npx tsc -p tsconfig.build.json` before these tests.');
}

const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
});

async function startGateway(store: string): Promise<string> {
  const config = path.join(dir, `gateway-${randomBytes(4).toString('hex')}.yaml`);
  fs.writeFileSync(
    config,
    [
      'listen: "127.0.0.1:0"',
      `policy: ${JSON.stringify(POLICY)}`,
      `approvals: { poll_ms: ${POLL_MS} }`,
      'agents:',
      `  - { id: support-bot, key_sha256: "${keySha256(AGENT_KEY)}" }`,
      'servers:',
      '  - name: everything',
      '    path: /mcp/everything',
      `    command: ${JSON.stringify(process.execPath)}`,
      `    args: ${JSON.stringify([EVERYTHING, 'stdio'])}`,
      '',
    ].join('\n'),
  );
  const child = spawn(process.execPath, [BIN, 'gateway', '--config', config, '--store', store], { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(child);
  let stderr = '';
  return new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`the gateway did not start: ${stderr}`)), 20_000);
    child.stderr!.on('data', (c: Buffer) => {
      stderr += c.toString();
      const m = /listening on (http:\/\/\S+)/.exec(stderr);
      if (m !== null) {
        clearTimeout(t);
        resolve(m[1]!);
      }
    });
    child.once('exit', (code) => reject(new Error(`the gateway exited (${code}): ${stderr}`)));
  });
}

async function mcpClient(url: string): Promise<Client> {
  const client = new Client({ name: 'approval-sqlite-test', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${url}/mcp/everything`), { requestInit: { headers: { Authorization: `Bearer ${AGENT_KEY}` } } }));
  return client;
}

async function until<T>(check: () => Promise<T | undefined>, what: string, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function eventsOf(reader: Ledger, kind: string): Promise<StoredEvent[]> {
  return (await reader.query({ kind, limit: 1000 })).events;
}

const text = (r: object) => (r as { content: Array<{ text: string }> }).content[0]!.text;

describe('approvals on one SQLite ledger shared by two gateway processes', () => {
  it(`releases one grant exactly once when two gateway processes hold identical calls on it, ${ROUNDS} times over, and refuses the other call in one sentence [R-GW-APPROVAL-BINDING]`, async () => {
    const file = tempDb(dir);
    const store = `sqlite:${file}`;
    await (await openLedger(store)).close();
    const [g1, g2] = await Promise.all([startGateway(store), startGateway(store)]);
    const [c1, c2] = await Promise.all([mcpClient(g1), mcpClient(g2)]);
    const reader = await openLedger(store, { create: false, readonly: true });
    let refusedByLedger = 0;
    try {
      for (let round = 0; round < ROUNDS; round++) {
        const a = 1000 + round;
        const first = c1.callTool({ name: 'get-sum', arguments: { a, b: 1 } });
        const request = await until(async () => (await eventsOf(reader, 'approval.request')).find((e) => (e.data?.['arguments'] as { a?: number }).a === a), `round ${round}'s request`);
        const second = c2.callTool({ name: 'get-sum', arguments: { a, b: 1 } });
        await until(
          async () => (await eventsOf(reader, 'note')).find((e) => JSON.stringify(e.data).includes(`Waiting on approval request ${request.id}`)),
          `round ${round}'s second call to wait on the request`,
        );
        // Approved by `witness approve`, a third process on the same file.
        const approved = await runBin(['approve', request.id, '--key', alice.file, '--store', store]);
        expect(approved.code, approved.stderr).toBe(0);
        const decisionId = (await eventsOf(reader, 'approval.decision')).find((e) => e.data?.['request_id'] === request.id)?.id;
        expect(decisionId).toBeDefined();
        const answers = await Promise.all([first, second]);
        const ok = answers.filter((r) => r.isError !== true);
        const refused = answers.filter((r) => r.isError === true);
        expect(ok, `round ${round}`).toHaveLength(1);
        expect(text(ok[0]!)).toContain(String(a + 1));
        expect(refused, `round ${round}`).toHaveLength(1);
        expect(oneSentence(text(refused[0]!))).toMatch(
          /^The call to get-sum was not made: its approval \(request [0-9a-f-]+\) (has already released a call, and a grant is used once|does not match it \(the approval was already used by event [0-9a-f-]+\))\.$/,
        );
        const releases = (await eventsOf(reader, 'policy.decision')).filter((e) => (e.data?.['approval'] as { decision_id?: string } | undefined)?.decision_id === decisionId);
        expect(releases, `round ${round}`).toHaveLength(1);
        if (/grant is used once/.test(text(refused[0]!))) refusedByLedger++;
      }
    } finally {
      await Promise.all([c1.close(), c2.close()]);
    }
    const results = (await eventsOf(reader, 'tool.result')).filter((e) => e.outcome === 'success');
    expect(results).toHaveLength(ROUNDS);
    await reader.close();
    console.log(
      `consume-once race on SQLite: ${ROUNDS} rounds, ${ROUNDS} releases; the ledger's unique index refused the loser in ${refusedByLedger} rounds, the loser read the consumption first in ${ROUNDS - refusedByLedger}`,
    );
    expect(refusedByLedger).toBeGreaterThan(0);
  }, 60_000);
});
