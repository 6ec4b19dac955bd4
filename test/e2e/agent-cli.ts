import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BIN } from '../helpers/ledger.js';

/** What the end-to-end tests with real coding-agent CLIs share: running the CLI, the policy, the hook command. */

export interface AgentRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/**
 * Runs a coding agent's CLI with no standard input (so it does not wait for piped input) and only
 * the environment given: the developer's own keys, base URLs and agent settings must not reach it.
 * Past `timeoutMs` its whole process group (the CLI and the hooks it started) is killed.
 */
export function runAgent(command: string, args: string[], options: { cwd: string; env: Record<string, string>; timeoutMs: number }): Promise<AgentRun> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => void (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => void (stderr += c.toString()));
    const timer = setTimeout(() => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }, options.timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started });
    });
  });
}

/** A POSIX shell word: the agents run hook commands through a shell. */
export function shellWord(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** How the agent runs this checkout's `witness` (bin/witness.js → dist/): the value of `hooks install --command`. */
export const WITNESS_COMMAND = `${shellWord(process.execPath)} ${shellWord(BIN)}`;

/** The denial reason the policy below gives, as `witness hook` words it for a Bash call. */
export const RM_RF_RULE = 'no-rm-rf';
export const RM_RF_REASON = 'Recursive deletes are not allowed.';

/** A policy that allows everything but a shell command containing `rm -rf`. */
export function writeRmRfPolicy(dir: string, tools: string[]): string {
  const file = path.join(dir, 'policy.yaml');
  fs.writeFileSync(
    file,
    [
      'version: 1',
      'default: allow',
      'rules:',
      `  - id: ${RM_RF_RULE}`,
      `    match: { tool: [${tools.join(', ')}] }`,
      '    when: args.command contains "rm -rf"',
      '    effect: deny',
      `    reason: ${RM_RF_REASON}`,
      '',
    ].join('\n'),
  );
  return file;
}

/** PATH and locale only: what a coding agent needs from the test's own environment. */
export function baseEnv(home: string): Record<string, string> {
  const env: Record<string, string> = { HOME: home, PATH: process.env['PATH'] ?? '/usr/local/bin:/usr/bin:/bin', LANG: 'C.UTF-8', TERM: 'dumb' };
  if (process.env['TMPDIR'] !== undefined) env['TMPDIR'] = process.env['TMPDIR'];
  return env;
}
