/**
 * src/monitor: `witness monitor` — verification as the ledger grows (each new checkpoint, and the
 * whole ledger on a schedule), alerts (recording gaps, capture failures, stalled sealing, failed
 * verification, long-pending and expired approvals, halts, every act of governance) to a webhook, a command and /metrics,
 * and anomaly flags (behaviour rules and prompt-injection indicators) recorded as `anomaly`
 * events, never blocking anything.
 */
export { ALERT_CODES, type AlertCode, type AlertMessage, type Severity } from './alerts.js';
export { BEHAVIOUR_RULES, BehaviourConfig, BehaviourRules, type AnomalyFlag, type ObservedEvent } from './behaviour.js';
export { fullPass, type FullPassOptions, type FullPassResult } from './full-pass.js';
export { GOVERNANCE_KINDS, governanceAct, type GovernanceAct, type GovernanceKind } from './governance.js';
export { verifyNewCheckpoints, type IncrementalResult, type VerifiedState } from './incremental.js';
export { INJECTION_RULES, MAX_SCAN_CHARS, scanForInjection, type InjectionHit, type InjectionRule } from './injection.js';
export { MonitorMetrics, parseListen, serveMetrics } from './metrics.js';
export { MONITOR_AGENT, MONITOR_STREAM, Monitor, MonitorConfig, type MonitorDeps, type PassReport } from './monitor.js';
export { CommandSink, SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookSink, webhookSignature, type AlertSink, type WebhookOptions } from './sinks.js';
export { loadState, type MonitorState } from './state.js';
