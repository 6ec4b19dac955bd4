/**
 * The viewer's pages, server-rendered: a route fills a model (model.ts; the build-* helpers turn
 * ledger events into one), calls a render function and sends the document with viewerHeaders().
 * The same views can render the static report of an evidence bundle.
 */
export type * from './model.js';
export { CSRF_FIELD, PATHS, artifactPath, chaptersPath, isSha256Hex, localReturnPath, sessionPath } from './paths.js';
export { contentSecurityPolicy, viewerHeaders } from './csp.js';
export { STYLESHEET } from './style.js';
export { chaptersVtt, captionsVtt } from './vtt.js';
export { STEPS_PER_PAGE, buildSessionModel, outputText, videoView, type SessionModelOptions } from './build-session.js';
export {
  SessionFilterForm,
  countEvents,
  integrityBadge,
  overviewBuckets,
  parseSessionFilters,
  pendingApproval,
  sessionRow,
  verificationView,
  type BadgeInput,
  type OverviewOptions,
} from './build-lists.js';
export { renderSessionsPage } from './sessions-page.js';
export { renderSessionPage } from './session-page.js';
export { renderApprovalsPage } from './approvals-page.js';
export { renderIntegrityPage } from './integrity-page.js';
export { renderOverviewPage } from './overview-page.js';
export { renderErrorPage, renderSignInPage } from './sign-in-page.js';
