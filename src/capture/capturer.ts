import { CaptureBrowser, type Shot } from './browser.js';
import { changedRegion, type ChangedRegion } from './png-diff.js';
import { fillUrl, parseCaptureSpec, type CaptureSpec } from './spec.js';

export type CaptureRole = 'before' | 'after';

export interface ToolShot extends Shot {
  role: CaptureRole;
  mask: readonly string[];
  /** An `after` shot: where its pixels differ from the same call's `before` shot (recorded as `changed_region`). */
  changedRegion?: ChangedRegion;
}

/**
 * Before shots kept for their call's after shot (none is kept when the spec asks for no after
 * shot). One whose after shot never comes (the client went away, the after shot failed) is
 * forgotten once this many newer ones wait: each holds one PNG (~0.1-0.5 MB).
 */
const WAITING_BEFORE_SHOTS = 16;

/**
 * Screenshots around tool calls: fills the spec's URL from the call's arguments and shoots with
 * the warm browser. Pass one to `openWitness({ capturer })` or to the gateway; close it at the end.
 */
export class Capturer {
  readonly browser: CaptureBrowser;
  /** Call id → its before shot's PNG, until the call's after shot is taken. */
  private readonly befores = new Map<string, Buffer>();

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

  /**
   * Takes the `role` screenshot the spec asks for, or resolves undefined when it asks for none.
   * `call` (the tool.call event's id) pairs a call's two shots: an after shot then carries the
   * region where its pixels differ from the before shot's (none when they are the same).
   */
  async shoot(specInput: unknown, args: unknown, role: CaptureRole, call?: string): Promise<ToolShot | undefined> {
    const spec = parseCaptureSpec(specInput);
    if (!spec[role]) return undefined;
    const url = fillUrl(spec.url, args);
    const shot = await this.browser.shoot(url, { viewport: spec.viewport, mask: spec.mask, waitFor: spec.waitFor, timeoutMs: spec.timeoutMs, fullPage: spec.fullPage });
    const out: ToolShot = { ...shot, role, mask: spec.mask };
    if (call === undefined) return out;
    if (role === 'before') {
      if (spec.after) this.keepBefore(call, shot.png);
      return out;
    }
    const before = this.befores.get(call);
    this.befores.delete(call);
    const region = before === undefined ? undefined : compare(before, shot.png);
    return region === undefined ? out : { ...out, changedRegion: region };
  }

  private keepBefore(call: string, png: Buffer): void {
    this.befores.delete(call);
    this.befores.set(call, png);
    for (const oldest of this.befores.keys()) {
      if (this.befores.size <= WAITING_BEFORE_SHOTS) break;
      this.befores.delete(oldest);
    }
  }

  async close(): Promise<void> {
    this.befores.clear();
    await this.browser.close();
  }
}

/**
 * Both PNGs were written by Chromium (and masked by png-mask.ts, which reads the same layouts), so
 * a failure here is a bug of this module; the screenshot is still evidence, recorded without the
 * region rather than lost.
 */
function compare(before: Buffer, after: Buffer): ChangedRegion | undefined {
  try {
    return changedRegion(before, after);
  } catch {
    return undefined;
  }
}
