import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppendRequest, SessionSummary } from '../../src/store/index.js';
import { tempDir } from '../helpers/tmp.js';
import { serverFixture, type ServerFixture } from './fixture.js';
import { Person } from './viewer-person.js';

/**
 * GET /v1/sessions and the sessions page count approvals as the rest of Witness believes them
 * (store/sessions.ts): beside a call the gateway held and alice approved through the CLI, an agent
 * writes a request and an approval of its own into its own session, straight into the ledger
 * (the SDK and the server refuse both kinds), stamped as its SDK stamps everything.
 */

const dir = tempDir('witness-session-approval-counts-');
const agentId = `counts-bot-${randomUUID().slice(0, 8)}`;
const gatewaySession = `gw-${randomUUID()}`;
const agentSession = `agent-own-${randomUUID()}`;
let f: ServerFixture;

beforeAll(async () => {
  f = await serverFixture(dir);
  const genuine = randomUUID();
  const forged = randomUUID();
  const digest = 'ab'.repeat(32);
  const head = (stream: string, recorder: string) => ({ stream, agent: { id: agentId }, recorder: { kind: recorder, version: '0.1.0' } });
  const request = (stream: string, id: string, recorder: string) => ({
    ...head(stream, recorder),
    id,
    kind: 'approval.request',
    outcome: 'pending',
    data: { request_id: id, arguments_digest: digest },
  });
  const approve = (stream: string, id: string, recorder: string) => ({
    ...head(stream, recorder),
    parent: id,
    kind: 'approval.decision',
    outcome: 'success',
    data: { request_id: id, decision: 'approved', approver: 'alice@corp', arguments_digest: digest },
  });
  await f.ledger.append([
    { ...head(gatewaySession, 'gateway'), kind: 'session.start', data: {} },
    request(gatewaySession, genuine, 'gateway'),
    approve(gatewaySession, genuine, 'cli'),
    { ...head(agentSession, 'sdk'), kind: 'session.start', data: {} },
    request(agentSession, forged, 'sdk'),
    approve(agentSession, forged, 'sdk'),
  ] as AppendRequest[]);
});
afterAll(async () => f?.close());

describe('session approval counts over HTTP', () => {
  it('[R-WHAT-WHEN-RESULT] GET /v1/sessions counts the held call’s request and approval, and nothing of the agent’s own pair', async () => {
    const res = await f.call('GET', `/v1/sessions?agent=${encodeURIComponent(agentId)}`, { key: f.keys.auditor });
    expect(res.status).toBe(200);
    const { sessions } = (await res.json()) as { sessions: SessionSummary[] };
    const of = (id: string) => sessions.find((s) => s.stream === id)?.approvals;
    expect(of(gatewaySession)).toEqual({ requested: 1, approved: 1, denied: 0, expired: 0 });
    expect(of(agentSession)).toEqual({ requested: 0, approved: 0, denied: 0, expired: 0 });
  });

  it('[R-WHAT-WHEN-RESULT] the sessions page shows one approval for the held call and none for the agent’s own session', async () => {
    const p = new Person(f);
    expect((await p.signIn(f.keys.auditor)).status).toBe(303);
    const page = await (await p.request('GET', `/sessions?agent=${encodeURIComponent(agentId)}`)).text();
    // The last numeric cell of a row is its approvals.
    const approvalsOf = (id: string) => {
      const row = page.slice(page.indexOf(id), page.indexOf('</tr>', page.indexOf(id)));
      expect(row.length, id).toBeGreaterThan(0);
      return [...row.matchAll(/<td class="num">([^<]*)<\/td>/g)].at(-1)?.[1];
    };
    expect(approvalsOf(gatewaySession)).toBe('1');
    expect(approvalsOf(agentSession)).toBe('0');
  });
});
