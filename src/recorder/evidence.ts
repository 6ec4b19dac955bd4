import fs from 'node:fs';
import type { SystemStream } from '../core/index.js';
import { RECORDER_VERSION, systemWriter, type Witness } from './witness.js';

/** Where evidence about an ended session (its video) is recorded: that session's chain is closed by session.end. */
export const EVIDENCE_STREAM: SystemStream = 'witness.evidence';

/** A rendered video as src/capture's renderSessionVideo describes it. */
export interface RenderedVideo {
  path: string;
  vttPath: string;
  durationS: number;
  steps: number;
  chapters: ReadonlyArray<{ title: string; startS: number; endS: number }>;
  voice: { voice: string; speed: number };
  missingScreenshots: readonly string[];
}

/**
 * Binds a rendered video into the chain: its bytes go to the artifact store and a `capture` event
 * with role `video` names its SHA-256 (and the captions'). In the session while it is open, else in
 * the evidence stream with the session's end as parent.
 */
export async function recordVideo(witness: Witness, session: string, v: RenderedVideo, actor?: string): Promise<{ id: string; stream: string }> {
  const events = await witness.reader.readStream(session);
  const start = events.find((e) => e.kind === 'session.start');
  const end = events.find((e) => e.kind === 'session.end');
  const mp4 = await witness.storeArtifact(fs.readFileSync(v.path), 'video/mp4', 'video');
  const vtt = await witness.storeArtifact(fs.readFileSync(v.vttPath), 'text/vtt', 'captions');
  const stream = end === undefined ? session : EVIDENCE_STREAM;
  // The CLI's record (witness.evidence is a system stream the SDK's public path refuses).
  const receipt = await systemWriter(witness, 'cli').recordStrict(stream, {
    agent: start?.agent ?? { id: 'unknown' },
    recorder: { kind: 'cli', version: RECORDER_VERSION },
    ...(actor === undefined ? {} : { principal: { id: actor, kind: 'human' as const } }),
    kind: 'capture',
    ...(end === undefined ? {} : { parent: end.id }),
    resource: session,
    action: 'video.render',
    outcome: 'success',
    artifacts: [mp4, vtt],
    data: {
      role: 'video',
      session,
      duration_s: Math.round(v.durationS * 1000) / 1000,
      steps: v.steps,
      chapters: v.chapters.map((c) => ({ title: c.title, start_s: Math.round(c.startS * 1000) / 1000, end_s: Math.round(c.endS * 1000) / 1000 })),
      voice: v.voice.voice,
      speed_wpm: v.voice.speed,
      ...(v.missingScreenshots.length === 0 ? {} : { missing_screenshots: v.missingScreenshots }),
    },
  });
  return { id: receipt.id, stream };
}
