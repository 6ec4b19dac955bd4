import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openLedger } from '../../src/store/index.js';
import { person, writeReviewPolicy } from '../helpers/approvers.js';
import { eventsOf, mcpClient, raceOneGrant, requireBuild, witnessProcesses, writeGatewayConfig } from '../helpers/gateway.js';
import { runBin } from '../helpers/ledger.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/**
 * Consume-once on one SQLite ledger file shared by two `witness gateway` processes on one host
 * (each its own connection and its own memory of used grants), as test/gateway/approval-postgres.test.ts
 * does on PostgreSQL: only the ledger itself can stop the second release of one grant.
 */

const dir = tempDir('witness-approval-sqlite-');
const alice = person(dir, 'alice@corp');
const POLICY = writeReviewPolicy(path.join(dir, 'review-big-sums.yaml'), [alice]);
// Both gateways look for decisions this often, so both usually see a decision within the same few milliseconds.
const POLL_MS = 20;
const ROUNDS = 8;

requireBuild();
const start = witnessProcesses();

async function startGateway(store: string): Promise<string> {
  return (await start(['gateway', '--config', writeGatewayConfig(dir, { policy: POLICY, pollMs: POLL_MS }), '--store', store])).url;
}

describe('approvals on one SQLite ledger shared by two gateway processes', () => {
  it(`releases one grant exactly once when two gateway processes hold identical calls on it, ${ROUNDS} times over, and refuses the other call in one sentence [R-GW-APPROVAL-BINDING]`, async () => {
    const file = tempDb(dir);
    const store = `sqlite:${file}`;
    await (await openLedger(store)).close();
    const [g1, g2] = await Promise.all([startGateway(store), startGateway(store)]);
    const [c1, c2] = await Promise.all([mcpClient(g1, 'approval-sqlite-test'), mcpClient(g2, 'approval-sqlite-test')]);
    const reader = await openLedger(store, { create: false, readonly: true });
    let refusedByLedger = 0;
    try {
      for (let round = 0; round < ROUNDS; round++) {
        const refusedByIndex = await raceOneGrant([c1, c2], reader, round, async (requestId) => {
          // Approved by `witness approve`, a third process on the same file.
          const approved = await runBin(['approve', requestId, '--key', alice.file, '--store', store]);
          expect(approved.code, approved.stderr).toBe(0);
          const decisionId = (await eventsOf(reader, 'approval.decision')).find((e) => e.data?.['request_id'] === requestId)?.id;
          expect(decisionId).toBeDefined();
          return decisionId!;
        });
        if (refusedByIndex) refusedByLedger++;
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
