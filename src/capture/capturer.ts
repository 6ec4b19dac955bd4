import { CaptureBrowser, type Shot } from './browser.js';
import { fillUrl, parseCaptureSpec, type CaptureSpec } from './spec.js';

export type CaptureRole = 'before' | 'after';

export interface ToolShot extends Shot {
  role: CaptureRole;
  mask: readonly string[];
}

/**
 * Screenshots around tool calls: fills the spec's URL from the call's arguments and shoots with
 * the warm browser. Pass one to `openWitness({ capturer })` or to the gateway; close it at the end.
 */
export class Capturer {
  readonly browser: CaptureBrowser;

  /** `pool`: contexts kept open and ready for the next captures (default 2; see CaptureBrowser). */
  constructor(options: { browser?: CaptureBrowser; executablePath?: string; env?: NodeJS.ProcessEnv; pool?: number } = {}) {
    this.browser =
      options.browser ??
      new CaptureBrowser({
        ...(options.executablePath === undefined ? {} : { executablePath: options.executablePath }),
        ...(options.env === undefined ? {} : { env: options.env }),
        ...(options.pool === undefined ? {} : { pool: options.pool }),
      });
  }

  /** Validates a spec (throws one sentence naming the bad field). */
  spec(input: unknown, where?: string): CaptureSpec {
    return parseCaptureSpec(input, where);
  }

  /** Takes the `role` screenshot the spec asks for, or resolves undefined when it asks for none. */
  async shoot(specInput: unknown, args: unknown, role: CaptureRole): Promise<ToolShot | undefined> {
    const spec = parseCaptureSpec(specInput);
    if (!spec[role]) return undefined;
    const url = fillUrl(spec.url, args);
    const shot = await this.browser.shoot(url, { viewport: spec.viewport, mask: spec.mask, waitFor: spec.waitFor, timeoutMs: spec.timeoutMs, fullPage: spec.fullPage });
    return { ...shot, role, mask: spec.mask };
  }

  async close(): Promise<void> {
    await this.browser.close();
  }
}
