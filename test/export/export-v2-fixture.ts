import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { ArtifactRef } from '../../src/core/index.js';
import { openWitness } from '../../src/index.js';
import { SqliteLedger, type AppendRequest } from '../../src/store/index.js';
import { PNG_BYTES } from '../helpers/ledger.js';
import { tempDb } from '../helpers/tmp.js';

/**
 * A demo-like ledger for the v2 exporter: two agents, three sessions interleaved in the global
 * order, screenshots, a held refund approved in witness.approvals, a denial, a configuration
 * change, and a narrated video (a real MP4 made by ffmpeg, with its captions) recorded in
 * witness.evidence after its session ended. Every `ts` is fixed, so time windows are exact.
 *
 *   10:00  s1 support-bot   session.start
 *   10:01  s1               llm.call (model, answering model, prompt and tool hashes)
 *   10:02  s2 billing-bot   session.start
 *   10:03  s1               capture before (png A)
 *   10:04  s1               tool.call billing.refund (policy review, version P)
 *   10:05  witness.approvals approval.request (parent: that tool.call, resource s1)
 *   10:06  s2               tool.call billing.wipe denied (policy deny)
 *   10:07  witness.approvals approval.decision approved (parent: the request)
 *   10:08  s1               capture after (png B)
 *   10:09  s1               session.end
 *   10:10  s2               capture (png C), then 10:11 session.end
 *   11:00  s3 support-bot   session.start, 11:01 config.change, 11:02 error, 11:03 session.end
 *   11:30  witness.evidence capture video (parent: s1's session.end, resource s1; mp4 + vtt)
 */
export interface DemoLedger {
  file: string;
  sessions: { s1: string; s2: string; s3: string };
  /** Leaf of each event by a short name. */
  leaf: Record<string, number>;
  shots: { a: string; b: string; c: string };
  video: { mp4: string; vtt: string };
  size: number;
}

const at = (hhmm: string) => `2026-11-01T${hhmm}:00.000Z`;

export async function buildDemoLedger(dir: string): Promise<DemoLedger> {
  const file = tempDb(dir);
  const w = await openWitness({ store: `sqlite:${file}`, name: 'demo-v2', strict: true, seal: { enabled: false } });
  await w.close();
  const ledger = SqliteLedger.open({ path: file, create: false });
  const leaf: Record<string, number> = {};
  const s1 = 'sess-refund-1';
  const s2 = 'sess-billing-2';
  const s3 = 'sess-support-3';
  const support = { id: 'support-bot', version: '1.2.0' };
  const billing = { id: 'billing-bot', version: '0.9.1' };
  try {
    const png = async (n: number): Promise<ArtifactRef> => ledger.putArtifact(Buffer.concat([PNG_BYTES, Buffer.from([n])]), 'image/png', 'screenshot');
    const [a, b, c] = [await png(1), await png(2), await png(3)];
    const one = async (name: string, req: AppendRequest): Promise<string> => {
      const [r] = await ledger.append([req]);
      leaf[name] = r!.pos;
      return r!.id;
    };
    await one('s1.start', { stream: s1, agent: support, kind: 'session.start', ts: at('10:00'), data: { purpose: 'refund a duplicate charge' } });
    await one('s1.llm', {
      stream: s1,
      agent: support,
      kind: 'llm.call',
      ts: at('10:01'),
      data: {
        model: 'claude-sonnet',
        response_model: 'claude-sonnet-20261001',
        input: [{ role: 'user', content: 'I was charged twice, customer jane@example.com' }],
        output: 'Refunding.',
        system_prompt_sha256: 'a'.repeat(64),
        tool_definitions_sha256: 'b'.repeat(64),
      },
    });
    await one('s2.start', { stream: s2, agent: billing, kind: 'session.start', ts: at('10:02'), data: {} });
    await one('s1.before', { stream: s1, agent: support, kind: 'capture', ts: at('10:03'), resource: 'billing', action: 'screenshot', artifacts: [a], data: { role: 'before' } });
    const call = await one('s1.call', {
      stream: s1,
      agent: support,
      kind: 'tool.call',
      ts: at('10:04'),
      resource: 'billing',
      action: 'refund',
      outcome: 'pending',
      policy: { decision: 'review', rule: 'refunds-over-500', version: 'c'.repeat(64) },
      data: { tool: 'billing.refund', arguments: { order: 'A-1042', amount: 900 } },
    });
    const request = await one('approval.request', {
      stream: 'witness.approvals',
      agent: support,
      kind: 'approval.request',
      ts: at('10:05'),
      parent: call,
      resource: s1,
      action: 'refund',
      outcome: 'pending',
      data: { request_id: 'req-1', tool: 'billing.refund', arguments_digest: 'd'.repeat(64), session: s1, call_id: call },
    });
    await one('s2.denied', {
      stream: s2,
      agent: billing,
      kind: 'tool.call',
      ts: at('10:06'),
      resource: 'billing',
      action: 'wipe',
      outcome: 'denied',
      policy: { decision: 'deny', rule: 'no-wipes', version: 'c'.repeat(64) },
      data: { tool: 'billing.wipe', arguments: {} },
    });
    await one('approval.decision', {
      stream: 'witness.approvals',
      agent: { id: 'witness-cli' },
      kind: 'approval.decision',
      ts: at('10:07'),
      parent: request,
      resource: s1,
      action: 'refund',
      outcome: 'success',
      data: { request_id: 'req-1', decision: 'approved', approver: 'alice@corp', arguments_digest: 'd'.repeat(64) },
    });
    await one('s1.after', { stream: s1, agent: support, kind: 'capture', ts: at('10:08'), resource: 'billing', action: 'screenshot', artifacts: [b], data: { role: 'after' } });
    const end1 = await one('s1.end', { stream: s1, agent: support, kind: 'session.end', ts: at('10:09'), data: { reason: 'completed' } });
    await one('s2.shot', { stream: s2, agent: billing, kind: 'capture', ts: at('10:10'), artifacts: [c], data: { role: 'before' } });
    await one('s2.end', { stream: s2, agent: billing, kind: 'session.end', ts: at('10:11'), data: { reason: 'completed' } });
    await ledger.seal();
    await one('s3.start', { stream: s3, agent: support, kind: 'session.start', ts: at('11:00'), data: {} });
    await one('s3.config', { stream: s3, agent: support, kind: 'config.change', ts: at('11:01'), data: { target: 'policy', description: 'raised the refund limit' } });
    await one('s3.error', { stream: s3, agent: support, kind: 'error', ts: at('11:02'), outcome: 'error', data: { message: 'CRM timed out' } });
    await one('s3.end', { stream: s3, agent: support, kind: 'session.end', ts: at('11:03'), data: { reason: 'completed' } });

    // A real (tiny) MP4 and its captions, as src/recorder/evidence.ts records a rendered video.
    const mp4File = path.join(dir, `video-${randomBytes(4).toString('hex')}.mp4`);
    execFileSync('ffmpeg', ['-loglevel', 'error', '-f', 'lavfi', '-i', 'color=c=blue:s=64x48:d=0.5', '-pix_fmt', 'yuv420p', '-y', mp4File]);
    const mp4 = await ledger.putArtifact(fs.readFileSync(mp4File), 'video/mp4', 'video');
    const vtt = await ledger.putArtifact(Buffer.from('WEBVTT\n\n00:00.000 --> 00:00.500\nThe refund\n'), 'text/vtt', 'captions');
    await one('video', {
      stream: 'witness.evidence',
      agent: support,
      kind: 'capture',
      ts: at('11:30'),
      parent: end1,
      resource: s1,
      action: 'video.render',
      outcome: 'success',
      artifacts: [mp4, vtt],
      data: { role: 'video', session: s1, duration_s: 0.5, steps: 1, chapters: [] },
    });
    await ledger.seal();
    return { file, sessions: { s1, s2, s3 }, leaf, shots: { a: a.sha256, b: b.sha256, c: c.sha256 }, video: { mp4: mp4.sha256, vtt: vtt.sha256 }, size: ledger.info.size };
  } finally {
    await ledger.close();
  }
}
