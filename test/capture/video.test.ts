import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Capturer, parseVtt } from '../../src/capture/index.js';
import { openWitness } from '../../src/recorder/index.js';
import { runCli, verifyFile, readEvents } from '../helpers/ledger.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/**
 * `witness video` with the real espeak-ng, ffmpeg and Chromium from Debian, on a session recorded
 * through the SDK with real screenshots; the result is read back with the real ffprobe.
 */

const dir = tempDir('witness-video-');
let balance = 1200;
const server = http.createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  res.end(`<!doctype html><title>Customer C-1042</title><body style="font:32px sans-serif"><h1>Customer C-1042</h1><p>Balance: $${balance}</p></body>`);
});
let base = '';
let store = '';
let session = '';
let capturer: Capturer;

beforeAll(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  capturer = new Capturer();
  store = tempDb(dir);
  const w = await openWitness({ store: `sqlite:${store}`, capturer, strict: true });
  try {
    const s = await w.session({ agent: { id: 'billing-bot' }, purpose: 'Refund a duplicate charge for customer C-1042' });
    session = s.id;
    await s.llmCall({ model: 'scripted', input: [{ role: 'user', content: 'I was charged twice.' }], output: 'The customer was charged twice for order A-1042. I will look up the account first.' });
    await s.tool('crm.lookup', { customer_id: 'C-1042' }, () => ({ name: 'J. Doe', balance }), { capture: { url: `${base}/customers/{customer_id}`, after: false } });
    await s.llmCall({ model: 'scripted', input: [], output: 'The duplicate charge is 650 dollars. I will refund it.' });
    const call = await s.tool(
      'billing.refund',
      { customer_id: 'C-1042', amount: 650 },
      () => {
        balance -= 650;
        return { refund_id: 'R-1', status: 'succeeded' };
      },
      { capture: { url: `${base}/customers/{customer_id}` } },
    );
    expect(call).toMatchObject({ status: 'succeeded' });
    await s.end();
  } finally {
    await w.close();
  }
}, 60_000);
afterAll(async () => {
  await capturer?.close();
  server.close();
});

function ffprobe(file: string): { streams: Array<Record<string, unknown>>; chapters: Array<Record<string, unknown>>; format: Record<string, unknown> } {
  return JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-print_format', 'json', '-show_streams', '-show_chapters', '-show_format', file]).toString());
}

function framemd5(file: string, stream: string): string {
  return execFileSync('ffmpeg', ['-v', 'error', '-i', file, '-map', stream, '-f', 'framemd5', '-'])
    .toString()
    .split('\n')
    .filter((l) => !l.startsWith('#'))
    .join('\n');
}

describe('witness video', () => {
  it('renders H.264 + AAC with a subtitle track, one chapter per step and a duration matching the narration, and records its SHA-256 [R-VIDEO]', async () => {
    const out = path.join(dir, 'session.mp4');
    const r = await runCli(['video', session, '-o', out, '--store', `sqlite:${store}`, '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout) as {
      sha256: string;
      durationS: number;
      steps: number;
      chapters: Array<{ title: string; startS: number; endS: number }>;
      vttPath: string;
      event: string;
      stream: string;
    };
    expect(result.steps).toBe(2);

    const probe = ffprobe(out);
    const kinds = probe.streams.map((s) => `${String(s['codec_type'])}:${String(s['codec_name'])}`);
    // MP4 keeps chapters in a text track of its own, which ffprobe lists as a data stream.
    expect(kinds).toEqual(['video:h264', 'audio:aac', 'subtitle:mov_text', 'data:bin_data']);
    expect(probe.streams[0]).toMatchObject({ width: 1280, height: 720 });
    expect(probe.chapters.map((c) => (c['tags'] as { title: string }).title)).toEqual(['Overview', 'Step 1: crm.lookup', 'Step 2: billing.refund', 'Summary']);
    const duration = Number(probe.format['duration']);
    const narrated = result.chapters[result.chapters.length - 1]!.endS;
    expect(Math.abs(duration - narrated)).toBeLessThan(0.15);
    expect(Math.abs(duration - result.durationS)).toBeLessThan(0.15);
    const audio = Number(probe.streams[1]!['duration']);
    expect(Math.abs(audio - narrated)).toBeLessThan(0.15);

    const cues = parseVtt(fs.readFileSync(result.vttPath, 'utf8'));
    expect(cues.length).toBeGreaterThan(8);
    expect(cues.every((c, i) => c.end <= duration + 0.01 && (i === 0 || c.start >= cues[i - 1]!.end - 0.001))).toBe(true);
    const text = cues.map((c) => c.text).join(' ');
    expect(text).toContain('It called billing.refund with amount 650, customer_id C-1042.');
    expect(text).toContain('The call succeeded: refund_id R-1, status succeeded.');
    expect(text).toContain('The agent reasoned: The duplicate charge is 650 dollars.');
    expect(text).toContain('The screen before and after the call follows.');

    // The video itself is in the chain: the session had ended, so it is in the evidence stream, parented to the end.
    const evs = await readEvents(store);
    const video = evs.find((e) => e.id === result.event)!;
    expect(video.stream).toBe('witness.evidence');
    expect(video.parent).toBe(evs.find((e) => e.kind === 'session.end' && e.stream === session)!.id);
    expect(video.data).toMatchObject({ role: 'video', session, steps: 2 });
    expect(video.artifacts?.[0]).toMatchObject({ sha256: result.sha256, mime: 'video/mp4' });
    expect(crypto.createHash('sha256').update(fs.readFileSync(out)).digest('hex')).toBe(result.sha256);
    expect((await verifyFile(store)).ok).toBe(true);
  }, 120_000);

  it('makes the same frames and the same audio from the same session', async () => {
    const a = path.join(dir, 'a.mp4');
    const b = path.join(dir, 'b.mp4');
    for (const out of [a, b]) expect((await runCli(['video', session, '-o', out, '--store', `sqlite:${store}`])).code).toBe(0);
    expect(framemd5(a, '0:v')).toBe(framemd5(b, '0:v'));
    expect(framemd5(a, '0:a')).toBe(framemd5(b, '0:a'));
  }, 120_000);

  it('names a missing ffmpeg or espeak-ng and the command that installs it, in one sentence', async () => {
    for (const [name, variable, pkg] of [
      ['ffmpeg', 'WITNESS_FFMPEG', 'ffmpeg'],
      ['espeak-ng', 'WITNESS_ESPEAK', 'espeak-ng'],
    ] as const) {
      const before = process.env[variable];
      process.env[variable] = '/nonexistent/bin/tool';
      try {
        const r = await runCli(['video', session, '-o', path.join(dir, 'never.mp4'), '--store', `sqlite:${store}`]);
        expect(r.code).toBe(1);
        expect(r.stderr).toBe(
          `witness: ${name} is not installed (looked at /nonexistent/bin/tool); install it with \`sudo sh scripts/setup-system.sh\` (or \`apt-get install ${pkg}\`), or set ${variable} to its path.\n`,
        );
      } finally {
        if (before === undefined) delete process.env[variable];
        else process.env[variable] = before;
      }
    }
    expect(fs.existsSync(path.join(dir, 'never.mp4'))).toBe(false);
  });
});
