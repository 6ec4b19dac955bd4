import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBuild } from '../helpers/gateway.js';
import { BIN, REPO_ROOT, buildLedger, readEvents, runBin, type BuiltLedger } from '../helpers/ledger.js';
import { tempDir } from '../helpers/tmp.js';
import { startReceiver, type Receiver } from '../integrations/otlp-export-receiver.js';

/**
 * `witness serve --otlp-export URL` as people run it: the built binary, events ingested over the
 * API reaching a local OTLP receiver as spans, a restart resuming from the saved position.
 */

requireBuild();
const dir = tempDir('witness-serve-otlp-');
let base: BuiltLedger;
let receiver: Receiver;

beforeAll(async () => {
  base = await buildLedger(dir);
  receiver = await startReceiver();
}, 60_000);
afterAll(() => receiver.close());

async function waitFor<T>(check: () => T | undefined, what: string, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function serve(
  store: string,
  flags: string[] = ['--otlp-export', '', '--otlp-export-protocol', 'http/json', '--otlp-export-interval', '100ms'],
): Promise<{ child: ChildProcess; url: string; err: () => string; stop: () => Promise<number | null> }> {
  const child = spawn(process.execPath, [BIN, 'serve', '--store', store, '--port', '0', ...flags.map((f) => (f === '' ? receiver.url : f))], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const url = await waitFor(() => /listening on (http:\/\/\S+?) /.exec(out)?.[1], `serve to listen (${err})`);
  return {
    child,
    url,
    err: () => err,
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', (code) => resolve(code));
        child.kill('SIGTERM');
      }),
  };
}

const positions = () => receiver.spans.map((s) => s.attributes['witness.ledger.position'] as number).sort((a, b) => a - b);
/** The positions the export sends: every event but those of Witness's own streams (witness.keys, witness.audit-access, …). */
const exported = async (upTo = Infinity) => (await readEvents(base.file)).filter((e) => !e.stream.startsWith('witness.') && e.pos <= upTo).map((e) => e.pos);

describe('witness serve --otlp-export', () => {
  it('exports the ledger, then each ingested event after its commit, and after a restart neither skips nor repeats', async () => {
    const store = `sqlite:${base.file}`;
    const agent = JSON.parse((await runBin(['keys', 'create', '--role', 'agent', '--agent', 'otlp-bot', '--name', 'otlp', '--store', store, '--json'])).stdout) as { key: string };
    const ingest = async (url: string, text: string) => {
      const res = await fetch(`${url}/v1/events`, {
        method: 'POST',
        headers: { authorization: `Bearer ${agent.key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ events: [{ stream: 'otlp-session', kind: 'note', data: { text } }] }),
      });
      expect(res.status).toBe(201);
      return ((await res.json()) as { receipts: Array<{ pos: number }> }).receipts[0]!.pos;
    };

    const before = (await exported()).length;
    const first = await serve(store);
    let end = 0;
    try {
      // Everything already in the ledger but Witness's own records (the key creation's), then one ingested event.
      await waitFor(() => (receiver.spans.length >= before ? true : undefined), `the ledger's spans (${first.err()})`);
      const pos = await ingest(first.url, 'first');
      await waitFor(() => (positions().includes(pos) ? true : undefined), 'the ingested event');
      const span = receiver.spans.find((s) => s.attributes['witness.ledger.position'] === pos)!;
      expect(span.attributes).toMatchObject({ 'gen_ai.conversation.id': 'otlp-session', 'gen_ai.agent.id': 'otlp-bot', 'witness.event.kind': 'note' });
      end = pos;
      expect(first.err()).toMatch(
        /exporting events as OpenTelemetry spans to http:\/\/127\.0\.0\.1:\d+\/v1\/traces \(http\/json\) from leaf 0, masked as for the developer role and without Witness's own streams; position in .*\.otlp-export\.json\./,
      );
    } finally {
      expect(await first.stop()).toBe(0);
    }
    const saved = JSON.parse(fs.readFileSync(`${base.file}.otlp-export.json`, 'utf8')) as { next: number };
    expect(saved.next).toBeGreaterThan(end);

    const second = await serve(store);
    try {
      // The export starts just after the server says it listens.
      await waitFor(() => (/from leaf \d+,/.test(second.err()) ? true : undefined), `the export to start (${second.err()})`);
      expect(second.err()).toMatch(new RegExp(`from leaf ${saved.next},`));
      const pos = await ingest(second.url, 'second');
      await waitFor(() => (positions().includes(pos) ? true : undefined), 'the event ingested after the restart');
      const got = positions();
      expect(got).toEqual([...new Set(got)]);
      expect(got).toEqual(await exported(pos));
    } finally {
      expect(await second.stop()).toBe(0);
    }
  }, 60_000);

  it("takes the endpoint from the server config's otlp_export: section, its state file beside the config", async () => {
    const config = `${dir}/serve-otlp.yaml`;
    fs.writeFileSync(config, `otlp_export:\n  url: ${receiver.url}\n  protocol: http/json\n  headers:\n    authorization: Bearer cfg\n  state: cfg.otlp-state.json\n  interval: 100ms\n`);
    receiver.requests.length = 0;
    const s = await serve(`sqlite:${base.file}`, ['--config', config]);
    try {
      await waitFor(() => (/from leaf \d+,/.test(s.err()) ? true : undefined), `the export to start (${s.err()})`);
      expect(s.err()).toMatch(/\(http\/json\) from leaf 0, masked .*; position in .*\/cfg\.otlp-state\.json\./);
      await waitFor(() => (receiver.requests.length > 0 ? true : undefined), 'a request');
      expect(receiver.requests[0]!.headers.authorization).toBe('Bearer cfg');
    } finally {
      expect(await s.stop()).toBe(0);
    }
  }, 30_000);
});
