#!/usr/bin/env node
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { z } from 'zod';

/**
 * The demo's MCP server (stdio): four tools over the back office's HTTP API, the way a team would
 * expose an internal system to an agent. `witness proxy` starts it; the app's URL comes from
 * BACKOFFICE_URL.
 */

const base = process.env['BACKOFFICE_URL'];
if (base === undefined || base === '') {
  process.stderr.write('demo MCP server: set BACKOFFICE_URL to the back office URL (witness demo does).\n');
  process.exit(2);
}

async function call(method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ content: Array<{ type: 'text'; text: string }>; isError?: boolean }> {
  const res = await fetch(`${base}${path}`, {
    method,
    ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  });
  const text = await res.text();
  return { content: [{ type: 'text', text }], ...(res.ok ? {} : { isError: true }) };
}

const server = new McpServer({ name: 'acme-back-office', version: '1.0.0' });

server.registerTool('crm.lookup_customer', { description: 'Look up a customer: name, balance, charges and refunds.', inputSchema: { customer_id: z.string() } }, async ({ customer_id }) =>
  call('GET', `/api/customers/${encodeURIComponent(customer_id)}`),
);
server.registerTool(
  'billing.refund',
  { description: 'Refund an amount to a customer, with the reason.', inputSchema: { customer_id: z.string(), amount: z.number().positive(), reason: z.string() } },
  async (args) => call('POST', '/api/refunds', args),
);
server.registerTool(
  'iam.set_role',
  { description: "Change a back-office user's role.", inputSchema: { user_id: z.string(), role: z.string(), reason: z.string() } },
  async ({ user_id, role, reason }) => call('POST', `/api/users/${encodeURIComponent(user_id)}/role`, { role, reason }),
);
server.registerTool(
  'records.fix_field',
  { description: 'Correct one field of a record that fails validation.', inputSchema: { record_id: z.string(), field: z.string(), value: z.string(), reason: z.string() } },
  async ({ record_id, field, value, reason }) => call('POST', `/api/records/${encodeURIComponent(record_id)}/fix`, { field, value, reason }),
);

await server.connect(new StdioServerTransport());
