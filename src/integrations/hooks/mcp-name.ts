import type { McpReading } from './types.js';

/**
 * Every reading of a qualified MCP tool name, given without its prefix (`bank__eu__transfer` of
 * `mcp__bank__eu__transfer`, `my_bank_transfer` of Gemini's `mcp_my_bank_transfer`), as server and
 * tool: split at each `sep` that leaves both non-empty, the shortest server first. An agent that
 * joins the two with a separator that may occur in either cannot say where the server's name ends,
 * so the hook evaluates the policy in each reading and applies the strictest verdict: a rule on
 * server `my_bank` is not evaded by reading the name as server `my` (issue 16 review L1, and review
 * 2 L-D). Undefined when there is one reading or none.
 */
export function mcpReadings(rest: string, sep: '_' | '__'): McpReading[] | undefined {
  const out: McpReading[] = [];
  for (let at = rest.indexOf(sep, 1); at > 0 && at + sep.length < rest.length; at = rest.indexOf(sep, at + 1)) {
    out.push({ server: rest.slice(0, at), tool: rest.slice(at + sep.length) });
  }
  return out.length > 1 ? out : undefined;
}
