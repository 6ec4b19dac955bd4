import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { generateKey, parseSignerKey, sha256Hex, signApproval, type StoredEvent } from '../../../src/core/index.js';
import { openLedger, type AppendRequest, type Ledger } from '../../../src/store/index.js';
import { tempDb } from '../../helpers/tmp.js';

/**
 * A real SQLite ledger holding one refund session written the way the recorder and the gateway
 * write one (ids tied by `parent`, a signed approval, before/after screenshots, a narrated video's
 * capture event), with hostile text in every field an agent, a tool or a web page controls.
 */

/** Strings that must reach a page as inert text. Each carries a marker the tests look for. */
export const HOSTILE = {
  script: '<script>alert("script-1")</script>',
  img: '<img src=x onerror=alert("img-2")>',
  svg: '<svg onload=alert("svg-3")><circle r=9></circle></svg>',
  jsUrl: 'javascript:alert("url-4")',
  quote: '" onmouseover="alert(\'attr-5\')" x="',
  iframe: '<iframe src="//evil.example/frame-6"></iframe>',
  style: '<style>body{background:url(//evil.example/css-7)}</style>',
  link: '<a href="javascript:alert(\'link-8\')">click me</a>',
} as const;

export const ALL_HOSTILE = Object.values(HOSTILE).join(' ');

/** The same session with the hostile strings left out, for screenshots a person reads. */
const PLAIN: Record<keyof typeof HOSTILE, string> = { script: '', img: '', svg: '', jsUrl: 'http://127.0.0.1:8081/customers/C-1042', quote: '', iframe: '', style: '', link: '' };

export interface Fixture {
  ledger: Ledger;
  session: string;
  events: Array<StoredEvent & { pos: number }>;
  ids: { refund: string; grant: string; request: string; video: string };
  shots: { before: string; after: string };
  video: { mp4: string; vtt: string };
  approver: { name: string; vkey: string };
}

function at(base: number, s: number): string {
  return new Date(base + s * 1000).toISOString();
}

/** `leak` is a URL that must never be fetched: hostile markup points at it. `plain` leaves the hostile strings out. */
export async function buildFixture(dir: string, options: { leak: string; png: { before: Buffer; after: Buffer }; mp4: Buffer; captions: string; plain?: boolean }): Promise<Fixture> {
  const H = options.plain === true ? PLAIN : HOSTILE;
  const ledger = await openLedger(`sqlite:${tempDb(dir)}`, { name: 'views' });
  const session = `refund-${randomUUID()}`;
  const agent = { id: `support-bot ${H.quote}`, version: '1.4.2' };
  const base = Date.parse('2026-11-23T10:00:00.000Z');
  const leakImg = options.plain === true ? '' : `<img src="${options.leak}/img">`;
  const before = await ledger.putArtifact(options.png.before, 'image/png', 'before');
  const after = await ledger.putArtifact(options.png.after, 'image/png', 'after');
  const mp4 = await ledger.putArtifact(options.mp4, 'video/mp4', 'video');
  const vtt = await ledger.putArtifact(Buffer.from(options.captions), 'text/vtt', 'captions');

  const id = {
    start: randomUUID(),
    llm: randomUUID(),
    refund: randomUUID(),
    review: randomUUID(),
    request: randomUUID(),
    decision: randomUUID(),
    release: randomUUID(),
    grant: randomUUID(),
    video: randomUUID(),
  };
  const refundArgs =
    options.plain === true
      ? { customer_id: 'C-1042', amount: 650, reason: 'Parcel arrived damaged' }
      : { customer_id: 'C-1042', amount: 650, note: `${H.quote}${H.svg}`, callback: H.jsUrl, html: leakImg };
  const argsDigest = sha256Hex(Buffer.from(JSON.stringify(refundArgs)));
  const policyVersion = sha256Hex(Buffer.from('policy'));
  const expiresAt = at(base, 600);

  const alice = generateKey('alice@acme.example');
  const decision: Record<string, unknown> = {
    request_id: id.request,
    decision: 'approved',
    approver: 'alice@acme.example',
    role: 'billing supervisor',
    reason: options.plain === true ? 'Checked the order: the parcel arrived damaged, photo attached to the ticket.' : `Checked the order. </textarea>${H.script}`,
    arguments_digest: argsDigest,
    approver_key: alice.verifierKey,
    agent: agent.id,
    tool: 'refund',
    server: 'billing',
    session,
    policy_version: policyVersion,
    expires_at: expiresAt,
    decided_at: at(base, 95),
  };
  decision['approver_sig'] = signApproval(parseSignerKey(alice.signerKey), decision);

  const ev = (e: Omit<AppendRequest, 'stream' | 'agent'> & { agent?: AppendRequest['agent'] }): AppendRequest => ({ stream: session, agent, ...e }) as AppendRequest;
  const batch: AppendRequest[] = [
    ev({ id: id.start, ts: at(base, 0), kind: 'session.start', recorder: { kind: 'gateway' }, data: { purpose: `Refund order 1042 ${H.script}`, labels: { server: `billing ${H.img}` } } }),
    ev({
      id: id.llm,
      ts: at(base, 1),
      kind: 'llm.call',
      data: {
        model: 'claude-x',
        input: [{ role: 'user', content: 'Refund order 1042' }],
        output: { content: [{ type: 'text', text: `The order arrived damaged, so I will refund it. ${H.script} ${H.img} [docs](${H.jsUrl}) ${leakImg}` }] },
      },
    }),
    ev({ id: id.refund, ts: at(base, 2), kind: 'tool.call', resource: 'billing', action: 'refund', outcome: 'pending', data: { tool: 'refund', server: 'billing', arguments: refundArgs } }),
    ev({
      ts: at(base, 3),
      kind: 'capture',
      parent: id.refund,
      artifacts: [before],
      outcome: 'success',
      data: { role: 'before', url: H.jsUrl, title: `Order 1042 ${H.iframe}`, viewport: { width: 640, height: 400 }, captured_at: at(base, 3) },
    }),
    ev({
      id: id.review,
      ts: at(base, 4),
      kind: 'policy.decision',
      parent: id.refund,
      policy: { decision: 'review', rule: `refunds-over-500 ${H.style}`, version: policyVersion },
      data: { decision: 'review', rule: `refunds-over-500 ${H.style}`, policy_version: policyVersion, reason: `Refunds over $500 need a supervisor ${H.link}`, tool: 'refund' },
    }),
    ev({
      id: id.request,
      ts: at(base, 5),
      kind: 'approval.request',
      // As the gateway stamps it: the approvals queue lists no other request.
      recorder: { kind: 'gateway', version: '0.1.0' },
      parent: id.refund,
      resource: 'billing',
      action: 'refund',
      data: {
        request_id: id.request,
        tool: 'refund',
        server: 'billing',
        arguments: refundArgs,
        arguments_digest: argsDigest,
        approvers: [alice.verifierKey],
        rule: 'refunds-over-500',
        reason: 'Refunds over $500 need a supervisor',
        expires_at: expiresAt,
        policy_version: policyVersion,
      },
    }),
    // As `witness approve` stamps it: the totals count no decision another recorder wrote.
    ev({ id: id.decision, ts: at(base, 96), kind: 'approval.decision', recorder: { kind: 'cli', version: '0.1.0' }, parent: id.request, outcome: 'success', data: decision as never }),
    ev({
      id: id.release,
      ts: at(base, 97),
      kind: 'policy.decision',
      parent: id.refund,
      policy: { decision: 'allow', rule: 'refunds-over-500', version: policyVersion },
      data: { decision: 'allow', rule: 'refunds-over-500', policy_version: policyVersion, approval: { request_id: id.request, decision_id: id.decision, approver: 'alice@acme.example' } },
    }),
    ev({
      ts: at(base, 98),
      kind: 'tool.result',
      parent: id.refund,
      outcome: 'success',
      data: {
        tool: 'refund',
        is_error: false,
        duration_ms: 412,
        output:
          options.plain === true
            ? { content: [{ type: 'text', text: '{"refund_id":"R-2001","status":"succeeded","amount":650}' }] }
            : { content: [{ type: 'text', text: `<h1>Refunded</h1>${H.link}${leakImg}` }], isEscaped: true, toString: H.script },
      },
    }),
    ev({
      ts: at(base, 99),
      kind: 'capture',
      parent: id.refund,
      artifacts: [after],
      outcome: 'success',
      data: {
        role: 'after',
        url: 'http://127.0.0.1:8081/customers/C-1042',
        title: 'Order 1042 refunded',
        viewport: { width: 640, height: 400 },
        captured_at: at(base, 99),
        changed_region: { x: 40, y: 150, width: 360, height: 90, image_width: 640, image_height: 400 },
      },
    }),
    ev({
      id: id.grant,
      ts: at(base, 120),
      kind: 'tool.call',
      resource: 'admin',
      action: 'grant_admin',
      outcome: 'denied',
      data: { tool: 'grant_admin', server: 'admin', arguments: { user: `mallory ${H.img}` } },
    }),
    ev({
      ts: at(base, 121),
      kind: 'policy.decision',
      parent: id.grant,
      outcome: 'denied',
      policy: { decision: 'deny', rule: 'no-admin-grants' },
      data: { decision: 'deny', rule: 'no-admin-grants', reason: 'Agents never grant admin rights.' },
    }),
    ev({ ts: at(base, 122), kind: 'tool.result', parent: id.grant, outcome: 'denied', data: { tool: 'grant_admin', is_error: true, error: { message: `Refused by policy ${H.svg}` } } }),
    ev({ ts: at(base, 123), kind: 'error', parent: id.grant, outcome: 'error', data: { message: `upstream said ${H.iframe}`, code: 'upstream_error', source: 'tool' } }),
    ev({ ts: at(base, 130), kind: 'error', outcome: 'error', data: { message: `Recording stalled ${H.script}`, code: 'store_busy', source: 'recorder' } }),
    ev({
      id: id.video,
      ts: at(base, 140),
      kind: 'capture',
      resource: session,
      action: 'video.render',
      outcome: 'success',
      artifacts: [mp4, vtt],
      data: {
        role: 'video',
        session,
        duration_s: 2,
        steps: 2,
        chapters: [
          { title: 'Overview', start_s: 0, end_s: 0.5 },
          { title: options.plain === true ? 'Step 1: refund' : `Step 1: refund ${H.script}\n\nWEBVTT 00:00.000 --> 00:09.000`, start_s: 0.5, end_s: 1.5 },
          { title: 'Summary', start_s: 1.5, end_s: 2 },
        ],
      },
    }),
    ev({ ts: at(base, 150), kind: 'session.end', outcome: 'success', data: { reason: 'completed', final_output: `Refund done. ${H.link}` } }),
  ];
  await ledger.append(batch);
  const events = await ledger.readStream(session);
  return {
    ledger,
    session,
    events,
    ids: { refund: id.refund, grant: id.grant, request: id.request, video: id.video },
    shots: { before: before.sha256, after: after.sha256 },
    video: { mp4: mp4.sha256, vtt: vtt.sha256 },
    approver: { name: 'alice@acme.example', vkey: alice.verifierKey },
  };
}

/** A two-second H.264 MP4 with a test pattern, made by the system's ffmpeg. */
export function makeMp4(dir: string): Buffer {
  const out = path.join(dir, 'clip.mp4');
  execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=320x180:rate=10', '-t', '2', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-movflags', '+faststart', out]);
  return fs.readFileSync(out);
}
