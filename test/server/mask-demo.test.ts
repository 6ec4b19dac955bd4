import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoredEvent } from '../../src/core/index.js';
import { createKey, createServer, maskEvent } from '../../src/server/index.js';
import { openLedger, type Ledger } from '../../src/store/index.js';
import { runBin } from '../helpers/ledger.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * What a new user sees trying the demo as a developer: the real `witness demo` ledger, read
 * through the real API with a developer key. Every personal value the demo's back office holds
 * (src/demo/app.ts, agent.ts) is listed here; none may reach the developer, and what a developer
 * debugs with (tool names, amounts, rules, ids) must still be there.
 */
const PERSONAL = [
  'Jordan Doe',
  'Jordan',
  'jordan.doe@example.com',
  'riley.smith@example.com',
  '4111 1111 1111 1042',
  '5500 0000 0000 2077',
  'Sam Lee',
  'Alice Novak',
  'Bob Grant',
  'Novak',
  'M. Garcia',
  'Garcia',
  '1984-03-13',
  '1984-13-03',
  'alice@acme.example',
  'bob@acme.example',
];

const dir = tempDir('witness-mask-demo-');

describe('a developer reading the demo session', () => {
  let ledger: Ledger;
  let app: ReturnType<typeof createServer>;
  let developer: string;
  let auditor: string;
  let session: string;

  beforeAll(async () => {
    const demo = path.join(dir, 'demo');
    const r = await runBin(['demo', '--dir', demo]);
    expect(r.code, r.stderr).toBe(0);
    ledger = await openLedger(`sqlite:${path.join(demo, 'witness.db')}`, { create: false });
    session = /\(session ([0-9a-f-]{36})\)/.exec(r.stdout)![1]!;
    developer = (await createKey(ledger, { role: 'developer', name: 'dev' }, { who: 'test', recorder: 'cli' })).key;
    auditor = (await createKey(ledger, { role: 'auditor', name: 'aud' }, { who: 'test', recorder: 'cli' })).key;
    app = createServer({ ledger });
  }, 120_000);
  afterAll(async () => ledger?.close());

  const read = async (key: string): Promise<StoredEvent[]> => {
    const res = await app.request(`/v1/sessions/${session}?limit=1000`, { headers: { authorization: `Bearer ${key}` } });
    expect(res.status).toBe(200);
    return ((await res.json()) as { events: StoredEvent[] }).events;
  };

  it('[R-DEV-MASK] sees none of the personal values the demo recorded, which an auditor does see', async () => {
    const seen = JSON.stringify(await read(developer));
    const leaked = PERSONAL.filter((v) => seen.includes(v));
    expect(leaked).toEqual([]);
    // The list is not vacuous: the unmasked session holds the values a developer must not see.
    const full = JSON.stringify(await read(auditor));
    for (const v of ['Jordan Doe', 'M. Garcia', '1984-03-13', '1984-13-03', 'Alice Novak']) expect(full).toContain(v);
  });

  it('[R-DEV-MASK] still sees the tool names, arguments that are not personal, amounts, rules and ids needed to debug', async () => {
    const events = await read(developer);
    const calls = events.filter((e) => e.kind === 'tool.call');
    expect(calls.map((e) => e.data?.['tool'])).toEqual(['crm.lookup_customer', 'billing.refund', 'billing.refund', 'iam.set_role', 'iam.set_role', 'records.fix_field']);
    expect(calls.map((e) => e.action)).toEqual(calls.map((e) => e.data?.['tool']));
    expect(calls[0]!.data?.['client_claims']).toMatchObject({ clientInfo: { name: 'acme-support-agent' } });
    expect(calls[3]!.data?.['arguments']).toMatchObject({ user_id: 'u-17', role: 'admin' });
    const fix = calls[5]!.data?.['arguments'] as Record<string, string>;
    expect(fix).toMatchObject({ record_id: 'R-88', field: 'date_of_birth', value: '[MASKED:value]' });
    expect(fix['reason']).toMatch(/^Month and day were swapped at intake; the insurance card shows \[MASKED:/);
    const lookup = events.find((e) => e.kind === 'tool.result' && e.data?.['tool'] === 'crm.lookup_customer')!;
    const text = (lookup.data?.['output'] as { content: Array<{ text: string }> }).content[0]!.text;
    const customer = JSON.parse(text) as { id: string; name: string; balance: number; charges: Array<{ id: string; amount: number; date: string }> };
    expect(customer).toMatchObject({ id: 'C-1042', name: '[MASKED:name]', balance: 1300 });
    expect(customer.charges.map((c) => [c.id, c.amount, c.date])).toEqual([
      ['CH-9001', 650, '2026-11-20'],
      ['CH-9002', 650, '2026-11-20'],
    ]);
    const policy = events.filter((e) => e.kind === 'policy.decision').map((e) => e.policy?.rule);
    expect(policy).toContain('refunds-over-500');
    expect(policy).toContain('no-admin-grants');
    const captures = events.filter((e) => e.kind === 'capture' && e.data?.['role'] !== 'video');
    expect(captures.map((e) => e.data?.['title'])).toContain('Customer C-1042');
    expect(captures.every((e) => e.data?.['text'] === undefined || e.data['text'] === '[MASKED:text]')).toBe(true);
  });
});

describe('the developer masking rules behind it', () => {
  const ev = (data: Record<string, unknown>, kind = 'tool.call') =>
    ({ v: 1, id: 'x', stream: 's', seq: 1, pos: 1, ts: '2026-01-01T00:00:00.000Z', agent: { id: 'a' }, kind, salt: 'ab', hash: 'h', prev: 'p', payload_digest: 'd', data }) as unknown as StoredEvent;
  const masked = (data: Record<string, unknown>, kind?: string) => maskEvent(ev(data, kind)).data as Record<string, unknown>;

  it('[R-DEV-MASK] masks a name in a person-like record (a personal sibling, or under a person key) and keeps a tool’s, a model’s and an MCP client’s name', () => {
    expect(masked({ contact: { name: 'riley', role: 'x' } })).toEqual({ contact: { name: '[MASKED:name]', role: 'x' } });
    expect(masked({ users: [{ id: 'u-1', name: 'sam' }] })).toEqual({ users: [{ id: 'u-1', name: '[MASKED:name]' }] });
    expect(masked({ row: { name: 'lee', email: 'x' } })).toMatchObject({ row: { name: '[MASKED:name]' } });
    const kept = {
      params: { name: 'crm.lookup_customer', arguments: { customer_id: 'C-1' } },
      client_claims: { clientInfo: { name: 'Claude Desktop', version: '1' } },
      tool_calls: [{ id: 'c', function: { name: 'get_weather', arguments: '{}' } }],
      model: { name: 'claude-sonnet-4' },
    };
    expect(masked(kept)).toEqual(kept);
  });

  it('[R-DEV-MASK] masks a name that reads as a person’s (capitalised words) wherever it is, a bare date on a person’s own record, and any member named for a birth date', () => {
    expect(masked({ record: { id: 'C-1', name: 'Jordan Doe', since: '2020-01-02' } })).toEqual({ record: { id: 'C-1', name: '[MASKED:name]', since: '2020-01-02' } });
    expect(masked({ name: "M. O'Neil-Garcia" })).toEqual({ name: '[MASKED:name]' });
    expect(masked({ patient: { id: 'P-1', since: '2020-01-02', seen: '02/01/2020', created_at: '2020-01-02T10:00:00Z' } })).toEqual({
      patient: { id: 'P-1', since: '[MASKED:since]', seen: '[MASKED:seen]', created_at: '2020-01-02T10:00:00Z' },
    });
    expect(masked({ customer_birthday: '1990-01-01', born: 1990, order: '2026-11-23', email: 'x' })).toEqual({
      customer_birthday: '[MASKED:customer_birthday]',
      born: '[MASKED:born]',
      order: '2026-11-23',
      email: '[MASKED:email]',
    });
  });

  it('[R-DEV-MASK] masks the value of a field/value pair naming a personal field, and that value wherever else the event repeats it', () => {
    expect(masked({ arguments: { field: 'patient.date_of_birth', value: '1984-03-13', reason: 'card shows 1984-03-13.' } })).toEqual({
      arguments: { field: 'patient.date_of_birth', value: '[MASKED:value]', reason: 'card shows [MASKED:value].' },
    });
    expect(masked({ key: 'name', old: 'Ann Lee', new: 'Ann Leigh', note: 'renamed from Ann Lee' })).toEqual({
      key: 'name',
      old: '[MASKED:old]',
      new: '[MASKED:new]',
      note: 'renamed from [MASKED:old]',
    });
    expect(masked({ field: 'amount', value: 650 })).toEqual({ field: 'amount', value: 650 });
  });

  it('[R-DEV-MASK] keeps an MCP tool’s input schema whole, whose properties are named after personal fields but hold schemas, and masks values shaped otherwise', () => {
    const tools = {
      tools: [
        { name: 'send_email', description: 'Send mail', inputSchema: { type: 'object', properties: { name: { type: 'string' }, email: { type: 'string', format: 'email' } }, required: ['email'] } },
      ],
    };
    expect(masked(tools, 'tool.result')).toEqual(tools);
    expect(masked({ properties: { name: { value: 'riley' }, email: { value: 'r' } } })).toEqual({ properties: { name: '[MASKED:name]', email: '[MASKED:email]' } });
  });

  it('[R-DEV-MASK] withholds a capture’s page text, the screenshot in words, as developers get no screenshots', () => {
    expect(masked({ role: 'before', title: 'Customer C-1', text: 'Jordan Doe\nBalance $1,300.00' }, 'capture')).toEqual({ role: 'before', title: 'Customer C-1', text: '[MASKED:text]' });
  });
});
