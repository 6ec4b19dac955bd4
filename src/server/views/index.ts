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
export { renderSessionPage, Shot, Step } from './session-page.js';
// What the auditor report (src/report) renders with, so it shows a step as the viewer does.
export { BarChart, LineChart, type ChartProps, type Series } from './chart.js';
export { MAX_SHOWN, clip, plural, shortHash, showDuration, showTime, showToolOutput, showValue } from './format.js';
export { renderDocument } from './layout.js';
export { renderApprovalsPage } from './approvals-page.js';
export { renderHaltsPage, type HaltsPageModel } from './halts-page.js';
export { renderIntegrityPage } from './integrity-page.js';
export { renderOverviewPage } from './overview-page.js';
export { renderErrorPage, renderSignInPage } from './sign-in-page.js';
