import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { WitnessError, keyFingerprint, parseVerifierKey } from '../../core/index.js';
import { openLedger } from '../../store/index.js';
import { liveFromEnv, runDemo } from '../../demo/index.js';
import { EXIT_FAILED, EXIT_OK } from '../exit.js';
import { type Io, inert, printJson, table } from '../output.js';
import { summarise } from './query.js';
import { printReport } from './verify.js';
import { untilStopped } from '../until-stopped.js';

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
    .option('--open', "then serve the viewer on the demo's ledger and print the demo session's URL and an auditor key to sign in with (until Ctrl-C)")
    .option('--port <n>', 'TCP port for --open (0 picks a free one)', '7350')
    .option('--json', 'machine-readable output')
    .action(async (opts: { dir: string; store?: string; json?: boolean; open?: boolean; live?: boolean; model?: string; port: string }) => {
      if (!/^\d{1,5}$/.test(opts.port) || Number(opts.port) > 65535) throw new WitnessError('invalid_argument', `--port "${opts.port}" must be a port number from 0 to 65535.`);
      // Checked before anything starts: --live without a key is bad usage, in one sentence.
      const live = opts.live === true ? liveFromEnv(process.env, opts.model) : undefined;
      const r = await runDemo(path.resolve(opts.dir), opts.store, (line) => io.err(line), live === undefined ? {} : { live });
      const ok = r.ledgerReport.ok && r.bundleReport.ok && r.recorderErrors.length === 0;
      setExit(ok ? EXIT_OK : EXIT_FAILED);
      const fingerprint = r.publicKey === '' ? '' : keyFingerprint(parseVerifierKey(r.publicKey));
      if (opts.json) {
        printJson(io, { ...r, fingerprint });
        if (opts.open === true) await openViewer(io, path.resolve(opts.dir), opts.store ?? `sqlite:${r.database}`, r.sessionId, Number(opts.port));
        return;
      }
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
      if (opts.open === true) await openViewer(io, path.resolve(opts.dir), opts.store ?? `sqlite:${r.database}`, r.sessionId, Number(opts.port));
    });
}

/** Where the demo keeps the auditor key it signs people in with: beside its ledger, 0600, like the approvers' keys. */
const AUDITOR_KEY_FILE = 'viewer-auditor.key';

/**
 * `witness demo --open`: serves the viewer on the demo's ledger until SIGINT/SIGTERM and prints
 * the demo session's URL and an auditor key. The key is reused from the demo directory while the
 * ledger still knows it and it is not revoked; otherwise a new one is created (a config.change
 * event, as `witness keys create` records) and kept there.
 */
async function openViewer(io: Io, dir: string, store: string, sessionId: string, port: number): Promise<void> {
  const { createKey, listen, KeyRing } = await import('../../server/index.js');
  const ledger = await openLedger(store, { create: false });
  const file = path.join(dir, AUDITOR_KEY_FILE);
  let key: string | undefined;
  try {
    const kept = fs.readFileSync(file, 'utf8').trim();
    const ring = new KeyRing(ledger);
    await ring.refresh();
    const auth = ring.authenticate(`Bearer ${kept}`);
    if (auth.ok && auth.caller.role === 'auditor') key = kept;
  } catch {
    // No key kept yet (or unreadable): a new one is made below.
  }
  if (key === undefined) {
    key = (await createKey(ledger, { role: 'auditor', name: 'witness demo --open' }, { who: `${os.userInfo().username} (witness demo --open)`, recorder: 'cli' })).key;
    fs.writeFileSync(file, `${key}\n`, { mode: 0o600 });
  }
  let server;
  try {
    server = await listen({ ledger, port, host: '127.0.0.1', onError: (e) => io.err(inert(`witness demo --open: ${(e as Error).message ?? String(e)}`)) });
  } catch (e) {
    await ledger.close();
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' || code === 'EACCES') throw new WitnessError('invalid_argument', `witness demo --open cannot listen on 127.0.0.1:${port} (${code}); choose another --port.`);
    throw e;
  }
  io.out(`\nViewer: ${server.url}/session?${new URLSearchParams({ id: sessionId }).toString()}`);
  io.out(`Sign in with this auditor key (kept in ${file}): ${key}`);
  io.out('Stop with Ctrl-C.');
  await untilStopped();
  await server.close();
}
