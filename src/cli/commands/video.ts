import type { Command } from 'commander';
import { renderSessionVideo, requireVoice } from '../../capture/index.js';
import { WitnessError } from '../../core/index.js';
import { openWitness, recordVideo } from '../../recorder/index.js';
import { type Io, printJson, progress } from '../output.js';
import { openExisting, resolveStore } from '../store-option.js';

interface VideoOpts {
  output: string;
  voice: string;
  speed: string;
  store?: string;
  json?: boolean;
}

export function registerVideo(program: Command, io: Io): void {
  program
    .command('video')
    .description('render a session as a narrated MP4 (title cards, before/after screenshots, spoken narration, captions, chapters) and record its SHA-256 in the ledger')
    .argument('<session>', 'the session id')
    .requiredOption('-o, --output <file>', 'where to write the MP4 (the WebVTT captions go beside it)')
    .option('--voice <voice>', 'espeak-ng voice, e.g. en-gb or en-us+f3 (see `espeak-ng --voices` and `--voices=variant`)', 'en-us')
    .option('--speed <wpm>', 'narration speed in words per minute (80-450)', '165')
    .option('--store <url>', 'ledger location (default: $WITNESS_STORE or sqlite:./witness.db)')
    .option('--json', 'machine-readable output')
    .action(async (session: string, opts: VideoOpts) => {
      const speed = Number(opts.speed);
      if (!Number.isInteger(speed)) throw new WitnessError('invalid_argument', `--speed "${opts.speed}" must be a whole number of words per minute from 80 to 450.`);
      // espeak-ng would speak an unknown voice with another one and exit 0: refuse it before any work.
      await requireVoice(opts.voice);
      const store = resolveStore(opts.store);
      await (await openExisting(store, { readonly: true })).close();
      const witness = await openWitness({ store });
      try {
        const bar = progress(io, 'rendering');
        const stages = { narration: 0, cards: 1, encoding: 2 } as const;
        const result = await renderSessionVideo(witness.reader, session, opts.output, {
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
