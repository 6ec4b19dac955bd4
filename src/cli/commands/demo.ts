import path from 'node:path';
import type { Command } from 'commander';
import { keyFingerprint, parseVerifierKey } from '../../core/index.js';
import { liveFromEnv, runDemo } from '../../demo/index.js';
import { EXIT_FAILED, EXIT_OK } from '../exit.js';
import { type Io, inert, printJson, table } from '../output.js';
import { summarise } from './query.js';
import { printReport } from './verify.js';

export function registerDemo(program: Command, io: Io, setExit: (code: number) => void): void {
  program
    .command('demo')
    .description(
      'the whole job on this machine: a back office web app, its MCP server behind witness proxy, a scripted support agent (no API key), approvals, screenshots, a narrated video, verified evidence',
    )
    .option('--dir <dir>', 'where the demo ledger, screenshots, video and bundle go', './witness-demo')
    .option('--store <url>', 'record into this ledger instead of <dir>/witness.db')
    .option('--live', 'let a real model drive the agent (needs ANTHROPIC_API_KEY or OPENAI_API_KEY; ANTHROPIC_BASE_URL / OPENAI_BASE_URL are honoured)')
    .option('--model <name>', 'the model for --live (default claude-sonnet-4-5 or gpt-4.1, or $WITNESS_DEMO_MODEL)')
    .option('--open', 'open the viewer afterwards (the viewer is not built yet: prints where everything is)')
    .option('--json', 'machine-readable output')
    .action(async (opts: { dir: string; store?: string; json?: boolean; open?: boolean; live?: boolean; model?: string }) => {
      // Checked before anything starts: --live without a key is bad usage, in one sentence.
      const live = opts.live === true ? liveFromEnv(process.env, opts.model) : undefined;
      const r = await runDemo(path.resolve(opts.dir), opts.store, (line) => io.err(line), live === undefined ? {} : { live });
      const ok = r.ledgerReport.ok && r.bundleReport.ok && r.recorderErrors.length === 0;
      setExit(ok ? EXIT_OK : EXIT_FAILED);
      const fingerprint = r.publicKey === '' ? '' : keyFingerprint(parseVerifierKey(r.publicKey));
      if (opts.json) return printJson(io, { ...r, fingerprint });
      io.out(
        `Witness demo — ${live === undefined ? 'a support agent' : `${live.model} (${live.provider}) as the support agent`} works a refund, an access change and a data fix through the MCP audit proxy (session ${r.sessionId})\n`,
      );
      io.out(
        table(
          ['SEQ', 'TIME', 'KIND', 'ACTION', 'OUTCOME', 'POLICY', 'WHAT HAPPENED'],
          r.events.map((e) => [
            String(e.seq),
            e.ts.slice(11, 23),
            e.kind,
            e.action ?? '',
            e.outcome ?? '',
            e.policy ? `${e.policy.decision} ${e.policy.rule ?? ''}${e.policy.approver ? ` by ${e.policy.approver}` : ''}` : '',
            summarise(e),
          ]),
          70,
        ),
      );
      io.out('');
      // One line each whatever the (agent-chosen) tool name holds.
      for (const a of r.approvals) io.out(inert(`  ${a.decision === 'approved' ? 'approved' : 'denied  '} ${a.tool} request ${a.request} by ${a.approver}`));
      io.out('');
      printReport(io, 'Ledger', r.ledgerReport);
      printReport(io, 'Evidence bundle', r.bundleReport);
      for (const e of r.recorderErrors) io.err(`recorder: ${e}`);
      io.out(`\n  database     ${r.database}`);
      io.out(`  screenshots  ${r.screenshotsDir} (${r.screenshots.length} PNGs)`);
      io.out(`  video        ${r.video.path} (${r.video.durationS.toFixed(0)} s, ${r.video.steps} steps, chapters and captions; SHA-256 in the ledger)`);
      io.out(`  captions     ${r.video.vttPath}`);
      io.out(`  bundle       ${r.bundleDir}`);
      io.out(`  public key   ${r.publicKey}`);
      // The key is printed for recording now, away from the ledger: the .pub file beside it is
      // replaceable by whoever can rewrite the ledger, so it is never offered as the pin.
      io.out(`  fingerprint  ${fingerprint} (record it, and the key, somewhere the ledger's writer cannot change)`);
      io.out(`\nDone in ${r.seconds.toFixed(1)} s. Try: npx witness query --store sqlite:${r.database} --kind approval.decision`);
      io.out(`     npx witness verify ${r.bundleDir} --trusted-key <the public key, from your record>`);
      if (opts.open === true) io.out('\n(--open: the viewer is not built yet; open the video and screenshots above directly.)');
    });
}
