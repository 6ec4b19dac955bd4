import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadOtlpExport, type ExportableEvent } from '../../src/integrations/index.js';
import { SqliteLedger, toStored, type Ledger } from '../../src/store/index.js';
import { buildLedger, type BuiltLedger } from '../helpers/ledger.js';
import { tempDir } from '../helpers/tmp.js';
import { startReceiver, type Receiver } from './otlp-export-receiver.js';

/**
 * The bounds of OTLP export: a span's string values are cut at OTLP_MAX_VALUE_BYTES (UTF-8, on a
 * character boundary) and its attributes at OTLP_MAX_ATTRIBUTES, the cut is named on the span
 * (witness.truncated and witness.truncated.bytes), and the attributes a trace is checked back
 * against the ledger by (position, hash, id) are never cut.
 */

const dir = tempDir('witness-otlp-bounds-');
let base: BuiltLedger;
let receiver: Receiver;
let file: string;
const FIVE_MIB = 5 * 1024 * 1024;
// Two-byte and four-byte characters, so a cut that ignored UTF-8 would split one.
const huge = 'é😀'.repeat(Math.ceil(FIVE_MIB / 6)).slice(0, FIVE_MIB / 2);
// Members in RFC 8785 order, as the ledger stores them and the export reads them back.
const input = [{ content: huge, role: 'user' }];
const output = [{ text: 'x'.repeat(FIVE_MIB), type: 'text' }];

beforeAll(async () => {
  base = await buildLedger(dir);
  receiver = await startReceiver();
  file = path.join(dir, 'bounds.db');
  fs.copyFileSync(base.file, file);
  // The recorder spills large outputs into artifacts; a ledger opened with a larger payload limit
  // holds an event far above the cap in its own payload, as a ledger with a raised maxPayloadBytes may.
  const writer = SqliteLedger.open({ path: file, create: false, maxPayloadBytes: 32 * 1024 * 1024 });
  try {
    await writer.append([{ stream: 'huge', kind: 'llm.call', agent: { id: 'big-bot' }, data: { model: 'claude', input, output } }]);
    await writer.append([{ stream: 'huge', kind: 'note', agent: { id: 'big-bot' }, data: { text: 'after the giant' } }]);
  } finally {
    await writer.close();
  }
}, 60_000);
afterAll(() => receiver.close());

async function* pages(ledger: Ledger): AsyncIterable<ExportableEvent[]> {
  for await (const page of ledger.scan(0, 4)) yield page.map((row) => toStored(row));
}

describe('OTLP export bounds', () => {
  for (const protocol of ['http/protobuf', 'http/json'] as const) {
    it(`[R-OTLP-EXPORT] sends an event far above the cap over ${protocol} with its messages cut at the limit and marked, its position and hash whole, and the events after it`, async () => {
      const { OtlpSender, SpanMapper, sendEvents, OTLP_MAX_VALUE_BYTES } = await loadOtlpExport();
      receiver.spans.length = 0;
      receiver.requests.length = 0;
      const ledger = SqliteLedger.open({ path: file, create: false, readonly: true });
      try {
        const events: ExportableEvent[] = [];
        for await (const p of pages(ledger)) events.push(...p);
        const giant = events.find((e) => e.stream === 'huge' && e.kind === 'llm.call')!;
        const sender = new OtlpSender({ url: receiver.url, protocol });
        const sent = await sendEvents(pages(ledger), new SpanMapper({ origin: ledger.info.origin, checkpointSize: 0 }), sender);
        await sender.close();
        expect(sent).toBe(events.length);
        expect(receiver.spans).toHaveLength(events.length);

        const span = receiver.spans.find((s) => s.attributes['witness.event.id'] === giant.id)!;
        expect(span.attributes['witness.ledger.position']).toBe(giant.pos);
        expect(span.attributes['witness.event.hash']).toBe(giant.hash);
        const fullIn = JSON.stringify(input);
        const fullOut = JSON.stringify(output);
        const cutIn = span.attributes['gen_ai.input.messages'] as string;
        const cutOut = span.attributes['gen_ai.output.messages'] as string;
        for (const [cut, full] of [
          [cutIn, fullIn],
          [cutOut, fullOut],
        ] as const) {
          expect(Buffer.byteLength(cut)).toBeLessThanOrEqual(OTLP_MAX_VALUE_BYTES);
          expect(Buffer.byteLength(cut)).toBeGreaterThan(OTLP_MAX_VALUE_BYTES - 4);
          // A prefix of the value, never half a character.
          expect(full.startsWith(cut)).toBe(true);
          expect(cut).not.toContain('\uFFFD');
        }
        expect(span.attributes['witness.truncated']).toEqual(['gen_ai.input.messages', 'gen_ai.output.messages']);
        expect(span.attributes['witness.truncated.bytes']).toEqual([Buffer.byteLength(fullIn), Buffer.byteLength(fullOut)]);
        expect(span.attributes['gen_ai.request.model']).toBe('claude');

        const after = receiver.spans.find((s) => s.attributes['witness.event.kind'] === 'note' && s.attributes['witness.event.stream'] === 'huge')!;
        expect(JSON.parse(after.attributes['witness.event.data'] as string)).toEqual({ text: 'after the giant' });
        expect(after.attributes['witness.truncated']).toBeUndefined();
        // Nothing else was cut: the small ledger's spans arrive as before.
        expect(receiver.spans.filter((s) => s.attributes['witness.truncated'] !== undefined)).toHaveLength(1);
      } finally {
        await ledger.close();
      }
    }, 60_000);
  }

  it('sends a run of large events in requests of at most OTLP_BATCH_BYTES of attribute text, not 512 spans at once', async () => {
    const { OtlpSender, SpanMapper, sendEvents, OTLP_BATCH_BYTES, OTLP_MAX_VALUE_BYTES } = await loadOtlpExport();
    const wide = path.join(dir, 'wide.db');
    fs.copyFileSync(base.file, wide);
    const writer = SqliteLedger.open({ path: wide, create: false });
    try {
      const big = 'y'.repeat(2 * OTLP_MAX_VALUE_BYTES);
      await writer.append(Array.from({ length: 300 }, () => ({ stream: 'wide', kind: 'llm.call' as const, agent: { id: 'wide-bot' }, data: { model: 'm', input: [big], output: big } })));
      receiver.spans.length = 0;
      receiver.requests.length = 0;
      const sender = new OtlpSender({ url: receiver.url, protocol: 'http/json' });
      const sent = await sendEvents(pages(writer), new SpanMapper({ origin: writer.info.origin, checkpointSize: 0 }), sender);
      await sender.close();
      expect(sent).toBe(base.size + 300);
      // 300 spans of two capped values each: about 9.6 MiB of text, so at least four requests.
      expect(receiver.requests.length).toBeGreaterThanOrEqual(Math.ceil((300 * 2 * OTLP_MAX_VALUE_BYTES) / (OTLP_BATCH_BYTES + 2 * OTLP_MAX_VALUE_BYTES)));
      expect(receiver.spans).toHaveLength(base.size + 300);
    } finally {
      await writer.close();
    }
  }, 60_000);

  it('keeps at most OTLP_MAX_ATTRIBUTES attributes on a span, the position, hash and id first, cuts each string of an array, and counts the rest as dropped', async () => {
    const { boundAttributes, OTLP_MAX_ATTRIBUTES, OTLP_MAX_VALUE_BYTES } = await loadOtlpExport();
    const attrs: Record<string, string | number | string[]> = { 'gen_ai.response.finish_reasons': ['stop', 'é'.repeat(20_000)] };
    for (let i = 0; i < 200; i++) attrs[`extra.${String(i).padStart(3, '0')}`] = `v${i}`;
    attrs['witness.ledger.position'] = 7;
    attrs['witness.event.hash'] = 'ab'.repeat(32);
    attrs['witness.event.id'] = '0190b7b0-0000-7000-8000-000000000000';
    const dropped = boundAttributes(attrs);
    expect(Object.keys(attrs)).toHaveLength(OTLP_MAX_ATTRIBUTES);
    // Two places are kept for the marks; the rest go in the order they were set, after the ones kept whole.
    expect(dropped).toBe(204 - (OTLP_MAX_ATTRIBUTES - 2));
    expect(attrs['witness.ledger.position']).toBe(7);
    expect(attrs['witness.event.hash']).toBe('ab'.repeat(32));
    expect(attrs['witness.event.id']).toBe('0190b7b0-0000-7000-8000-000000000000');
    expect(attrs['extra.121']).toBe('v121');
    expect(attrs['extra.122']).toBeUndefined();
    expect(attrs['gen_ai.response.finish_reasons']).toEqual(['stop', 'é'.repeat(OTLP_MAX_VALUE_BYTES / 2)]);
    expect(attrs['witness.truncated']).toEqual(['gen_ai.response.finish_reasons']);
    expect(attrs['witness.truncated.bytes']).toEqual([4 + 40_000]);
  });
});
