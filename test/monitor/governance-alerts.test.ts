import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { RECORDER_VERSION } from '../../src/recorder/index.js';
import { CommandSink, MONITOR_STREAM, Monitor, type AlertMessage, type MonitorConfig } from '../../src/monitor/index.js';
import type { Ledger } from '../../src/store/index.js';
import { runCli } from '../helpers/ledger.js';
import { tempDir } from '../helpers/tmp.js';
import { Agent, at, newLedger } from './fixture.js';

/**
 * Every act of governance is announced: a genuine retention rule, purge, legal hold placed and
 * released, key rotation, halt and resume — each done through the `witness` command's own code —
 * fires one `governance` alert (warning) to the sinks and the metrics, recorded as an `alert` event
 * whose parent is the act; the same kinds where Witness never records them (an SDK-stamped resume
 * in witness.approvals, a key.rotated in a session, a hold release in the monitor's own stream) fire
 * `governance_misplaced` (critical); and a restarted monitor announces none of them again.
 */

const dir = tempDir('witness-monitor-governance-');

function commandLog(name: string): { sink: CommandSink; read: () => AlertMessage[] } {
  const file = path.join(dir, `${name}.jsonl`);
  return {
    sink: new CommandSink(`cat >> '${file}'`),
    read: () =>
      fs.existsSync(file)
        ? fs
            .readFileSync(file, 'utf8')
            .trim()
            .split('\n')
            .map((l) => JSON.parse(l) as AlertMessage)
        : [],
  };
}

async function cli(args: string[]): Promise<string> {
  const r = await runCli(args);
  expect(r.code, `witness ${args.join(' ')}: ${r.stderr}`).toBe(0);
  return r.stdout;
}

async function recordedAlerts(ledger: Ledger): Promise<Array<{ code: unknown; severity: unknown; key: unknown; parent: string | undefined }>> {
  const out = [];
  let cursor: string | undefined;
  do {
    const page = await ledger.query({ stream: MONITOR_STREAM, kind: 'alert', limit: 1000, ...(cursor === undefined ? {} : { cursor }) });
    for (const e of page.events) out.push({ code: e.data?.['code'], severity: e.data?.['severity'], key: e.data?.['key'], parent: e.parent });
    cursor = page.next;
  } while (cursor !== undefined);
  return out;
}

const governanceOnly = (alerts: readonly AlertMessage[]) => alerts.filter((a) => a.code === 'governance' || a.code === 'governance_misplaced');

describe('governance alerts [R-MONITOR-GOVERNANCE] [R-MONITOR-ALERTS]', () => {
  it('announces each genuine act once (warning), each misplaced one louder (critical), records them with the act as parent, and never twice across a restart', async () => {
    const { ledger, file, url } = await newLedger(dir);
    const log = commandLog('acts');
    const config: MonitorConfig = { fullEveryMs: 3_600_000 };
    const statePath = `${file}.monitor.json`;
    try {
      const bot = new Agent(ledger, 'refund-bot');
      for (let i = 0; i < 3; i++) await bot.call('billing.lookup', at(1, 10, i));
      await ledger.seal();
      // The monitor knows the ledger before anything is governed.
      const first = await new Monitor(ledger, config, { statePath, sinks: [log.sink] }).pass();
      expect(governanceOnly(first.alerts)).toEqual([]);

      await cli(['retention', 'set', '--kind', 'tool.call', '--older-than', '1d', '--by', 'dana', '--store', url]);
      const run = JSON.parse(await cli(['retention', 'run', '--by', 'dana', '--store', url, '--json'])) as { purged: number };
      expect(run.purged).toBe(3);
      const placed = JSON.parse(await cli(['hold', 'place', '--agent', 'refund-bot', '--reason', 'dispute 7', '--case', 'C-7', '--by', 'erin', '--store', url, '--json'])) as { hold: string };
      await cli(['hold', 'release', placed.hold, '--reason', 'settled', '--by', 'erin', '--store', url]);
      await cli(['keys', 'rotate', '--reason', 'yearly', '--store', url]);
      await cli(['halt', '--agent', 'refund-bot', '--reason', 'refunds look wrong', '--store', url]);
      await cli(['resume', '--agent', 'refund-bot', '--reason', 'fixed', '--store', url]);

      const second = await new Monitor(ledger, config, { statePath, sinks: [log.sink] }).pass();
      const acts = governanceOnly(second.alerts);
      expect(acts.map((a) => [a.details?.['kind'], a.code, a.severity, a.status]).sort()).toEqual(
        [
          ['config.change', 'governance', 'warning', 'firing'],
          ['retention.purge', 'governance', 'warning', 'firing'],
          ['hold.placed', 'governance', 'warning', 'firing'],
          ['hold.released', 'governance', 'warning', 'firing'],
          ['key.rotated', 'governance', 'warning', 'firing'],
          ['human.halt', 'governance', 'warning', 'firing'],
          ['human.resume', 'governance', 'warning', 'firing'],
        ].sort(),
      );
      const purge = acts.find((a) => a.details?.['kind'] === 'retention.purge')!;
      expect(purge.message).toMatch(/^dana purged the payloads of 3 event\(s\) under policy retention:kind=tool\.call:1d \(leaves \d+–\d+ in \d+ range\(s\)\)/);
      expect(purge.details).toMatchObject({ policy: 'retention:kind=tool.call:1d', count: 3, recorder: 'cli', stream: 'witness.retention' });
      expect(acts.find((a) => a.details?.['kind'] === 'hold.placed')!.message).toMatch(/^erin placed legal hold .* dispute 7/);
      expect(acts.find((a) => a.details?.['kind'] === 'key.rotated')!.message).toMatch(/rotated the signing key .* → .*: yearly/);
      // Each act's alert names the act as its parent: an export of the act carries it.
      const events = new Map<string, string>();
      for (const a of acts) events.set(a.key, String(a.details?.['event']));
      const recorded = await recordedAlerts(ledger);
      for (const a of acts) expect(recorded).toContainEqual({ code: 'governance', severity: 'warning', key: a.key, parent: events.get(a.key) });
      for (const [, id] of events) expect((await ledger.getEvent(id))?.id).toBe(id);
      // The sinks got the same messages, and the metrics count them.
      expect(
        governanceOnly(log.read())
          .map((a) => a.id)
          .sort(),
      ).toEqual(acts.map((a) => a.id).sort());

      // Written where Witness never writes them, by a direct writer of the database.
      const [resume] = await ledger.append([
        {
          stream: 'witness.approvals',
          agent: { id: 'refund-bot' },
          recorder: { kind: 'sdk', version: RECORDER_VERSION },
          kind: 'human.resume',
          data: { actor: 'refund-bot', agent: 'refund-bot', reason: 'I resume myself' },
        },
      ]);
      const [rotated] = await bot.record('key.rotated', { old_key: 'a+b+c', new_key: 'd+e+f' }, new Date().toISOString());
      const [released] = await ledger.append([
        { stream: MONITOR_STREAM, agent: { id: 'witness-governance' }, recorder: { kind: 'cli' }, kind: 'hold.released', data: { hold_id: placed.hold, released_by: 'mallory' } },
      ]);
      const restarted = new Monitor(ledger, config, { statePath, sinks: [log.sink] });
      const third = await restarted.pass();
      const loud = governanceOnly(third.alerts);
      expect(loud.map((a) => [a.details?.['event'], a.code, a.severity]).sort()).toEqual(
        [
          [resume!.id, 'governance_misplaced', 'critical'],
          [rotated, 'governance_misplaced', 'critical'],
          [released!.id, 'governance_misplaced', 'critical'],
        ].sort(),
      );
      expect(loud.find((a) => a.details?.['event'] === resume!.id)!.message).toMatch(/^A human\.resume event \S+ was recorded by recorder kind sdk, not cli or server, so Witness did not record it/);
      expect(loud.find((a) => a.details?.['event'] === rotated)!.message).toMatch(/is in stream s-\S+, not witness\.keys and was recorded by recorder kind gateway, not cli/);
      expect(loud.find((a) => a.details?.['event'] === released!.id)!.message).toMatch(/is in stream witness\.monitor, not witness\.retention/);
      expect(restarted.metrics.alertsFired.get('governance_misplaced')).toBe(3);
      expect(restarted.metrics.alertsFired.get('governance')).toBeUndefined();
      // The forged resume lifts no halt the monitor reports: none was in force, and none is now.
      expect(third.alerts.filter((a) => a.code === 'agent_halted')).toEqual([]);

      // Restarted again with nothing new: nothing is announced, sent or recorded twice.
      const sent = log.read().length;
      const recordedBefore = (await recordedAlerts(ledger)).length;
      const fourth = await new Monitor(ledger, config, { statePath, sinks: [log.sink] }).pass();
      expect(fourth.alerts).toEqual([]);
      expect(log.read()).toHaveLength(sent);
      expect(await recordedAlerts(ledger)).toHaveLength(recordedBefore);
    } finally {
      await ledger.close();
    }
  }, 60_000);

  it('a monitor that recorded its alerts but could not save its place sends them again on restart, with the same ids, and records them once', async () => {
    const { ledger, url } = await newLedger(dir);
    const log = commandLog('redo');
    try {
      const bot = new Agent(ledger, 'ops-bot');
      await bot.call('crm.lookup', at(2, 9));
      await ledger.seal();
      const stateDir = path.join(dir, 'redo-state');
      fs.mkdirSync(stateDir);
      const m = new Monitor(ledger, {}, { statePath: path.join(stateDir, 'state.json'), sinks: [log.sink] });
      await m.pass();
      const saved = path.join(dir, 'saved-state.json');
      fs.copyFileSync(path.join(stateDir, 'state.json'), saved);
      await cli(['halt', '--agent', 'ops-bot', '--reason', 'checking', '--store', url]);
      // Its place cannot be saved (the state's directory is now a file): the pass sends and records, then fails to save.
      fs.rmSync(stateDir, { recursive: true });
      fs.writeFileSync(stateDir, 'a file where the state directory was');
      const stuck = await m.pass();
      expect(stuck.errors.join(' ')).toMatch(/cannot be written/);
      const halt = governanceOnly(stuck.alerts);
      expect(halt.map((a) => a.details?.['kind'])).toEqual(['human.halt']);
      // Restarted from the place saved before that pass.
      const again = await new Monitor(ledger, {}, { statePath: saved, sinks: [log.sink] }).pass();
      expect(governanceOnly(again.alerts).map((a) => a.id)).toEqual([halt[0]!.id]);
      expect(governanceOnly(log.read()).map((a) => a.id)).toEqual([halt[0]!.id, halt[0]!.id]);
      expect((await recordedAlerts(ledger)).filter((a) => a.code === 'governance')).toHaveLength(1);
    } finally {
      await ledger.close();
    }
  }, 60_000);

  it('--quiet-governance silences acts in their place, never misplaced ones; on a first pass acts older than a day are history', async () => {
    const { ledger, file, url } = await newLedger(dir);
    try {
      const bot = new Agent(ledger, 'quiet-bot');
      await bot.call('crm.lookup', at(3, 9));
      await ledger.seal();
      // An old halt in its place (history on a first pass) and an old misplaced one (announced all the same).
      const [oldHalt] = await ledger.append([
        { stream: 'witness.approvals', ts: at(3, 10), agent: { id: 'quiet-bot' }, recorder: { kind: 'cli' }, kind: 'human.halt', data: { actor: 'dana', reason: 'old', agent: 'quiet-bot' } },
        { stream: 'witness.approvals', ts: at(3, 11), agent: { id: 'quiet-bot' }, recorder: { kind: 'cli' }, kind: 'human.resume', data: { actor: 'dana', agent: 'quiet-bot' } },
      ]);
      const [oldForged] = await ledger.append([
        { stream: 'witness.approvals', ts: at(3, 12), agent: { id: 'quiet-bot' }, recorder: { kind: 'otlp' }, kind: 'human.halt', data: { actor: 'x', reason: 'y' } },
      ]);
      const statePath = `${file}.monitor.json`;
      const first = await new Monitor(ledger, { quietGovernance: ['hold.placed'] }, { statePath }).pass();
      expect(governanceOnly(first.alerts).map((a) => [a.details?.['event'], a.code])).toEqual([[oldForged!.id, 'governance_misplaced']]);
      expect(oldHalt).toBeDefined();
      await cli(['hold', 'place', '--agent', 'quiet-bot', '--reason', 'audit', '--store', url]);
      const [forgedHold] = await ledger.append([
        { stream: 'witness.retention', agent: { id: 'quiet-bot' }, recorder: { kind: 'sdk' }, kind: 'hold.placed', data: { hold_id: 'h-1', scope: {}, reason: 'z', placed_by: 'bot' } },
      ]);
      const second = await new Monitor(ledger, { quietGovernance: ['hold.placed'] }, { statePath }).pass();
      expect(governanceOnly(second.alerts).map((a) => [a.details?.['event'], a.code])).toEqual([[forgedHold!.id, 'governance_misplaced']]);
    } finally {
      await ledger.close();
    }
  }, 60_000);
});
