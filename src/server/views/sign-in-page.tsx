import { CsrfField, Layout, renderDocument } from './layout.js';
import type { ErrorPageModel, SignInPageModel } from './model.js';
import { PATHS, localReturnPath } from './paths.js';

/** Sign-in with an API key, or with OpenID Connect when a provider is configured. */
export function renderSignInPage(m: SignInPageModel): string {
  const next = localReturnPath(m.next);
  const oidcHref = next === undefined ? PATHS.oidc : `${PATHS.oidc}?${new URLSearchParams({ next }).toString()}`;
  return renderDocument(
    <Layout title="Sign in">
      <section class="signin">
        <h1>Sign in</h1>
        <p class="sub">Witness shows recorded agent activity to the people whose role allows it. Every page you read is itself recorded.</p>
        {m.error === undefined ? null : (
          <p class="notice error" role="alert">
            {m.error}
          </p>
        )}
        <form method="post" action={PATHS.signIn}>
          <CsrfField token={m.csrfToken} />
          {next === undefined ? null : <input type="hidden" name="next" value={next} />}
          <label>
            API key
            <input type="password" name="api_key" autocomplete="off" required />
          </label>
          <button class="primary" type="submit">
            Sign in with a key
          </button>
        </form>
        {m.oidc === undefined ? null : (
          <>
            <p class="or">or</p>
            <a class="button" href={oidcHref}>
              Sign in with {m.oidc.label} (OpenID Connect)
            </a>
          </>
        )}
      </section>
    </Layout>,
  );
}

const TITLES: Record<number, string> = {
  400: 'Bad request',
  401: 'Sign-in needed',
  403: 'Not allowed',
  404: 'Not found',
  413: 'Too large',
  429: 'Too many requests',
  500: 'Something went wrong',
  503: 'Unavailable',
};

export function renderErrorPage(m: ErrorPageModel): string {
  const title = TITLES[m.status] ?? (m.status >= 500 ? 'Something went wrong' : 'Request refused');
  return renderDocument(
    <Layout title={title} chrome={m.chrome}>
      <h1>{title}</h1>
      <p class="notice error">{m.message}</p>
      <p class="sub">
        HTTP {m.status}
        {m.code === undefined ? '' : ` · ${m.code}`}
      </p>
      <p>
        <a href={m.chrome?.user === undefined ? PATHS.signIn : PATHS.overview}>{m.chrome?.user === undefined ? 'Sign in' : 'Back to the overview'}</a>
      </p>
    </Layout>,
  );
}
