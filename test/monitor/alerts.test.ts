import { execFileSync } from 'node:child_process';
import { timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openWitness } from '../../src/index.js';
import { CommandSink, MONITOR_STREAM, Monitor, WebhookSink, webhookSignature, type AlertMessage, type MonitorConfig } from '../../src/monitor/index.js';
import { openLedger, sidecarPaths, type Ledger } from '../../src/store/index.js';
import { PNG_BYTES, buildLedger } from '../helpers/ledger.js';
import { tempDir } from '../helpers/tmp.js';
import { sqliteEdit } from '../store/sqlite-edit-hook.js';
import { Agent, newLedger } from './fixture.js';

const SECRET = 'test-secret-6f1c2a9d';

/** A real HTTP receiver that checks each request's signature as README tells a receiver to. */
class Receiver {
  readonly received: Array<{ alert: AlertMessage; signed: boolean; id: string | undefined }> = [];
  /** Answer 500 to this many requests first. */
  failNext = 0;
  private server!: http.Server;
  url = '';

  async start(): Promise<void> {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const ts = String(req.headers['x-witness-timestamp']);
        const expected = Buffer.from(webhookSignatureByHand(ts, body));
        const got = Buffer.from(String(req.headers['x-witness-signature']));
        const fresh = Math.abs(Date.now() / 1000 - Number(ts)) < 300;
        const signed = fresh && got.length === expected.length && timingSafeEqual(got, expected);
        this.received.push({ alert: JSON.parse(body) as AlertMessage, signed, id: req.headers['x-witness-alert-id'] as string | undefined });
        if (this.failNext > 0) {
          this.failNext--;
          res.writeHead(500).end('busy');
        } else res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hooks/witness`;
  }

  close(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }
}

/** The receiver's side, computed with openssl rather than our own code: HMAC-SHA256 over `<timestamp>.<body>`. */
function webhookSignatureByHand(ts: string, body: string): string {
  const out = execFileSync('openssl', ['dgst', '-sha256', '-hmac', SECRET, '-hex'], { input: `${ts}.${body}` }).toString();
  return `sha256=${out.trim().split('= ').pop()}`;
}

describe('alerts', () => {
  const dir = tempDir('witness-monitor-alerts-');
  const receiver = new Receiver();
  const commandLog = path.join(dir, 'command-alerts.jsonl');
  beforeAll(async () => receiver.start());
  afterAll(async () => receiver.close());

  const commandAlerts = (): AlertMessage[] =>
    fs.existsSync(commandLog)
      ? fs
          .readFileSync(commandLog, 'utf8')
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as AlertMessage)
      : [];
  const monitorFor = (ledger: Ledger, statePath: string, config: MonitorConfig = {}) =>
    new Monitor(
      ledger,
      { fullEveryMs: 3_600_000, ...config },
      { statePath, sinks: [new WebhookSink({ url: receiver.url, secret: SECRET, baseDelayMs: 50 }), new CommandSink(`cat >> '${commandLog}'`)] },
    );

  it('the signature README documents is what the receiver computes with openssl', () => {
    expect(webhookSignature(SECRET, '1765000000', '{"a":1}')).toBe(webhookSignatureByHand('1765000000', '{"a":1}'));
  });

  it('[R-MONITOR-ALERTS] [R-MONITOR-VERIFY] a corrupted row fires verification_failed once, to the webhook (signed) and the command, and records it', async () => {
    const built = await buildLedger(dir);
    const ledger = await openLedger(`sqlite:${built.file}`, { create: false });
    try {
      const statePath = `${built.file}.monitor.json`;
      const m = () => monitorFor(ledger, statePath, { fullEveryMs: 1 });
      const first = await m().pass();
      expect(first.alerts).toEqual([]);
      expect(first.full?.ok).toBe(true);
      await sqliteEdit(ledger, { kind: 'rewriteData', pos: built.pos(built.sessions.a, 1), data: '{"model":"claude","input":[],"output":"Refund approved."}' });
      const before = receiver.received.length;
      const second = await m().pass();
      expect(second.alerts.map((a) => [a.status, a.code, a.severity])).toEqual([['firing', 'verification_failed', 'critical']]);
      expect(second.alerts[0]!.message).toContain('payload does not match its digest');
      const got = receiver.received.slice(before);
      expect(got.map((r) => [r.alert.code, r.signed, r.id])).toEqual([['verification_failed', true, second.alerts[0]!.id]]);
      expect(commandAlerts().at(-1)).toEqual(second.alerts[0]);
      const recorded = (await ledger.query({ stream: MONITOR_STREAM, kind: 'alert' })).events;
      expect(recorded.map((e) => [e.data?.['code'], e.data?.['severity'], e.data?.['alert_id']])).toEqual([['verification_failed', 'critical', second.alerts[0]!.id]]);
      // Still corrupted: no storm.
      const third = await m().pass();
      expect(third.full?.ok).toBe(false);
      expect(third.alerts).toEqual([]);
      expect(receiver.received.length).toBe(before + 1);
    } finally {
      await ledger.close();
    }
  });

  it('[R-MONITOR-VERIFY] a new checkpoint over an edited leaf fails the incremental check before the full pass is due', async () => {
    const { ledger, file } = await newLedger(dir);
    try {
      const bot = new Agent(ledger, 'support-bot');
      const now = Date.now();
      await bot.call('crm.lookup', new Date(now - 5000).toISOString());
      await ledger.seal();
      const statePath = `${file}.monitor.json`;
      expect((await monitorFor(ledger, statePath).pass()).alerts).toEqual([]);
      const [callId] = await bot.call('billing.refund', new Date(now - 4000).toISOString());
      await ledger.seal();
      const edited = (await ledger.getEvent(callId!))!;
      await sqliteEdit(ledger, { kind: 'rewriteData', pos: edited.pos, data: '{"arguments":{"amount":5000},"tool":"billing.refund"}' });
      const r = await monitorFor(ledger, statePath).pass();
      expect(r.full).toBeNull();
      expect(r.verified.failures[0]).toContain('payload does not match its digest');
      expect(r.alerts.map((a) => a.code)).toEqual(['verification_failed']);
    } finally {
      await ledger.close();
    }
  });

  it('[R-MONITOR-ALERTS] a failing disk path (the artifact store is not a directory) fires capture_failed', async () => {
    const file = path.join(dir, 'disk.db');
    const w = await openWitness({ store: `sqlite:${file}`, name: 'disk', seal: { enabled: false } });
    const s = await w.session({ agent: { id: 'browser-bot' } });
    const artifacts = sidecarPaths(file).artifacts;
    fs.rmSync(artifacts, { recursive: true, force: true });
    fs.writeFileSync(artifacts, 'not a directory');
    const shot = {
      png: PNG_BYTES,
      role: 'after',
      url: 'https://billing.example/orders/A-1042',
      title: 'Order',
      text: 'Order A-1042',
      viewport: { width: 800, height: 600 },
      mask: [],
      ts: new Date().toISOString(),
      ms: 12,
    };
    expect(await s.capture(shot)).toBeUndefined();
    await w.flush();
    await w.sealNow();
    await w.close();
    const ledger = await openLedger(`sqlite:${file}`, { create: false });
    try {
      const r = await monitorFor(ledger, `${file}.monitor.json`).pass();
      expect(r.alerts.map((a) => [a.code, a.key])).toEqual([['capture_failed', 'capture_failed:browser-bot']]);
      expect(r.alerts[0]!.message).toMatch(/could not be stored: .*(ENOTDIR|EEXIST|not a directory)/i);
      expect(receiver.received.at(-1)?.alert.code).toBe('capture_failed');
    } finally {
      await ledger.close();
    }
  });

  it('[R-MONITOR-ALERTS] a recording gap (the ledger locked by another process while an agent recorded) fires recording_gap once per agent', async () => {
    const Database = (await import('better-sqlite3')).default;
    const file = path.join(dir, 'gap.db');
    const w = await openWitness({ store: `sqlite:${file}`, name: 'gap', busyTimeoutMs: 20, retryForMs: 100, seal: { enabled: false }, onError: () => undefined });
    const sessions = [await w.session({ agent: { id: 'gap-bot' } }), await w.session({ agent: { id: 'gap-bot' } })];
    const other = new Database(file);
    other.exec('BEGIN EXCLUSIVE');
    for (const s of sessions) expect(await s.note('written while the ledger is locked')).toBeUndefined();
    other.exec('ROLLBACK');
    other.close();
    for (const s of sessions) await s.note('after recovery');
    await w.flush();
    await new Promise((r) => setTimeout(r, 20));
    await w.flush();
    await w.sealNow();
    await w.close();
    const ledger = await openLedger(`sqlite:${file}`, { create: false });
    try {
      const gaps = (await ledger.query({ kind: 'error' })).events.filter((e) => e.data?.['code'] === 'recording_gap');
      expect(gaps).toHaveLength(2);
      const r = await monitorFor(ledger, `${file}.monitor.json`).pass();
      expect(r.alerts.map((a) => [a.code, a.severity])).toEqual([['recording_gap', 'critical']]);
      expect(r.alerts[0]!.message).toMatch(/^gap-bot: 1 event\(s\) of this session between .* could not be recorded \(store_locked\)/);
      expect(receiver.received.at(-1)?.alert.code).toBe('recording_gap');
    } finally {
      await ledger.close();
    }
  });

  it('[R-MONITOR-ALERTS] an expired approval and one pending too long fire; the pending one resolves once decided', async () => {
    const { ledger, file } = await newLedger(dir);
    try {
      const gw = new Agent(ledger, 'refund-bot');
      const now = Date.now();
      const iso = (ms: number) => new Date(ms).toISOString();
      const digest = 'ab'.repeat(32);
      const [expired] = await gw.record('approval.request', { request_id: 'r-1', tool: 'billing.refund', arguments_digest: digest, expires_at: iso(now - 60_000) }, iso(now - 10 * 60_000), {
        action: 'billing.refund',
        outcome: 'pending',
      });
      const [pending] = await gw.record('approval.request', { request_id: 'r-2', tool: 'billing.refund', arguments_digest: digest, expires_at: iso(now + 3_600_000) }, iso(now - 20 * 60_000), {
        action: 'billing.refund',
        outcome: 'pending',
      });
      await gw.record('approval.request', { request_id: 'r-3', tool: 'crm.lookup', arguments_digest: digest, expires_at: iso(now + 3_600_000) }, iso(now - 60_000), {
        action: 'crm.lookup',
        outcome: 'pending',
      });
      await ledger.seal();
      const statePath = `${file}.monitor.json`;
      const r = await monitorFor(ledger, statePath).pass();
      expect(r.alerts.map((a) => [a.status, a.code, a.key]).sort()).toEqual([
        ['firing', 'approval_expired', `approval_expired:${expired}`],
        ['firing', 'approval_pending', `approval_pending:${pending}`],
      ]);
      expect(r.alerts.find((a) => a.code === 'approval_pending')!.message).toMatch(/has waited 20 min/);
      expect(receiver.received.slice(-2).every((x) => x.signed)).toBe(true);
      expect((await monitorFor(ledger, statePath).pass()).alerts).toEqual([]);
      await ledger.append([
        {
          // As the gateway records an expiry: in the request's session, stamped gateway (no other counts).
          stream: gw.stream,
          recorder: { kind: 'gateway' },
          agent: { id: 'refund-bot' },
          kind: 'approval.decision',
          parent: pending!,
          outcome: 'expired',
          data: { request_id: pending!, decision: 'expired', approver: 'gateway', arguments_digest: digest },
        },
      ]);
      await ledger.seal();
      const after = await monitorFor(ledger, statePath).pass();
      expect(after.alerts.map((a) => [a.status, a.code]).sort()).toEqual([
        ['firing', 'approval_expired'],
        ['resolved', 'approval_pending'],
      ]);
    } finally {
      await ledger.close();
    }
  });

  it('[R-MONITOR-ALERTS] a halt fires agent_halted and its resume resolves it; unsealed events past --seal-stall fire sealing_stalled until sealed', async () => {
    const { ledger, file } = await newLedger(dir);
    try {
      const ops = new Agent(ledger, 'ops-console');
      const statePath = `${file}.monitor.json`;
      // Where `witness halt` records it: a halt anywhere else halts nothing (governance_misplaced).
      await ops.record('human.halt', { actor: 'alice@corp', reason: 'refunds look wrong', agent: 'refund-bot' }, new Date(Date.now() - 10 * 60_000).toISOString(), {
        stream: 'witness.approvals',
        recorder: { kind: 'cli' },
      });
      const r = await monitorFor(ledger, statePath).pass();
      const halt = (await ledger.query({ kind: 'human.halt' })).events[0]!;
      expect(r.alerts.map((a) => [a.code, a.key, a.severity]).sort()).toEqual([
        ['agent_halted', 'agent_halted:refund-bot', 'critical'],
        ['governance', `governance:${halt.id}`, 'warning'],
        ['sealing_stalled', 'sealing_stalled', 'critical'],
      ]);
      expect(r.alerts.find((a) => a.code === 'agent_halted')!.message).toBe('alice@corp halted agent refund-bot: refunds look wrong');
      // Recorded with the halt as its parent, so an export of the halt's scope carries the alert.
      const recorded = (await ledger.query({ stream: MONITOR_STREAM, kind: 'alert' })).events.find((e) => e.data?.['code'] === 'agent_halted');
      expect(recorded?.parent).toBe(halt.id);
      await ops.record('human.resume', { actor: 'alice@corp', agent: 'refund-bot' }, new Date().toISOString(), { stream: 'witness.approvals', recorder: { kind: 'cli' } });
      await ledger.seal();
      const after = await monitorFor(ledger, statePath).pass();
      expect(after.alerts.map((a) => [a.status, a.code]).sort()).toEqual([
        ['firing', 'governance'],
        ['resolved', 'agent_halted'],
        ['resolved', 'sealing_stalled'],
      ]);
    } finally {
      await ledger.close();
    }
  });

  it('[R-MONITOR-ALERTS] the webhook is retried after a 500 and then delivered, with the same alert id and a fresh signature', async () => {
    const sink = new WebhookSink({ url: receiver.url, secret: SECRET, baseDelayMs: 50 });
    const alert = {
      id: 'a'.repeat(32),
      status: 'firing',
      code: 'sealing_stalled',
      severity: 'critical',
      key: 'sealing_stalled',
      message: 'm',
      since: new Date().toISOString(),
      at: new Date().toISOString(),
      ledger: { id: 'x', origin: 'o', location: 'l' },
    } as const;
    const before = receiver.received.length;
    receiver.failNext = 1;
    await sink.send(alert);
    const got = receiver.received.slice(before);
    expect(got.map((g) => [g.id, g.signed])).toEqual([
      [alert.id, true],
      [alert.id, true],
    ]);
    receiver.failNext = 3;
    await expect(new WebhookSink({ url: receiver.url, secret: SECRET, baseDelayMs: 10, attempts: 3 }).send(alert)).rejects.toThrow(
      /did not take alert sealing_stalled \(answered 500\); check the receiver/,
    );
    receiver.failNext = 0;
  });

  it('a command that fails is reported in a sentence with what it said', async () => {
    const alert = {
      id: 'b'.repeat(32),
      status: 'firing',
      code: 'monitor_failed',
      severity: 'critical',
      key: 'monitor_failed',
      message: 'm',
      since: '',
      at: '',
      ledger: { id: 'x', origin: 'o', location: 'l' },
    } as const;
    await expect(new CommandSink('echo "pager unreachable" >&2; exit 3').send(alert)).rejects.toThrow('The alert command exited with 3: pager unreachable.');
  });
});

describe('when the monitor itself cannot write', () => {
  const dir = tempDir('witness-monitor-selffail-');
  const receiver = new Receiver();
  beforeAll(async () => receiver.start());
  afterAll(async () => receiver.close());

  it('a state directory replaced by a file sends monitor_failed once, keeps monitoring in memory, and resolves once it can save', async () => {
    const { ledger } = await newLedger(dir);
    try {
      const stateDir = path.join(dir, 'state');
      fs.mkdirSync(stateDir);
      const bot = new Agent(ledger, 'support-bot');
      const m = new Monitor(ledger, {}, { statePath: path.join(stateDir, 'state.json'), sinks: [new WebhookSink({ url: receiver.url, secret: SECRET, baseDelayMs: 10 })] });
      expect((await m.pass()).errors).toEqual([]);
      fs.rmSync(stateDir, { recursive: true });
      fs.writeFileSync(stateDir, 'a file where the state directory was');
      await bot.record('human.halt', { actor: 'alice@corp', reason: 'checking refunds', agent: 'refund-bot' }, new Date().toISOString(), { stream: 'witness.approvals', recorder: { kind: 'cli' } });
      await ledger.seal();
      const failing = await m.pass();
      expect(failing.errors).toHaveLength(1);
      expect(failing.errors[0]).toMatch(/The monitor state file .*state\.json cannot be written \(ENOTDIR\); the pass will be redone once it can\./);
      expect(receiver.received.map((r) => [r.alert.code, r.alert.status, r.signed])).toEqual([
        ['governance', 'firing', true],
        ['agent_halted', 'firing', true],
        ['monitor_failed', 'firing', true],
      ]);
      // The next pass continues from memory: the halt is not alerted again, the failure not repeated.
      const again = await m.pass();
      expect(again.alerts).toEqual([]);
      expect(again.errors).toHaveLength(1);
      expect(receiver.received).toHaveLength(3);
      fs.rmSync(stateDir);
      fs.mkdirSync(stateDir);
      const recovered = await m.pass();
      expect(recovered.errors).toEqual([]);
      expect(receiver.received.at(-1)?.alert).toMatchObject({ code: 'monitor_failed', status: 'resolved' });
      expect(fs.existsSync(path.join(stateDir, 'state.json'))).toBe(true);
      expect((await ledger.query({ stream: MONITOR_STREAM, kind: 'alert' })).events.map((e) => e.data?.['code'])).toEqual(['governance', 'agent_halted']);
    } finally {
      await ledger.close();
    }
  });

  it('findings a read-only ledger refuses are offered again each pass and the state is not saved meanwhile', async () => {
    const { ledger, url, file } = await newLedger(dir);
    const bot = new Agent(ledger, 'support-bot');
    await bot.record('human.halt', { actor: 'alice@corp', reason: 'audit', agent: 'refund-bot' }, new Date().toISOString(), { stream: 'witness.approvals', recorder: { kind: 'cli' } });
    await ledger.seal();
    await ledger.close();
    const readonly = await openLedger(url, { create: false, readonly: true });
    try {
      const statePath = `${file}.monitor.json`;
      const m = new Monitor(readonly, {}, { statePath });
      const r = await m.pass();
      expect(r.alerts.map((a) => a.code)).toEqual(['governance', 'agent_halted']);
      expect(r.recorded).toBe(0);
      expect(r.errors[0]).toMatch(/could not record 2 finding\(s\) in .* it offers them again every pass\./);
      expect(fs.existsSync(statePath)).toBe(false);
      expect((await m.pass()).errors[0]).toMatch(/could not record 2 finding/);
      // --no-record: nothing offered, the place saved.
      const quiet = await new Monitor(readonly, { record: false }, { statePath }).pass();
      expect(quiet.errors).toEqual([]);
      expect(fs.existsSync(statePath)).toBe(true);
    } finally {
      await readonly.close();
    }
  });
});
