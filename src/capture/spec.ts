import { z } from 'zod';
import { WitnessError, formatPath } from '../core/index.js';

/**
 * What to capture around one tool call, the same in the SDK (`s.tool(…, { capture })`) and in the
 * gateway configuration. `url` is a template filled from the call's arguments:
 * `http://127.0.0.1:4000/customers/{customer_id}` or `{order.id}` for a nested argument.
 */
export const CaptureSpec = z.strictObject({
  url: z.string().min(1).max(4096),
  before: z.boolean().default(true),
  after: z.boolean().default(true),
  /** CSS selectors blacked out before the pixels are stored (card numbers, SSNs, patient data). */
  mask: z.array(z.string().min(1).max(1024)).max(64).default([]),
  viewport: z.strictObject({ width: z.number().int().min(200).max(4096), height: z.number().int().min(200).max(4096) }).default({ width: 1280, height: 720 }),
  /** Wait for this selector to be visible before the screenshot. */
  waitFor: z.string().min(1).max(1024).optional(),
  timeoutMs: z.number().int().min(100).max(120_000).default(10_000),
  fullPage: z.boolean().default(false),
});
export type CaptureSpec = z.output<typeof CaptureSpec>;
export type CaptureSpecInput = z.input<typeof CaptureSpec>;

export function parseCaptureSpec(input: unknown, where = 'capture'): CaptureSpec {
  const r = CaptureSpec.safeParse(input);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  throw new WitnessError('invalid_argument', `Invalid ${where}${issue?.path.length ? ` ${formatPath(issue.path)}` : ''}: ${issue?.message ?? 'invalid'}.`, { cause: r.error });
}

const PLACEHOLDER = /\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\}/g;

/**
 * A path segment the URL parser resolves away: "." or ".." in any mix with "%2e" (WHATWG URL,
 * "single-dot" and "double-dot" segments, ASCII case-insensitive).
 */
const DOT_SEGMENT = /^(?:\.|%2e){1,2}$/i;

/** scheme://authority, then the path, then the query and fragment. */
const URL_PARTS = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*)([^?#]*)([\s\S]*)$/;

/**
 * Fills `{name}` placeholders from the arguments, each URL-encoded with encodeURIComponent, so a
 * value cannot add a `/`, `\`, `?`, `#` or `%`-escape of its own. Encoding leaves `.` alone, and the
 * URL parser would resolve a whole segment `..` (or `.`) by climbing out of the path the template
 * names — `/customers/{id}/profile` with id ".." is `/profile` — so a path segment that the
 * arguments make a dot segment is refused: the capture fails (recorded as an error; the tool call
 * is unaffected). Only http and https pages are captured: a `file:` or `chrome:` URL built from an
 * agent's arguments could put local files into the evidence.
 */
export function fillUrl(template: string, args: unknown): string {
  const fill = (text: string): string =>
    text.replace(PLACEHOLDER, (_, name: string) => {
      let cur: unknown = args;
      for (const step of name.split('.')) {
        cur = cur !== null && typeof cur === 'object' && !Array.isArray(cur) && Object.prototype.hasOwnProperty.call(cur, step) ? (cur as Record<string, unknown>)[step] : undefined;
      }
      if (typeof cur !== 'string' && typeof cur !== 'number' && typeof cur !== 'boolean') {
        throw new WitnessError('capture_failed', `The capture URL ${template} needs the argument ${name}, which this call does not have as a string or number.`, {
          details: { template, argument: name },
        });
      }
      return encodeURIComponent(String(cur));
    });
  const parts = URL_PARTS.exec(template);
  let url: string;
  if (parts === null) {
    url = fill(template);
  } else {
    // Filled values hold no "/", so the template's segments are the URL's segments.
    const segments = parts[2]!.split('/').map((segment) => {
      const filled = fill(segment);
      if (filled !== segment && DOT_SEGMENT.test(filled)) {
        throw new WitnessError(
          'capture_failed',
          `The capture URL ${template} would get the path segment "${filled}" from this call's arguments, which would leave the page it names; the page was not captured.`,
          {
            details: { template, segment: filled },
          },
        );
      }
      return filled;
    });
    url = `${fill(parts[1]!)}${segments.join('/')}${fill(parts[3]!)}`;
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new WitnessError('capture_failed', `The capture URL ${url} is not a valid URL.`, { details: { url } });
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new WitnessError('capture_failed', `The capture URL ${url} is not http or https; only web pages are captured.`, { details: { url } });
  }
  return parsed.href;
}

/**
 * A capture file: tool name → spec, in YAML or JSON (`witness proxy --capture FILE`, and the
 * `capture:` section of a gateway server). Errors name the tool and the field.
 */
export function parseCaptureMap(input: unknown, where: string): Record<string, CaptureSpec> {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new WitnessError('invalid_argument', `${where} must map tool names to capture settings, e.g. billing.refund: { url: "http://127.0.0.1:4000/customers/{customer_id}" }.`);
  }
  const out: Record<string, CaptureSpec> = {};
  for (const [tool, spec] of Object.entries(input)) out[tool] = parseCaptureSpec(spec, `${where}: capture for ${tool}`);
  return out;
}
