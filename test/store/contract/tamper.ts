import { describe, expect, it } from 'vitest';
import { canonicalize, eventHash, genesisHash, payloadDigest, type VerifyReport } from '../../../src/core/index.js';
import type { Ledger, VerifyLedgerOptions } from '../../../src/store/index.js';
import type { DriverUnderTest } from './driver.js';
import { buildSealed, editedHeader, forge, image, note, rawRows, rewrittenStream, verifyAfresh, where, withLedger, type SealedLedger } from './fixtures.js';

/**
 * The tamper classes of the foundation issue, made through each driver's edit hook on the ledger
 * of fixtures.ts's buildSealed (three streams, an artifact, checkpoints of size 5, 8 and 11), and
 * verified on a fresh handle: each must be reported with the expected code at the exact stream,
 * seq and leaf. test/store/tamper.test.ts goes deeper on SQLite files; these are what every
 * driver owes.
 */
async function tampered(driver: DriverUnderTest, fn: (l: Ledger, s: SealedLedger) => Promise<VerifyLedgerOptions | void>): Promise<{ r: VerifyReport; s: SealedLedger }> {
  return withLedger(driver, async (l) => {
    const s = await buildSealed(l);
    const clean = await verifyAfresh(driver, l);
    expect(clean.failures, 'the ledger before the edit').toEqual([]);
    const options = await fn(l, s);
    return { r: await verifyAfresh(driver, l, options ?? {}), s };
  });
}

async function rowAt(l: Ledger, pos: number) {
  const row = (await rawRows(l)).find((r) => r.pos === pos);
  if (row === undefined) throw new Error(`no row at ${pos}`);
  return row;
}

function flipSignatureByte(note: string): string {
  const i = note.lastIndexOf(' ') + 1 + 30; // inside the Ed25519 signature, past the 4-byte key hash
  return note.slice(0, i) + (note[i] === 'A' ? 'B' : 'A') + note.slice(i + 1);
}

export function tamperContract(driver: DriverUnderTest): void {
  describe('tamper classes through the edit hook', () => {
    it('[R-TAMPER-PAYLOAD] reports payload_mismatch at the seq and leaf whose payload was edited, and nothing else', async () => {
      let at = 0;
      const { r, s } = await tampered(driver, async (l, s) => {
        at = s.pos(s.a, 1);
        const row = await rowAt(l, at);
        expect(row.data).toContain('"amount":50');
        await driver.edit(l, { kind: 'rewriteData', pos: at, data: row.data!.replace('"amount":50', '"amount":5000') });
      });
      expect(r.ok).toBe(false);
      expect(where(r)).toEqual([{ code: 'payload_mismatch', stream: s.a, seq: 1, leaf: at }]);
    });

    it('[R-RETENTION] reports payload_mismatch when only the salt is removed, and uncovered_purge when the payload goes with it and no retention.purge lists it', async () => {
      const salt = await tampered(driver, async (l, s) => driver.edit(l, { kind: 'rewriteSalt', pos: s.pos(s.a, 2), salt: null }));
      expect(where(salt.r)).toEqual([{ code: 'payload_mismatch', stream: salt.s.a, seq: 2, leaf: salt.s.pos(salt.s.a, 2) }]);
      const both = await tampered(driver, async (l, s) => {
        await driver.edit(l, { kind: 'rewriteData', pos: s.pos(s.c, 1), data: null });
        await driver.edit(l, { kind: 'rewriteSalt', pos: s.pos(s.c, 1), salt: null });
      });
      expect(both.r.first).toMatchObject({ code: 'uncovered_purge', stream: both.s.c, seq: 1 });
      expect(both.r.payloadsAbsent).toBe(1);
    });

    it('[R-TAMPER-HEADER] reports hash_mismatch at the seq whose header was edited, prev_mismatch at the next, and the signed tree no longer matches', async () => {
      let at = 0;
      const { r, s } = await tampered(driver, async (l, s) => {
        at = s.pos(s.a, 1);
        const row = await rowAt(l, at);
        await driver.edit(l, { kind: 'rewriteHeader', pos: at, header: editedHeader(row.header, (h) => void (h['outcome'] = 'error')) });
      });
      expect(r.first).toMatchObject({ code: 'hash_mismatch', stream: s.a, seq: 1, leaf: at });
      expect(where(r)).toContainEqual({ code: 'prev_mismatch', stream: s.a, seq: 2, leaf: s.pos(s.a, 2) });
      expect(where(r)).toContainEqual({ code: 'checkpoint_root_mismatch', leaf: 4, checkpoint: 1 });
    });

    it('reports prev_mismatch at the next seq when the edited header is re-hashed and its stored hash replaced too', async () => {
      const { r, s } = await tampered(driver, async (l, s) => {
        const row = await rowAt(l, s.pos(s.a, 1));
        const header = editedHeader(row.header, (h) => void (h['action'] = 'delete'));
        const prev = Buffer.from((JSON.parse(header) as { prev: string }).prev, 'hex');
        await driver.edit(l, { kind: 'rewriteHeader', pos: row.pos, header, hash: eventHash(prev, header) });
      });
      expect(r.first).toMatchObject({ code: 'prev_mismatch', stream: s.a, seq: 2, leaf: s.pos(s.a, 2) });
      expect(where(r)).toContainEqual({ code: 'checkpoint_root_mismatch', leaf: 4, checkpoint: 1 });
      expect(r.failures.some((f) => f.code === 'hash_mismatch')).toBe(false);
    });

    it('reports hash_mismatch, and nothing else, when only the stored hash is replaced', async () => {
      const { r, s } = await tampered(driver, async (l, s) => driver.edit(l, { kind: 'rewriteHash', pos: s.pos(s.b, 1), hash: Buffer.alloc(32) }));
      expect(where(r)).toEqual([{ code: 'hash_mismatch', stream: s.b, seq: 1, leaf: s.pos(s.b, 1) }]);
    });

    it('[R-TAMPER-DELETE] reports one position_gap, and seq_gap and prev_mismatch in its stream, where an event in the middle was deleted', async () => {
      let deleted = 0;
      const { r, s } = await tampered(driver, async (l, s) => {
        deleted = s.pos(s.a, 2);
        await driver.edit(l, { kind: 'deleteEvent', pos: deleted });
      });
      expect(r.ok).toBe(false);
      expect(r.first?.code).toBe('position_gap');
      expect(r.first?.reason).toContain(`Leaf ${deleted} is missing`);
      expect(r.failures.filter((f) => f.code === 'position_gap')).toHaveLength(1);
      expect(where(r)).toContainEqual({ code: 'seq_gap', stream: s.a, seq: 3, leaf: s.pos(s.a, 3) });
      expect(where(r)).toContainEqual({ code: 'prev_mismatch', stream: s.a, seq: 3, leaf: s.pos(s.a, 3) });
    });

    it('[R-TAMPER-TRUNCATE] reports checkpoint_beyond_ledger at the new end when the tail of the ledger is cut off', async () => {
      const { r } = await tampered(driver, async (l) => driver.edit(l, { kind: 'truncateTail', from: 9 }));
      expect(r.ok).toBe(false);
      expect(r.first).toMatchObject({ code: 'checkpoint_beyond_ledger', leaf: 9, checkpoint: 3 });
      expect(r.failures.filter((f) => f.stream !== undefined)).toEqual([]);
    });

    it('[R-TAMPER-REORDER] reports seq_gap and seq_out_of_order where two events of one stream were swapped', async () => {
      let p = 0;
      let q = 0;
      const { r, s } = await tampered(driver, async (l, s) => {
        [p, q] = [s.pos(s.a, 1), s.pos(s.a, 2)];
        await driver.edit(l, { kind: 'swapEvents', a: p, b: q });
      });
      expect(r.first).toMatchObject({ code: 'seq_gap', stream: s.a, seq: 2, leaf: p });
      expect(where(r)).toContainEqual({ code: 'seq_out_of_order', stream: s.a, seq: 1, leaf: q });
      expect(where(r)).toContainEqual({ code: 'checkpoint_root_mismatch', leaf: 4, checkpoint: 1 });
    });

    it('reports checkpoint_root_mismatch, and no chain failure, when events of two streams are swapped', async () => {
      const { r } = await tampered(driver, async (l) => driver.edit(l, { kind: 'swapEvents', a: 0, b: 1 }));
      expect(r.ok).toBe(false);
      expect(r.failures.filter((f) => f.stream !== undefined)).toEqual([]);
      expect(where(r)).toContainEqual({ code: 'checkpoint_root_mismatch', leaf: 4, checkpoint: 1 });
    });

    it('reports event_after_end for a correctly chained event forged after a session.end', async () => {
      const { r, s } = await tampered(driver, async (l, s) => {
        const end = await rowAt(l, s.pos(s.a, 4));
        expect(end.kind).toBe('session.end');
        await driver.edit(l, { kind: 'insertEvent', row: forge(s.a, 5, Buffer.from(end.hash), 11, 'note', { text: 'also refunded $5,000' }) });
      });
      expect(where(r)).toEqual([{ code: 'event_after_end', stream: s.a, seq: 5, leaf: 11 }]);
    });

    it('[R-TAMPER-INSERT] reports checkpoint_root_mismatch for a whole forged session slipped into sealed history', async () => {
      const { r } = await tampered(driver, async (l) => {
        await driver.edit(l, { kind: 'insertEvent', row: forge('forged-session', 0, genesisHash(l.info.origin, 'forged-session'), 6, 'session.start', {}) });
      });
      expect(r.ok).toBe(false);
      expect(r.first).toMatchObject({ code: 'checkpoint_root_mismatch', checkpoint: 2, leaf: 7 });
      expect(r.failures.filter((f) => f.stream !== undefined)).toEqual([]);
    });

    it('[R-TAMPER-MOVE] catches an event moved to another stream (header rewritten): hash_mismatch where it landed, seq_gap where it was taken from', async () => {
      let at = 0;
      const { r, s } = await tampered(driver, async (l, s) => {
        at = s.pos(s.a, 3);
        const row = await rowAt(l, at);
        await driver.edit(l, { kind: 'rewriteHeader', pos: at, header: editedHeader(row.header, (h) => void (h['stream'] = s.c)) });
      });
      expect(r.ok).toBe(false);
      expect(where(r)).toContainEqual({ code: 'hash_mismatch', stream: s.c, seq: 3, leaf: at });
      expect(where(r)).toContainEqual({ code: 'seq_gap', stream: s.a, seq: 4, leaf: s.pos(s.a, 4) });
    });

    it("reports wrong_genesis for a stream chained from another ledger's genesis", async () => {
      const { r } = await tampered(driver, async (l) => {
        const foreign = genesisHash('elsewhere/witness/00000000-0000-0000-0000-000000000000', 'moved-in');
        await driver.edit(l, { kind: 'insertEvent', row: forge('moved-in', 0, foreign, 11, 'session.start', {}) });
      });
      expect(r.first).toMatchObject({ code: 'wrong_genesis', stream: 'moved-in', seq: 0, leaf: 11 });
    });

    it('[R-HOSTILE] reports malformed_header, non_canonical and invalid_header for headers that are not JSON, repeat a key or break the schema, without crashing', async () => {
      const { r, s } = await tampered(driver, async (l, s) => {
        const dup = await rowAt(l, s.pos(s.b, 2));
        await driver.edit(l, { kind: 'rewriteHeader', pos: s.pos(s.a, 1), header: '{not json' });
        await driver.edit(l, { kind: 'rewriteHeader', pos: dup.pos, header: dup.header.replace('"outcome":"success"', '"outcome":"error","outcome":"success"') });
        await driver.edit(l, { kind: 'rewriteHeader', pos: s.pos(s.c, 1), header: editedHeader((await rowAt(l, s.pos(s.c, 1))).header, (h) => void (h['kind'] = 'tool.teleport')) });
      });
      expect(r.ok).toBe(false);
      expect(where(r)).toContainEqual({ code: 'malformed_header', stream: s.a, seq: 1, leaf: s.pos(s.a, 1) });
      expect(where(r)).toContainEqual({ code: 'non_canonical', stream: s.b, seq: 2, leaf: s.pos(s.b, 2) });
      expect(where(r)).toContainEqual({ code: 'invalid_header', stream: s.c, seq: 1, leaf: s.pos(s.c, 1) });
    });

    it('reports session_end_mismatch for a session.end whose count and last hash were rewritten and re-hashed consistently', async () => {
      let at = 0;
      const { r, s } = await tampered(driver, async (l, s) => {
        at = s.pos(s.a, 4);
        const end = await rowAt(l, at);
        const data = canonicalize({ ...(JSON.parse(end.data!) as Record<string, unknown>), event_count: 3 });
        const header = editedHeader(end.header, (h) => void (h['payload_digest'] = payloadDigest(end.salt!, data).toString('hex')));
        const prev = Buffer.from((JSON.parse(header) as { prev: string }).prev, 'hex');
        await driver.edit(l, { kind: 'replaceEvent', row: { ...image(end), header, data, hash: eventHash(prev, header) } });
      });
      expect(r.first).toMatchObject({ code: 'session_end_mismatch', stream: s.a, seq: 4, leaf: at });
    });

    it('[R-UNSEALED-GAP] fails unsealed_gap for an event appended after the newest checkpoint but dated minutes before it', async () => {
      let leaf = 0;
      const { r, s } = await tampered(driver, async (l, s) => {
        const signedAt = Date.parse(/witness-time (\S+)/.exec(s.checkpoints[2]!.note)![1]!);
        const [late] = await l.append([note(s.c, 'approved by phone', { ts: new Date(signedAt - 5 * 60_000).toISOString() })]);
        leaf = late!.pos;
      });
      expect(r.failures).toContainEqual(expect.objectContaining({ code: 'unsealed_gap', stream: s.c, seq: 2, leaf }));
    });

    it('[R-TAMPER-ARTIFACT] reports artifact_mismatch naming the sha256 and the referencing leaf when its bytes change, and artifact_missing when they are gone', async () => {
      const changed = await tampered(driver, async (l, s) => {
        const bytes = Buffer.from(s.artifact.bytes);
        bytes[bytes.length - 3]! ^= 0x01;
        await driver.edit(l, { kind: 'rewriteArtifact', sha256: s.artifact.sha256, bytes });
      });
      expect(where(changed.r)).toEqual([{ code: 'artifact_mismatch', artifact: changed.s.artifact.sha256, leaf: changed.s.pos(changed.s.b, 1) }]);
      const gone = await tampered(driver, async (l, s) => driver.edit(l, { kind: 'deleteArtifact', sha256: s.artifact.sha256 }));
      expect(where(gone.r)).toEqual([{ code: 'artifact_missing', artifact: gone.s.artifact.sha256, leaf: gone.s.pos(gone.s.b, 1) }]);
    });

    it('[R-TAMPER-SIGNATURE] reports checkpoint_signature, once, for the checkpoint whose signature was forged', async () => {
      const { r } = await tampered(driver, async (l, s) => driver.edit(l, { kind: 'rewriteCheckpoint', id: 2, note: flipSignatureByte(s.checkpoints[1]!.note) }));
      expect(where(r)).toEqual([{ code: 'checkpoint_signature', checkpoint: 2 }]);
    });

    it('reports consistency_failed for a checkpoint whose stored consistency proof was damaged', async () => {
      const { r } = await tampered(driver, async (l, s) => {
        const proof = [...s.checkpoints[1]!.consistency];
        proof[0] = proof[0]!.replace(/^./, (c) => (c === '0' ? '1' : '0'));
        await driver.edit(l, { kind: 'rewriteCheckpoint', id: 2, consistency: proof });
      });
      expect(where(r)).toEqual([{ code: 'consistency_failed', checkpoint: 2 }]);
    });

    it("fails every checkpoint with checkpoint_signature when the ledger's public key is replaced", async () => {
      const { r } = await tampered(driver, async (l) => driver.edit(l, { kind: 'rewritePublicKey', vkey: 'garbage' }));
      expect(where(r).filter((f) => f.code === 'checkpoint_signature')).toEqual([1, 2, 3].map((checkpoint) => ({ code: 'checkpoint_signature', checkpoint })));
      expect(r.ok).toBe(false);
    });

    it("[R-TAMPER-REWRITE] passes every chain check of a consistently rewritten stream but fails the checkpoints and the sealer's record", async () => {
      const { r } = await tampered(driver, async (l, s) => {
        for (const row of rewrittenStream(await rawRows(l), s.a, 1, { tool: 'billing.refund', arguments: { order: 'A-1042', amount: 0 } })) {
          await driver.edit(l, { kind: 'replaceEvent', row });
        }
      });
      expect(r.ok).toBe(false);
      expect(r.failures.filter((f) => f.stream !== undefined)).toEqual([]);
      expect(where(r)).toContainEqual({ code: 'checkpoint_root_mismatch', leaf: 4, checkpoint: 1 });
      expect(where(r).map((f) => f.code)).toContain('sealed_record_mismatch');
    });

    it('[R-AGAINST] fails against a checkpoint the auditor saved once history was rewritten and every checkpoint and tree node deleted', async () => {
      const { r } = await tampered(driver, async (l, s) => {
        const saved = s.checkpoints[1]!.note;
        const before = await verifyAfresh(driver, l, { against: saved });
        expect(before.failures).toEqual([]);
        for (const row of rewrittenStream(await rawRows(l), s.b, 1, { role: 'before', url: 'https://billing.example/orders/OTHER' })) {
          await driver.edit(l, { kind: 'replaceEvent', row });
        }
        await driver.edit(l, { kind: 'deleteCheckpoints', from: 1 });
        await driver.edit(l, { kind: 'dropTreeNodes' });
        return { against: saved };
      });
      expect(r.ok).toBe(false);
      expect(r.failures.filter((f) => f.stream !== undefined)).toEqual([]);
      expect(where(r)).toContainEqual(expect.objectContaining({ code: 'against_mismatch' }));
    });
  });
}
