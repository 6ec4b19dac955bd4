import path from 'node:path';
import { threadId } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { Monitor, fullPass, loadState, type PassReport } from '../../src/monitor/index.js';
import { openLedger } from '../../src/store/index.js';
import { requireBuild } from '../helpers/gateway.js';
import { buildLedger, verifyFile } from '../helpers/ledger.js';
import { tempDir } from '../helpers/tmp.js';
import { sqliteEdit } from '../store/sqlite-edit-hook.js';

/**
 * The monitor's full verification runs on a worker thread of its own (the built worker in dist/,
 * as verify's threads do), reports what `verifyLedger` reports in-thread, and is abandoned, with no
 * result, when the process stops.
 */

requireBuild();
const dir = tempDir('witness-monitor-full-pass-');

describe('the full pass on a worker thread [R-MONITOR-VERIFY]', () => {
  it('runs off the calling thread and finds what verify finds in-thread, which the monitor alerts on', async () => {
    const built = await buildLedger(dir);
    const ledger = await openLedger(`sqlite:${built.file}`, { create: false });
    try {
      const sound = await fullPass(ledger);
      expect(sound?.thread).toBeGreaterThan(0);
      expect(sound?.thread).not.toBe(threadId);
      expect(sound?.report).toMatchObject({ ok: true, events: built.size });
      await sqliteEdit(ledger, { kind: 'rewriteData', pos: built.pos(built.sessions.a, 1), data: '{"model":"claude","input":[],"output":"Refund approved."}' });
      const broken = await fullPass(ledger);
      const inThread = await verifyFile(built.file, { threads: 1 });
      expect(broken?.report.ok).toBe(false);
      expect(broken?.report.failures.map((f) => [f.code, f.reason])).toEqual(inThread.failures.map((f) => [f.code, f.reason]));
      const pass = await new Monitor(ledger, { fullEveryMs: 1 }, { statePath: `${built.file}.monitor.json` }).pass();
      expect(pass.full?.ok).toBe(false);
      expect(pass.full!.thread).toBeGreaterThan(0);
      expect(pass.alerts.map((a) => a.code)).toContain('verification_failed');
    } finally {
      await ledger.close();
    }
  });

  it('runs in the calling thread when the worker cannot open the ledger by the URL it was given', async () => {
    const built = await buildLedger(dir);
    const ledger = await openLedger(`sqlite:${built.file}`, { create: false });
    try {
      const r = await fullPass(ledger, { url: `sqlite:${path.join(dir, 'no-such-dir', 'gone.db')}` });
      expect(r).toMatchObject({ thread: 0, report: { ok: true, events: built.size } });
    } finally {
      await ledger.close();
    }
  });

  it('is abandoned with no result when the monitor is stopping, and no full pass is saved', async () => {
    const built = await buildLedger(dir);
    const ledger = await openLedger(`sqlite:${built.file}`, { create: false });
    try {
      const stop = new AbortController();
      const running = fullPass(ledger, { signal: stop.signal });
      stop.abort();
      expect(await running).toBeUndefined();
      const already = new AbortController();
      already.abort();
      expect(await fullPass(ledger, { signal: already.signal })).toBeUndefined();
      // A monitor stopped while its pass runs: the pass finishes without the full verification, and saves none.
      const statePath = `${built.file}.monitor.json`;
      const m = new Monitor(ledger, {}, { statePath });
      const stopping = new AbortController();
      const passes: PassReport[] = [];
      const run = m.run(
        60_000,
        stopping.signal,
        (r) => passes.push(r),
        (e) => {
          throw e;
        },
      );
      stopping.abort();
      await run;
      expect(passes).toHaveLength(1);
      expect(passes[0]!.full).toBeNull();
      expect(passes[0]!.events).toBe(built.size);
      expect(loadState(statePath, ledger.info.id)?.lastFull).toBeUndefined();
    } finally {
      await ledger.close();
    }
  });
});
