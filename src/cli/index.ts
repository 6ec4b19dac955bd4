import { Command, CommanderError } from 'commander';
import { RECORDER_VERSION } from '../recorder/index.js';
import { registerAnchor } from './commands/anchor.js';
import { registerApprovals } from './commands/approvals.js';
import { registerApprover } from './commands/approver.js';
import { registerCheckpoint } from './commands/checkpoint.js';
import { registerCosign } from './commands/cosign.js';
import { registerDemo } from './commands/demo.js';
import { registerExport } from './commands/export.js';
import { registerInit } from './commands/init.js';
import { registerMigrate } from './commands/migrate.js';
import { registerMonitor } from './commands/monitor.js';
import { registerPolicy } from './commands/policy.js';
import { registerProxy } from './commands/proxy.js';
import { registerGateway } from './commands/gateway.js';
import { registerHalt } from './commands/halt.js';
import { registerHook } from './commands/hook.js';
import { registerQuery } from './commands/query.js';
import { registerReport } from './commands/report.js';
import { registerReview } from './commands/review.js';
import { registerSeal } from './commands/seal.js';
import { registerSessions } from './commands/sessions.js';
import { registerServe } from './commands/serve.js';
import { registerKeys } from './commands/keys.js';
import { registerVerify } from './commands/verify.js';
import { registerVideo } from './commands/video.js';
import { registerRetention } from './commands/retention.js';
import { registerHold } from './commands/hold.js';
import { registerErase } from './commands/erase.js';
import { EXIT_OK, EXIT_USAGE, exitCodeFor, messageFor } from './exit.js';
import { type Io, inert, inertIo, jsonText, processIo } from './output.js';

export { EXIT_FAILED, EXIT_OK, EXIT_USAGE } from './exit.js';
export type { Io } from './output.js';
export { guardStandardStreams, outputFailure } from './output.js';

/** Runs the `witness` command; returns the exit code instead of exiting, so tests can call it. */
export async function main(argv: string[], terminal: Io = processIo): Promise<number> {
  // Everything printed goes through `inert`: recorded text is agent-controlled (see output.ts).
  const io = inertIo(terminal);
  let exitCode = EXIT_OK;
  let usage: string | undefined;
  const setExit = (code: number) => {
    exitCode = code;
  };
  const program = new Command()
    .name('witness')
    .description('Tamper-evident flight recorder for AI agents: record, verify, query and export evidence.')
    .version(RECORDER_VERSION)
    .enablePositionalOptions();
  registerDemo(program, io, setExit);
  registerInit(program, io);
  registerMigrate(program, io);
  registerSessions(program, io);
  registerQuery(program, io);
  registerVerify(program, io, setExit);
  registerExport(program, io);
  registerReport(program, io);
  registerReview(program, io);
  registerSeal(program, io);
  registerCheckpoint(program, io);
  registerAnchor(program, io, setExit);
  registerCosign(program, io);
  registerProxy(program, io, setExit);
  registerGateway(program, io);
  registerApprovals(program, io);
  registerApprover(program, io);
  registerHalt(program, io);
  registerVideo(program, io);
  registerServe(program, io);
  registerKeys(program, io);
  registerRetention(program, io);
  registerHold(program, io);
  registerErase(program, io);
  registerMonitor(program, io, setExit);
  registerPolicy(program, io, setExit);
  registerHook(program, io, setExit);
  // Commander prints its usage errors as several lines; keep the text, print it as one sentence
  // below. Every command, nested ones too, is configured after all are registered.
  const configure = (cmd: Command, name: string): void => {
    cmd.exitOverride().configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s), outputError: (s) => void (usage = usageSentence(s, name)) });
    for (const sub of cmd.commands) configure(sub, `${name} ${sub.name()}`);
  };
  configure(program, 'witness');
  // Only flags before `--` are ours: what follows is another program's command line (proxy).
  const dashes = argv.indexOf('--');
  const json = (dashes === -1 ? argv : argv.slice(0, dashes)).includes('--json');
  try {
    await program.parseAsync(argv);
    return exitCode;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version exit 0 through here; everything else is bad usage. Help printed on
      // an error (`witness` alone) has no sentence of its own.
      if (e.exitCode === 0) return EXIT_OK;
      if (usage !== undefined) {
        if (json) io.out(jsonText({ error: { code: 'invalid_argument', message: usage } }, 0));
        io.err(`witness: ${usage}`);
      }
      return EXIT_USAGE;
    }
    // One line whatever the error says: a message can echo agent-controlled text.
    const message = inert(messageFor(e));
    if (json) io.out(jsonText({ error: { code: (e as { code?: string }).code ?? 'internal', message: messageFor(e) } }, 0));
    io.err(`witness: ${message}`);
    return exitCodeFor(e);
  }
}

/**
 * Commander's "error: unknown option '--stor'\n(Did you mean --store?)" or "error: too many
 * arguments for 'verify'. Expected 1 argument but got 2." as the one sentence every other error
 * is, with the help to run.
 */
function usageSentence(text: string, command: string): string {
  const what = text
    .trim()
    .replace(/^error:\s*/i, '')
    .replace(/\s*\(Did you mean/g, ' (did you mean')
    .replace(/\.\s+([A-Z])/g, (_m, c: string) => `; ${c.toLowerCase()}`)
    .replace(/\s*\n\s*/g, ' ')
    .replace(/[.\s]+$/, '');
  return `${what}; run \`${command} --help\` for usage.`;
}
