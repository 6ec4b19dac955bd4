import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approverKeysDir, createKey, loadApproverKey, routeTable, storeApproverKey, type RouteSpec } from '../../src/server/index.js';
import { tempDir } from '../helpers/tmp.js';
import { heldRequest } from './approve-helpers.js';
import { ROLE_LIST, serverFixture, type ServerFixture } from './fixture.js';

/**
 * Every route of the table, called with every role's key and with none. The example request per
 * route lives here; a route added to the table without one fails this test, so no route escapes
 * the matrix.
 */
type Example = (f: ServerFixture) => Promise<{ path: string; body?: unknown; form?: Record<string, string>; headers?: Record<string, string>; allowed?: number[] }>;

/** A video capture event (with an MP4 artifact and one chapter), for the chapters route. */
async function videoEvent(f: ServerFixture): Promise<string> {
  const mp4 = await f.ledger.putArtifact(Buffer.from('00000018667479706d703432', 'hex'), 'video/mp4', 'video');
  const [r] = await f.ledger.append([
    { stream: f.built.sessions.c, kind: 'capture', agent: { id: 'ops-bot' }, artifacts: [mp4], data: { role: 'video', chapters: [{ title: 'Step 1', start_s: 0, end_s: 1 }] } },
  ]);
  return r!.id;
}

const EXAMPLES: Record<string, Example> = {
  'GET /healthz': async () => ({ path: '/healthz' }),
  'GET /metrics': async () => ({ path: '/metrics' }),
  'GET /v1/openapi.json': async () => ({ path: '/v1/openapi.json' }),
  'GET /v1/whoami': async () => ({ path: '/v1/whoami' }),
  'POST /v1/events': async () => ({ path: '/v1/events', body: { events: [{ stream: `matrix-${randomUUID()}`, kind: 'note', data: { text: 'hello' } }] } }),
  // OTLP/JSON with a fresh trace id each call, so every allowed call records a span.
  'POST /v1/traces': async () => ({
    path: '/v1/traces',
    body: { resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: randomUUID().replace(/-/g, ''), spanId: 'eee19b7ec3c1b174', name: 'matrix' }] }] }] },
  }),
  'GET /v1/events': async (f) => ({ path: `/v1/events?session=${f.built.sessions.a}&limit=5` }),
  'GET /v1/events/:id': async (f) => ({ path: `/v1/events/${(await f.ledger.readStream(f.built.sessions.a))[0]!.id}` }),
  'GET /v1/sessions': async () => ({ path: '/v1/sessions?limit=10' }),
  'GET /v1/sessions/:stream': async (f) => ({ path: `/v1/sessions/${f.built.sessions.b}` }),
  'GET /v1/artifacts/:sha256': async (f) => ({ path: `/v1/artifacts/${f.built.artifact.sha256}` }),
  'GET /v1/checkpoints': async () => ({ path: '/v1/checkpoints' }),
  'GET /v1/proofs/inclusion': async (f) => ({ path: `/v1/proofs/inclusion?pos=0&size=${f.built.size}` }),
  'GET /v1/proofs/consistency': async (f) => ({ path: `/v1/proofs/consistency?from=1&to=${f.built.size}` }),
  'POST /v1/verify': async () => ({ path: '/v1/verify', body: {} }),
  // Exports: every allowed call starts one (202); status and download use one finished export.
  'POST /v1/exports': async (f) => ({ path: '/v1/exports', body: { session: f.built.sessions.b }, allowed: [202] }),
  'GET /v1/exports/:id': async (f) => ({ path: `/v1/exports/${await finishedExport(f)}` }),
  'GET /v1/exports/:id/bundle.zip': async (f) => ({ path: `/v1/exports/${await finishedExport(f)}/bundle.zip` }),
  'GET /v1/keys': async () => ({ path: '/v1/keys' }),
  'POST /v1/keys': async () => ({ path: '/v1/keys', body: { role: 'auditor', name: 'from the matrix' } }),
  // Viewer pages: with an API key (scripts) they answer like the API; a person's session cookie is in viewer.test.ts.
  'GET /sign-in': async () => ({ path: '/sign-in' }),
  'POST /sign-in': async (f) => {
    const form = await f.app.request('/sign-in');
    const cookie = form.headers.getSetCookie()[0]!.split(';')[0]!;
    const csrf = /name="csrf" value="([^"]+)"/.exec(await form.text())![1]!;
    return { path: '/sign-in', form: { csrf, api_key: f.keys.auditor }, headers: { cookie }, allowed: [303] };
  },
  'POST /sign-out': async () => ({ path: '/sign-out', form: {}, allowed: [303] }),
  'GET /assets/viewer.css': async () => ({ path: '/assets/viewer.css' }),
  'GET /': async () => ({ path: '/' }),
  'GET /sessions': async () => ({ path: '/sessions' }),
  'GET /session': async (f) => ({ path: `/session?id=${f.built.sessions.a}` }),
  'GET /video/:id/chapters.vtt': async (f) => ({ path: `/video/${await videoEvent(f)}/chapters.vtt` }),
  'GET /approvals': async () => ({ path: '/approvals' }),
  'POST /approvals/decide': async (f) => {
    const id = await pendingForApprover(f);
    const digest = String((await f.ledger.getEvent(id))!.data!['arguments_digest']);
    return { path: '/approvals/decide', form: { request_id: id, arguments_digest: digest, decision: 'approve', reason: 'checked' }, allowed: [303] };
  },
  // OpenID Connect is not configured on the fixture: public routes, so every role and no key get the same 404 page (oidc.test.ts runs the flow).
  'GET /sign-in/oidc': async () => ({ path: '/sign-in/oidc', allowed: [404] }),
  'GET /sign-in/oidc/callback': async () => ({ path: '/sign-in/oidc/callback?code=x&state=y', allowed: [404] }),
  'GET /integrity': async () => ({ path: '/integrity' }),
  'POST /integrity/verify': async () => ({ path: '/integrity/verify', form: {}, allowed: [303] }),
  'GET /v1/approvals': async () => ({ path: '/v1/approvals?status=all' }),
  'GET /v1/approvals/:id': async (f) => ({ path: `/v1/approvals/${await pendingForApprover(f)}` }),
  'POST /v1/approvals/:id/approve': async (f) => ({ path: `/v1/approvals/${await pendingForApprover(f)}/approve`, body: { reason: 'checked' } }),
  'POST /v1/approvals/:id/deny': async (f) => ({ path: `/v1/approvals/${await pendingForApprover(f)}/deny`, body: {} }),
  // The stop button (halt.test.ts tests it further): each allowed call halts, or resumes, an agent of its own.
  'GET /halts': async () => ({ path: '/halts' }),
  'POST /halts': async () => ({ path: '/halts', form: { agent: `matrix-${randomUUID()}`, action: 'halt', reason: 'matrix' }, allowed: [303] }),
  'GET /v1/agents/:agent/halt': async () => ({ path: '/v1/agents/support-bot/halt' }),
  'POST /v1/agents/:agent/halt': async () => ({ path: `/v1/agents/matrix-${randomUUID()}/halt`, body: { reason: 'matrix' } }),
  'POST /v1/agents/:agent/resume': async (f) => {
    const agent = `matrix-${randomUUID()}`;
    expect((await f.call('POST', `/v1/agents/${agent}/halt`, { key: f.keys.admin, body: { reason: 'matrix' } })).status).toBe(201);
    return { path: `/v1/agents/${agent}/resume`, body: {} };
  },
  'POST /v1/keys/:id/revoke': async (f) => {
    const { record } = await createKey(f.ledger, { role: 'developer', name: 'throwaway' }, { who: 'test', recorder: 'cli' });
    return { path: `/v1/keys/${record.id}/revoke`, body: {} };
  },
};

/** A fresh held call that the fixture's approver key may decide (the server holds a signing key for it beside the ledger). */
async function pendingForApprover(f: ServerFixture): Promise<string> {
  const dir = approverKeysDir(f.ledger.info);
  let key: string;
  try {
    key = loadApproverKey(dir, f.ids.approver).info.verifierKey;
  } catch {
    key = storeApproverKey(dir, f.ids.approver, { name: 'matrix-approver' }).verifierKey;
  }
  return heldRequest(f.ledger, [key]);
}

let exported: string | undefined;

/** One export started by the auditor key and waited for, shared by the export routes' examples. */
async function finishedExport(f: ServerFixture): Promise<string> {
  if (exported !== undefined) return exported;
  let started = await f.call('POST', '/v1/exports', { key: f.keys.auditor, body: { session: f.built.sessions.b } });
  // The POST example's own exports may still be running, up to the server's limit: 409 until one ends.
  for (let i = 0; i < 400 && started.status === 409; i++) {
    await new Promise((r) => setTimeout(r, 25));
    started = await f.call('POST', '/v1/exports', { key: f.keys.auditor, body: { session: f.built.sessions.b } });
  }
  expect(started.status).toBe(202);
  const { id } = (await started.json()) as { id: string };
  for (let i = 0; i < 400; i++) {
    const doc = (await (await f.call('GET', `/v1/exports/${id}`, { key: f.keys.auditor })).json()) as { status: string };
    if (doc.status === 'done') return (exported = id);
    if (doc.status === 'failed') throw new Error(`export failed: ${JSON.stringify(doc)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('the export did not finish');
}

const name = (r: RouteSpec) => `${r.method} ${r.path}`;

describe('route × role matrix', () => {
  const dir = tempDir('witness-server-matrix-');
  let f: ServerFixture;
  const cwd = process.cwd();
  beforeAll(async () => {
    // The server writes export bundles under its working directory: the test's own, not the repository.
    process.chdir(dir);
    f = await serverFixture(dir);
  });
  afterAll(async () => {
    process.chdir(cwd);
    await f.close();
  });

  it('has an example request for every route in the table, and no example for a route that is gone', () => {
    expect(Object.keys(EXAMPLES).sort()).toEqual(routeTable().map(name).sort());
  });

  for (const route of routeTable()) {
    it(`[R-ROLES] ${name(route)}: only ${route.roles === 'public' ? 'anyone (public)' : route.roles.join(', ')} get through; every other role gets 403 and no key gets 401`, async () => {
      const example = EXAMPLES[name(route)];
      expect(example, `no example for ${name(route)}`).toBeDefined();
      for (const who of [...ROLE_LIST, undefined]) {
        const req = await example!(f);
        const headers = { ...(req.headers ?? {}), ...(req.form === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded' }) };
        const res = await f.call(route.method, req.path, {
          key: who === undefined ? undefined : f.keys[who],
          body: req.body,
          headers,
          ...(req.form === undefined ? {} : { raw: new URLSearchParams(req.form).toString() }),
        });
        const label = `${name(route)} as ${who ?? 'no key'} -> ${res.status}`;
        const allowed = route.roles === 'public' || (who !== undefined && route.roles.includes(who));
        if (allowed) {
          expect(req.allowed ?? [200, 201], label).toContain(res.status);
        } else if (route.page === true && who === undefined) {
          // A person without a session: a page sends them to sign in, a form post is refused.
          if (route.method === 'GET') {
            expect(res.status, label).toBe(303);
            expect(res.headers.get('location'), label).toMatch(/^\/sign-in/);
          } else {
            expect(res.status, label).toBe(401);
          }
        } else if (route.page === true) {
          expect(res.status, label).toBe(403);
          expect(res.headers.get('content-type'), label).toMatch(/^text\/html/);
          expect(await res.text(), label).toContain(`A ${who} key may not call`);
        } else if (who === undefined) {
          expect(res.status, label).toBe(401);
          expect((await res.json()) as unknown, label).toMatchObject({ error: { code: 'unauthorized' } });
        } else {
          expect(res.status, label).toBe(403);
          const body = (await res.json()) as { error: { code: string; message: string } };
          expect(body.error.code, label).toBe('forbidden');
          expect(body.error.message, label).toContain(`A ${who} key may not call`);
        }
      }
    });
  }

  it('[R-ROLES] a path or method outside the table is refused: 401 without a key, 403 with any key', async () => {
    for (const [method, path] of [
      ['GET', '/v1/nothing-here'],
      ['DELETE', '/v1/events'],
      ['PUT', '/v1/keys'],
      ['GET', '/sessions/elsewhere'],
    ] as const) {
      expect((await f.call(method, path)).status, `${method} ${path}`).toBe(401);
      for (const role of ROLE_LIST) {
        const res = await f.call(method, path, { key: f.keys[role] });
        expect(res.status, `${method} ${path} as ${role}`).toBe(403);
        expect(((await res.json()) as { error: { code: string } }).error.code).toBe('forbidden');
      }
    }
  });

  it('[R-ROLES] a key that is not one the server issued, or a malformed header, gets 401', async () => {
    const forged = f.keys.auditor.slice(0, -4) + 'AAAA';
    for (const header of [`Bearer ${forged}`, `Bearer wk_0000000000000000_${'A'.repeat(43)}`, 'Basic abc', 'Bearer', f.keys.auditor]) {
      const res = await f.app.request('/v1/checkpoints', { headers: { authorization: header } });
      expect(res.status, header).toBe(401);
    }
  });
});
