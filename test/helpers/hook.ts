import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { generateKey } from '../../src/core/index.js';
import { REPO_ROOT } from './ledger.js';

/** What a coding agent reads from a hook process: its exit code, stdout and stderr. */
export interface HookRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `argv` (a `witness hook …` command line) as a coding agent runs its hook: `payload` on
 * stdin, the answer read when the process ends. `onErr` sees stderr as it arrives (an approval
 * request id is logged there). WITNESS_STORE is cleared so only the command's own --store counts.
 */
export function runHook(argv: string[], payload: string, o: { cwd: string; env?: NodeJS.ProcessEnv; onErr?: (stderr: string) => void }): Promise<HookRun> {
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), { cwd: o.cwd, env: o.env ?? { ...process.env, WITNESS_STORE: '' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => void (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
      o.onErr?.(stderr);
    });
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(payload);
  });
}

/** One documented payload of `agent` (test/fixtures/hooks/<agent>/<name>.json), as text. */
export const hookFixture = (agent: string, name: string): string => fs.readFileSync(path.join(REPO_ROOT, 'test', 'fixtures', 'hooks', agent, `${name}.json`), 'utf8');

/**
 * The hook tests' policy in `dir`: alice@corp (whose signing key is written beside it) approves;
 * `rules` are YAML lines under `rules:`. Returns the files and alice's keys.
 */
export function writeHookPolicy(dir: string, rules: string[]): { policyFile: string; keyFile: string; signerKey: string; verifierKey: string } {
  const { signerKey, verifierKey } = generateKey('alice@corp');
  const keyFile = path.join(dir, 'alice@corp.key');
  fs.writeFileSync(keyFile, `${signerKey}\n`, { mode: 0o600 });
  const policyFile = path.join(dir, 'policy.yaml');
  fs.writeFileSync(policyFile, ['version: 1', 'default: allow', 'approvers:', '  - id: alice@corp', `    key: "${verifierKey}"`, 'rules:', ...rules, ''].join('\n'));
  return { policyFile, keyFile, signerKey, verifierKey };
}

/** A deny rule for recursive deletes through `shellTool` (each agent names its shell tool its own way), and a review rule for one MCP tool. */
export function shellAndMcpRules(shellTool: string, review: { id: string; server: string; tool: string }): string[] {
  return [
    '  - id: no-rm-rf',
    `    match: { tool: ${shellTool} }`,
    '    when: args.command contains "rm -rf"',
    '    effect: deny',
    '    reason: Recursive deletes are not allowed.',
    `  - id: ${review.id}`,
    `    match: { server: ${review.server}, tool: ${review.tool} }`,
    '    effect: review',
  ];
}
