import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Capturer, renderSessionVideo, type VideoResult } from '../../src/capture/index.js';
import { filterValue } from '../../src/capture/video/label.js';
import { isKind, type StoredEvent } from '../../src/core/index.js';
import { openWitness } from '../../src/recorder/index.js';
import { artifactFile, readEvents } from '../helpers/ledger.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/**
 * The label on the video's screenshot frames (issue 14): a session recorded through the SDK with
 * real Chromium screenshots, rendered by the real ffmpeg, and its frames read back at the times the
 * screenshots are on screen. There is no OCR here, so the label is checked the other way round: the
 * text it must say (composed here from the ledger's own capture events) is drawn alone with
 * drawtext on the same screenshot, and the video's frame must match that picture cell by cell
 * across the band, where a label one character off, or no label, does not.
 */

const W = 1280;
const H = 720;
const BAND = 40;
const FONTS = '/usr/share/fonts/truetype/dejavu';

const dir = tempDir('witness-video-labels-');
let balance = 1200;
const server = http.createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  // The balance sits in a footer along the bottom edge: the refund changes only that strip.
  res.end(
    `<!doctype html><title>Customer C-1042</title><body style="margin:0;font:32px sans-serif;background:#fff"><h1 style="margin:40px">Customer C-1042</h1><p style="margin:40px">J. Doe, since 2019</p><div style="position:fixed;left:0;right:0;bottom:0;height:28px;font:22px sans-serif;background:#fde68a;padding-left:40px">Balance: $${balance}</div></body>`,
  );
});
let store = '';
let session = '';
let capturer: Capturer;
let video: VideoResult;
let out = '';
let captures: Array<StoredEvent<'capture'>> = [];

beforeAll(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  capturer = new Capturer();
  store = tempDb(dir);
  const w = await openWitness({ store: `sqlite:${store}`, capturer, strict: true });
  try {
    const s = await w.session({ agent: { id: 'billing-bot' }, purpose: 'Refund a duplicate charge' });
    session = s.id;
    // A before shot only, then a before and an after whose difference is the footer.
    await s.tool('crm.lookup', { customer_id: 'C-1042' }, () => ({ balance }), { capture: { url: `${base}/c/{customer_id}`, after: false } });
    await s.tool(
      'billing.refund',
      { customer_id: 'C-1042', amount: 650 },
      () => {
        balance -= 650;
        return { status: 'succeeded' };
      },
      { capture: { url: `${base}/c/{customer_id}` } },
    );
    await s.end();
    out = path.join(dir, 'labelled.mp4');
    video = await renderSessionVideo(w.reader, session, out, { browser: capturer.browser, voice: { speed: 300 } });
  } finally {
    await w.close();
  }
  captures = (await readEvents(store)).flatMap((e) => (isKind(e, 'capture') && e.stream === session ? [e] : []));
}, 120_000);
afterAll(async () => {
  await capturer?.close();
  server.close();
});

const frames = new Map<number, Buffer>();
/** The video's frame at `t` seconds, as 1280×720 RGB. */
function frameAt(t: number): Buffer {
  const got = frames.get(t) ?? execFileSync('ffmpeg', ['-v', 'error', '-ss', t.toFixed(3), '-i', out, '-frames:v', '1', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'], { maxBuffer: 8 << 20 });
  frames.set(t, got);
  return got;
}

interface Label {
  role: string;
  rest: string;
  top: boolean;
}

/**
 * The screenshot as the video shows it (scaled to fit, centred), once per label given, each label
 * drawn alone by drawtext from text files (so nothing here depends on escaping) and `undefined` for
 * none: 1280×720 RGB frames, made in one ffmpeg run.
 */
function expectedFrames(png: string, labels: ReadonlyArray<Label | undefined>): Buffer[] {
  const chains = labels.map((label, i) => {
    const filters = [`scale=${W}:${H}:force_original_aspect_ratio=decrease`, `pad=${W}:${H}:(ow-iw)/2:(oh-ih)/2:color=0x0f172a`, 'format=rgb24'];
    if (label === undefined) return filters.join(',');
    const y = label.top ? 0 : H - BAND;
    const roleFile = path.join(dir, `role-${i}.txt`);
    const restFile = path.join(dir, `rest-${i}.txt`);
    fs.writeFileSync(roleFile, label.role);
    fs.writeFileSync(restFile, label.rest);
    const chip = label.role === 'BEFORE' ? '0x1d4ed8' : '0x15803d';
    filters.push(
      `drawbox=x=0:y=${y}:w=${W}:h=${BAND}:color=0x0f172a@0.88:t=fill`,
      `drawtext=fontfile=${FONTS}/DejaVuSansMono-Bold.ttf:expansion=none:textfile=${roleFile}:fontsize=22:fontcolor=white:box=1:boxcolor=${chip}:boxborderw=6:x=16:y=${y + 9}`,
      `drawtext=fontfile=${FONTS}/DejaVuSansMono.ttf:expansion=none:textfile=${restFile}:fontsize=20:fontcolor=white:x=124:y=${y + 10}`,
    );
    return filters.join(',');
  });
  const n = labels.length;
  const graph =
    n === 1
      ? `[0:v]${chains[0]!}[out]`
      : `[0:v]split=${n}${chains.map((_, i) => `[s${i}]`).join('')};${chains.map((c, i) => `[s${i}]${c}[l${i}]`).join(';')};${chains.map((_, i) => `[l${i}]`).join('')}vstack=inputs=${n}[out]`;
  const all = execFileSync('ffmpeg', ['-v', 'error', '-i', png, '-filter_complex', graph, '-map', '[out]', '-frames:v', '1', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'], { maxBuffer: 64 << 20 });
  return labels.map((_, i) => all.subarray(i * W * H * 3, (i + 1) * W * H * 3));
}

/**
 * The worst mean difference in luma (0-255) of any 10×`h` cell along a horizontal strip from row
 * `y`. One wrong glyph shows as one bad cell, where a mean over the whole strip would drown it in
 * the H.264 noise of the rest; luma, because yuv420p halves the colour resolution, which blurs the
 * coloured chip's edges in every frame, right or wrong. Measured on these frames: the right label
 * at most ~4.5 over the band; over the rows the glyphs occupy, the right label at most ~6, a label one
 * character off at least ~25, no label ~190.
 */
function worstCell(a: Buffer, b: Buffer, y: number, h: number): number {
  const luma = (buf: Buffer, i: number) => 0.299 * buf[i]! + 0.587 * buf[i + 1]! + 0.114 * buf[i + 2]!;
  let worst = 0;
  for (let x0 = 0; x0 < W; x0 += 10) {
    let sum = 0;
    for (let y1 = y; y1 < y + h; y1++) for (let x1 = x0; x1 < x0 + 10; x1++) sum += Math.abs(luma(a, (y1 * W + x1) * 3) - luma(b, (y1 * W + x1) * 3));
    worst = Math.max(worst, sum / (10 * h));
  }
  return worst;
}

/** `event <id>  <ts>  sha256 <12 hex>`, from the capture event alone. */
function restOf(e: StoredEvent<'capture'>, sha: string): string {
  return `event ${e.id}  ${e.ts}  sha256 ${sha.slice(0, 12)}`;
}

describe('labelled screenshot frames in the narrated video', () => {
  it('lists every screenshot shown with the capture event, time and SHA-256 the ledger holds for it', () => {
    const expected = captures.map((e) => {
      const a = e.artifacts!.find((x) => x.mime === 'image/png')!;
      return { role: e.data!.role.toUpperCase(), event: e.id, ts: e.ts, sha256: a.sha256, label: restOf(e, a.sha256) };
    });
    expect(captures.map((e) => e.data?.role)).toEqual(['before', 'before', 'after']);
    expect(video.shots.map(({ role, event, ts, sha256, label }) => ({ role, event, ts, sha256, label }))).toEqual(expected);
    expect(video.shots.every((s) => s.endS > s.startS && s.endS <= video.durationS)).toBe(true);
    expect(video.missingScreenshots).toEqual([]);
  });

  it('burns BEFORE / AFTER, the event id, its time and the hash prefix into every screenshot frame, matching that text drawn alone cell by cell', () => {
    for (const shot of video.shots) {
      const e = captures.find((c) => c.id === shot.event)!;
      const png = artifactFile(store, shot.sha256);
      const role = e.artifacts!.find((a) => a.sha256 === shot.sha256)!.role!.toUpperCase();
      const top = shot.placement === 'top';
      const y = top ? 0 : H - BAND;
      const frame = frameAt((shot.startS + shot.endS) / 2);
      const rest = restOf(e, shot.sha256);
      // One hex digit of the hash prefix off; the event id's last digit off; the other role; no label.
      const flip = (c: string) => (c === '1' ? '8' : '1');
      const wrongHash = restOf(e, shot.sha256.slice(0, 11) + flip(shot.sha256[11]!));
      const wrongId = restOf({ ...e, id: e.id.slice(0, -1) + flip(e.id.slice(-1)) }, shot.sha256);
      const [right, ...wrong] = expectedFrames(png, [
        { role, rest, top },
        { role, rest: wrongHash, top },
        { role, rest: wrongId, top },
        { role: role === 'BEFORE' ? 'AFTER' : 'BEFORE', rest, top },
        undefined,
      ]);
      const bare = wrong[wrong.length - 1]!;
      // The right label matches across the whole band; each wrong one fails in the rows its glyphs occupy.
      expect(worstCell(frame, right!, y, BAND), `${shot.role} ${shot.event}`).toBeLessThan(8);
      expect(worstCell(frame, right!, y + 6, 28)).toBeLessThan(8);
      for (const w of wrong) expect(worstCell(frame, w, y + 6, 28)).toBeGreaterThan(14);
      // Outside the band the frame is the screenshot, untouched.
      expect(worstCell(frame, bare, top ? BAND : 0, H - BAND)).toBeLessThan(8);
    }
  }, 60_000);

  it('tells every other hex digit apart in the last place of the hash prefix', () => {
    const shot = video.shots[0]!;
    const e = captures.find((c) => c.id === shot.event)!;
    const y = shot.placement === 'top' ? 0 : H - BAND;
    const frame = frameAt((shot.startS + shot.endS) / 2);
    const others = [...'0123456789abcdef'].filter((c) => c !== shot.sha256[11]);
    const drawn = expectedFrames(
      artifactFile(store, shot.sha256),
      others.map((c) => ({ role: shot.role, rest: restOf(e, shot.sha256.slice(0, 11) + c), top: y === 0 })),
    );
    const scores = drawn.map((f) => worstCell(frame, f, y + 6, 28));
    expect(Math.min(...scores)).toBeGreaterThan(14);
  }, 60_000);

  it('puts the band at the top when the call changed the bottom of the page, so the change stays visible, and at the bottom otherwise', () => {
    const after = captures.find((e) => e.data?.role === 'after')!;
    const region = after.data!.changed_region!;
    // The refund changed the footer only: the region lies in the bottom band.
    expect(region.y).toBeGreaterThanOrEqual(H - BAND);
    expect(video.shots.map((s) => [s.role, s.placement])).toEqual([
      ['BEFORE', 'bottom'],
      ['BEFORE', 'top'],
      ['AFTER', 'top'],
    ]);
    // In the refund's frames the bottom strip is the page's own footer, before and after.
    for (const shot of video.shots.slice(1)) {
      const [bare] = expectedFrames(artifactFile(store, shot.sha256), [undefined]);
      expect(worstCell(frameAt((shot.startS + shot.endS) / 2), bare!, H - BAND, BAND)).toBeLessThan(8);
    }
  }, 60_000);

  it('names the missing label font and the package that installs it, in one sentence, before any work', async () => {
    const w = await openWitness({ store: `sqlite:${store}` });
    try {
      const never = path.join(dir, 'never.mp4');
      const err = await renderSessionVideo(w.reader, session, never, { env: { ...process.env, WITNESS_FONT_DIR: '/nonexistent/fonts' } }).catch((e: unknown) => e);
      expect(err).toMatchObject({
        code: 'missing_program',
        message:
          'The font DejaVuSansMono.ttf is not installed (looked in /nonexistent/fonts); install it with `sudo sh scripts/setup-system.sh` (or `apt-get install fonts-dejavu-core`), or set WITNESS_FONT_DIR to the directory holding it.',
      });
      expect(fs.existsSync(never)).toBe(false);
    } finally {
      await w.close();
    }
  });

  it('escapes drawtext text so quotes, colons, backslashes, brackets, commas, semicolons and %{…} are drawn as written', () => {
    const text = `it's a:b\\c [x], y; z %{pts} '' \\' : 100%`;
    const file = path.join(dir, 'hostile.txt');
    fs.writeFileSync(file, text);
    const draw = (option: string) =>
      execFileSync('ffmpeg', [
        '-v',
        'error',
        '-f',
        'lavfi',
        '-i',
        `color=c=0x0f172a:s=${W}x${BAND}`,
        '-vf',
        `drawtext=fontfile=${FONTS}/DejaVuSansMono.ttf:expansion=none:${option}:fontsize=20:fontcolor=white:x=10:y=10`,
        '-frames:v',
        '1',
        '-f',
        'rawvideo',
        '-pix_fmt',
        'rgb24',
        '-',
      ]);
    const viaFile = draw(`textfile=${file}`);
    const viaText = draw(`text=${filterValue(text)}`);
    expect(viaText.equals(viaFile)).toBe(true);
    // And it is not an empty picture that matches by accident.
    expect(viaFile.equals(draw(`text=${filterValue('x')}`))).toBe(false);
  });
});
