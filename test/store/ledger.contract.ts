import { describe, expect, it } from 'vitest';
import { genesisHash, leafHash, openCheckpoint, parseVerifierKey, sha256Hex, verifyConsistency, verifyInclusion, type EventInput } from '../../src/core/index.js';
import { verifyLedger, type AppendRequest, type Ledger } from '../../src/store/index.js';

/**
 * The one contract every Ledger driver passes. A driver's test file calls `ledgerContract` with a
 * factory that opens a fresh, empty ledger on the real database (no mocks).
 */
export interface DriverUnderTest {
  name: string;
  open(): Promise<Ledger>;
}

const agent = { id: 'contract-bot' };

function note(stream: string, text: string, extra: Partial<EventInput> = {}): AppendRequest {
  return { stream, agent, kind: 'note', data: { text }, ...extra } as AppendRequest;
}

export function ledgerContract(driver: DriverUnderTest): void {
  describe(`Ledger contract: ${driver.name}`, () => {
    it('assigns seq from 0 per stream, links prev to the previous hash (genesis first) and gives gapless global positions', async () => {
      const l = await driver.open();
      try {
        const r = await l.append([note('s1', 'a'), note('s2', 'b'), note('s1', 'c')]);
        expect(r.map((x) => [x.stream, x.seq, x.pos])).toEqual([
          ['s1', 0, 0],
          ['s2', 0, 1],
          ['s1', 1, 2],
        ]);
        const s1 = await l.readStream('s1');
        expect(s1[0]!.prev).toBe(genesisHash(l.info.origin, 's1').toString('hex'));
        expect(s1[1]!.prev).toBe(s1[0]!.hash);
        expect(l.info.size).toBe(3);
      } finally {
        await l.close();
      }
    });

    it('appends a batch atomically: one invalid event and nothing of the batch is stored', async () => {
      const l = await driver.open();
      try {
        await expect(l.append([note('s', 'ok'), { stream: 's', agent, kind: 'note', data: {} } as AppendRequest])).rejects.toMatchObject({ code: 'invalid_event' });
        expect(await l.readStream('s')).toEqual([]);
      } finally {
        await l.close();
      }
    });

    it('queries by agent, kind, resource, action, outcome and time window, paging with a cursor without duplicates', async () => {
      const l = await driver.open();
      try {
        const batch: AppendRequest[] = [];
        for (let i = 0; i < 30; i++) {
          batch.push({
            stream: `q${i % 3}`,
            agent: { id: i % 2 === 0 ? 'even' : 'odd' },
            kind: 'tool.call',
            resource: i % 5 === 0 ? 'billing' : 'crm',
            action: 'lookup',
            outcome: i % 7 === 0 ? 'denied' : 'success',
            ts: new Date(Date.UTC(2026, 10, 1, 0, i)).toISOString(),
            data: { tool: 'crm.lookup', arguments: { i } },
          } as AppendRequest);
        }
        await l.append(batch);
        expect((await l.query({ agent: 'even', limit: 100 })).events).toHaveLength(15);
        expect((await l.query({ resource: 'billing', limit: 100 })).events).toHaveLength(6);
        expect((await l.query({ outcome: 'denied', limit: 100 })).events).toHaveLength(5);
        expect((await l.query({ kind: 'note', limit: 100 })).events).toHaveLength(0);
        const window = await l.query({ since: '2026-11-01T00:10:00.000Z', until: '2026-11-01T00:20:00.000Z', limit: 100 });
        expect(window.events.map((e) => e.ts)).toHaveLength(10);
        const seen: number[] = [];
        let cursor: string | undefined;
        do {
          const page = await l.query({ action: 'lookup', limit: 7, ...(cursor === undefined ? {} : { cursor }) });
          seen.push(...page.events.map((e) => e.pos));
          cursor = page.next;
        } while (cursor !== undefined);
        expect(seen).toEqual([...Array(30).keys()]);
      } finally {
        await l.close();
      }
    });

    it('seals signed checkpoints whose inclusion and consistency proofs verify, and the whole ledger verifies', async () => {
      const l = await driver.open();
      try {
        await l.append([note('p', '1'), note('p', '2'), note('p', '3')]);
        expect(await l.sealRecord()).toBeUndefined();
        const first = (await l.seal())!;
        expect((await l.sealRecord())?.note).toBe(first.note);
        await l.append([note('p', '4'), note('p', '5')]);
        const second = (await l.seal())!;
        expect(await l.seal()).toBeNull();
        // The sealer keeps the last checkpoint it signed outside the database, for the next seal and for verify.
        expect((await l.sealRecord())?.note).toBe(second.note);
        const keys = (await l.publicKeys()).map((k) => parseVerifierKey(k.vkey));
        const cp1 = openCheckpoint(first.note, keys, l.info.origin).checkpoint;
        const cp2 = openCheckpoint(second.note, keys, l.info.origin).checkpoint;
        expect([cp1.size, cp2.size]).toEqual([3, 5]);
        expect(verifyConsistency(3, 5, await l.consistencyProof(3, 5), cp1.rootHash, cp2.rootHash)).toEqual({ ok: true });
        for (const ev of await l.readStream('p')) {
          const proof = await l.inclusionProof(ev.pos, 5);
          expect(verifyInclusion(leafHash(Buffer.from(ev.hash, 'hex')), ev.pos, 5, proof, cp2.rootHash)).toEqual({ ok: true });
        }
        const report = await verifyLedger(l);
        expect(report.failures).toEqual([]);
        expect(report).toMatchObject({ ok: true, checkpoints: 2, sealedSize: 5, unsealed: 0 });
      } finally {
        await l.close();
      }
    });

    it('stores artifacts by SHA-256 once, and returns their bytes', async () => {
      const l = await driver.open();
      try {
        const bytes = Buffer.from('screenshot bytes');
        const a = await l.putArtifact(bytes, 'image/png', 'before');
        const b = await l.putArtifact(bytes, 'image/png', 'before');
        expect(a).toEqual({ sha256: sha256Hex(bytes), mime: 'image/png', bytes: bytes.length, role: 'before' });
        expect(b).toEqual(a);
        expect(await l.readArtifact(a.sha256)).toEqual(bytes);
        expect(await l.readArtifact('0'.repeat(64))).toBeUndefined();
      } finally {
        await l.close();
      }
    });

    it('answers for artifacts by digest alone (put, read, has), never with a file path a caller could open', async () => {
      const l = await driver.open();
      try {
        const bytes = Buffer.from('video bytes');
        const ref = await l.putArtifact(bytes, 'video/mp4', 'video');
        expect(await l.hasArtifact(ref.sha256)).toBe(true);
        expect(await l.hasArtifact(sha256Hex(Buffer.from('never stored')))).toBe(false);
        expect(await l.readArtifact(ref.sha256)).toEqual(bytes);
        // A path is a driver detail (PostgreSQL keeps artifacts elsewhere): the seam does not offer one.
        expect(Object.keys(l).concat(Object.getOwnPropertyNames(Object.getPrototypeOf(l)))).not.toContain('artifactPath');
      } finally {
        await l.close();
      }
    });
  });
}
