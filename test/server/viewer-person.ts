/** A browser's view of the viewer through app.request(): cookies kept, forms posted urlencoded. */
export class Person {
  cookies = new Map<string, string>();
  constructor(private readonly f: { app: { request(input: string, init?: RequestInit): Response | Promise<Response> } }) {}

  async request(method: string, path: string, form?: Record<string, string>, headers: Record<string, string> = {}): Promise<Response> {
    const h: Record<string, string> = { ...headers };
    if (this.cookies.size > 0) h['cookie'] = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    const init: RequestInit = { method, headers: h };
    if (form !== undefined) {
      h['content-type'] = 'application/x-www-form-urlencoded';
      init.body = new URLSearchParams(form).toString();
    }
    const res = await this.f.app.request(`http://localhost${path}`, init);
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const [k, v] = pair!.split('=');
      if (/Max-Age=0/.test(c) || v === '') this.cookies.delete(k!);
      else this.cookies.set(k!, v!);
    }
    return res;
  }

  async signIn(key: string, next?: string): Promise<Response> {
    const form = await (await this.request('GET', '/sign-in')).text();
    const csrf = /name="csrf" value="([^"]+)"/.exec(form)![1]!;
    return this.request('POST', '/sign-in', { csrf, api_key: key, ...(next === undefined ? {} : { next }) });
  }

  async csrf(path = '/sessions'): Promise<string> {
    const page = await (await this.request('GET', path)).text();
    return /name="csrf" value="([^"]+)"/.exec(page)![1]!;
  }
}
