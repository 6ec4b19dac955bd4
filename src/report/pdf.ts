import fs from 'node:fs';
import { WitnessError } from '../core/index.js';
import { CaptureBrowser } from '../capture/index.js';

/**
 * Prints a report's HTML to an A4 PDF with the Chromium capture already uses (Debian's, through
 * playwright-core; missing → capture's one sentence on how to install it). Scripts are off and the
 * network is closed: the report is built from recorded text and embeds its images as data: URIs,
 * so nothing may run or be fetched.
 */
export async function printReportPdf(html: string, options: { executablePath?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Buffer> {
  const browser = new CaptureBrowser({
    pool: 0,
    ...(options.executablePath === undefined ? {} : { executablePath: options.executablePath }),
    ...(options.env === undefined ? {} : { env: options.env }),
  });
  try {
    let b;
    try {
      b = await browser.playwright();
    } catch (e) {
      throw new WitnessError('capture_failed', `Chromium could not be started to print the report: ${firstLine(e)}.`, { cause: e });
    }
    const context = await b.newContext({ javaScriptEnabled: false, offline: true, colorScheme: 'light', locale: 'en-US', timezoneId: 'UTC' });
    try {
      await context.route('**/*', (route) => (route.request().url().startsWith('data:') ? route.continue() : route.abort()));
      const page = await context.newPage();
      await page.setContent(html, { waitUntil: 'load', timeout: 120_000 });
      await page.emulateMedia({ media: 'print' });
      return await page.pdf({
        format: 'A4',
        printBackground: true,
        preferCSSPageSize: true,
        displayHeaderFooter: true,
        headerTemplate: '<span></span>',
        footerTemplate:
          '<div style="font-size:8px;width:100%;text-align:center;color:#59636e">Witness evidence report · page <span class="pageNumber"></span> of <span class="totalPages"></span></div>',
      });
    } catch (e) {
      if (e instanceof WitnessError) throw e;
      throw new WitnessError('capture_failed', `Chromium could not print the report: ${firstLine(e)}; run the command again, and if it keeps failing write HTML with -o report.html.`, { cause: e });
    } finally {
      await context.close().catch(() => undefined);
    }
  } finally {
    await browser.close();
  }
}

/** Writes the PDF beside its final name and renames it into place, so a failed print leaves nothing half-written. */
export function writeFileAtomic(file: string, bytes: Buffer | string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, bytes, { flag: 'wx' });
  fs.renameSync(tmp, file);
}

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0]!.replace(/\.$/, '');
}
