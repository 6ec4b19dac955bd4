import { v7 as uuidv7 } from 'uuid';
import { describe, expect, it } from 'vitest';
import { SYSTEM_STREAMS, type WitnessError } from '../../../src/core/index.js';
import type { AppendRequest, Ledger, SessionFilter, SessionSummary } from '../../../src/store/index.js';
import type { DriverUnderTest } from './driver.js';
import { withLedger } from './fixtures.js';

const minute = (i: number) => new Date(Date.UTC(2026, 10, 1, 0, i)).toISOString();
const digest = 'ab'.repeat(32);

function ev(stream: string, agentId: string, i: number, kind: string, data: Record<string, unknown>, extra: Record<string, unknown> = {}): AppendRequest {
  return { stream, agent: { id: agentId }, ts: minute(i), kind, data, ...extra } as AppendRequest;
}

const start = (stream: string, agentId: string, i: number) => ev(stream, agentId, i, 'session.start', {});
const end = (stream: string, agentId: string, i: number, reason: string) => ev(stream, agentId, i, 'session.end', { reason });
const call = (stream: string, agentId: string, i: number, resource: string, outcome: string) =>
  ev(stream, agentId, i, 'tool.call', { tool: `${resource}.do`, arguments: {} }, { resource, action: 'do', outcome });
// Stamped as the gateway records a request and a person (or, for an expiry, the gateway) a
// decision on it, with `parent` naming the request: the only approval records sessions count.
const requestIds = new Map<string, string>();
const requestId = (name: string) => requestIds.get(name) ?? requestIds.set(name, uuidv7()).get(name)!;
const request = (stream: string, agentId: string, i: number, id: string) =>
  ev(stream, agentId, i, 'approval.request', { request_id: requestId(id), arguments_digest: digest }, { id: requestId(id), recorder: { kind: 'gateway', version: '0.1.0' } });
const decision = (stream: string, agentId: string, i: number, id: string, d: string) =>
  ev(
    stream,
    agentId,
    i,
    'approval.decision',
    { request_id: requestId(id), decision: d, approver: 'alice@corp', arguments_digest: digest },
    { parent: requestId(id), recorder: { kind: d === 'expired' ? 'gateway' : 'cli', version: '0.1.0' } },
  );

/**
 * Four sessions and a system stream, every count known: s-a has a bit of everything and ended,
 * s-b is open and has two agents, s-c ended by timeout, tie-1 and tie-2 start at the same time.
 * Written in two halves so a driver can be looked at with part of it indexed and part not.
 */
function firstHalf(): AppendRequest[] {
  return [
    start('s-a', 'alice', 0),
    call('s-a', 'alice', 1, 'billing', 'success'),
    call('s-a', 'alice', 2, 'billing', 'denied'),
    request('s-a', 'alice', 3, 'r1'),
    decision('s-a', 'alice', 4, 'r1', 'approved'),
    start('s-b', 'bob', 10),
    call('s-b', 'bob', 11, 'crm', 'pending'),
    // Decisions made after a session ended land in the approvals stream, which is no session.
    decision('witness.approvals', 'gateway', 15, 'r9', 'denied'),
  ];
}

function secondHalf(): AppendRequest[] {
  return [
    request('s-a', 'alice', 5, 'r2'),
    decision('s-a', 'alice', 6, 'r2', 'denied'),
    ev('s-a', 'alice', 7, 'error', { message: 'tool failed', source: 'tool' }, { outcome: 'error' }),
    ev('s-a', 'alice', 7, 'tool.result', { tool: 'billing.do', is_error: true }, { resource: 'billing', outcome: 'error' }),
    end('s-a', 'alice', 8, 'completed'),
    ev('s-b', 'carol', 12, 'note', { text: 'carol helps' }),
    start('s-c', 'alice', 20),
    request('s-c', 'alice', 21, 'r3'),
    decision('s-c', 'alice', 22, 'r3', 'expired'),
    end('s-c', 'alice', 23, 'timeout'),
    start('tie-1', 'dave', 30),
    start('tie-2', 'dave', 30),
    call('tie-2', 'dave', 31, 'kb', 'success'),
  ];
}

const approvals = (requested: number, approved: number, denied: number, expired: number) => ({ requested, approved, denied, expired });

const EXPECTED: Record<string, SessionSummary> = {
  's-a': {
    stream: 's-a',
    agents: ['alice'],
    start: minute(0),
    end: minute(8),
    ended: true,
    endReason: 'completed',
    events: 10,
    toolCalls: 2,
    denials: 1,
    errors: 2,
    approvals: approvals(2, 1, 1, 0),
  },
  's-b': { stream: 's-b', agents: ['bob', 'carol'], start: minute(10), end: minute(12), ended: false, events: 3, toolCalls: 1, denials: 0, errors: 0, approvals: approvals(0, 0, 0, 0) },
  's-c': { stream: 's-c', agents: ['alice'], start: minute(20), end: minute(23), ended: true, endReason: 'timeout', events: 4, toolCalls: 0, denials: 0, errors: 0, approvals: approvals(1, 0, 0, 1) },
  'tie-1': { stream: 'tie-1', agents: ['dave'], start: minute(30), end: minute(30), ended: false, events: 1, toolCalls: 0, denials: 0, errors: 0, approvals: approvals(0, 0, 0, 0) },
  'tie-2': { stream: 'tie-2', agents: ['dave'], start: minute(30), end: minute(31), ended: false, events: 2, toolCalls: 1, denials: 0, errors: 0, approvals: approvals(0, 0, 0, 0) },
};

/** Newest first: by start, then stream id, both descending. */
const ORDER = ['tie-2', 'tie-1', 's-c', 's-b', 's-a'];

/** Every page of a listing, checking that no session comes twice and the order holds across pages. */
async function allSessions(l: Ledger, filter: SessionFilter, limit: number, between?: () => Promise<void>): Promise<SessionSummary[]> {
  const out: SessionSummary[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const page = await l.listSessions(filter, { limit, ...(cursor === undefined ? {} : { cursor }) });
    expect(page.sessions.length).toBeLessThanOrEqual(limit);
    if (page.next !== undefined) expect(page.sessions.length).toBe(limit);
    for (const s of page.sessions) {
      expect(
        out.some((o) => o.stream === s.stream),
        `session ${s.stream} came twice`,
      ).toBe(false);
      const prev = out[out.length - 1];
      if (prev !== undefined) expect(prev.start > s.start || (prev.start === s.start && prev.stream > s.stream), `${s.stream} after ${prev.stream}`).toBe(true);
      out.push(s);
    }
    cursor = page.next;
    pages++;
    if (between !== undefined && cursor !== undefined) await between();
  } while (cursor !== undefined && pages < 1000);
  return out;
}

const streams = (list: SessionSummary[]) => list.map((s) => s.stream);

export function sessionsContract(driver: DriverUnderTest): void {
  describe('listSessions', () => {
    it('[R-WHAT-WHEN-RESULT] lists every session newest first with exact counts, skipping system streams, before and after sealing and from a second handle', async () => {
      await withLedger(driver, async (l, also) => {
        await l.append(firstHalf());
        await l.seal();
        await l.append(secondHalf());
        const want = ORDER.map((s) => EXPECTED[s]);
        // Part sealed (and so indexed, where a driver keeps an index) and part not.
        expect((await l.listSessions()).sessions).toEqual(want);
        expect(await allSessions(l, {}, 2)).toEqual(want);
        await l.seal();
        expect((await l.listSessions({}, { limit: 100 })).sessions).toEqual(want);
        const reader = also(await driver.openAgain(l, driver.readonly ? { readonly: true } : {}));
        expect((await reader.listSessions()).sessions).toEqual(want);
      });
    });

    it('[R-WHAT-WHEN-RESULT] lists none of the system streams core names, even one that starts with a session.start', async () => {
      await withLedger(driver, async (l) => {
        await l.append(SYSTEM_STREAMS.flatMap((s, i) => [start(s, 'gateway', i), call(s, 'gateway', i, 'crm', 'denied')]));
        await l.append([start('real', 'gateway', 50)]);
        expect(streams((await l.listSessions()).sessions)).toEqual(['real']);
        expect(streams((await l.listSessions({ agent: 'gateway', outcome: 'denied' })).sessions)).toEqual([]);
        await l.seal();
        expect(streams((await l.listSessions()).sessions)).toEqual(['real']);
      });
    });

    it('[R-WHAT-WHEN-RESULT] filters by agent, resource, outcome, time window (overlap) and ended, alone and together, exactly', async () => {
      await withLedger(driver, async (l) => {
        await l.append(firstHalf());
        await l.seal();
        await l.append(secondHalf());
        const cases: Array<[SessionFilter, string[]]> = [
          [{ agent: 'alice' }, ['s-c', 's-a']],
          // An agent that joined a session later finds it too.
          [{ agent: 'carol' }, ['s-b']],
          [{ agent: 'gateway' }, []],
          [{ resource: 'billing' }, ['s-a']],
          [{ resource: 'kb' }, ['tie-2']],
          [{ outcome: 'denied' }, ['s-a']],
          [{ outcome: 'pending' }, ['s-b']],
          [{ ended: true }, ['s-c', 's-a']],
          [{ ended: false }, ['tie-2', 'tie-1', 's-b']],
          // Overlapping [since, until): s-a ends at minute 8, s-c starts at minute 20.
          [{ since: minute(8), until: minute(20) }, ['s-b', 's-a']],
          [{ since: minute(9), until: minute(20) }, ['s-b']],
          [{ since: minute(12), until: minute(21) }, ['s-c', 's-b']],
          [{ since: minute(31) }, ['tie-2']],
          [{ until: minute(10) }, ['s-a']],
          [{ agent: 'alice', ended: true, since: minute(10) }, ['s-c']],
          [{ agent: 'alice', resource: 'billing', outcome: 'error' }, ['s-a']],
          [{ agent: 'bob', ended: true }, []],
        ];
        for (const [filter, want] of cases) {
          expect(streams(await allSessions(l, filter, 1)), JSON.stringify(filter)).toEqual(want);
          expect(streams((await l.listSessions(filter)).sessions), JSON.stringify(filter)).toEqual(want);
        }
        await l.seal();
        for (const [filter, want] of cases) expect(streams(await allSessions(l, filter, 2)), `sealed ${JSON.stringify(filter)}`).toEqual(want);
      });
    });

    it('[R-WHAT-WHEN-RESULT] finds exactly one session by id with its whole counts, indexed, unindexed or split between the two, and none for an unknown id or a system stream', async () => {
      await withLedger(driver, async (l) => {
        await l.append(firstHalf());
        await l.seal();
        // s-a is half indexed here (where a driver keeps an index), s-c not at all.
        await l.append(secondHalf());
        const one = async (filter: SessionFilter) => (await l.listSessions(filter)).sessions;
        for (let round = 0; round < 2; round++) {
          for (const id of ORDER) expect(await one({ session: id }), `${id} round ${round}`).toEqual([EXPECTED[id]]);
          expect(await one({ session: 's-' })).toEqual([]);
          expect(await one({ session: 'nothing-here' })).toEqual([]);
          expect(await one({ session: 'witness.approvals' })).toEqual([]);
          // Every other filter must still hold.
          expect(await one({ session: 's-a', agent: 'alice', ended: true })).toEqual([EXPECTED['s-a']]);
          expect(await one({ session: 's-a', agent: 'bob' })).toEqual([]);
          expect(await one({ session: 's-b', ended: true })).toEqual([]);
          expect(await one({ session: 's-b', ended: false })).toEqual([EXPECTED['s-b']]);
          expect(await one({ session: 's-c', resource: 'billing' })).toEqual([]);
          await l.seal();
        }
        // A session that grows after it was indexed is counted whole.
        await l.append([call('s-b', 'bob', 13, 'crm', 'denied')]);
        expect(await one({ session: 's-b' })).toEqual([{ ...EXPECTED['s-b'], end: minute(13), events: 4, toolCalls: 2, denials: 1 }]);
      });
    });

    it('[R-WHAT-WHEN-RESULT] pages through every session once, in order, while events keep being appended, new sessions started and old ones ended', async () => {
      await withLedger(driver, async (l) => {
        const n = 23;
        const id = (i: number) => `p-${String(i).padStart(2, '0')}`;
        const batch: AppendRequest[] = [];
        for (let i = 0; i < n; i++) batch.push(start(id(i), i % 2 === 0 ? 'even' : 'odd', i), call(id(i), 'x', i, 'crm', 'success'));
        await l.append(batch);
        await l.seal();
        let round = 0;
        const between = async () => {
          round++;
          // A session newer than all, more events in old ones (one of them ended), and a seal now and then.
          await l.append([start(`new-${round}`, 'even', 100 + round), call(id(round), 'even', 200 + round, 'crm', 'denied'), end(id(n - round), 'x', 300 + round, 'completed')]);
          if (round % 2 === 0) await l.seal();
        };
        const seen = await allSessions(l, {}, 4, between);
        expect(streams(seen)).toEqual([...Array(n).keys()].reverse().map(id));
        // Filtered paging under appends: only the sessions that match when their page is read.
        const evens = await allSessions(l, { agent: 'even', until: minute(50) }, 3, between);
        const evenNow = (s: string) => Number(s.slice(2)) % 2 === 0;
        // An odd session matches once a round has added an event of agent even to it (rounds 1 onwards, p-01 first).
        for (const s of evens) if (!evenNow(s.stream)) expect(Number(s.stream.slice(2)), s.stream).toBeLessThanOrEqual(round);
        expect(streams(evens).filter(evenNow)).toEqual([...Array(n).keys()].reverse().map(id).filter(evenNow));
        // Every session listed now shows the counts its events give.
        const now = await allSessions(l, {}, 1000);
        for (const s of now) {
          const events = await l.readStream(s.stream);
          expect(s.events, s.stream).toBe(events.length);
          expect(s.ended, s.stream).toBe(events.at(-1)?.kind === 'session.end');
          expect(s.denials, s.stream).toBe(events.filter((e) => e.outcome === 'denied').length);
        }
      });
    });

    it('[R-WHAT-WHEN-RESULT] filters exactly on a ledger larger than a driver reads in one step, sessions interleaved, pages small', async () => {
      await withLedger(driver, async (l) => {
        // 70 sessions, 8 events each, interleaved in time; every second by "busy" (280 events), every fifth with a denial.
        const batch: AppendRequest[] = [];
        const id = (i: number) => `big-${String(i).padStart(2, '0')}`;
        const who = (i: number) => (i % 2 === 0 ? 'busy' : `idle-${i % 4}`);
        for (let step = 0; step < 8; step++) {
          for (let i = 0; i < 70; i++) {
            const t = i * 4 + step * 3;
            if (step === 0) batch.push(start(id(i), who(i), t));
            else batch.push(call(id(i), who(i), t, step % 2 === 0 ? 'billing' : 'crm', i % 5 === 0 && step === 4 ? 'denied' : 'success'));
          }
        }
        await l.append(batch);
        const all = [...Array(70).keys()].reverse();
        const cases: Array<[SessionFilter, number[]]> = [
          [{ agent: 'busy' }, all.filter((i) => i % 2 === 0)],
          [{ agent: 'busy', outcome: 'denied' }, all.filter((i) => i % 10 === 0)],
          [{ outcome: 'denied', until: minute(200) }, all.filter((i) => i % 5 === 0 && i * 4 < 200)],
          [{ resource: 'crm', since: minute(250) }, all.filter((i) => i * 4 + 21 >= 250)],
          [{ agent: 'busy', until: minute(100), ended: false }, all.filter((i) => i % 2 === 0 && i * 4 < 100)],
        ];
        for (const [filter, want] of cases) {
          expect(streams(await allSessions(l, filter, 2)), JSON.stringify(filter)).toEqual(want.map(id));
          expect(streams(await allSessions(l, filter, 7)), JSON.stringify(filter)).toEqual(want.map(id));
        }
      });
    });

    it('[R-WHAT-WHEN-RESULT] refuses a cursor it did not issue as invalid_argument, an event cursor of query included', async () => {
      await withLedger(driver, async (l) => {
        const batch: AppendRequest[] = [];
        for (let i = 0; i < 3; i++) batch.push(start(`c-${i}`, 'a', i), call(`c-${i}`, 'a', i, 'crm', 'success'));
        await l.append(batch);
        const eventCursor = (await l.query({ limit: 1 })).next;
        expect(eventCursor).toBeDefined();
        for (const cursor of ['garbage', '', Buffer.from('["s", 1, 2]').toString('base64url'), eventCursor!]) {
          const err = await l.listSessions({}, { cursor }).then(
            () => undefined,
            (e: unknown) => e,
          );
          // The built driver throws dist's WitnessError, another class than the sources': the code is the contract.
          expect(err, cursor).toBeInstanceOf(Error);
          expect((err as WitnessError).code, cursor).toBe('invalid_argument');
        }
        const page = await l.listSessions({}, { limit: 1 });
        const err = await l.query({ cursor: page.next! }).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect((err as WitnessError).code).toBe('invalid_argument');
      });
    });
  });
}
