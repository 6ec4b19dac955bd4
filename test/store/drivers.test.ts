import { SqliteLedger } from '../../src/store/index.js';
import { tempDb, tempDir } from '../helpers/tmp.js';
import { ledgerContract, type DriverUnderTest } from './ledger.contract.js';

const dir = tempDir('witness-contract-');

/** Every driver runs the same contract; WITNESS_TEST_DRIVERS=sqlite,postgres picks some. */
const DRIVERS: DriverUnderTest[] = [{ name: 'sqlite', open: async () => SqliteLedger.open({ path: tempDb(dir) }) }];

const wanted = process.env['WITNESS_TEST_DRIVERS']?.split(',').map((s) => s.trim());
for (const driver of DRIVERS) {
  if (wanted === undefined || wanted.includes(driver.name)) ledgerContract(driver);
}
