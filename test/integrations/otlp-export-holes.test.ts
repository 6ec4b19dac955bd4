import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOtlpExport } from '../../src/cli/commands/export-otlp.js';
import { loadOtlpExport, type ExportableEvent } from '../../src/integrations/index.js';
import { createKey } from '../../src/server/index.js';
import { SqliteLedger, toStored, type Ledger } from '../../src/store/index.js';
import { buildLedger, type BuiltLedger } from '../helpers/ledger.js';
import { tempDir } from '../helpers/tmp.js';
import { startReceiver, type Receiver } from './otlp-export-receiver.js';

/**
 * Continuous OTLP export's holes from the issue 16 review (/tmp/review-16/findings.md M7): a batch
 * the backend refuses for good no longer stalls the export, Witness's own streams are not sent,
 * payloads are masked as for the developer role, and the export is recorded as audit.access.
 */

const dir = tempDir('witness-otlp-export-holes-');
let base: BuiltLedger;
let receiver: Receiver;

beforeAll(async () => {
  base = await buildLedger(dir);
  receiver = await startReceiver();
}, 60_000);
afterAll(() => receiver.close());

async function* pages(ledger: Ledger, from = 0, to = Infinity): AsyncIterable<ExportableEvent[]> {
  for await (const page of ledger.scan(from, 100)) {
    const out = page.filter((row) => row.pos < to).map((row) => toStored(row));
    if (out.length > 0) yield out;
  }
}

describe('sending a batch the backend refuses for good', () => {
  it('splits it, sends what the backend takes, and reports each span it still refuses by position instead of stopping', async () => {
    const { OtlpSender, SpanMapper, sendEvents } = await loadOtlpExport();
    const ledger = SqliteLedger.open({ path: base.file, create: false, readonly: true });
    try {
      const sender = new OtlpSender({ url: receiver.url, protocol: 'http/json' });
      receiver.spans.length = 0;
      receiver.requests.length = 0;
      // Four events in one batch: refused whole, its first half taken, its second half refused, then leaf 2 taken and leaf 3 refused.
      receiver.answers.push(400, 200, 400, 200, 400);
      const refused: Array<[number, string]> = [];
      const nexts: number[] = [];
      const sent = await sendEvents(
        pages(ledger, 0, 4),
        new SpanMapper({ origin: ledger.info.origin, checkpointSize: 0 }),
        sender,
        (next) => void nexts.push(next),
        (pos, e) => void refused.push([pos, e.message]),
      );
      expect(sent).toBe(3);
      expect(refused).toEqual([[3, expect.stringMatching(/refused the spans with HTTP 400/) as string]]);
      expect(receiver.spans.map((s) => s.attributes['witness.ledger.position']).sort()).toEqual([0, 1, 2]);
      expect(nexts.at(-1)).toBe(4);
      await sender.close();
    } finally {
      await ledger.close();
    }
  });

  it('still stops at a refusal that is about the endpoint, not the batch (401), sending nothing further', async () => {
    const { OtlpSender, SpanMapper, sendEvents } = await loadOtlpExport();
    const ledger = SqliteLedger.open({ path: base.file, create: false, readonly: true });
    try {
      const sender = new OtlpSender({ url: receiver.url, protocol: 'http/json' });
      receiver.requests.length = 0;
      receiver.answers.push(401);
      const refused: number[] = [];
      await expect(sendEvents(pages(ledger, 0, 4), new SpanMapper({ origin: ledger.info.origin, checkpointSize: 0 }), sender, undefined, (pos) => void refused.push(pos))).rejects.toThrow(/HTTP 401/);
      expect(refused).toEqual([]);
      expect(receiver.requests).toHaveLength(1);
      await sender.close();
    } finally {
      await ledger.close();
    }
  });
});

describe('witness serve --otlp-export (startOtlpExport)', () => {
  it("sends no event of Witness's own streams, masks payloads as for a developer, records the export as audit.access, and records a span refused for good and goes on", async () => {
    const file = path.join(dir, 'serve-export.db');
    fs.copyFileSync(base.file, file);
    for (const ext of ['.key', '.keyring.key']) if (fs.existsSync(base.file + ext)) fs.copyFileSync(base.file + ext, file + ext);
    const ledger = SqliteLedger.open({ path: file, create: false });
    try {
      await createKey(ledger, { role: 'agent', agent: 'bot', name: 'bot key' }, { who: 'test', recorder: 'cli' });
      await ledger.append([{ stream: 'mailer', kind: 'note', agent: { id: 'mailer-bot' }, data: { text: 'write to jordan.doe@example.com' } }]);
      const stateFile = path.join(dir, 'serve-export.state.json');
      receiver.spans.length = 0;
      receiver.requests.length = 0;
      const lines: string[] = [];
      const io = { out: (t: string) => void lines.push(t), err: (t: string) => void lines.push(t), isTTY: false };
      const follower = await startOtlpExport({ url: `${receiver.url}/v1/traces`, protocol: 'http/json', headers: {}, stateFile, intervalMs: 50 }, ledger, io);
      await expect.poll(() => receiver.spans.some((s) => s.attributes['witness.event.stream'] === 'mailer'), { timeout: 10_000 }).toBe(true);
      // One more event, which the backend refuses for good: recorded, skipped, and the export goes on.
      // Both in one append, so one pass sends them as one batch: refused whole, then the poison alone refused, the other taken.
      receiver.answers.push(400, 400);
      await ledger.append([
        { stream: 'mailer', kind: 'note', agent: { id: 'mailer-bot' }, data: { text: 'poison' } },
        { stream: 'mailer', kind: 'note', agent: { id: 'mailer-bot' }, data: { text: 'after the poison' } },
      ]);
      const poison = ledger.info.size - 2;
      await expect.poll(() => receiver.spans.some((s) => String(s.attributes['witness.event.data']).includes('after the poison')), { timeout: 10_000 }).toBe(true);
      await follower.stop();

      const streams = new Set(receiver.spans.map((s) => String(s.attributes['witness.event.stream'])));
      expect([...streams].filter((s) => s.startsWith('witness.'))).toEqual([]);
      const mail = receiver.spans.find((s) => String(s.attributes['witness.event.data']).includes('write to'))!;
      expect(String(mail.attributes['witness.event.data'])).toContain('[MASKED:email]');
      expect(JSON.stringify(receiver.spans)).not.toContain('jordan.doe@example.com');

      const access = (await ledger.readStream('witness.audit-access')).filter((e) => (e.data as { format?: string } | null)?.format === 'otlp');
      expect(access[0]).toMatchObject({ kind: 'audit.access', outcome: 'success', data: { operation: 'export', mode: 'continuous', masked_as: 'developer', endpoint: `${receiver.url}/v1/traces` } });
      const skipped = access.find((e) => e.outcome === 'error');
      expect(skipped).toMatchObject({ data: { operation: 'export', skipped: { from: poison, to: poison + 1 }, reason: expect.stringContaining('HTTP 400') as string } });
      expect((JSON.parse(fs.readFileSync(stateFile, 'utf8')) as { next: number }).next).toBeGreaterThanOrEqual(poison + 2);
    } finally {
      await ledger.close();
    }
  }, 30_000);
});
