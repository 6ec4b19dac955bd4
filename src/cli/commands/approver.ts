import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { APPROVER_NAME, WitnessError, generateKey, keyFingerprint, parseSignerKey, parseVerifierKey, type NoteSigner } from '../../core/index.js';
import { type Io, printJson } from '../output.js';

/** Where `witness approve` / `deny` find the approver's key when --key is not given. */
export const APPROVER_KEY_ENV = 'WITNESS_APPROVER_KEY';

interface InitOpts {
  name: string;
  out: string;
  json?: boolean;
}

/**
 * `witness approver init --name alice@acme.example [--out DIR]`: a person's own Ed25519 key pair
 * for signing approvals, in the C2SP signed-note key format (the one the ledger's checkpoint keys
 * use). The private key never leaves the person; the public key goes into the policy file.
 */
export function registerApprover(program: Command, io: Io): void {
  const approver = program.command('approver').description('approver keys: each person who approves or denies held calls signs with a key of their own');
  approver
    .command('init')
    .description('make an Ed25519 key pair for a person who approves calls; prints the public key and the lines for the policy file')
    .requiredOption('--name <identity>', 'who holds the key, e.g. alice@acme.example (letters, digits and . _ @ -)')
    .option('--out <dir>', 'where to write <name>.key (0600) and <name>.pub', '.')
    .option('--json', 'machine-readable output')
    .action((opts: InitOpts) => {
      const name = opts.name.trim();
      if (!APPROVER_NAME.test(name)) {
        throw new WitnessError('invalid_argument', `--name "${opts.name}" must be a name of letters, digits and . _ @ - (at most 128, starting with a letter or digit), as in alice@acme.example.`);
      }
      const dir = path.resolve(opts.out);
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      const keyFile = path.join(dir, `${name}.key`);
      const pubFile = path.join(dir, `${name}.pub`);
      const { signerKey, verifierKey } = generateKey(name);
      // Both names are checked before either is written, so a refusal leaves nothing half made.
      for (const f of [keyFile, pubFile]) refuseExisting(f);
      writeNew(keyFile, `${signerKey}\n`, 0o600);
      try {
        writeNew(pubFile, `${verifierKey}\n`, 0o644);
      } catch (e) {
        fs.rmSync(keyFile, { force: true });
        throw e;
      }
      const fingerprint = keyFingerprint(parseVerifierKey(verifierKey));
      const policy = `approvers:\n  - id: ${name}\n    key: "${verifierKey}"\n`;
      if (opts.json) return printJson(io, { name, private_key: keyFile, public_key: verifierKey, public_key_file: pubFile, fingerprint, policy });
      io.out(`Approver key for ${name}`);
      io.out(`  private key  ${keyFile} (mode 0600; keep it to yourself: it signs your decisions)`);
      io.out(`  public key   ${verifierKey}`);
      io.out(`  fingerprint  ${fingerprint}`);
      io.out('');
      io.out(`Decide with: witness approve <request> --key ${keyFile}   (or set ${APPROVER_KEY_ENV}=${keyFile})`);
      io.out('Give the public key to whoever keeps the policy file, which lists you with these lines:');
      io.out('');
      io.out(policy);
    });
}

function refuseExisting(file: string): void {
  let st: fs.Stats | undefined;
  try {
    st = fs.lstatSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new WitnessError('invalid_argument', `${file} cannot be checked (${(e as NodeJS.ErrnoException).code ?? String(e)}); choose another --out.`);
  }
  const what = st.isSymbolicLink() ? 'is a symbolic link' : 'already exists';
  throw new WitnessError('conflict', `${file} ${what}; witness approver init never overwrites a key or writes through a link: move it away first, or choose another --out.`);
}

/** Creates `file` exclusively (never through a symlink, never over a file), writes, syncs. */
function writeNew(file: string, text: string, mode: number): void {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, mode);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ELOOP') refuseExisting(file);
    throw new WitnessError('invalid_argument', `${file} cannot be created (${code ?? String(e)}); choose another --out.`);
  }
  try {
    fs.writeSync(fd, text);
    fs.fchmodSync(fd, mode);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The approver's signing key, from --key (a file), else $WITNESS_APPROVER_KEY (a file, or the key
 * itself). A key file that other users can read is refused, as ssh refuses one: whoever reads it
 * can approve in that person's name.
 */
export function readApproverKey(flag: string | undefined, verb: string): { signer: NoteSigner; source: string } {
  const source = flag ?? process.env[APPROVER_KEY_ENV];
  if (source === undefined || source.trim() === '') {
    throw new WitnessError(
      'invalid_argument',
      `witness ${verb} needs your approver key to sign the decision: pass --key <file> or set ${APPROVER_KEY_ENV} (make a key with \`witness approver init --name <you>\`).`,
    );
  }
  if (flag === undefined && source.startsWith('PRIVATE+KEY+')) return { signer: parseKey(source.trim(), APPROVER_KEY_ENV), source: APPROVER_KEY_ENV };
  let st: fs.Stats;
  try {
    st = fs.statSync(source);
  } catch (e) {
    throw new WitnessError('invalid_argument', `The approver key ${source} cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)}); pass the .key file that witness approver init wrote.`);
  }
  if (!st.isFile()) throw new WitnessError('invalid_argument', `The approver key ${source} is not a file; pass the .key file that witness approver init wrote.`);
  if ((st.mode & 0o077) !== 0) {
    throw new WitnessError('invalid_argument', `The approver key ${source} can be read by other users (mode ${(st.mode & 0o777).toString(8)}); run chmod 600 on it.`);
  }
  return { signer: parseKey(fs.readFileSync(source, 'utf8').trim(), source), source };
}

function parseKey(text: string, source: string): NoteSigner {
  try {
    return parseSignerKey(text);
  } catch (e) {
    throw new WitnessError('invalid_argument', `${source} is not an approver key (${(e as Error).message.replace(/\.$/, '')}); pass the .key file that witness approver init wrote.`);
  }
}
