import type { Command } from 'commander';
import { WitnessError } from '../../core/index.js';
import { type Io, inert } from '../output.js';
import { openExisting, resolveStore } from '../store-option.js';
import { untilStopped } from '../until-stopped.js';

interface ServeOpts {
  store?: string;
  port: string;
  host: string;
  config?: string;
}

/**
 * `witness serve`: the HTTP API over one ledger until SIGINT/SIGTERM, then a clean close (requests
 * in flight finish, what arrived is sealed, the ledger is closed). The server's modules (hono) are
 * loaded only by this command.
 */
export function registerServe(program: Command, io: Io): void {
  program
    .command('serve')
    .description('serve the HTTP API (ingest, search, artifacts, proofs, verify) over a ledger, with API keys and roles')
    .option('--store <url>', 'ledger location (default: $WITNESS_STORE or sqlite:./witness.db)')
    .option('--port <n>', 'TCP port (0 picks a free one)', '7350')
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('--config <file>', 'server config file (YAML): public_url, and an oidc: section for OpenID Connect sign-in to the viewer')
    .action(async (opts: ServeOpts) => {
      if (!/^\d{1,5}$/.test(opts.port) || Number(opts.port) > 65535) throw new WitnessError('invalid_argument', `--port "${opts.port}" must be a port number from 0 to 65535.`);
      const { listen, loadServerConfig, OidcSignIn } = await import('../../server/index.js');
      // Bundles exported over the API carry the auditor report, as `witness export`'s do.
      const { bundleReport } = await import('../../report/index.js');
      // Read before the ledger is opened: a bad config stops the start in one sentence.
      const config = opts.config === undefined ? {} : loadServerConfig(opts.config);
      const ledger = await openExisting(resolveStore(opts.store));
      let server;
      try {
        server = await listen({
          ledger,
          port: Number(opts.port),
          host: opts.host,
          ...(config.oidc === undefined ? {} : { oidc: config.oidc }),
          onError: (e) => io.err(inert(`witness serve: ${(e as Error).message ?? String(e)}`)),
          renderReport: bundleReport,
        });
      } catch (e) {
        await ledger.close();
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
          throw new WitnessError('invalid_argument', `witness serve cannot listen on ${opts.host}:${opts.port} (${code}); choose another --port or --host.`);
        }
        throw e;
      }
      if (!['127.0.0.1', '::1', 'localhost'].includes(opts.host)) {
        io.err(`witness serve: listening on ${opts.host} without TLS: API keys cross the network in clear text unless a TLS proxy sits in front.`);
      }
      if (config.oidc !== undefined) {
        io.err(inert(`witness serve: OpenID Connect sign-in through ${config.oidc.issuer}, returning to ${config.oidc.redirectUri}.`));
        // Not fatal: the provider may be down for a moment; each sign-in discovers it again until it answers.
        new OidcSignIn(config.oidc).ready().catch((e: unknown) => io.err(inert(`witness serve: ${(e as Error).message}`)));
      }
      if (!ledger.canSeal) io.err('witness serve: no signing key for this ledger here, so this server signs no checkpoints; run `witness seal` where the key is.');
      io.out(`Witness server listening on ${server.url} (ledger ${ledger.info.location}); create a key with \`witness keys create --role auditor\`. Stop with Ctrl-C.`);
      await untilStopped();
      await server.close();
      io.err('witness serve: stopped; every acknowledged event is committed and the ledger is closed.');
    });
}
