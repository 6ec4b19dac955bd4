/** WebVTT captions (the sidecar file and, converted by ffmpeg, the MP4's soft subtitle track). */

export interface Cue {
  start: number;
  end: number;
  text: string;
}

function stamp(seconds: number): string {
  const ms = Math.max(0, Math.round(seconds * 1000));
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = Math.floor((ms % 60_000) / 1000);
  return `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}.${String(ms % 1000).padStart(3, '0')}`;
}

/**
 * Cue text as WebVTT needs it to be read as written. CR, LF and CRLF all end a line in WebVTT, and a
 * blank line ends the cue (what follows could be a forged cue of its own), so every run of line
 * breaks becomes one space. `&`, `<` and `>` become `&amp;`, `&lt;` and `&gt;`, so nothing is markup
 * (`<b>`, `<c.x>`, `<00:01.000>`) or a character reference, and no line holds `-->`. Other control
 * characters become spaces (NUL would be U+FFFD).
 */
export function vttCueText(text: string): string {
  return text
    .replace(/[\r\n]+/g, ' ')
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/g, ' ')
    .replace(/[&<>]/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : '&gt;'));
}

export function toVtt(cues: readonly Cue[]): string {
  const blocks = cues.map((c, i) => `${i + 1}\n${stamp(c.start)} --> ${stamp(c.end)}\n${vttCueText(c.text)}`);
  return `WEBVTT\n\n${blocks.join('\n\n')}\n`;
}

/**
 * Cues for the MP4's mov_text track. ffmpeg turns WebVTT into ASS on the way, where `{\…}` is an
 * override block (its words vanish or restyle the rest) and `\N` a line break; a zero-width space
 * after every `{` and `\` keeps them text. The sidecar .vtt keeps the text exact.
 */
export function movTextCues(cues: readonly Cue[]): Cue[] {
  return cues.map((c) => ({ ...c, text: c.text.replace(/[{\\]/g, '$&\u200b') }));
}

const REFERENCES: Record<string, string> = { amp: '&', lt: '<', gt: '>', nbsp: '\u00a0', lrm: '\u200e', rlm: '\u200f' };

function unescapeCue(text: string): string {
  return text.replace(/&(?:#(\d{1,7})|#[xX]([0-9a-fA-F]{1,6})|([a-z]+));/g, (whole, dec: string | undefined, hex: string | undefined, name: string | undefined) => {
    const cp = dec !== undefined ? Number(dec) : hex !== undefined ? parseInt(hex, 16) : undefined;
    if (cp !== undefined) return cp > 0 && cp <= 0x10ffff ? String.fromCodePoint(cp) : whole;
    return REFERENCES[name!] ?? whole;
  });
}

/**
 * Reads WebVTT back (the cue timings and text, character references decoded): what a test or an
 * auditor's tool would do.
 */
export function parseVtt(text: string): Cue[] {
  const lines = text.split(/\r\n|\r|\n/);
  if (!/^WEBVTT(\s|$)/.test(lines[0] ?? '')) throw new Error('not a WebVTT file: the first line must be WEBVTT');
  const cues: Cue[] = [];
  const time = (s: string) => {
    const m = /^(?:(\d+):)?(\d{2}):(\d{2})\.(\d{3})$/.exec(s.trim());
    if (m === null) throw new Error(`bad timestamp "${s}"`);
    return Number(m[1] ?? 0) * 3600 + Number(m[2]) * 60 + Number(m[3]) + Number(m[4]) / 1000;
  };
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (!line.includes('-->')) continue;
    const [a, b] = line.split('-->') as [string, string];
    const textLines: string[] = [];
    for (i = i + 1; i < lines.length && lines[i] !== ''; i++) textLines.push(lines[i]!);
    const cue = { start: time(a), end: time(b.trim().split(/\s+/)[0]!), text: unescapeCue(textLines.join('\n')) };
    if (cue.end < cue.start) throw new Error(`cue ${cues.length + 1} ends before it starts`);
    cues.push(cue);
  }
  return cues;
}
