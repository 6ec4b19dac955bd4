import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/ledger.js';
import { tempDir } from '../helpers/tmp.js';
import { buildV2Bundle, sampleLedger } from './verify-v2-fixture.js';

/** `witness verify` on a format-2 bundle: what the verdict says, in words and in JSON, and --require-payloads. */

const dir = tempDir('witness-verify-v2-cli-');

describe('witness verify on a format-2 bundle', () => {
  const b = buildV2Bundle(path.join(dir, 'bundle'), sampleLedger(), { scope: { sessions: ['s-refund'] } });

  it('says what the pass rests on: the pinned key, span, scope, mode, populations and the events without payload grouped by reason', async () => {
    const r = await runCli(['verify', b.dir, '--trusted-key', b.vkey]);
    expect(r.code).toBe(0);
    const text = r.stdout;
    expect(text).toMatch(/^✔ Bundle .* is intact/);
    expect(text).toContain(
      `span:  leaves ${b.manifest.span.from}–${b.manifest.span.to - 1} (${b.manifest.span.to - b.manifest.span.from} events), ${b.manifest.in_scope} in scope; mode full; export event at leaf ${b.manifest.export_event.leaf}`,
    );
    expect(text).toContain('scope: sessions s-refund');
    expect(text).toMatch(/populations: approvals 1, denials 1, .*errors-and-gaps 1/);
    expect(text).toMatch(/no payload, out of scope \(header only\): 3 event\(s\), leaves 3, 5, 9/);
    expect(text).toMatch(/trust: .*pinned by the auditor/);
  });

  it('--json carries the verdict with every run of leaves without payload', async () => {
    const r = await runCli(['verify', b.dir, '--trusted-key', b.vkey, '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as { ok: boolean; bundle: { withoutPayload: unknown[]; mode: string; populations: Array<{ name: string; count: number }> } };
    expect(j.ok).toBe(true);
    expect(j.bundle.mode).toBe('full');
    expect(j.bundle.withoutPayload).toEqual([
      { from: 3, to: 4, reason: 'out_of_scope' },
      { from: 5, to: 6, reason: 'out_of_scope' },
      { from: 9, to: 10, reason: 'out_of_scope' },
    ]);
  });

  it('--require-payloads exits 1 when any event carries no payload, and is refused for a ledger (exit 2)', async () => {
    const r = await runCli(['verify', b.dir, '--trusted-key', b.vkey, '--require-payloads']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/FAILED verification at leaf 3: payload_missing: leaf 3 carries no payload \(out of scope \(header only\)\), and --require-payloads asks for every one\./);
    const ledger = await runCli(['verify', '--store', `sqlite:${path.join(dir, 'none.db')}`, '--require-payloads']);
    expect(ledger.code).toBe(2);
    expect(ledger.stderr).toMatch(/--require-payloads checks an evidence bundle, not a ledger/);
  });
});
