import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BIN, REPO_ROOT, buildLedger, oneSentence, runCli, tamper, type BuiltLedger } from '../helpers/ledger.js';
import { openWitness } from '../../src/index.js';
import { tempDir } from '../helpers/tmp.js';

/** `witness monitor` as people run it: one pass from cron (--once), and the long-running process scraped at /metrics. */

const dir = tempDir('witness-monitor-cli-');
let built: BuiltLedger;
beforeAll(async () => {
  built = await buildLedger(dir);
}, 60_000);

describe('witness monitor --once', () => {
  it('passes a sound ledger with exit 0 and says what it checked, keeping its place beside the ledger', async () => {
    const r = await runCli(['monitor', '--store', `sqlite:${built.file}`, '--once', '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const pass = JSON.parse(r.stdout) as { events: number; verified: { size: number; checkpoint: number }; full: { ok: boolean }; alerts: unknown[]; flags: unknown[] };
    expect(pass.events).toBe(built.size);
    expect(pass.verified.size).toBe(built.size);
    expect(pass.full.ok).toBe(true);
    expect(pass.alerts).toEqual([]);
    expect(fs.existsSync(`${built.file}.monitor.json`)).toBe(true);
  });

  it('exits 1 on a corrupted row, printing the alert, and runs the --command with the alert on stdin', async () => {
    tamper(built.file, (db) => db.prepare("UPDATE events SET data = json_set(data, '$.text', 'edited') WHERE kind = 'note' AND seq = 1 AND stream = ?").run(built.sessions.c));
    const log = path.join(dir, 'cmd.json');
    const r = await runCli(['monitor', '--store', `sqlite:${built.file}`, '--once', '--full-every', '1ms', '--command', `cat > '${log}'`]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^ALERT firing verification_failed \[critical\]: The ledger .* does not verify: /m);
    const alert = JSON.parse(fs.readFileSync(log, 'utf8')) as { code: string; status: string; ledger: { location: string } };
    expect([alert.code, alert.status, alert.ledger.location]).toEqual(['verification_failed', 'firing', built.file]);
  });

  it('[R-MONITOR-ALERTS] a halt placed with `witness halt` alerts once, and `witness resume` resolves it', async () => {
    const ledger = await buildLedger(dir);
    const store = `sqlite:${ledger.file}`;
    expect((await runCli(['monitor', '--store', store, '--once'])).code).toBe(0);
    const halt = await runCli(['halt', '--agent', 'refund-bot', '--reason', 'refunds look wrong', '--store', store]);
    expect(halt.code, halt.stderr).toBe(0);
    const fired = await runCli(['monitor', '--store', store, '--once', '--json']);
    const pass = JSON.parse(fired.stdout) as { alerts: Array<{ code: string; status: string; message: string }> };
    // The halt condition, and the act of governance that placed it.
    expect(pass.alerts.map((a) => [a.code, a.status]).sort()).toEqual([
      ['agent_halted', 'firing'],
      ['governance', 'firing'],
    ]);
    expect(pass.alerts.find((a) => a.code === 'agent_halted')!.message).toMatch(/halted agent refund-bot: refunds look wrong$/);
    expect((await runCli(['monitor', '--store', store, '--once', '--json'])).stdout).toContain('"alerts":[]');
    expect((await runCli(['resume', '--agent', 'refund-bot', '--reason', 'checked', '--store', store])).code).toBe(0);
    const resolved = JSON.parse((await runCli(['monitor', '--store', store, '--once', '--json'])).stdout) as typeof pass;
    expect(resolved.alerts.map((a) => [a.code, a.status]).sort()).toEqual([
      ['agent_halted', 'resolved'],
      ['governance', 'firing'],
    ]);
  });

  it('[R-MONITOR-VERIFY] keeps verifying across a signing-key rotation (witness keys rotate): checkpoints signed by the new key pass', async () => {
    const ledger = await buildLedger(dir);
    const store = `sqlite:${ledger.file}`;
    expect((await runCli(['monitor', '--store', store, '--once'])).code).toBe(0);
    const rotated = await runCli(['keys', 'rotate', '--reason', 'yearly rotation', '--store', store]);
    expect(rotated.code, rotated.stderr).toBe(0);
    const w = await openWitness({ store, name: 'tamper' });
    const s = await w.session({ agent: { id: 'support-bot' } });
    await s.note('after the rotation');
    await s.end();
    await w.close();
    const r = await runCli(['monitor', '--store', store, '--once', '--json', '--full-every', '1ms']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const pass = JSON.parse(r.stdout) as { verified: { size: number; failures: string[] }; full: { ok: boolean }; alerts: Array<{ code: string; severity: string; details?: { kind?: string } }> };
    expect(pass.verified.failures).toEqual([]);
    expect(pass.verified.size).toBeGreaterThan(ledger.size + 1);
    expect(pass.full.ok).toBe(true);
    // The rotation is announced as the act of governance it is, in its place: no louder.
    expect(pass.alerts.map((a) => [a.code, a.severity, a.details?.kind])).toEqual([['governance', 'warning', 'key.rotated']]);
  });

  it('refuses bad usage with exit 2 and one sentence', async () => {
    delete process.env['WITNESS_TEST_UNSET_SECRET'];
    const cases: Array<[string[], RegExp]> = [
      [['--webhook', 'http://127.0.0.1:9/x'], /--webhook needs --webhook-secret-env NAME/],
      [['--webhook', 'http://127.0.0.1:9/x', '--webhook-secret-env', 'WITNESS_TEST_UNSET_SECRET'], /WITNESS_TEST_UNSET_SECRET named by --webhook-secret-env is not set/],
      [['--webhook-secret-env', 'HOME'], /--webhook-secret-env is used only with --webhook/],
      [['--burst', 'lots'], /--burst "lots" is not calls\/duration/],
      [['--full-every', 'hourly'], /--full-every "hourly" is not a duration/],
      [['--quiet-governance', 'retention.purge,hold.place'], /--quiet-governance names "hold\.place", which is not an act of governance; name some of retention\.purge, /],
      [['--metrics', '127.0.0.1:0'], /--metrics serves while the monitor runs/],
      [['--metrics', 'localhost'], /--metrics "localhost" is not host:port/],
    ];
    for (const [args, message] of cases) {
      const r = await runCli(['monitor', '--store', `sqlite:${built.file}`, ...(args.includes('--metrics') && args[1] === 'localhost' ? [] : ['--once']), ...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(message);
      oneSentence(r.stderr);
    }
    const pg = await runCli(['monitor', '--store', 'postgres://127.0.0.1:5432/test', '--once']);
    expect(pg.code).toBe(2);
    expect(pg.stderr).toMatch(/has no directory to keep the monitor state beside; give --state FILE/);
  });
});

describe('witness monitor --metrics (the real binary)', () => {
  it('[R-MONITOR-ALERTS] serves Prometheus metrics while it runs, and stops on SIGTERM', async () => {
    const fresh = await buildLedger(dir);
    const child = spawn(process.execPath, [BIN, 'monitor', '--store', `sqlite:${fresh.file}`, '--metrics', '127.0.0.1:0', '--interval', '200ms'], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    try {
      const deadline = Date.now() + 20_000;
      let url: string | undefined;
      while (url === undefined && Date.now() < deadline) {
        url = /Metrics at (\S+)/.exec(out)?.[1];
        if (url === undefined) await new Promise((r) => setTimeout(r, 50));
      }
      expect(url, err).toBeDefined();
      let text = '';
      while (Date.now() < deadline) {
        text = await (await fetch(url!)).text();
        if (/^witness_monitor_last_pass_timestamp_seconds [1-9]/m.test(text)) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(text).toContain('# TYPE witness_monitor_alerts_fired_total counter');
      expect(text).toMatch(new RegExp(`^witness_monitor_ledger_events ${fresh.size}$`, 'm'));
      expect(text).toMatch(new RegExp(`^witness_monitor_verified_checkpoint_size ${fresh.size}$`, 'm'));
      expect(text).toMatch(/^witness_monitor_unsealed_events 0$/m);
      expect(text).toMatch(/^witness_monitor_last_full_verify_ok 1$/m);
      expect(text).toMatch(/^witness_monitor_alerts_active\{code="verification_failed"\} 0$/m);
      const res = await fetch(url!.replace('/metrics', '/other'));
      expect(res.status).toBe(404);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(err).toBe('');
  }, 60_000);
});
