import type { Child, FC } from 'hono/jsx';
import type { Chrome, Section } from './model.js';
import { CSRF_FIELD, PATHS } from './paths.js';

/** The frame every page shares: stylesheet, navigation, who is signed in, sign-out. */

const NAV: Array<{ section: Section; label: string; href: string }> = [
  { section: 'overview', label: 'Overview', href: PATHS.overview },
  { section: 'sessions', label: 'Sessions', href: PATHS.sessions },
  { section: 'approvals', label: 'Approvals', href: PATHS.approvals },
  { section: 'halts', label: 'Stop', href: PATHS.halts },
  { section: 'integrity', label: 'Integrity', href: PATHS.integrity },
];

export const CsrfField: FC<{ token: string | undefined }> = ({ token }) => <input type="hidden" name={CSRF_FIELD} value={token ?? ''} />;

export const Layout: FC<{ title: string; chrome?: Chrome | undefined; children?: Child }> = ({ title, chrome, children }) => (
  <html lang="en">
    <head>
      <meta charset="utf-8" />
      <meta name="viewport" content="width=device-width, initial-scale=1" />
      <meta name="referrer" content="no-referrer" />
      <title>{`${title} · Witness`}</title>
      <link rel="stylesheet" href={PATHS.stylesheet} />
    </head>
    <body>
      <header class="top">
        <a class="brand" href={PATHS.overview}>
          Witness
        </a>
        {chrome?.user === undefined ? null : (
          <nav aria-label="Sections">
            {NAV.map((n) => (
              <a href={n.href} aria-current={chrome.active === n.section ? 'page' : undefined}>
                {n.label}
                {n.section === 'approvals' && chrome.pendingApprovals !== undefined && chrome.pendingApprovals > 0 ? ` (${chrome.pendingApprovals})` : ''}
              </a>
            ))}
          </nav>
        )}
        {chrome?.user === undefined ? null : (
          <div class="who">
            <span>
              {chrome.user.name} · {chrome.user.role}
              {chrome.masked === true ? ' · personal data masked' : ''}
            </span>
            <form method="post" action={PATHS.signOut}>
              <CsrfField token={chrome.csrfToken} />
              <button class="link" type="submit">
                Sign out
              </button>
            </form>
          </div>
        )}
      </header>
      <main>{children}</main>
    </body>
  </html>
);

/**
 * A page as the complete HTML document the route sends (with viewerHeaders()). The views have no
 * asynchronous component, so rendering is synchronous; a Promise here is a programming error.
 */
export function renderDocument(node: unknown): string {
  const out = (node as unknown as { toString(): string | Promise<string> }).toString();
  if (typeof out !== 'string') throw new Error('A viewer page rendered asynchronously; the views must stay synchronous.');
  return `<!DOCTYPE html>${showHidden(out)}`;
}

/**
 * Characters that change how recorded text reads without showing themselves: bidi controls (a tool
 * name or an argument written backwards, as in "Trojan Source"), zero-width characters that split a
 * word, line separators, C0 and C1 controls. The views write none of them, so every one in a page
 * came from recorded data; each is shown as a visible stand-in (a control picture, or `<U+XXXX>`),
 * as the CLI shows them, so a person approving a call reads what the agent actually sent. Newline and
 * tab are kept: indented JSON needs them. ZWJ and ZWNJ are kept too: emoji and several scripts need them.
 */
const HIDDEN = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200b\u200e\u200f\u202a-\u202e\u2060\u2066-\u2069\u2028\u2029\ufeff]/g;

function showHidden(html: string): string {
  return html.replace(HIDDEN, (c) => {
    const code = c.charCodeAt(0);
    if (code < 0x20) return String.fromCharCode(0x2400 + code);
    if (code === 0x7f) return '\u2421';
    return `&lt;U+${code.toString(16).toUpperCase().padStart(4, '0')}&gt;`;
  });
}
