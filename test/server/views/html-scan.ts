/**
 * A strict reader of the views' own output, for the hostile-input tests. hono/jsx escapes `<`, `>`,
 * `&`, `'` and `"` in every text and attribute value, so in a page it rendered every `<` opens a tag
 * it wrote. This reader insists on that: a `<` that does not start a well-formed tag with double-quoted
 * attributes fails, and so would any markup that came from recorded data instead of the views.
 */

export interface Tag {
  name: string;
  closing: boolean;
  attrs: Array<[name: string, value: string | undefined]>;
  at: number;
}

const TAG = /<(\/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[a-zA-Z_:][-a-zA-Z0-9_:.]*(?:="[^"<>]*")?)*)\s*\/?>/y;
const ATTR = /\s+([a-zA-Z_:][-a-zA-Z0-9_:.]*)(?:="([^"<>]*)")?/g;

export function scanTags(html: string): Tag[] {
  const out: Tag[] = [];
  const body = html.startsWith('<!DOCTYPE html>') ? html.slice('<!DOCTYPE html>'.length) : html;
  const offset = html.length - body.length;
  for (let i = body.indexOf('<'); i !== -1; i = body.indexOf('<', i + 1)) {
    TAG.lastIndex = i;
    const m = TAG.exec(body);
    if (m === null) throw new Error(`not a tag the views write, at ${i + offset}: ${JSON.stringify(body.slice(i, i + 80))}`);
    const attrs: Tag['attrs'] = [];
    for (const a of (m[3] ?? '').matchAll(ATTR)) attrs.push([a[1]!.toLowerCase(), a[2] === undefined ? undefined : decode(a[2])]);
    out.push({ name: m[2]!.toLowerCase(), closing: m[1] === '/', attrs, at: i + offset });
  }
  return out;
}

export function decode(s: string): string {
  return s.replace(/&(quot|amp|lt|gt|#39|#x27);/g, (_m, e: string) => ({ quot: '"', amp: '&', lt: '<', gt: '>', '#39': "'", '#x27': "'" })[e]!);
}

/** The elements the views use; anything else in a page came from somewhere else. */
export const VIEW_ELEMENTS = new Set(
  (
    'html head meta title link body header nav main section div span p b br a form input button label select option textarea ' +
    'h1 h2 h3 dl dt dd ol ul li pre table thead tbody tr th td figure figcaption img video track svg g rect line text polyline circle'
  ).split(' '),
);

/** Attributes that take a URL. */
export const URL_ATTRS = new Set(['href', 'src', 'action', 'formaction', 'xlink:href', 'poster', 'srcset', 'data', 'background', 'ping']);

/** Every URL a page may hold: its own routes, artifacts by digest, chapters by event id. */
export function allowedUrl(attr: string, url: string): boolean {
  if (attr === 'src') return /^\/v1\/artifacts\/[0-9a-f]{64}$/.test(url) || /^\/video\/[0-9a-f-]{36}\/chapters\.vtt$/.test(url);
  if (attr === 'href' || attr === 'action') return /^\/(?![/\\])[^\s:]*$/.test(url.split('?')[0]!) && !/[\s\\]/.test(url);
  return false;
}
