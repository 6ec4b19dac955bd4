import { afterEach, describe, expect, it } from 'vitest';
import { HALT_STREAM, haltState, recordHalt } from '../../src/approvals/index.js';
import { AGENT_REFUSED_KINDS, isWitnessError, type EventInput, type WitnessError } from '../../src/core/index.js';
import * as facade from '../../src/index.js';
import { openWitness, systemWriter, type Witness } from '../../src/recorder/index.js';
import { openLedger } from '../../src/store/index.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/**
 * An agent's own process holds the SDK; it must not be able to write what a person or Witness
 * itself does (docs/FORMAT.md 5.4, README "Recording from your code"): lift its own halt with a
 * human.resume in witness.approvals, release a legal hold, change a retention rule, or record a
 * key rotation that blocks every later seal. The SDK refuses them, visibly; Witness's own writers
 * reach the ledger through `systemWriter`, which the package entry does not export.
 */

const dir = tempDir('witness-governance-refused-');
const open: Witness[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((w) => w.close()));
});

async function sdk(strict: boolean, onError?: (e: WitnessError) => void): Promise<{ w: Witness; url: string }> {
  const url = `sqlite:${tempDb(dir)}`;
  const w = await openWitness({ store: url, strict, seal: { enabled: false }, ...(onError === undefined ? {} : { onError }) });
  open.push(w);
  return { w, url };
}

async function count(url: string, filter: { kind?: string; stream?: string } = {}): Promise<number> {
  const l = await openLedger(url, { create: false, readonly: true });
  try {
    return (await l.query({ ...filter, limit: 1000 })).events.length;
  } finally {
    await l.close();
  }
}

const agent = { id: 'support-bot' };
const attempts: Array<[string, string, EventInput]> = [
  ['human.resume into witness.approvals', 'witness.approvals', { agent, kind: 'human.resume', data: { actor: 'support-bot', agent: 'support-bot' } }],
  ['key.rotated into its own session', 'session-1', { agent, kind: 'key.rotated', data: { old_key: 'a', new_key: 'b' } }],
  ['key.rotated into witness.keys', 'witness.keys', { agent, kind: 'key.rotated', data: { old_key: 'a', new_key: 'b' } }],
  ['hold.released into witness.retention', 'witness.retention', { agent, kind: 'hold.released', data: { hold_id: 'hold-1', released_by: 'x', reason: 'y' } }],
  ['hold.released into its own session', 'session-1', { agent, kind: 'hold.released', data: { hold_id: 'hold-1', released_by: 'x', reason: 'y' } }],
  [
    'a retention config.change into witness.retention',
    'witness.retention',
    { agent, kind: 'config.change', data: { target: 'retention', description: 'keep a day', rule: { selector: 'all', older_than: '1d', duty: false } } },
  ],
  ['a note into witness.approvals', 'witness.approvals', { agent, kind: 'note', data: { text: 'hi' } }],
  ['a note into witness.gateway', 'witness.gateway', { agent, kind: 'note', data: { text: 'hi' } }],
  ['a note claiming the CLI as its recorder', 'session-1', { agent, kind: 'note', recorder: { kind: 'cli' }, data: { text: 'hi' } }],
];

/** One sentence a person can act on. */
function expectOneSentence(message: string): void {
  expect(message).not.toMatch(/\n/);
  expect(message).toMatch(/\.$/);
  expect(message).not.toMatch(/[.!?]\s+[A-Z]/);
}

describe('the SDK refuses governance records and system streams', () => {
  for (const [what, stream, input] of attempts) {
    it(`strict: throws forbidden for ${what}, recording nothing`, async () => {
      const { w, url } = await sdk(true);
      for (const write of [() => w.record(stream, input), () => w.recordStrict(stream, input)]) {
        const e = await write().then(
          () => undefined,
          (x: unknown) => x,
        );
        expect(isWitnessError(e), `${what}: ${String(e)}`).toBe(true);
        expect((e as WitnessError).code).toBe('forbidden');
        expectOneSentence((e as WitnessError).message);
      }
      await w.flush();
      expect(await count(url)).toBe(0);
    });
  }

  it('non-strict: reports each refusal to onError, writes nothing into a system stream, and leaves a visible error in the agent’s own session', async () => {
    const seen: WitnessError[] = [];
    const { w, url } = await sdk(false, (e) => seen.push(e));
    for (const [, stream, input] of attempts) expect(await w.record(stream, input)).toBeUndefined();
    await w.flush();
    expect(seen.map((e) => e.code)).toEqual(attempts.map(() => 'forbidden'));
    expect(await count(url, { stream: 'witness.approvals' })).toBe(0);
    expect(await count(url, { stream: 'witness.retention' })).toBe(0);
    expect(await count(url, { stream: 'witness.keys' })).toBe(0);
    expect(await count(url, { kind: 'key.rotated' })).toBe(0);
    expect(await count(url, { kind: 'hold.released' })).toBe(0);
    // Refusals in the agent's own session leave a trace there, as rejected records do.
    const l = await openLedger(url, { create: false, readonly: true });
    try {
      const errors = (await l.query({ stream: 'session-1', kind: 'error', limit: 100 })).events;
      expect(errors.length).toBe(attempts.filter(([, s]) => s === 'session-1').length);
      expect(errors.every((e) => e.data?.['code'] === 'forbidden')).toBe(true);
    } finally {
      await l.close();
    }
  });

  it('refuses every kind an agent key may not write, through a session too', async () => {
    const { w } = await sdk(true);
    const s = await w.session({ agent });
    for (const kind of AGENT_REFUSED_KINDS) {
      await expect(s.record(kind, {} as never)).rejects.toMatchObject({ code: 'forbidden' });
    }
    // An ordinary record still works.
    expect(await s.note('still recording')).toMatchObject({ stream: s.id });
  });

  it('cannot lift its own halt: a person halts it, its resume is refused, and it stays halted', async () => {
    const { w, url } = await sdk(true);
    await recordHalt(w, { agent: 'support-bot', actor: 'alice', reason: 'refunding everything' });
    await expect(w.recordStrict(HALT_STREAM, { agent, kind: 'human.resume', data: { actor: 'support-bot', agent: 'support-bot' } })).rejects.toMatchObject({
      code: 'forbidden',
      message: expect.stringContaining('witness resume'),
    });
    const l = await openLedger(url, { create: false, readonly: true });
    try {
      expect((await haltState(l, 'support-bot')).halted).toBe(true);
    } finally {
      await l.close();
    }
  });

  it("Witness's own writers go through systemWriter, stamped with their recorder, and the package entry does not export it", async () => {
    const { w, url } = await sdk(true);
    const cli = systemWriter(w, 'cli');
    const r = await cli.recordStrict('witness.approvals', { agent, kind: 'note', data: { text: 'by the CLI' } });
    const gw = await systemWriter(w, 'gateway').session({ agent });
    const p = await gw.record('policy.decision', { decision: 'allow' } as never);
    await w.flush();
    const l = await openLedger(url, { create: false, readonly: true });
    try {
      expect((await l.getEvent(r.id))?.recorder?.kind).toBe('cli');
      expect((await l.getEvent(p!.id))?.recorder?.kind).toBe('gateway');
    } finally {
      await l.close();
    }
    expect(Object.keys(facade)).not.toContain('systemWriter');
    expect(url).toMatch(/^sqlite:/);
  });
});

/** An object whose `key` answers `first` on the first read and `then` on every later one. */
function flipping<T extends object>(o: T, key: string, first: unknown, then: unknown): T {
  let reads = 0;
  return Object.defineProperty(o, key, { get: () => (reads++ === 0 ? first : then), enumerable: true });
}

describe('the SDK checks one copy of what it records', () => {
  // What the gateway records for a held call (the reviewer's approval.request, valid for its kind).
  const request = {
    request_id: '01a24dd1-0000-7000-8000-000000000001',
    tool: 'refund',
    server: 'shop',
    session: 'session-1',
    arguments: { order: 'all' },
    arguments_digest: 'a'.repeat(64),
    arguments_salt: 'b'.repeat(64),
    rule: 'routine-read-only',
    reason: 'pre-approved by finance',
    expires_at: '2099-01-01T00:00:00.000Z',
  };
  const tricks: Array<[string, () => EventInput]> = [
    ['a kind that reads note, then approval.request', () => flipping({ agent, data: request }, 'kind', 'note', 'approval.request') as unknown as EventInput],
    ['a kind that reads note, then human.halt', () => flipping({ agent, data: { actor: 'ciso', agent: 'support-bot', reason: 'drill' } }, 'kind', 'note', 'human.halt') as unknown as EventInput],
    ['a kind that reads note, then alert', () => flipping({ agent, data: { severity: 'info', message: 'all clear', code: 'resolved' } }, 'kind', 'note', 'alert') as unknown as EventInput],
    ['a recorder kind that reads sdk, then gateway', () => ({ agent, kind: 'note', recorder: flipping({ version: '1' }, 'kind', 'sdk', 'gateway'), data: { text: 't' } }) as unknown as EventInput],
    ['a recorder kind that reads sdk, then server', () => ({ agent, kind: 'note', recorder: flipping({ version: '1' }, 'kind', 'sdk', 'server'), data: { text: 't' } }) as unknown as EventInput],
  ];
  for (const [what, make] of tricks) {
    it(`records what it checked, never a governance kind or another recorder, for ${what}`, async () => {
      const { w, url } = await sdk(true);
      for (const write of [() => w.record('session-1', make()), () => w.recordStrict('session-1', make())]) await write().catch(() => undefined);
      await w.flush();
      const l = await openLedger(url, { create: false, readonly: true });
      try {
        const events = (await l.query({ limit: 100 })).events;
        for (const e of events) {
          expect(AGENT_REFUSED_KINDS.has(e.kind), `${what}: ${e.kind}`).toBe(false);
          expect(e.recorder?.kind, what).toBe('sdk');
        }
      } finally {
        await l.close();
      }
    });
  }

  it('refuses the header fields the server refuses agent keys (principal, policy, approvals), recording nothing', async () => {
    const { w, url } = await sdk(true);
    const claims: Array<[string, Record<string, unknown>]> = [
      ['principal', { principal: { id: 'alice', kind: 'human' } }],
      ['policy', { policy: { decision: 'allow', rule: 'refunds-approved', mode: 'enforce' } }],
      ['approvals', { approvals: [{ approver: 'cfo', decision: 'approved', ts: '2026-11-23T10:00:00.000Z' }] }],
    ];
    for (const [field, extra] of claims) {
      const input = { agent, kind: 'tool.call', resource: 'shop/refund', action: 'call', data: { tool: 'refund', arguments: {} }, ...extra } as unknown as EventInput;
      for (const write of [() => w.record('session-1', input), () => w.recordStrict('session-1', input)]) {
        const e = await write().then(
          () => undefined,
          (x: unknown) => x,
        );
        expect((e as WitnessError | undefined)?.code, field).toBe('forbidden');
        expect((e as WitnessError).details?.['path']).toBe(field);
        expectOneSentence((e as WitnessError).message);
      }
    }
    const s = await w.session({ agent });
    await expect(s.note('on behalf of', { principal: { id: 'alice', kind: 'human' } })).rejects.toMatchObject({ code: 'forbidden' });
    await w.flush();
    expect(await count(url, { kind: 'tool.call' })).toBe(0);
    // Witness's own writers still set them.
    const r = await systemWriter(w, 'cli').recordStrict('witness.approvals', { agent, kind: 'note', principal: { id: 'alice', kind: 'human' }, data: { text: 'by alice' } });
    expect(r.id).toBeTypeOf('string');
  });

  it('keeps its write path and its ledger out of reach at run time: no write, writeStrict, ledger or writer member on the instance', async () => {
    const { w } = await sdk(true);
    const loose = w as unknown as Record<string, unknown>;
    for (const member of ['write', 'writeStrict', 'ledger', 'writer', 'prepare']) {
      expect(member in w, member).toBe(false);
      expect(loose[member], member).toBeUndefined();
    }
    expect(Object.getOwnPropertyNames(w).filter((k) => /ledger|writer/i.test(k))).toEqual([]);
  });
});
