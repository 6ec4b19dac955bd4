import { describe, expect, it } from 'vitest';
import { parseClaudeCode, parseCodex, parseCursor, parseGemini } from '../../src/integrations/index.js';

/**
 * A qualified MCP tool name that does not say where its server's name ends is given every reading
 * as server and tool, so the policy can be evaluated in each and the strictest verdict applied
 * (issue 16 review: L1 for `mcp__a__b__c`, review 2 L-D for Gemini's `mcp_a_b_c`). A name the agent
 * qualifies exactly (Gemini's `mcp_context`, Cursor's `mcp_server_name`) has one reading only.
 */

const gemini = (tool_name: string, extra: Record<string, unknown> = {}) => parseGemini({ session_id: 's1', hook_event_name: 'BeforeTool', tool_name, tool_input: { amount: 5 }, ...extra });
const claude = (tool_name: string) => parseClaudeCode({ session_id: 's1', hook_event_name: 'PreToolUse', tool_name, tool_input: {}, tool_use_id: 't1' });
const codex = (tool_name: string) => parseCodex({ session_id: 's1', hook_event_name: 'PreToolUse', tool_name, tool_input: {}, tool_use_id: 't1' });

describe('every reading of an MCP tool name whose server end is not marked', () => {
  it("reads Gemini's mcp_my_bank_transfer (no mcp_context) as server my and as server my_bank, the first reading being the one recorded", () => {
    expect(gemini('mcp_my_bank_transfer')).toMatchObject({
      type: 'tool.before',
      server: 'my',
      tool: 'bank_transfer',
      readings: [
        { server: 'my', tool: 'bank_transfer' },
        { server: 'my_bank', tool: 'transfer' },
      ],
    });
    expect(gemini('mcp_a_b_c_d')).toMatchObject({
      readings: [
        { server: 'a', tool: 'b_c_d' },
        { server: 'a_b', tool: 'c_d' },
        { server: 'a_b_c', tool: 'd' },
      ],
    });
  });

  it("reads Gemini's older mcp__bank__eu__transfer at every '__', as Claude Code's and Codex's names", () => {
    const both = [
      { server: 'bank', tool: 'eu__transfer' },
      { server: 'bank__eu', tool: 'transfer' },
    ];
    expect(gemini('mcp__bank__eu__transfer')).toMatchObject({ server: 'bank', tool: 'eu__transfer', readings: both });
    expect(claude('mcp__bank__eu__transfer')).toMatchObject({ server: 'bank', tool: 'eu__transfer', readings: both });
    expect(codex('mcp__bank__eu__transfer')).toMatchObject({ server: 'bank', tool: 'eu__transfer', readings: both });
  });

  it('gives no readings to a name with one reading, to a built-in tool, or to a server the agent names exactly', () => {
    for (const e of [
      gemini('mcp_github_issue'),
      gemini('run_shell_command'),
      gemini('mcp_my_bank_transfer', { mcp_context: { server_name: 'my_bank', tool_name: 'transfer' } }),
      claude('mcp__github__create_issue'),
      claude('Bash'),
      codex('mcp__memory__create_entities'),
      parseCursor({ conversation_id: 'c1', hook_event_name: 'beforeMCPExecution', tool_name: 'eu__transfer', tool_input: '{}', mcp_server_name: 'bank' }),
    ]) {
      expect(e.type).toBe('tool.before');
      expect(e).not.toHaveProperty('readings');
    }
  });

  it('splits only where both sides are non-empty', () => {
    expect(gemini('mcp_a__b')).toMatchObject({
      server: 'a',
      tool: '_b',
      readings: [
        { server: 'a', tool: '_b' },
        { server: 'a_', tool: 'b' },
      ],
    });
    expect(claude('mcp__a____b')).toMatchObject({
      server: 'a',
      tool: '__b',
      readings: [
        { server: 'a', tool: '__b' },
        { server: 'a_', tool: '_b' },
        { server: 'a__', tool: 'b' },
      ],
    });
    expect(gemini('mcp_x_')).toMatchObject({ tool: 'mcp_x_' });
    expect(gemini('mcp_x_')).not.toHaveProperty('readings');
  });
});
