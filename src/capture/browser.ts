import type { Browser, Page } from 'playwright-core';
import { WitnessError } from '../core/index.js';
import { requireProgram } from './programs.js';

/**
 * One headless Chromium (Debian's, through playwright-core: no browser is ever downloaded), kept
 * warm and reused; every capture gets a fresh context, so no cookie, storage or script state leaks
 * from one screenshot into the next.
 */

/**
 * Flags for a closed network and a root user: without the background-networking ones Chromium
 * keeps trying to reach Google's services, and as root it refuses to start sandboxed.
 */
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--hide-scrollbars', '--font-render-hinting=none'];

export interface Viewport {
  width: number;
  height: number;
}

export interface ShootOptions {
  viewport: Viewport;
  /** CSS selectors painted over with solid black before the pixels leave the browser. */
  mask: readonly string[];
  /** A selector to wait for before the screenshot. */
  waitFor?: string | undefined;
  timeoutMs: number;
  fullPage?: boolean | undefined;
}

export interface Shot {
  png: Buffer;
  /** The URL after redirects. */
  url: string;
  status: number | undefined;
  title: string;
  /** The page's visible text at capture time, with masked elements' text replaced. */
  text: string;
  viewport: Viewport;
  masked: number;
  ts: string;
  ms: number;
}

const MASK_TEXT = '[masked]';
/** Runs in the page (a string: this package is compiled without the DOM types). */
const READ_TEXT = `({ selectors, replacement, max }) => {
  for (const s of selectors) for (const el of document.querySelectorAll(s)) {
    if (el instanceof HTMLInputElement || el instanceof HTMLTextAreaElement) el.value = replacement;
    el.textContent = replacement;
  }
  return { title: document.title, text: (document.body ? document.body.innerText : '').slice(0, max) };
}`;
const MAX_TEXT = 64 * 1024;

export class CaptureBrowser {
  private browser: Promise<Browser> | undefined;
  private readonly executable: string;

  constructor(options: { executablePath?: string; env?: NodeJS.ProcessEnv } = {}) {
    const env = options.env ?? process.env;
    this.executable = requireProgram('chromium', options.executablePath === undefined ? env : { ...env, WITNESS_CHROMIUM: options.executablePath });
  }

  private launch(): Promise<Browser> {
    if (this.browser === undefined) {
      // playwright-core is loaded on first use: the SDK facade must stay light for agents that never capture.
      const launching = import('playwright-core').then(({ chromium }) => chromium.launch({ executablePath: this.executable, args: FLAGS, headless: true, timeout: 30_000 }).then((b) => {
        // A crashed browser is launched again on the next capture.
        b.on('disconnected', () => {
          if (this.browser === launching) this.browser = undefined;
        });
        return b;
      }));
      launching.catch(() => {
        if (this.browser === launching) this.browser = undefined;
      });
      this.browser = launching;
    }
    return this.browser;
  }

  /** The underlying Playwright browser (for benchmarks and callers that need more than screenshots). */
  async playwright(): Promise<Browser> {
    return this.launch();
  }

  /** Starts the browser now, so the first capture does not pay for the launch. */
  async warm(): Promise<void> {
    await this.launch().catch((e: unknown) => {
      throw new WitnessError('capture_failed', `Chromium (${this.executable}) could not be started: ${firstLine(e)}.`, { cause: e });
    });
  }

  async shoot(url: string, o: ShootOptions): Promise<Shot> {
    const started = performance.now();
    let browser: Browser;
    try {
      browser = await this.launch();
    } catch (e) {
      throw new WitnessError('capture_failed', `Chromium (${this.executable}) could not be started: ${firstLine(e)}.`, { cause: e });
    }
    const context = await browser.newContext({ viewport: o.viewport, deviceScaleFactor: 1, reducedMotion: 'reduce', colorScheme: 'light', locale: 'en-US', timezoneId: 'UTC' });
    try {
      const page = await context.newPage();
      page.setDefaultTimeout(o.timeoutMs);
      let status: number | undefined;
      try {
        const response = await page.goto(url, { waitUntil: 'load', timeout: o.timeoutMs });
        status = response?.status();
        if (o.waitFor !== undefined) await page.waitForSelector(o.waitFor, { timeout: o.timeoutMs, state: 'visible' });
      } catch (e) {
        throw new WitnessError('capture_failed', `The page ${url} could not be captured: ${firstLine(e)}.`, { cause: e, details: { url } });
      }
      const locators = o.mask.map((s) => page.locator(s));
      const masked = (await Promise.all(locators.map((l) => l.count()))).reduce((a, b) => a + b, 0);
      const png = await page.screenshot({ type: 'png', mask: locators, maskColor: '#000000', animations: 'disabled', caret: 'hide', fullPage: o.fullPage ?? false, timeout: o.timeoutMs });
      // The text is read after the pixels, with what the mask hid blanked out of it too.
      const { title, text } = (await page.evaluate(`(${READ_TEXT})(${JSON.stringify({ selectors: o.mask, replacement: MASK_TEXT, max: MAX_TEXT })})`)) as { title: string; text: string };
      return { png, url: page.url(), status, title, text, viewport: o.viewport, masked, ts: new Date().toISOString(), ms: performance.now() - started };
    } finally {
      await context.close().catch(() => undefined);
    }
  }

  /**
   * Renders HTML documents (the video's title cards) to PNGs in one context with scripts off and
   * no network: the cards are built from recorded text, which must never run or fetch anything.
   */
  async renderHtml(documents: readonly string[], viewport: Viewport): Promise<Buffer[]> {
    let browser: Browser;
    try {
      browser = await this.launch();
    } catch (e) {
      throw new WitnessError('capture_failed', `Chromium (${this.executable}) could not be started: ${firstLine(e)}.`, { cause: e });
    }
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
      throw new WitnessError('capture_failed', `Chromium could not render a title card: ${firstLine(e)}; run the command again, and if it keeps failing check that the machine has free memory.`, { cause: e });
    } finally {
      await context.close().catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    const b = this.browser;
    this.browser = undefined;
    if (b !== undefined) await (await b.catch(() => undefined))?.close().catch(() => undefined);
  }
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

function firstLine(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  // Playwright's messages carry a call log after the first line; one sentence is what a person needs.
  return (m.split('\n')[0] ?? m).replace(/[.\s]+$/, '');
}
