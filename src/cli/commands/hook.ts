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

/** How much longer than the review the budget must be: the expiry and the refusal are written after the review's wait ends. */
const REVIEW_MARGIN_MS = 2000;

interface HookOpts {
  agent: string;
  store?: string;
  policy?: string;
  fail: string;
  reviewTimeout: string;
  budget?: string;
}

/**
 * What install keeps so that uninstall can put back exactly what was there: in the user's own
 * state directory (`$WITNESS_STATE_DIR`, else ~/.witness), under hooks-backup/<SHA-256 of the
 * settings file's absolute path>.json, never beside the settings file, where a cloned repository
 * could ship one (issue 16 review, M4 U4). Bound to that path; believed only while the file is
 * exactly what install wrote.
 */
interface Backup {
  witness_hooks_backup: 2;
  /** The settings file's absolute path. */
  file: string;
  /** The file's bytes before Witness's hooks went in (base64), or null when there was no file. */
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
    .option('--budget <duration>', "the hook's whole time limit, below the agent's own hook timeout, at least 2s above the review timeout (default: review timeout + 5s)")
    .option('--installed-by <what>', '`witness hooks install` marks the commands it writes with this, to find them again (ignored)')
    .action(async (kindText: string, opts: HookOpts) => {
      const kind = checkAgent(kindText);
      const agent = checkAgentId(opts.agent);
      const failOpen = parseFail(opts.fail);
      const reviewMs = parseDuration(opts.reviewTimeout, '--review-timeout');
      const budgetMs = opts.budget === undefined ? reviewMs + 5000 : parseDuration(opts.budget, '--budget');
      // A held call must end, refused with its expiry recorded, before the budget answers for it (review M5).
      if (budgetMs < reviewMs + REVIEW_MARGIN_MS) {
        throw new WitnessError(
          'invalid_argument',
          `--budget (${opts.budget ?? ''}) must be at least ${REVIEW_MARGIN_MS / 1000}s longer than --review-timeout (${opts.reviewTimeout}), so that a call held for review is refused before the hook's time runs out.`,
        );
      }
      // A payload over the limit is a failure like any other: answered as --fail says (review M3).
      const stdin = await readStdin().catch((e: unknown) => (e instanceof Error ? e : new Error(String(e))));
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
      const { HOOK_MARK, hookAdapter } = await import('../../integrations/index.js');
      const adapter = hookAdapter(kind);
      const file = settingsFile(o, adapter.settingsFile);
      const agent = checkAgentId(o.agent ?? kind);
      parseFail(o.fail);
      const reviewMs = parseDuration(o.reviewTimeout, '--review-timeout');
      const budgetS = Math.ceil(reviewMs / 1000) + 5;
      const parts = [o.command, 'hook', kind, '--agent', agent, '--fail', o.fail, '--review-timeout', o.reviewTimeout, '--budget', `${budgetS}s`];
      if (o.store !== undefined) parts.push('--store', o.store);
      if (o.policy !== undefined) parts.push('--policy', path.resolve(o.policy));
      parts.push(HOOK_MARK);
      const command = parts.map((p, i) => (i === 0 && p === o.command ? p : shellQuote(p))).join(' ');
      await installInto(adapter, file, command, budgetS + 5, io);
      noteOldBackup(file, io);
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
      const file = settingsFile(o, adapter.settingsFile);
      await uninstallFrom(adapter, file, io);
      noteOldBackup(file, io);
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

/** Refuses a symbolic link where Witness writes: install and uninstall never edit a file somewhere else than the one named (issue 16 review, M4 U3). */
function refuseLink(file: string): void {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new WitnessError('invalid_argument', `${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'}); check its permissions.`);
  }
  if (st.isSymbolicLink()) throw new WitnessError('invalid_argument', `${file} is a symbolic link, which Witness does not write through; name the file it points to with --settings instead.`);
  if (!st.isFile()) throw new WitnessError('invalid_argument', `${file} is not a regular file; move it aside or name another file with --settings.`);
}

function readIf(file: string): Buffer | undefined {
  refuseLink(file);
  let fd: number;
  try {
    // O_NOFOLLOW: a link put in place after the check above is refused, not followed.
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    if ((e as NodeJS.ErrnoException).code === 'ELOOP') refuseLink(file);
    throw new WitnessError('invalid_argument', `${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'}); check its permissions.`);
  }
  try {
    return fs.readFileSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Replaces `file` by a new file holding `bytes` (a temporary file renamed over it: never half-written, and a link at `file` is replaced, not followed). */
function writeAtomic(file: string, bytes: string | Buffer, mode: number): void {
  refuseLink(file);
  const tmp = `${file}.witness-${process.pid}-${Date.now()}.tmp`;
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    // 'wx' is O_CREAT | O_EXCL: it never opens an existing file or link.
    fs.writeFileSync(tmp, bytes, { flag: 'wx', mode });
    fs.chmodSync(tmp, mode);
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw new WitnessError('invalid_argument', `${file} cannot be written (${(e as NodeJS.ErrnoException).code ?? 'error'}); check the permissions of its directory.`, { cause: e });
  }
}

const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

function backupFileFor(file: string): string {
  const state = process.env['WITNESS_STATE_DIR'] || path.join(os.homedir(), '.witness');
  return path.join(state, 'hooks-backup', `${sha256(file)}.json`);
}

/** The backup of `file`, or undefined when there is none that install wrote for this very file. */
function readBackup(file: string): Backup | undefined {
  let raw: Buffer | undefined;
  try {
    raw = readIf(backupFileFor(file));
  } catch {
    return undefined;
  }
  if (raw === undefined) return undefined;
  try {
    const b = JSON.parse(raw.toString('utf8')) as Partial<Backup>;
    if (b.witness_hooks_backup !== 2 || b.file !== file || typeof b.installed_sha256 !== 'string' || (b.before !== null && typeof b.before !== 'string')) return undefined;
    return b as Backup;
  } catch {
    return undefined;
  }
}

function modeOf(file: string): number {
  try {
    return fs.statSync(file).mode & 0o777;
  } catch {
    return 0o644;
  }
}

async function installInto(adapter: HookAdapter, file: string, command: string, timeoutSeconds: number, io: Io): Promise<void> {
  const before = readIf(file);
  let change;
  let had: Set<string>;
  try {
    change = adapter.install(before?.toString('utf8'), command, timeoutSeconds, file);
    // Events that already held a Witness entry: where install rewrote one, it was not exactly what install writes (other options, matcher or field; review round 2, M-C).
    had = new Set(before === undefined ? [] : adapter.uninstall(before.toString('utf8'), file).events);
  } catch (e) {
    throw new WitnessError('invalid_argument', (e as Error).message);
  }
  if (change.events.length === 0) {
    io.out(`Witness's hooks are already in ${file}; nothing changed.`);
    return;
  }
  const hadOurs = had.size > 0;
  const backupFile = backupFileFor(file);
  const kept = readBackup(file);
  // A file without Witness's hooks is the one to put back (a backup from an earlier install is
  // stale then: the hooks were taken out by hand and the file changed since, review M4 U2). A file
  // that has them keeps the backup only while it is exactly what install wrote.
  const base = !hadOurs
    ? { before: before === undefined ? null : before.toString('base64') }
    : kept !== undefined && before !== undefined && sha256(before) === kept.installed_sha256
      ? { before: kept.before }
      : undefined;
  if (base === undefined) fs.rmSync(backupFile, { force: true });
  else {
    const backup: Backup = { witness_hooks_backup: 2, file, ...base, installed_sha256: sha256(change.text) };
    fs.mkdirSync(path.dirname(backupFile), { recursive: true, mode: 0o700 });
    writeAtomic(backupFile, `${JSON.stringify(backup)}\n`, 0o600);
  }
  writeAtomic(file, change.text, modeOf(file));
  const added = change.events.filter((e) => !had.has(e));
  const replaced = change.events.filter((e) => had.has(e));
  const what = [
    ...(added.length > 0 ? [`added Witness's hook to ${added.join(', ')}`] : []),
    ...(replaced.length > 0 ? [`replaced Witness's entry in ${replaced.join(', ')} (it differed from what this install writes)`] : []),
  ].join(' and ');
  io.out(
    `${what.charAt(0).toUpperCase()}${what.slice(1)} in ${file} (${base !== undefined ? `backup: ${backupFile}` : `no backup: ${kept === undefined ? 'the file already held Witness hooks that no install here backed up' : 'the file changed since the last install'}, so uninstall will remove only the Witness hooks`}); the hook command is: ${command}`,
  );
}

/**
 * The installer before 11aa4d5 kept its backup beside the settings file, as `<file>.witness-backup`
 * holding `{ witness_hooks_backup: 1, before, installed_sha256 }`. Nothing in that format binds it
 * to this machine, this user or this path (a cloned repository can ship one in exactly that shape),
 * so it is never restored from; nor is it deleted, as it may be the user's only copy of their
 * earlier settings. Install and uninstall name it in one sentence and leave it.
 */
function noteOldBackup(file: string, io: Io): void {
  const old = `${file}.witness-backup`;
  try {
    // A settings backup is a few KiB; a large planted file is not read at all.
    if (fs.lstatSync(old).size > 1024 * 1024) return;
    const b = JSON.parse(readIf(old)?.toString('utf8') ?? 'null') as { witness_hooks_backup?: unknown } | null;
    if (b?.witness_hooks_backup !== 1) return;
  } catch {
    return;
  }
  io.out(
    `Left ${old} as it is: it is in the backup format of an earlier Witness install, which nothing binds to this machine (a repository could have shipped it), so Witness neither restores from it nor deletes it; delete it yourself once you no longer need it.`,
  );
}

async function uninstallFrom(adapter: HookAdapter, file: string, io: Io): Promise<void> {
  const backupFile = backupFileFor(file);
  const now = readIf(file);
  const backup = readBackup(file);
  if (backup !== undefined && now !== undefined && sha256(now) === backup.installed_sha256) {
    if (backup.before === null) fs.rmSync(file);
    else writeAtomic(file, Buffer.from(backup.before, 'base64'), modeOf(file));
    fs.rmSync(backupFile, { force: true });
    io.out(backup.before === null ? `Removed ${file}, which Witness's install had created.` : `Restored ${file} exactly as it was before Witness's hooks were installed.`);
    return;
  }
  // Anything else is stale: never restored from, only removed.
  fs.rmSync(backupFile, { force: true });
  if (now === undefined) {
    io.out(`${file} does not exist; nothing to remove.`);
    return;
  }
  let change;
  try {
    change = adapter.uninstall(now.toString('utf8'), file);
  } catch (e) {
    throw new WitnessError('invalid_argument', (e as Error).message);
  }
  if (change.events.length === 0) {
    io.out(`No Witness hooks in ${file}; nothing changed.`);
    return;
  }
  writeAtomic(file, change.text, modeOf(file));
  io.out(
    `Removed Witness's hook from ${change.events.join(', ')} in ${file} (${backup === undefined ? 'no install here kept a backup of it' : 'the file changed since install'}, so the rest of it was kept as it is now, reformatted).`,
  );
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
