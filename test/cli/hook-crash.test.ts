import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/ledger.js';
import { requireBuild } from '../helpers/gateway.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * `--fail closed` must hold when Witness itself cannot start or dies while it runs (issue 16,
 * review round 2, H-A): Claude Code, Codex and Gemini CLI take exit 1 with nothing on stdout as a
 * hook that failed and run the tool anyway. Each case runs the real bin/witness.js from a copy of
 * the built package (bin/, dist/, package.json, node_modules linked) with one part broken, so the
 * real dist/ and node_modules, which other test files use at the same time, stay as they are.
 */

requireBuild();
const root = tempDir('witness-hook-crash-');
const work = path.join(root, 'work');
fs.mkdirSync(work);
const policyFile = path.join(work, 'policy.yaml');
fs.writeFileSync(policyFile, 'version: 1\ndefault: allow\nrules:\n  - id: no-rm\n    match: { tool: "*" }\n    when: args.command contains "rm -rf"\n    effect: deny\n');

/** A copy of the built package at `name`, node_modules linked unless `modules` is given, broken by `breakIt`. */
function pkg(name: string, breakIt: (dir: string) => void, modules?: (dir: string) => void): string {
  const dir = path.join(root, name);
  fs.mkdirSync(dir);
  for (const part of ['bin', 'dist', 'package.json']) fs.cpSync(path.join(REPO_ROOT, part), path.join(dir, part), { recursive: true });
  if (modules === undefined) fs.symlinkSync(path.join(REPO_ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  else modules(dir);
  breakIt(dir);
  return dir;
}

/** Made newer than dist/cli/commands/hook-main.js, so bin/witness.js takes it (it skips a bundle older than the compiled command). */
function writeBundle(dir: string, text: string): void {
  const file = path.join(dir, 'dist', 'hook', 'hook.cjs');
  fs.writeFileSync(file, text);
  fs.rmSync(`${file}.cache`, { force: true });
  const later = new Date(Date.now() + 60_000);
  fs.utimesSync(file, later, later);
}

/**
 * node_modules with every package but better-sqlite3 linked, and a better-sqlite3 whose native
 * addon is not one this Node can load: what a Node upgrade leaves behind until `npm rebuild`
 * (there the message is NODE_MODULE_VERSION; here dlopen refuses a file that is no shared object).
 */
function brokenAddon(dir: string): void {
  const nm = path.join(dir, 'node_modules');
  fs.mkdirSync(nm);
  for (const entry of fs.readdirSync(path.join(REPO_ROOT, 'node_modules'))) {
    if (entry !== 'better-sqlite3') fs.symlinkSync(path.join(REPO_ROOT, 'node_modules', entry), path.join(nm, entry));
  }
  const addon = path.join(nm, 'better-sqlite3');
  fs.mkdirSync(path.join(addon, 'build', 'Release'), { recursive: true });
  fs.writeFileSync(path.join(addon, 'package.json'), JSON.stringify({ name: 'better-sqlite3', version: '12.0.0', main: 'index.js' }));
  fs.writeFileSync(path.join(addon, 'build', 'Release', 'better_sqlite3.node'), 'not a shared object\n');
  fs.writeFileSync(path.join(addon, 'index.js'), "module.exports = require('./build/Release/better_sqlite3.node');\n");
}

const PACKAGES = {
  /** The bundle cut short: a SyntaxError when bin/witness.js compiles it. */
  corrupt: pkg('corrupt', (dir) => writeBundle(dir, fs.readFileSync(path.join(REPO_ROOT, 'dist', 'hook', 'hook.cjs'), 'utf8').slice(0, 100_000))),
  /** better-sqlite3 that cannot load, run from the compiled modules (no bundle): the hook's import of its store fails. */
  addonUnbundled: pkg('addon-unbundled', (dir) => fs.rmSync(path.join(dir, 'dist', 'hook'), { recursive: true }), brokenAddon),
  /** better-sqlite3 that cannot load, run from the bundle. */
  addonBundled: pkg('addon-bundled', () => undefined, brokenAddon),
  /** A hook that reads its payload as the real one does, then dies of an exception nothing catches. */
  uncaught: pkg('uncaught', (dir) =>
    writeBundle(
      dir,
      `exports.guardStandardStreams = () => {};
exports.outputFailure = () => undefined;
exports.main = async () => {
  const chunks = [];
  process.stdin.on('data', (c) => chunks.push(c));
  await new Promise((resolve) => process.stdin.on('end', resolve));
  setTimeout(() => { throw new Error('the ledger thread fell over'); }, 10);
  return new Promise(() => {});
};
`,
    ),
  ),
  /** The same, dying of a rejected promise nothing awaits. */
  rejected: pkg('rejected', (dir) =>
    writeBundle(
      dir,
      `exports.guardStandardStreams = () => {};
exports.outputFailure = () => undefined;
exports.main = async () => {
  process.stdin.on('data', () => {});
  await new Promise((resolve) => process.stdin.on('end', resolve));
  void Promise.reject(new Error('a write nobody awaited failed'));
  return new Promise((resolve) => setTimeout(() => resolve(0), 2000));
};
`,
    ),
  ),
};

type Agent = 'claude-code' | 'codex' | 'cursor' | 'gemini';
const rmRf = { command: 'rm -rf /x' };
/** Per agent: a tool call about to run (refusable) and the end of a turn (not refusable: exit 2 there would keep the agent working). */
const PAYLOADS: Record<Agent, { gate: object; end: object }> = {
  'claude-code': {
    gate: { session_id: 's1', transcript_path: '/x', cwd: work, hook_event_name: 'PreToolUse', tool_name: 'Bash', tool_input: rmRf, tool_use_id: 't1' },
    end: { session_id: 's1', transcript_path: '/x', cwd: work, hook_event_name: 'Stop', stop_hook_active: false },
  },
  codex: {
    gate: {
      session_id: 's1',
      transcript_path: null,
      cwd: work,
      hook_event_name: 'PreToolUse',
      model: 'm',
      turn_id: 't',
      tool_name: 'Bash',
      tool_input: rmRf,
      tool_use_id: 't1',
      permission_mode: 'default',
    },
    end: { session_id: 's1', transcript_path: null, cwd: work, hook_event_name: 'Stop', model: 'm', turn_id: 't', stop_hook_active: false, last_assistant_message: 'done' },
  },
  cursor: {
    gate: { conversation_id: 'c1', generation_id: 'g', hook_event_name: 'preToolUse', tool_name: 'Shell', tool_input: rmRf, tool_use_id: 't1', cwd: work, workspace_roots: [work] },
    end: { conversation_id: 'c1', generation_id: 'g', hook_event_name: 'stop', status: 'completed', loop_count: 0 },
  },
  gemini: {
    gate: { session_id: 's1', transcript_path: '/x', cwd: work, hook_event_name: 'BeforeTool', timestamp: '2026-12-07T00:00:00Z', tool_name: 'run_shell_command', tool_input: rmRf },
    end: { session_id: 's1', transcript_path: '/x', cwd: work, hook_event_name: 'AfterAgent', timestamp: '2026-12-07T00:00:00Z', prompt: 'p', prompt_response: 'done' },
  },
};
const AGENTS = Object.keys(PAYLOADS) as Agent[];

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

let n = 0;
function hook(pkgDir: string, agent: Agent, payload: object | string, fail: 'open' | 'closed'): Promise<Run> {
  n += 1;
  const args = [path.join(pkgDir, 'bin', 'witness.js'), 'hook', agent, '--agent', 'dev', '--store', `sqlite:${path.join(work, `l${n}.db`)}`, '--policy', policyFile, `--fail=${fail}`];
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd: work, env: { ...process.env, WITNESS_STORE: '' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => void (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => void (stderr += c.toString()));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(typeof payload === 'string' ? payload : JSON.stringify(payload));
  });
}

/** Whether `agent` reads this answer as a refusal of what it was about to do (exit 2, or its own deny JSON on exit 0). */
function refused(agent: Agent, r: Run): boolean {
  if (r.code === 2) return true;
  if (r.code !== 0 || r.stdout.trim() === '') return false;
  const out = JSON.parse(r.stdout) as Record<string, unknown> & { hookSpecificOutput?: { permissionDecision?: string } };
  if (agent === 'cursor') return out['permission'] === 'deny' || out['continue'] === false;
  if (agent === 'gemini') return out['decision'] === 'deny' || out['decision'] === 'block';
  return out.hookSpecificOutput?.permissionDecision === 'deny' || out['decision'] === 'block';
}

describe('witness hook answers as --fail says when it cannot start', () => {
  for (const agent of AGENTS) {
    it(`a corrupt bundle refuses a ${agent} tool call under --fail closed with exit 2 and the reason`, async () => {
      const r = await hook(PACKAGES.corrupt, agent, PAYLOADS[agent].gate, 'closed');
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/Witness could not start \(.*SyntaxError.*\), so this tool call was refused \(fail closed\)/);
      expect(r.stderr).toContain(`witness hook ${agent} --help`);
    });

    it(`a corrupt bundle lets a ${agent} tool call run under --fail open, saying why on stderr`, async () => {
      const r = await hook(PACKAGES.corrupt, agent, PAYLOADS[agent].gate, 'open');
      expect(r.code).toBe(0);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/Witness could not start .*fail open/);
    });

    it(`a corrupt bundle lets the ${agent} turn end under --fail closed (an event that cannot be refused), saying why on stderr`, async () => {
      const r = await hook(PACKAGES.corrupt, agent, PAYLOADS[agent].end, 'closed');
      expect(r.code).toBe(0);
      expect(r.stderr).toMatch(/Witness could not start .*nothing was recorded/);
    });

    it(`a better-sqlite3 that cannot load refuses a ${agent} tool call under --fail closed, bundled and unbundled`, async () => {
      for (const p of [PACKAGES.addonBundled, PACKAGES.addonUnbundled]) {
        const r = await hook(p, agent, PAYLOADS[agent].gate, 'closed');
        expect(refused(agent, r), `${p}: ${JSON.stringify(r)}`).toBe(true);
        expect(r.stdout + r.stderr).toMatch(/better_sqlite3\.node|better-sqlite3/);
      }
    });

    it(`an exception nothing catches after the ${agent} payload was read refuses the tool call under --fail closed and lets the turn end`, async () => {
      const gate = await hook(PACKAGES.uncaught, agent, PAYLOADS[agent].gate, 'closed');
      expect(gate.code).toBe(2);
      expect(gate.stderr).toMatch(/Witness failed while it ran \(.*the ledger thread fell over.*\), so this tool call was refused \(fail closed\)/);
      const end = await hook(PACKAGES.uncaught, agent, PAYLOADS[agent].end, 'closed');
      expect(end.code).toBe(0);
      expect(end.stderr).toContain('the ledger thread fell over');
    });
  }

  it('a better-sqlite3 that cannot load is the hook’s own store fault when bundled: its own deny, naming the store', async () => {
    const r = await hook(PACKAGES.addonBundled, 'claude-code', PAYLOADS['claude-code'].gate, 'closed');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ hookSpecificOutput: { permissionDecision: 'deny' } });
  });

  it('a better-sqlite3 that cannot load lets a tool call run under --fail open', async () => {
    for (const p of [PACKAGES.addonBundled, PACKAGES.addonUnbundled]) {
      // A call the policy allows: under --fail open a fault lets only those run.
      const r = await hook(p, 'codex', { ...PAYLOADS.codex.gate, tool_input: { command: 'ls' } }, 'open');
      expect(refused('codex', r), JSON.stringify(r)).toBe(false);
      expect(r.code).toBe(0);
    }
  });

  it('a rejected promise nothing awaits refuses a tool call under --fail closed and lets it run under --fail open', async () => {
    const closed = await hook(PACKAGES.rejected, 'gemini', PAYLOADS.gemini.gate, 'closed');
    expect(closed.code).toBe(2);
    expect(closed.stderr).toContain('a write nobody awaited failed');
    const open = await hook(PACKAGES.rejected, 'gemini', PAYLOADS.gemini.gate, 'open');
    expect(open.code).toBe(0);
  });

  it('a payload that is not JSON is refused under --fail closed (it may have been a tool call); one that is JSON needs only its event name', async () => {
    const cut = await hook(PACKAGES.corrupt, 'claude-code', '{"session_id":"s","hook_event_name":"Stop","tool_input":{"x":', 'closed');
    expect(cut.code).toBe(2);
    expect(cut.stderr).toContain('it could not be told whether it was a tool call');
    const bare = await hook(PACKAGES.corrupt, 'claude-code', '{"hook_event_name":"Stop"}', 'closed');
    expect(bare.code).toBe(0);
    const prompt = await hook(PACKAGES.corrupt, 'gemini', '{"hook_event_name":"BeforeAgent"}', 'closed');
    expect(prompt.code).toBe(2);
    expect(prompt.stderr).toContain('so this prompt was refused (fail closed)');
  });

  it('--fail given as two words and no --fail at all (closed, the default) are read as witness hook reads them', async () => {
    const bin = path.join(PACKAGES.corrupt, 'bin', 'witness.js');
    const run = (flags: string[]): Promise<number> =>
      new Promise((resolve) => {
        const child = spawn(process.execPath, [bin, 'hook', 'codex', '--agent', 'dev', ...flags], { cwd: work, stdio: ['pipe', 'ignore', 'ignore'] });
        child.on('close', (code) => resolve(code ?? -1));
        child.stdin.end(JSON.stringify(PAYLOADS.codex.gate));
      });
    expect(await run(['--fail', 'open'])).toBe(0);
    expect(await run([])).toBe(2);
  });
});
