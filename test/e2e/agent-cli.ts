import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { generateKey } from '../../src/core/index.js';
import { BIN, readEvents, runBin, type CliResult } from '../helpers/ledger.js';

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
    if (child.pid !== undefined) running.add(child.pid);
    child.on('exit', () => child.pid !== undefined && running.delete(child.pid));
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

const running = new Set<number>();

/**
 * Kills what is left of every agent run (its process group: the CLI and the hooks it started), for
 * a test's afterAll: a test that failed half-way must not leave an agent writing into the temporary
 * directory as it is removed.
 */
export function stopAgents(): void {
  for (const pid of running) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  running.clear();
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

export const REVIEW_RULE = 'touch-needs-review';
/** The command the review rule holds, which each scripted session runs third. */
export const REVIEWED_COMMAND = 'touch approved.txt';

export interface Approver {
  approver: string;
  /** The Ed25519 public key the policy lists. */
  key: string;
  /** The private key `witness approve --key` signs with. */
  keyFile: string;
  command: string;
}

/** A person's signing key (0600 in `dir`), and what the policy's review rule needs from it. */
export function writeApproverKey(dir: string): Approver {
  const { signerKey, verifierKey } = generateKey('alice@corp');
  const keyFile = path.join(dir, 'alice@corp.key');
  fs.writeFileSync(keyFile, `${signerKey}\n`, { mode: 0o600 });
  return { approver: 'alice@corp', key: verifierKey, keyFile, command: REVIEWED_COMMAND };
}

/**
 * A policy that allows everything but a shell command containing `rm -rf`; with `review`, a command
 * containing `review.command` is held for `witness approve` by the one approver whose Ed25519 public
 * key is given.
 */
export function writeRmRfPolicy(dir: string, tools: string[], review?: { command: string; approver: string; key: string }): string {
  const file = path.join(dir, 'policy.yaml');
  const match = `    match: { tool: [${tools.join(', ')}] }`;
  fs.writeFileSync(
    file,
    [
      'version: 1',
      'default: allow',
      ...(review === undefined ? [] : ['approvers:', `  - id: ${review.approver}`, `    key: "${review.key}"`]),
      'rules:',
      `  - id: ${RM_RF_RULE}`,
      match,
      '    when: args.command contains "rm -rf"',
      '    effect: deny',
      `    reason: ${RM_RF_REASON}`,
      ...(review === undefined ? [] : [`  - id: ${REVIEW_RULE}`, match, `    when: args.command contains ${JSON.stringify(review.command)}`, '    effect: review']),
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

export interface ScriptedCall {
  command: string;
  /** The agent's id of the call, when its payload carries one (`client_claims.tool_use_id`). */
  id?: string;
  /** allowed: ran; denied: refused by the rm -rf rule; approved: held for review, approved, ran. */
  verdict: 'allowed' | 'denied' | 'approved';
}

export interface HookSession {
  /** The stream `witness hook` names after the agent's own session id. */
  stream: string;
  /** The installed command's --agent. */
  agent: string;
  /** The shell tool's name as the agent's hook payload gives it. */
  tool: string;
  calls: ScriptedCall[];
  prompt: string;
}

/** What the ledger holds about one call between its `tool.call` and the next: kind, outcome, decision. */
const TRAIL: Record<ScriptedCall['verdict'], string[][]> = {
  allowed: [
    ['policy.decision', 'success', 'allow'],
    ['tool.result', 'success', ''],
  ],
  denied: [
    ['policy.decision', 'denied', 'deny'],
    ['tool.result', 'denied', ''],
  ],
  approved: [
    ['policy.decision', 'pending', 'review'],
    ['approval.request', 'pending', ''],
    ['approval.decision', 'success', 'approved'],
    ['policy.decision', 'success', 'allow'],
    ['tool.result', 'success', ''],
  ],
};

/**
 * The ledger after one run of the scripted session: one stream under the installed agent identity,
 * recorded through the gateway's write path; each call with what its verdict leaves (decisions,
 * approval, result), the denied one under the rm -rf rule; the prompt; a start and an end. Then
 * `witness verify` (the real binary) passes.
 */
export async function expectHookSession(db: string, s: HookSession): Promise<void> {
  const events = await readEvents(db);
  expect(new Set(events.map((e) => e.stream))).toEqual(new Set([s.stream]));
  // Witness observing the agent from outside (the gateway's write path), but for a person's decision, which `witness approve` records.
  for (const e of events) expect({ agent: e.agent.id, recorder: e.recorder?.kind }).toEqual({ agent: s.agent, recorder: e.kind === 'approval.decision' ? 'cli' : 'gateway' });
  const calls = events.filter((e) => e.kind === 'tool.call');
  expect(calls.map((e) => e.data)).toEqual(
    s.calls.map((c) =>
      expect.objectContaining({
        tool: s.tool,
        arguments: expect.objectContaining({ command: c.command }),
        ...(c.id === undefined ? {} : { client_claims: expect.objectContaining({ tool_use_id: c.id }) }),
      }),
    ),
  );
  s.calls.forEach((c, i) => {
    const call = calls[i]!;
    // What follows a call up to the next one (notes aside). Results name the call as their parent
    // when the agent's payload carries a call id to find it by (Gemini CLI's AfterTool has none).
    const trail = events.filter((e) => e.seq > call.seq && e.seq < (calls[i + 1]?.seq ?? Infinity) && e.kind !== 'note' && e.kind !== 'session.end');
    expect({ command: c.command, trail: trail.map((e) => [e.kind, e.outcome ?? '', (e.data as { decision?: string }).decision ?? '']) }).toEqual({ command: c.command, trail: TRAIL[c.verdict] });
    const linked = trail.filter((e) => e.kind === 'policy.decision' || e.kind === 'approval.request' || (e.kind === 'tool.result' && (c.id !== undefined || c.verdict === 'denied')));
    expect(linked.map((e) => [e.kind, e.parent])).toEqual(linked.map((e) => [e.kind, call.id]));
    if (c.verdict === 'denied') expect(trail[0]!.policy?.rule).toBe(RM_RF_RULE);
    if (c.verdict === 'approved') expect(trail[0]!.policy?.rule).toBe(REVIEW_RULE);
  });
  expect(events.some((e) => e.kind === 'note' && (e.data as { text?: string }).text === s.prompt)).toBe(true);
  expect(events[0]!.kind).toBe('session.start');
  expect(events.at(-1)!.kind).toBe('session.end');
  const verified = await runBin(['verify', '--store', `sqlite:${db}`]);
  expect({ code: verified.code, stderr: verified.stderr }).toEqual({ code: 0, stderr: '' });
  expect(verified.stdout).toMatch(/is intact/);
}

/**
 * Waits (while the agent runs) for the hook's approval request in the ledger, then runs the real
 * `witness approve` with the approver's key, as a person would from another terminal.
 */
export async function approveWhenRequested(db: string, keyFile: string, home: string, running: Promise<unknown>): Promise<CliResult> {
  let done = false;
  let lastError: unknown;
  void running.finally(() => (done = true));
  while (!done) {
    let request;
    try {
      request = fs.existsSync(db) ? (await readEvents(db)).find((e) => e.kind === 'approval.request') : undefined;
    } catch (e) {
      // The first hook may be creating the ledger this very moment (an empty file is not a ledger yet).
      lastError = e;
    }
    if (request !== undefined) return runBin(['approve', request.id, '--key', keyFile, '--store', `sqlite:${db}`], { env: { HOME: home } });
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('The agent ended before the hook recorded an approval request.', { cause: lastError });
}
