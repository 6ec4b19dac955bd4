/**
 * The Content-Security-Policy every viewer page is sent with. The pages carry no script and no
 * inline style at all, so nothing needs 'unsafe-inline' or a nonce; the native video player is
 * the only moving part and needs none either. Whatever recorded text slipped through escaping
 * could still not run, load from elsewhere, post a form to another origin or be framed.
 */
export function contentSecurityPolicy(): string {
  return [
    "default-src 'none'",
    "script-src 'none'",
    "img-src 'self'",
    "media-src 'self'",
    "style-src 'self'",
    "font-src 'none'",
    "connect-src 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "object-src 'none'",
  ].join('; ');
}

/** The other headers a viewer page goes out with, beside the CSP. */
export function viewerHeaders(): Record<string, string> {
  return {
    'Content-Security-Policy': contentSecurityPolicy(),
    'Content-Type': 'text/html; charset=utf-8',
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'Cache-Control': 'no-store',
  };
}
