import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CURSOR_EVENTS, CURSOR_HOOK_MARKER, addCursorHooks, cursorAnswer, hookAdapter, parseCursor, removeCursorHooks } from '../../src/integrations/index.js';
import { REPO_ROOT } from '../helpers/ledger.js';

/**
 * The Cursor adapter on the documentation's own payloads (test/fixtures/hooks/cursor, see its
 * README): what each payload becomes, what Cursor is answered for each verdict, and the pure edit
 * of `.cursor/hooks.json`.
 */

const FIX = path.join(REPO_ROOT, 'test', 'fixtures', 'hooks', 'cursor');
const text = (name: string): string => fs.readFileSync(path.join(FIX, name), 'utf8');
const payload = (name: string): Record<string, unknown> => JSON.parse(text(`${name}.json`)) as Record<string, unknown>;
const SESSION = '668320d2-2fd8-4888-b33c-2a466fec86e7';
const COMMAND = "witness hook cursor --agent dev-laptop --fail closed --review-timeout 45s --budget 50s --store 'sqlite:/home/dev/witness.db' --installed-by=witness-hooks-install";

describe('parseCursor', () => {
  it('reads every documented payload in the fixtures folder into a neutral event', () => {
    const files = fs.readdirSync(FIX).filter((f) => f.endsWith('.json') && !f.startsWith('hooks-'));
    expect(files.length).toBeGreaterThanOrEqual(12);
    for (const f of files) {
      const ev = parseCursor(JSON.parse(text(f)));
      expect({ f, session: ev.agentSession }).toEqual({ f, session: SESSION });
      expect(ev.event).toBe(JSON.parse(text(f)).hook_event_name);
    }
  });

  it('reads sessionStart as a session start, keeping the composer mode and the rest of what Cursor says about itself as claims', () => {
    const ev = parseCursor(payload('session-start'));
    expect(ev).toMatchObject({ type: 'session.start', event: 'sessionStart', agentSession: SESSION });
    expect(ev.claims).toMatchObject({ composer_mode: 'agent', is_background_agent: false, cursor_version: '1.7.2', workspace_roots: ['/project'], model: 'claude-opus-4-7-thinking-max' });
    expect(ev.claims).not.toHaveProperty('user_email');
  });

  it('reads beforeSubmitPrompt as a prompt and sessionEnd as the end with its reason', () => {
    expect(parseCursor(payload('before-submit-prompt'))).toMatchObject({ type: 'prompt', prompt: 'Install the dependencies and run the tests' });
    expect(parseCursor(payload('session-end'))).toMatchObject({ type: 'session.end', reason: 'completed' });
  });

  it('reads a Shell preToolUse as a Shell tool call whose arguments are tool_input and whose tool_use_id is kept to link the result', () => {
    const ev = parseCursor(payload('pre-tool-use-shell'));
    expect(ev).toMatchObject({ type: 'tool.before', tool: 'Shell', args: { command: 'npm install', working_directory: '/project' }, callRef: 'abc123' });
    expect(ev.claims).toMatchObject({ tool_use_id: 'abc123', cwd: '/project' });
    expect((ev as { server?: string }).server).toBeUndefined();
  });

  it('reads postToolUse as the result, with the JSON-stringified tool_output parsed back', () => {
    expect(parseCursor(payload('post-tool-use-shell'))).toMatchObject({ type: 'tool.after', tool: 'Shell', callRef: 'abc123', output: { exitCode: 0, stdout: 'added 212 packages' } });
    const plain = parseCursor({ ...payload('post-tool-use-shell'), tool_output: 'not json' });
    expect(plain).toMatchObject({ type: 'tool.after', output: 'not json' });
  });

  it('reads beforeMCPExecution as a call of tool tool_name on server mcp_server_name, with the JSON params string parsed', () => {
    expect(parseCursor(payload('before-mcp-execution'))).toMatchObject({
      type: 'tool.before',
      server: 'github',
      tool: 'create_issue',
      args: { owner: 'acme', repo: 'app', title: 'Factorial overflows' },
    });
    expect(parseCursor(payload('before-mcp-execution-stdio'))).toMatchObject({ type: 'tool.before', server: 'postgres', tool: 'query', args: { sql: 'SELECT id FROM orders LIMIT 5' } });
    expect(parseCursor(payload('after-mcp-execution'))).toMatchObject({
      type: 'tool.after',
      server: 'github',
      tool: 'create_issue',
      output: { content: [{ type: 'text', text: 'Created issue #42' }] },
    });
  });

  it("keeps neither an MCP server's launch command nor its URL, which can carry credentials", () => {
    for (const name of ['before-mcp-execution', 'before-mcp-execution-stdio', 'after-mcp-execution']) {
      const claims = parseCursor(payload(name)).claims;
      expect(claims).not.toHaveProperty('command');
      expect(claims).not.toHaveProperty('url');
      expect(claims).not.toHaveProperty('mcp_server_url');
    }
  });

  it('refuses a beforeMCPExecution without mcp_server_name, as the documentation advises, since its server cannot be told', () => {
    const { mcp_server_name: _, ...old } = payload('before-mcp-execution');
    expect(() => parseCursor(old)).toThrow(/beforeMCPExecution payload has no mcp_server_name/);
  });

  it('reads the preToolUse and postToolUse of an MCP tool as notes, since beforeMCPExecution and afterMCPExecution record it with its server', () => {
    const ev = parseCursor(payload('pre-tool-use-mcp'));
    expect(ev.type).toBe('other');
    expect((ev as { text?: string }).text).toMatch(/MCP:create_issue.*beforeMCPExecution/);
    expect(parseCursor({ ...payload('post-tool-use-shell'), tool_name: 'MCP:create_issue' }).type).toBe('other');
  });

  it('reads postToolUseFailure and stop as notes saying what happened', () => {
    const failed = parseCursor(payload('post-tool-use-failure'));
    expect(failed).toMatchObject({ type: 'other', text: 'The Shell call ghi789 failed (timeout): Command timed out after 30s' });
    expect(parseCursor(payload('stop'))).toMatchObject({ type: 'other', text: 'The Cursor agent loop ended (completed).' });
    expect(parseCursor({ ...payload('stop'), hook_event_name: 'afterAgentThought' })).toMatchObject({ type: 'other', event: 'afterAgentThought' });
  });

  it('takes the session from session_id when conversation_id is missing, and refuses a payload with neither', () => {
    const { conversation_id: _, ...start } = payload('session-start');
    expect(parseCursor(start).agentSession).toBe(SESSION);
    const { conversation_id: __, ...pre } = payload('pre-tool-use-shell');
    expect(() => parseCursor(pre)).toThrow(/^The hook payload is not a Cursor hook event \(it has no conversation_id\)\.$/);
  });

  it('refuses what is not a Cursor hook event with one sentence', () => {
    expect(() => parseCursor({ hello: 1 })).toThrow(/^The hook payload is not a Cursor hook event \(hook_event_name: /);
    expect(() => parseCursor([])).toThrow(/not a Cursor hook event/);
    expect(() => parseCursor({ ...payload('pre-tool-use-shell'), tool_name: undefined })).toThrow(/^The Cursor preToolUse payload has no tool_name\.$/);
  });
});

describe('cursorAnswer', () => {
  const pre = parseCursor(payload('pre-tool-use-shell'));
  const mcp = parseCursor(payload('before-mcp-execution'));
  const prompt = parseCursor(payload('before-submit-prompt'));
  const deny = { decision: 'deny', reason: 'Witness policy rule no-rm-rf denies this Shell call.' } as const;

  it('answers allow with an empty JSON object (a prompt with continue: true), never with permission "allow", which would skip Cursor\'s own approval', () => {
    expect(cursorAnswer(pre, { decision: 'allow' })).toEqual({ stdout: '{}\n', stderr: '', exitCode: 0 });
    expect(cursorAnswer(mcp, { decision: 'allow' })).toEqual({ stdout: '{}\n', stderr: '', exitCode: 0 });
    expect(cursorAnswer(prompt, { decision: 'allow' })).toEqual({ stdout: '{"continue":true}\n', stderr: '', exitCode: 0 });
    expect(cursorAnswer(undefined, { decision: 'allow' })).toEqual({ stdout: '{}\n', stderr: '', exitCode: 0 });
  });

  it('refuses a tool call with permission "deny" and the reason for both the user and the agent', () => {
    for (const ev of [pre, mcp]) {
      const a = cursorAnswer(ev, deny);
      expect(a.exitCode).toBe(0);
      expect(JSON.parse(a.stdout)).toEqual({ permission: 'deny', user_message: deny.reason, agent_message: deny.reason });
    }
  });

  it('refuses a prompt with continue: false and the reason', () => {
    expect(JSON.parse(cursorAnswer(prompt, deny).stdout)).toEqual({ continue: false, user_message: deny.reason });
  });

  it('refuses a payload it could not read with exit 2, which blocks whatever event it was', () => {
    const a = cursorAnswer(undefined, deny);
    expect(a.exitCode).toBe(2);
    expect(a.stderr).toBe(`${deny.reason}\n`);
    expect(JSON.parse(a.stdout)).toMatchObject({ permission: 'deny' });
  });

  it('has nothing to refuse after the fact or at a session boundary, so answers those with an empty object', () => {
    for (const name of ['post-tool-use-shell', 'session-start', 'session-end', 'stop']) expect(cursorAnswer(parseCursor(payload(name)), deny)).toEqual({ stdout: '{}\n', stderr: '', exitCode: 0 });
  });

  it('is the answer of the registered cursor adapter', () => {
    const a = hookAdapter('cursor');
    expect(a.kind).toBe('cursor');
    expect(a.settingsFile).toEqual({ project: '.cursor/hooks.json', user: '.cursor/hooks.json' });
    expect(a.answer(pre, deny)).toEqual(cursorAnswer(pre, deny));
  });
});

describe('addCursorHooks / removeCursorHooks', () => {
  const original = text('hooks-with-other-hooks.json');
  type Doc = { version: number; hooks: Record<string, Array<Record<string, unknown>>> };

  it("adds one entry per recorded event after the user's own, with the timeout, and failClosed on the events that gate when the command fails closed", () => {
    const change = addCursorHooks(original, COMMAND, 55, 'hooks.json');
    expect(change.events).toEqual(CURSOR_EVENTS.map((e) => e.event));
    const doc = JSON.parse(change.text) as Doc;
    const before = JSON.parse(original) as Doc;
    expect(doc.version).toBe(1);
    for (const [event, entries] of Object.entries(before.hooks)) expect(doc.hooks[event]!.slice(0, entries.length)).toEqual(entries);
    expect(doc.hooks['preToolUse']).toEqual([...before.hooks['preToolUse']!, { command: COMMAND, timeout: 55, failClosed: true }]);
    expect(doc.hooks['beforeMCPExecution']).toEqual([{ command: COMMAND, timeout: 55, failClosed: true }]);
    expect(doc.hooks['beforeSubmitPrompt']).toEqual([{ command: COMMAND, timeout: 55, failClosed: true }]);
    expect(doc.hooks['postToolUse']).toEqual([{ command: COMMAND, timeout: 55 }]);
    expect(doc.hooks['stop']).toEqual([...before.hooks['stop']!, { command: COMMAND, timeout: 55 }]);
    expect(change.text.endsWith('}\n')).toBe(true);
  });

  it('leaves failClosed out when the command fails open, so a crashed hook lets Cursor go on', () => {
    const doc = JSON.parse(addCursorHooks(undefined, COMMAND.replace('--fail closed', '--fail open'), 55, 'hooks.json').text) as Doc;
    for (const entries of Object.values(doc.hooks)) expect(entries[0]).not.toHaveProperty('failClosed');
  });

  it('creates the file as version 1 when there is none, and adds version 1 to a file without it', () => {
    expect(Object.keys(JSON.parse(addCursorHooks(undefined, COMMAND, 55, 'hooks.json').text) as object)).toEqual(['version', 'hooks']);
    const doc = JSON.parse(addCursorHooks('{"hooks":{"stop":[{"command":"./audit.sh"}]}}', COMMAND, 55, 'hooks.json').text) as Doc;
    expect(doc.version).toBe(1);
    expect(doc.hooks['stop']![0]).toEqual({ command: './audit.sh' });
  });

  it('is idempotent: a second install changes nothing and names no event', () => {
    const once = addCursorHooks(original, COMMAND, 55, 'hooks.json').text;
    expect(addCursorHooks(once, COMMAND, 55, 'hooks.json')).toEqual({ text: once, events: [] });
    expect(once.match(new RegExp(CURSOR_HOOK_MARKER, 'g'))!.length).toBe(CURSOR_EVENTS.length);
  });

  it("replaces Witness's entry when installed again with other options, keeping the user's entries where they were", () => {
    const once = addCursorHooks(original, COMMAND, 55, 'hooks.json').text;
    const other = COMMAND.replace('--budget 50s', '--budget 20s');
    const again = addCursorHooks(once, other, 25, 'hooks.json');
    expect(again.events).toEqual(CURSOR_EVENTS.map((e) => e.event));
    const doc = JSON.parse(again.text) as Doc;
    expect(doc.hooks['preToolUse']).toEqual([
      { command: '.cursor/hooks/validate-tool.sh', matcher: 'Shell|Read|Write' },
      { command: other, timeout: 25, failClosed: true },
    ]);
    expect(again.text).not.toContain('--budget 50s');
  });

  it("removes only Witness's entries, and the events and hooks that leaves empty", () => {
    const installed = addCursorHooks(original, COMMAND, 55, 'hooks.json').text;
    const removed = removeCursorHooks(installed, 'hooks.json');
    expect(removed.events.sort()).toEqual(CURSOR_EVENTS.map((e) => e.event).sort());
    expect(JSON.parse(removed.text)).toEqual(JSON.parse(original));
    expect(JSON.parse(removeCursorHooks(addCursorHooks(undefined, COMMAND, 55, 'hooks.json').text, 'hooks.json').text)).toEqual({ version: 1 });
    expect(removeCursorHooks(original, 'hooks.json')).toEqual({ text: original, events: [] });
  });

  it('refuses, with one sentence naming the file, a file that is not JSON, not an object, of another version, or with hooks of the wrong shape', () => {
    expect(() => addCursorHooks('{"version": 1, "hooks": {', COMMAND, 55, '/p/.cursor/hooks.json')).toThrow(
      /^\/p\/\.cursor\/hooks\.json is not valid JSON \(.*\); fix it or move it aside before installing the hooks\.$/,
    );
    expect(() => addCursorHooks('[]', COMMAND, 55, 'hooks.json')).toThrow(/^hooks\.json does not hold a JSON object; fix it before installing the hooks\.$/);
    expect(() => addCursorHooks('{"version":2,"hooks":{}}', COMMAND, 55, 'hooks.json')).toThrow(/^hooks\.json is hooks file version 2; Witness writes version 1 hooks, so it was left as it is\.$/);
    expect(() => addCursorHooks('{"version":1,"hooks":[]}', COMMAND, 55, 'hooks.json')).toThrow(/^"hooks" in hooks\.json is not an object; fix it before installing the hooks\.$/);
    expect(() => addCursorHooks('{"version":1,"hooks":{"stop":{}}}', COMMAND, 55, 'hooks.json')).toThrow(/^"hooks\.stop" in hooks\.json is not a list; fix it before installing the hooks\.$/);
    expect(() => removeCursorHooks('not json', 'hooks.json')).toThrow(/is not valid JSON/);
  });
});
