import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportBundle } from '../../src/export/index.js';
import { extractZip } from '../../src/export/zip.js';
import { MONITOR_STREAM, Monitor } from '../../src/monitor/index.js';
import type { Ledger } from '../../src/store/index.js';
import { tempDir } from '../helpers/tmp.js';
import { Agent, at, newLedger } from '../monitor/fixture.js';
import { expectPassed, threeVerdicts } from './verify-three.js';

/**
 * The monitor records its anomaly flags in witness.monitor with `parent` = the flagged event
 * (src/monitor/monitor.ts): an export of the agent must carry the flags about it, with their
 * payloads, and leave another agent's out (docs/FORMAT.md 7.11 step 3), alike in all three verifiers.
 */
describe('an --agent export carries the monitor’s anomaly flags about that agent', () => {
  const dir = tempDir('witness-scope-monitor-');
  let ledger: Ledger;
  let file: string;
  const ids: { bot?: string; other?: string } = {};

  beforeAll(async () => {
    ({ ledger, file } = await newLedger(dir));
    const bot = new Agent(ledger, 'support-bot');
    const other = new Agent(ledger, 'billing-bot');
    for (let i = 0; i < 3; i++) {
      await bot.call('crm.lookup', at(1, 10, i));
      await other.call('billing.read', at(1, 10, 10 + i));
    }
    await ledger.seal();
    const monitor = () => new Monitor(ledger, { fullEveryMs: 3_600_000, behaviour: { newToolAfter: 2 } }, { statePath: `${file}.monitor.json` });
    expect((await monitor().pass()).flags).toEqual([]);
    // billing-bot first, so its flag is recorded before support-bot's and lies inside the span of an export of support-bot.
    ids.other = (await other.call('shell.exec', at(2, 10)))[0];
    ids.bot = (await bot.call('shell.exec', at(2, 10, 1)))[0];
    await ledger.seal();
    const flags = (await monitor().pass()).flags;
    expect(flags.map((f) => [f.rule, f.target_event])).toEqual([
      ['behaviour.new-tool', ids.other],
      ['behaviour.new-tool', ids.bot],
    ]);
    await ledger.seal();
  });
  afterAll(async () => ledger.close());

  it('holds support-bot’s flag with its payload, billing-bot’s as a header only, and passes all three verifiers', async () => {
    const zip = path.join(dir, 'support-bot.zip');
    const r = await exportBundle(ledger, { since: null, until: null, agents: ['support-bot'], sessions: null, regimes: [] }, zip, { actor: 'auditor@corp' });
    const vkey = fs.readFileSync(`${file}.pub`, 'utf8').trim();
    const out = path.join(dir, 'unzipped');
    fs.mkdirSync(out);
    expect(await extractZip(zip, out, () => 1 << 30)).toBeUndefined();
    const events = fs
      .readFileSync(path.join(out, 'events.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { stream: string; kind: string; parent?: string; data: Record<string, unknown> | null });
    const flags = events.filter((e) => e.stream === MONITOR_STREAM && e.kind === 'anomaly');
    const mine = flags.find((e) => e.parent === ids.bot);
    expect(mine?.data).toMatchObject({ rule: 'behaviour.new-tool', agent: 'support-bot', target_event: ids.bot, tool: 'shell.exec' });
    // billing-bot's flag lies inside the span: disclosed as a header, its payload withheld.
    expect(flags.find((e) => e.parent === ids.other)).toMatchObject({ data: null });
    // support-bot's session.start, 4 calls and their 4 results, and its flag.
    expect(r.inScope).toBe(10);
    expectPassed(await threeVerdicts(zip, vkey));
  });
});
