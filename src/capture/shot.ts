import type { CDPSession, Page } from 'playwright-core';
import { WitnessError } from '../core/index.js';
import { firstLine } from './errors.js';
import { PREPARE, REMEASURE } from './page-scripts.js';
import { paintBlack, type CssRect } from './png-mask.js';

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
  // Asked while the page loads: the main frame keeps its id across navigations.
  const frameTree = cdp.send('Page.getFrameTree');
  frameTree.catch(() => undefined);
  let status: number | undefined;
  let contextId: number;
  try {
    const response = await page.goto(url, { waitUntil: 'load', timeout: o.timeoutMs });
    status = response?.status();
    if (o.waitFor !== undefined) await page.waitForSelector(o.waitFor, { timeout: o.timeoutMs, state: 'visible' });
    const frameId = (await timed(frameTree, o.timeoutMs)).frameTree.frame.id;
    // From here on the page's own scripts (timers, observers, animation frames, event handlers) do
    // not run, so none can undo the mask before the pixels are taken; and the capture's script runs
    // in a world of its own, where the page's changes to DOM prototypes and globals are not seen.
    const [, world] = await timed(
      Promise.all([cdp.send('Emulation.setScriptExecutionDisabled', { value: true }), cdp.send('Page.createIsolatedWorld', { frameId, worldName: WORLD, grantUniveralAccess: false })]),
      o.timeoutMs,
    );
    contextId = world.executionContextId;
  } catch (e) {
    throw failed(url, e);
  }
  const fullPage = o.fullPage ?? false;
  const prepared = (await evaluate(cdp, contextId, PREPARE, { selectors: o.mask, fullPage, replacement: MASK_TEXT, max: MAX_TEXT }, url, o.timeoutMs)) as Prepared;
  const { area } = prepared;
  const fits = !fullPage || (area.width <= o.viewport.width && area.height <= o.viewport.height);
  const params = fullPage
    ? { format: 'png' as const, optimizeForSpeed: FAST_PNG, clip: { x: 0, y: 0, width: area.width, height: area.height, scale: 1 }, captureBeyondViewport: !fits }
    : { format: 'png' as const, optimizeForSpeed: FAST_PNG };
  let png: Buffer;
  try {
    png = Buffer.from((await timed(cdp.send('Page.captureScreenshot', params), o.timeoutMs)).data, 'base64');
  } catch (e) {
    throw failed(url, e);
  }
  if (o.mask.length > 0) {
    // The overlay drawn in the page is the first layer; this is the one that holds: the boxes where
    // the masked elements were before the pixels were taken and where they are after, painted black
    // into the PNG itself.
    const now = (await evaluate(cdp, contextId, REMEASURE, undefined, url, o.timeoutMs)) as CssRect[];
    try {
      png = paintBlack(png, [...prepared.rects, ...now], area);
    } catch (e) {
      throw failed(url, e);
    }
  }
  return { png, url: page.url(), status, title: prepared.title, text: prepared.text, viewport: o.viewport, masked: prepared.masked, ts: new Date().toISOString() };
}

interface Prepared {
  masked: number;
  title: string;
  text: string;
  /** Masked elements' boxes in page coordinates. */
  rects: CssRect[];
  /** The part of the page the screenshot shows, in page coordinates. */
  area: CssRect;
}

/** The name of the isolated world the capture's scripts run in. */
const WORLD = 'witness';

async function evaluate(cdp: CDPSession, contextId: number, fn: string, arg: unknown, url: string, timeoutMs: number): Promise<unknown> {
  let r;
  try {
    r = await timed(cdp.send('Runtime.evaluate', { expression: `(${fn})(${arg === undefined ? '' : JSON.stringify(arg)})`, contextId, awaitPromise: true, returnByValue: true }), timeoutMs);
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
