export type {
  AdoptOptions,
  AdoptResult,
  AppendReceipt,
  AppendRequest,
  CheckpointRow,
  Ledger,
  LedgerInfo,
  LedgerReader,
  PublicKeyRow,
  QueryFilter,
  QueryPage,
  RawEventRow,
  SealOptions,
  SealRecordText,
} from './ledger.js';
export { SqliteLedger, toStored, type SqliteLedgerOptions } from './sqlite/ledger.js';
export { DEFAULT_STORE, parseStoreUrl, sidecarPaths, sqlitePath, type StoreLocation } from './url.js';
export { SIGNING_KEY_ENV, loadSigner } from './keys.js';
export { SEAL_RECORD_ENV } from './seal-record.js';
export { openLedger, type OpenLedgerOptions } from './open.js';
export { verifyLedger, readAgainstFile, type VerifyLedgerOptions } from './verify.js';
