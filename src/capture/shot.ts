import type { CDPSession, Page } from 'playwright-core';
import { WitnessError } from '../core/index.js';
import { firstLine } from './errors.js';
import { PREPARE } from './page-scripts.js';

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
const MAX_TEXT = 64 * 1024;

/**
 * Chromium's fast PNG encoder (`optimizeForSpeed`) was measured and left off: the same lossless
 * pixels, but no faster on a text page (70 vs 74 ms, median of 20 on two loaded cores) and, on a
 * page with a gradient, 134 instead of 185 ms for a file 6.5 times larger (502 KB vs 76 KB).
 * Screenshots are kept for years and travel in every evidence bundle.
 */
const FAST_PNG = false;

/**
 * Loads `url` in a page that nothing else has used and takes its screenshot. Playwright navigates
 * (its error messages and timeouts are what people read); what Playwright's masked screenshot
 * takes in six or more round trips to the renderer (injecting its selector engine, fonts,
 * animations, caret, mask, layout metrics, clean-up) plus the page-text read are one script
 * (page-scripts.ts), then one CDP `Page.captureScreenshot`: on two loaded cores each round trip
 * costs tens of milliseconds. The page is thrown away afterwards, so nothing is undone.
 */
export async function shootIn(target: { page: Page; cdp: CDPSession }, url: string, o: ShootOptions): Promise<Omit<Shot, 'ms'>> {
  const { page, cdp } = target;
  page.setDefaultTimeout(o.timeoutMs);
  let status: number | undefined;
  try {
    const response = await page.goto(url, { waitUntil: 'load', timeout: o.timeoutMs });
    status = response?.status();
    if (o.waitFor !== undefined) await page.waitForSelector(o.waitFor, { timeout: o.timeoutMs, state: 'visible' });
  } catch (e) {
    throw failed(url, e);
  }
  const fullPage = o.fullPage ?? false;
  const prepared = (await evaluate(cdp, PREPARE, { selectors: o.mask, fullPage, replacement: MASK_TEXT, max: MAX_TEXT }, url, o.timeoutMs)) as { masked: number; title: string; text: string; width: number; height: number };
  const fits = !fullPage || (prepared.width <= o.viewport.width && prepared.height <= o.viewport.height);
  const params = fullPage
    ? { format: 'png' as const, optimizeForSpeed: FAST_PNG, clip: { x: 0, y: 0, width: prepared.width, height: prepared.height, scale: 1 }, captureBeyondViewport: !fits }
    : { format: 'png' as const, optimizeForSpeed: FAST_PNG };
  let png: Buffer;
  try {
    png = Buffer.from((await timed(cdp.send('Page.captureScreenshot', params), o.timeoutMs)).data, 'base64');
  } catch (e) {
    throw failed(url, e);
  }
  return { png, url: page.url(), status, title: prepared.title, text: prepared.text, viewport: o.viewport, masked: prepared.masked, ts: new Date().toISOString() };
}

async function evaluate(cdp: CDPSession, fn: string, arg: unknown, url: string, timeoutMs: number): Promise<unknown> {
  let r;
  try {
    r = await timed(cdp.send('Runtime.evaluate', { expression: `(${fn})(${JSON.stringify(arg)})`, awaitPromise: true, returnByValue: true }), timeoutMs);
  } catch (e) {
    throw failed(url, e);
  }
  if (r.exceptionDetails !== undefined) {
    const reason = r.exceptionDetails.exception?.description ?? r.exceptionDetails.text;
    throw failed(url, new Error(reason.replace(/^Error: /, '')));
  }
  return r.result.value;
}

function failed(url: string, e: unknown): WitnessError {
  return new WitnessError('capture_failed', `The page ${url} could not be captured: ${firstLine(e)}.`, { cause: e, details: { url } });
}

/** Playwright's own calls honour the capture's timeout; these CDP calls are given the same one. */
async function timed<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`Timeout ${ms}ms exceeded`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
