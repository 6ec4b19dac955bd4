import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { BIN, readEvents, runBin } from '../helpers/ledger.js';

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

export interface HookSession {
  /** The stream `witness hook` names after the agent's own session id. */
  stream: string;
  /** The installed command's --agent. */
  agent: string;
  /** The shell tool's name as the agent's hook payload gives it. */
  tool: string;
  allowed: string;
  denied: string;
  /** The agent's ids of the two calls, when its payload carries them (`client_claims.tool_use_id`). */
  toolUseIds?: [string, string];
  prompt: string;
}

/**
 * The ledger after one run of the scripted session: one stream under the installed agent identity,
 * recorded through the gateway's write path; the allowed call with its allow decision and result,
 * the denied call with its deny decision (the rule) and the refusal; the prompt; a start and an end.
 * Then `witness verify` (the real binary) passes.
 */
export async function expectHookSession(db: string, s: HookSession): Promise<void> {
  const events = await readEvents(db);
  expect(new Set(events.map((e) => e.stream))).toEqual(new Set([s.stream]));
  for (const e of events) expect({ agent: e.agent.id, recorder: e.recorder?.kind }).toEqual({ agent: s.agent, recorder: 'gateway' });
  const calls = events.filter((e) => e.kind === 'tool.call');
  const ids = s.toolUseIds;
  expect(calls.map((e) => e.data)).toEqual(
    [s.allowed, s.denied].map((command, i) =>
      expect.objectContaining({
        tool: s.tool,
        arguments: expect.objectContaining({ command }),
        ...(ids === undefined ? {} : { client_claims: expect.objectContaining({ tool_use_id: ids[i] }) }),
      }),
    ),
  );
  const decisions = (i: number) => events.filter((e) => e.kind === 'policy.decision' && e.parent === calls[i]!.id);
  // A call's result is the one recorded after it and before the next call. It names the call as its
  // parent when the agent's payload carries a call id to find it by (Gemini CLI's AfterTool has none).
  const results = (i: number) => events.filter((e) => e.kind === 'tool.result' && e.seq > calls[i]!.seq && e.seq < (calls[i + 1]?.seq ?? Infinity));
  expect(decisions(0).map((e) => [e.outcome, (e.data as { decision: string }).decision])).toEqual([['success', 'allow']]);
  expect(decisions(1).map((e) => [e.outcome, (e.data as { decision: string }).decision, e.policy?.rule])).toEqual([['denied', 'deny', RM_RF_RULE]]);
  expect(results(0).map((e) => e.outcome)).toEqual(['success']);
  if (ids !== undefined) expect(results(0)[0]!.parent).toBe(calls[0]!.id);
  expect(results(1).map((e) => [e.outcome, e.parent])).toEqual([['denied', calls[1]!.id]]);
  expect(events.some((e) => e.kind === 'note' && (e.data as { text?: string }).text === s.prompt)).toBe(true);
  expect(events[0]!.kind).toBe('session.start');
  expect(events.at(-1)!.kind).toBe('session.end');
  const verified = await runBin(['verify', '--store', `sqlite:${db}`]);
  expect({ code: verified.code, stderr: verified.stderr }).toEqual({ code: 0, stderr: '' });
  expect(verified.stdout).toMatch(/is intact/);
}
