import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { WitnessError } from '../../core/index.js';
import type { Ledger, LedgerReader } from '../../store/index.js';
import { CaptureBrowser } from '../browser.js';
import { runProgram } from '../exec.js';
import { requireProgram } from '../programs.js';
import { padTo, pcmSeconds, speak, writeWav, type Pcm, type Voice } from './audio.js';
import { cardHtml } from './card.js';
import { capturesByCall, changedRegionOf, labelShots, labelText, placement, pngSize, requireLabelFonts, roleWord, shotLabel, type LabelJob, type Placement } from './label.js';
import { buildStoryboard, type Step } from './storyboard.js';
import { requireVoice } from './voices.js';
import { movTextCues, toVtt, type Cue } from './vtt.js';

/**
 * `witness video <session>`: the session as a narrated MP4. For each step a title card (what the
 * agent did and why, the policy decision, the approver, the result), then the before and after
 * screenshots, each frame labelled BEFORE / AFTER with its capture event's id and time and the
 * screenshot's SHA-256 prefix (label.ts); narration spoken by espeak-ng from the events; captions
 * as a soft subtitle track and a sidecar WebVTT; one chapter per step. H.264 + AAC, encoded bit-exact, so the same session
 * gives the same frames.
 */

export interface VideoOptions {
  voice?: Partial<Voice>;
  /**
   * Frames per second. The video is slides that change every few seconds, so 2 is enough, and the
   * encode time is proportional to it (a 20-step session: 9 s at 2 fps, 20 s at 10 fps, 2 cores).
   */
  fps?: number;
  /** A warm browser to render the title cards with (one is started and closed otherwise). */
  browser?: CaptureBrowser;
  onProgress?: (stage: 'narration' | 'cards' | 'encoding', done: number, total: number) => void;
  env?: NodeJS.ProcessEnv;
}

export interface VideoChapter {
  title: string;
  startS: number;
  endS: number;
}

export interface VideoResult {
  path: string;
  vttPath: string;
  sha256: string;
  bytes: number;
  vttSha256: string;
  durationS: number;
  steps: number;
  chapters: VideoChapter[];
  voice: Voice;
  /** Screenshots the events reference but the artifact store does not hold (withheld or lost). */
  missingScreenshots: string[];
  /** Every screenshot shown, in order, with the label burned into its frames and when it is on screen. */
  shots: VideoShot[];
}

export interface VideoShot {
  /** BEFORE or AFTER, as the label shows it. */
  role: string;
  /** The capture event holding the screenshot. */
  event: string;
  ts: string;
  /** The screenshot artifact's SHA-256 (the label shows its first 12 hex characters). */
  sha256: string;
  /** The label's text after the role. */
  label: string;
  placement: Placement;
  startS: number;
  endS: number;
}

const WIDTH = 1280;
const HEIGHT = 720;

interface Slide {
  file: string;
  seconds: number;
}

export async function renderSessionVideo(ledger: LedgerReader, session: string, outPath: string, options: VideoOptions = {}): Promise<VideoResult> {
  const env = options.env ?? process.env;
  // Every program is looked for before any work, so a missing one is named at once.
  const ffmpeg = requireProgram('ffmpeg', env);
  const espeak = requireProgram('espeak-ng', env);
  const fonts = requireLabelFonts(env);
  const voice: Voice = { voice: options.voice?.voice ?? 'en-us', speed: options.voice?.speed ?? 165 };
  if (!Number.isInteger(voice.speed) || voice.speed < 80 || voice.speed > 450)
    throw new WitnessError('invalid_argument', `Speed ${voice.speed} must be a whole number of words per minute from 80 to 450.`);
  await requireVoice(voice.voice, env);
  const fps = options.fps ?? 2;
  if (!Number.isInteger(fps) || fps < 1 || fps > 30) throw new WitnessError('invalid_argument', `fps ${fps} must be a whole number from 1 to 30.`);
  const events = await ledger.readStream(session);
  if (events.length === 0) throw new WitnessError('not_found', `No session ${session} in ${ledger.info.location}; list sessions with \`witness query --kind session.start\`.`);
  const board = buildStoryboard(events);
  const captures = capturesByCall(events);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'witness-video-'));
  const ownBrowser = options.browser === undefined ? new CaptureBrowser({ env }) : undefined;
  const browser = options.browser ?? ownBrowser!;
  try {
    // 1. Narration, one clip per step.
    const clips: Pcm[] = [];
    for (const [i, step] of board.steps.entries()) {
      clips.push(await speak(espeak, step.narration, voice));
      options.onProgress?.('narration', i + 1, board.steps.length);
    }
    const { sampleRate, channels } = clips[0]!;
    if (clips.some((c) => c.sampleRate !== sampleRate || c.channels !== channels)) throw new WitnessError('capture_failed', 'espeak-ng produced clips in different audio formats.');

    // 2. Title cards, rendered together in one browser context, while ffmpeg burns the label into
    // every screenshot (label.ts): each becomes a 1280×720 frame of its own before the encode.
    const missing: string[] = [];
    const shotsOf: ShotFile[][] = [];
    for (const step of board.steps) shotsOf.push(await screenshotsOf(ledger, step, captures.get(step.callId ?? '') ?? [], work, missing));
    const footer = `witness · session ${board.session} · agent ${board.agent}`;
    // Both are waited for even when one fails, so no ffmpeg still writes into the work directory
    // when it is removed.
    const [rendered, labelled] = await Promise.allSettled([
      browser.renderHtml(
        board.steps.map((s) => cardHtml(s, footer)),
        { width: WIDTH, height: HEIGHT },
      ),
      labelShots(
        ffmpeg,
        shotsOf.flat().flatMap((f) => (f.job === undefined ? [] : [f.job])),
        fonts,
      ),
    ]);
    if (rendered.status === 'rejected') throw rendered.reason;
    if (labelled.status === 'rejected') throw labelled.reason;
    const cards = rendered.value;
    options.onProgress?.('cards', cards.length, cards.length);

    // 3. Timing: each step lasts its narration plus a pause, and long enough to see its screenshots.
    const frame = (s: number) => Math.max(1, Math.ceil(s * fps)) / fps;
    const slides: Slide[] = [];
    const cues: Cue[] = [];
    const chapters: VideoChapter[] = [];
    const audio: Buffer[] = [];
    const shown: VideoShot[] = [];
    let t = 0;
    for (const [i, step] of board.steps.entries()) {
      const clip = clips[i]!;
      const shots = shotsOf[i]!;
      const spoken = pcmSeconds(clip);
      const total = frame(Math.max(spoken + 0.7, 2 + 1.5 * shots.length));
      const cardFile = path.join(work, `card-${String(i).padStart(3, '0')}.png`);
      fs.writeFileSync(cardFile, cards[i]!);
      const cardSeconds = shots.length === 0 ? total : frame(total * 0.4);
      slides.push({ file: cardFile, seconds: cardSeconds });
      let left = total - cardSeconds;
      let at = t + cardSeconds;
      shots.forEach((shot, k) => {
        const seconds = k === shots.length - 1 ? Math.round(left * fps) / fps : frame(left / (shots.length - k));
        slides.push({ file: shot.file, seconds });
        if (shot.job !== undefined) {
          const l = shot.job.label;
          const startS = Math.round(at * 1000) / 1000;
          shown.push({
            role: roleWord(l.role),
            event: l.event,
            ts: l.ts,
            sha256: l.sha256,
            label: labelText(l),
            placement: shot.job.placement,
            startS,
            endS: Math.round((at + seconds) * 1000) / 1000,
          });
        }
        at += seconds;
        left -= seconds;
      });
      audio.push(padTo(clip, total).data);
      cues.push(...sentenceCues(step.narration, t, spoken));
      chapters.push({ title: step.chapter, startS: Math.round(t * 1000) / 1000, endS: Math.round((t + total) * 1000) / 1000 });
      t += total;
    }
    const durationS = Math.round(t * 1000) / 1000;
    const wav = path.join(work, 'narration.wav');
    fs.writeFileSync(wav, writeWav({ sampleRate, channels, data: Buffer.concat(audio) }));
    const list = path.join(work, 'slides.ffconcat');
    const lines = ['ffconcat version 1.0'];
    for (const s of slides) lines.push(`file '${s.file.replace(/'/g, "'\\''")}'`, `duration ${s.seconds.toFixed(3)}`);
    // The concat demuxer needs the last file again for the last duration to count.
    lines.push(`file '${slides[slides.length - 1]!.file.replace(/'/g, "'\\''")}'`);
    fs.writeFileSync(list, `${lines.join('\n')}\n`);
    const vttText = toVtt(cues);
    const vttWork = path.join(work, 'captions.vtt');
    fs.writeFileSync(vttWork, toVtt(movTextCues(cues)));
    const meta = path.join(work, 'chapters.txt');
    fs.writeFileSync(meta, ffmetadata(board.session, board.agent, chapters));

    // 4. One encode.
    const out = path.resolve(outPath);
    fs.mkdirSync(path.dirname(out), { recursive: true });
    const tmpOut = `${out}.partial-${process.pid}.mp4`;
    const args = [
      '-y',
      '-hide_banner',
      '-loglevel',
      'error',
      '-nostats',
      '-progress',
      'pipe:2',
      '-f',
      'concat',
      '-safe',
      '0',
      '-i',
      list,
      '-i',
      wav,
      '-i',
      vttWork,
      '-f',
      'ffmetadata',
      '-i',
      meta,
      '-map',
      '0:v',
      '-map',
      '1:a',
      '-map',
      '2:s',
      '-map_metadata',
      '3',
      '-map_chapters',
      '3',
      '-vf',
      `scale=${WIDTH}:${HEIGHT}:force_original_aspect_ratio=decrease,pad=${WIDTH}:${HEIGHT}:(ow-iw)/2:(oh-ih)/2:color=0x0f172a,fps=${fps},format=yuv420p`,
      '-c:v',
      'libx264',
      '-preset',
      'veryfast',
      '-tune',
      'stillimage',
      '-crf',
      '26',
      '-g',
      String(fps * 10),
      '-threads',
      '2',
      // The native encoder's default coder took 10 s for 6 minutes of speech; "fast" is as clear for a voice.
      '-c:a',
      'aac',
      '-aac_coder',
      'fast',
      '-b:a',
      '64k',
      '-c:s',
      'mov_text',
      '-metadata:s:s:0',
      'language=eng',
      '-metadata:s:a:0',
      'language=eng',
      '-fflags',
      '+bitexact',
      '-flags:v',
      '+bitexact',
      '-flags:a',
      '+bitexact',
      '-movflags',
      '+faststart',
      '-t',
      durationS.toFixed(3),
      tmpOut,
    ];
    const totalUs = durationS * 1e6;
    let last = 0;
    const r = await runProgram(ffmpeg, args, {
      onStderr: (chunk) => {
        const m = /out_time_us=(\d+)/g;
        let hit;
        while ((hit = m.exec(chunk)) !== null) last = Number(hit[1]);
        options.onProgress?.('encoding', Math.min(totalUs, last), totalUs);
      },
    });
    if (r.code !== 0) {
      fs.rmSync(tmpOut, { force: true });
      const detail = r.stderr.split('\n').filter((l) => l !== '' && !/^[a-z_]+=/.test(l))[0] ?? `exit code ${r.code}`;
      throw new WitnessError('capture_failed', `ffmpeg could not encode the video (${detail.trim()}).`);
    }
    fs.renameSync(tmpOut, out);
    const vttPath = out.replace(/\.mp4$/i, '') + '.vtt';
    fs.writeFileSync(vttPath, vttText);
    // Hashed as read, never held whole: a long session's video runs to hundreds of megabytes.
    const hash = crypto.createHash('sha256');
    await pipeline(fs.createReadStream(out), hash);
    return {
      path: out,
      vttPath,
      sha256: hash.digest('hex'),
      bytes: fs.statSync(out).size,
      vttSha256: crypto.createHash('sha256').update(vttText).digest('hex'),
      durationS,
      steps: board.steps.filter((s) => s.kind === 'call').length,
      chapters,
      voice,
      missingScreenshots: missing,
      shots: shown,
    };
  } finally {
    if (ownBrowser !== undefined) await ownBrowser.close();
    if (env['WITNESS_KEEP_VIDEO_WORK'] === '1') console.error(`video work files kept in ${work}`);
    else fs.rmSync(work, { recursive: true, force: true });
  }
}

interface ShotFile {
  /** The file the slide shows: the labelled frame, or the screenshot itself when it has no label. */
  file: string;
  job?: LabelJob;
}

async function screenshotsOf(ledger: LedgerReader, step: Step, captures: Parameters<typeof shotLabel>[0], work: string, missing: string[]): Promise<ShotFile[]> {
  const files: ShotFile[] = [];
  const region = changedRegionOf(captures);
  for (const [role, sha] of [
    ['before', step.before],
    ['after', step.after],
  ] as const) {
    if (sha === undefined) continue;
    const name = `${role}-${String(step.index).padStart(3, '0')}`;
    const raw = path.join(work, `${name}.shot.png`);
    if (!(await copyArtifact(ledger, sha, raw))) {
      missing.push(sha);
      continue;
    }
    // The storyboard found this screenshot in the same capture event, so a label is always there.
    const label = shotLabel(captures, role, sha);
    if (label === undefined) {
      files.push({ file: raw });
      continue;
    }
    const output = path.join(work, `${name}.png`);
    files.push({ file: output, job: { input: raw, output, label, placement: placement(region, pngSize(raw) ?? { width: 0, height: 0 }) } });
  }
  return files;
}

/**
 * Writes an artifact to `file`, streamed from the store when the caller handed a whole Ledger (a
 * recorder's reader has only readArtifact), so a large one is never held in memory. False when the
 * store does not hold it.
 */
async function copyArtifact(ledger: LedgerReader, sha: string, file: string): Promise<boolean> {
  if (isStreaming(ledger)) {
    const stream = await ledger.readArtifactStream(sha);
    if (stream === undefined) return false;
    await pipeline(stream, fs.createWriteStream(file));
    return true;
  }
  const bytes = await ledger.readArtifact(sha);
  if (bytes === undefined) return false;
  fs.writeFileSync(file, bytes);
  return true;
}

function isStreaming(ledger: LedgerReader): ledger is LedgerReader & Pick<Ledger, 'readArtifactStream'> {
  return typeof (ledger as Partial<Pick<Ledger, 'readArtifactStream'>>).readArtifactStream === 'function';
}

/** Captions: one cue per sentence, timed by its share of the spoken length. */
function sentenceCues(text: string, start: number, spoken: number): Cue[] {
  // Split only where punctuation is followed by a space, so "billing.refund" or "1.5" stay whole.
  const sentences = text
    .split(/(?<=[.!?])\s+/)
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const chars = sentences.reduce((n, s) => n + s.length, 0) || 1;
  const cues: Cue[] = [];
  let t = start;
  for (const s of sentences) {
    const d = (spoken * s.length) / chars;
    cues.push({ start: t, end: t + d, text: s });
    t += d;
  }
  return cues;
}

function ffmetadata(session: string, agent: string, chapters: readonly VideoChapter[]): string {
  // FFMETADATA ends a line at CR as well as LF: a tool name with "\r[CHAPTER]\r…" would add chapters or
  // tags. Control characters become spaces; = ; # and \ are escaped as the format says.
  const esc = (s: string) => s.replace(/[\u0000-\u001f\u007f]/g, ' ').replace(/[=;#\\]/g, (c) => `\\${c}`);
  const lines = [
    ';FFMETADATA1',
    `title=${esc(`Witness session ${session}`)}`,
    `artist=${esc(agent)}`,
    `comment=${esc('Rendered by witness from the session events; every screenshot is bound into the signed ledger by its SHA-256.')}`,
  ];
  for (const c of chapters) {
    lines.push('[CHAPTER]', 'TIMEBASE=1/1000', `START=${Math.round(c.startS * 1000)}`, `END=${Math.round(c.endS * 1000)}`, `title=${esc(c.title)}`);
  }
  return `${lines.join('\n')}\n`;
}
