import { describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/core/index.js';
import { openWitness } from '../../src/index.js';
import { verifyLedger } from '../../src/store/index.js';
import { tempDb, tempDir } from '../helpers/tmp.js';
import { driverOf } from '../helpers/ledger.js';

const dir = tempDir();

describe('the SDK records what an auditor asks for', () => {
  it('[R-REASONING] records model, input, output, tool calls, tokens, latency and only the digest of the system prompt', async () => {
    const w = await openWitness({ store: `sqlite:${tempDb(dir)}`, strict: true });
    const s = await w.session({ agent: { id: 'support-bot', version: '1.4.2' }, user: 'customer-1' });
    const r = await s.llmCall({
      model: 'claude-sonnet-4-5',
      responseModel: 'claude-sonnet-4-5-20250929',
      provider: 'anthropic',
      input: [{ role: 'user', content: 'refund order A-1' }],
      output: 'I will look it up.',
      toolCalls: [{ id: 't1', name: 'crm.get', arguments: { id: 'A-1' } }],
      usage: { input_tokens: 10, output_tokens: 5 },
      latencyMs: 812,
      systemPrompt: 'secret house rules',
      toolDefinitions: [{ name: 'crm.get' }],
      dataSources: [{ id: 'kb', version: '7' }],
    });
    const ev = (await driverOf(w).getEvent(r!.id))!;
    expect(ev.kind).toBe('llm.call');
    expect(ev.agent).toEqual({ id: 'support-bot', version: '1.4.2' });
    expect(ev.data).toMatchObject({
      model: 'claude-sonnet-4-5',
      response_model: 'claude-sonnet-4-5-20250929',
      provider: 'anthropic',
      input: [{ role: 'user', content: 'refund order A-1' }],
      output: 'I will look it up.',
      tool_calls: [{ id: 't1', name: 'crm.get', arguments: { id: 'A-1' } }],
      usage: { input_tokens: 10, output_tokens: 5 },
      latency_ms: 812,
      system_prompt_sha256: sha256Hex('secret house rules'),
      data_sources: [{ id: 'kb', version: '7' }],
      agent_version: '1.4.2',
    });
    expect(JSON.stringify(ev)).not.toContain('secret house rules');
    await w.close();
  });

  it('[R-TOOL-LINK] records tool.call before the tool runs and tool.result after, linked by parent, with resource and action', async () => {
    const w = await openWitness({ store: `sqlite:${tempDb(dir)}`, strict: true });
    const s = await w.session({ agent: { id: 'a' } });
    let seenBeforeRun = 0;
    const out = await s.tool(
      'billing.refund',
      { amount: 50 },
      async () => {
        seenBeforeRun = (await driverOf(w).readStream(s.id)).filter((e) => e.kind === 'tool.call').length;
        return { ok: true };
      },
      { server: 'billing' },
    );
    expect(out).toEqual({ ok: true });
    expect(seenBeforeRun).toBe(1);
    const events = await driverOf(w).readStream(s.id);
    const call = events.find((e) => e.kind === 'tool.call')!;
    const result = events.find((e) => e.kind === 'tool.result')!;
    expect(call).toMatchObject({ resource: 'billing', action: 'billing.refund', outcome: 'pending', data: { tool: 'billing.refund', server: 'billing', arguments: { amount: 50 } } });
    expect(result).toMatchObject({ parent: call.id, outcome: 'success', data: { is_error: false, output: { ok: true } } });
    expect(typeof result.data?.['duration_ms']).toBe('number');
    await w.close();
  });

  it('[R-SESSION-END] ends a session with reason, final output, the count and last hash of the stream, sealed into a checkpoint', async () => {
    const w = await openWitness({ store: `sqlite:${tempDb(dir)}`, strict: true });
    const s = await w.session({ agent: { id: 'a' } });
    await s.note('one');
    const last = await s.note('two');
    await s.end({ reason: 'max_iterations', finalOutput: 'gave up after 10 steps' });
    const events = await driverOf(w).readStream(s.id);
    const end = events[events.length - 1]!;
    expect(end.kind).toBe('session.end');
    expect(end.data).toEqual({ reason: 'max_iterations', final_output: 'gave up after 10 steps', event_count: 3, last_hash: last!.hash });
    const cp = await driverOf(w).latestCheckpoint();
    expect(cp!.size).toBe(driverOf(w).info.size);
    const report = await verifyLedger(driverOf(w));
    expect(report.ok).toBe(true);
    expect(report.unsealed).toBe(0);
    await w.close();
  });
});

describe('when the store fails and recovers', () => {
  it('[R-NO-THROW] reports events lost to a locked store and records the gap in their session once writes work again', async () => {
    const Database = (await import('better-sqlite3')).default;
    const file = tempDb(dir);
    const errors: string[] = [];
    const w = await openWitness({ store: `sqlite:${file}`, busyTimeoutMs: 20, retryForMs: 100, onError: (e) => errors.push(`${e.code}: ${e.message}`) });
    const s = await w.session({ agent: { id: 'gap-bot' } });
    const other = new Database(file);
    other.exec('BEGIN EXCLUSIVE');
    const lost = await s.note('written while the ledger is locked');
    other.exec('ROLLBACK');
    other.close();
    expect(lost).toBeUndefined();
    expect(errors.join('\n')).toMatch(/store_locked: 1 event\(s\) could not be recorded/);
    await s.note('after recovery');
    await w.flush();
    await new Promise((r) => setTimeout(r, 20));
    await w.flush();
    const events = await driverOf(w).readStream(s.id);
    const gap = events.find((e) => e.kind === 'error');
    expect(gap?.data).toMatchObject({ code: 'recording_gap', source: 'recorder', message: expect.stringMatching(/^1 event\(s\) of this session between .* could not be recorded \(store_locked\)/) });
    expect(events.map((e) => e.data?.['text']).filter(Boolean)).toEqual(['after recovery']);
    expect((await verifyLedger(driverOf(w))).ok).toBe(true);
    await w.close();
  });
});

describe('sealing cadence', () => {
  it('seals after everyEvents events without waiting for the session to end', async () => {
    const w = await openWitness({ store: `sqlite:${tempDb(dir)}`, strict: true, seal: { everyEvents: 10 } });
    const s = await w.session({ agent: { id: 'a' } });
    for (let i = 0; i < 25; i++) await s.note(`n${i}`);
    await new Promise((r) => setTimeout(r, 50));
    const sizes = (await driverOf(w).checkpoints()).map((c) => c.size);
    expect(sizes.length).toBeGreaterThanOrEqual(2);
    expect(sizes.every((n) => n >= 10)).toBe(true);
    await w.close();
  });

  it('writes heartbeat checkpoints while idle, so a silent gap is itself evidence', async () => {
    const w = await openWitness({ store: `sqlite:${tempDb(dir)}`, strict: true, seal: { heartbeatMs: 40, everyMs: 40 } });
    const s = await w.session({ agent: { id: 'a' } });
    await s.note('one');
    // Heartbeats every 40 ms: wait for three (up to 10 s, so a busy CI machine only makes it slower).
    let cps = await driverOf(w).checkpoints();
    for (const deadline = Date.now() + 10_000; cps.length < 3 && Date.now() < deadline; cps = await driverOf(w).checkpoints()) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(cps.length).toBeGreaterThanOrEqual(3);
    expect(new Set(cps.map((c) => c.size)).size).toBe(1);
    await w.close();
  });
});

describe('witness.reader', () => {
  it('reads the ledger but reaches nothing that writes, and its info cannot be changed to mislead the driver', async () => {
    const w = await openWitness({ store: `sqlite:${tempDb(dir)}`, strict: true });
    try {
      const s = await w.session({ agent: { id: 'reader-bot' } });
      await s.note('first');
      const r = w.reader as unknown as Record<string, unknown>;
      expect(Object.keys(r).sort()).toEqual(['getEvent', 'info', 'query', 'readArtifact', 'readStream']);
      expect(Object.isFrozen(r)).toBe(true);
      const origin = w.reader.info.origin;
      expect(() => {
        (w.reader.info as { origin: string }).origin = 'forged/witness/0';
      }).toThrow(TypeError);
      expect(w.reader.info.origin).toBe(origin);
      // The driver still chains and seals under its own origin.
      await s.note('second');
      await w.sealNow();
      expect((await driverOf(w).checkpoints()).at(-1)!.note.startsWith(`${origin}\n`)).toBe(true);
      expect(w.reader.info.size).toBe((await w.reader.readStream(s.id)).length);
    } finally {
      await w.close();
    }
  });
});
