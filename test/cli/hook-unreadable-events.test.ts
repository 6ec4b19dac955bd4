import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { requireBuild } from '../helpers/gateway.js';
import { BIN, REPO_ROOT, readEvents } from '../helpers/ledger.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/**
 * A payload `witness hook` cannot read is answered as the event it names in `hook_event_name`
 * (issue 16 review 2, L-G): under `--fail closed` a tool call or a prompt is refused, and any other
 * event goes on, with a notice that does not claim anything was refused. Exit 2 on a Stop would
 * keep Claude Code working (and on Gemini's AfterAgent force a retry). Through the real
 * bin/witness.js (build first), for every agent, as each runs its hooks.
 */

requireBuild();
const dir = tempDir('witness-hook-unreadable-');
const FIX = path.join(REPO_ROOT, 'test', 'fixtures', 'hooks');
/** A fixture with its session id taken out: a payload the adapter refuses, whose event is still named. */
const sessionless = (agent: string, name: string): string => {
  const doc = JSON.parse(fs.readFileSync(path.join(FIX, agent, `${name}.json`), 'utf8')) as Record<string, unknown>;
  delete doc['session_id'];
  delete doc['conversation_id'];
  return JSON.stringify(doc);
};

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function hook(agent: string, payload: string, db: string, fail = 'closed'): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, 'hook', agent, '--agent', 'dev-laptop', '--store', `sqlite:${db}`, '--fail', fail], { cwd: dir, env: { ...process.env, WITNESS_STORE: '' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => void (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => void (stderr += c.toString()));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(payload);
  });
}

const json = (r: Run): Record<string, unknown> => JSON.parse(r.stdout) as Record<string, unknown>;
const NOTICE = /^Witness could not record this (Stop|AfterAgent) event, which goes on as usual \(fail closed holds back only tool calls and prompts\): The hook payload is not a .+ hook event/;
const REFUSED = /^Witness could not record or check this action, so it was refused \(fail closed\): The hook payload is not a .+ hook event/;

describe('witness hook answers an unreadable payload as the event it names', () => {
  it('[R-CODING-AGENT-HOOKS] lets a Stop (AfterAgent, stop) without a session id go on under --fail closed in every agent, telling the user without saying anything was refused, and records the fault', async () => {
    const db = tempDb(dir);
    const claude = await hook('claude-code', sessionless('claude-code', 'session-end').replace('"SessionEnd"', '"Stop"'), db);
    expect(claude.code).toBe(0);
    expect(json(claude)['systemMessage']).toMatch(NOTICE);
    const codex = await hook('codex', sessionless('codex', 'stop'), db);
    expect(codex.code).toBe(0);
    expect(Object.keys(json(codex))).toEqual(['systemMessage']);
    expect(json(codex)['systemMessage']).toMatch(NOTICE);
    const gemini = await hook('gemini', sessionless('gemini', 'after-agent'), db);
    expect(gemini.code).toBe(0);
    expect(Object.keys(json(gemini))).toEqual(['systemMessage']);
    expect(json(gemini)['systemMessage']).toMatch(NOTICE);
    const cursor = await hook('cursor', sessionless('cursor', 'stop'), db);
    expect({ code: cursor.code, answer: json(cursor) }).toEqual({ code: 0, answer: {} });
    for (const r of [claude, codex, gemini, cursor]) expect(r.stdout).not.toMatch(/refused/);

    const faults = (await readEvents(db)).filter((e) => e.kind === 'error');
    expect(faults.map((e) => [e.stream, e.data?.['code'], e.data?.['hook_event']])).toEqual([
      ['witness.gateway', 'hook_failed', 'Stop'],
      ['witness.gateway', 'hook_failed', 'Stop'],
      ['witness.gateway', 'hook_failed', 'AfterAgent'],
      ['witness.gateway', 'hook_failed', 'stop'],
    ]);
  }, 60_000);

  it('[R-CODING-AGENT-HOOKS] still refuses a tool call or a prompt without a session id under --fail closed, each with its own event’s answer', async () => {
    const db = tempDb(dir);
    const claude = await hook('claude-code', sessionless('claude-code', 'pre-tool-use-bash'), db);
    expect(claude.code).toBe(0);
    expect(json(claude)).toMatchObject({ hookSpecificOutput: { hookEventName: 'PreToolUse', permissionDecision: 'deny', permissionDecisionReason: expect.stringMatching(REFUSED) as unknown } });
    const claudePrompt = await hook('claude-code', sessionless('claude-code', 'user-prompt-submit'), db);
    expect(json(claudePrompt)).toMatchObject({ decision: 'block', reason: expect.stringMatching(REFUSED) as unknown });
    // Codex reads a prompt's refusal only in a prompt's shape: a PreToolUse answer there would be a failed hook, and the prompt would go on.
    const codexPrompt = await hook('codex', sessionless('codex', 'user-prompt-submit'), db);
    expect({ code: codexPrompt.code, answer: json(codexPrompt) }).toEqual({ code: 0, answer: { decision: 'block', reason: expect.stringMatching(REFUSED) as unknown } });
    const gemini = await hook('gemini', sessionless('gemini', 'before-tool-shell'), db);
    expect({ code: gemini.code, answer: json(gemini) }).toEqual({ code: 0, answer: { decision: 'deny', reason: expect.stringMatching(REFUSED) as unknown } });
    const cursor = await hook('cursor', sessionless('cursor', 'pre-tool-use-shell'), db);
    expect(json(cursor)).toMatchObject({ permission: 'deny', agent_message: expect.stringMatching(REFUSED) as unknown });
    // --fail open lets all of them go on.
    const open = await hook('claude-code', sessionless('claude-code', 'pre-tool-use-bash'), db, 'open');
    expect({ code: open.code, stdout: open.stdout }).toEqual({ code: 0, stdout: '' });
  }, 60_000);
});
