import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { argumentsDigest, type StoredEvent } from '../../src/core/index.js';
import { maskEvent } from '../../src/server/index.js';
import { tempDir } from '../helpers/tmp.js';
import { serverFixture, type ServerFixture } from './fixture.js';

const base = {
  v: 1,
  id: 'x',
  stream: 's',
  seq: 1,
  pos: 1,
  ts: '2026-01-01T00:00:00.000Z',
  agent: { id: 'a' },
  kind: 'tool.call',
  salt: 'ab',
  hash: 'h',
  prev: 'p',
  payload_digest: 'd',
} as unknown as StoredEvent;

describe('a developer’s masked copy of an event', () => {
  it('[R-DEV-MASK] withholds every salt and the salted arguments digest, so a masked value cannot be confirmed by guessing', () => {
    const salt = 'ab'.repeat(32);
    const args = { customer_email: 'victim@example.com', amount: 10 };
    const e = {
      ...base,
      kind: 'approval.request',
      data: { tool: 'refund', arguments: args, arguments_salt: salt, arguments_digest: argumentsDigest(salt, args), nested: { other_salt: 'cd' } },
    } as unknown as StoredEvent;
    const out = maskEvent(e);
    expect(out.data).not.toHaveProperty('arguments_salt');
    expect(out.data).not.toHaveProperty('arguments_digest');
    expect(out.data?.['nested']).toEqual({});
    expect(JSON.stringify(out)).not.toContain(salt);
    expect(out.salt).toBeNull();
  });

  it('[R-DEV-MASK] masks personal keys inside a string that is JSON text (an OpenAI tool call’s arguments)', () => {
    const e = {
      ...base,
      kind: 'llm.call',
      data: { tool_calls: [{ id: 'c', name: 'lookup', arguments: JSON.stringify({ surname: 'Okonkwo', address: '12 Elm Road', note: 'mail okonkwo@example.com' }) }] },
    } as unknown as StoredEvent;
    const out = JSON.stringify(maskEvent(e).data);
    expect(out).not.toContain('Okonkwo');
    expect(out).not.toContain('12 Elm Road');
    expect(out).not.toContain('okonkwo@example.com');
    const args = JSON.parse((maskEvent(e).data as { tool_calls: Array<{ arguments: string }> }).tool_calls[0]!.arguments) as Record<string, string>;
    expect(args['surname']).toBe('[MASKED:surname]');
  });

  it('[R-DEV-MASK] masks a value nested past the depth cut instead of returning it as recorded', () => {
    let v: unknown = { email: 'deep@example.com', surname: 'Deep' };
    for (let i = 0; i < 66; i++) v = { n: v };
    const out = JSON.stringify(maskEvent({ ...base, data: { arguments: v } } as unknown as StoredEvent).data);
    expect(out).not.toContain('deep@example.com');
    expect(out).not.toContain('"Deep"');
    expect(out).toContain('[MASKED:depth]');
  });

  it('[R-DEV-MASK] masks personal data in header text: resource, approvals’ approver and reason, the policy’s approver', () => {
    const e = {
      ...base,
      resource: 'customer jane@example.com',
      policy: { decision: 'allow', rule: 'r', approver: 'Jane Roe' },
      approvals: [{ approver: 'Jane Roe', decision: 'approved', reason: 'called her on +44 20 7946 0958', ts: '2026-01-01T00:00:00.000Z' }],
    } as unknown as StoredEvent;
    const out = maskEvent(e);
    const text = JSON.stringify(out);
    expect(text).not.toContain('jane@example.com');
    expect(text).not.toContain('+44 20 7946 0958');
    expect(text).not.toContain('Jane Roe');
    expect(out.approvals?.[0]?.decision).toBe('approved');
    expect(out.policy?.decision).toBe('allow');
    expect(out.id).toBe('x');
  });

  it('[R-DEV-MASK] withholds the payload of Witness’s own streams (API keys, access records)', () => {
    for (const stream of ['witness.keys', 'witness.audit-access']) {
      expect(maskEvent({ ...base, stream, kind: 'config.change', data: { key_id: '0'.repeat(16), key_sha256: 'f'.repeat(64) } } as unknown as StoredEvent).data).toBeNull();
    }
  });
});

describe('developers and the server’s own records', () => {
  const dir = tempDir('witness-server-maskleak-');
  let f: ServerFixture;
  beforeAll(async () => {
    f = await serverFixture(dir);
  });
  afterAll(async () => f.close());

  it("[R-ACCESS-LOG] an auditor's search is recorded percent-decoded, and a developer reads neither it nor the key records", async () => {
    const term = `jane.doe+${randomUUID().slice(0, 8)}@example.com`;
    expect((await f.call('GET', `/v1/events?q=${encodeURIComponent(term)}`, { key: f.keys.auditor })).status).toBe(200);
    const access = (await f.ledger.readStream('witness.audit-access')).map((e) => (e.data as { scope?: { request?: string } }).scope?.request);
    expect(access).toContain(`/v1/events?q=${term}`);
    const d = await f.call('GET', '/v1/events?kind=audit.access&limit=1000', { key: f.keys.developer });
    const body = (await d.json()) as { events: StoredEvent[] };
    expect(JSON.stringify(body)).not.toContain(term.split('@')[0]);
    const keys = (await (await f.call('GET', '/v1/sessions/witness.keys', { key: f.keys.developer })).json()) as { events?: StoredEvent[] };
    expect(JSON.stringify(keys)).not.toMatch(/key_sha256/);
  });
});
