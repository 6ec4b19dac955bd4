import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

/**
 * The demo's agent: deterministic and without an API key. It plays a support agent working
 * through the three cases auditors ask about — a refund, an access change, a data fix — as MCP
 * tool calls through `witness proxy`, which records them, enforces the policy and holds the large
 * refunds for a person. The agent states its reason in each call, as a well-built agent would.
 */

export interface ScriptStep {
  tool: string;
  args: Record<string, unknown>;
}

export const SCRIPT: readonly ScriptStep[] = [
  { tool: 'crm.lookup_customer', args: { customer_id: 'C-1042' } },
  {
    tool: 'billing.refund',
    args: { customer_id: 'C-1042', amount: 650, reason: 'Order A-1042 was charged twice on 2026-11-20; refund the duplicate charge CH-9002.' },
  },
  {
    tool: 'billing.refund',
    args: { customer_id: 'C-2077', amount: 1200, reason: 'The customer asked for a goodwill credit after a late delivery.' },
  },
  { tool: 'iam.set_role', args: { user_id: 'u-17', role: 'admin', reason: 'The new support hire needs to issue refunds.' } },
  { tool: 'iam.set_role', args: { user_id: 'u-17', role: 'billing-viewer', reason: 'Least privilege for the new hire: read-only billing access.' } },
  {
    tool: 'records.fix_field',
    args: { record_id: 'R-88', field: 'date_of_birth', value: '1984-03-13', reason: 'Month and day were swapped at intake; the insurance card shows 1984-03-13.' },
  },
];

/** Refunds over $500 wait for a person; agents may never grant admin. (The rules; `demoPolicy` adds who may approve.) */
export const DEMO_POLICY = `# The demo's policy: what the gateway enforces before the back office sees a call.
version: 1
default: allow
rules:
  - id: refunds-over-500
    match: { tool: billing.refund }
    when: "args.amount > 500"
    effect: review
    reason: Refunds over $500 need a billing supervisor.
  - id: no-admin-grants
    match: { tool: iam.set_role }
    when: 'args.role == "admin"'
    effect: deny
    reason: Agents may not grant the admin role; ask the security team.
`;

/**
 * The demo's policy with the people who may release a held refund, each by their own public key
 * (`witness approver init` prints these lines): a decision counts only if signed by one of them.
 */
export function demoPolicy(approvers: ReadonlyArray<{ id: string; key: string }>): string {
  const listed = approvers.map((a) => `  - id: ${a.id}\n    key: "${a.key}"\n`).join('');
  const ids = approvers.map((a) => a.id).join(', ');
  return DEMO_POLICY.replace('default: allow\n', `default: allow\napprovers:\n${listed}`).replace(
    '    reason: Refunds over $500 need a billing supervisor.\n',
    `    reason: Refunds over $500 need a billing supervisor.\n    approvers: [${ids}]\n`,
  );
}

/** Screenshots of every state change, with the card number masked before the pixels are stored. */
export function demoCapture(appUrl: string): string {
  return `# Screenshots around the calls that change state.
billing.refund:
  url: "${appUrl}/customers/{customer_id}"
  mask: [".card-number"]
iam.set_role:
  url: "${appUrl}/access"
records.fix_field:
  url: "${appUrl}/records/{record_id}"
`;
}

export interface StepOutcome {
  step: ScriptStep;
  isError: boolean;
  text: string;
}

export interface AgentRun {
  outcomes: StepOutcome[];
  /** What the proxy wrote to stderr (approval prompts, faults). */
  proxyLog: string;
}

/** Runs the script through `witness proxy` (a child process), one call after another. */
export async function runScriptedAgent(proxy: { command: string; args: string[]; env: Record<string, string>; cwd: string }): Promise<AgentRun> {
  const transport = new StdioClientTransport({ command: proxy.command, args: proxy.args, env: proxy.env, cwd: proxy.cwd, stderr: 'pipe' });
  let proxyLog = '';
  transport.stderr?.on('data', (c: Buffer) => (proxyLog += c.toString()));
  const client = new Client({ name: 'acme-support-agent', version: '1.4.2' });
  await client.connect(transport);
  const outcomes: StepOutcome[] = [];
  try {
    for (const step of SCRIPT) {
      // A progress handler keeps the call alive while a person decides (the proxy sends progress).
      const r = await client.callTool({ name: step.tool, arguments: step.args }, undefined, { timeout: 120_000, resetTimeoutOnProgress: true, onprogress: () => undefined });
      const content = (r as { content?: Array<{ type: string; text?: string }> }).content ?? [];
      outcomes.push({ step, isError: r.isError === true, text: content.map((c) => c.text ?? '').join(' ') });
    }
  } finally {
    await client.close();
  }
  return { outcomes, proxyLog };
}
