import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Capturer } from '../../src/capture/index.js';
import { sha256Hex } from '../../src/core/index.js';
import { openWitness, type CaptureShot } from '../../src/recorder/index.js';
import { artifactFile, readEvents } from '../helpers/ledger.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/**
 * `Session.capture` is the agent's own way to put a screenshot on the record, and like every other
 * recording call it must never reject into the agent's code: a screenshot that cannot be stored is
 * recorded as an `error` event (source `capture`) and the call resolves to undefined. With a real
 * Chromium screenshot of a real page, and a real failure of the artifact store on disk.
 */

const dir = tempDir('witness-capture-safe-');
const server = http.createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  res.end('<!doctype html><title>Order A-1042</title><h1>Refund approved</h1>');
});
let base = '';
let capturer: Capturer;
let shot: CaptureShot;

beforeAll(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  capturer = new Capturer();
  shot = (await capturer.shoot({ url: `${base}/orders/{order}`, before: true, after: true }, { order: 'A-1042' }, 'before'))!;
}, 60_000);
afterAll(async () => {
  await capturer?.close();
  server.close();
});

describe('Session.capture', () => {
  it('resolves to undefined, never rejects, when a real screenshot cannot be stored, and records why [R-NO-THROW] [R-CAPTURE-SAFE]', async () => {
    expect(shot.png.byteLength).toBeGreaterThan(100);
    const store = tempDb(dir);
    const w = await openWitness({ store: `sqlite:${store}` });
    const s = await w.session({ agent: { id: 'support-bot' } });
    // The artifact store cannot write this PNG: where its folder must go, there is a file.
    const folder = path.dirname(artifactFile(store, sha256Hex(shot.png)));
    fs.mkdirSync(path.dirname(folder), { recursive: true });
    fs.writeFileSync(folder, 'not a folder');

    let rejected: unknown;
    const receipt = await s.capture(shot, { resource: 'orders', action: 'refund' }).catch((e: unknown) => {
      rejected = e;
      return 'rejected';
    });
    expect(rejected).toBeUndefined();
    expect(receipt).toBeUndefined();
    // The agent goes on recording in the same session.
    expect(await s.note('carried on')).toBeDefined();
    await s.end();
    await w.close();

    const evs = await readEvents(store);
    expect(evs.map((e) => e.kind)).toEqual(['session.start', 'error', 'note', 'session.end']);
    expect(evs[1]).toMatchObject({ outcome: 'error', resource: 'orders', action: 'refund', data: { source: 'capture', code: 'capture_failed', role: 'before' } });
    expect(String(evs[1]!.data?.['message'])).toMatch(/^The before screenshot of http:\/\/127\.0\.0\.1:\d+\/orders\/A-1042 could not be stored/);
  });

  it('resolves to undefined, never rejects, for a shot that is not a screenshot (no PNG bytes) [R-NO-THROW]', async () => {
    const store = tempDb(dir);
    const w = await openWitness({ store: `sqlite:${store}` });
    const s = await w.session({ agent: { id: 'support-bot' } });
    const broken = { ...shot, png: undefined } as unknown as CaptureShot;
    await expect(s.capture(broken)).resolves.toBeUndefined();
    await s.end();
    await w.close();
    const evs = await readEvents(store);
    expect(evs.map((e) => e.kind)).toEqual(['session.start', 'error', 'session.end']);
    expect(evs[1]!.data).toMatchObject({ source: 'capture', code: 'capture_failed', role: 'before' });
  });
});
