import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBuild } from '../helpers/gateway.js';
import { REPO_ROOT, runBin } from '../helpers/ledger.js';
import { tempDir } from '../helpers/tmp.js';
import { REVIEWED_COMMAND, RM_RF_REASON, RM_RF_RULE, WITNESS_COMMAND, approveWhenRequested, baseEnv, expectHookSession, runAgent, stopAgents, writeRmRfPolicy, writeApproverKey } from './agent-cli.js';
import { sseFile, startModelServer, type ModelRequest, type ModelServer } from './model-server.js';

/**
 * The real Claude Code CLI (`@anthropic-ai/claude-code`, a devDependency) run non-interactively
 * (`claude -p`) in a temporary project whose `.claude/settings.json` the real `witness hooks install
 * claude-code --project` wrote, against a local stand-in for the Anthropic Messages API
 * (ANTHROPIC_BASE_URL) that streams recorded answers (test/fixtures/e2e/claude-code): a Bash call
 * the policy allows, one it denies, one it holds until a concurrent `witness approve`, then a final
 * text. What Claude Code did on disk, what it sent back to the model and what the ledger holds are
 * all checked.
 */

requireBuild();
const FIX = path.join(REPO_ROOT, 'test', 'fixtures', 'e2e', 'claude-code');
const ECHO_ID = 'toolu_01E2EBashEcho00000001';
const RM_ID = 'toolu_01E2EBashRm0000000002';
const TOUCH_ID = 'toolu_01E2EBashTouch000000003';
const PROMPT = 'Write hi to out.txt, remove the keep directory, then create approved.txt.';

/**
 * The CLI as `npm ci` leaves it. The package's postinstall only hard-links the native binary of
 * its platform package (an optional dependency, from the registry) over a placeholder; should an npm
 * that skips install scripts leave the placeholder, the platform package's binary is the same file.
 */
function claudeBinary(): string {
  const bin = path.join(REPO_ROOT, 'node_modules', '@anthropic-ai', 'claude-code', 'bin', 'claude.exe');
  if (fs.existsSync(bin) && fs.statSync(bin).size > 1024 * 1024) return bin;
  const native = path.join(REPO_ROOT, 'node_modules', '@anthropic-ai', `claude-code-${process.platform}-${process.arch}`, 'claude');
  if (fs.existsSync(native)) return native;
  throw new Error('The Claude Code CLI is not installed: run `npm ci` (it is a devDependency, @anthropic-ai/claude-code).');
}

interface Block {
  type: string;
  tool_use_id?: string;
  content?: unknown;
  is_error?: boolean;
}

const blocks = (r: ModelRequest): Block[] =>
  ((r.body as { messages?: Array<{ content: unknown }> } | undefined)?.messages ?? []).flatMap((m) => (Array.isArray(m.content) ? (m.content as Block[]) : []));
const toolResults = (r: ModelRequest): Block[] => blocks(r).filter((b) => b.type === 'tool_result');
/** The agent loop's requests carry the tool list; anything else Claude Code asks (a title, a summary) does not. */
const isAgentTurn = (r: ModelRequest): boolean => ((r.body as { tools?: Array<{ name: string }> } | undefined)?.tools ?? []).some((t) => t.name === 'Bash');
const resultText = (b: Block): string => (typeof b.content === 'string' ? b.content : JSON.stringify(b.content));

/** The model's script: which recorded answer follows how many tool results Claude Code has sent back. */
function answer(r: ModelRequest): ReturnType<typeof sseFile> {
  if (!r.url.startsWith('/v1/messages'))
    return { status: 404, contentType: 'application/json', body: JSON.stringify({ type: 'error', error: { type: 'not_found_error', message: `No ${r.url} here.` } }) };
  if (!isAgentTurn(r)) return sseFile(path.join(FIX, 'side-text.sse'));
  const turn = ['1-bash-echo', '2-bash-rm', '3-bash-review', '4-final-text'][toolResults(r).length];
  if (turn === undefined) throw new Error('The script has no fifth turn.');
  return sseFile(path.join(FIX, `${turn}.sse`));
}

describe('Claude Code (the real CLI) with witness hook installed', () => {
  const dir = tempDir('witness-e2e-cc-');
  const home = path.join(dir, 'home');
  const project = path.join(dir, 'project');
  const db = path.join(dir, 'witness.db');
  let model: ModelServer;

  beforeAll(async () => {
    model = await startModelServer(answer);
    fs.mkdirSync(home, { recursive: true });
    fs.mkdirSync(path.join(project, 'keep'), { recursive: true });
    fs.writeFileSync(path.join(project, 'keep', 'notes.txt'), 'still here\n');
  });
  afterAll(async () => {
    stopAgents();
    await model.close();
  });

  it('[R-CODING-AGENT-HOOKS] runs the allowed Bash call and records it, refuses `rm -rf` with the policy reason the model then reads, runs a held call once `witness approve` releases it, and the ledger verifies', async () => {
    const approver = writeApproverKey(dir);
    const policy = writeRmRfPolicy(dir, ['Bash'], approver);
    // Under the test's HOME and state directory, as the agent runs: whatever install keeps for the user stays in the temporary directory.
    const install = await runBin(['hooks', 'install', 'claude-code', '--project', '--agent', 'e2e-laptop', '--policy', policy, '--store', `sqlite:${db}`, '--command', WITNESS_COMMAND], {
      cwd: project,
      env: { HOME: home, WITNESS_STATE_DIR: path.join(home, '.witness') },
    });
    expect(install.code).toBe(0);
    expect(fs.existsSync(path.join(project, '.claude', 'settings.json'))).toBe(true);

    const running = runAgent(claudeBinary(), ['-p', PROMPT, '--output-format', 'json', '--allowedTools', 'Bash'], {
      cwd: project,
      env: {
        ...baseEnv(home),
        ANTHROPIC_BASE_URL: model.origin,
        ANTHROPIC_API_KEY: 'sk-ant-e2e-local-model-server',
        // No telemetry, error reports or update checks: the model server is the only thing to reach.
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
        DISABLE_AUTOUPDATER: '1',
      },
      timeoutMs: 90_000,
    });
    // A person approves the held call from another terminal, as soon as the hook has recorded its request.
    const approved = await approveWhenRequested(db, approver.keyFile, home, running);
    const run = await running;
    expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 0, stderr: '' });
    expect(approved.code).toBe(0);
    const result = JSON.parse(run.stdout) as { session_id: string; is_error: boolean; result: string; permission_denials: Array<{ tool_use_id: string }> };
    expect(result.is_error).toBe(false);
    expect(result.result).toMatch(/^out\.txt says hi and approved\.txt exists\./);
    expect(result.permission_denials.map((d) => d.tool_use_id)).toEqual([RM_ID]);

    // What happened on disk: the allowed and the approved commands ran, the denied one did not.
    expect(fs.readFileSync(path.join(project, 'out.txt'), 'utf8')).toBe('hi\n');
    expect(fs.existsSync(path.join(project, 'approved.txt'))).toBe(true);
    expect(fs.readFileSync(path.join(project, 'keep', 'notes.txt'), 'utf8')).toBe('still here\n');

    // What the model was told: the echo's result, then Witness's refusal naming the rule and its reason.
    const turns = model.requests.filter(isAgentTurn);
    expect(turns.map((r) => toolResults(r).map((b) => b.tool_use_id))).toEqual([[], [ECHO_ID], [ECHO_ID, RM_ID], [ECHO_ID, RM_ID, TOUCH_ID]]);
    const [echoResult, rmResult, touchResult] = toolResults(turns[3]!);
    expect(echoResult!.is_error).toBe(false);
    expect(touchResult!.is_error).toBe(false);
    expect(rmResult!.is_error).toBe(true);
    expect(resultText(rmResult!)).toContain(`Witness policy rule ${RM_RF_RULE} denies this Bash call: ${RM_RF_REASON}`);

    // What the ledger holds: one session under the installed --agent, named by Claude Code's session id.
    await expectHookSession(db, {
      stream: `claude-code:e2e-laptop:${result.session_id}`,
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
