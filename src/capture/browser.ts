import type { Browser, Page } from 'playwright-core';
import { WitnessError } from '../core/index.js';
import { firstLine } from './errors.js';
import { LeasePool, type Lease } from './pool.js';
import { requireProgram } from './programs.js';
import { shootIn, type ShootOptions, type Shot, type Viewport } from './shot.js';

export type { ShootOptions, Shot, Viewport };

/**
 * One headless Chromium (Debian's, through playwright-core: no browser is ever downloaded), kept
 * warm and reused; every capture gets a fresh context of its own, opened ahead of time by a small
 * pool (pool.ts) and closed after the one screenshot, so no cookie, storage or script state leaks
 * from one screenshot into the next.
 */

/**
 * Flags for a closed network and a root user: without the background-networking ones Chromium
 * keeps trying to reach Google's services, and as root it refuses to start sandboxed.
 */
const FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--hide-scrollbars',
  '--font-render-hinting=none',
];

export class CaptureBrowser {
  private browser: Promise<Browser> | undefined;
  private readonly executable: string;
  private readonly poolSize: number;
  private pool: LeasePool;

  /**
   * `pool`: how many isolated contexts to keep open and ready (default 2: the before and the
   * after shot of one call); 0 opens each capture's context when it is needed.
   */
  constructor(options: { executablePath?: string; env?: NodeJS.ProcessEnv; pool?: number } = {}) {
    const env = options.env ?? process.env;
    this.executable = requireProgram('chromium', options.executablePath === undefined ? env : { ...env, WITNESS_CHROMIUM: options.executablePath });
    this.poolSize = Math.max(0, Math.floor(options.pool ?? 2));
    this.pool = this.newPool();
  }

  private newPool(): LeasePool {
    return new LeasePool(this.poolSize, () => this.started());
  }

  private launch(): Promise<Browser> {
    if (this.browser === undefined) {
      // playwright-core is loaded on first use: the SDK facade must stay light for agents that never capture.
      const launching = import('playwright-core').then(({ chromium }) =>
        chromium.launch({ executablePath: this.executable, args: FLAGS, headless: true, timeout: 30_000 }).then((b) => {
          // A crashed browser is launched again on the next capture; its pooled contexts died with it.
          b.on('disconnected', () => {
            if (this.browser === launching) this.browser = undefined;
            this.pool.clear();
          });
          return b;
        }),
      );
      launching.catch(() => {
        if (this.browser === launching) this.browser = undefined;
      });
      this.browser = launching;
    }
    return this.browser;
  }

  private async started(): Promise<Browser> {
    try {
      return await this.launch();
    } catch (e) {
      throw new WitnessError('capture_failed', `Chromium (${this.executable}) could not be started: ${firstLine(e)}.`, { cause: e });
    }
  }

  /** The underlying Playwright browser (for benchmarks and callers that need more than screenshots). */
  async playwright(): Promise<Browser> {
    return this.launch();
  }

  /** Starts the browser and fills the pool now, so the first captures pay for neither. */
  async warm(): Promise<void> {
    await this.started();
    await this.pool.fill();
  }

  /** Resolves once the pool has finished opening and closing contexts in the background. */
  async idle(): Promise<void> {
    await this.pool.idle();
  }

  /**
   * One screenshot in a context of its own, taken from the pool (never reused: closed afterwards),
   * so no cookie, storage, cache or script state of one capture reaches another. A capture whose
   * browser or page died under it (Chromium killed, a renderer crash) is taken once more on a
   * relaunched browser: the page is read with a GET, so loading it again changes nothing.
   */
  async shoot(url: string, o: ShootOptions): Promise<Shot> {
    const started = performance.now();
    for (let attempt = 1; ; attempt++) {
      let lease: Lease | undefined;
      try {
        lease = await this.pool.take(o.viewport);
        return { ...(await shootIn(lease, url, o)), ms: performance.now() - started };
      } catch (e) {
        const died = lease === undefined ? !(e instanceof WitnessError) : await gone(lease);
        if (!died) throw e;
        if (attempt < 2) continue;
        throw new WitnessError('capture_failed', `The page ${url} could not be captured: Chromium stopped during the capture (${firstLine(e)}).`, { cause: e, details: { url } });
      } finally {
        if (lease !== undefined) this.pool.release(lease);
      }
    }
  }

  /**
   * Renders HTML documents (the video's title cards) to PNGs in one context with scripts off and
   * no network: the cards are built from recorded text, which must never run or fetch anything.
   */
  async renderHtml(documents: readonly string[], viewport: Viewport): Promise<Buffer[]> {
    const browser = await this.started();
    const context = await browser.newContext({ viewport, deviceScaleFactor: 1, javaScriptEnabled: false, offline: true, colorScheme: 'light', locale: 'en-US', timezoneId: 'UTC' });
    try {
      await context.route('**/*', (route) => (route.request().url().startsWith('data:') ? route.continue() : route.abort()));
      const page = await context.newPage();
      const out: Buffer[] = [];
      for (const html of documents) {
        await page.setContent(html, { waitUntil: 'load' });
        out.push(await cardShot(page));
      }
      return out;
    } catch (e) {
      if (e instanceof WitnessError) throw e;
      throw new WitnessError('capture_failed', `Chromium could not render a title card: ${firstLine(e)}; run the command again, and if it keeps failing check that the machine has free memory.`, {
        cause: e,
      });
    } finally {
      await context.close().catch(() => undefined);
    }
  }

  /** Closes the pooled contexts and the browser; nothing of Chromium keeps running. A later capture starts afresh. */
  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = this.newPool();
    await pool.close();
    const b = this.browser;
    this.browser = undefined;
    if (b !== undefined) await (await b.catch(() => undefined))?.close().catch(() => undefined);
  }
}

/**
 * Whether a failed capture's page died under it (browser killed, renderer crashed) rather than
 * failed on its own (a timeout, a refused connection). A renderer killed mid-navigation fails the
 * navigation with net::ERR_ABORTED before Playwright reports the crash, so a page that still
 * looks alive is asked once whether it is there.
 */
async function gone(lease: Lease): Promise<boolean> {
  if (!lease.browser.isConnected() || lease.crashed || lease.page.isClosed()) return true;
  // A page busy in a script of its own does not answer either; only a refusal (the target crashed or
  // went away) counts as death, and a silent page is left to the timeout that already failed it.
  const probe = lease.cdp.send('Runtime.evaluate', { expression: '1', returnByValue: true });
  const refused = await Promise.race([
    probe.then(
      () => false,
      () => true,
    ),
    new Promise<boolean>((r) => setTimeout(() => r(false), 2000).unref()),
  ]);
  return refused || !lease.browser.isConnected() || lease.crashed;
}

/**
 * Chromium on a loaded machine sometimes answers Page.captureScreenshot with "Unable to capture
 * screenshot" (no frame was produced in time; seen with two cores busy). The card is static HTML
 * with scripts off, so taking it again is safe and gives the same pixels.
 */
async function cardShot(page: Page, attempts = 3): Promise<Buffer> {
  for (let i = 1; ; i++) {
    try {
      return await page.screenshot({ type: 'png', animations: 'disabled', caret: 'hide' });
    } catch (e) {
      if (i >= attempts || !/Unable to capture screenshot/.test(e instanceof Error ? e.message : String(e))) throw e;
      await new Promise((r) => setTimeout(r, 100 * i));
    }
  }
}
