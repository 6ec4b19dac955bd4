import { toVtt } from '../../capture/index.js';
import type { VideoView } from './model.js';

/**
 * The WebVTT a video's `<track kind="chapters">` reads, from the chapters its capture event records
 * (src/capture renders the chapters into the MP4 and stores the captions as a .vtt artifact, but
 * keeps no chapters file). Written by capture's toVtt, which makes every title plain cue text.
 */
export function chaptersVtt(chapters: VideoView['chapters']): string {
  return toVtt(chapters.map((c) => ({ start: c.startS, end: c.endS, text: c.title })));
}

/** Captions from cue data, for a video whose captions artifact is missing. */
export function captionsVtt(cues: ReadonlyArray<{ startS: number; endS: number; text: string }>): string {
  return toVtt(cues.map((c) => ({ start: c.startS, end: c.endS, text: c.text })));
}
