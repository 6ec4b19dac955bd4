import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { genesisHash } from '../../../src/core/index.js';
import type { AppendReceipt, Ledger } from '../../../src/store/index.js';
import type { DriverUnderTest } from './driver.js';
import { event, note, rawRows, verifyAfresh, withLedger } from './fixtures.js';

const WRITER = fileURLToPath(new URL('../contract-writer.mjs', import.meta.url));
const DIST = fileURLToPath(new URL('../../../dist/store/index.js', import.meta.url));

interface Finished {
  code: number | null;
  lines: string[];
  stderr: string;
}

/** Runs the writer; `killWhen` sees its output so far and says when to kill it with SIGKILL. */
function run(args: string[], env: Record<string, string>, killWhen?: (stdout: string) => boolean): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WRITER, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (c: string) => {
      stdout += c;
      if (killWhen?.(stdout) === true && child.exitCode === null) child.kill('SIGKILL');
    });
    child.stderr.on('data', (c: string) => (stderr += c));
    child.on('error', reject);
    // Only whole lines count: a receipt cut by the kill was never acknowledged.
    child.on('close', (code) =>
      resolve({
        code,
        lines: stdout
          .split('\n')
          .slice(0, -1)
          .filter((l) => l !== ''),
        stderr,
      }),
    );
  });
}

/** Every stream is one unbroken chain from its genesis, and positions are 0..n-1 with no gap. */
async function expectOneHistory(l: Ledger, streams: string[]): Promise<void> {
  const rows = await rawRows(l);
  expect(rows.map((r) => r.pos)).toEqual(rows.map((_, i) => i));
  for (const s of streams) {
    const events = await l.readStream(s);
    expect(
      events.map((e) => e.seq),
      s,
    ).toEqual(events.map((_, i) => i));
    expect(events[0]?.prev, s).toBe(genesisHash(l.info.origin, s).toString('hex'));
    for (let i = 1; i < events.length; i++) expect(events[i]!.prev, `${s}#${i}`).toBe(events[i - 1]!.hash);
  }
}

export function concurrencyContract(driver: DriverUnderTest): void {
  describe('two writers on one store', () => {
    it('[R-CONCURRENT] keeps every receipt of two handles appending to one shared and to separate streams at once: no fork, gapless positions, and it verifies', async () => {
      await withLedger(driver, async (one, also) => {
        const two = also(await driver.openAgain(one));
        const receipts: AppendReceipt[] = [];
        for (let round = 0; round < 25; round++) {
          const [r1, r2] = await Promise.all([
            one.append([note('shared', `one ${round}`), note('one-own', `${round}`), note('shared', `one ${round}b`)]),
            two.append([note('two-own', `${round}`), note('shared', `two ${round}`)]),
          ]);
          receipts.push(...r1, ...r2);
          // Both handles seal as they go, each extending what the other signed.
          if (round % 5 === 4) await (round % 10 === 4 ? one : two).seal();
        }
        expect(receipts).toHaveLength(125);
        expect(new Set(receipts.map((r) => r.pos)).size).toBe(125);
        expect(new Set(receipts.map((r) => `${r.stream}#${r.seq}`)).size).toBe(125);
        for (const r of receipts) expect(await one.getEvent(r.id), r.id).toMatchObject({ stream: r.stream, seq: r.seq, pos: r.pos, hash: r.hash });
        await expectOneHistory(one, ['shared', 'one-own', 'two-own']);
        expect(await one.readStream('shared')).toHaveLength(75);
        await one.seal();
        const cps = await two.checkpoints();
        expect(cps.length).toBeGreaterThanOrEqual(3);
        for (let i = 1; i < cps.length; i++) expect(cps[i]!.prevSize).toBe(cps[i - 1]!.size);
        const report = await verifyAfresh(driver, one);
        expect(report.failures).toEqual([]);
        expect(report).toMatchObject({ ok: true, events: 125, streams: 3, sealedSize: 125, unsealed: 0 });
      });
    });

    it('refuses, on either handle, an event after a session.end the other handle appended', async () => {
      await withLedger(driver, async (one, also) => {
        const two = also(await driver.openAgain(one));
        await one.append([note('s', 'start')]);
        await two.append([note('s', 'seen by two')]);
        await one.append([event('s', 'session.end', { reason: 'completed' })]);
        await expect(two.append([note('s', 'late')])).rejects.toMatchObject({ code: 'invalid_event' });
        expect(await two.readStream('s')).toHaveLength(3);
      });
    });

    it('[R-GW-APPROVAL-BINDING] lets exactly one of two handles record the release of one grant, refuses the other as a conflict in one sentence, and loses nothing else', async () => {
      await withLedger(driver, async (one, also) => {
        const two = also(await driver.openAgain(one));
        const release = (call: string, decisionId: string) =>
          event(`gw-${call}`, 'policy.decision', { decision: 'allow', tool: 'get-sum', approval: { request_id: `req-${decisionId}`, decision_id: decisionId } });
        let conflicts = 0;
        for (let round = 0; round < 10; round++) {
          const id = `dec-${round}`;
          // Each handle records around the race too, so a refused release can be seen to take nothing else with it.
          const results = await Promise.allSettled([
            (async () => {
              await one.append([note('one-own', `before ${round}`)]);
              await one.append([release(`one-${round}`, id)]);
            })(),
            (async () => {
              await two.append([note('two-own', `before ${round}`)]);
              await two.append([release(`two-${round}`, id)]);
            })(),
          ]);
          await Promise.all([one.append([note('one-own', `after ${round}`)]), two.append([note('two-own', `after ${round}`)])]);
          expect(results.map((r) => r.status).sort(), `round ${round}`).toEqual(['fulfilled', 'rejected']);
          const refused = (results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason as { code?: string; message: string };
          expect(refused.code, refused.message).toBe('conflict');
          expect(refused.message).toBe(`Approval decision ${id} has already released a call in ${one.info.location}, and a grant is used once; this release was not recorded.`);
          conflicts++;
        }
        expect(conflicts).toBe(10);
        // A policy.decision naming no grant, or another grant, is not limited.
        await one.append([event('plain', 'policy.decision', { decision: 'allow', tool: 'echo' }), event('plain', 'policy.decision', { decision: 'allow', tool: 'echo' })]);
        const rows = await rawRows(one);
        const released = rows.filter((r) => r.data?.includes('"decision_id"') === true).map((r) => (JSON.parse(r.data!) as { approval: { decision_id: string } }).approval.decision_id);
        expect(released.sort()).toEqual(Array.from({ length: 10 }, (_, i) => `dec-${i}`).sort());
        expect(await one.readStream('one-own')).toHaveLength(20);
        expect(await two.readStream('two-own')).toHaveLength(20);
        expect(rows).toHaveLength(10 + 40 + 2);
        await expectOneHistory(one, ['one-own', 'two-own', 'plain']);
        await one.seal();
        const report = await verifyAfresh(driver, one);
        expect(report.failures).toEqual([]);
        expect(report).toMatchObject({ ok: true, events: 52 });
      });
    });

    it('makes one linear history of two handles sealing at the same moment while a third keeps appending', async () => {
      await withLedger(driver, async (one, also) => {
        const two = also(await driver.openAgain(one));
        const three = also(await driver.openAgain(one));
        for (let round = 0; round < 10; round++) {
          const appends = three.append([note('busy', `${round}a`), note('busy', `${round}b`)]);
          const [a, b] = await Promise.all([one.seal(), two.seal(), appends]);
          // Each returns its checkpoint, or null when the other had just sealed everything it saw.
          for (const cp of [a, b]) if (cp !== null) expect(cp.size).toBeGreaterThan(0);
        }
        await one.seal();
        const cps = await one.checkpoints();
        for (let i = 1; i < cps.length; i++) {
          expect(cps[i]!.prevSize).toBe(cps[i - 1]!.size);
          expect(cps[i]!.size).toBeGreaterThanOrEqual(cps[i - 1]!.size);
        }
        expect(cps[cps.length - 1]!.size).toBe(20);
        const report = await verifyAfresh(driver, one);
        expect(report.failures).toEqual([]);
        expect(report).toMatchObject({ ok: true, events: 20, sealedSize: 20, unsealed: 0 });
      });
    });

    it.skipIf(driver.childStore === undefined)('[R-CONCURRENT] keeps every receipt of two processes appending and sealing at once through openLedger, with one linear checkpoint history', async () => {
      if (!fs.existsSync(DIST)) throw new Error('dist/ is missing: run `npx tsc -p tsconfig.build.json` before the cross-process contract tests.');
      await withLedger(driver, async (l) => {
        const { url, env = {} } = driver.childStore!(l);
        const [batches, size] = [20, 8];
        const [left, right] = await Promise.all([run([url, 'left', String(batches), String(size), '3'], env), run([url, 'right', String(batches), String(size), '3'], env)]);
        const sealed: number[] = [];
        for (const [name, child] of [
          ['left', left],
          ['right', right],
        ] as const) {
          expect(child.stderr, name).toBe('');
          expect(child.code, name).toBe(0);
          expect(child.lines, name).toContain(`DONE ${batches * size}`);
          const acked = child.lines.filter((x) => x.startsWith('A ')).map((x) => x.split(' '));
          expect(acked, name).toHaveLength(batches * size);
          for (const [, id, stream, seq, pos, hash] of acked) {
            expect(await l.getEvent(id!), `${name}: acknowledged ${id} is missing`).toMatchObject({ stream, seq: Number(seq), pos: Number(pos), hash });
          }
          sealed.push(...child.lines.filter((x) => x.startsWith('C ')).map((x) => Number(x.slice(2))));
        }
        const total = 2 * batches * size;
        await expectOneHistory(l, ['shared', 'left-own', 'right-own']);
        const cps = await l.checkpoints();
        expect(cps.map((c) => c.size).sort((x, y) => x - y)).toEqual([...sealed].sort((x, y) => x - y));
        for (let i = 1; i < cps.length; i++) {
          expect(cps[i]!.prevSize).toBe(cps[i - 1]!.size);
          expect(cps[i]!.size).toBeGreaterThan(cps[i - 1]!.size);
        }
        expect(cps[cps.length - 1]!.size).toBe(total);
        const report = await verifyAfresh(driver, l);
        expect(report.failures).toEqual([]);
        expect(report).toMatchObject({ ok: true, events: total, streams: 3, sealedSize: total, unsealed: 0 });
      });
    });

    it.skipIf(driver.childStore === undefined)('[R-DURABLE] loses no acknowledged event when a writer that seals after every batch is killed with SIGKILL, and the next seal resumes', async () => {
      if (!fs.existsSync(DIST)) throw new Error('dist/ is missing: run `npx tsc -p tsconfig.build.json` before the cross-process contract tests.');
      await withLedger(driver, async (l) => {
        const { url, env = {} } = driver.childStore!(l);
        let acked = 0;
        for (const [round, after] of [20, 47, 75].entries()) {
          // Killed after a different number of receipts each round, so the kill lands at different moments of append and seal.
          const child = await run([url, `killed${round}`, '0', '3', '1'], env, (out) => (out.match(/^A /gm)?.length ?? 0) >= after && /^C /m.test(out));
          expect(child.code, child.stderr).toBeNull();
          const receipts = child.lines.filter((x) => x.startsWith('A ')).map((x) => x.split(' '));
          expect(receipts.length).toBeGreaterThanOrEqual(after);
          for (const [, id, stream, seq, pos, hash] of receipts) {
            expect(await l.getEvent(id!), `acknowledged ${id} is missing`).toMatchObject({ stream, seq: Number(seq), pos: Number(pos), hash });
          }
          acked += receipts.length;
          const before = await verifyAfresh(driver, l);
          expect(before.failures, `round ${round}`).toEqual([]);
          // The next seal (from another process, as after a crash) resumes where the killed one stopped.
          await l.seal();
          const after2 = await verifyAfresh(driver, l);
          expect(after2.failures).toEqual([]);
          expect(after2.unsealed).toBe(0);
          expect(after2.events).toBeGreaterThanOrEqual(acked);
        }
        await expectOneHistory(l, ['shared', 'killed0-own', 'killed1-own', 'killed2-own']);
      });
    });
  });
}
