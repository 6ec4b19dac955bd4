import { WitnessError } from '../../core/index.js';
import { runProgram } from '../exec.js';

/** PCM audio as espeak-ng writes it (RIFF WAVE, 16-bit little endian). */
export interface Pcm {
  sampleRate: number;
  channels: number;
  /** Interleaved 16-bit samples. */
  data: Buffer;
}

export function pcmSeconds(p: Pcm): number {
  return p.data.length / (p.sampleRate * p.channels * 2);
}

/** Reads a 16-bit PCM WAV file's format and samples (espeak-ng's output; nothing more general). */
export function readWav(buf: Buffer): Pcm {
  if (buf.length < 12 || buf.toString('ascii', 0, 4) !== 'RIFF' || buf.toString('ascii', 8, 12) !== 'WAVE') {
    throw new WitnessError('capture_failed', 'espeak-ng did not produce a WAV file.');
  }
  let off = 12;
  let fmt: { channels: number; sampleRate: number; bits: number } | undefined;
  while (off + 8 <= buf.length) {
    const id = buf.toString('ascii', off, off + 4);
    // espeak-ng streams to a pipe and leaves the sizes unset (0 or 0xffffffff): take the rest.
    let size = buf.readUInt32LE(off + 4);
    if (id === 'data' && (size === 0 || size === 0xffffffff || off + 8 + size > buf.length)) size = buf.length - off - 8;
    if (id === 'fmt ') fmt = { channels: buf.readUInt16LE(off + 10), sampleRate: buf.readUInt32LE(off + 12), bits: buf.readUInt16LE(off + 22) };
    if (id === 'data') {
      if (fmt === undefined || fmt.bits !== 16) throw new WitnessError('capture_failed', 'espeak-ng produced audio that is not 16-bit PCM.');
      return { sampleRate: fmt.sampleRate, channels: fmt.channels, data: buf.subarray(off + 8, off + 8 + size - (size % (2 * fmt.channels))) };
    }
    off += 8 + size + (size % 2);
  }
  throw new WitnessError('capture_failed', 'espeak-ng produced a WAV file without audio data.');
}

export function writeWav(p: Pcm): Buffer {
  const h = Buffer.alloc(44);
  h.write('RIFF', 0, 'ascii');
  h.writeUInt32LE(36 + p.data.length, 4);
  h.write('WAVE', 8, 'ascii');
  h.write('fmt ', 12, 'ascii');
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20);
  h.writeUInt16LE(p.channels, 22);
  h.writeUInt32LE(p.sampleRate, 24);
  h.writeUInt32LE(p.sampleRate * p.channels * 2, 28);
  h.writeUInt16LE(p.channels * 2, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36, 'ascii');
  h.writeUInt32LE(p.data.length, 40);
  return Buffer.concat([h, p.data]);
}

/** Pads (with silence) to exactly `seconds`. */
export function padTo(p: Pcm, seconds: number): Pcm {
  const frames = Math.round(seconds * p.sampleRate);
  const bytes = frames * p.channels * 2;
  if (bytes <= p.data.length) return p;
  return { ...p, data: Buffer.concat([p.data, Buffer.alloc(bytes - p.data.length)]) };
}

export interface Voice {
  /** An espeak-ng voice, e.g. en-us, en-gb. */
  voice: string;
  /** Words per minute (80-450). */
  speed: number;
}

/**
 * The narration as espeak-ng must get it to speak it as the text it is. Without `-m` espeak-ng reads
 * no SSML, but it still takes `[[…]]` as phoneme codes (so "[[n'A:t]]" says "not", whatever the
 * captions show) and Ctrl-A as the start of an embedded command (speed, pitch, voice). Brackets
 * become parentheses, which it speaks alike as a pause, and control characters (other than tab and
 * line breaks) become spaces. Only what is spoken changes; cards and captions show the text as it is.
 */
export function speakable(text: string): string {
  return text
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/g, ' ')
    .replace(/\[/g, '(')
    .replace(/\]/g, ')');
}

/** Speaks one text with espeak-ng; the text goes in on stdin, never through a shell, made speakable(). */
export async function speak(espeak: string, text: string, v: Voice): Promise<Pcm> {
  const r = await runProgram(espeak, ['-v', v.voice, '-s', String(v.speed), '--stdout', '--stdin'], { input: speakable(text) });
  if (r.code !== 0 || r.stdout.length === 0) {
    const detail = r.stderr.trim().split('\n')[0] || `exit code ${r.code}`;
    throw new WitnessError('capture_failed', `espeak-ng could not speak the narration with voice ${v.voice} (${detail}); list voices with \`espeak-ng --voices\`.`);
  }
  return readWav(r.stdout);
}
