import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { APPROVER_NAME, WitnessError, generateKey, keyFingerprint, parseSignerKey } from '../../core/index.js';
import { SIGNER_COMMAND_ENV, installRotatedKey, keepNextKey, loadSigner, openLedger, parseStoreUrl, postgresKeyFile, rotateSigningKey, sidecarPaths, signingKeySource } from '../../store/index.js';
import { RECORDER_VERSION } from '../../recorder/index.js';
import { type Io, printJson, table } from '../output.js';
import { SEAL_RECORD_HELP, openExisting, resolveStore } from '../store-option.js';

const ROLE_NAMES = ['agent', 'developer', 'approver', 'auditor', 'admin'] as const;
type RoleName = (typeof ROLE_NAMES)[number];

/** Who is changing keys, as recorded in the config.change event: the operating-system user. */
function who(): string {
  try {
    return os.userInfo().username;
  } catch {
    return process.env['USER'] ?? 'unknown';
  }
}

/**
 * `witness keys create|list|revoke`: API keys for `witness serve`. Keys are kept in the ledger as
 * config.change events holding only each key's SHA-256 (see src/server/keys.ts); the key itself is
 * printed once, here.
 */
export function registerKeys(program: Command, io: Io): void {
  const keys = program.command('keys').description('API keys for witness serve: create (printed once), list, revoke; every change is a config.change event; rotate: the ledger signing key');
  const store = '--store <url>';
  const storeHelp = 'ledger location (default: $WITNESS_STORE or sqlite:./witness.db)';

  keys
    .command('create')
    .description('create an API key and print it once (only its SHA-256 is kept)')
    .requiredOption('--role <role>', `one of ${ROLE_NAMES.join(', ')}`)
    .option('--agent <id>', 'for an agent key: the agent identity its events are recorded under')
    .option('--name <name>', 'who or what holds the key, for lists and access records; for an approver key, their identity (e.g. alice@acme.example), which names the approver signing key')
    .option('--approver-key <file>', "for an approver key: sign this person's decisions with their own key from witness approver init (the server keeps a copy) instead of a new one")
    .option('--approver-keys <dir>', `for an approver key: where the server keeps approver signing keys (default $WITNESS_APPROVER_KEYS, else beside the ledger: <db>.approvers/)`)
    .option(store, storeHelp)
    .option('--json', 'machine-readable output')
    .action(async (opts: { role: string; agent?: string; name?: string; approverKey?: string; approverKeys?: string; store?: string; json?: boolean }) => {
      if (!(ROLE_NAMES as readonly string[]).includes(opts.role)) throw new WitnessError('invalid_argument', `--role "${opts.role}" is not a role; use one of ${ROLE_NAMES.join(', ')}.`);
      const approver = opts.role === 'approver';
      if (!approver && (opts.approverKey !== undefined || opts.approverKeys !== undefined)) {
        throw new WitnessError('invalid_argument', `--approver-key and --approver-keys are for approver keys only; drop them for a ${opts.role} key.`);
      }
      if (approver && opts.name === undefined && opts.approverKey === undefined) {
        throw new WitnessError(
          'invalid_argument',
          "An approver key needs the approver's identity, which their decisions are recorded under: give --name <you@example> (or --approver-key <file> to use their own key).",
        );
      }
      const { approverKeyName, approverKeysDir, createKey, revokeKey, storeApproverKey } = await import('../../server/index.js');
      // Everything about the approver key is checked before the API key is created.
      const signerName = opts.approverKey === undefined ? undefined : approverKeyName(opts.approverKey);
      if (signerName !== undefined && opts.name !== undefined && opts.name !== signerName) {
        throw new WitnessError('invalid_argument', `The approver key ${opts.approverKey} belongs to ${signerName}, not to ${opts.name}; give --name ${signerName} or leave --name out.`);
      }
      if (approver && signerName === undefined && !APPROVER_NAME.test(opts.name ?? '')) {
        throw new WitnessError(
          'invalid_argument',
          `--name "${opts.name}" must be the approver's identity, of letters, digits and . _ @ - (at most 128, starting with a letter or digit), as in alice@acme.example.`,
        );
      }
      const name = opts.name ?? signerName;
      const ledger = await openExisting(resolveStore(opts.store));
      try {
        const { key, record } = await createKey(
          ledger,
          { role: opts.role as RoleName, ...(opts.agent === undefined ? {} : { agent: opts.agent }), ...(name === undefined ? {} : { name }) },
          { who: who(), recorder: 'cli' },
        );
        let signing: { name: string; verifierKey: string; fingerprint: string; file: string } | undefined;
        if (approver) {
          const dir = approverKeysDir(ledger.info, opts.approverKeys);
          try {
            signing = storeApproverKey(dir, record.id, opts.approverKey === undefined ? { name: name! } : { from: opts.approverKey, ...(opts.name === undefined ? {} : { name: opts.name }) });
          } catch (e) {
            // An approver key that cannot sign is useless and would mislead: take it back, say why.
            await revokeKey(ledger, record.id, { who: who(), recorder: 'cli' });
            throw e;
          }
        }
        const policy = signing === undefined ? undefined : `approvers:\n  - id: ${signing.name}\n    key: "${signing.verifierKey}"\n`;
        if (opts.json) {
          return printJson(io, {
            key,
            ...record,
            ...(signing === undefined ? {} : { approver: { name: signing.name, public_key: signing.verifierKey, fingerprint: signing.fingerprint, file: signing.file, policy } }),
          });
        }
        io.out(`key: ${key}`);
        io.out(
          `Key ${record.id} (${record.role}${record.agent === undefined ? '' : `, agent ${record.agent}`}) created. This is the only time the key is shown: give it to its holder, who sends it as Authorization: Bearer <key>.`,
        );
        if (signing !== undefined) {
          io.out('');
          io.out(`The server signs ${signing.name}'s decisions with the approver key ${signing.file} (0600; fingerprint ${signing.fingerprint}).`);
          io.out('A decision counts only if the policy lists this public key; add these lines to the policy file:');
          io.out('');
          io.out(policy!);
        }
      } finally {
        await ledger.close();
      }
    });

  keys
    .command('oidc-approver')
    .description('make the approver signing key the server holds for a person who signs in through OpenID Connect (by issuer and subject), and print the policy lines for it')
    .requiredOption('--subject <sub>', "the person's sub claim at the provider, exactly (not their email: an address can be reassigned)")
    .option('--issuer <url>', "the provider, exactly as oidc.issuer in the server's config")
    .option('--config <file>', "read --issuer from this server config file's oidc.issuer instead")
    .option('--name <name>', "the approver's identity, which their decisions are recorded under (e.g. alice@acme.example)")
    .option('--approver-key <file>', "sign this person's decisions with their own key from witness approver init (the server keeps a copy) instead of a new one")
    .option('--approver-keys <dir>', 'where the server keeps approver signing keys (default $WITNESS_APPROVER_KEYS, else beside the ledger: <db>.approvers/)')
    .option(store, storeHelp)
    .option('--json', 'machine-readable output')
    .action(async (opts: { subject: string; issuer?: string; config?: string; name?: string; approverKey?: string; approverKeys?: string; store?: string; json?: boolean }) => {
      const { createOidcApproverKey, loadServerConfig } = await import('../../server/index.js');
      if ((opts.issuer === undefined) === (opts.config === undefined)) {
        throw new WitnessError('invalid_argument', "Give the provider one way: --issuer <url> (exactly as oidc.issuer in the server's config) or --config <server.yaml>.");
      }
      let issuer = opts.issuer;
      if (opts.config !== undefined) {
        const config = loadServerConfig(opts.config);
        if (config.oidc === undefined) throw new WitnessError('invalid_argument', `${opts.config} has no oidc: section, so it names no provider; add one, or give --issuer.`);
        issuer = config.oidc.issuer;
      }
      if (opts.name === undefined && opts.approverKey === undefined) {
        throw new WitnessError(
          'invalid_argument',
          "An approver key needs the approver's identity, which their decisions are recorded under: give --name <you@example> (or --approver-key <file> to use their own key).",
        );
      }
      const ledger = await openExisting(resolveStore(opts.store));
      try {
        const made = await createOidcApproverKey(
          ledger,
          {
            issuer: issuer!,
            subject: opts.subject,
            ...(opts.name === undefined ? {} : { name: opts.name }),
            ...(opts.approverKey === undefined ? {} : { from: opts.approverKey }),
            ...(opts.approverKeys === undefined ? {} : { dir: opts.approverKeys }),
          },
          { who: who() },
        );
        const policy = `approvers:\n  - id: ${made.name}\n    key: "${made.verifierKey}"\n`;
        const config = `oidc:\n  approvers:\n    - subject: ${JSON.stringify(opts.subject)}\n      name: ${made.name}\n`;
        if (opts.json) {
          return printJson(io, { issuer, subject: opts.subject, name: made.name, public_key: made.verifierKey, fingerprint: made.fingerprint, file: made.file, policy, config });
        }
        io.out(`The server signs the decisions of ${made.name} (${issuer}, subject ${opts.subject}) with the approver key ${made.file} (0600; fingerprint ${made.fingerprint}).`);
        io.out('A decision counts only if the policy lists this public key; add these lines to the policy file:');
        io.out('');
        io.out(policy);
        io.out("And list the person in the server's config (witness serve --config), then restart the server:");
        io.out('');
        io.out(config);
      } finally {
        await ledger.close();
      }
    });

  keys
    .command('rotate')
    .description("rotate the ledger's signing key: records key.rotated, seals it with the old and the new key, and from then on only the new key signs")
    .option('--reason <text>', 'why, recorded in the key.rotated event')
    .option('--new-key <file>', 'the new private key (PRIVATE+KEY+…, as witness writes keys); default: generate one')
    .option('--signer-command <command>', `the command that signs with the key in use (default $${SIGNER_COMMAND_ENV}; see README "Keeping the key outside Witness")`)
    .option(store, storeHelp)
    .option('--seal-record <file>', SEAL_RECORD_HELP)
    .option('--json', 'machine-readable output')
    .action(async (opts: { reason?: string; newKey?: string; signerCommand?: string; store?: string; sealRecord?: string; json?: boolean }) => {
      const env = opts.signerCommand === undefined ? process.env : { ...process.env, [SIGNER_COMMAND_ENV]: opts.signerCommand };
      let newKeyText: string | undefined;
      if (opts.newKey !== undefined) {
        try {
          newKeyText = fs.readFileSync(opts.newKey, 'utf8').trim();
          parseSignerKey(newKeyText);
        } catch (e) {
          throw new WitnessError(
            'invalid_argument',
            `--new-key ${opts.newKey} is not a readable signing key (${(e as Error).message.replace(/\.$/, '')}); give a file written by witness (PRIVATE+KEY+…) or leave --new-key out to generate one.`,
          );
        }
      }
      const url = resolveStore(opts.store);
      const ledger = await openLedger(url, { create: false, env, ...(opts.sealRecord === undefined ? {} : { sealRecord: opts.sealRecord }) });
      try {
        const loc = parseStoreUrl(url);
        const keyFileEnv = (env['WITNESS_SIGNING_KEY_FILE'] ?? '').trim();
        const keyFile = loc.driver === 'sqlite' ? (keyFileEnv === '' ? sidecarPaths(loc.path).key : path.resolve(keyFileEnv)) : postgresKeyFile(ledger.info.id, undefined, env).file;
        const pubFile = loc.driver === 'sqlite' ? sidecarPaths(loc.path).pub : `${keyFile.replace(/\.key$/, '')}.pub`;
        const source = signingKeySource(env);
        const oldSigner = loadSigner(keyFile, env);
        if (oldSigner === undefined)
          throw new WitnessError('invalid_key', `No signing key for ${ledger.info.location} (looked in ${keyFile} and $WITNESS_SIGNING_KEY), so there is no key in use to vouch for a new one.`);
        // A generated key is written down before anything is recorded, so a crash cannot lose it.
        const kept = newKeyText === undefined ? keepNextKey(keyFile, (newKeyText = generateKey(ledger.info.origin).signerKey)) : undefined;
        const newSigner = parseSignerKey(newKeyText);
        const who = ((): string => {
          try {
            return os.userInfo().username;
          } catch {
            return process.env['USER'] ?? 'unknown';
          }
        })();
        const result = await rotateSigningKey(ledger, { oldSigner, newSigner, who, version: RECORDER_VERSION, ...(opts.reason === undefined ? {} : { reason: opts.reason }) });
        let installed: string | undefined;
        let retired: string | undefined;
        if (source === 'file') {
          retired = installRotatedKey(keyFile, pubFile, newKeyText, oldSigner).retired;
          installed = keyFile;
          if (kept !== undefined) fs.rmSync(kept, { force: true });
        }
        const json = {
          rotated: true,
          resumed: result.resumed,
          leaf: result.rotation.leaf,
          old_key: result.rotation.oldKey,
          new_key: result.rotation.newKey,
          checkpoint: { size: result.checkpoint.size, note: result.checkpoint.note },
          key_file: installed ?? null,
          retired_key_file: retired ?? null,
          new_key_file: installed === undefined ? (kept ?? opts.newKey ?? null) : null,
        };
        if (opts.json) return printJson(io, json);
        io.out(
          `Rotated the signing key of ${ledger.info.location}: ${keyFingerprint(oldSigner)} → ${keyFingerprint(newSigner)} (key.rotated at leaf ${result.rotation.leaf}${result.resumed ? ', completed now' : ''}); checkpoint ${result.checkpoint.size} is signed by both, later ones by the new key only.`,
        );
        if (installed !== undefined) io.out(`The new key is in ${installed}; the old one is kept in ${retired}. Restart long-running writers (gateways, serve) so they sign with the new key.`);
        else
          io.out(
            `The key in use came from ${source === 'command' ? `the signer command ($${SIGNER_COMMAND_ENV})` : '$WITNESS_SIGNING_KEY'}, which Witness does not change: the new key is in ${kept ?? opts.newKey}; give it to every writer (or load it into your signer) before the next seal, since the old key signs no more.`,
          );
      } finally {
        await ledger.close();
      }
    });

  keys
    .command('list')
    .description('list API keys: id, role, agent, name, created, revoked (never the keys)')
    .option(store, storeHelp)
    .option('--json', 'machine-readable output')
    .action(async (opts: { store?: string; json?: boolean }) => {
      const { listKeys } = await import('../../server/index.js');
      const ledger = await openExisting(resolveStore(opts.store), { readonly: true });
      try {
        const list = await listKeys(ledger);
        if (opts.json) return printJson(io, { keys: list });
        if (list.length === 0) return io.out('No API keys yet; create one with `witness keys create --role <role>`.');
        io.out(
          table(
            ['ID', 'ROLE', 'AGENT', 'NAME', 'CREATED', 'BY', 'REVOKED'],
            list.map((k) => [k.id, k.role, k.agent ?? '', k.name ?? '', k.createdAt, k.createdBy, k.revokedAt ?? '']),
          ),
        );
      } finally {
        await ledger.close();
      }
    });

  keys
    .command('revoke')
    .description('revoke an API key: a running witness serve refuses it from its next request')
    .argument('<id>', 'the key id (from `witness keys list`)')
    .option('--approver-keys <dir>', 'for an approver key: where the server keeps approver signing keys (default as for keys create)')
    .option(store, storeHelp)
    .option('--json', 'machine-readable output')
    .action(async (id: string, opts: { approverKeys?: string; store?: string; json?: boolean }) => {
      const { approverKeysDir, removeApproverKey, revokeKey } = await import('../../server/index.js');
      const ledger = await openExisting(resolveStore(opts.store));
      try {
        const record = await revokeKey(ledger, id, { who: who(), recorder: 'cli' });
        // The server signs with the key no longer; deleting it means nobody else can either.
        const removed = record.role === 'approver' && removeApproverKey(approverKeysDir(ledger.info, opts.approverKeys), record.id);
        if (opts.json) return printJson(io, { ...record, ...(record.role === 'approver' ? { approver_key_removed: removed } : {}) });
        io.out(`Key ${record.id} (${record.role}) revoked at ${record.revokedAt ?? 'now'}${removed ? '; the approver signing key the server held for it is deleted' : ''}.`);
      } finally {
        await ledger.close();
      }
    });
}
