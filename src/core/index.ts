export { ERROR_CODES, WitnessError, isWitnessError, type ErrorCode } from './errors.js';
export * from './event.js';
export {
  AGENT_REFUSED_KINDS,
  GOVERNANCE_RULES,
  SYSTEM_STREAM_PREFIX,
  isGovernanceHeaderText,
  isGovernanceRecord,
  isSystemStreamName,
  type GovernanceHeader,
  type GovernanceRule,
  type RecorderKind,
} from './governance.js';
export { canonicalize, canonicalBytes, isWellFormedString, toJsonValue, type JsonValue } from './canonical-json.js';
export { strictParse } from './strict-json.js';
export { EVENT_DOMAIN, GENESIS_DOMAIN, SALT_BYTES, eventHash, genesisHash, newSalt, payloadDigest, sha256, sha256Hex } from './chain.js';
export {
  DEFAULT_MAX_PAYLOAD_BYTES,
  chainEvent,
  headerObject,
  parseEventInput,
  prepareEvent,
  recommitPayload,
  type ChainedEvent,
  type HeaderParts,
  type PrepareOptions,
  type PreparedEvent,
} from './build.js';
export {
  EMPTY_ROOT,
  Frontier,
  HASH_SIZE,
  consistencyProof,
  inclusionProof,
  leafHash,
  nodeHash,
  rangeHash,
  rootFromInclusionProof,
  rootFromLeafHashes,
  verifyConsistency,
  verifyInclusion,
  type NodeSource,
  type ProofResult,
} from './merkle.js';
export { formatVerifierKey, generateKey, keyFingerprint, openNote, parseSignerKey, parseVerifierKey, signNote, type NoteKeyId, type NoteSigner, type NoteVerifier, type OpenedNote } from './note.js';
export {
  APPROVAL_DOMAIN,
  APPROVER_NAME,
  ARGUMENTS_DOMAIN,
  approvalMessage,
  approvalRequestParts,
  argumentsDigest,
  tryArgumentsDigest,
  canonicalKey,
  decisionProblem,
  fingerprintOf,
  listedApprovers,
  newArgumentsSalt,
  normaliseIdentity,
  sameIdentity,
  signApproval,
  verifyApprovalSignature,
  type ApprovalRequestParts,
  type DecisionProblem,
  type DecisionProblemCode,
} from './approval.js';
export { formatCheckpoint, openCheckpoint, parseCheckpoint, signCheckpoint, type Checkpoint, type OpenedCheckpoint } from './checkpoint.js';
export { judgeCheckpointKeys, keyWindows, requiredKeys, rotationOf, type KeyWindow, type RotationEntry, type WindowFailureCode } from './rotation.js';
export {
  ChainChecker,
  ChunkChecker,
  LedgerVerifier,
  MAX_FAILURES,
  PurgeCover,
  leafRanges,
  purgeRecordOf,
  type PurgeRecord,
  type PurgeRow,
  type PurgeSummary,
  selectVerifiers,
  trustStatement,
  trustedKeys,
  type Failure,
  type FailureCode,
  type ChunkPlan,
  type ChunkResult,
  type KeySource,
  type LedgerVerifierOptions,
  type StoredCheckpoint,
  type TrustStatement,
  type VerifyReport,
  type VerifyRow,
} from './verify.js';
