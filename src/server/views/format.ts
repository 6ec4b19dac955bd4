/**
 * Turning recorded values into text for a page. Every function returns a plain string, which the
 * JSX renderer escapes: recorded values are never handed to it as objects, because hono/jsx prints
 * any object carrying `isEscaped` as it is.
 */

/** How much of one recorded value a page shows; the rest is in the ledger and the bundle. */
export const MAX_SHOWN = 20_000;

export function clip(s: string, max = MAX_SHOWN): string {
  if (s.length <= max) return s;
  return `${s.slice(0, max)}… (${s.length - max} more characters)`;
}

/** A recorded value as readable text: strings as they are, anything else as indented JSON. */
export function showValue(v: unknown, max = MAX_SHOWN): string {
  if (v === undefined) return '';
  if (typeof v === 'string') return clip(v, max);
  let s: string;
  try {
    s = JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x), 2) ?? String(v);
  } catch {
    s = String(v);
  }
  return clip(s, max);
}

/** `2026-11-23 10:00:00 UTC`: readable, unambiguous, and the same on every machine. */
export function showTime(iso: string | undefined): string {
  if (iso === undefined) return '';
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.\d+)?Z$/.exec(iso);
  return m === null ? iso : `${m[1]} ${m[2]} UTC`;
}

export function showDuration(ms: number): string {
  if (!Number.isFinite(ms)) return '';
  const sign = ms < 0 ? '-' : '';
  const a = Math.abs(ms);
  if (a < 1000) return `${sign}${Math.round(a)} ms`;
  const s = Math.round(a / 1000);
  if (s < 60) return `${sign}${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${sign}${m} min ${s % 60} s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${sign}${h} h ${m % 60} min`;
  return `${sign}${Math.floor(h / 24)} d ${h % 24} h`;
}

/** `12 min 5 s left`, `expired 3 s ago`, or `no expiry`. */
export function timeLeft(now: string, expiresAt: string | undefined): { text: string; expired: boolean } {
  if (expiresAt === undefined) return { text: 'no expiry', expired: false };
  const left = Date.parse(expiresAt) - Date.parse(now);
  if (Number.isNaN(left)) return { text: `expires ${showTime(expiresAt)}`, expired: false };
  return left > 0 ? { text: `${showDuration(left)} left`, expired: false } : { text: `expired ${showDuration(-left)} ago`, expired: true };
}

/** The first 12 hex characters of a digest, for a label; the full digest stays in a title. */
export function shortHash(hex: string): string {
  return hex.length > 12 ? `${hex.slice(0, 12)}…` : hex;
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n.toLocaleString('en-US')} ${n === 1 ? one : many}`;
}

/** Seconds into a video as `m:ss`. */
export function showOffset(s: number): string {
  const t = Math.max(0, Math.round(s));
  return `${Math.floor(t / 60)}:${String(t % 60).padStart(2, '0')}`;
}

/**
 * A tool's output as a reader wants it: MCP text content shown as its text (JSON text indented),
 * anything else as indented JSON. The exact recorded value is in the ledger and the bundle.
 */
export function showToolOutput(v: unknown, max = MAX_SHOWN): string {
  // Only a result that is nothing but text content (and the isError flag the page shows as a badge)
  // is shown as text: any other field (structuredContent, _meta, something unexpected) must stay
  // visible, so such a result is shown whole.
  const o = v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  const content = o !== undefined && Object.keys(o).every((k) => k === 'content' || (k === 'isError' && typeof o[k] === 'boolean')) ? o['content'] : undefined;
  if (!Array.isArray(content) || content.length === 0) return showValue(v, max);
  const texts: string[] = [];
  for (const part of content) {
    const p = part !== null && typeof part === 'object' ? (part as Record<string, unknown>) : undefined;
    if (p === undefined || p['type'] !== 'text' || typeof p['text'] !== 'string' || Object.keys(p).some((k) => k !== 'type' && k !== 'text')) return showValue(v, max);
    texts.push(p['text'] as string);
  }
  return clip(
    texts
      .map((t) => {
        if (!/^\s*[{[]/.test(t)) return t;
        try {
          return JSON.stringify(JSON.parse(t) as unknown, null, 2);
        } catch {
          // Text that only looks like JSON is shown as it is.
          return t;
        }
      })
      .join('\n'),
    max,
  );
}
