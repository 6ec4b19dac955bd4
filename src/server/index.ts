export { createServer, type ServerOptions } from './app.js';
export { listen, DEFAULT_HOST, DEFAULT_PORT, type ListenOptions, type RunningServer } from './listen.js';
export { routeTable } from './routes.js';
export type { RouteSpec, RouteContext } from './context.js';
export { ROLES, Role } from './roles.js';
export { ACCESS_STREAM } from './access.js';
export { KEYS_STREAM, SYSTEM_STREAM_PREFIX, KeyRing, createKey, listKeys, revokeKey, type ApiKeyRecord, type Caller, type CreateKeyInput, type KeyActor } from './keys.js';
export { maskEvent, maskText } from './mask.js';
export { ServerMetrics } from './metrics.js';
export { openApiDocument } from './openapi.js';
export { approveAs, createOidcApproverKey, type ApproveResult, type LedgerContext, type Person } from './approve.js';
export { APPROVER_KEYS_ENV, approverKeyName, approverKeysDir, loadApproverKey, oidcApproverKeyId, removeApproverKey, storeApproverKey, type ApproverKeyInfo } from './approver-keys.js';
export { loadServerConfig, parseServerConfig, type OidcApprover, type OidcConfig, type PersonRole, type ServerConfig } from './config.js';
export { OidcSignIn } from './oidc.js';
/** The viewer's views and model builders, for the auditor report (src/report), which renders with them. */
export * as views from './views/index.js';
