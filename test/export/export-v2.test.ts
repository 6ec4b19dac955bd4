import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { exportBundle, type BundleScope, type ExportOptions, type ExportResult } from '../../src/export/index.js';
import { extractZip } from '../../src/export/zip.js';
import { SqliteLedger } from '../../src/store/index.js';
import { oneSentence, runCli } from '../helpers/ledger.js';
import { tempDir } from '../helpers/tmp.js';
import { checkBundle } from './export-v2-check.js';
import { buildDemoLedger, type DemoLedger } from './export-v2-fixture.js';

const dir = tempDir('witness-export-v2-');
let demo: DemoLedger;

beforeAll(async () => {
  demo = await buildDemoLedger(dir);
});

const NONE: BundleScope = { since: null, until: null, agents: null, sessions: null, regimes: [] };
let n = 0;

/** Exports from a fresh copy of the demo ledger (each export appends its own event). */
async function exportOf(scope: Partial<BundleScope>, options: ExportOptions & { zip?: boolean } = {}): Promise<{ out: string; r: ExportResult; db: string }> {
  n++;
  const db = path.join(dir, `copy-${n}.db`);
  for (const suffix of ['', '.key', '.pub', '.seal']) if (fs.existsSync(demo.file + suffix)) fs.copyFileSync(demo.file + suffix, db + suffix);
  for (const f of fs.readdirSync(dir))
    if (f.startsWith(path.basename(demo.file) + '.')) fs.cpSync(path.join(dir, f), path.join(dir, f.replace(path.basename(demo.file), path.basename(db))), { recursive: true });
  const ledger = SqliteLedger.open({ path: db, create: false });
  try {
    const target = path.join(dir, `bundle-${n}${options.zip === true ? '.zip' : ''}`);
    const r = await exportBundle(ledger, { ...NONE, ...scope }, target, { actor: 'auditor@corp', ...options });
    if (options.zip !== true) return { out: target, r, db };
    const unpacked = path.join(dir, `unzipped-${n}`);
    fs.mkdirSync(unpacked);
    expect(await extractZip(target, unpacked, () => 1 << 30)).toBeUndefined();
    return { out: unpacked, r, db };
  } finally {
    await ledger.close();
  }
}

describe('witness export v2', () => {
  it('exports a session with its approvals and video: the span is contiguous, other sessions appear as headers only, and every file is in the manifest', async () => {
    const { out, r } = await exportOf({ sessions: [demo.sessions.s1] });
    const b = checkBundle(out);
    expect(b.manifest.span).toEqual({ from: demo.leaf['s1.start'], to: demo.leaf['video']! + 1 });
    expect(r).toMatchObject({ inScope: 9, artifacts: 4, warnings: [] });
    expect(r.signedBy).toHaveLength(1);
    const byLeaf = new Map(b.events.map((e) => [e.leaf, e]));
    // s2's events and s3's are inside the span, disclosed as headers only.
    for (const k of ['s2.start', 's2.denied', 's3.config', 's3.error']) expect(byLeaf.get(demo.leaf[k]!)).toMatchObject({ data: null, salt: null });
    for (const k of ['s1.llm', 'approval.request', 'approval.decision', 'video']) expect(byLeaf.get(demo.leaf[k]!)!.data).not.toBeNull();
    expect(JSON.stringify(b.events)).toContain('jane@example.com');
    expect(b.artifacts).toEqual([`artifacts/${demo.shots.a}.png`, `artifacts/${demo.shots.b}.png`, `artifacts/${demo.video.mp4}.mp4`, `artifacts/${demo.video.vtt}.vtt`].sort());
    expect(
      fs
        .readFileSync(path.join(out, 'artifacts', `${demo.video.mp4}.mp4`))
        .subarray(4, 8)
        .toString(),
    ).toBe('ftyp');
    expect(b.counts).toMatchObject({ approvals: 2, denials: 0, 'configuration-changes': 0, 'errors-and-gaps': 0 });
    expect(b.system).toMatchObject({
      agents: { 'support-bot': ['1.2.0'], 'witness-cli': [] },
      models: { requested: ['claude-sonnet'], answering: ['claude-sonnet-20261001'] },
      system_prompts: ['a'.repeat(64)],
      tool_definitions: ['b'.repeat(64)],
      policies: [{ version: 'c'.repeat(64), first_leaf: demo.leaf['s1.call'], last_leaf: demo.leaf['s1.call'], events: 1 }],
    });
    for (const f of ['README.txt', 'verify.mjs', 'checkpoint.txt', 'checkpoints.jsonl', 'keys.json', 'system.json', 'populations/index.json']) expect(b.manifest.files[f], f).toBeDefined();
    expect(fs.readFileSync(path.join(out, 'README.txt'), 'utf8')).toContain('node verify.mjs');
  });

  it('exports by agent into a zip: only that agent’s events carry payloads, and its denial is the denials population', async () => {
    const { out, r } = await exportOf({ agents: ['billing-bot'] }, { zip: true });
    const b = checkBundle(out);
    expect(b.manifest.span).toEqual({ from: demo.leaf['s2.start'], to: demo.leaf['s2.end']! + 1 });
    expect(r.inScope).toBe(4);
    expect(b.counts).toMatchObject({ denials: 1, approvals: 0 });
    expect(b.artifacts).toEqual([`artifacts/${demo.shots.c}.png`]);
    expect(b.events.filter((e) => e.data !== null && e.kind !== 'audit.access').every((e) => (e['agent'] as { id: string }).id === 'billing-bot')).toBe(true);
  });

  it('exports by time window: events at or after --since and before --until, the video recorded in the window included', async () => {
    const { out, r } = await exportOf({ since: '2026-11-01T11:00:00Z', until: '2026-11-01T12:00:00Z' });
    const b = checkBundle(out);
    expect(b.manifest.span).toEqual({ from: demo.leaf['s3.start'], to: demo.leaf['video']! + 1 });
    expect(r.inScope).toBe(5);
    expect(b.counts).toMatchObject({ 'configuration-changes': 1, 'errors-and-gaps': 1 });
    expect(b.artifacts).toEqual([`artifacts/${demo.video.mp4}.mp4`, `artifacts/${demo.video.vtt}.vtt`].sort());
  });

  it('withholds every payload and artifact when asked, and still writes the populations and a verifiable bundle', async () => {
    const { out, r } = await exportOf({ sessions: [demo.sessions.s1, demo.sessions.s2] }, { withholdData: true });
    const b = checkBundle(out);
    expect(b.manifest.mode).toBe('withheld');
    expect(r.artifacts).toBe(0);
    expect(b.artifacts).toEqual([]);
    expect(b.events.slice(0, -1).every((e) => e.data === null && e.salt === null)).toBe(true);
    expect(JSON.stringify(b.events)).not.toContain('jane@example.com');
    expect(b.counts).toMatchObject({ approvals: 2, denials: 1 });
    expect(b.system).toMatchObject({ models: null, system_prompts: null, agents: { 'billing-bot': ['0.9.1'], 'support-bot': ['1.2.0'] } });
  });

  it('records the export as a sealed audit.access event before writing, naming the person and binding the span', async () => {
    const { r, db } = await exportOf({ sessions: [demo.sessions.s3] });
    const ledger = SqliteLedger.open({ path: db, create: false });
    try {
      const ev = await ledger.getEvent(r.exportEvent.id);
      expect(ev).toMatchObject({ kind: 'audit.access', action: 'export', principal: { id: 'auditor@corp', kind: 'human' }, agent: { id: 'witness-cli' }, pos: r.exportEvent.leaf });
      expect(ev!.data).toMatchObject({ actor: 'auditor@corp', span: r.span, mode: 'full' });
      expect((await ledger.latestCheckpoint())!.size).toBe(r.exportEvent.leaf + 1);
      expect(r.checkpointSize).toBe(r.exportEvent.leaf + 1);
    } finally {
      await ledger.close();
    }
  });

  it('refuses an empty scope and no scope at all before writing anything', async () => {
    await expect(exportOf({ sessions: ['no-such-session'] })).rejects.toMatchObject({ code: 'not_found' });
    expect(fs.existsSync(path.join(dir, `bundle-${n}`))).toBe(false);
    await expect(exportOf({})).rejects.toMatchObject({ code: 'invalid_argument' });
  });
});

describe('witness export (CLI)', () => {
  const store = () => `sqlite:${demo.file}`;
  it('refuses a bad date, an unknown regime and a missing scope with exit 2 and one sentence', async () => {
    for (const args of [['--since', 'yesterday'], ['--session', 'x', '--regime', 'gdpr'], [], ['--since', '2026-11-02', '--until', '2026-11-01']]) {
      const r = await runCli(['export', ...args, '-o', path.join(dir, 'never'), '--store', store()]);
      expect(r.code, args.join(' ')).toBe(2);
      oneSentence(r.stderr);
      expect(fs.existsSync(path.join(dir, 'never'))).toBe(false);
    }
  });

  it('answers exit 1 for a scope with no events, and writes a bundle for agents and a time window', async () => {
    const none = await runCli(['export', '--session', 'nobody', '-o', path.join(dir, 'none'), '--store', store()]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/No events/);
    const out = path.join(dir, 'cli-bundle.zip');
    const ok = await runCli([
      'export',
      '--agent',
      'support-bot',
      '--since',
      '2026-11-01T10:00:00Z',
      '--until',
      '2026-11-01T11:00:00Z',
      '--regime',
      'soc2,sec',
      '-o',
      out,
      '--store',
      store(),
      '--as',
      'carol',
    ]);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/signed by {2}demo-v2\/witness\//);
    const unpacked = path.join(dir, 'cli-unzipped');
    fs.mkdirSync(unpacked);
    expect(await extractZip(out, unpacked, () => 1 << 30)).toBeUndefined();
    const b = checkBundle(unpacked);
    expect(b.manifest.scope).toEqual({ since: '2026-11-01T10:00:00.000Z', until: '2026-11-01T11:00:00.000Z', agents: ['support-bot'], sessions: null, regimes: ['soc2', 'sec'] });
  });
});
