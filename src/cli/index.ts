import { Command, CommanderError } from 'commander';
import { RECORDER_VERSION } from '../recorder/index.js';
import { registerApprovals } from './commands/approvals.js';
import { registerCheckpoint } from './commands/checkpoint.js';
import { registerDemo } from './commands/demo.js';
import { registerExport } from './commands/export.js';
import { registerInit } from './commands/init.js';
import { registerProxy } from './commands/proxy.js';
import { registerGateway } from './commands/gateway.js';
import { registerQuery } from './commands/query.js';
import { registerSeal } from './commands/seal.js';
import { registerVerify } from './commands/verify.js';
import { registerVideo } from './commands/video.js';
import { EXIT_OK, EXIT_USAGE, exitCodeFor, messageFor } from './exit.js';
import { type Io, processIo } from './output.js';

export { EXIT_FAILED, EXIT_OK, EXIT_USAGE } from './exit.js';
export type { Io } from './output.js';

/** Runs the `witness` command; returns the exit code instead of exiting, so tests can call it. */
export async function main(argv: string[], io: Io = processIo): Promise<number> {
  let exitCode = EXIT_OK;
  const setExit = (code: number) => {
    exitCode = code;
  };
  const program = new Command()
    .name('witness')
    .description('Tamper-evident flight recorder for AI agents: record, verify, query and export evidence.')
    .version(RECORDER_VERSION)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) });
  registerDemo(program, io, setExit);
  registerInit(program, io);
  registerQuery(program, io);
  registerVerify(program, io, setExit);
  registerExport(program, io);
  registerSeal(program, io);
  registerCheckpoint(program, io);
  registerProxy(program, io, setExit);
  registerGateway(program, io);
  registerApprovals(program, io);
  registerVideo(program, io);
  for (const c of program.commands) c.exitOverride().configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) });
  try {
    await program.parseAsync(argv);
    return exitCode;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version exit 0 through here; everything else is bad usage.
      return e.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    }
    const json = argv.includes('--json');
    if (json) io.out(JSON.stringify({ error: { code: (e as { code?: string }).code ?? 'internal', message: messageFor(e) } }));
    io.err(`witness: ${messageFor(e)}`);
    return exitCodeFor(e);
  }
}
