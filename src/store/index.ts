export type {
  AdoptOptions,
  AdoptResult,
  AppendReceipt,
  AppendRequest,
  ArtifactInfo,
  ArtifactRange,
  ArtifactSource,
  CheckpointRow,
  KindScanRequest,
  KindScanRow,
  Ledger,
  LedgerInfo,
  LedgerReader,
  PublicKeyRow,
  QueryFilter,
  QueryPage,
  RawEventRow,
  SealOptions,
  SealRecordText,
  SessionFilter,
  SessionPage,
  SessionPageRequest,
  SessionSummary,
} from './ledger.js';
export { SqliteLedger, toStored, type SqliteLedgerOptions } from './sqlite/ledger.js';
export { DEFAULT_PG_SCHEMA, DEFAULT_STORE, SIGNING_KEY_FILE_ENV, parsePostgresUrl, parseStoreUrl, redactUrl, sidecarPaths, sqlitePath, type PostgresLocation, type StoreLocation } from './url.js';
// Types only: the PostgreSQL driver (and node-postgres) loads when openLedger meets a postgres:// URL.
export type { PostgresLedgerOptions } from './postgres/ledger.js';
export { SIGNER_COMMAND_ENV, SIGNER_NAME_ENV, SIGNING_KEY_ENV, commandSigner, installRotatedKey, keepNextKey, loadSigner, signingKeySource } from './keys.js';
export { ROTATION_STREAM, rotateSigningKey, type RotateRequest, type RotateResult } from './seal-rotate.js';
export { currentKey, ledgerKeyHistory, type LedgerKeyHistory, type RecordedRotation } from './seal-keys.js';
export { SEAL_RECORD_ENV } from './seal-record.js';
export { openLedger, type OpenLedgerOptions } from './open.js';
export { verifyLedger, readAgainstFile, readPurgeRecords, type VerifyLedgerOptions } from './verify.js';
export { UNPURGEABLE_KINDS, type PurgeReceipt, type PurgeRequest } from './ledger.js';
export { GOVERNANCE_STREAM, activeHolds, listHolds, placeHold, releaseHold, type Actor, type Hold, type HoldScope, type PlaceHoldRequest } from './holds.js';
export {
  RETENTION_PRESETS,
  cutoffOf,
  listRetentionRules,
  runRetention,
  setRetentionRule,
  type PolicyOutcome,
  type RetentionRule,
  type RetentionRunResult,
  type RetentionSelector,
} from './retention.js';
export { eraseSubject, type EraseRequest, type EraseResult } from './erase.js';
// Both import the PostgreSQL driver's modules (and node-postgres) lazily, when called.
export { migrateToPostgres, postgresKeyFile, type MigrateOptions, type MigrateResult } from './migrate.js';
export { DEFAULT_AUDITOR_ROLE, DEFAULT_RETENTION_ROLE, DEFAULT_WRITER_ROLE, createPostgresRoles, migratePostgresSchema, type RoleOptions, type RolesResult } from './roles.js';
