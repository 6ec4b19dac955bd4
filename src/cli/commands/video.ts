import fs from 'node:fs';
import type { Command } from 'commander';
import { renderSessionVideo, type VideoResult } from '../../capture/index.js';
import { WitnessError } from '../../core/index.js';
import { RECORDER_VERSION, openWitness, type Witness } from '../../recorder/index.js';
import { type Io, printJson, progress } from '../output.js';
import { openExisting, resolveStore } from '../store-option.js';

interface VideoOpts {
  output: string;
  voice: string;
  speed: string;
  store?: string;
  json?: boolean;
}

/** Where a video of an ended session is recorded: that session's chain is closed by session.end. */
export const EVIDENCE_STREAM = 'witness.evidence';

export function registerVideo(program: Command, io: Io): void {
  program
    .command('video')
    .description('render a session as a narrated MP4 (title cards, before/after screenshots, spoken narration, captions, chapters) and record its SHA-256 in the ledger')
    .argument('<session>', 'the session id')
    .requiredOption('-o, --output <file>', 'where to write the MP4 (the WebVTT captions go beside it)')
    .option('--voice <voice>', 'espeak-ng voice (see `espeak-ng --voices`)', 'en-us')
    .option('--speed <wpm>', 'narration speed in words per minute (80-450)', '165')
    .option('--store <url>', 'ledger location (default: $WITNESS_STORE or sqlite:./witness.db)')
    .option('--json', 'machine-readable output')
    .action(async (session: string, opts: VideoOpts) => {
      const speed = Number(opts.speed);
      if (!Number.isInteger(speed)) throw new WitnessError('invalid_argument', `--speed "${opts.speed}" must be a whole number of words per minute from 80 to 450.`);
      const store = resolveStore(opts.store);
      await openExisting(store, { readonly: true }).close();
      const witness = await openWitness({ store });
      try {
        const bar = progress(io, 'rendering');
        const stages = { narration: 0, cards: 1, encoding: 2 } as const;
        const result = await renderSessionVideo(witness.ledger, session, opts.output, {
          voice: { voice: opts.voice, speed },
          onProgress: (stage, done, total) => bar.update(stages[stage] * 1000 + Math.round((done / Math.max(total, 1)) * 1000), 3000),
        });
        bar.done();
        const recorded = await recordVideo(witness, session, result);
        if (opts.json) return printJson(io, { ...result, event: recorded.id, stream: recorded.stream });
        io.out(`Video: ${result.path} (${result.durationS.toFixed(1)} s, ${result.steps} steps, ${(result.bytes / 1024 / 1024).toFixed(1)} MiB)`);
        io.out(`Captions: ${result.vttPath}`);
        io.out(`SHA-256 ${result.sha256}, recorded as event ${recorded.id} in ${recorded.stream === session ? 'the session' : `stream ${recorded.stream}`}.`);
        if (result.missingScreenshots.length > 0) io.err(`witness: ${result.missingScreenshots.length} screenshot(s) referenced by the session are not in the artifact store and were left out.`);
      } finally {
        await witness.close();
      }
    });
}

/**
 * Binds a rendered video into the chain: its bytes go to the artifact store and a `capture` event
 * with role `video` names its SHA-256 (and the captions'). In the session while it is open, else in
 * the evidence stream with the session's end as parent.
 */
export async function recordVideo(witness: Witness, session: string, v: VideoResult, actor?: string): Promise<{ id: string; stream: string }> {
  const events = await witness.ledger.readStream(session);
  const start = events.find((e) => e.kind === 'session.start');
  const end = events.find((e) => e.kind === 'session.end');
  const mp4 = await witness.ledger.putArtifact(fs.readFileSync(v.path), 'video/mp4', 'video');
  const vtt = await witness.ledger.putArtifact(fs.readFileSync(v.vttPath), 'text/vtt', 'captions');
  const stream = end === undefined ? session : EVIDENCE_STREAM;
  const receipt = await witness.recordStrict(stream, {
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

