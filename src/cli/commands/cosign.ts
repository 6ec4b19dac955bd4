import fs from 'node:fs';
import type { Command } from 'commander';
import { generateCosignerKey, parseCosignerSignerKey, startCosigner } from '../../anchor/index.js';
import { WitnessError, parseVerifierKey, type NoteVerifier } from '../../core/index.js';
import { type Io, printJson } from '../output.js';

interface InitOpts {
  name?: string;
  output?: string;
  json?: boolean;
}

interface ServeOpts {
  key?: string;
  state?: string;
  listen?: string;
  log?: string[];
}

/** `ORIGIN=VKEY`, split at the first '=' (origins have none; a base64 key may end in '='). */
function parseLogs(values: readonly string[]): Map<string, NoteVerifier[]> {
  const logs = new Map<string, NoteVerifier[]>();
  for (const v of values) {
    const i = v.indexOf('=');
    if (i <= 0) throw new WitnessError('invalid_argument', `--log takes ORIGIN=VKEY (the log's checkpoint origin and its verifier key, from \`witness keys\`), not ${JSON.stringify(v)}.`);
    const origin = v.slice(0, i);
    logs.set(origin, [...(logs.get(origin) ?? []), parseVerifierKey(v.slice(i + 1))]);
  }
  return logs;
}

function parseListen(text: string): { host: string; port: number } {
  const m = /^(.+):(\d{1,5})$/.exec(text);
  const port = m === null ? NaN : Number(m[2]);
  if (m === null || port > 65535) throw new WitnessError('invalid_argument', `--listen takes HOST:PORT (e.g. 127.0.0.1:7380), not ${JSON.stringify(text)}.`);
  return { host: m[1]!, port };
}

/**
 * `witness cosign`: the witness side of external anchoring, run by a second key holder (in
 * practice on another machine): it cosigns a log's checkpoints only while each one extends the
 * last it cosigned (C2SP tlog-witness), so the log's operator cannot show two histories.
 */
export function registerCosign(program: Command, io: Io): void {
  const cosign = program.command('cosign').description('run a cosigning witness for other ledgers (C2SP tlog-witness): init a key, serve add-checkpoint');
  cosign
    .command('init')
    .description('make a cosigner key (Ed25519, C2SP cosignature/v1 type 0x04) and print its verifier key for the log operators')
    .option('--name <name>', 'the cosigner name, a schema-less URL such as witness.example.com/w1')
    .option('-o, --output <file>', 'where to write the private key (refused if it exists)')
    .option('--json', 'machine-readable output')
    .action((opts: InitOpts) => {
      if (opts.name === undefined || opts.output === undefined) {
        throw new WitnessError('invalid_argument', 'witness cosign init needs --name <name> and -o <file>; run `witness cosign init --help` for usage.');
      }
      const { signerKey, verifierKey } = generateCosignerKey(opts.name);
      try {
        fs.writeFileSync(opts.output, `${signerKey}\n`, { mode: 0o600, flag: 'wx' });
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        throw new WitnessError(
          'invalid_argument',
          code === 'EEXIST' ? `${opts.output} already exists; a cosigner key is never overwritten (pick another file).` : `Cannot write ${opts.output} (${code ?? 'error'}).`,
          { cause: e },
        );
      }
      if (opts.json) return printJson(io, { key_file: opts.output, verifier_key: verifierKey });
      io.out(`Wrote the cosigner key to ${opts.output} (keep it private). Its verifier key, for \`witness anchor --cosigner URL=KEY\` and \`witness verify --require-cosigner KEY\`:`);
      io.out(verifierKey);
    });

  cosign
    .command('serve')
    .description('serve POST /add-checkpoint: cosign each log checkpoint that extends the last one cosigned; 409/422 for a forked log')
    .option('--key <file>', 'the cosigner key from `witness cosign init`')
    .option('--state <dir>', 'where the witness keeps the last checkpoint it cosigned per log (must survive restarts)')
    .option('--listen <host:port>', 'address to listen on', '127.0.0.1:7380')
    .option('--log <origin=vkey...>', 'a log this witness serves: its checkpoint origin and verifier key (repeat for more logs or keys)')
    .action(async (opts: ServeOpts) => {
      if (opts.key === undefined || opts.state === undefined || opts.log === undefined || opts.log.length === 0) {
        throw new WitnessError('invalid_argument', 'witness cosign serve needs --key <file>, --state <dir> and at least one --log ORIGIN=VKEY; run `witness cosign serve --help` for usage.');
      }
      let keyText: string;
      try {
        keyText = fs.readFileSync(opts.key, 'utf8');
      } catch (e) {
        throw new WitnessError('invalid_argument', `Cannot read the cosigner key ${opts.key} (${(e as NodeJS.ErrnoException).code ?? 'error'}); make one with \`witness cosign init\`.`, { cause: e });
      }
      const signer = parseCosignerSignerKey(keyText);
      if (!fs.existsSync(opts.state) || !fs.statSync(opts.state).isDirectory()) {
        throw new WitnessError('invalid_argument', `The state directory ${opts.state} does not exist; create it once (mkdir) — it must survive restarts, a witness that loses it must be retired.`);
      }
      const logs = parseLogs(opts.log);
      const { host, port } = parseListen(opts.listen ?? '127.0.0.1:7380');
      const running = await startCosigner({ signer, stateDir: opts.state, logs, host, port });
      io.out(`Cosigner ${signer.vkey} serving ${running.url}/add-checkpoint for ${logs.size} log(s); state in ${opts.state}.`);
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      await running.close();
    });
}
