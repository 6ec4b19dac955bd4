import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { requireBuild } from '../helpers/gateway.js';
import { buildLedger, tamper } from '../helpers/ledger.js';
import { auditorKey, startServe, waitFor } from '../helpers/serve.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * `witness serve --monitor` verifies the whole ledger on a worker thread, not on the thread that
 * answers HTTP: the real binary says which thread each full pass ran on, and a row corrupted behind
 * the ledger's back (which only the full pass can see: it is under a checkpoint already verified)
 * still reaches the alert command and the server's /metrics.
 */

requireBuild();
const dir = tempDir('witness-serve-monitor-worker-');
/** A full verification pass of the whole ledger can take longer than the default wait on a busy machine. */
const WAIT = 30_000;

describe('witness serve --monitor: the full pass off the server thread [R-MONITOR-VERIFY]', () => {
  it('runs each full verification on a worker thread and still alerts on a tampered ledger, to the command and /metrics', async () => {
    const built = await buildLedger(dir);
    const store = `sqlite:${built.file}`;
    const auditor = await auditorKey(store);
    const alerts = path.join(dir, 'alerts.jsonl');
    const serve = await startServe(store, ['--monitor', '--command', `cat >> '${alerts}'`, '--monitor-interval', '200ms', '--full-every', '300ms'], { ms: WAIT });
    try {
      const passed = await waitFor(
        () => /^witness serve: full verification of (\d+) events passed in [\d.]+ s on worker thread (\d+)\.$/m.exec(serve.err()) ?? undefined,
        `a full pass (${serve.err()})`,
        WAIT,
      );
      expect(Number(passed[1])).toBeGreaterThanOrEqual(built.size);
      expect(Number(passed[2])).toBeGreaterThan(0);
      expect(serve.err()).not.toMatch(/on the server's own thread/);
      // While it runs the server answers as before.
      expect((await fetch(`${serve.url}/healthz`)).status).toBe(200);

      tamper(built.file, (db) => db.prepare("UPDATE events SET data = json_set(data, '$.text', 'edited') WHERE kind = 'note' AND seq = 1 AND stream = ?").run(built.sessions.c));
      await waitFor(
        () => (/^witness serve: full verification of \d+ events FAILED in [\d.]+ s on worker thread [1-9]\d*\.$/m.test(serve.err()) ? true : undefined),
        `a failed full pass (${serve.err()})`,
        WAIT,
      );
      const alert = await waitFor(
        () => {
          const lines = fs.existsSync(alerts) ? fs.readFileSync(alerts, 'utf8').trim().split('\n') : [];
          return lines.map((l) => JSON.parse(l) as { code: string; status: string; message: string }).find((a) => a.code === 'verification_failed');
        },
        'the verification alert',
        WAIT,
      );
      expect(alert.status).toBe('firing');
      expect(alert.message).toMatch(/does not verify: \d+ failure\(s\), the first: .*payload does not match its digest/);
      const metrics = await (await fetch(`${serve.url}/metrics`, { headers: { Authorization: `Bearer ${auditor}` } })).text();
      expect(metrics).toMatch(/^witness_monitor_last_full_verify_ok 0$/m);
      expect(metrics).toMatch(/^witness_monitor_verification_failures_total\{kind="full"\} [1-9]\d*$/m);
      expect(metrics).toMatch(/^witness_monitor_alerts_fired_total\{code="verification_failed"\} 1$/m);
    } finally {
      serve.stop();
    }
    expect(await serve.exited).toBe(0);
    expect(serve.err()).toMatch(/witness serve: stopped; every acknowledged event is committed and the ledger is closed\.\n$/);
  }, 90_000);
});
