import fs from 'node:fs';
import path from 'node:path';
import type { StoredEvent, VerifyReport } from '../core/index.js';
import { exportSession, verifyBundle } from '../export/index.js';
import { openWitness } from '../recorder/index.js';
import { sqlitePath, verifyLedger } from '../store/index.js';
import { runRefundAgent } from './refund-agent.js';

export { DEMO_POLICY, runRefundAgent } from './refund-agent.js';

export interface DemoResult {
  database: string;
  sessionId: string;
  events: Array<StoredEvent & { pos: number }>;
  ledgerReport: VerifyReport;
  bundleDir: string;
  bundleReport: VerifyReport;
  publicKey: string;
  recorderErrors: string[];
}

/** Records the scripted refund session, verifies the ledger, exports and verifies the evidence. */
export async function runDemo(dir: string, store?: string): Promise<DemoResult> {
  fs.mkdirSync(dir, { recursive: true });
  const database = store === undefined ? path.resolve(dir, 'witness.db') : sqlitePath(store);
  const recorderErrors: string[] = [];
  const w = await openWitness({ store: `sqlite:${database}`, name: 'demo', onError: (e) => recorderErrors.push(e.message) });
  let sessionId: string;
  try {
    const session = await w.session({
      agent: { id: 'support-bot', version: '1.4.2', credential: 'key-demo-01' },
      user: 'customer-12345',
      principal: { id: 'support-team@acme', kind: 'human' },
      env: 'demo',
      purpose: 'Resolve a duplicate-charge refund request',
    });
    ({ sessionId } = await runRefundAgent(session));
  } finally {
    await w.close();
  }
  const { SqliteLedger } = await import('../store/index.js');
  const ledger = SqliteLedger.open({ path: database, create: false });
  try {
    const events = await ledger.readStream(sessionId);
    const ledgerReport = await verifyLedger(ledger);
    const bundleDir = path.resolve(dir, `evidence-${sessionId}`);
    await exportSession(ledger, sessionId, bundleDir);
    const keys = await ledger.publicKeys();
    const bundleReport = verifyBundle(bundleDir, { trustedKeys: keys.map((k) => k.vkey) });
    return { database, sessionId, events, ledgerReport, bundleDir, bundleReport, publicKey: keys[0]?.vkey ?? '', recorderErrors };
  } finally {
    await ledger.close();
  }
}
