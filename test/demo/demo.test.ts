import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PAYLOADS, verifyApprovalSignature, type EventKind } from '../../src/core/index.js';
import { oneSentence, runBin, verifyFile, readEvents } from '../helpers/ledger.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * `witness demo` as a new user runs it: the real binary, the real back office web app, its MCP
 * server behind the real `witness proxy`, Chromium, espeak-ng and ffmpeg from Debian.
 */

const dir = tempDir('witness-demo-');

describe('witness demo', () => {
  it('runs the refund, access-change and data-fix workflow through the proxy with approvals, screenshots and a narrated video, and verifies it all', async () => {
    const demo = path.join(dir, 'run');
    const r = await runBin(['demo', '--dir', demo]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const db = path.join(demo, 'witness.db');
    expect(r.stdout).toMatch(/^Witness demo — a support agent works a refund, an access change and a data fix through the MCP audit proxy \(session [0-9a-f-]{36}\)/);
    expect(r.stdout).toMatch(/^ {2}approved billing\.refund request [0-9a-f-]{36} by alice@acme\.example$/m);
    expect(r.stdout).toMatch(/^ {2}denied {3}billing\.refund request [0-9a-f-]{36} by bob@acme\.example$/m);
    expect(r.stdout).toMatch(/^✔ Ledger is intact/m);
    expect(r.stdout).toMatch(/^✔ Evidence bundle is intact/m);
    expect(r.stdout).toContain(`database     ${db}`);
    expect(r.stdout).toMatch(/^ {2}screenshots {2}\S+ \(6 PNGs\)$/m);
    const seconds = Number(/Done in ([\d.]+) s\./.exec(r.stdout)![1]);
    expect(seconds).toBeGreaterThan(0);

    const evs = await readEvents(db);
    // Every payload field Witness's own writers put in the ledger (gateway, approvals, capture, video) is declared in core/event.ts.
    const undeclared = evs.flatMap((e) =>
      Object.keys(e.data ?? {})
        .filter((k) => !(k in PAYLOADS[e.kind as EventKind].shape))
        .map((k) => `${e.kind}.${k}`),
    );
    expect([...new Set(undeclared)]).toEqual([]);
    const session = evs.find((e) => e.kind === 'session.start' && e.recorder?.kind === 'gateway')!;
    const own = evs.filter((e) => e.stream === session.stream);
    expect(own.every((e) => e.agent.id === 'support-bot')).toBe(true);
    const calls = own.filter((e) => e.kind === 'tool.call');
    expect(calls.map((e) => e.data?.['tool'])).toEqual(['crm.lookup_customer', 'billing.refund', 'billing.refund', 'iam.set_role', 'iam.set_role', 'records.fix_field']);
    const decisions = own.filter((e) => e.kind === 'approval.decision').map((e) => [e.data?.['decision'], e.data?.['approver']]);
    expect(decisions).toEqual([
      ['approved', 'alice@acme.example'],
      ['denied', 'bob@acme.example'],
    ]);
    // Each decision is signed by the person's own key (kept 0600 in approvers/), which the policy the proxy enforced lists.
    const policyText = fs.readFileSync(path.join(demo, 'policy.yaml'), 'utf8');
    for (const d of own.filter((e) => e.kind === 'approval.decision')) {
      expect(policyText).toContain(String(d.data?.['approver_key']));
      expect(verifyApprovalSignature(d.data!)?.name).toBe(d.data?.['approver']);
    }
    expect(fs.statSync(path.join(demo, 'approvers', 'alice@acme.example.key')).mode & 0o777).toBe(0o600);
    expect(own.find((e) => e.kind === 'policy.decision' && e.data?.['rule'] === 'no-admin-grants')?.data).toMatchObject({ decision: 'deny' });
    const results = own.filter((e) => e.kind === 'tool.result').map((e) => e.outcome);
    expect(results).toEqual(['success', 'success', 'denied', 'denied', 'success', 'success']);
    // Every state change has a before and an after screenshot bound to its call.
    const changed = [calls[1]!, calls[4]!, calls[5]!];
    for (const call of changed) {
      const roles = own.filter((e) => e.kind === 'capture' && e.parent === call.id).map((e) => e.data?.['role']);
      expect(roles, String(call.data?.['tool'])).toEqual(['before', 'after']);
    }
    const refundShots = own.filter((e) => e.kind === 'capture' && e.parent === calls[1]!.id);
    expect(refundShots[0]!.data?.['text']).toContain('$1,300.00');
    expect(refundShots[1]!.data?.['text']).toContain('$650.00');
    expect(String(refundShots[0]!.data?.['text'])).not.toContain('4111');

    // The video: H.264, AAC, captions, a chapter per step, and its hash in the chain.
    const video = path.join(demo, 'witness-demo.mp4');
    const probe = JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-print_format', 'json', '-show_streams', '-show_chapters', video]).toString()) as {
      streams: Array<{ codec_name: string }>;
      chapters: Array<{ tags: { title: string } }>;
    };
    expect(probe.streams.slice(0, 3).map((s) => s.codec_name)).toEqual(['h264', 'aac', 'mov_text']);
    expect(probe.chapters.map((c) => c.tags.title)).toEqual(['Overview', ...calls.map((c, i) => `Step ${i + 1}: ${String(c.data?.['tool'])}`), 'Summary']);
    const recorded = evs.find((e) => e.kind === 'capture' && e.data?.['role'] === 'video')!;
    expect(recorded.artifacts?.[0]?.sha256).toBe(crypto.createHash('sha256').update(fs.readFileSync(video)).digest('hex'));
    expect(fs.readFileSync(path.join(demo, 'witness-demo.vtt'), 'utf8')).toMatch(/^WEBVTT\n/);
    expect(fs.readdirSync(path.join(demo, 'screenshots')).sort()).toEqual([
      'step-02-billing.refund-after.png',
      'step-02-billing.refund-before.png',
      'step-05-iam.set_role-after.png',
      'step-05-iam.set_role-before.png',
      'step-06-records.fix_field-after.png',
      'step-06-records.fix_field-before.png',
    ]);
    expect((await verifyFile(db)).ok).toBe(true);
  }, 120_000);

  it('names a missing program and the command that installs it, and exits 1, when it may not install it itself', async () => {
    const r = await runBin(['demo', '--dir', path.join(dir, 'missing')], { env: { WITNESS_FFMPEG: '/nonexistent/ffmpeg', WITNESS_NO_SETUP: '1' } });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      'witness: ffmpeg is not installed (looked at /nonexistent/ffmpeg); install it with `sudo sh scripts/setup-system.sh` (or `apt-get install ffmpeg`), or set WITNESS_FFMPEG to its path.\n',
    );
  });

  it('[R-CLI-USAGE] refuses a --dir it cannot make or write in one sentence with exit 2, promptly, without starting anything', async () => {
    const file = path.join(dir, 'a-file');
    fs.writeFileSync(file, 'not a directory\n');
    // /proc answers ENOENT for a new directory whose parent exists: Node's recursive mkdir retried
    // that forever, and a failure after the web app started left the process running. runBin
    // kills the demo after 30 s (code -1).
    const cases: Array<[string, RegExp]> = [
      ['/proc/witness-demo-test/run', /^Cannot create the demo directory \/proc\/witness-demo-test\/run \(the file system refused it \(ENOENT\)\); choose a writable path with --dir\.$/],
      ['/proc', /^Cannot create the demo directory \/proc\/approvers \(the file system refused it \(ENOENT\)\); choose a writable path with --dir\.$/],
      [file, /^The demo directory .*\/a-file exists and is not a directory; choose another path with --dir\.$/],
      [path.join(file, 'run'), /^Cannot create the demo directory .*\/a-file\/run \(.*\/a-file is not a directory\); choose a writable path with --dir\.$/],
    ];
    const started = Date.now();
    const results = await Promise.all(cases.map(([d]) => runBin(['demo', '--dir', d], { env: { WITNESS_NO_SETUP: '1' } })));
    for (const [i, r] of results.entries()) {
      const [d, message] = cases[i]!;
      expect(r.code, d).toBe(2);
      expect(r.stdout, d).toBe('');
      expect(oneSentence(r.stderr), d).toMatch(message);
    }
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(fs.existsSync(path.join(file, 'run'))).toBe(false);
  }, 60_000);
});
