import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { requireBuild } from '../helpers/gateway.js';
import { BIN, readEvents, verifyFile } from '../helpers/ledger.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/**
 * Gemini CLI names an MCP tool `mcp_<server>_<tool>`, which cannot say where a server name with
 * `_` in it ends. Without `mcp_context` every reading is evaluated and the strictest verdict
 * applies (issue 16 review 2, L-D), as for Claude Code's `mcp__a__b__c`: a rule on server
 * `my_bank` is not evaded by reading `mcp_my_bank_transfer` as server `my`. Through the real
 * bin/witness.js (build first), as Gemini CLI runs it.
 */

requireBuild();
const dir = tempDir('witness-hook-mcp-names-');
const policyFile = path.join(dir, 'policy.yaml');
fs.writeFileSync(
  policyFile,
  ['version: 1', 'default: allow', 'rules:', '  - id: no-bank', '    match: { server: my_bank }', '    effect: deny', '    reason: Banking is done by people.', ''].join('\n'),
);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function gemini(payload: unknown, db: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, 'hook', 'gemini', '--agent', 'dev-laptop', '--policy', policyFile, '--store', `sqlite:${db}`], {
      cwd: dir,
      env: { ...process.env, WITNESS_STORE: '' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => void (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => void (stderr += c.toString()));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(JSON.stringify(payload));
  });
}

const beforeTool = (tool_name: string, extra: Record<string, unknown> = {}) => ({
  session_id: 'g1',
  transcript_path: '/t.json',
  cwd: '/p',
  hook_event_name: 'BeforeTool',
  timestamp: '2026-08-20T10:00:40.000Z',
  tool_name,
  tool_input: { amount: 500 },
  ...extra,
});

describe('witness hook gemini and MCP names with _ in the server name', () => {
  it('[R-CODING-AGENT-HOOKS] refuses mcp_my_bank_transfer under a rule on server my_bank when Gemini sends no mcp_context, and allows it when mcp_context names server my', async () => {
    const db = tempDb(dir);
    const refused = await gemini(beforeTool('mcp_my_bank_transfer'), db);
    expect(refused.code).toBe(0);
    expect(JSON.parse(refused.stdout)).toEqual({ decision: 'deny', reason: 'Witness policy rule no-bank denies this bank_transfer call: Banking is done by people.' });
    // Gemini saying exactly which server it is leaves one reading: server my, which no rule names.
    const exact = await gemini(beforeTool('mcp_my_bank_transfer', { mcp_context: { server_name: 'my', tool_name: 'bank_transfer' } }), db);
    expect({ code: exact.code, answer: JSON.parse(exact.stdout) as unknown }).toEqual({ code: 0, answer: {} });
    // The older mcp__<server>__<tool> form is read at every "__".
    const old = await gemini(beforeTool('mcp__my_bank__transfer'), db);
    expect(JSON.parse(old.stdout)).toMatchObject({ decision: 'deny' });

    const events = await readEvents(db);
    const decisions = events.filter((e) => e.kind === 'policy.decision');
    expect(decisions.map((e) => [e.data?.['decision'], e.data?.['rule'], e.outcome])).toEqual([
      ['deny', 'no-bank', 'denied'],
      ['allow', undefined, 'success'],
      ['deny', 'no-bank', 'denied'],
    ]);
    // Recorded under the first reading, as the name was read before.
    expect(events.filter((e) => e.kind === 'tool.call').map((e) => [e.data?.['server'], e.data?.['tool']])).toEqual([
      ['my', 'bank_transfer'],
      ['my', 'bank_transfer'],
      ['my_bank', 'transfer'],
    ]);
    expect((await verifyFile(db)).ok).toBe(true);
  }, 60_000);
});
