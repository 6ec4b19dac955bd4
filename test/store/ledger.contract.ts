import { appendContract } from './contract/append.js';
import { artifactsContract } from './contract/artifacts.js';
import { concurrencyContract } from './contract/concurrency.js';
import type { DriverUnderTest } from './contract/driver.js';
import { ownerContract } from './contract/owner.js';
import { purgeContract } from './contract/purge.js';
import { queryContract } from './contract/query.js';
import { readonlyContract } from './contract/readonly.js';
import { refusalContract } from './contract/refusal.js';
import { sealContract } from './contract/seal.js';
import { sessionApprovalsContract } from './contract/session-approvals.js';
import { sessionsContract } from './contract/sessions.js';
import { streamPageContract } from './contract/stream-page.js';
import { tamperContract } from './contract/tamper.js';

export type { DriverUnderTest, EventImage, LedgerEdit } from './contract/driver.js';

/**
 * The one contract every Ledger driver passes, on its real database (no mocks): append and
 * receipts, stream chaining, session end lockout, refusal of edits, two writers, sealing and
 * proofs, query filters and paging, paged stream reads, artifacts, read-only handles, and the tamper classes made
 * through the driver's edit hook. A driver's entry in drivers.test.ts supplies the factory and
 * the hook (see contract/driver.ts) and calls this inside its describe block; the parts live in
 * contract/, one file per duty.
 */
export function ledgerContract(driver: DriverUnderTest): void {
  appendContract(driver);
  concurrencyContract(driver);
  ownerContract(driver);
  sealContract(driver);
  queryContract(driver);
  sessionsContract(driver);
  sessionApprovalsContract(driver);
  streamPageContract(driver);
  artifactsContract(driver);
  readonlyContract(driver);
  refusalContract(driver);
  tamperContract(driver);
  purgeContract(driver);
}
