import { randomBytes } from 'node:crypto';
import path from 'node:path';
import pg from 'pg';
import { v7 as uuidv7 } from 'uuid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLedger, type AppendRequest, type SessionPage } from '../../src/store/index.js';
import { oneSentence, runCli } from '../helpers/ledger.js';
import { tempDb, tempDir } from '../helpers/tmp.js';
import { PG_URL, requirePostgres } from '../store/postgres-driver.js';

/**
 * `witness sessions` on a real ledger: every flag run at least once, the JSON exactly what
 * Ledger.listSessions answers, the table readable and inert, bad usage exit 2.
 */

const dir = tempDir('witness-cli-sessions-');
const ESC = '\x1b';
const minute = (i: number) => new Date(Date.UTC(2026, 2, 1, 9, i)).toISOString();
const digest = 'cd'.repeat(32);
const R1 = uuidv7();
const hostileAgent = `bot${ESC}]0;pwned\x07`;

function ev(stream: string, agentId: string, i: number, kind: string, data: Record<string, unknown>, extra: Record<string, unknown> = {}): AppendRequest {
  return { stream, agent: { id: agentId }, ts: minute(i), kind, data, ...extra } as AppendRequest;
}

/** refund-1: ended, a denial, an approval asked and granted; lookup-2: open; hostile-3: a hostile agent id. */
function corpus(): AppendRequest[] {
  return [
    ev('refund-1', 'support-bot', 0, 'session.start', {}),
    ev('refund-1', 'support-bot', 1, 'tool.call', { tool: 'billing.refund', arguments: { cents: 65000 } }, { resource: 'billing', action: 'refund', outcome: 'pending' }),
    // Stamped as the gateway records a request and `witness approve` a decision on it: sessions count no other.
    ev('refund-1', 'support-bot', 2, 'approval.request', { request_id: R1, arguments_digest: digest }, { id: R1, recorder: { kind: 'gateway', version: '0.1.0' } }),
    ev(
      'refund-1',
      'support-bot',
      3,
      'approval.decision',
      { request_id: R1, decision: 'approved', approver: 'alice@corp', arguments_digest: digest },
      { parent: R1, recorder: { kind: 'cli', version: '0.1.0' } },
    ),
    ev('refund-1', 'support-bot', 4, 'tool.call', { tool: 'billing.void', arguments: {} }, { resource: 'billing', action: 'void', outcome: 'denied' }),
    ev('refund-1', 'support-bot', 65, 'session.end', { reason: 'completed' }),
    ev('lookup-2', 'crm-bot', 70, 'session.start', {}),
    ev('lookup-2', 'crm-bot', 71, 'tool.call', { tool: 'crm.lookup', arguments: {} }, { resource: 'crm', action: 'lookup', outcome: 'success' }),
    ev('hostile-3', hostileAgent, 80, 'session.start', {}),
  ];
}

async function sessions(store: string, ...args: string[]): Promise<SessionPage> {
  const r = await runCli(['sessions', '--store', store, '--json', ...args]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as SessionPage;
}

const names = (p: SessionPage) => p.sessions.map((s) => s.stream);

describe('witness sessions on SQLite', () => {
  let store: string;
  beforeAll(async () => {
    const file = tempDb(dir);
    store = `sqlite:${file}`;
    const l = await openLedger(store);
    await l.append(corpus());
    await l.close();
  });

  it('[R-WHAT-WHEN-RESULT] prints exactly what listSessions answers as JSON, newest first, with every filter flag', async () => {
    const all = await sessions(store);
    expect(names(all)).toEqual(['hostile-3', 'lookup-2', 'refund-1']);
    expect(all.sessions[2]).toEqual({
      stream: 'refund-1',
      agents: ['support-bot'],
      start: minute(0),
      end: minute(65),
      ended: true,
      endReason: 'completed',
      events: 6,
      toolCalls: 2,
      denials: 1,
      errors: 0,
      approvals: { requested: 1, approved: 1, denied: 0, expired: 0 },
    });
    // --json keeps agent text exact (escaped as JSON, never raw on the terminal).
    expect(all.sessions[0]!.agents).toEqual([hostileAgent]);
    expect(names(await sessions(store, '--agent', 'crm-bot'))).toEqual(['lookup-2']);
    expect(names(await sessions(store, '--resource', 'billing'))).toEqual(['refund-1']);
    expect(names(await sessions(store, '--outcome', 'denied'))).toEqual(['refund-1']);
    expect(names(await sessions(store, '--ended'))).toEqual(['refund-1']);
    expect(names(await sessions(store, '--open'))).toEqual(['hostile-3', 'lookup-2']);
    expect(names(await sessions(store, '--since', minute(66), '--until', minute(80)))).toEqual(['lookup-2']);
    expect(names(await sessions(store, '--since', minute(65)))).toEqual(['hostile-3', 'lookup-2', 'refund-1']);
  });

  it('[R-WHAT-WHEN-RESULT] pages with --limit and --cursor until no next is given', async () => {
    const first = await sessions(store, '--limit', '2');
    expect(names(first)).toEqual(['hostile-3', 'lookup-2']);
    expect(first.next).toBeDefined();
    const second = await sessions(store, '--limit', '2', '--cursor', first.next!);
    expect(names(second)).toEqual(['refund-1']);
    expect(second.next).toBeUndefined();
    const one = await sessions(store, '--limit', '1');
    const r = await runCli(['sessions', '--store', store, '--limit', '1']);
    expect(r.stdout).toContain(`More sessions match: add --cursor ${one.next!}`);
  });

  it('[R-CLI-INERT-OUTPUT] prints a readable table with agent, times, duration, counts and approvals, showing control characters as visible stand-ins', async () => {
    const r = await runCli(['sessions', '--store', store]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^START\s+END\s+DURATION\s+AGENT\s+SESSION\s+STATUS\s+EVENTS\s+TOOL CALLS\s+DENIALS\s+ERRORS\s+APPROVALS$/);
    expect(lines).toHaveLength(4);
    const refund = lines.find((l) => l.includes('refund-1'))!;
    expect(refund).toMatch(new RegExp(`^${minute(0)}\\s+${minute(65)}\\s+1h 05m\\s+support-bot\\s+refund-1\\s+ended \\(completed\\)\\s+6\\s+2\\s+1\\s+0\\s+1 asked: 1 approved$`));
    expect(lines.find((l) => l.includes('lookup-2'))).toMatch(/1m 00s\s+crm-bot\s+lookup-2\s+open\s+2\s+1\s+0\s+0$/);
    // The hostile agent id is shown, and the terminal is given nothing to act on.
    expect(r.stdout).toContain('bot␛]0;pwned␇');
    expect(r.stdout).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f]/);
    const none = await runCli(['sessions', '--store', store, '--agent', 'nobody']);
    expect(none.code).toBe(0);
    expect(none.stdout.trim()).toBe('No sessions match.');
  });

  it('offers every flag this file runs in its help, and no other, and is listed in the top-level help', async () => {
    const flags = ['--store', '--agent', '--resource', '--outcome', '--since', '--until', '--ended', '--open', '--limit', '--cursor', '--json'];
    const r = await runCli(['sessions', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Usage: witness sessions');
    const offered = [...r.stdout.matchAll(/^\s+(--[a-z][a-z-]*)/gm)].map((m) => m[1]).filter((f) => f !== '--help');
    expect(offered.sort()).toEqual([...flags].sort());
    expect((await runCli(['--help'])).stdout).toMatch(/^\s+sessions\b/m);
  });

  it('[R-CLI-USAGE] exits 2 with one sentence on a bad limit, outcome, time or cursor, and on --ended with --open', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--limit', '0'], /--limit "0" must be a whole number from 1 to 1000/],
      [['--limit', '1001'], /--limit "1001"/],
      [['--outcome', 'maybe'], /--outcome "maybe" is not an outcome/],
      [['--since', 'last tuesday-ish'], /--since "last tuesday-ish" is not a time/],
      [['--cursor', 'not-a-cursor'], /cursor is not one this ledger issued/],
      [['--ended', '--open'], /--ended and --open exclude each other/],
    ];
    for (const [args, message] of cases) {
      const r = await runCli(['sessions', '--store', store, ...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stdout, args.join(' ')).toBe('');
      expect(oneSentence(r.stderr), args.join(' ')).toMatch(message);
    }
    const json = await runCli(['sessions', '--store', store, '--json', '--cursor', 'nope']);
    expect(json.code).toBe(2);
    expect((JSON.parse(json.stdout) as { error: { code: string } }).error.code).toBe('invalid_argument');
  });
});

describe('witness sessions on PostgreSQL', () => {
  const schema = `wt_${randomBytes(6).toString('hex')}`;
  const store = `${PG_URL}?schema=${schema}`;
  beforeAll(async () => {
    await requirePostgres();
    const l = await openLedger(store, { keyFile: path.join(dir, `${schema}.key`) });
    await l.append(corpus());
    await l.close();
  });
  afterAll(async () => {
    const c = new pg.Client({ connectionString: PG_URL });
    await c.connect();
    try {
      await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    } finally {
      await c.end();
    }
  });

  it('[R-WHAT-WHEN-RESULT] lists the same sessions with the same counts and filters as on SQLite', async () => {
    const all = await sessions(store);
    expect(names(all)).toEqual(['hostile-3', 'lookup-2', 'refund-1']);
    expect(all.sessions[2]).toMatchObject({ events: 6, toolCalls: 2, denials: 1, ended: true, endReason: 'completed', approvals: { requested: 1, approved: 1, denied: 0, expired: 0 } });
    expect(names(await sessions(store, '--resource', 'billing', '--ended'))).toEqual(['refund-1']);
    const page = await sessions(store, '--limit', '2');
    expect(names(await sessions(store, '--limit', '2', '--cursor', page.next!))).toEqual(['refund-1']);
  });
});
