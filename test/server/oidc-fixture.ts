import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';

/**
 * A real OpenID provider (panva's oidc-provider) on a loopback port, with one confidential client
 * and accounts whose `groups` claim the tests map to roles. It listens on 127.0.0.2, a different
 * host (and so a different site, for cookies) from the Witness server on 127.0.0.1, as a real
 * provider would be. Its development login form accepts any password for a known account.
 */
export const CLIENT_ID = 'witness-test';
export const CLIENT_SECRET = 'a-test-client-secret-that-is-long-enough';

export const ACCOUNTS: Record<string, { name: string; groups: string[] }> = {
  alice: { name: 'Alice Auditor', groups: ['staff', 'auditors'] },
  bob: { name: 'Bob Contractor', groups: ['contractors'] },
  carol: { name: 'Carol Approver', groups: ['approvers'] },
  dave: { name: 'Dave Approver', groups: ['approvers'] },
  erin: { name: 'Erin Developer', groups: ['devs'] },
};

export interface TestProvider {
  issuer: string;
  close(): Promise<void>;
}

export async function startProvider(redirectUri: string): Promise<TestProvider> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.2', resolve));
  const issuer = `http://127.0.0.2:${(server.address() as AddressInfo).port}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
        redirect_uris: [redirectUri],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    async findAccount(_ctx: unknown, id: string) {
      const account = ACCOUNTS[id];
      if (account === undefined) return undefined;
      return { accountId: id, claims: () => ({ sub: id, name: account.name, groups: account.groups }) };
    },
    claims: { openid: ['sub'], profile: ['name'], groups: ['groups'] },
    pkce: { required: () => true },
    cookies: { keys: ['a-test-cookie-signing-key'] },
  });
  server.on('request', provider.callback());
  return {
    issuer,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** A free loopback port, for a server whose redirect URI must be registered before it listens. */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/**
 * A browser reduced to what the flow needs: cookies per host (name=value, path ignored, which only
 * sends more than a browser would) and redirects followed by hand, so a test can stop, look and
 * tamper at any step.
 */
export class CookieBrowser {
  private readonly jars = new Map<string, Map<string, string>>();

  async get(url: string): Promise<Response> {
    return this.request(url, { method: 'GET' });
  }

  async post(url: string, form: Record<string, string>): Promise<Response> {
    return this.request(url, { method: 'POST', body: new URLSearchParams(form).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  }

  cookie(url: string, name: string): string | undefined {
    return this.jars.get(new URL(url).host)?.get(name);
  }

  setCookie(url: string, name: string, value: string): void {
    const jar = this.jars.get(new URL(url).host) ?? new Map<string, string>();
    jar.set(name, value);
    this.jars.set(new URL(url).host, jar);
  }

  private async request(url: string, init: { method: string; body?: string; headers?: Record<string, string> }): Promise<Response> {
    const host = new URL(url).host;
    const jar = this.jars.get(host) ?? new Map<string, string>();
    this.jars.set(host, jar);
    const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const res = await fetch(url, { ...init, redirect: 'manual', headers: { ...(init.headers ?? {}), ...(cookie === '' ? {} : { cookie }) } });
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      const expired = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a) || /^\s*expires=thu, 01 jan 1970/i.test(a));
      if (expired || value === '') jar.delete(name);
      else jar.set(name, value);
    }
    return res;
  }
}

/**
 * Signs `login` in at the provider, starting from the authorization URL: the login form, then the
 * consent form, each posted where the provider's page says. Returns the callback URL the provider
 * redirects the browser to (not yet followed).
 */
export async function signInAtProvider(browser: CookieBrowser, authorizationUrl: string, login: string): Promise<string> {
  let url = authorizationUrl;
  for (let step = 0; step < 12; step++) {
    const res = await browser.get(url);
    if (res.status >= 300 && res.status < 400) {
      const next = new URL(res.headers.get('location')!, url).href;
      if (!next.startsWith(new URL(authorizationUrl).origin)) return next;
      url = next;
      continue;
    }
    const page = await res.text();
    if (res.status !== 200) throw new Error(`the provider answered ${res.status}: ${page.slice(0, 500)}`);
    const action = /<form[^>]*action="([^"]+)"/.exec(page)?.[1];
    const prompt = /name="prompt" value="([a-z]+)"/.exec(page)?.[1];
    if (action === undefined || prompt === undefined) throw new Error(`no form on the provider's page: ${page.slice(0, 500)}`);
    const posted = await browser.post(new URL(action.replace(/&amp;/g, '&'), url).href, prompt === 'login' ? { prompt, login, password: 'any' } : { prompt });
    if (posted.status < 300 || posted.status >= 400) throw new Error(`the provider's ${prompt} form answered ${posted.status}`);
    url = new URL(posted.headers.get('location')!, url).href;
    if (!url.startsWith(new URL(authorizationUrl).origin)) return url;
  }
  throw new Error('the provider never redirected back');
}
