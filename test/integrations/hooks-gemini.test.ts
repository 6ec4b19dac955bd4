import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { GEMINI_EVENTS, geminiAnswer, geminiTool, hookAdapter, parseGemini } from '../../src/integrations/index.js';
import { REPO_ROOT } from '../helpers/ledger.js';

/** Gemini CLI's hook payloads and settings file, read and written by the pure adapter (fixtures: test/fixtures/hooks/gemini). */

const FIX = path.join(REPO_ROOT, 'test', 'fixtures', 'hooks', 'gemini');
const text = (name: string): string => fs.readFileSync(path.join(FIX, name), 'utf8');
const payload = (name: string): unknown => JSON.parse(text(`${name}.json`));
const SESSION = '0c4a7b1e-5f3d-4c2a-9b8e-2d6f1a9c3e71';
const COMMAND = "witness hook gemini --agent dev-laptop --fail closed --review-timeout 45s --budget 50s --store 'sqlite:/home/user/w.db' --installed-by=witness-hooks-install";

describe('reading Gemini CLI hook payloads', () => {
  it('reads SessionStart, BeforeAgent, AfterAgent, Notification and SessionEnd as the session, the prompt and notes', () => {
    expect(parseGemini(payload('session-start'))).toMatchObject({ type: 'session.start', agentSession: SESSION, event: 'SessionStart', source: 'startup', claims: { cwd: '/home/user/my-project' } });
    expect(parseGemini(payload('before-agent'))).toMatchObject({ type: 'prompt', prompt: 'Write a function that computes a factorial in src/factorial.ts' });
    expect(parseGemini(payload('after-agent'))).toMatchObject({
      type: 'other',
      event: 'AfterAgent',
      text: 'I wrote src/factorial.ts with a recursive factorial function.',
      claims: { stop_hook_active: false },
    });
    expect(parseGemini(payload('notification'))).toMatchObject({
      type: 'other',
      event: 'Notification',
      text: 'Tool Confirm Shell Command requires execution',
      claims: { notification_type: 'ToolPermission' },
    });
    expect(parseGemini(payload('session-end'))).toMatchObject({ type: 'session.end', reason: 'exit', claims: { timestamp: '2026-08-20T10:01:00.000Z' } });
  });

  it('reads BeforeTool and AfterTool with the tool, its input and its response, and no call id (Gemini sends none)', () => {
    const before = parseGemini(payload('before-tool-write-file'));
    expect(before).toMatchObject({ type: 'tool.before', tool: 'write_file', args: { file_path: '/home/user/my-project/src/factorial.ts' } });
    expect(before).not.toHaveProperty('callRef');
    expect(parseGemini(payload('before-tool-shell'))).toMatchObject({ type: 'tool.before', tool: 'run_shell_command', server: undefined, args: { command: 'npm test' } });
    const after = parseGemini(payload('after-tool-write-file'));
    expect(after).toMatchObject({ type: 'tool.after', tool: 'write_file', output: { llmContent: 'Successfully created and wrote to new file: /home/user/my-project/src/factorial.ts.' } });
  });

  it("takes an MCP tool's server and tool from mcp_context, and keeps which server it was but not how it is launched", () => {
    const ev = parseGemini(payload('before-tool-mcp'));
    expect(ev).toMatchObject({ type: 'tool.before', server: 'github', tool: 'create_issue', args: { title: 'factorial overflows above 170' } });
    expect(ev.claims['mcp_context']).toEqual({ server_name: 'github', tool_name: 'create_issue' });
  });

  it("reads the documentation's own test input, which has no transcript_path or timestamp", () => {
    expect(parseGemini(payload('before-tool-docs-test-input'))).toMatchObject({ type: 'tool.before', agentSession: 'test-123', tool: 'write_file', args: { file_path: 'test.txt' } });
  });

  it('names MCP tools by mcp_context first, then by either documented qualified name; built-in tools keep their own names', () => {
    expect(geminiTool('mcp_my_server_delete', { server_name: 'my_server', tool_name: 'delete' })).toEqual({ server: 'my_server', tool: 'delete' });
    expect(geminiTool('mcp_github_create_issue')).toEqual({ server: 'github', tool: 'create_issue' });
    expect(geminiTool('mcp__github__create_issue')).toEqual({ server: 'github', tool: 'create_issue' });
    for (const t of ['run_shell_command', 'write_file', 'replace', 'read_file', 'web_fetch', 'list_mcp_resources']) expect(geminiTool(t)).toEqual({ tool: t });
  });

  it('refuses what is not a Gemini CLI hook payload with one sentence', () => {
    expect(() => parseGemini({ hello: 1 })).toThrow(/^The hook payload is not a Gemini CLI hook event \(session_id: /);
    expect(() => parseGemini([])).toThrow(/not a Gemini CLI hook event/);
    expect(() => parseGemini({ session_id: 's', hook_event_name: 'BeforeTool', tool_input: {} })).toThrow('The Gemini CLI BeforeTool payload has no tool_name.');
    expect(() => parseGemini({ session_id: 's', hook_event_name: 'BeforeTool', tool_name: 'mcp_x_y', mcp_context: { server_name: 1 } })).toThrow(/mcp_context\.server_name/);
  });
});

describe("Gemini CLI's answers", () => {
  const tool = { type: 'tool.before', event: 'BeforeTool' } as const;
  it('allows with an empty JSON object on stdout and exit 0', () => {
    expect(geminiAnswer(tool, { decision: 'allow' })).toEqual({ stdout: '{}\n', stderr: '', exitCode: 0 });
    expect(geminiAnswer(undefined, { decision: 'allow' })).toEqual({ stdout: '{}\n', stderr: '', exitCode: 0 });
  });

  it('refuses a tool call (and a prompt) with decision deny and the reason, exit 0', () => {
    expect(JSON.parse(geminiAnswer(tool, { decision: 'deny', reason: 'No.' }).stdout)).toEqual({ decision: 'deny', reason: 'No.' });
    expect(JSON.parse(geminiAnswer({ type: 'prompt', event: 'BeforeAgent' }, { decision: 'deny', reason: 'No.' }).stdout)).toEqual({ decision: 'deny', reason: 'No.' });
  });

  it('blocks with exit 2 and the reason on stderr when the payload could not be read', () => {
    expect(geminiAnswer(undefined, { decision: 'deny', reason: 'Unreadable.' })).toEqual({ stdout: '', stderr: 'Unreadable.\n', exitCode: 2 });
  });

  it('does not refuse what cannot be refused (after a tool, after the agent): the user is shown the reason instead', () => {
    for (const type of ['tool.after', 'other', 'session.start', 'session.end'] as const) {
      const a = geminiAnswer({ type, event: 'X' }, { decision: 'deny', reason: 'Not recorded.' });
      expect({ type, exitCode: a.exitCode, out: JSON.parse(a.stdout) as unknown }).toEqual({ type, exitCode: 0, out: { systemMessage: 'Not recorded.' } });
    }
  });
});

describe("Gemini CLI's settings file", () => {
  const adapter = hookAdapter('gemini');

  it('lives in .gemini/settings.json of the project and of the user', () => {
    expect(adapter.settingsFile).toEqual({ project: '.gemini/settings.json', user: '.gemini/settings.json' });
  });

  it("adds one Witness hook definition to each recorded event after the user's own, with the time limit in milliseconds", () => {
    const original = text('settings-with-hooks.json');
    const change = adapter.install(original, COMMAND, 55, 'settings.json');
    expect(change.events).toEqual(GEMINI_EVENTS.map((e) => e.event));
    const doc = JSON.parse(change.text) as { general: unknown; ui: unknown; hooks: Record<string, Array<{ matcher?: string; hooks: Array<Record<string, unknown>> }>> };
    const before = JSON.parse(original) as typeof doc;
    expect(doc.general).toEqual(before.general);
    expect(doc.ui).toEqual(before.ui);
    expect(doc.hooks['BeforeTool']![0]).toEqual(before.hooks['BeforeTool']![0]);
    expect(doc.hooks['SessionStart']![0]).toEqual(before.hooks['SessionStart']![0]);
    expect(doc.hooks['BeforeTool']![1]).toEqual({
      matcher: '*',
      hooks: [{ name: 'witness', type: 'command', command: COMMAND, timeout: 55_000, description: 'Witness records this event and applies its policy' }],
    });
    expect(doc.hooks['SessionEnd']).toEqual([{ hooks: [expect.objectContaining({ command: COMMAND, timeout: 55_000 })] }]);
  });

  it('is idempotent, and uninstalling gives back the original bytes even without the backup', () => {
    for (const name of ['settings-with-hooks.json', 'settings-with-comments.json']) {
      const original = text(name);
      const once = adapter.install(original, COMMAND, 55, name);
      const twice = adapter.install(once.text, COMMAND, 55, name);
      expect(twice).toEqual({ text: once.text, events: [] });
      const removed = adapter.uninstall(once.text, name);
      expect(removed.events.sort()).toEqual(GEMINI_EVENTS.map((e) => e.event).sort());
      expect(removed.text).toBe(original);
    }
  });

  it("installing again with other options replaces Witness's hook in every event, keeping the user's comments, hooks and a hook put into Witness's definition", () => {
    const original = text('settings-with-comments.json');
    const first = adapter.install(original, COMMAND, 55, 's.json').text;
    const other = COMMAND.replace('--fail closed', '--fail open');
    const again = adapter.install(first, other, 65, 's.json');
    expect(again.events).toEqual(GEMINI_EVENTS.map((e) => e.event));
    expect(again.text).not.toContain(COMMAND);
    expect(again.text).toBe(adapter.install(original, other, 65, 's.json').text);
    expect(adapter.install(again.text, other, 65, 's.json')).toEqual({ text: again.text, events: [] });
    expect(adapter.uninstall(again.text, 's.json').text).toBe(original);
    const shared = JSON.parse(adapter.install('{}', COMMAND, 55, 's.json').text) as { hooks: Record<string, Array<{ hooks: Array<Record<string, unknown>> }>> };
    shared.hooks['AfterTool']![0]!.hooks.push({ type: 'command', command: './scripts/guard.sh' });
    const replaced = JSON.parse(adapter.install(JSON.stringify(shared, null, 2), other, 65, 's.json').text) as typeof shared;
    expect(replaced.hooks['AfterTool']).toEqual([
      { matcher: '*', hooks: [{ type: 'command', command: './scripts/guard.sh' }] },
      { matcher: '*', hooks: [expect.objectContaining({ command: other, timeout: 65_000 })] },
    ]);
  });

  it("keeps the user's comments and layout: only Witness's entries are added", () => {
    const original = text('settings-with-comments.json');
    const installed = adapter.install(original, COMMAND, 55, 'settings.json').text;
    for (const line of original.split('\n').slice(0, 9)) expect(installed).toContain(line);
    expect(installed).toContain('"hooks": [{ "name": "audit-shell", "type": "command", "command": "./scripts/audit-shell.sh" }] // logs every command');
  });

  it('creates the file from nothing, and removing the hooks then leaves no hooks behind', () => {
    const created = adapter.install(undefined, COMMAND, 55, 'settings.json');
    expect(Object.keys((JSON.parse(created.text) as { hooks: object }).hooks)).toEqual(GEMINI_EVENTS.map((e) => e.event));
    expect(JSON.parse(adapter.uninstall(created.text, 'settings.json').text)).toEqual({});
  });

  it("uninstall removes only Witness's hooks from a file the user changed since, and leaves a file without them as it is", () => {
    const installed = adapter.install(text('settings-with-hooks.json'), COMMAND, 55, 'settings.json').text;
    const edited = installed.replace('"vimMode": true', '"vimMode": false');
    expect(adapter.uninstall(edited, 'settings.json').text).toBe(text('settings-with-hooks.json').replace('"vimMode": true', '"vimMode": false'));
    expect(adapter.uninstall(text('settings-with-hooks.json'), 'settings.json')).toEqual({ text: text('settings-with-hooks.json'), events: [] });
  });

  it("keeps a hook the user put into Witness's own definition when uninstalling, and removes only Witness's", () => {
    const installed = JSON.parse(adapter.install('{}', COMMAND, 55, 's.json').text) as { hooks: Record<string, Array<{ hooks: unknown[] }>> };
    installed.hooks['BeforeTool']![0]!.hooks.push({ type: 'command', command: './scripts/guard.sh' });
    const removed = adapter.uninstall(JSON.stringify(installed, null, 2), 's.json');
    expect(removed.events).toContain('BeforeTool');
    expect(JSON.parse(removed.text)).toEqual({ hooks: { BeforeTool: [{ matcher: '*', hooks: [{ type: 'command', command: './scripts/guard.sh' }] }] } });
  });

  it('refuses a broken file with one sentence naming it and where, and a hooks entry of the wrong shape', () => {
    expect(() => adapter.install('{ "ui": { "theme": "GitHub", }, }', COMMAND, 55, '/p/.gemini/settings.json')).toThrow(
      /^\/p\/\.gemini\/settings\.json is not valid JSON \(\w+ at line 1\); fix it or move it aside before installing the hooks\.$/,
    );
    expect(() => adapter.install('[]', COMMAND, 55, 's.json')).toThrow('s.json does not hold a JSON object; fix it before installing the hooks.');
    expect(() => adapter.install('{"hooks": []}', COMMAND, 55, 's.json')).toThrow('"hooks" in s.json is not an object; fix it before installing the hooks.');
    expect(() => adapter.install('{"hooks": {"BeforeTool": {}}}', COMMAND, 55, 's.json')).toThrow('"hooks.BeforeTool" in s.json is not a list; fix it before installing the hooks.');
    expect(() => adapter.uninstall('{ nope', 's.json')).toThrow(/^s\.json is not valid JSON/);
  });

  it("leaves Gemini's older hooks switches beside the events alone", () => {
    const withSwitches = '{\n  "hooks": {\n    "enabled": true,\n    "disabled": ["witness hook gemini"]\n  }\n}\n';
    const installed = adapter.install(withSwitches, COMMAND, 55, 's.json').text;
    expect(JSON.parse(installed)).toMatchObject({ hooks: { enabled: true, disabled: ['witness hook gemini'] } });
    expect(adapter.uninstall(installed, 's.json').text).toBe(withSwitches);
  });
});
