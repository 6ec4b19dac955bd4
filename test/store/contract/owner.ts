import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { AppendRequest } from '../../../src/store/index.js';
import type { DriverUnderTest } from './driver.js';
import { verifyAfresh, withLedger } from './fixtures.js';

/** The error's code; by field, since the sqlite-built driver throws dist's WitnessError class. */
const codeOf = (e: unknown): unknown => (e instanceof Error ? (e as Error & { code?: unknown }).code : undefined);

const by = (agent: string, stream: string, text = 'hello'): AppendRequest => ({ stream, agent: { id: agent }, kind: 'note', data: { text } }) as AppendRequest;

/**
 * The owner condition (AppendOptions.owner): a stream is appended to only when it is new or was
 * begun by that agent, checked inside the append transaction, so that of two agents racing on one
 * new stream exactly one writes into it.
 */
export function ownerContract(driver: DriverUnderTest): void {
  describe('append with an owner', () => {
    it('[R-INGEST-IDENTITY] appends to a new stream and to one the owner began; refuses, whole, a batch touching a stream another agent began', async () => {
      await withLedger(driver, async (l) => {
        const mine = `own-${randomUUID()}`;
        const theirs = `own-${randomUUID()}`;
        await l.append([by('alice', mine)], { owner: 'alice' });
        await l.append([by('bob', theirs)]);
        await l.append([by('alice', mine, 'again')], { owner: 'alice' });
        const size = l.info.size;
        const refused = await l.append([by('alice', `own-${randomUUID()}`), by('alice', theirs)], { owner: 'alice' }).catch((e: unknown) => e);
        expect(codeOf(refused)).toBe('forbidden');
        expect((refused as Error).message).toContain(JSON.stringify(theirs));
        // A new stream whose first event is another agent's is not the owner's either.
        const second = await l.append([by('bob', `own-${randomUUID()}`)], { owner: 'alice' }).catch((e: unknown) => e);
        expect(codeOf(second)).toBe('forbidden');
        const prepared = l.prepare([by('alice', theirs)]);
        expect(codeOf(await l.appendPrepared(prepared, { owner: 'alice' }).catch((e: unknown) => e))).toBe('forbidden');
        expect((await l.readStream(theirs)).map((e) => e.agent.id)).toEqual(['bob']);
        expect(l.info.size).toBe(size);
        // Without the option nothing is checked.
        await l.append([by('carol', theirs)]);
        expect((await verifyAfresh(driver, l)).ok).toBe(true);
      });
    });

    it('[R-INGEST-IDENTITY] of two handles racing to begin one new stream as different owners, exactly one writes into it, 20 times over', async () => {
      await withLedger(driver, async (l, also) => {
        const other = also(await driver.openAgain(l));
        for (let i = 0; i < 20; i++) {
          const stream = `race-${randomUUID()}`;
          const results = await Promise.allSettled([l.append([by('alice', stream), by('alice', stream)], { owner: 'alice' }), other.append([by('mallory', stream)], { owner: 'mallory' })]);
          expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
          const failed = results.find((r) => r.status === 'rejected');
          expect(codeOf(failed?.reason)).toBe('forbidden');
          expect(new Set((await l.readStream(stream)).map((e) => e.agent.id)).size).toBe(1);
        }
        expect((await verifyAfresh(driver, l)).ok).toBe(true);
      });
    });
  });
}
