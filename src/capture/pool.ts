import type { Browser, BrowserContext, CDPSession, Page } from 'playwright-core';
import type { Viewport } from './shot.js';

/**
 * One isolated place to take one screenshot: a browser context of its own (cookies, storage,
 * cache, service workers, renderer process), its single page, and a CDP session on that page for
 * the two calls Playwright makes slowly (evaluate, screenshot). Used once, then closed.
 */
export interface Lease {
  readonly browser: Browser;
  readonly context: BrowserContext;
  readonly page: Page;
  readonly cdp: CDPSession;
  viewport: Viewport;
  crashed: boolean;
}

/** Context options every capture shares: what the page sees must not depend on the host. */
export function contextOptions(viewport: Viewport) {
  return { viewport, deviceScaleFactor: 1, reducedMotion: 'reduce', colorScheme: 'light', locale: 'en-US', timezoneId: 'UTC' } as const;
}

const WARM_PAGE = `<!doctype html><title>-</title><body style="margin:40px;font:20px sans-serif"><h1>Warm</h1><p>Text <b>bold</b> <i>italic</i> <code>mono</code> <span style="font-family:serif">serif</span></p><table><tr><th>a</th><td>1</td></tr></table><input value="x"></body>`;

async function openLease(browser: Browser, viewport: Viewport): Promise<Lease> {
  const context = await browser.newContext(contextOptions(viewport));
  try {
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    // A renderer's first layout, paint and screenshot are much slower than its next ones; doing them
    // here, on a static page of our own, took a pooled capture from 260 to 210 ms (median of 12, two
    // loaded cores), mostly off the page load. The page stays on about:blank, so the capture's
    // navigation keeps this warmed renderer.
    await page.setContent(WARM_PAGE, { waitUntil: 'load' });
    await cdp.send('Page.captureScreenshot', { format: 'png' });
    const lease: Lease = { browser, context, page, cdp, viewport, crashed: false };
    page.on('crash', () => {
      lease.crashed = true;
    });
    return lease;
  } catch (e) {
    await context.close().catch(() => undefined);
    throw e;
  }
}

/**
 * How long the pool waits after a capture before it closes used contexts and opens new ones. The
 * before and the after shot of one call come close together (the tool runs in between), and
 * measured on two loaded cores, opening a renderer during the after shot made the pair take four
 * times as long as one shot; background work therefore waits for a pause, or starts at once when
 * no lease is left ready.
 */
const QUIET_MS = 50;
/** Used contexts kept open at most while captures keep coming, before they are closed regardless. */
const MAX_UNCLOSED = 4;

/**
 * Pre-warmed leases, so a capture does not pay for a context and a renderer process (measured:
 * newContext + newPage cost more than the page load itself). Isolation is kept by never reusing a
 * lease: each capture takes one, and its context is closed afterwards. A capture that finds the
 * pool empty opens its own lease.
 */
export class LeasePool {
  private ready: Lease[] = [];
  private used: Lease[] = [];
  private active = 0;
  private closed = false;
  private viewport: Viewport = { width: 1280, height: 720 };
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  /** The lease housekeeping is opening, settled once it is in `ready` (or failed). */
  private opening: Promise<void> | undefined;
  private openFailed = false;

  constructor(
    private readonly size: number,
    private readonly browser: () => Promise<Browser>,
  ) {}

  /** A fresh lease for one capture, from the pool when one is ready and alive, else opened now. */
  async take(viewport: Viewport): Promise<Lease> {
    this.viewport = viewport;
    this.active++;
    this.openFailed = false;
    try {
      for (;;) {
        const lease = this.ready.shift();
        if (lease === undefined) {
          // A lease the pool is opening now is nearer than one opened from scratch, and two renderers
          // starting at once on a small machine both start slower.
          if (this.opening === undefined) break;
          await this.opening.catch(() => undefined);
          continue;
        }
        if (!usable(lease)) {
          this.used.push(lease);
          continue;
        }
        if (lease.viewport.width !== viewport.width || lease.viewport.height !== viewport.height) {
          await lease.page.setViewportSize(viewport);
          lease.viewport = viewport;
        }
        return lease;
      }
      return await openLease(await this.browser(), viewport);
    } catch (e) {
      this.active--;
      this.openFailed = true;
      this.schedule();
      throw e;
    }
  }

  /** Ends a capture: the lease is never used again; its context is closed with the next background work. */
  release(lease: Lease): void {
    this.active--;
    this.used.push(lease);
    this.schedule();
  }

  /** Fills the pool now and resolves when it is full. */
  async fill(): Promise<void> {
    while (!this.closed && this.ready.length < this.size) {
      const lease = await openLease(await this.browser(), this.viewport);
      if (this.closed) await lease.context.close().catch(() => undefined);
      else if (!usable(lease)) this.used.push(lease);
      else this.ready.push(lease);
    }
    this.schedule();
  }

  /** Drops every ready lease (the browser they belong to has gone). */
  clear(): void {
    this.used.push(...this.ready);
    this.ready = [];
  }

  /** Resolves once no background work is waiting or under way. */
  async idle(): Promise<void> {
    for (;;) {
      if (this.running !== undefined) await this.running;
      else if (this.timer !== undefined) await new Promise((r) => setTimeout(r, QUIET_MS / 5));
      else return;
    }
  }

  /** Closes every context the pool holds; no background work starts after this. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.running !== undefined) await this.running;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.clear();
    await this.closeUsed();
  }

  private schedule(): void {
    if (this.closed || this.timer !== undefined || this.running !== undefined) return;
    // After a failed open (Chromium gone and not starting) the next capture tries again, not a loop.
    if (this.used.length === 0 && (this.ready.length >= this.size || this.openFailed)) return;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.running = this.housekeeping().finally(() => {
          this.running = undefined;
          this.schedule();
        });
      },
      // With no lease left ready the next capture would open its own: start at once, unless one is running.
      this.ready.length === 0 && this.active === 0 ? 0 : QUIET_MS,
    );
  }

  /** Closes used contexts and opens new ones, one at a time, giving way as soon as a capture starts. */
  private async housekeeping(): Promise<void> {
    if (this.active > 0 && this.used.length < MAX_UNCLOSED) return;
    await this.closeUsed();
    while (!this.closed && this.active === 0 && this.ready.length < this.size) {
      const opening = (async () => {
        const lease = await openLease(await this.browser(), this.viewport);
        if (this.closed || !usable(lease)) this.used.push(lease);
        else this.ready.push(lease);
      })();
      this.opening = opening;
      try {
        await opening;
      } catch {
        this.openFailed = true;
        return;
      } finally {
        this.opening = undefined;
      }
    }
    await this.closeUsed();
  }

  private async closeUsed(): Promise<void> {
    const used = this.used;
    this.used = [];
    await Promise.all(used.map((lease) => (lease.browser.isConnected() ? lease.context.close().catch(() => undefined) : undefined)));
  }
}

function usable(lease: Lease): boolean {
  return lease.browser.isConnected() && !lease.crashed && !lease.page.isClosed();
}
