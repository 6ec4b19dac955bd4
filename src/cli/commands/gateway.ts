import type { Command } from 'commander';
import { WitnessError } from '../../core/index.js';
import { Capturer } from '../../capture/index.js';
import { openWitness } from '../../recorder/index.js';
import { type Io, printJson } from '../output.js';
import { resolveStore } from '../store-option.js';
import { untilStopped } from '../until-stopped.js';

interface GatewayOpts {
  config: string;
  store?: string;
}

/**
 * `witness gateway --config gateway.yaml [--store url]`: the Streamable HTTP MCP audit gateway,
 * running until SIGTERM/SIGINT. `witness gateway-key [--agent id]`: a fresh API key and the line
 * of configuration that admits it, so nobody writes a plaintext key into the file.
 */
export function registerGateway(program: Command, io: Io): void {
  program
    .command('gateway')
    .description('run the Streamable HTTP MCP audit gateway: bearer-key agents, one recorded session per MCP session')
    .requiredOption('--config <file>', 'the gateway configuration (YAML): listen address, agents and their key hashes, servers')
    .option('--store <url>', "ledger location (default: the config file's store, $WITNESS_STORE or sqlite:./witness.db)")
    .action(async (opts: GatewayOpts) => {
      const { loadGatewayConfig, startHttpGateway } = await import('../../gateway/index.js');
      // Bad configuration fails here, before anything listens, in one sentence naming the line.
      const config = loadGatewayConfig(opts.config);
      const reported = new Set<string>();
      const witness = await openWitness({
        store: opts.store ?? config.store ?? resolveStore(undefined),
        // A dead ledger refuses calls within ~2 s instead of holding agents for the default 30 s.
        retryForMs: 2000,
        onError: (e) => {
          // One line per kind of fault, so a failing store does not flood the log.
          if (reported.has(e.code)) return;
          reported.add(e.code);
          io.err(`witness gateway: ${e.message}`);
        },
      });
      // One warm browser for every server's captures, only when some server asks for them.
      const capturer = config.servers.some((s) => s.capture !== undefined) ? new Capturer() : undefined;
      // Launch Chromium and fill the context pool now (see proxy.ts); a failure is reported by the capture.
      capturer?.browser.warm().catch(() => undefined);
      let gateway;
      try {
        gateway = await startHttpGateway(config, witness, { onLog: (m) => io.err(m), capturer });
      } catch (e) {
        await capturer?.close();
        await witness.close();
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
          throw new WitnessError('invalid_argument', `The gateway cannot listen on ${config.host}:${config.port} (${code}); change listen in ${opts.config}.`);
        }
        throw e;
      }
      io.err(`witness gateway: listening on ${gateway.url} — ${config.servers.map((s) => `${s.path} (${s.name})`).join(', ')}`);
      await untilStopped();
      await gateway.close();
      await capturer?.close();
      await witness.close();
    });

  program
    .command('gateway-key')
    .description('print a new random API key for the gateway and the agents: line (with its SHA-256) for gateway.yaml')
    .option('--agent <id>', 'the agent id to put in the configuration line', 'my-agent')
    .option('--json', 'machine-readable output: the key, its SHA-256 and the configuration line')
    .action(async (opts: { agent: string; json?: boolean }) => {
      const { keySha256, newGatewayKey } = await import('../../gateway/index.js');
      const agent = opts.agent.trim();
      if (agent === '' || agent.length > 512) throw new WitnessError('invalid_argument', '--agent must be a non-empty agent identity of at most 512 characters.');
      const key = newGatewayKey();
      const sha = keySha256(key);
      const config = `{ id: ${JSON.stringify(agent)}, key_sha256: "${sha}" }`;
      if (opts.json) return printJson(io, { key, agent, key_sha256: sha, config });
      io.out(`key: ${key}`);
      io.out('Give the key to the agent (Authorization: Bearer <key>); it is not stored anywhere. Add this under agents: in gateway.yaml:');
      io.out(`  - ${config}`);
    });
}
