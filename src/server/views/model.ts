import type { KeySource, Outcome } from '../../core/index.js';

/**
 * What each viewer page shows, as plain data. A route fills a model from the Ledger (the builders
 * in build-*.ts turn StoredEvents into these), hands it to a page function and gets a whole HTML
 * document back. Everything typed `string` or `unknown` here may be agent-supplied: the pages
 * render it as text only, and never as a URL.
 *
 * Times are ISO-8601 UTC strings as the ledger records them; `now` is part of a model wherever the
 * page shows a time left, so a page renders the same for the same model.
 */

export type Role = 'agent' | 'developer' | 'approver' | 'auditor' | 'admin';

export type Section = 'overview' | 'sessions' | 'approvals' | 'halts' | 'integrity';

/** The frame around every page: who is signed in, and the token their forms carry. */
export interface Chrome {
  user?: { name: string; role: Role };
  /** The session's CSRF token; every POST form on the page carries it (sign-out included). */
  csrfToken?: string;
  /** The navigation entry shown as current. */
  active?: Section;
  /** Held calls waiting for a decision, shown beside "Approvals" when known. */
  pendingApprovals?: number;
  /** The personal data on the page is masked for this role (a developer's view). */
  masked?: boolean;
}

// ---------------------------------------------------------------- sessions list

/** The filters of the sessions list, as the form sends them back (see SessionFilterForm). */
export interface SessionFilters {
  agent?: string;
  resource?: string;
  outcome?: Outcome | 'expired';
  /** Inclusive, ISO-8601 UTC. */
  since?: string;
  /** Exclusive, ISO-8601 UTC. */
  until?: string;
}

export interface SessionCounts {
  events: number;
  toolCalls: number;
  /** Calls refused: policy denials and approvers' denials (and expiries). */
  denials: number;
  /** Approvals granted by a person. */
  approvals: number;
}

export interface SessionRow {
  id: string;
  agent: string;
  started: string;
  ended?: string;
  /** session.end's reason (completed, error, …); absent while the session is open. */
  endReason?: string;
  counts: SessionCounts;
}

export interface SessionsPageModel {
  chrome: Chrome;
  filters: SessionFilters;
  sessions: SessionRow[];
  /** The store's cursor for the next page, when there is one. */
  next?: string;
  /** The cursor this page was read from: present on every page but the first. */
  cursor?: string;
}

// ---------------------------------------------------------------- a session's timeline

/** A rectangle in the screenshot's own pixels. */
export interface Region {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface Screenshot {
  sha256: string;
  /** The page's URL when captured: shown as text, never linked. */
  url?: string;
  title?: string;
  capturedAt: string;
  /** The browser's viewport when captured (a full-page image is taller). */
  viewport?: { width: number; height: number };
  /**
   * The part of the page the step changed, in the image's own pixels (hence its size beside it),
   * when known: read from the after shot's `data.changed_region`
   * `{ x, y, width, height, image_width, image_height }`, which src/capture records by comparing it
   * with the call's before shot (absent for identical shots and for events recorded earlier).
   */
  changed?: { region: Region; imageWidth: number; imageHeight: number };
}

export interface PolicyView {
  decision: 'allow' | 'deny' | 'review';
  rule?: string;
  /** SHA-256 of the policy file that was evaluated. */
  version?: string;
  mode?: 'enforce' | 'shadow';
  reason?: string;
  ts: string;
}

export interface ApprovalDecisionView {
  approver: string;
  decision: 'approved' | 'denied' | 'expired';
  role?: string;
  reason?: string;
  /** The decision carries an approver's signature (checked by verify and the gateway, not here). */
  signed: boolean;
  ts: string;
}

export interface ApprovalView {
  requestId?: string;
  rule?: string;
  reason?: string;
  expiresAt?: string;
  /**
   * The decision that counted, in one line, as the gateway judged it (never merely the first
   * decision recorded: anyone who can write the ledger can append one naming anyone).
   */
  summary: string;
  /** Every decision recorded for the request, whether it counted or not. */
  decisions: ApprovalDecisionView[];
  /** Recorded decisions that did not count and why, in one line. */
  ignored?: string;
}

export interface ResultView {
  outcome?: Outcome | 'expired';
  isError: boolean;
  output?: unknown;
  error?: string;
  durationMs?: number;
  ts: string;
}

export interface ErrorView {
  message: string;
  code?: string;
  source?: string;
  ts: string;
}

export interface TimelineStep {
  index: number;
  callId: string;
  seq: number;
  ts: string;
  tool: string;
  server?: string;
  arguments: unknown;
  /** What the model said just before it asked for this call (the llm.call output). */
  reasoning?: { text: string; model?: string; ts: string };
  policy: PolicyView[];
  approval?: ApprovalView;
  result?: ResultView;
  before?: Screenshot;
  after?: Screenshot;
  errors: ErrorView[];
  /** A one-word state for the step's badge. */
  tone: 'ok' | 'denied' | 'review' | 'error' | 'neutral';
}

export interface VideoView {
  /** The `capture` event (role `video`) that binds the video; its chapters are served by id. */
  eventId: string;
  videoSha256: string;
  captionsSha256?: string;
  durationS?: number;
  chapters: Array<{ title: string; startS: number; endS: number }>;
}

export interface IntegrityBadge {
  state: 'verified' | 'unsealed' | 'failed' | 'unknown';
  /** One sentence: what was checked and what it rests on. */
  text: string;
}

export interface SessionPageModel {
  chrome: Chrome;
  session: {
    id: string;
    agent: string;
    agentVersion?: string;
    purpose?: string;
    recordedBy?: string;
    started?: string;
    ended?: string;
    endReason?: string;
    finalOutput?: unknown;
    events: number;
  };
  steps: TimelineStep[];
  /** Which steps `steps` holds (1-based, inclusive) of how many: a long session is shown a page at a time. */
  stepWindow?: { from: number; to: number; total: number };
  /** Errors not tied to a tool call (the recorder's own, a failed LLM call). */
  errors: ErrorView[];
  video?: VideoView;
  integrity?: IntegrityBadge;
  /** Why parts of the session are not shown to this person (a developer gets no screenshots or video), in one sentence. */
  withheld?: string;
}

// ---------------------------------------------------------------- approvals queue

export interface PendingApproval {
  requestId: string;
  session: string;
  agent: string;
  /** Who the agent acted for, when recorded. */
  principal?: string;
  tool?: string;
  server?: string;
  /** The exact arguments the decision binds (their digest below). */
  arguments: unknown;
  argumentsDigest: string;
  rule?: string;
  policyVersion?: string;
  reason?: string;
  requestedAt: string;
  expiresAt?: string;
  /** Who may decide it, as the policy lists them. */
  approvers: string[];
}

export interface ApprovalsPageModel {
  chrome: Chrome;
  now: string;
  pending: PendingApproval[];
  /** The outcome of the last decision this person posted, shown once. */
  flash?: { kind: 'ok' | 'error'; text: string };
}

// ---------------------------------------------------------------- integrity panel

export interface SignerView {
  name: string;
  /** `<name>+<8 hex>`, as `witness keys` and verify print it. */
  fingerprint: string;
  source: KeySource;
}

export interface VerificationView {
  at: string;
  ok: boolean;
  /** Something was written by a newer format: not tampered, but not checkable here. */
  unverifiable: boolean;
  events: number;
  checkpoints: number;
  sealedSize: number;
  unsealed: number;
  /** The first failure, in one sentence with where it is. */
  firstFailure?: string;
  failures: number;
  trust: string;
  signers: SignerView[];
  warnings: string[];
  durationMs?: number;
}

export interface IntegrityPageModel {
  chrome: Chrome;
  ledger: { origin: string; size: number; location?: string };
  checkpoint?: { id: number; size: number; ts: string; rootHex: string };
  /** The keys that signed the newest checkpoint. */
  signers: SignerView[];
  last?: VerificationView;
  /** A verification started by the re-verify button is still running. */
  running?: boolean;
}

// ---------------------------------------------------------------- overview

export interface OverviewBucket {
  /** The bucket's start, ISO-8601 UTC; it ends where the next begins. */
  start: string;
  events: number;
  toolCalls: number;
  denials: number;
  approvals: number;
  /** Mean wait from approval.request to a person's decision, of requests decided in the bucket. */
  approvalWaitMs?: number;
  /** `error` events whose source is the recorder, the gateway or capture: audit generation failing. */
  recordingErrors: number;
}

export interface OverviewPageModel {
  chrome: Chrome;
  from: string;
  to: string;
  buckets: OverviewBucket[];
  totals: { events: number; sessions: number; toolCalls: number; denials: number; approvals: number; pendingApprovals: number; recordingErrors: number };
  /** The newest checkpoint, for the page's integrity line. */
  checkpoint?: { size: number; ts: string };
}

// ---------------------------------------------------------------- sign-in, errors

export interface SignInPageModel {
  /** The sign-in form's CSRF token (a pre-session token). */
  csrfToken: string;
  /** Shown when an OpenID Connect provider is configured. */
  oidc?: { label: string };
  /** Why the last attempt failed, in one sentence. */
  error?: string;
  /** Where to go after signing in: kept only when it is a same-origin path. */
  next?: string;
}

export interface ErrorPageModel {
  chrome?: Chrome;
  status: number;
  code?: string;
  /** One sentence: what is wrong and what to do. */
  message: string;
}
