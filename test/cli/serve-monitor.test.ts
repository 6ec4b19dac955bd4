import { execFileSync } from 'node:child_process';
import { timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBuild } from '../helpers/gateway.js';
import { buildLedger, oneSentence, runBin, tamper } from '../helpers/ledger.js';
import { auditorKey, startServe, waitFor } from '../helpers/serve.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * `witness serve --monitor` as people run it: the real binary (dist/) serving the API and running
 * the monitor in one process, a real webhook receiver checking each alert's signature with openssl,
 * `witness halt` run as another process, a row corrupted behind the ledger's back, /metrics scraped
 * with an auditor's key, and SIGTERM stopping both cleanly.
 */

requireBuild();
const dir = tempDir('witness-serve-monitor-');
const SECRET = 'serve-monitor-secret-3b7e';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Received {
  code: string;
  status: string;
  message: string;
  signed: boolean;
}

/** HMAC-SHA256 over `<timestamp>.<body>`, computed by openssl rather than by Witness. */
function signatureByHand(ts: string, body: string): string {
  const out = execFileSync('openssl', ['dgst', '-sha256', '-hmac', SECRET, '-hex'], { input: `${ts}.${body}` }).toString();
  return `sha256=${out.trim().split('= ').pop()}`;
}

const received: Received[] = [];
let hookUrl = '';
const receiver = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8');
    const expected = Buffer.from(signatureByHand(String(req.headers['x-witness-timestamp']), body));
    const got = Buffer.from(String(req.headers['x-witness-signature']));
    const alert = JSON.parse(body) as { code: string; status: string; message: string };
    received.push({ code: alert.code, status: alert.status, message: alert.message, signed: got.length === expected.length && timingSafeEqual(got, expected) });
    res.writeHead(204).end();
  });
});
beforeAll(async () => {
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
  hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks/witness`;
});
afterAll(() => new Promise<void>((r) => receiver.close(() => r())));

describe('witness serve --monitor [R-MONITOR-ALERTS]', () => {
  it('runs the monitor in the server: a halt and a corrupted row reach the webhook, /metrics holds both sets of series, SIGTERM stops it cleanly', async () => {
    const built = await buildLedger(dir);
    const store = `sqlite:${built.file}`;
    const auditor = await auditorKey(store);
    const serve = await startServe(store, ['--monitor', '--webhook', hookUrl, '--webhook-secret-env', 'WITNESS_TEST_HOOK_SECRET', '--monitor-interval', '200ms', '--full-every', '500ms'], {
      env: { WITNESS_TEST_HOOK_SECRET: SECRET },
    });
    try {
      const scrape = async () => {
        const res = await fetch(`${serve.url}/metrics`, { headers: { Authorization: `Bearer ${auditor}` } });
        expect(res.status).toBe(200);
        return res.text();
      };
      const first = await waitFor(async () => {
        const t = await scrape();
        return /^witness_monitor_last_pass_timestamp_seconds [1-9]/m.test(t) ? t : undefined;
      }, 'the first monitor pass');
      // One scrape, both sets: the server's own series and the monitor's.
      expect(first).toMatch(/^# TYPE witness_server_events_appended_total counter$/m);
      expect(first).toMatch(/^witness_ledger_events \d+$/m);
      expect(first).toMatch(new RegExp(`^witness_monitor_verified_checkpoint_size ${built.size}$`, 'm'));
      expect(first).toMatch(/^witness_monitor_last_full_verify_ok 1$/m);
      expect(first).toMatch(/^witness_monitor_alerts_active\{code="agent_halted"\} 0$/m);
      expect(received).toEqual([]);

      const halted = await runBin(['halt', '--agent', 'refund-bot', '--reason', 'refunds look wrong', '--store', store]);
      expect(halted.code, halted.stderr).toBe(0);
      const halt = await waitFor(() => received.find((a) => a.code === 'agent_halted'), 'the halt alert');
      expect(halt).toMatchObject({ status: 'firing', signed: true });
      expect(halt.message).toMatch(/halted agent refund-bot: refunds look wrong$/);

      tamper(built.file, (db) => db.prepare("UPDATE events SET data = json_set(data, '$.text', 'edited') WHERE kind = 'note' AND seq = 1 AND stream = ?").run(built.sessions.c));
      const broken = await waitFor(() => received.find((a) => a.code === 'verification_failed'), 'the verification alert');
      expect(broken).toMatchObject({ status: 'firing', signed: true });
      expect(broken.message).toMatch(/does not verify/);

      const after = await waitFor(async () => {
        const t = await scrape();
        return /^witness_monitor_alerts_fired_total\{code="verification_failed"\} 1$/m.test(t) ? t : undefined;
      }, 'the alert in /metrics');
      expect(after).toMatch(/^witness_monitor_alerts_fired_total\{code="agent_halted"\} 1$/m);
      expect(after).toMatch(/^witness_monitor_last_full_verify_ok 0$/m);
      expect(after).toMatch(/^# TYPE witness_server_refused_keys_total counter$/m);
      expect(serve.err()).toMatch(/^witness serve: ALERT firing agent_halted \[\w+\]: /m);
      // Each condition alerts once until it clears, however many passes see it.
      await sleep(1000);
      expect(received.filter((a) => a.code === 'agent_halted')).toHaveLength(1);
    } finally {
      serve.stop();
    }
    expect(await serve.exited).toBe(0);
    expect(serve.err()).toMatch(/witness serve: stopped; every acknowledged event is committed and the ledger is closed\.\n$/);
  }, 90_000);

  it('refuses monitor options without --monitor, and a bad monitor option, as bad usage (exit 2) in one sentence, before it listens', async () => {
    const built = await buildLedger(dir);
    const store = `sqlite:${built.file}`;
    delete process.env['WITNESS_TEST_UNSET_SECRET'];
    const cases: Array<[string[], RegExp]> = [
      [['--webhook', 'http://127.0.0.1:9/x'], /^--webhook is a monitor option; add --monitor to run the monitor in this server, or drop it\.$/],
      [['--monitor-interval', '1s'], /^--monitor-interval is a monitor option; add --monitor/],
      [['--monitor', '--webhook', 'http://127.0.0.1:9/x'], /--webhook needs --webhook-secret-env NAME/],
      [['--monitor', '--webhook', 'http://127.0.0.1:9/x', '--webhook-secret-env', 'WITNESS_TEST_UNSET_SECRET'], /WITNESS_TEST_UNSET_SECRET named by --webhook-secret-env is not set/],
      [['--monitor', '--monitor-interval', 'often'], /--monitor-interval "often" is not a duration/],
      [['--monitor', '--burst', 'lots'], /--burst "lots" is not calls\/duration/],
    ];
    for (const [args, message] of cases) {
      const r = await runBin(['serve', '--store', store, '--port', '0', ...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(oneSentence(r.stderr), args.join(' ')).toMatch(message);
      expect(r.stdout).not.toMatch(/listening/);
    }
  }, 90_000);
});
