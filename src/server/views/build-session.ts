import { buildStoryboard, type Step } from '../../capture/index.js';
import { isApprovalRecord, type StoredEvent } from '../../core/index.js';
import type { ApprovalDecisionView, ApprovalView, Chrome, ErrorView, IntegrityBadge, PolicyView, Region, Screenshot, SessionPageModel, TimelineStep, VideoView } from './model.js';
import { isSha256Hex } from './paths.js';

/**
 * A session's events turned into the timeline's steps: one per tool call, with what preceded and
 * followed it. Events are tied to their call by `parent` (as the recorder and the gateway write
 * them); the reasoning is the last llm.call before the call with no other call in between. Which
 * approval decision counted, and the step's tone, are the storyboard's (src/capture), so the page
 * and the narrated video never tell a different story.
 */

type Ev = StoredEvent;

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function obj(v: unknown): Record<string, unknown> | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

/** Keys with undefined values left out, so models compare cleanly and optional fields stay absent. */
function defined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

/** The text of a model's answer: a string, Anthropic/OpenAI content parts, or `{ text }`. */
export function outputText(out: unknown): string | undefined {
  if (typeof out === 'string') return out;
  const o = obj(out);
  if (o === undefined) return undefined;
  const content = o['content'];
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    const parts = content.map((c) => str(obj(c)?.['text'])).filter((x): x is string => x !== undefined && x !== '');
    return parts.length === 0 ? undefined : parts.join('\n');
  }
  return str(o['text']);
}

function changedRegion(v: unknown): Screenshot['changed'] {
  const o = obj(v);
  const [x, y, width, height, imageWidth, imageHeight] = ['x', 'y', 'width', 'height', 'image_width', 'image_height'].map((k) => num(o?.[k]));
  if (x === undefined || y === undefined || width === undefined || height === undefined || imageWidth === undefined || imageHeight === undefined) return undefined;
  if (x < 0 || y < 0 || width <= 0 || height <= 0 || x + width > imageWidth || y + height > imageHeight) return undefined;
  const region: Region = { x, y, width, height };
  return { region, imageWidth, imageHeight };
}

function screenshot(e: Ev | undefined): Screenshot | undefined {
  if (e === undefined) return undefined;
  const png = e.artifacts?.find((a) => a.mime.startsWith('image/') && isSha256Hex(a.sha256));
  if (png === undefined) return undefined;
  const d = e.data ?? {};
  const vp = obj(d['viewport']);
  const w = num(vp?.['width']);
  const h = num(vp?.['height']);
  return defined({
    sha256: png.sha256,
    url: str(d['url']),
    title: str(d['title']),
    capturedAt: str(d['captured_at']) ?? e.ts,
    viewport: w !== undefined && h !== undefined && w > 0 && h > 0 ? { width: w, height: h } : undefined,
    // Recorded on an after shot by src/capture (png-diff.ts); absent on a before shot, identical shots and older events.
    changed: changedRegion(d['changed_region']),
  });
}

function errorView(e: Ev): ErrorView {
  const d = e.data ?? {};
  const code = d['code'];
  return defined({
    message: str(d['message']) ?? '(no message recorded)',
    code: typeof code === 'number' ? String(code) : str(code),
    source: str(d['source']),
    ts: e.ts,
  });
}

/** A policy.decision naming an approval decision: a release, believed only when the Witness gateway recorded it. */
function namesApproval(e: Ev): boolean {
  return e.kind === 'policy.decision' && obj(e.data?.['approval'])?.['decision_id'] !== undefined;
}

function isRelease(e: Ev): boolean {
  return namesApproval(e) && e.recorder?.kind === 'gateway';
}

/**
 * The approval request a call was held on: one the gateway recorded, since it alone holds a call
 * (core's isApprovalRecord, as approvers' queues, `witness approvals` and the auditor report read
 * requests). Any other recorder's request (an agent writing past the SDK's refusal straight into
 * the ledger) held nothing and asked no one; `claimedRequests` gives those.
 */
function heldOn(children: readonly Ev[]): Ev | undefined {
  return children.find((e) => e.kind === 'approval.request' && isApprovalRecord(e));
}

function claimedRequests(children: readonly Ev[]): Ev[] {
  return children.filter((e) => e.kind === 'approval.request' && !isApprovalRecord(e));
}

/**
 * What a call's approval line says when its only requests are ones the gateway did not record:
 * where they stand, not their rule and reason (the writer's own words, which the page would
 * otherwise show as why a call was held), nor the decisions recorded on them as anyone's verdict.
 */
function notHeldView(claimed: readonly Ev[], byParent: ReadonlyMap<string, Ev[]>): ApprovalView {
  const recorders = [...new Set(claimed.map((e) => e.recorder?.kind ?? 'no recorder'))].join(' and ');
  const what = claimed.length === 1 ? 'an approval.request' : `${claimed.length} approval.request records`;
  const decided = claimed.flatMap((r) => (byParent.get(r.id) ?? []).filter((e) => e.kind === 'approval.decision'));
  const names = [...new Set(decided.map((d) => str(d.data?.['approver']) ?? 'nobody'))].join(', ');
  return defined<ApprovalView>({
    summary: `Not held: ${what} recorded by ${recorders}, not the Witness gateway: no call was held on it and no approver was asked`,
    decisions: [],
    ignored:
      decided.length === 0
        ? undefined
        : `${decided.length} decision${decided.length === 1 ? '' : 's'} recorded on it (claimed by ${names}): a decision on a request the gateway did not record decides nothing`,
  });
}

function policyView(e: Ev): PolicyView | undefined {
  const d = e.data ?? {};
  const decision = e.policy?.decision ?? str(d['decision']);
  if (decision !== 'allow' && decision !== 'deny' && decision !== 'review') return undefined;
  const mode = e.policy?.mode ?? str(d['mode']);
  // A "release" anything but the gateway recorded would read as "approved by <name>": its own
  // words are not shown as the reason, only that it is not one.
  const claimed = namesApproval(e) && !isRelease(e);
  return defined<PolicyView>({
    decision,
    rule: e.policy?.rule ?? str(d['rule']),
    version: e.policy?.version ?? str(d['policy_version']),
    mode: mode === 'enforce' || mode === 'shadow' ? mode : undefined,
    reason: claimed ? `names an approval, but was recorded by ${e.recorder?.kind ?? 'an unknown recorder'}, not the Witness gateway: not a release` : str(d['reason']),
    ts: e.ts,
  });
}

function decisionView(e: Ev): ApprovalDecisionView | undefined {
  const d = e.data ?? {};
  const decision = d['decision'];
  if (decision !== 'approved' && decision !== 'denied' && decision !== 'expired') return undefined;
  return defined<ApprovalDecisionView>({
    approver: str(d['approver']) ?? 'unknown',
    decision,
    role: str(d['role']),
    reason: str(d['reason']),
    signed: typeof d['approver_sig'] === 'string',
    ts: str(d['decided_at']) ?? e.ts,
  });
}

function row(step: Step | undefined, label: string): string | undefined {
  return step?.rows.find(([k]) => k === label)?.[1];
}

/** The video of a session from the `capture` event (role `video`) that binds it, or undefined. */
export function videoView(e: Ev): VideoView | undefined {
  if (e.kind !== 'capture' || e.data?.['role'] !== 'video') return undefined;
  const mp4 = e.artifacts?.find((a) => a.mime === 'video/mp4' && isSha256Hex(a.sha256));
  if (mp4 === undefined) return undefined;
  const vtt = e.artifacts?.find((a) => a.mime === 'text/vtt' && isSha256Hex(a.sha256));
  const raw = e.data['chapters'];
  const chapters: VideoView['chapters'] = [];
  if (Array.isArray(raw)) {
    for (const c of raw) {
      const o = obj(c);
      const title = str(o?.['title']);
      const startS = num(o?.['start_s']);
      const endS = num(o?.['end_s']);
      if (title !== undefined && startS !== undefined && endS !== undefined && endS >= startS) chapters.push({ title, startS, endS });
    }
  }
  return defined({ eventId: e.id, videoSha256: mp4.sha256, captionsSha256: vtt?.sha256, durationS: num(e.data['duration_s']), chapters });
}

/**
 * The storyboard's steps for the calls that went through an approval, keyed by call id. The
 * storyboard is given only those calls and what bears on them (their events, their request's
 * decisions, the gateway's errors naming a decision), since it costs time in proportion to calls
 * times events and a long session may hold thousands of calls and few approvals.
 */
function judgedApprovals(ordered: readonly Ev[], calls: readonly Ev[], byParent: ReadonlyMap<string, Ev[]>): Map<string, Step> {
  const keep = new Set<string>();
  for (const call of calls) {
    const children = byParent.get(call.id) ?? [];
    const request = heldOn(children);
    const released = children.some((e) => isRelease(e));
    if (request === undefined && !released) continue;
    keep.add(call.id);
    // A request the gateway did not record is left out: the storyboard would tell it as held.
    const claimed = new Set(claimedRequests(children));
    for (const e of children) if (!claimed.has(e)) keep.add(e.id);
    for (const e of request === undefined ? [] : (byParent.get(request.id) ?? [])) keep.add(e.id);
  }
  if (keep.size === 0) return new Map();
  const subset = ordered.filter((e) => keep.has(e.id) || e.kind === 'session.start' || (e.kind === 'error' && e.data?.['decision_id'] !== undefined));
  return new Map(
    buildStoryboard(subset)
      .steps.filter((s) => s.callId !== undefined)
      .map((s) => [s.callId!, s]),
  );
}

/** A call's tone without an approval, as the storyboard gives it: the policy's refusal, else the result. */
function toneOf(policy: Ev | undefined, result: Ev | undefined): TimelineStep['tone'] {
  const decision = policy?.policy?.decision ?? str(policy?.data?.['decision']);
  if (decision === 'deny') return 'denied';
  if (result === undefined) return 'error';
  if (result.outcome === 'denied') return 'denied';
  return result.data?.['is_error'] === true ? 'error' : 'ok';
}

export interface SessionModelOptions {
  chrome: Chrome;
  /**
   * The video's capture event when it lives outside the session: a video rendered after the
   * session ended is recorded in the `witness.evidence` stream with `resource` = the session id.
   */
  videoEvent?: Ev;
  integrity?: IntegrityBadge;
  /**
   * Which steps to show: from step `from` (1-based, default 1), at most `limit` (default
   * STEPS_PER_PAGE), so a session of thousands of calls is read a page at a time.
   */
  steps?: { from?: number; limit?: number };
}

/** Steps on one page of a session: enough for a whole ordinary session, bounded for a long one. */
export const STEPS_PER_PAGE = 200;

export function buildSessionModel(events: readonly Ev[], options: SessionModelOptions): SessionPageModel {
  const ordered = [...events].sort((a, b) => a.seq - b.seq);
  const start = ordered.find((e) => e.kind === 'session.start');
  const end = ordered.find((e) => e.kind === 'session.end');
  const byParent = new Map<string, Ev[]>();
  for (const e of ordered) {
    if (e.parent === undefined) continue;
    const list = byParent.get(e.parent) ?? [];
    list.push(e);
    byParent.set(e.parent, list);
  }
  const calls = ordered.filter((e) => e.kind === 'tool.call');
  // The reasoning of each call, in one pass: the last llm.call since the previous tool call.
  const reasoningOf = new Map<string, Ev>();
  let lastLlm: Ev | undefined;
  for (const e of ordered) {
    if (e.kind === 'llm.call') lastLlm = e;
    else if (e.kind === 'tool.call') {
      if (lastLlm !== undefined) reasoningOf.set(e.id, lastLlm);
      lastLlm = undefined;
    }
  }
  const limit = Math.max(1, Math.floor(options.steps?.limit ?? STEPS_PER_PAGE));
  const first = Math.min(Math.max(1, Math.floor(options.steps?.from ?? 1)), Math.max(1, calls.length));
  const shown = calls.slice(first - 1, first - 1 + limit);
  const boardSteps = judgedApprovals(ordered, shown, byParent);
  // Events tied to any call, shown or not, are not "other errors".
  const placed = new Set<string>();
  for (const call of calls) {
    const children = byParent.get(call.id) ?? [];
    for (const e of [...children, ...children.filter((r) => r.kind === 'approval.request').flatMap((r) => byParent.get(r.id) ?? [])]) placed.add(e.id);
  }
  const steps: TimelineStep[] = [];
  let n = first - 1;
  for (const call of shown) {
    n += 1;
    const d = call.data ?? {};
    const children = byParent.get(call.id) ?? [];
    const request = heldOn(children);
    const claimed = claimedRequests(children);
    const related = [...children, ...(request === undefined ? [] : (byParent.get(request.id) ?? []))];
    // Errors tied to a request the gateway did not record still belong to this call.
    const claimedErrors = claimed.flatMap((r) => (byParent.get(r.id) ?? []).filter((e) => e.kind === 'error'));
    const reasoningEvent = reasoningOf.get(call.id);
    const reasoningText = outputText(reasoningEvent?.data?.['output']);
    const result = children.find((e) => e.kind === 'tool.result');
    const rd = result?.data ?? {};
    const story = boardSteps.get(call.id);
    const decisions = related.filter((e) => e.kind === 'approval.decision').map(decisionView);
    let approval: ApprovalView | undefined;
    if (request !== undefined || decisions.length > 0) {
      const rq = request?.data ?? {};
      approval = defined({
        requestId: str(rq['request_id']),
        rule: str(rq['rule']),
        reason: str(rq['reason']),
        expiresAt: str(rq['expires_at']),
        summary: row(story, 'Approval') ?? 'no decision recorded',
        decisions: decisions.filter((x): x is ApprovalDecisionView => x !== undefined),
        ignored: row(story, 'Ignored'),
      });
    } else if (claimed.length > 0) {
      approval = notHeldView(claimed, byParent);
    }
    const resultError = obj(rd['error']);
    steps.push(
      defined({
        index: n,
        callId: call.id,
        seq: call.seq,
        ts: call.ts,
        tool: str(d['tool']) ?? call.action ?? 'tool',
        server: str(d['server']),
        arguments: d['arguments'],
        reasoning:
          reasoningEvent === undefined || reasoningText === undefined || reasoningText.trim() === ''
            ? undefined
            : defined({ text: reasoningText, model: str(reasoningEvent.data?.['response_model']) ?? str(reasoningEvent.data?.['model']), ts: reasoningEvent.ts }),
        policy: related
          .filter((e) => e.kind === 'policy.decision')
          .map(policyView)
          .filter((x): x is PolicyView => x !== undefined),
        approval,
        result:
          result === undefined
            ? undefined
            : defined({
                outcome: result.outcome,
                isError: rd['is_error'] === true,
                output: rd['output'],
                error: str(resultError?.['message']),
                durationMs: num(rd['duration_ms']),
                ts: result.ts,
              }),
        before: screenshot(children.find((e) => e.kind === 'capture' && e.data?.['role'] === 'before')),
        after: screenshot(children.find((e) => e.kind === 'capture' && e.data?.['role'] === 'after')),
        errors: [...related.filter((e) => e.kind === 'error'), ...claimedErrors].sort((a, b) => a.seq - b.seq).map(errorView),
        tone:
          story?.tone ??
          toneOf(
            related.find((e) => e.kind === 'policy.decision'),
            result,
          ),
      }),
    );
  }

  const videoEvent = options.videoEvent ?? [...ordered].reverse().find((e) => e.kind === 'capture' && e.data?.['role'] === 'video');
  const labels = obj(start?.data?.['labels']) ?? {};
  return defined({
    chrome: options.chrome,
    session: defined({
      id: ordered[0]?.stream ?? '',
      agent: start?.agent.id ?? ordered[0]?.agent.id ?? 'unknown',
      agentVersion: start?.agent.version,
      purpose: str(start?.data?.['purpose']),
      recordedBy: start?.recorder === undefined ? undefined : [start.recorder.kind, str(labels['server'])].filter((x) => x !== undefined).join(' for '),
      started: start?.ts ?? ordered[0]?.ts,
      ended: end?.ts,
      endReason: str(end?.data?.['reason']),
      finalOutput: end?.data?.['final_output'],
      events: ordered.length,
    }),
    steps,
    stepWindow: { from: first, to: first + shown.length - 1, total: calls.length },
    errors: ordered.filter((e) => e.kind === 'error' && !placed.has(e.id)).map(errorView),
    video: videoEvent === undefined ? undefined : videoView(videoEvent),
    integrity: options.integrity,
  });
}
