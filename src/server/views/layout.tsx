import type { Child, FC } from 'hono/jsx';
import type { Chrome, Section } from './model.js';
import { CSRF_FIELD, PATHS } from './paths.js';

/** The frame every page shares: stylesheet, navigation, who is signed in, sign-out. */

const NAV: Array<{ section: Section; label: string; href: string }> = [
  { section: 'overview', label: 'Overview', href: PATHS.overview },
  { section: 'sessions', label: 'Sessions', href: PATHS.sessions },
  { section: 'approvals', label: 'Approvals', href: PATHS.approvals },
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
  return `<!DOCTYPE html>${out}`;
}
