import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteLedger } from '../../src/store/index.js';
import { buildLedger, oneSentence, runCli, type BuiltLedger } from '../helpers/ledger.js';
import { tempDir } from '../helpers/tmp.js';
import { startReceiver, type Receiver } from '../integrations/otlp-export-receiver.js';

/** `witness export --otlp URL`, run as the CLI runs it (main(argv, io)) against a local OTLP receiver. */

const dir = tempDir('witness-export-otlp-');
let base: BuiltLedger;
let receiver: Receiver;

beforeAll(async () => {
  base = await buildLedger(dir);
  receiver = await startReceiver();
}, 60_000);
afterAll(() => receiver.close());

async function accessEvent(id: string) {
  const ledger = SqliteLedger.open({ path: base.file, create: false, readonly: true });
  try {
    return await ledger.getEvent(id);
  } finally {
    await ledger.close();
  }
}

describe('witness export --otlp', () => {
  it("sends a session's events as spans with the given headers, and records the export as audit.access (format otlp) without the headers", async () => {
    receiver.spans.length = 0;
    receiver.requests.length = 0;
    const r = await runCli([
      'export',
      '--otlp',
      receiver.url,
      '--otlp-protocol',
      'http/json',
      '--otlp-header',
      'authorization=Bearer s3cret',
      '--session',
      base.sessions.b,
      '--as',
      'dana',
      '--store',
      `sqlite:${base.file}`,
      '--json',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { spans: number; accessEvent: string; endpoint: string };
    expect(out.spans).toBe(5);
    expect(receiver.spans.map((s) => s.attributes['witness.ledger.position']).sort()).toEqual([0, 1, 2, 3, 4].map((seq) => base.pos(base.sessions.b, seq)).sort());
    expect(receiver.spans.every((s) => s.attributes['gen_ai.conversation.id'] === base.sessions.b)).toBe(true);
    expect(receiver.requests[0]!.headers.authorization).toBe('Bearer s3cret');
    const e = await accessEvent(out.accessEvent);
    expect(e).toMatchObject({ kind: 'audit.access', action: 'export', outcome: 'success', principal: { id: 'dana' } });
    expect(e!.data).toMatchObject({ operation: 'export', format: 'otlp', protocol: 'http/json', endpoint: `${receiver.url}/v1/traces`, count: 5, complete: true });
    expect(JSON.stringify(e!.data)).not.toContain('s3cret');
  });

  it('sends protobuf by default and says how to check a span against the ledger', async () => {
    receiver.requests.length = 0;
    const r = await runCli(['export', '--otlp', receiver.url, '--session', base.sessions.a, '--store', `sqlite:${base.file}`]);
    expect(r.code).toBe(0);
    expect(receiver.requests[0]!.contentType).toBe('application/x-protobuf');
    expect(r.stdout).toMatch(
      /^Exported \d+ event\(s\) as OpenTelemetry spans to http:\/\/127\.0\.0\.1:\d+\/v1\/traces \(http\/protobuf, leaves \d+–\d+\); each span checks back against the ledger by its witness\.ledger\.position and witness\.event\.hash \(README "OpenTelemetry export"\)\.\n$/,
    );
  });

  it('an endpoint that is down ends in one sentence with exit 1, and the failed export is recorded', async () => {
    const down = await startReceiver();
    await down.close();
    const before = process.env.OTEL_EXPORTER_OTLP_TIMEOUT;
    process.env.OTEL_EXPORTER_OTLP_TIMEOUT = '1500';
    try {
      const r = await runCli(['export', '--otlp', down.url, '--store', `sqlite:${base.file}`]);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      expect(oneSentence(r.stderr)).toMatch(
        /^The OTLP endpoint http:\/\/127\.0\.0\.1:\d+\/v1\/traces could not be reached \(ECONNREFUSED\); check that the collector is running at that address, then export again\.$/,
      );
    } finally {
      if (before === undefined) delete process.env.OTEL_EXPORTER_OTLP_TIMEOUT;
      else process.env.OTEL_EXPORTER_OTLP_TIMEOUT = before;
    }
    const ledger = SqliteLedger.open({ path: base.file, create: false, readonly: true });
    try {
      const rows = await ledger.query({ kind: 'audit.access' });
      const last = rows.events.at(-1)!;
      expect(last).toMatchObject({ outcome: 'error', data: { format: 'otlp', complete: false } });
    } finally {
      await ledger.close();
    }
  }, 20_000);

  it('passes over a span the endpoint refuses for good (400), sends the rest, records the export as incomplete with the leaf it skipped, and exits 1', async () => {
    receiver.spans.length = 0;
    // Session b's five events in one batch: refused whole, its first three taken, its last two refused, the fourth taken, the fifth refused.
    receiver.answers.push(400, 200, 400, 200, 400);
    const r = await runCli(['export', '--otlp', receiver.url, '--otlp-protocol', 'http/json', '--session', base.sessions.b, '--as', 'dana', '--store', `sqlite:${base.file}`]);
    expect(r.code).toBe(1);
    const skipped = base.pos(base.sessions.b, 4);
    expect(oneSentence(r.stderr)).toMatch(new RegExp(`refused 1 span for good \\(leaf ${skipped}; .*HTTP 400.*\\); the other 4 were sent`));
    expect(receiver.spans).toHaveLength(4);
    const ledger = SqliteLedger.open({ path: base.file, create: false, readonly: true });
    try {
      const last = (await ledger.readStream('witness.audit-access')).at(-1)!;
      expect(last).toMatchObject({ kind: 'audit.access', outcome: 'error', data: { format: 'otlp', count: 4, complete: false, skipped: [skipped] } });
    } finally {
      await ledger.close();
    }
  });

  it('retries a 429, then succeeds', async () => {
    receiver.requests.length = 0;
    receiver.answers = [429];
    const r = await runCli(['export', '--otlp', receiver.url, '--session', base.sessions.c, '--store', `sqlite:${base.file}`]);
    expect(r.code).toBe(0);
    expect(receiver.requests.map((q) => q.status)).toEqual([429, 200]);
  }, 20_000);

  it('refuses bad flags with exit 2: an unknown protocol, a header without a name, --otlp with -o, and no -o at all', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--otlp', receiver.url, '--otlp-protocol', 'grpc'], /--otlp-protocol "grpc" is not supported; use http\/protobuf or http\/json\./],
      [['--otlp', receiver.url, '--otlp-header', '=x'], /is not NAME=VALUE/],
      [['--otlp', 'ftp://example.com'], /is not an http\(s\) URL/],
      [['--otlp', receiver.url, '-o', 'x.zip'], /leave out --format and -o with it\./],
      [[], /witness export needs -o <path> \(or --otlp <url> to send spans\)/],
    ];
    for (const [args, message] of cases) {
      const r = await runCli(['export', ...args, '--store', `sqlite:${base.file}`]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(oneSentence(r.stderr)).toMatch(message);
    }
  });
});
