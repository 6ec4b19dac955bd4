import fs from 'node:fs';
import path from 'node:path';
import { isKind, type StoredEvent } from '../../core/index.js';
import { WitnessError } from '../../core/index.js';
import { runProgram } from '../exec.js';

/**
 * The label burned into every screenshot frame of the video, so that a frame taken out of it still
 * says where it belongs: `AFTER  event <capture event id>  <its ts>  sha256 <first 12 hex>`. The
 * hash is the artifact's SHA-256, the one an evidence bundle names the file by
 * (`artifacts/<sha256>.png`) and the capture event's header binds into the chain.
 *
 * The label is a band across the frame (1280×720), at the bottom unless the call's changed region
 * (the after shot's `changed_region`, the same place in both shots) reaches into the bottom band and
 * not the top one; then at the top. Drawn by ffmpeg's drawtext in DejaVu Sans Mono
 * (fonts-dejavu-core), one ffmpeg run per batch of shots, before the encode, so each labelled frame
 * is a still image of its own and the label cannot drift onto a neighbouring slide.
 */

export const FRAME = { width: 1280, height: 720 } as const;
/** Height of the label band in the 1280×720 frame. */
export const BAND = 40;

export interface ShotLabel {
  /** `BEFORE` or `AFTER`: the artifact's role (else the capture's), upper case. */
  role: string;
  /** The id of the `capture` event whose artifacts hold the screenshot. */
  event: string;
  /** That event's `ts` (ISO 8601, UTC). */
  ts: string;
  /** The screenshot's SHA-256 (the artifact's), of which the label shows the first 12 hex characters. */
  sha256: string;
}

export type Placement = 'top' | 'bottom';

/** Region of an after shot that differs from its before shot, in that image's pixels (as recorded). */
export interface Region {
  y: number;
  height: number;
  image_height: number;
}

const FONT_DIR = '/usr/share/fonts/truetype/dejavu';
const FONTS = { regular: 'DejaVuSansMono.ttf', bold: 'DejaVuSansMono-Bold.ttf' } as const;
export interface LabelFonts {
  regular: string;
  bold: string;
}

/** The DejaVu Sans Mono files the label is drawn in, or one sentence naming the package that installs them. */
export function requireLabelFonts(env: NodeJS.ProcessEnv = process.env): LabelFonts {
  const dir = env['WITNESS_FONT_DIR'] === undefined || env['WITNESS_FONT_DIR'] === '' ? FONT_DIR : env['WITNESS_FONT_DIR'];
  const regular = path.join(dir, FONTS.regular);
  const bold = path.join(dir, FONTS.bold);
  for (const f of [regular, bold]) {
    if (!fs.existsSync(f))
      throw new WitnessError(
        'missing_program',
        `The font ${path.basename(f)} is not installed (looked in ${dir}); install it with \`sudo sh scripts/setup-system.sh\` (or \`apt-get install fonts-dejavu-core\`), or set WITNESS_FONT_DIR to the directory holding it.`,
        { details: { program: 'fonts-dejavu-core', setting: dir } },
      );
  }
  return { regular, bold };
}

/** The label's text after the role: `event <id>  <ts>  sha256 <12 hex>`. */
export function labelText(l: ShotLabel): string {
  return clean(`event ${l.event}  ${l.ts}  sha256 ${l.sha256.slice(0, 12)}`);
}

/** The role word of a label: BEFORE / AFTER (anything else upper-cased and cut to 6 letters, to fit its chip). */
export function roleWord(role: string): string {
  return (
    role
      .toUpperCase()
      .replace(/[^A-Z0-9-]/g, '')
      .slice(0, 6) || 'SHOT'
  );
}

/** Control characters (a line break would start a second line under the band) become spaces. */
function clean(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, ' ');
}

/**
 * A value for a filter option inside an ffmpeg filtergraph given as one argument (no shell): first
 * escaped for the option parser (`\`, `'` and `:` end or quote a value), then for the filtergraph
 * parser (`\`, `'`, `[`, `]`, `,` and `;`). drawtext runs with `expansion=none`, so `%{…}` is text.
 */
export function filterValue(s: string): string {
  const option = s.replace(/[\\':]/g, (c) => `\\${c}`);
  return option.replace(/[\\'[\],;]/g, (c) => `\\${c}`);
}

/**
 * Where the band goes: the bottom, unless the changed region, as shown in the frame (the image
 * scaled to fit 1280×720 and centred), reaches into the bottom band and stays clear of the top one.
 */
export function placement(region: Region | undefined, image: { width: number; height: number }): Placement {
  if (region === undefined || region.image_height <= 0 || image.width <= 0 || image.height <= 0) return 'bottom';
  const scale = Math.min(FRAME.width / image.width, FRAME.height / image.height);
  const shown = image.height * scale;
  const top = (FRAME.height - shown) / 2;
  const y0 = top + (region.y / region.image_height) * shown;
  const y1 = top + ((region.y + region.height) / region.image_height) * shown;
  const inBottom = y1 > FRAME.height - BAND;
  const inTop = y0 < BAND;
  return inBottom && !inTop ? 'top' : 'bottom';
}

const ROLE_COLOUR: Record<string, string> = { BEFORE: '0x1d4ed8', AFTER: '0x15803d' };

/**
 * The filter chain that turns one screenshot into its labelled 1280×720 frame: scaled to fit,
 * centred on the video's background, then a dark band with the role in a coloured chip (bold) and
 * the rest in white.
 */
export function labelFilter(l: ShotLabel, where: Placement, fonts: LabelFonts): string {
  const y = where === 'top' ? 0 : FRAME.height - BAND;
  const role = roleWord(l.role);
  const colour = ROLE_COLOUR[role] ?? '0x334155';
  return [
    `scale=${FRAME.width}:${FRAME.height}:force_original_aspect_ratio=decrease`,
    `pad=${FRAME.width}:${FRAME.height}:(ow-iw)/2:(oh-ih)/2:color=0x0f172a`,
    'format=rgb24',
    `drawbox=x=0:y=${y}:w=${FRAME.width}:h=${BAND}:color=0x0f172a@0.88:t=fill`,
    `drawtext=fontfile=${filterValue(fonts.bold)}:expansion=none:text=${filterValue(role)}:fontsize=22:fontcolor=white:box=1:boxcolor=${colour}:boxborderw=6:x=16:y=${y + 9}`,
    `drawtext=fontfile=${filterValue(fonts.regular)}:expansion=none:text=${filterValue(labelText(l))}:fontsize=20:fontcolor=white:x=124:y=${y + 10}`,
  ].join(',');
}

export interface LabelJob {
  input: string;
  output: string;
  label: ShotLabel;
  placement: Placement;
}

/** Shots per ffmpeg run: one process start (~60 ms) per batch, a bounded number of open inputs. */
const BATCH = 12;

/** Writes each job's labelled frame as a PNG, a batch of shots per ffmpeg run. */
export async function labelShots(ffmpeg: string, jobs: readonly LabelJob[], fonts: LabelFonts): Promise<void> {
  for (let at = 0; at < jobs.length; at += BATCH) {
    const batch = jobs.slice(at, at + BATCH);
    const args = ['-y', '-hide_banner', '-loglevel', 'error', '-nostats'];
    for (const j of batch) args.push('-i', j.input);
    args.push('-filter_complex', batch.map((j, i) => `[${i}:v]${labelFilter(j.label, j.placement, fonts)}[o${i}]`).join(';'));
    batch.forEach((j, i) => args.push('-map', `[o${i}]`, '-frames:v', '1', '-fflags', '+bitexact', '-flags:v', '+bitexact', '-f', 'image2', '-c:v', 'png', j.output));
    const r = await runProgram(ffmpeg, args);
    if (r.code !== 0) {
      const detail = r.stderr.split('\n').find((line) => line.trim() !== '') ?? `exit code ${r.code}`;
      throw new WitnessError('capture_failed', `ffmpeg could not label the screenshots (${detail.trim()}).`);
    }
  }
}

/** Width and height from a PNG's header, or undefined when the file does not start like a PNG. */
export function pngSize(file: string): { width: number; height: number } | undefined {
  const head = Buffer.alloc(24);
  const fd = fs.openSync(file, 'r');
  try {
    if (fs.readSync(fd, head, 0, 24, 0) < 24) return undefined;
  } finally {
    fs.closeSync(fd);
  }
  if (head.readUInt32BE(0) !== 0x89504e47 || head.toString('latin1', 12, 16) !== 'IHDR') return undefined;
  return { width: head.readUInt32BE(16), height: head.readUInt32BE(20) };
}

/** The `capture` events of a session by the call they belong to (their parent), in ledger order. */
export function capturesByCall(events: readonly StoredEvent[]): Map<string, Array<StoredEvent<'capture'>>> {
  const byCall = new Map<string, Array<StoredEvent<'capture'>>>();
  for (const e of [...events].sort((a, b) => a.seq - b.seq)) {
    if (e.parent === undefined || !isKind(e, 'capture')) continue;
    const list = byCall.get(e.parent) ?? [];
    list.push(e);
    byCall.set(e.parent, list);
  }
  return byCall;
}

/**
 * The label of a step's screenshot, from the capture event it came from, found as the storyboard
 * finds it: the first `capture` child of the call with that role, holding the PNG with that SHA-256.
 */
export function shotLabel(captures: ReadonlyArray<StoredEvent<'capture'>>, role: 'before' | 'after', sha256: string): ShotLabel | undefined {
  const e = captures.find((x) => x.data?.role === role);
  const artifact = e?.artifacts?.find((a) => a.sha256 === sha256);
  if (e === undefined || artifact === undefined) return undefined;
  return { role: artifact.role ?? role, event: e.id, ts: e.ts, sha256 };
}

/** The call's changed region: its after shot's `changed_region`, which is the same place in both shots. */
export function changedRegionOf(captures: ReadonlyArray<StoredEvent<'capture'>>): Region | undefined {
  return captures.find((x) => x.data?.role === 'after')?.data?.changed_region;
}
