import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { NOT_RECORDED } from '../../src/gateway/index.js';
import { person, writeReviewPolicy } from '../helpers/approvers.js';
import { REPO_ROOT, readRows, tamper } from '../helpers/ledger.js';
import { rawProxy } from '../helpers/proxy.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/**
 * A call under a review rule first reads the ledger's approval requests: an unused grant releases
 * it, a pending request for exactly this call is joined. When that read fails, the gateway cannot
 * know either, so it refuses the call (fail closed) instead of opening a second request as if
 * there were none. End to end with the real `witness proxy` binary in front of server-everything;
 * the read is made to fail for real by damaging the stored approval request in the SQLite file.
 */

const dir = tempDir('witness-approval-read-');
const EVERYTHING = path.join(REPO_ROOT, 'node_modules', '@modelcontextprotocol', 'server-everything', 'dist', 'index.js');
const POLICY = writeReviewPolicy(path.join(dir, 'review.yaml'), [person(dir, 'alice@corp')]);
const INIT = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'approval-read', version: '1' } } });
const CALL = (id: number) => JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'get-sum', arguments: { a: 500, b: 1 } } });

if (!fs.existsSync(path.join(REPO_ROOT, 'dist', 'cli', 'index.js'))) {
  throw new Error('dist/ is missing: run `npx tsc -p tsconfig.build.json` before these tests.');
}

async function until(check: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('a review call when the approval requests cannot be read', () => {
  it('is refused with a JSON-RPC error and recorded as failed, and no second approval request is opened [R-GW-FAIL-CLOSED] [R-GW-APPROVAL]', async () => {
    const store = tempDb(dir);
    const p = rawProxy(['proxy', '--agent', 'support-bot', '--server', 'everything', '--policy', POLICY, '--store', `sqlite:${store}`, '--', process.execPath, EVERYTHING, 'stdio']);
    try {
      p.send(INIT);
      expect(await p.next()).toMatchObject({ id: 1, result: { serverInfo: expect.anything() } });
      p.send(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }));
      p.send(CALL(2));
      const kinds = () => readRows(store).map((r) => r.kind);
      await until(() => kinds().includes('approval.request'), "the first call's approval request");
      // The stored request is damaged: reading the ledger's approval requests now fails.
      tamper(store, (db) => db.prepare(`UPDATE events SET data = '{' WHERE kind = 'approval.request'`).run());

      // The same call again: it would join the pending request, if the request could be read.
      p.send(CALL(3));
      const answer = (await p.until(3)).find((m) => m['id'] === 3)!;
      expect(answer).toMatchObject({ jsonrpc: '2.0', id: 3, error: { code: NOT_RECORDED, message: expect.stringContaining('could not read the approval requests') } });
      await until(() => kinds().filter((k) => k === 'tool.result').length === 1, "the refused call's result");
    } finally {
      await p.close();
    }
    const rows = readRows(store);
    expect(rows.filter((r) => r.kind === 'approval.request')).toHaveLength(1);
    const calls = rows.filter((r) => r.kind === 'tool.call');
    expect(calls).toHaveLength(2);
    const second = JSON.parse(calls[1]!.header) as { id: string };
    const result = rows.find((r) => r.kind === 'tool.result' && (JSON.parse(r.header) as { parent?: string }).parent === second.id);
    expect(result).toBeDefined();
    expect(JSON.parse(result!.data!)).toMatchObject({ is_error: true, error: { code: 'approvals_unreadable' } });
    const errors = rows.filter((r) => r.kind === 'error').map((r) => JSON.parse(r.data!) as Record<string, unknown>);
    expect(errors).toEqual(expect.arrayContaining([expect.objectContaining({ code: 'approvals_unreadable', source: 'gateway' })]));
  });
});
