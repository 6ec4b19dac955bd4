import { describe } from 'vitest';
import { openLedger } from '../../src/store/index.js';
import { tempDb, tempDir } from '../helpers/tmp.js';
import { ledgerContract, type DriverUnderTest } from './ledger.contract.js';
import { sqliteEdit } from './sqlite-edit-hook.js';

const dir = tempDir('witness-contract-');

/** Every driver runs the same contract; WITNESS_TEST_DRIVERS=sqlite,postgres picks some. */
const DRIVERS: DriverUnderTest[] = [
  {
    name: 'sqlite',
    open: async () => openLedger(`sqlite:${tempDb(dir)}`),
    // A second connection on the same file, as a second process holds one; the key is found beside it.
    openAgain: async (l, options = {}) => openLedger(`sqlite:${l.info.location}`, { create: false, readonly: options.readonly ?? false }),
    readonly: true,
    childStore: (l) => ({ url: `sqlite:${l.info.location}` }),
    edit: sqliteEdit,
  },
];

const wanted = process.env['WITNESS_TEST_DRIVERS']?.split(',').map((s) => s.trim());
for (const driver of DRIVERS) {
  if (wanted === undefined || wanted.includes(driver.name)) describe(`[R-DRIVER-CONTRACT] Ledger contract: ${driver.name}`, () => ledgerContract(driver));
}
