import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { escapeHtml } from '../capture/index.js';

/**
 * The demo's back office: a small local web app with the three screens auditors ask about — a
 * customer record with billing and refunds, an access-control page with user roles, and a record
 * validation page — and the JSON API the demo's MCP server calls. In memory, deterministic, loopback.
 */

interface Customer {
  id: string;
  name: string;
  email: string;
  card: string;
  balance: number;
  charges: Array<{ id: string; order: string; amount: number; date: string }>;
  refunds: Array<{ id: string; amount: number; reason: string; approvedBy?: string }>;
}

interface User {
  id: string;
  name: string;
  role: string;
}

interface PatientRecord {
  id: string;
  patient: string;
  fields: Record<string, string>;
  problems: string[];
}

export class BackOffice {
  readonly customers = new Map<string, Customer>([
    [
      'C-1042',
      {
        id: 'C-1042',
        name: 'Jordan Doe',
        email: 'jordan.doe@example.com',
        card: '4111 1111 1111 1042',
        balance: 1300,
        charges: [
          { id: 'CH-9001', order: 'A-1042', amount: 650, date: '2026-11-20' },
          { id: 'CH-9002', order: 'A-1042', amount: 650, date: '2026-11-20' },
        ],
        refunds: [],
      },
    ],
    [
      'C-2077',
      {
        id: 'C-2077',
        name: 'Riley Smith',
        email: 'riley.smith@example.com',
        card: '5500 0000 0000 2077',
        balance: 2400,
        charges: [{ id: 'CH-9100', order: 'B-2077', amount: 2400, date: '2026-11-02' }],
        refunds: [],
      },
    ],
  ]);
  readonly users = new Map<string, User>([
    ['u-17', { id: 'u-17', name: 'Sam Lee (new support hire)', role: 'none' }],
    ['u-03', { id: 'u-03', name: 'Alice Novak', role: 'billing-supervisor' }],
    ['u-05', { id: 'u-05', name: 'Bob Grant', role: 'admin' }],
  ]);
  readonly records = new Map<string, PatientRecord>([
    ['R-88', { id: 'R-88', patient: 'P-5521', fields: { name: 'M. Garcia', date_of_birth: '1984-13-03', insurer: 'Acme Health' }, problems: ['date_of_birth: month 13 does not exist'] }],
  ]);
  private nextRefund = 1;

  refund(customerId: string, amount: number, reason: string): { refund_id: string; new_balance: number } {
    const c = this.customers.get(customerId);
    if (c === undefined) throw new AppError(404, `no customer ${customerId}`);
    if (!(amount > 0) || amount > c.balance) throw new AppError(422, `amount ${amount} is not between 0 and the balance ${c.balance}`);
    const id = `RF-${String(this.nextRefund++).padStart(4, '0')}`;
    c.refunds.push({ id, amount, reason });
    c.balance -= amount;
    return { refund_id: id, new_balance: c.balance };
  }

  setRole(userId: string, role: string): { user: string; role: string; previous: string } {
    const u = this.users.get(userId);
    if (u === undefined) throw new AppError(404, `no user ${userId}`);
    const previous = u.role;
    u.role = role;
    return { user: userId, role, previous };
  }

  fixField(recordId: string, field: string, value: string): { record: string; field: string; previous: string; problems: string[] } {
    const r = this.records.get(recordId);
    if (r === undefined) throw new AppError(404, `no record ${recordId}`);
    if (!(field in r.fields)) throw new AppError(422, `record ${recordId} has no field ${field}`);
    const previous = r.fields[field]!;
    r.fields[field] = value;
    r.problems = validate(r.fields);
    return { record: recordId, field, previous, problems: r.problems };
  }
}

class AppError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function validate(fields: Record<string, string>): string[] {
  const problems: string[] = [];
  const dob = fields['date_of_birth'] ?? '';
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(dob);
  if (m === null) problems.push('date_of_birth: not a date (YYYY-MM-DD)');
  else if (Number(m[2]) < 1 || Number(m[2]) > 12) problems.push(`date_of_birth: month ${Number(m[2])} does not exist`);
  return problems;
}

const esc = (s: string | number) => escapeHtml(String(s));
const money = (n: number) => `$${n.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;

function layout(title: string, body: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${esc(title)}</title><style>
  body { margin: 0; font: 20px 'DejaVu Sans', sans-serif; color: #1e293b; background: #f8fafc; }
  header { background: #1e3a8a; color: #fff; padding: 18px 40px; font-size: 24px; }
  header small { opacity: .7; margin-left: 16px; font-size: 16px; }
  main { padding: 28px 40px; }
  h1 { margin: 0 0 18px; font-size: 30px; }
  .grid { display: grid; grid-template-columns: 220px 1fr; gap: 10px 20px; margin-bottom: 24px; }
  .label { color: #64748b; }
  .balance { font-size: 34px; font-weight: bold; color: #0f766e; }
  table { border-collapse: collapse; width: 100%; background: #fff; }
  th, td { text-align: left; padding: 10px 14px; border-bottom: 1px solid #e2e8f0; }
  th { background: #e2e8f0; font-size: 17px; }
  .ok { color: #15803d; font-weight: bold; } .bad { color: #b91c1c; font-weight: bold; }
  .role { font-family: 'DejaVu Sans Mono', monospace; background: #e0e7ff; padding: 2px 8px; border-radius: 4px; }
</style></head><body><header>Acme Back Office<small>${esc(title)}</small></header><main>${body}</main></body></html>`;
}

export function customerPage(c: Customer): string {
  const charges = c.charges.map((x) => `<tr><td>${esc(x.id)}</td><td>${esc(x.order)}</td><td>${esc(x.date)}</td><td>${money(x.amount)}</td></tr>`).join('');
  const refunds =
    c.refunds.length === 0 ? '<tr><td colspan="3">No refunds.</td></tr>' : c.refunds.map((r) => `<tr><td>${esc(r.id)}</td><td>${money(r.amount)}</td><td>${esc(r.reason)}</td></tr>`).join('');
  return layout(
    `Customer ${c.id}`,
    `<h1>${esc(c.name)}</h1>
  <div class="grid"><div class="label">Customer</div><div>${esc(c.id)} · ${esc(c.email)}</div>
  <div class="label">Card on file</div><div class="card-number">${esc(c.card)}</div>
  <div class="label">Balance</div><div class="balance" id="balance">${money(c.balance)}</div></div>
  <h2>Charges</h2><table><tr><th>Charge</th><th>Order</th><th>Date</th><th>Amount</th></tr>${charges}</table>
  <h2>Refunds</h2><table id="refunds"><tr><th>Refund</th><th>Amount</th><th>Reason</th></tr>${refunds}</table>`,
  );
}

export function accessPage(users: Iterable<User>): string {
  const rows = [...users].map((u) => `<tr id="user-${esc(u.id)}"><td>${esc(u.id)}</td><td>${esc(u.name)}</td><td><span class="role">${esc(u.role)}</span></td></tr>`).join('');
  return layout('Access control', `<h1>Users and roles</h1><table><tr><th>User</th><th>Name</th><th>Role</th></tr>${rows}</table>`);
}

export function recordPage(r: PatientRecord): string {
  const fields = Object.entries(r.fields)
    .map(([k, v]) => `<tr><td>${esc(k)}</td><td class="patient-data">${esc(v)}</td></tr>`)
    .join('');
  const status = r.problems.length === 0 ? '<p class="ok">Valid: no problems found.</p>' : `<p class="bad">Invalid:</p><ul>${r.problems.map((p) => `<li>${esc(p)}</li>`).join('')}</ul>`;
  return layout(`Record ${r.id}`, `<h1>Record ${esc(r.id)} (patient ${esc(r.patient)})</h1><table><tr><th>Field</th><th>Value</th></tr>${fields}</table><h2>Validation</h2>${status}`);
}

export interface RunningApp {
  url: string;
  office: BackOffice;
  close(): Promise<void>;
}

async function body(req: http.IncomingMessage): Promise<Record<string, unknown>> {
  let text = '';
  for await (const chunk of req) {
    text += String(chunk);
    if (text.length > 65_536) throw new AppError(413, 'request too large');
  }
  try {
    const v = JSON.parse(text || '{}') as unknown;
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
    return v as Record<string, unknown>;
  } catch {
    throw new AppError(400, 'the body must be a JSON object');
  }
}

export async function startApp(port = 0): Promise<RunningApp> {
  const office = new BackOffice();
  const server = http.createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://app.invalid');
      const send = (status: number, type: string, text: string) => {
        res.writeHead(status, { 'content-type': `${type}; charset=utf-8`, 'cache-control': 'no-store' });
        res.end(text);
      };
      const json = (status: number, v: unknown) => send(status, 'application/json', JSON.stringify(v));
      try {
        let m: RegExpExecArray | null;
        if (req.method === 'GET' && (m = /^\/customers\/([\w-]+)$/.exec(url.pathname)) !== null) {
          const c = office.customers.get(m[1]!);
          return c === undefined ? send(404, 'text/html', layout('Not found', '<h1>No such customer</h1>')) : send(200, 'text/html', customerPage(c));
        }
        if (req.method === 'GET' && url.pathname === '/access') return send(200, 'text/html', accessPage(office.users.values()));
        if (req.method === 'GET' && (m = /^\/records\/([\w-]+)$/.exec(url.pathname)) !== null) {
          const r = office.records.get(m[1]!);
          return r === undefined ? send(404, 'text/html', layout('Not found', '<h1>No such record</h1>')) : send(200, 'text/html', recordPage(r));
        }
        if (req.method === 'GET' && (m = /^\/api\/customers\/([\w-]+)$/.exec(url.pathname)) !== null) {
          const c = office.customers.get(m[1]!);
          if (c === undefined) throw new AppError(404, `no customer ${m[1]}`);
          return json(200, { id: c.id, name: c.name, balance: c.balance, charges: c.charges, refunds: c.refunds });
        }
        if (req.method === 'POST' && url.pathname === '/api/refunds') {
          const b = await body(req);
          return json(200, office.refund(String(b['customer_id']), Number(b['amount']), String(b['reason'] ?? '')));
        }
        if (req.method === 'POST' && (m = /^\/api\/users\/([\w-]+)\/role$/.exec(url.pathname)) !== null) {
          const b = await body(req);
          return json(200, office.setRole(m[1]!, String(b['role'])));
        }
        if (req.method === 'POST' && (m = /^\/api\/records\/([\w-]+)\/fix$/.exec(url.pathname)) !== null) {
          const b = await body(req);
          return json(200, office.fixField(m[1]!, String(b['field']), String(b['value'])));
        }
        throw new AppError(404, `no route ${req.method} ${url.pathname}`);
      } catch (e) {
        const status = e instanceof AppError ? e.status : 500;
        json(status, { error: e instanceof Error ? e.message : String(e) });
      }
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const { port: bound } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${bound}`,
    office,
    close: () => new Promise((r) => server.close(() => r())),
  };
}
