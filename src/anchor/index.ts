/** External anchoring of checkpoints (issue 15): cosigning witnesses (C2SP tlog-witness), time-stamps, copies (directories, S3). */
export {
  generateCosignerKey,
  parseCosignerSignerKey,
  parseCosignerVerifierKey,
  cosign,
  cosignedMessage,
  parseCosignatureLine,
  verifyCosignature,
  cosignerLabel,
  type Cosignature,
  type CosignerSigner,
  type CosignerVerifier,
} from './cosig-key.js';
export { addCheckpoint, startCosigner, type CosignerOptions, type RunningCosigner } from './witness-server.js';
export { parseCosignerSpec, submitCheckpoint, type CosignerTarget } from './submit.js';
export { anchorLatest, type AnchorOptions, type AnchorOutcome } from './anchor.js';
export { appendAnchor, defaultAnchorsFile, readAnchors, type AnchorRecord } from './anchors-file.js';
export { checkCosignatures, checkTimestamps, type AnchorFailure, type AnchorVerdict, type TimestampVerdict } from './check.js';
export { describeResponse, requestTimeStamp, timeStampRequest, verifyTimeStamp, type TimeStampInfo } from './tsa.js';
export { copyCheckpoint, type CopyResult } from './copy.js';
export { copyCheckpointToS3 } from './s3-copy.js';
export { parseS3Url, s3SettingsFrom, type S3Flags, type S3Location, type S3Settings } from './s3-settings.js';
export { checkpointBodyOf } from './body.js';
