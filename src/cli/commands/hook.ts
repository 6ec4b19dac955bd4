import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { WitnessError } from '../../core/index.js';
import type { HookAdapter } from '../../integrations/index.js';
import type { Io } from '../output.js';
import { resolveStore } from '../store-option.js';

/**
 * `witness hook <agent>` (the command a coding agent runs on each hook event) and
 * `witness hooks install|uninstall <agent>` (which write that command into the agent's own
 * settings). The hook's work is in hook-run.ts, loaded only when a hook runs.
 */

/** HOOK_AGENTS of src/integrations, repeated so that registering the command loads nothing (test/cli/hook-agents.test.ts keeps the two equal). */
export const AGENTS = ['claude-code', 'codex', 'cursor', 'gemini'] as const;
type Agent = (typeof AGENTS)[number];

interface HookOpts {
  agent: string;
  store?: string;
  policy?: string;
  fail: string;
  reviewTimeout: string;
  budget?: string;
}

/** The settings file a hook install writes, and the backup that lets uninstall put back exactly what was there. */
interface Backup {
  witness_hooks_backup: 1;
  /** The file's bytes before the first install (base64), or null when there was no file. */
  before: string | null;
  /** SHA-256 of what install wrote: uninstall restores `before` only when the file is still exactly that. */
  installed_sha256: string;
}

function checkAgent(kind: string): Agent {
  if (!(AGENTS as readonly string[]).includes(kind)) throw new WitnessError('invalid_argument', `witness hooks support ${AGENTS.join(', ')}, not "${kind}".`);
  return kind as Agent;
}

function checkAgentId(id: string): string {
  const agent = id.trim();
  if (agent === '' || agent.length > 512 || !/^[\w.@:+-]+$/.test(agent)) throw new WitnessError('invalid_argument', '--agent must be an agent identity of 1 to 512 letters, digits and . _ @ : + -.');
  return agent;
}

function parseFail(text: string): boolean {
  if (text !== 'open' && text !== 'closed') throw new WitnessError('invalid_argument', `--fail must be open or closed, not "${text}".`);
  return text === 'open';
}

export function registerHook(program: Command, io: Io, setExit: (code: number) => void): void {
  program
    .command('hook')
    .description("a coding agent's hook command: records the event on stdin and answers allow, deny or (after `witness approve`) allow (installed by `witness hooks install`)")
    .argument('<agent>', `the coding agent whose hook payload is on stdin: ${AGENTS.join(', ')}`)
    .requiredOption('--agent <id>', 'the agent identity to record under (never taken from the payload)')
    .option('--store <url>', 'ledger location (default: $WITNESS_STORE or sqlite:./witness.db)')
    .option('--policy <file>', 'the policy (YAML) that allows, denies or holds each tool call for review')
    .option('--fail <mode>', 'closed: refuse a tool call Witness cannot record or check; open: let it run', 'closed')
    .option('--review-timeout <duration>', 'how long a call held for review waits for `witness approve` before it is refused', '45s')
    .option('--budget <duration>', "the hook's whole time limit, below the agent's own hook timeout (default: review timeout + 5s)")
    .action(async (kindText: string, opts: HookOpts) => {
      const kind = checkAgent(kindText);
      const agent = checkAgentId(opts.agent);
      const failOpen = parseFail(opts.fail);
      const reviewMs = parseDuration(opts.reviewTimeout, '--review-timeout');
      const budgetMs = opts.budget === undefined ? reviewMs + 5000 : parseDuration(opts.budget, '--budget');
      const stdin = await readStdin();
      const { runHook } = await import('./hook-run.js');
      let policy: import('../../policy/index.js').Policy | undefined;
      let policyProblem: string | undefined;
      if (opts.policy !== undefined) {
        const { loadPolicyFile } = await import('../../policy/index.js');
        try {
          policy = loadPolicyFile(opts.policy);
        } catch (e) {
          policyProblem = e instanceof Error ? e.message : String(e);
        }
      }
      const answer = await runHook({ agentKind: kind, agent, store: resolveStore(opts.store), policy, policyProblem, failOpen, reviewMs, budgetMs, log: (m) => io.err(m) }, stdin);
      if (answer.stdout !== '') process.stdout.write(answer.stdout);
      if (answer.stderr !== '') process.stderr.write(answer.stderr);
      setExit(answer.exitCode);
      // The agent waits for the hook process to end, not for its answer: work still under way when
      // the budget ran out (a ledger that hangs, a review poll) must not keep it alive. Unref'd, so
      // a process that ends by itself is not held back either.
      setTimeout(() => process.exit(answer.exitCode), 500).unref();
    });

  const hooks = program.command('hooks').description("install or remove Witness's hooks in a coding agent's own settings");
  hooks
    .command('install')
    .description("adds `witness hook` to the agent's settings file (other hooks kept; idempotent; backed up for uninstall)")
    .argument('<agent>', AGENTS.join(', '))
    .option('--project', "the project's settings under the current directory (the default; .claude/settings.json for claude-code)")
    .option('--user', "the user's settings under the home directory (~/.claude/settings.json for claude-code)")
    .option('--settings <file>', 'this settings file instead')
    .option('--agent <id>', "the agent identity the hook records under (default: the coding agent's name)")
    .option('--store <url>', 'ledger location written into the hook command (default: the hook reads $WITNESS_STORE or sqlite:./witness.db)')
    .option('--policy <file>', 'the policy file the hook enforces (written as an absolute path)')
    .option('--fail <mode>', 'closed or open (see witness hook --help)', 'closed')
    .option('--review-timeout <duration>', 'how long a review waits for `witness approve`', '45s')
    .option('--command <cmd>', 'how the agent runs witness', 'witness')
    .action(async (kindText: string, o: InstallOpts) => {
      const kind = checkAgent(kindText);
      const { hookAdapter } = await import('../../integrations/index.js');
      const adapter = hookAdapter(kind);
      const file = settingsFile(o, adapter.settingsFile);
      const agent = checkAgentId(o.agent ?? kind);
      parseFail(o.fail);
      const reviewMs = parseDuration(o.reviewTimeout, '--review-timeout');
      const budgetS = Math.ceil(reviewMs / 1000) + 5;
      const parts = [o.command, 'hook', kind, '--agent', agent, '--fail', o.fail, '--review-timeout', o.reviewTimeout, '--budget', `${budgetS}s`];
      if (o.store !== undefined) parts.push('--store', o.store);
      if (o.policy !== undefined) parts.push('--policy', path.resolve(o.policy));
      const command = parts.map((p, i) => (i === 0 && p === o.command ? p : shellQuote(p))).join(' ');
      await installInto(adapter, file, command, budgetS + 5, io);
    });
  hooks
    .command('uninstall')
    .description('removes the Witness hooks; restores the file exactly as it was before install when nothing else changed it since')
    .argument('<agent>', AGENTS.join(', '))
    .option('--project', 'the project settings (the default)')
    .option('--user', "the user's settings")
    .option('--settings <file>', 'this settings file instead')
    .action(async (kindText: string, o: InstallOpts) => {
      const kind = checkAgent(kindText);
      const { hookAdapter } = await import('../../integrations/index.js');
      const adapter = hookAdapter(kind);
      await uninstallFrom(adapter, settingsFile(o, adapter.settingsFile), io);
    });
}

interface InstallOpts {
  project?: boolean;
  user?: boolean;
  settings?: string;
  agent?: string;
  store?: string;
  policy?: string;
  fail: string;
  reviewTimeout: string;
  command: string;
}

function settingsFile(o: Pick<InstallOpts, 'project' | 'user' | 'settings'>, where: HookAdapter['settingsFile']): string {
  if ([o.project, o.user, o.settings !== undefined].filter(Boolean).length > 1) throw new WitnessError('invalid_argument', 'Give one of --project, --user and --settings.');
  if (o.settings !== undefined) return path.resolve(o.settings);
  if (o.user === true) return path.join(os.homedir(), where.user);
  return path.resolve(where.project);
}

/** A POSIX shell word: Claude Code runs hook commands through a shell. */
function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

function readIf(file: string): Buffer | undefined {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new WitnessError('invalid_argument', `${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'}); check its permissions.`);
  }
}

const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

async function installInto(adapter: HookAdapter, file: string, command: string, timeoutSeconds: number, io: Io): Promise<void> {
  const before = readIf(file);
  {
    let change;
    try {
      change = adapter.install(before?.toString('utf8'), command, timeoutSeconds, file);
    } catch (e) {
      throw new WitnessError('invalid_argument', (e as Error).message);
    }
    if (change.events.length === 0) {
      io.out(`Witness's hooks are already in ${file}; nothing changed.`);
      return;
    }
    const backupFile = `${file}.witness-backup`;
    // The first install's backup is kept: it holds the file as it was before any Witness hook.
    if (readIf(backupFile) === undefined) {
      const backup: Backup = { witness_hooks_backup: 1, before: before === undefined ? null : before.toString('base64'), installed_sha256: sha256(change.text) };
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(backupFile, `${JSON.stringify(backup)}\n`, { mode: 0o600 });
    } else {
      const b = JSON.parse(fs.readFileSync(backupFile, 'utf8')) as Backup;
      fs.writeFileSync(backupFile, `${JSON.stringify({ ...b, installed_sha256: sha256(change.text) })}\n`, { mode: 0o600 });
    }
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, change.text);
    io.out(`Added Witness's hook to ${change.events.join(', ')} in ${file} (backup: ${backupFile}); the hook command is: ${command}`);
  }
}

async function uninstallFrom(adapter: HookAdapter, file: string, io: Io): Promise<void> {
  const backupFile = `${file}.witness-backup`;
  const now = readIf(file);
  const raw = readIf(backupFile);
  let backup: Backup | undefined;
  if (raw !== undefined) {
    try {
      backup = JSON.parse(raw.toString('utf8')) as Backup;
      if (backup.witness_hooks_backup !== 1) backup = undefined;
    } catch {
      backup = undefined;
    }
  }
  if (backup !== undefined && now !== undefined && sha256(now) === backup.installed_sha256) {
    if (backup.before === null) fs.rmSync(file);
    else fs.writeFileSync(file, Buffer.from(backup.before, 'base64'));
    fs.rmSync(backupFile);
    io.out(backup.before === null ? `Removed ${file}, which Witness's install had created.` : `Restored ${file} exactly as it was before Witness's hooks were installed.`);
    return;
  }
  if (now === undefined) {
    if (raw !== undefined) fs.rmSync(backupFile);
    io.out(`${file} does not exist; nothing to remove.`);
    return;
  }
  let change;
  try {
    change = adapter.uninstall(now.toString('utf8'), file);
  } catch (e) {
    throw new WitnessError('invalid_argument', (e as Error).message);
  }
  if (raw !== undefined) fs.rmSync(backupFile);
  if (change.events.length === 0) {
    io.out(`No Witness hooks in ${file}; nothing changed.`);
    return;
  }
  fs.writeFileSync(file, change.text);
  io.out(`Removed Witness's hook from ${change.events.join(', ')} in ${file} (the file changed since install, so the rest of it was kept as it is now, reformatted).`);
}

/** `45s`, `2m`, `1500ms` or milliseconds (as `witness proxy --approval-timeout`; not imported from there, which loads the gateway). */
function parseDuration(text: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;
  const ms = m === null ? Number.NaN : Number(m[1]) * unit[(m[2] ?? 'ms') as keyof typeof unit];
  if (!Number.isFinite(ms) || ms < 1 || ms > 24 * 3_600_000) throw new WitnessError('invalid_argument', `${flag} "${text}" is not a duration; use e.g. 45s, 2m or 1500ms (at most a day).`);
  return Math.round(ms);
}

function readStdin(): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    process.stdin.on('data', (c: Buffer) => {
      size += c.length;
      // A hook payload carries one tool call's input or output; far below this.
      if (size > 16 * 1024 * 1024) {
        reject(new WitnessError('invalid_argument', 'The hook payload on standard input is larger than 16 MiB.'));
        process.stdin.destroy();
        return;
      }
      chunks.push(c);
    });
    process.stdin.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    process.stdin.on('error', reject);
  });
}
