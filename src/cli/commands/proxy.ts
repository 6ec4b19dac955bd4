import fs from 'node:fs';
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { WitnessError } from '../../core/index.js';
import { Capturer, parseCaptureMap } from '../../capture/index.js';
import { loadPolicyFile, requireApprovers, type Policy } from '../../policy/index.js';
import { openWitness } from '../../recorder/index.js';
import { EXIT_FAILED, EXIT_OK } from '../exit.js';
import type { Io } from '../output.js';
import { resolveStore } from '../store-option.js';

interface ProxyOpts {
  agent: string;
  policy?: string;
  store?: string;
  server?: string;
  approvalTimeout: string;
  onRecordFailure: string;
  recordLists?: boolean;
  maxFrameBytes: string;
  capture?: string;
}

/**
 * `witness proxy --agent <id> [--policy file] [--store url] -- <server command and args>`.
 * stdout is the MCP channel: nothing but the server's frames (and the proxy's own JSON-RPC
 * answers) is ever written there; diagnostics go to stderr through `io.err`.
 */
export function registerProxy(program: Command, io: Io, setExit: (code: number) => void): void {
  program
    .command('proxy')
    .description('run an MCP server over stdio behind the audit proxy: record every tool call, enforce a policy')
    .argument('<server...>', 'the MCP server command and its arguments, after the options (a -- before it is optional)')
    .requiredOption('--agent <id>', 'the agent identity to record every call under (never taken from the client)')
    .option('--policy <file>', 'a policy file (YAML) to enforce: allow, deny or review each tool call')
    .option('--server <name>', 'a name for the upstream server, for policy rules (match.server) and the records')
    .option('--store <url>', 'ledger location (default: $WITNESS_STORE or sqlite:./witness.db)')
    .option('--approval-timeout <duration>', 'how long a call held for review waits for `witness approve` before it is refused (e.g. 90s, 5m)', '5m')
    .option('--on-record-failure <mode>', 'refuse (default: fail closed) or forward (fail open, for non-critical servers) when a call cannot be recorded', 'refuse')
    .option('--record-lists', 'also record tools/list, resources/list and prompts/list calls')
    .option('--capture <file>', 'screenshots around tool calls: a YAML file mapping tool names to { url, before, after, mask }')
    .option('--max-frame-bytes <n>', 'refuse client messages larger than this', String(4 * 1024 * 1024))
    .usage('--agent <id> [--policy <file>] [--store <url>] [--] <command> [args...]')
    // Everything from the server command on is the server's, `--` or not: launchers that split their own argv at the first `--` (the MCP Inspector) can then pass the proxy through whole.
    .passThroughOptions()
    .action(async (server: string[], opts: ProxyOpts) => {
      const agent = opts.agent.trim();
      if (agent === '' || agent.length > 512) throw new WitnessError('invalid_argument', '--agent must be a non-empty agent identity of at most 512 characters.');
      if (opts.server !== undefined && (opts.server === '' || opts.server.length > 512)) throw new WitnessError('invalid_argument', '--server must be a non-empty name of at most 512 characters.');
      const timeoutMs = parseDuration(opts.approvalTimeout, '--approval-timeout');
      if (opts.onRecordFailure !== 'refuse' && opts.onRecordFailure !== 'forward')
        throw new WitnessError('invalid_argument', `--on-record-failure must be refuse or forward, not "${opts.onRecordFailure}".`);
      const maxFrame = Number(opts.maxFrameBytes);
      if (!Number.isInteger(maxFrame) || maxFrame < 1024) throw new WitnessError('invalid_argument', `--max-frame-bytes "${opts.maxFrameBytes}" must be a whole number of at least 1024.`);
      const captureTools = opts.capture === undefined ? undefined : readCaptureFile(opts.capture);
      const [command, ...args] = server;
      if (command === undefined || command === '') throw new WitnessError('invalid_argument', 'Give the MCP server command after --, e.g. witness proxy --agent bot -- npx my-mcp-server.');
      // Bad configuration fails here, before the server is started, in one sentence.
      const policy: Policy | undefined = opts.policy === undefined ? undefined : readPolicy(opts.policy);

      const reported = new Set<string>();
      const witness = await openWitness({
        store: resolveStore(opts.store),
        // Fail closed quickly: a call waits at most this long for a dead ledger before it is refused.
        retryForMs: 2000,
        onError: (e) => {
          // One line per kind of fault, so a failing store does not flood the client's log.
          if (reported.has(e.code)) return;
          reported.add(e.code);
          io.err(`witness proxy: ${e.message}`);
        },
      });
      const { StdioProxy } = await import('../../gateway/index.js');
      const capturer = captureTools === undefined ? undefined : new Capturer();
      // Launch Chromium and fill the context pool now, so the first captured call pays for neither;
      // a failure here is reported by the capture that needs it, as an error event in its session.
      capturer?.browser.warm().catch(() => undefined);
      const proxy = new StdioProxy({
        witness,
        agent: { id: agent },
        command,
        args,
        server: opts.server,
        policy,
        failOpen: opts.onRecordFailure === 'forward',
        recordLists: opts.recordLists === true,
        maxFrameChars: maxFrame,
        approvals: { timeoutMs },
        capture: capturer === undefined || captureTools === undefined ? undefined : { capturer, tools: captureTools },
        input: process.stdin,
        output: process.stdout,
        onLog: (m) => io.err(m),
      });
      const onSignal = () => void proxy.stop();
      process.once('SIGTERM', onSignal);
      process.once('SIGINT', onSignal);
      try {
        await proxy.start();
        const outcome = await proxy.done;
        if (outcome.message !== undefined) io.err(`witness: ${outcome.message}`);
        const failed = outcome.reason === 'spawn_failed' || (outcome.reason === 'server_exited' && outcome.serverExitCode !== 0);
        setExit(failed ? EXIT_FAILED : EXIT_OK);
      } finally {
        process.off('SIGTERM', onSignal);
        process.off('SIGINT', onSignal);
        await capturer?.close();
        await witness.close();
        // Nothing more will be read; let the process exit.
        process.stdin.destroy();
      }
    });
}

/**
 * A missing policy file is bad usage here (exit 2), like a malformed one, and so is a policy that
 * can hold a call for review but lists no approvers who could release it.
 */
function readPolicy(file: string): Policy {
  try {
    const policy = loadPolicyFile(file);
    requireApprovers(policy);
    return policy;
  } catch (e) {
    if (e instanceof WitnessError && e.code === 'not_found') throw new WitnessError('invalid_argument', e.message, { cause: e });
    throw e;
  }
}

/** `90s`, `5m`, `1h`, `500ms` or a number of milliseconds. */
export function parseDuration(text: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;
  const ms = m === null ? Number.NaN : Number(m[1]) * unit[(m[2] ?? 'ms') as keyof typeof unit];
  if (!Number.isFinite(ms) || ms < 1 || ms > 7 * 24 * 3_600_000) throw new WitnessError('invalid_argument', `${flag} "${text}" is not a duration; use e.g. 90s, 5m or 1h (at most 7 days).`);
  return Math.round(ms);
}

function readCaptureFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new WitnessError('invalid_argument', `The capture file ${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'}); check the path given to --capture.`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new WitnessError('invalid_argument', `The capture file ${file} is not valid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  return parseCaptureMap(doc, file);
}
