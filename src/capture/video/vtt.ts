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

export function toVtt(cues: readonly Cue[]): string {
  const blocks = cues.map((c, i) => `${i + 1}\n${stamp(c.start)} --> ${stamp(c.end)}\n${c.text.replace(/-->/g, '→').replace(/\n+/g, ' ')}`);
  return `WEBVTT\n\n${blocks.join('\n\n')}\n`;
}

/** Reads WebVTT back (the cue timings and text): what a test or an auditor's tool would do. */
export function parseVtt(text: string): Cue[] {
  const lines = text.replace(/\r\n/g, '\n').split('\n');
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
    const cue = { start: time(a), end: time(b.trim().split(/\s+/)[0]!), text: textLines.join('\n') };
    if (cue.end < cue.start) throw new Error(`cue ${cues.length + 1} ends before it starts`);
    cues.push(cue);
  }
  return cues;
}
