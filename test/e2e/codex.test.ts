import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBuild } from '../helpers/gateway.js';
import { REPO_ROOT, runBin } from '../helpers/ledger.js';
import { tempDir } from '../helpers/tmp.js';
import { REVIEWED_COMMAND, RM_RF_REASON, RM_RF_RULE, WITNESS_COMMAND, approveWhenRequested, baseEnv, expectHookSession, runAgent, stopAgents, writeApproverKey, writeRmRfPolicy } from './agent-cli.js';
import { sseFile, startModelServer, type Answer, type ModelRequest, type ModelServer } from './model-server.js';

/**
 * The real Codex CLI (`@openai/codex`, a devDependency) run non-interactively (`codex exec`) in a
 * temporary project whose `.codex/hooks.json` the real `witness hooks install codex --project`
 * wrote, against a local stand-in for the OpenAI Responses API (a custom model provider in
 * `$HOME/.codex/config.toml`) that streams recorded answers (test/fixtures/e2e/codex): an
 * `exec_command` call the policy allows, one it denies, one it holds until a concurrent `witness
 * approve`, then a final text.
 */

requireBuild();
const FIX = path.join(REPO_ROOT, 'test', 'fixtures', 'e2e', 'codex');
const ECHO_ID = 'call_E2EExecEcho0000000001';
const RM_ID = 'call_E2EExecRm000000000002';
const TOUCH_ID = 'call_E2EExecTouch000000003';
const PROMPT = 'Write hi to out.txt, remove the keep directory, then create approved.txt.';

interface Item {
  type?: string;
  call_id?: string;
  output?: unknown;
}

const items = (r: ModelRequest): Item[] => (r.body as { input?: Item[] } | undefined)?.input ?? [];
const outputs = (r: ModelRequest): Item[] => items(r).filter((i) => i.type === 'function_call_output');

/** The model's script: which recorded answer follows how many command outputs Codex has sent back. */
function answer(r: ModelRequest): Answer {
  if (r.method !== 'POST' || !r.url.startsWith('/v1/responses')) return { status: 404, contentType: 'application/json', body: JSON.stringify({ error: { message: `No ${r.method} ${r.url} here.` } }) };
  const turn = ['1-exec-echo', '2-exec-rm', '3-exec-review', '4-final-text'][outputs(r).length];
  if (turn === undefined) throw new Error('The script has no fifth turn.');
  return sseFile(path.join(FIX, `${turn}.sse`));
}

describe('Codex (the real CLI) with witness hook installed', () => {
  const dir = tempDir('witness-e2e-codex-');
  const home = path.join(dir, 'home');
  const project = path.join(dir, 'project');
  const db = path.join(dir, 'witness.db');
  let model: ModelServer;

  beforeAll(async () => {
    model = await startModelServer(answer);
    fs.mkdirSync(path.join(home, '.codex'), { recursive: true });
    fs.mkdirSync(path.join(project, 'keep'), { recursive: true });
    fs.writeFileSync(path.join(project, 'keep', 'notes.txt'), 'still here\n');
    // The user's own Codex configuration (https://developers.openai.com/codex/config-sample,
    // "model_providers"): the local server as a Responses-API provider whose key is read from an
    // environment variable; the project trusted, since Codex loads a project's .codex/ layer, hooks
    // included, only then (https://developers.openai.com/codex/config-basic); no update check,
    // analytics or plugins (Codex 0.171.0 syncs its curated plugin list from api.github.com and
    // chatgpt.com at start, seen as DNS look-ups under strace), so the model server is the only
    // thing Codex reaches.
    fs.writeFileSync(
      path.join(home, '.codex', 'config.toml'),
      [
        'model = "gpt-5-codex"',
        'model_provider = "e2e"',
        'check_for_update_on_startup = false',
        '',
        '[model_providers.e2e]',
        'name = "Local model server"',
        `base_url = "${model.origin}/v1"`,
        'env_key = "E2E_MODEL_API_KEY"',
        'wire_api = "responses"',
        '',
        `[projects.${JSON.stringify(fs.realpathSync(project))}]`,
        'trust_level = "trusted"',
        '',
        '[analytics]',
        'enabled = false',
        '',
        '[features]',
        'plugins = false',
        '',
      ].join('\n'),
    );
  });
  afterAll(async () => {
    stopAgents();
    await model.close();
  });

  it('[R-CODING-AGENT-HOOKS] runs the allowed command and records it, blocks `rm -rf` with the policy reason the model then reads, runs a held call once `witness approve` releases it, and the ledger verifies', async () => {
    const approver = writeApproverKey(dir);
    const policy = writeRmRfPolicy(dir, ['Bash'], approver);
    // Under the test's HOME and state directory, as the agent runs: whatever install keeps for the user stays in the temporary directory.
    const install = await runBin(['hooks', 'install', 'codex', '--project', '--agent', 'e2e-laptop', '--policy', policy, '--store', `sqlite:${db}`, '--command', WITNESS_COMMAND], {
      cwd: project,
      env: { HOME: home, WITNESS_STATE_DIR: path.join(home, '.witness') },
    });
    expect(install.code).toBe(0);
    expect(fs.existsSync(path.join(project, '.codex', 'hooks.json'))).toBe(true);

    // --dangerously-bypass-hook-trust: Codex runs a hook a person has not trusted in its /hooks
    // screen only with this flag, which its docs give for one-off automation whose hooks were
    // checked outside Codex (https://developers.openai.com/codex/hooks, "Review and trust hooks").
    // danger-full-access: Codex's own sandbox is not under test, and without it nothing depends on
    // the kernel's user namespaces; what stops `rm -rf` must be the hook.
    const running = runAgent(
      path.join(REPO_ROOT, 'node_modules', '.bin', 'codex'),
      ['exec', '--json', '--skip-git-repo-check', '--sandbox', 'danger-full-access', '--dangerously-bypass-hook-trust', PROMPT],
      { cwd: project, env: { ...baseEnv(home), E2E_MODEL_API_KEY: 'sk-e2e-local-model-server' }, timeoutMs: 90_000 },
    );
    // A person approves the held call from another terminal, as soon as the hook has recorded its request.
    const approved = await approveWhenRequested(db, approver.keyFile, home, running);
    const run = await running;
    expect(approved.code).toBe(0);
    expect({ code: run.code, signal: run.signal }).toEqual({ code: 0, signal: null });
    const events = run.stdout
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as { type: string; thread_id?: string; item?: { type: string; text?: string } });
    const threadId = events.find((e) => e.type === 'thread.started')?.thread_id;
    expect(threadId).toMatch(/^[0-9a-f-]{36}$/);
    expect(events.filter((e) => e.item?.type === 'agent_message').at(-1)?.item?.text).toMatch(/^out\.txt says hi and approved\.txt exists\./);

    // What happened on disk: the allowed and the approved commands ran, the denied one did not.
    expect(fs.readFileSync(path.join(project, 'out.txt'), 'utf8')).toBe('hi\n');
    expect(fs.existsSync(path.join(project, 'approved.txt'))).toBe(true);
    expect(fs.readFileSync(path.join(project, 'keep', 'notes.txt'), 'utf8')).toBe('still here\n');

    // What the model was told: the echo's output, then Witness's refusal naming the rule and its reason.
    const turns = model.requests.filter((r) => r.url.startsWith('/v1/responses'));
    expect(turns.map((r) => outputs(r).map((i) => i.call_id))).toEqual([[], [ECHO_ID], [ECHO_ID, RM_ID], [ECHO_ID, RM_ID, TOUCH_ID]]);
    const [echoOut, rmOut, touchOut] = outputs(turns[3]!);
    expect(String(echoOut!.output)).toMatch(/Process exited with code 0/);
    expect(String(touchOut!.output)).toMatch(/Process exited with code 0/);
    expect(String(rmOut!.output)).toContain(`Command blocked by PreToolUse hook: Witness policy rule ${RM_RF_RULE} denies this Bash call: ${RM_RF_REASON}`);

    await expectHookSession(db, {
      stream: `codex:e2e-laptop:${threadId!}`,
      agent: 'e2e-laptop',
      tool: 'Bash',
      calls: [
        { command: 'echo hi > out.txt', id: ECHO_ID, verdict: 'allowed' },
        { command: 'rm -rf keep', id: RM_ID, verdict: 'denied' },
        { command: REVIEWED_COMMAND, id: TOUCH_ID, verdict: 'approved' },
      ],
      prompt: PROMPT,
    });
  }, 120_000);
});
