import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BundleManifestV2 } from '../../src/export/index.js';
import { openLedger } from '../../src/store/index.js';
import { runCli } from '../helpers/ledger.js';
import { tempDir } from '../helpers/tmp.js';
import { buildReportLedger, type ReportLedger } from './fixture.js';

/** `witness export` writes report.html into the bundle through the export hook: the report of exactly that bundle. */

const dir = tempDir('witness-report-bundle-');
let fx: ReportLedger;

let video: string;

beforeAll(async () => {
  fx = await buildReportLedger(dir);
  // The session's narrated video, rendered after it ended: in witness.evidence, about the session.
  const ledger = await openLedger(fx.store, { create: false });
  try {
    const mp4 = await ledger.putArtifact(Buffer.from('not really an mp4, but bytes with a digest'), 'video/mp4', 'video');
    video = mp4.sha256;
    await ledger.append([
      {
        stream: 'witness.evidence',
        agent: { id: 'witness-cli' },
        ts: '2026-11-23T10:05:00.000Z',
        kind: 'capture',
        resource: fx.refund,
        artifacts: [mp4],
        data: { role: 'video', session: fx.refund, duration_s: 12 },
      },
    ]);
    await ledger.seal();
  } finally {
    await ledger.close();
  }
});

function read(bundle: string): { manifest: BundleManifestV2; html: string } {
  const manifest = BundleManifestV2.parse(JSON.parse(fs.readFileSync(path.join(bundle, 'manifest.json'), 'utf8')));
  return { manifest, html: fs.readFileSync(path.join(bundle, 'report.html'), 'utf8') };
}

describe('the report inside an evidence bundle', () => {
  it("is listed in the manifest, states the bundle's span, mode and export event, and links the bundle's own screenshot files", async () => {
    const out = path.join(dir, 'full');
    const r = await runCli(['export', '--since', '2026-11-23', '--until', '2026-11-24', '--regime', 'soc2,hipaa', '--store', fx.store, '-o', out, '--as', 'exporter']);
    expect(r.code, r.stderr).toBe(0);
    const { manifest, html } = read(out);
    expect(manifest.files['report.html']).toMatch(/^[0-9a-f]{64}$/);
    expect(html).toContain(`leaves ${manifest.span.from} to ${manifest.span.to - 1}`);
    expect(html).toContain(`leaf ${manifest.export_event.leaf}, id ${manifest.export_event.id}`);
    expect(html).toContain(`size ${manifest.checkpoint.size} (covers leaves 0 to ${manifest.checkpoint.size - 1})`);
    expect(html).toContain('<b>CC6.1</b>');
    expect(html).toContain('<b>164.312(b)</b>');
    expect(html).not.toContain('<b>Art. 12(1)</b>');
    for (const sha of [fx.shots.before, fx.shots.after]) {
      expect(html).toContain(`<img src="artifacts/${sha}.png"`);
      expect(fs.existsSync(path.join(out, 'artifacts', `${sha}.png`))).toBe(true);
    }
    expect(html).not.toContain('data:image');
    // The report's populations are the bundle's: same counts, same digests.
    const index = JSON.parse(fs.readFileSync(path.join(out, 'populations', 'index.json'), 'utf8')) as { populations: Array<{ name: string; count: number; digest: string }> };
    expect(index.populations.length).toBe(7);
    for (const p of index.populations) expect(html).toContain(`<tr><td>${p.name}</td><td class="num">${p.count}</td><td class="mono" title="${p.digest}">`);
    expect(html).toContain(`session ${fx.refund} · <span class="mono">artifacts/${video}.mp4</span>`);
    expect(fs.existsSync(path.join(out, 'artifacts', `${video}.mp4`))).toBe(true);
    const verified = await runCli(['verify', out]);
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);
  });

  it('of a withheld export shows no payload and no screenshot', async () => {
    const out = path.join(dir, 'withheld');
    const r = await runCli(['export', '--session', fx.refund, '--withhold-data', '--store', fx.store, '-o', out, '--as', 'exporter']);
    expect(r.code, r.stderr).toBe(0);
    const { manifest, html } = read(out);
    expect(manifest.mode).toBe('withheld');
    expect(html).toContain('withheld: headers and salted digests only');
    expect(html).not.toContain('A-1042');
    expect(html).not.toContain('pwned');
    expect(html).not.toMatch(/<img /);
    expect(html).toContain(`sha256 ${video}</span> (not in this bundle)`);
  });
});
