import path from 'node:path';
import type { Command } from 'commander';
import { runDemo } from '../../demo/index.js';
import { EXIT_FAILED, EXIT_OK } from '../exit.js';
import { type Io, printJson, table } from '../output.js';
import { summarise } from './query.js';
import { printReport } from './verify.js';

export function registerDemo(program: Command, io: Io, setExit: (code: number) => void): void {
  program
    .command('demo')
    .description('record a scripted refund agent (no API key), verify the ledger, export and verify its evidence bundle')
    .option('--dir <dir>', 'where the demo ledger and bundle go', './witness-demo')
    .option('--store <url>', 'record into this ledger instead of <dir>/witness.db')
    .option('--json', 'machine-readable output')
    .action(async (opts: { dir: string; store?: string; json?: boolean }) => {
      const r = await runDemo(path.resolve(opts.dir), opts.store);
      const ok = r.ledgerReport.ok && r.bundleReport.ok && r.recorderErrors.length === 0;
      setExit(ok ? EXIT_OK : EXIT_FAILED);
      if (opts.json) return printJson(io, r);
      io.out(`Witness demo — a support agent refunds a duplicate $650 charge (session ${r.sessionId})\n`);
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
      printReport(io, 'Ledger', r.ledgerReport);
      printReport(io, 'Evidence bundle', r.bundleReport);
      for (const e of r.recorderErrors) io.err(`recorder: ${e}`);
      io.out(`\n  database    ${r.database}`);
      io.out(`  bundle      ${r.bundleDir}`);
      io.out(`  public key  ${r.publicKey}`);
      io.out(`\nTry: npx witness query --store sqlite:${r.database} --kind tool.call`);
      io.out(`     npx witness verify ${r.bundleDir} --trusted-key ${r.database}.pub`);
    });
}
