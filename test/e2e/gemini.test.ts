import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBuild } from '../helpers/gateway.js';
import { REPO_ROOT, runBin } from '../helpers/ledger.js';
import { tempDir } from '../helpers/tmp.js';
import { REVIEWED_COMMAND, RM_RF_REASON, RM_RF_RULE, WITNESS_COMMAND, approveWhenRequested, baseEnv, expectHookSession, runAgent, stopAgents, writeApproverKey, writeRmRfPolicy } from './agent-cli.js';
import { sseFile, startModelServer, type Answer, type ModelRequest, type ModelServer } from './model-server.js';

/**
 * The real Gemini CLI (`@google/gemini-cli`, a devDependency) run non-interactively (`gemini -p`)
 * in a temporary project whose `.gemini/settings.json` the real `witness hooks install gemini
 * --project` wrote, against a local stand-in for the Gemini API (GOOGLE_GEMINI_BASE_URL) that
 * streams recorded answers (test/fixtures/e2e/gemini): a `run_shell_command` call the policy
 * allows, one it denies, one it holds until a concurrent `witness approve`, then a final text.
 */

requireBuild();
const FIX = path.join(REPO_ROOT, 'test', 'fixtures', 'e2e', 'gemini');
const MODEL = 'gemini-2.5-flash';
const PROMPT = 'Write hi to out.txt, remove the keep directory, then create approved.txt.';

interface Part {
  functionCall?: { name: string; args: Record<string, unknown> };
  functionResponse?: { name: string; response: { output?: string; error?: string } };
}

const parts = (r: ModelRequest): Part[] => ((r.body as { contents?: Array<{ parts?: Part[] }> } | undefined)?.contents ?? []).flatMap((c) => c.parts ?? []);
const responses = (r: ModelRequest): Array<NonNullable<Part['functionResponse']>> => parts(r).flatMap((p) => (p.functionResponse === undefined ? [] : [p.functionResponse]));

/** The model's script: which recorded answer follows how many function responses Gemini CLI has sent back. */
function answer(r: ModelRequest): Answer {
  if (r.method !== 'POST' || r.url !== `/v1beta/models/${MODEL}:streamGenerateContent?alt=sse`) {
    return { status: 404, contentType: 'application/json', body: JSON.stringify({ error: { code: 404, message: `No ${r.method} ${r.url} here.`, status: 'NOT_FOUND' } }) };
  }
  const turn = ['1-shell-echo', '2-shell-rm', '3-shell-review', '4-final-text'][responses(r).length];
  if (turn === undefined) throw new Error('The script has no fifth turn.');
  return sseFile(path.join(FIX, `${turn}.sse`));
}

describe('Gemini CLI (the real CLI) with witness hook installed', () => {
  const dir = tempDir('witness-e2e-gemini-');
  const home = path.join(dir, 'home');
  const project = path.join(dir, 'project');
  const db = path.join(dir, 'witness.db');
  let model: ModelServer;

  beforeAll(async () => {
    model = await startModelServer(answer);
    fs.mkdirSync(path.join(home, '.gemini'), { recursive: true });
    fs.mkdirSync(path.join(project, 'keep'), { recursive: true });
    fs.writeFileSync(path.join(project, 'keep', 'notes.txt'), 'still here\n');
    // The user's own settings (https://geminicli.com/docs/reference/configuration/): an API key as
    // the way in, and no usage statistics or update checks, so the model server is the only thing
    // Gemini CLI reaches.
    fs.writeFileSync(
      path.join(home, '.gemini', 'settings.json'),
      `${JSON.stringify(
        {
          security: { auth: { selectedType: 'gemini-api-key' } },
          privacy: { usageStatisticsEnabled: false },
          general: { enableAutoUpdate: false, enableAutoUpdateNotification: false },
        },
        null,
        2,
      )}\n`,
    );
  });
  afterAll(async () => {
    stopAgents();
    await model.close();
  });

  it('[R-CODING-AGENT-HOOKS] runs the allowed shell command and records it, blocks `rm -rf` with the policy reason the model then reads, runs a held call once `witness approve` releases it, and the ledger verifies', async () => {
    const approver = writeApproverKey(dir);
    const policy = writeRmRfPolicy(dir, ['run_shell_command'], approver);
    // Under the test's HOME and state directory, as the agent runs: whatever install keeps for the user stays in the temporary directory.
    const install = await runBin(['hooks', 'install', 'gemini', '--project', '--agent', 'e2e-laptop', '--policy', policy, '--store', `sqlite:${db}`, '--command', WITNESS_COMMAND], {
      cwd: project,
      env: { HOME: home, WITNESS_STATE_DIR: path.join(home, '.witness') },
    });
    expect(install.code).toBe(0);
    expect(fs.existsSync(path.join(project, '.gemini', 'settings.json'))).toBe(true);

    // -m: a named model, so Gemini CLI asks no routing model first. --approval-mode yolo: the
    // user's own approval of every tool call, so what stops `rm -rf` must be the hook.
    // GEMINI_CLI_TRUST_WORKSPACE: a headless run in a folder nobody trusted interactively
    // (https://geminicli.com/docs/cli/trusted-folders/#headless-and-automated-environments).
    const running = runAgent(
      process.execPath,
      [path.join(REPO_ROOT, 'node_modules', '@google', 'gemini-cli', 'bundle', 'gemini.js'), '-m', MODEL, '-p', PROMPT, '--approval-mode', 'yolo', '--output-format', 'json'],
      {
        cwd: project,
        env: { ...baseEnv(home), GEMINI_API_KEY: 'e2e-local-model-server', GOOGLE_GEMINI_BASE_URL: model.origin, GEMINI_CLI_TRUST_WORKSPACE: 'true' },
        timeoutMs: 90_000,
      },
    );
    // A person approves the held call from another terminal, as soon as the hook has recorded its request.
    const approved = await approveWhenRequested(db, approver.keyFile, home, running);
    const run = await running;
    expect(approved.code).toBe(0);
    expect({ code: run.code, signal: run.signal }).toEqual({ code: 0, signal: null });
    const result = JSON.parse(run.stdout) as { session_id: string; response: string };
    expect(result.response).toMatch(/^out\.txt says hi and approved\.txt exists\./);

    // What happened on disk: the allowed and the approved commands ran, the denied one did not.
    expect(fs.readFileSync(path.join(project, 'out.txt'), 'utf8')).toBe('hi\n');
    expect(fs.existsSync(path.join(project, 'approved.txt'))).toBe(true);
    expect(fs.readFileSync(path.join(project, 'keep', 'notes.txt'), 'utf8')).toBe('still here\n');

    // What the model was told: the echo's output, then Witness's refusal naming the rule and its reason.
    expect(model.requests.map((r) => r.url)).toEqual(Array(4).fill(`/v1beta/models/${MODEL}:streamGenerateContent?alt=sse`));
    expect(model.requests.map((r) => responses(r).length)).toEqual([0, 1, 2, 3]);
    const [echoOut, rmOut, touchOut] = responses(model.requests[3]!);
    expect(echoOut!.response.error).toBeUndefined();
    expect(touchOut!.response.error).toBeUndefined();
    expect(rmOut!.response).toEqual({ error: `Tool execution blocked: Witness policy rule ${RM_RF_RULE} denies this run_shell_command call: ${RM_RF_REASON}` });

    await expectHookSession(db, {
      stream: `gemini:e2e-laptop:${result.session_id}`,
      agent: 'e2e-laptop',
      tool: 'run_shell_command',
      calls: [
        { command: 'echo hi > out.txt', verdict: 'allowed' },
        { command: 'rm -rf keep', verdict: 'denied' },
        { command: REVIEWED_COMMAND, verdict: 'approved' },
      ],
      prompt: PROMPT,
    });
  }, 120_000);
});
