import { execFileSync } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Capturer } from '../../src/capture/index.js';
import { openWitness } from '../../src/recorder/index.js';
import { readEvents, verifyFile } from '../helpers/ledger.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/**
 * The capture pool with the real Chromium: contexts opened ahead of time must still give every
 * capture a browser state nobody else touched, must not outlive `close()`, and must survive the
 * browser being killed under them.
 */

const dir = tempDir('witness-capture-pool-');

/**
 * A page that reports, as its text, every kind of state an earlier capture could have left
 * behind (cookies sent to the server and readable by script, local and session storage, an
 * IndexedDB database, a cached response), then leaves all of them behind itself.
 */
const STATEFUL = `<!doctype html><title>state</title><body><p id="seen">loading</p><script>
  const found = [];
  // (server-left is set by this very response; the server reports any cookie it was sent.)
  const left = document.cookie.split('; ').find((c) => c.startsWith('left='));
  if (left !== undefined) found.push('script-cookie=' + left);
  if (localStorage.length > 0) found.push('localStorage=' + localStorage.getItem('left'));
  if (sessionStorage.length > 0) found.push('sessionStorage=' + sessionStorage.getItem('left'));
  const mark = 'mark-' + Math.random().toString(36).slice(2);
  document.cookie = 'left=' + mark + '; path=/; max-age=3600';
  localStorage.setItem('left', mark);
  sessionStorage.setItem('left', mark);
  document.getElementById('seen').textContent = 'pending';
  const open = indexedDB.open('left', 1);
  open.onupgradeneeded = () => open.result.createObjectStore('s');
  open.onsuccess = () => {
    const db = open.result;
    const tx = db.transaction('s', 'readwrite');
    const get = tx.objectStore('s').get('left');
    get.onsuccess = () => {
      if (get.result !== undefined) found.push('indexedDB=' + get.result);
      tx.objectStore('s').put(mark, 'left');
    };
    tx.oncomplete = () => {
      fetch('/cached').then((r) => r.text()).then(() => {
        document.getElementById('seen').textContent = 'left ' + mark + '; found: ' + (found.length === 0 ? 'nothing' : found.join(', '));
        document.body.setAttribute('data-done', '1');
      });
    };
  };
</script></body>`;

let base = '';
let cachedServed = 0;
const server = http.createServer((req, res) => {
  if (req.url === '/cached') {
    // Cacheable for an hour: a context that reused another's HTTP cache would not ask again.
    cachedServed += 1;
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=3600' });
    return void res.end('cached for an hour');
  }
  if (req.url === '/slow') return void setTimeout(() => res.end('<title>slow</title><p>slow page</p>'), 1500);
  const sent = req.headers.cookie;
  res.writeHead(200, {
    'content-type': 'text/html; charset=utf-8',
    'set-cookie': `server-left=${Date.now()}; Path=/; Max-Age=3600`,
    ...(sent === undefined ? {} : { 'x-sent-cookie': sent }),
  });
  res.end(sent === undefined ? STATEFUL : STATEFUL.replace('const found = [];', `const found = [${JSON.stringify(`server-saw-cookie=${sent}`)}];`));
});

beforeAll(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}, 60_000);
afterAll(() => {
  server.close();
});

/** Our own descendants whose command line is Chromium's (the browser, its zygotes, renderers, utilities). */
function chromiumDescendants(): Array<{ pid: number; args: string }> {
  const rows = execFileSync('ps', ['-eo', 'pid=,ppid=,args='], { encoding: 'utf8' })
    .split('\n')
    .map((line) => /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ pid: Number(m[1]), ppid: Number(m[2]), args: m[3]! }));
  const mine = new Set([process.pid]);
  for (let grew = true; grew;) {
    grew = false;
    for (const r of rows) {
      if (!mine.has(r.pid) && mine.has(r.ppid)) {
        mine.add(r.pid);
        grew = true;
      }
    }
  }
  return rows.filter((r) => r.pid !== process.pid && mine.has(r.pid) && /chromium/.test(r.args)).map(({ pid, args }) => ({ pid, args }));
}

/** The browser process itself: the one Playwright talks to over its pipe. */
function browserPids(): number[] {
  return chromiumDescendants()
    .filter((p) => p.args.includes('--remote-debugging-pipe') && !p.args.includes('--type='))
    .map((p) => p.pid);
}

async function until(what: string, ok: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('the capture pool', () => {
  it('gives every capture, the before and after of one call included, a browser state no earlier capture touched: no cookie, storage, IndexedDB or HTTP cache [R-CAPTURE-ISOLATED]', async () => {
    const capturer = new Capturer({ pool: 2 });
    const store = tempDb(dir);
    const w = await openWitness({ store: `sqlite:${store}`, capturer, strict: true });
    const servedBefore = cachedServed;
    try {
      await capturer.browser.warm();
      const s = await w.session({ agent: { id: 'iso-bot' } });
      // Three calls with a before and an after shot: six captures, more than the pool holds, some
      // from contexts opened ahead of time and some while the pool refills.
      for (let i = 0; i < 3; i++) {
        await s.tool('page.view', { i }, () => i, { capture: { url: `${base}/state`, waitFor: 'body[data-done]' } });
      }
      await s.end();
    } finally {
      await w.close();
      await capturer.close();
    }
    const shots = (await readEvents(store)).filter((e) => e.kind === 'capture');
    expect(shots.map((e) => e.data?.['role'])).toEqual(['before', 'after', 'before', 'after', 'before', 'after']);
    const texts = shots.map((e) => String(e.data?.['text']));
    // Positive control: each page did leave state behind, a different mark each time.
    const marks = texts.map((t) => /left (mark-[a-z0-9]+)/.exec(t)?.[1]);
    expect(new Set(marks).size).toBe(6);
    for (const t of texts) expect(t).toMatch(/; found: nothing\s*$/);
    // Every capture fetched the cacheable resource itself: no context saw another's HTTP cache.
    expect(cachedServed - servedBefore).toBe(6);
    expect((await verifyFile(store)).ok).toBe(true);
  }, 120_000);

  it('leaves no Chromium process behind after close, even when closed while it refills, and starts none afterwards [R-CAPTURE-ISOLATED]', async () => {
    const capturer = new Capturer({ pool: 2 });
    await capturer.browser.warm();
    // Positive control: the browser and its helpers are running, as our descendants.
    expect(browserPids()).toHaveLength(1);
    expect(chromiumDescendants().length).toBeGreaterThan(1);
    // Two captures use up the pool; close while the pool is opening replacements.
    await capturer.shoot({ url: `${base}/state`, after: false }, {}, 'before');
    await capturer.shoot({ url: `${base}/state`, after: false }, {}, 'before');
    await new Promise((r) => setTimeout(r, 60));
    await capturer.close();
    await until('Chromium to exit', () => chromiumDescendants().length === 0);
    await new Promise((r) => setTimeout(r, 1000));
    expect(chromiumDescendants()).toEqual([]);
  }, 120_000);

  it('captures again on a relaunched Chromium after the browser is killed, between captures or during one, and loses nothing already recorded [R-CAPTURE-SAFE]', async () => {
    const capturer = new Capturer({ pool: 2 });
    const store = tempDb(dir);
    const w = await openWitness({ store: `sqlite:${store}`, capturer, strict: true });
    try {
      await capturer.browser.warm();
      const s = await w.session({ agent: { id: 'crash-bot' } });
      expect(await s.tool('page.view', { n: 1 }, () => 'one', { capture: { url: `${base}/state`, after: false } })).toBe('one');

      // Killed while idle, with the pool full of its contexts: the next capture relaunches.
      const [first] = browserPids();
      expect(first).toBeDefined();
      process.kill(first!, 'SIGKILL');
      await until('the killed browser to be gone', () => !browserPids().includes(first!));
      expect(await s.tool('page.view', { n: 2 }, () => 'two', { capture: { url: `${base}/state`, after: false } })).toBe('two');

      // Killed while a capture waits for a slow page: that capture is taken again on a new browser.
      const [second] = browserPids();
      expect(second).toBeDefined();
      expect(second).not.toBe(first);
      const call = s.tool('page.view', { n: 3 }, () => 'three', { capture: { url: `${base}/slow`, after: false } });
      await new Promise((r) => setTimeout(r, 500));
      process.kill(second!, 'SIGKILL');
      expect(await call).toBe('three');
      await s.end();
    } finally {
      await w.close();
      await capturer.close();
    }
    const evs = await readEvents(store);
    expect(evs.map((e) => (e.kind === 'capture' ? `capture:${String(e.data?.['title'])}` : e.kind))).toEqual([
      'session.start',
      'tool.call',
      'capture:state',
      'tool.result',
      'tool.call',
      'capture:state',
      'tool.result',
      'tool.call',
      'capture:slow',
      'tool.result',
      'session.end',
    ]);
    expect((await verifyFile(store)).ok).toBe(true);
    expect(chromiumDescendants()).toEqual([]);
  }, 120_000);
});
