import { keySha256, parseGatewayConfig, startHttpGateway } from '../../src/gateway/index.js';
import { openWitness } from '../../src/recorder/index.js';
import { tempDb } from './tmp.js';

/**
 * A real HTTP gateway started in this process over a fresh SQLite ledger, with the agents and the
 * stdio MCP servers a test names: what the tests that drive the gateway with real SDK clients share.
 */

/** An agent the gateway knows by its API key. */
export interface GatewayAgent {
  id: string;
  key: string;
}

/** An upstream MCP server the gateway mounts at `path`: `script` run by this Node over stdio. */
export interface GatewayServer {
  name: string;
  path: string;
  script: string;
}

/** The started gateway: its URL, the ledger file it records into, and a way to stop both. */
export interface InProcessGateway {
  url: string;
  store: string;
  close: () => Promise<void>;
}

/** The gateway configuration (YAML) for `agents` and `servers`, listening on a free loopback port. */
export function gatewayConfigYaml(agents: GatewayAgent[], servers: GatewayServer[]): string {
  return [
    'listen: "127.0.0.1:0"',
    'agents:',
    ...agents.map((a) => `  - { id: ${a.id}, key_sha256: "${keySha256(a.key)}" }`),
    'servers:',
    ...servers.flatMap((s) => [`  - name: ${s.name}`, `    path: ${s.path}`, `    command: ${JSON.stringify(process.execPath)}`, `    args: ${JSON.stringify([s.script, 'stdio'])}`]),
    '',
  ].join('\n');
}

/** Starts the gateway for `agents` and `servers` over a new ledger in `dir` (its relative paths resolved there). */
export async function startInProcessGateway(dir: string, agents: GatewayAgent[], servers: GatewayServer[]): Promise<InProcessGateway> {
  const store = tempDb(dir);
  const witness = await openWitness({ store: `sqlite:${store}`, retryForMs: 2000 });
  try {
    const gateway = await startHttpGateway(parseGatewayConfig(gatewayConfigYaml(agents, servers), { source: 'gateway.yaml', baseDir: dir }), witness, { stopTimeoutMs: 500 });
    return {
      url: gateway.url,
      store,
      close: async () => {
        await gateway.close();
        await witness.close();
      },
    };
  } catch (e) {
    await witness.close();
    throw e;
  }
}
