import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listApprovals } from '../../../src/approvals/index.js';
import { buildStoryboard } from '../../../src/capture/index.js';
import { PNG_BYTES } from '../../helpers/ledger.js';
import { tempDir } from '../../helpers/tmp.js';
import {
  buildSessionModel,
  integrityBadge,
  overviewBuckets,
  pendingApproval,
  renderApprovalsPage,
  renderErrorPage,
  renderIntegrityPage,
  renderOverviewPage,
  renderSessionPage,
  renderSessionsPage,
  renderSignInPage,
  sessionRow,
  verificationView,
  type Chrome,
  type SessionPageModel,
} from '../../../src/server/views/index.js';
import { buildFixture, type Fixture } from './fixture.js';

const dir = tempDir('witness-views-');
const chrome: Chrome = { user: { name: 'ada@audit.example', role: 'auditor' }, csrfToken: 'tok-123' };
let fx: Fixture;
let model: SessionPageModel;

beforeAll(async () => {
  fx = await buildFixture(dir, { leak: 'http://127.0.0.1:9/leak', png: { before: PNG_BYTES, after: PNG_BYTES }, mp4: Buffer.from('not really a video'), captions: 'WEBVTT\n' });
  model = buildSessionModel(fx.events, { chrome, integrity: { state: 'verified', text: 'Every event of this session is in checkpoint 3, signed by demo+48793866.' } });
});
afterAll(async () => {
  await fx?.ledger.close();
});

/** The text of the element that follows `marker`, with tags removed: what a reader sees there. */
function textAfter(html: string, marker: string, length = 400): string {
  const i = html.indexOf(marker);
  expect(i, `"${marker}" is on the page`).toBeGreaterThanOrEqual(0);
  return html
    .slice(i, i + length)
    .replace(/<[^>]+>/g, ' ')
    .replace(/&(quot|amp|lt|gt|#39);/g, (_m, e: string) => ({ quot: '"', amp: '&', lt: '<', gt: '>', '#39': "'" })[e]!)
    .replace(/\s+/g, ' ');
}

describe('the session timeline', () => {
  it('is built from the ledger: one step per tool call, tied to its policy decisions, approval, screenshots, result and errors', () => {
    expect(model.session.id).toBe(fx.session);
    expect(model.session.events).toBe(fx.events.length);
    expect(model.steps.map((s) => s.tool)).toEqual(['refund', 'grant_admin']);
    const [refund, grant] = model.steps as [SessionPageModel['steps'][number], SessionPageModel['steps'][number]];
    expect(refund.callId).toBe(fx.ids.refund);
    expect(refund.reasoning?.text).toMatch(/^The order arrived damaged/);
    expect(refund.reasoning?.model).toBe('claude-x');
    expect(refund.policy.map((p) => [p.decision, p.version])).toEqual([
      ['review', expect.stringMatching(/^[0-9a-f]{64}$/)],
      ['allow', expect.stringMatching(/^[0-9a-f]{64}$/)],
    ]);
    expect(refund.approval?.summary).toMatch(/^approved by alice@acme\.example — Checked the order/);
    expect(refund.approval?.decisions).toEqual([expect.objectContaining({ approver: 'alice@acme.example', decision: 'approved', role: 'billing supervisor', signed: true })]);
    expect(refund.before?.sha256).toBe(fx.shots.before);
    expect(refund.after?.sha256).toBe(fx.shots.after);
    expect(refund.after?.changed).toEqual({ region: { x: 40, y: 150, width: 360, height: 90 }, imageWidth: 640, imageHeight: 400 });
    expect(refund.before?.changed).toBeUndefined();
    expect(refund.result).toMatchObject({ isError: false, durationMs: 412 });
    expect(refund.tone).toBe('ok');
    expect(grant.tone).toBe('denied');
    expect(grant.policy).toEqual([expect.objectContaining({ decision: 'deny', rule: 'no-admin-grants', reason: 'Agents never grant admin rights.' })]);
    expect(grant.errors.map((e) => e.code)).toEqual(['upstream_error']);
    expect(grant.reasoning).toBeUndefined();
    expect(model.errors.map((e) => e.code)).toEqual(['store_busy']);
    expect(model.video).toMatchObject({ eventId: fx.ids.video, videoSha256: fx.video.mp4, captionsSha256: fx.video.vtt });
    expect(model.video?.chapters).toHaveLength(3);
  });

  it('a decision appended without a valid signature is listed, but never reported as the approval that counted', () => {
    const real = fx.events.find((e) => e.kind === 'approval.decision')!;
    const last = fx.events[fx.events.length - 1]!;
    const forged = { ...real, id: '01a24bad-0000-7000-8000-000000000001', seq: last.seq + 1, data: { ...real.data, approver: 'mallory@evil.example', reason: 'I approve too' } };
    const m = buildSessionModel([...fx.events, forged], { chrome });
    expect(m.steps[0]?.approval?.decisions.map((d) => d.approver)).toEqual(['alice@acme.example', 'mallory@evil.example']);
    expect(m.steps[0]?.approval?.summary).toMatch(/^approved by alice@acme\.example/);
    expect(m.steps[0]?.approval?.ignored).toMatch(/mallory@evil\.example: no valid signature/);
  });

  it("agrees with the narrated video's storyboard on every step's tone and approval line, a forged extra decision included", () => {
    const real = fx.events.find((e) => e.kind === 'approval.decision')!;
    const last = fx.events[fx.events.length - 1]!;
    const forged = { ...real, id: '01a24bad-0000-7000-8000-000000000002', seq: last.seq + 1, data: { ...real.data, approver: 'mallory@evil.example' } };
    for (const events of [fx.events, [...fx.events, forged]]) {
      const story = buildStoryboard(events).steps.filter((s) => s.kind === 'call');
      const m = buildSessionModel(events, { chrome });
      expect(m.steps.map((s) => s.tone)).toEqual(story.map((s) => s.tone));
      expect(m.steps.map((s) => s.approval?.summary)).toEqual(story.map((s) => s.rows.find(([k]) => k === 'Approval')?.[1]));
      expect(m.steps.map((s) => s.approval?.ignored)).toEqual(story.map((s) => s.rows.find(([k]) => k === 'Ignored')?.[1]));
    }
  });

  it('renders every part of a step: reasoning, arguments, policy rule and version, approver and reason, screenshots side by side, result, errors, the video with its tracks', () => {
    const html = renderSessionPage(model);
    expect(html.startsWith('<!DOCTYPE html><html lang="en">')).toBe(true);
    expect(html).toContain('<link rel="stylesheet" href="/assets/viewer.css"/>');
    expect(textAfter(html, 'Reasoning before the call')).toMatch(/The order arrived damaged, so I will refund it\./);
    expect(textAfter(html, 'Tool call arguments')).toMatch(/\{ "amount": 650, "callback": "javascript:alert\(\\"url-4\\"\)", "customer_id": "C-1042",/);
    expect(textAfter(html, '>Policy<', 900)).toMatch(/review\s+rule\s+refunds-over-500/);
    expect(html).toContain(`title="${model.steps[0]!.policy[0]!.version!}"`);
    expect(textAfter(html, '>Approval<', 900)).toMatch(/approved by alice@acme\.example/);
    expect(textAfter(html, '>Approval<', 3000)).toMatch(/alice@acme\.example \(billing supervisor\)\s+approved\s+Checked the order/);
    expect(html).toMatch(
      new RegExp(`<div class="shots"><figure><div class="shot"><img src="/v1/artifacts/${fx.shots.before}"[^>]*>.*?</figure><figure><div class="shot"><img src="/v1/artifacts/${fx.shots.after}"`),
    );
    expect(html).toContain(
      '<svg viewBox="0 0 640 400" preserveAspectRatio="none" aria-hidden="true" xmlns="http://www.w3.org/2000/svg"><rect class="changed" x="40" y="150" width="360" height="90"></rect></svg>',
    );
    expect(textAfter(html, '>Result<')).toMatch(/success .* took 412 ms/);
    expect(textAfter(html, 'Step 2')).toMatch(/grant_admin on admin\s+refused/);
    expect(html).toMatch(/<li>2026-11-23 10:02:03 UTC · tool \[upstream_error\] upstream said/);
    expect(textAfter(html, 'Other errors')).toMatch(/recorder \[store_busy\] Recording stalled/);
    expect(html).toContain(`<video controls="" preload="metadata" src="/v1/artifacts/${fx.video.mp4}">`);
    expect(html).toContain(`<track kind="captions" src="/v1/artifacts/${fx.video.vtt}" srclang="en" label="English narration" default=""/>`);
    expect(html).toContain(`<track kind="chapters" src="/video/${fx.ids.video}/chapters.vtt" srclang="en" label="Steps"/>`);
    expect(textAfter(html, 'Integrity details', 10)).toBeTruthy();
    expect(html).toContain('<span class="badge ok">verified</span> Every event of this session is in checkpoint 3');
    expect(html).toContain('<form method="post" action="/sign-out"><input type="hidden" name="csrf" value="tok-123"/>');
  });

  it("a tool's MCP text content is shown as its text, with JSON text indented; a result with any other field is shown whole", () => {
    const withOutput = (output: unknown) =>
      renderSessionPage(
        buildSessionModel(
          fx.events.map((e) => (e.kind === 'tool.result' && e.parent === fx.ids.refund ? { ...e, data: { ...e.data, output } } : e)),
          { chrome },
        ),
      );
    const text = [{ type: 'text', text: '{"refund_id":"R-2001","status":"succeeded"}' }];
    const pretty = '<pre>{\n  &quot;refund_id&quot;: &quot;R-2001&quot;,\n  &quot;status&quot;: &quot;succeeded&quot;\n}</pre>';
    expect(withOutput({ content: text })).toContain(pretty);
    expect(withOutput({ content: text, isError: true })).toContain(pretty);
    const whole = withOutput({ content: text, structuredContent: { refund_id: 'R-2001' } });
    expect(whole).not.toContain(pretty);
    expect(whole).toContain('&quot;structuredContent&quot;: {');
  });

  it('a long session is shown a page of steps at a time, with links to the neighbouring pages', () => {
    const page1 = buildSessionModel(fx.events, { chrome, steps: { limit: 1 } });
    expect(page1.steps.map((s) => [s.index, s.tool])).toEqual([[1, 'refund']]);
    expect(page1.stepWindow).toEqual({ from: 1, to: 1, total: 2 });
    // The second call's error is its step's, not one of the session's "other errors", even off the page.
    expect(page1.errors.map((e) => e.code)).toEqual(['store_busy']);
    const q = new URLSearchParams({ id: fx.session }).toString();
    const html1 = renderSessionPage(page1);
    expect(html1).toContain(`<nav class="paging" aria-label="Steps"><span>Steps 1–1 of 2</span><a href="/session?${q}&amp;from=2">Later steps</a></nav>`);
    expect(html1).not.toContain('Earlier steps');
    // The summary counts the session's tool calls, not the page's.
    expect(html1).toMatch(/event[s]?, 2 tool calls/);
    const page2 = buildSessionModel(fx.events, { chrome, steps: { from: 2, limit: 1 } });
    expect(page2.steps.map((s) => [s.index, s.tool, s.tone])).toEqual([[2, 'grant_admin', 'denied']]);
    expect(renderSessionPage(page2)).toContain(`<span>Steps 2–2 of 2</span><a href="/session?${q}">Earlier steps</a></nav>`);
    // A step number past the end shows the last step rather than an empty page.
    expect(buildSessionModel(fx.events, { chrome, steps: { from: 99, limit: 1 } }).steps.map((s) => s.index)).toEqual([2]);
    expect(renderSessionPage(model)).not.toContain('aria-label="Steps"');
  });

  it('a session with no tool call and no video says so instead of showing empty sections', () => {
    const start = fx.events.filter((e) => e.kind === 'session.start');
    const html = renderSessionPage(buildSessionModel(start, { chrome }));
    expect(html).toContain('This session recorded no tool call.');
    expect(html).not.toContain('<video');
    expect(html).toContain('still open');
  });
});

describe('the sessions list', () => {
  it('shows a row per session with its counts, the filters as sent, and paging links that keep the filters', () => {
    const row = sessionRow(fx.events);
    expect(row.counts).toEqual({ events: fx.events.length, toolCalls: 2, denials: 1, approvals: 1 });
    const html = renderSessionsPage({
      chrome,
      filters: { agent: 'support-bot', outcome: 'denied', since: '2026-11-23T09:00:00.000Z' },
      sessions: [row],
      next: 'CURSOR/2+=',
      cursor: 'CURSOR/1',
    });
    expect(html).toContain(`<a class="mono" href="/session?id=${encodeURIComponent(fx.session).replace(/%20/g, '+')}">`);
    expect(html).toMatch(/<td class="num">17<\/td><td class="num">2<\/td><td class="num"><span class="badge denied">1<\/span><\/td><td class="num">1<\/td>/);
    expect(html).toContain('<input name="agent" value="support-bot" maxlength="512"/>');
    expect(html).toContain('<option value="denied" selected="">denied</option>');
    expect(html).toContain('<input type="datetime-local" name="since" value="2026-11-23T09:00"/>');
    expect(html).toContain('<a href="/sessions?agent=support-bot&amp;outcome=denied&amp;since=2026-11-23T09%3A00%3A00.000Z&amp;cursor=CURSOR%2F2%2B%3D">Next page</a>');
    expect(html).toContain('<a href="/sessions?agent=support-bot&amp;outcome=denied&amp;since=2026-11-23T09%3A00%3A00.000Z">First page</a>');
  });

  it('an empty list says whether the filters or the ledger are empty, and the first page has no "first page" link', () => {
    expect(renderSessionsPage({ chrome, filters: {}, sessions: [] })).toContain('No session has been recorded yet.');
    const html = renderSessionsPage({ chrome, filters: { agent: 'x' }, sessions: [] });
    expect(html).toContain('No session matches these filters.');
    expect(html).not.toContain('First page');
    expect(html).not.toContain('Next page');
  });

  it('offers no resource filter to a reader whose page is masked, since the server refuses it (the answer would confirm a masked value)', () => {
    expect(renderSessionsPage({ chrome, filters: {}, sessions: [] })).toContain('name="resource"');
    expect(renderSessionsPage({ chrome: { ...chrome, masked: true }, filters: {}, sessions: [] })).not.toContain('name="resource"');
  });
});

describe('the approvals queue', () => {
  const pending = {
    requestId: '01a24bad-b34f-77c2-ac10-646cf2a55ec1',
    session: 'sess-1',
    agent: 'support-bot',
    principal: 'customer-12345',
    tool: 'refund',
    server: 'billing',
    arguments: { customer_id: 'C-1042', amount: 650 },
    argumentsDigest: 'a'.repeat(64),
    rule: 'refunds-over-500',
    policyVersion: 'b'.repeat(64),
    reason: 'Refunds over $500 need a supervisor',
    requestedAt: '2026-11-23T10:00:05.000Z',
    expiresAt: '2026-11-23T10:10:05.000Z',
    approvers: ['alice@acme.example'],
  };

  it('shows the exact arguments, who asked, the rule, the time left, and a decision form carrying the CSRF token', () => {
    const html = renderApprovalsPage({ chrome, now: '2026-11-23T10:02:00.000Z', pending: [pending] });
    expect(textAfter(html, 'Exact arguments')).toMatch(/\{ "customer_id": "C-1042", "amount": 650 \}/);
    expect(html).toContain('agent support-bot, acting for customer-12345');
    expect(html).toContain('refunds-over-500');
    expect(html).toContain('8 min 5 s left');
    expect(html).toContain(`<dd class="mono">${'a'.repeat(64)}</dd>`);
    expect(html).toContain(
      '<form class="decide" method="post" action="/approvals/decide"><input type="hidden" name="csrf" value="tok-123"/><input type="hidden" name="request_id" value="01a24bad-b34f-77c2-ac10-646cf2a55ec1"/>',
    );
    expect(html).toContain('<textarea name="reason" maxlength="4096" required=""></textarea>');
    expect(html).toContain('<button class="approve" type="submit" name="decision" value="approve">Approve</button>');
    expect(html).toContain('<button class="deny" type="submit" name="decision" value="deny">Deny</button>');
    expect(html).toContain('Approvals (1)');
  });

  it("maps the approvals module's request to the queue's model: the exact recorded arguments, its digest, approvers by key fingerprint", async () => {
    const [view] = await listApprovals(fx.ledger, { now: new Date('2026-11-23T10:00:30.000Z') });
    const p = pendingApproval(view!);
    const request = fx.events.find((e) => e.kind === 'approval.request')!;
    expect(p).toEqual({
      requestId: fx.ids.request,
      session: fx.session,
      agent: request.agent.id,
      tool: 'refund',
      server: 'billing',
      arguments: request.data?.['arguments'],
      argumentsDigest: request.data?.['arguments_digest'],
      rule: 'refunds-over-500',
      policyVersion: request.data?.['policy_version'],
      reason: 'Refunds over $500 need a supervisor',
      requestedAt: request.ts,
      expiresAt: request.data?.['expires_at'],
      approvers: [expect.stringMatching(/^alice@acme\.example\+[0-9a-f]{8}$/)],
    });
  });

  it('an expired request has no decision form, and an empty queue says so', () => {
    const html = renderApprovalsPage({ chrome, now: '2026-11-23T10:11:00.000Z', pending: [pending] });
    expect(html).toContain('expired 55 s ago');
    expect(html).not.toContain('action="/approvals/decide"');
    expect(renderApprovalsPage({ chrome, now: pending.requestedAt, pending: [], flash: { kind: 'ok', text: 'Approved.' } })).toMatch(
      /<p class="notice ok">Approved\.<\/p>.*No call is waiting for a decision\./,
    );
  });
});

describe('the integrity panel', () => {
  const report = {
    ok: true,
    unverifiable: false,
    events: 1200,
    streams: 4,
    checkpoints: 3,
    sealedSize: 1190,
    unsealed: 10,
    payloadsAbsent: 0,
    artifacts: 12,
    openSessions: 1,
    failures: [],
    trust: { keys: [{ name: 'demo', keyHash: '48793866', source: 'pinned' as const }], statement: 'Checkpoints were verified with 1 signing key pinned by the auditor (--trusted-key).' },
    warnings: [],
  };

  it('says how far a signed checkpoint covers, when and by which key it was signed, why that key is trusted, and offers a re-verify form', () => {
    const last = verificationView(report, '2026-11-23T11:00:00.000Z', 850);
    const html = renderIntegrityPage({
      chrome,
      ledger: { origin: 'demo/witness/01a24bad', size: 1200 },
      checkpoint: { id: 3, size: 1190, ts: '2026-11-23T10:59:50.000Z', rootHex: 'c'.repeat(64) },
      signers: last.signers,
      last,
    });
    expect(textAfter(html, 'Covers')).toMatch(/events 0 to 1189 \(1,190 events\) · checkpoint 3 · 10 newer events not yet sealed/);
    expect(textAfter(html, 'Signed at')).toMatch(/2026-11-23 10:59:50 UTC/);
    expect(textAfter(html, 'Signed by')).toMatch(/demo\+48793866 — trusted because it is pinned by the auditor/);
    expect(textAfter(html, 'Trusted because')).toMatch(/pinned by the auditor \(--trusted-key\)/);
    expect(html).toContain('<span class="badge ok">verified</span> 2026-11-23 11:00:00 UTC · took 850 ms');
    expect(html).toContain('<form method="post" action="/integrity/verify"><input type="hidden" name="csrf" value="tok-123"/><button class="primary" type="submit">Verify again</button></form>');
  });

  it('a failed verification names its first failure and where it is', () => {
    const failed = {
      ...report,
      ok: false,
      failures: [
        { code: 'event_hash' as const, reason: 'the event hash does not match its contents', stream: 's1', seq: 4 },
        { code: 'event_hash' as const, reason: 'x' },
      ],
    };
    failed.failures.length = 2;
    const last = verificationView({ ...failed, first: failed.failures[0] } as never, '2026-11-23T11:00:00.000Z');
    const html = renderIntegrityPage({ chrome, ledger: { origin: 'o', size: 5 }, signers: [], last });
    expect(html).toContain('<span class="badge denied">failed</span>');
    expect(textAfter(html, 'First failure')).toMatch(/the event hash does not match its contents \(session s1, seq 4\) \(and 1 more failure\)/);
    expect(html).toContain('No checkpoint has been signed yet');
  });
});

describe("a session's integrity badge", () => {
  const cp = { id: 3, size: 40, ts: '2026-11-23T10:05:00.000Z' };
  const signers = [{ name: 'views', fingerprint: 'views+1a2b3c4d', source: 'pinned' as const }];
  const ok = {
    at: '2026-11-23T10:06:00.000Z',
    ok: true,
    unverifiable: false,
    events: 40,
    checkpoints: 3,
    sealedSize: 40,
    unsealed: 0,
    failures: 0,
    trust: 'Checkpoints were verified with 1 signing key pinned by the auditor (--trusted-key).',
    signers,
    warnings: [],
  };

  it('is verified only when a signed checkpoint covers every event and the last verification covered them', () => {
    expect(integrityBadge(fx.events, { checkpoint: cp, signers, last: ok })).toEqual({
      state: 'verified',
      text: 'Every event of this session is in checkpoint 3, signed 2026-11-23 10:05:00 UTC by views+1a2b3c4d; the ledger verified 2026-11-23 10:06:00 UTC. Checkpoints were verified with 1 signing key pinned by the auditor (--trusted-key).',
    });
    expect(integrityBadge(fx.events, { checkpoint: cp, signers }).state).toBe('unknown');
    expect(integrityBadge(fx.events, { checkpoint: cp, signers, last: { ...ok, sealedSize: 5 } }).state).toBe('unknown');
  });

  it('is unsealed while an event is past the newest checkpoint, and failed when the last verification failed', () => {
    const last = fx.events[fx.events.length - 1]!;
    expect(integrityBadge(fx.events, { checkpoint: { ...cp, size: last.pos }, signers, last: ok })).toEqual({
      state: 'unsealed',
      text: `1 of ${fx.events.length} events of this session are hash-chained but not yet in a signed checkpoint.`,
    });
    expect(integrityBadge(fx.events, {}).text).toBe(`${fx.events.length} of ${fx.events.length} events of this session are hash-chained but not yet in a signed checkpoint.`);
    expect(integrityBadge(fx.events, { checkpoint: cp, last: { ...ok, ok: false, firstFailure: 'the event hash does not match (session s, seq 2)' } })).toEqual({
      state: 'failed',
      text: 'The last verification of the ledger (2026-11-23 10:06:00 UTC) failed: the event hash does not match (session s, seq 2).',
    });
  });
});

describe('the overview', () => {
  it('counts events per time bucket and draws each chart as server-side SVG with its numbers in words', () => {
    const from = '2026-11-23T10:00:00.000Z';
    const to = '2026-11-23T10:03:00.000Z';
    const buckets = overviewBuckets(fx.events, { from, to, buckets: 3 });
    expect(buckets.map((b) => [b.events, b.toolCalls, b.denials, b.approvals, b.recordingErrors])).toEqual([
      [6, 1, 0, 0, 0],
      [4, 0, 0, 1, 0],
      [7, 1, 1, 0, 1],
    ]);
    // Asked at 10:00:05, decided at 10:01:35 (decided_at).
    expect(buckets[1]?.approvalWaitMs).toBe(90_000);
    const html = renderOverviewPage({
      chrome,
      from,
      to,
      buckets,
      totals: { events: 17, sessions: 1, toolCalls: 2, denials: 1, approvals: 1, pendingApprovals: 0, recordingErrors: 1 },
      checkpoint: { size: 17, ts: '2026-11-23T10:03:00.000Z' },
    });
    expect(html.match(/<svg viewBox="0 0 480 160" role="img"/g)).toHaveLength(4);
    expect(html).toContain('aria-label="Events and tool calls. events: 17 in all, at most 7 per interval; tool calls: 2 in all, at most 1 per interval"');
    expect(html).toContain('Time approvals waited for a person (mean). wait: at most 1 min 30 s');
    expect(html).toMatch(/<polyline class="line" points="[\d.]+,[\d.]+"><\/polyline>/);
    // The tallest bar of the first chart: 7 events on a scale of 10, so 0.7 of the 128 units of plot height.
    expect(html).toMatch(/<rect class="bar s0" x="[\d.]+" y="48\.4" width="[\d.]+" height="89\.6">/);
  });
});

describe('the charts', () => {
  it('an interval with no data is a gap, not a zero, and a chart with none says so', () => {
    const empty = overviewBuckets([], { from: '2026-11-23T10:00:00.000Z', to: '2026-11-23T11:00:00.000Z', buckets: 4 });
    expect(empty.map((b) => b.approvalWaitMs)).toEqual([undefined, undefined, undefined, undefined]);
    const html = renderOverviewPage({
      chrome,
      from: '2026-11-23T10:00:00.000Z',
      to: '2026-11-23T11:00:00.000Z',
      buckets: empty,
      totals: { events: 0, sessions: 0, toolCalls: 0, denials: 0, approvals: 0, pendingApprovals: 0, recordingErrors: 0 },
    });
    expect(html).toContain('wait: no data in this period');
    expect(html).not.toContain('<polyline');
    expect(html).not.toContain('<rect class="bar');
    expect(overviewBuckets(fx.events, { from: '2026-11-23T11:00:00.000Z', to: '2026-11-23T10:00:00.000Z' })).toEqual([]);
  });
});

describe('sign-in and errors', () => {
  it('the sign-in page has an API key field and a CSRF token, and an OpenID Connect button only when configured', () => {
    const plain = renderSignInPage({ csrfToken: 'pre-1' });
    expect(plain).toContain('<form method="post" action="/sign-in"><input type="hidden" name="csrf" value="pre-1"/>');
    expect(plain).toContain('<input type="password" name="api_key" autocomplete="off" required=""/>');
    expect(plain).not.toContain('OpenID Connect');
    expect(plain).not.toContain('<nav');
    const oidc = renderSignInPage({ csrfToken: 'pre-1', oidc: { label: 'Acme SSO' }, next: '/session?id=a', error: 'That key is not valid.' });
    expect(oidc).toContain('<a class="button" href="/sign-in/oidc?next=%2Fsession%3Fid%3Da">Sign in with Acme SSO (OpenID Connect)</a>');
    expect(oidc).toContain('<input type="hidden" name="next" value="/session?id=a"/>');
    expect(oidc).toContain('role="alert">That key is not valid.</p>');
  });

  it('a return path to another origin is dropped, not followed', () => {
    for (const next of ['//evil.example/x', '/\\evil.example', 'https://evil.example', 'javascript:alert(1)', '/ok\nLocation: x']) {
      const html = renderSignInPage({ csrfToken: 't', oidc: { label: 'SSO' }, next });
      expect(html).not.toContain('name="next"');
      expect(html).toContain('href="/sign-in/oidc"');
    }
  });

  it('the error page states the status, the code and the sentence', () => {
    const html = renderErrorPage({ status: 403, code: 'forbidden', message: 'Your role (developer) cannot approve calls; ask an approver.', chrome });
    expect(html).toContain('<title>Not allowed · Witness</title>');
    expect(html).toContain('<p class="notice error">Your role (developer) cannot approve calls; ask an approver.</p>');
    expect(html).toContain('HTTP 403 · forbidden');
    expect(renderErrorPage({ status: 401, message: 'Sign in first.' })).toContain('<a href="/sign-in">Sign in</a>');
  });
});
