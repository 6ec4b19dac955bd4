import { createHash } from 'node:crypto';
import Anthropic from '@anthropic-ai/sdk';
import { afterAll, describe, expect, it } from 'vitest';
import { canonicalize, type StoredEvent } from '../../src/core/index.js';
import { recordAnthropic } from '../../src/integrations/anthropic.js';
import { openWitness, type Session, type Witness } from '../../src/index.js';
import { verifyLedger } from '../../src/store/index.js';
import { driverOf } from '../helpers/ledger.js';
import { tempDb, tempDir } from '../helpers/tmp.js';
import { fixtureJson, providerServer } from './provider-server.js';

/**
 * The parts of an llm.call a wrapper cuts to keep it within the ledger's payload limit are stored
 * whole in the artifact store (redacted, as RFC 8785 JSON) and referenced from their markers and
 * the event's artifacts, so an auditor gets the whole prompt and answer from the ledger.
 */

const dir = tempDir();
const server = await providerServer();
const errors: unknown[] = [];
const w: Witness = await openWitness({ store: `sqlite:${tempDb(dir)}`, onError: (e) => errors.push(e) });
afterAll(() => w.close());

const sha256 = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');
const anthropic = () => new Anthropic({ apiKey: 'test-key', baseURL: server.baseURL, maxRetries: 0 });
const params = { model: 'claude-sonnet-4-5', max_tokens: 8192, messages: [{ role: 'user' as const, content: 'Write at length.' }] };

async function events(s: Session): Promise<StoredEvent[]> {
  await w.flush();
  return driverOf(w).readStream(s.id);
}

describe('cut parts of a large llm.call, stored as artifacts', () => {
  it('stores a 5 MiB answer whole as an artifact its marker names, and the caller gets the answer unchanged', async () => {
    const essay = 'All work and no play. '.repeat((5 * 1024 * 1024) / 22);
    const content = [{ type: 'text', text: essay }];
    const body = { ...(fixtureJson('anthropic-message.json') as Record<string, unknown>), content, stop_reason: 'end_turn' };
    const s = await w.session({ agent: { id: 'essay-bot' } });
    server.next({ kind: 'json', status: 200, body, headers: { 'request-id': 'req_big' } });
    const msg = await recordAnthropic(anthropic(), s).messages.create(params);
    expect(msg.content).toEqual(content);

    const ev = (await events(s)).find((e) => e.kind === 'llm.call')!;
    const output = ev.data!['output'] as Record<string, unknown>;
    expect(ev.data!['truncated']).toEqual(['output']);
    expect(output['sha256']).toBe(sha256(canonicalize(content)));
    expect(output['$artifact']).toBe(output['sha256']);
    expect(ev.artifacts).toEqual([expect.objectContaining({ sha256: output['$artifact'], mime: 'application/json', bytes: output['bytes'] })]);
    const stored = await driverOf(w).readArtifact(output['$artifact'] as string);
    expect(JSON.parse(stored!.toString('utf8'))).toEqual(content);
    expect((await verifyLedger(driverOf(w))).ok).toBe(true);
  });

  it('stores a cut prompt redacted: a key in it is in neither the record nor the artifact, whose digest the marker names beside the digest of what was sent', async () => {
    const key = 'sk-ant-api03-' + 'A'.repeat(93) + 'AA';
    const long = `Here is my key ${key} and then a long text. ` + 'Lorem ipsum dolor sit amet. '.repeat(40_000);
    const messages = [{ role: 'user' as const, content: long }];
    const s = await w.session({ agent: { id: 'essay-bot' } });
    server.next({ kind: 'json', status: 200, body: fixtureJson('anthropic-message.json'), headers: { 'request-id': 'req_big_in' } });
    await recordAnthropic(anthropic(), s).messages.create({ ...params, messages });

    const ev = (await events(s)).find((e) => e.kind === 'llm.call')!;
    expect(ev.data!['truncated']).toEqual(['input[0]']);
    const m = (ev.data!['input'] as Array<Record<string, unknown>>)[0]!;
    expect(m['sha256']).toBe(sha256(canonicalize(messages[0])));
    expect(m['$artifact']).not.toBe(m['sha256']);
    const stored = (await driverOf(w).readArtifact(m['$artifact'] as string))!;
    expect(sha256(stored)).toBe(m['$artifact']);
    const text = stored.toString('utf8');
    expect(text).not.toContain(key);
    expect(text).toContain('Lorem ipsum dolor sit amet.');
    expect(JSON.stringify(ev)).not.toContain(key);
    expect(ev.artifacts!.map((a) => a.sha256)).toEqual([m['$artifact']]);
  });
});
