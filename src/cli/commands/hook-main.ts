import { Command, CommanderError } from 'commander';
import { EXIT_OK, EXIT_USAGE, exitCodeFor, messageFor } from '../exit.js';
import { type Io, inert, inertIo, processIo } from '../output.js';
import { registerHook } from './hook.js';

/**
 * `witness hook …` without the rest of the CLI: a coding agent runs it once per tool call, and
 * loading every command's modules (the gateway, capture, the server) took longer than the hook's
 * own work. bin/witness.js comes here when the first argument is `hook`. Same exit codes and
 * one-sentence errors as main().
 */
export { guardStandardStreams, outputFailure } from '../output.js';

export async function main(argv: string[], terminal: Io = processIo): Promise<number> {
  const io = inertIo(terminal);
  let exitCode = EXIT_OK;
  const program = new Command().name('witness');
  registerHook(program, io, (code) => void (exitCode = code));
  let usage: string | undefined;
  const configure = (cmd: Command): void => {
    cmd.exitOverride().configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s), outputError: (s) => void (usage = s.trim().replace(/\s*\n\s*/g, ' ')) });
    for (const sub of cmd.commands) configure(sub);
  };
  configure(program);
  try {
    await program.parseAsync(argv);
    return exitCode;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.exitCode === 0) return EXIT_OK;
      if (usage !== undefined) io.err(`witness: ${usage}; run \`witness hook --help\` for usage.`);
      return EXIT_USAGE;
    }
    io.err(`witness: ${inert(messageFor(e))}`);
    return exitCodeFor(e);
  }
}
