import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseVtt } from '../../../src/capture/index.js';
import {
  artifactPath,
  buildSessionModel,
  chaptersPath,
  chaptersVtt,
  contentSecurityPolicy,
  overviewBuckets,
  parseSessionFilters,
  renderApprovalsPage,
  renderErrorPage,
  renderIntegrityPage,
  renderOverviewPage,
  renderSessionPage,
  renderSessionsPage,
  renderSignInPage,
  sessionPath,
  sessionRow,
  type Chrome,
} from '../../../src/server/views/index.js';
import { PNG_BYTES } from '../../helpers/ledger.js';
import { tempDir } from '../../helpers/tmp.js';
import { ALL_HOSTILE, HOSTILE, buildFixture, type Fixture } from './fixture.js';
import { URL_ATTRS, VIEW_ELEMENTS, allowedUrl, scanTags } from './html-scan.js';

const dir = tempDir('witness-views-hostile-');
let fx: Fixture;
let pages: Record<string, string>;

/** A signed-in name from an OpenID provider's claims is outside data too. */
const chrome: Chrome = { user: { name: `eve ${HOSTILE.quote}${HOSTILE.script}`, role: 'auditor' }, csrfToken: `tok${HOSTILE.quote}` };

beforeAll(async () => {
  fx = await buildFixture(dir, { leak: 'http://127.0.0.1:9/leak', png: { before: PNG_BYTES, after: PNG_BYTES }, mp4: Buffer.from('x'), captions: 'WEBVTT\n' });
  const row = sessionRow(fx.events);
  pages = {
    session: renderSessionPage(buildSessionModel(fx.events, { chrome, integrity: { state: 'failed', text: `Failed at ${ALL_HOSTILE}` } })),
    sessions: renderSessionsPage({
      chrome,
      filters: { agent: ALL_HOSTILE, resource: HOSTILE.jsUrl, since: `2026-11-23T10:00${HOSTILE.quote}` },
      sessions: [row, { ...row, id: `../../${ALL_HOSTILE}`, endReason: ALL_HOSTILE }],
      next: ALL_HOSTILE,
      cursor: HOSTILE.jsUrl,
    }),
    approvals: renderApprovalsPage({
      chrome,
      now: '2026-11-23T10:01:00.000Z',
      flash: { kind: 'error', text: ALL_HOSTILE },
      pending: [
        {
          requestId: `${HOSTILE.quote}${HOSTILE.script}`,
          session: `javascript:alert(1)//${HOSTILE.quote}`,
          agent: ALL_HOSTILE,
          principal: ALL_HOSTILE,
          tool: ALL_HOSTILE,
          server: ALL_HOSTILE,
          arguments: { html: ALL_HOSTILE, [HOSTILE.script]: HOSTILE.jsUrl, isEscaped: true, toString: HOSTILE.img },
          argumentsDigest: `${'a'.repeat(64)}${HOSTILE.quote}`,
          rule: ALL_HOSTILE,
          policyVersion: ALL_HOSTILE,
          reason: ALL_HOSTILE,
          requestedAt: ALL_HOSTILE,
          expiresAt: '2026-11-23T10:05:00.000Z',
          approvers: [ALL_HOSTILE],
        },
      ],
    }),
    integrity: renderIntegrityPage({
      chrome,
      ledger: { origin: ALL_HOSTILE, size: 3, location: ALL_HOSTILE },
      checkpoint: { id: 1, size: 3, ts: ALL_HOSTILE, rootHex: ALL_HOSTILE },
      signers: [{ name: ALL_HOSTILE, fingerprint: ALL_HOSTILE, source: 'ledger' }],
      last: {
        at: ALL_HOSTILE,
        ok: false,
        unverifiable: false,
        events: 3,
        checkpoints: 1,
        sealedSize: 3,
        unsealed: 0,
        firstFailure: ALL_HOSTILE,
        failures: 1,
        trust: ALL_HOSTILE,
        signers: [],
        warnings: [ALL_HOSTILE],
      },
    }),
    overview: renderOverviewPage({
      chrome,
      from: '2026-11-23T10:00:00.000Z',
      to: '2026-11-23T10:03:00.000Z',
      buckets: overviewBuckets(fx.events, { from: '2026-11-23T10:00:00.000Z', to: '2026-11-23T10:03:00.000Z', buckets: 6 }),
      totals: { events: 1, sessions: 1, toolCalls: 1, denials: 1, approvals: 1, pendingApprovals: 1, recordingErrors: 1 },
    }),
    signIn: renderSignInPage({ csrfToken: ALL_HOSTILE, oidc: { label: ALL_HOSTILE }, error: ALL_HOSTILE, next: `/x${HOSTILE.quote}` }),
    error: renderErrorPage({ status: 400, code: ALL_HOSTILE, message: ALL_HOSTILE, chrome }),
  };
});
afterAll(async () => {
  await fx?.ledger.close();
});

describe('hostile recorded text renders as inert text on every page', () => {
  const names = ['session', 'sessions', 'approvals', 'integrity', 'overview', 'signIn', 'error'];

  it.each(names)('[R-VIEWER-INERT] %s: every tag in the page is one the views write, with no handler, style or foreign URL attribute', (name) => {
    const tags = scanTags(pages[name]!);
    expect(tags.length).toBeGreaterThan(10);
    for (const t of tags) {
      expect(VIEW_ELEMENTS.has(t.name), `<${t.name}> at ${t.at}`).toBe(true);
      for (const [attr, value] of t.attrs) {
        expect(attr.startsWith('on'), `${attr} on <${t.name}>`).toBe(false);
        expect(['style', 'srcdoc', 'formaction', 'xlink:href', 'srcset', 'ping'].includes(attr), `${attr} on <${t.name}>`).toBe(false);
        if (URL_ATTRS.has(attr)) expect(allowedUrl(attr, value ?? ''), `${attr}="${value}" on <${t.name}>`).toBe(true);
      }
    }
  });

  it.each(names.filter((n) => n !== 'overview'))('[R-VIEWER-INERT] %s: the hostile strings are shown, escaped, as text', (name) => {
    const html = pages[name]!;
    expect(html).toContain('&lt;script&gt;alert(&quot;script-1&quot;)&lt;/script&gt;');
    expect(html).not.toContain('<script');
    expect(html).not.toContain('<iframe');
    expect(html).not.toContain('<style');
    expect(html).not.toMatch(/<img src=(?!"\/v1\/artifacts\/)/);
    expect(html).not.toMatch(/<svg onload/i);
  });

  it('the session page shows the tool result whole, including an object claiming to be already escaped', () => {
    const html = pages['session']!;
    // hono/jsx prints an object with `isEscaped` as is; the views stringify every recorded value first.
    expect(html).toContain('&quot;isEscaped&quot;: true');
    expect(html).toContain('&lt;h1&gt;Refunded&lt;/h1&gt;');
    expect(html).not.toContain('[object Object]');
  });

  it('[R-VIEWER-INERT] recorded URLs (a page URL, a javascript: callback) are text only, never a link', () => {
    const tags = scanTags(pages['session']!);
    const urls = tags.flatMap((t) => t.attrs.filter(([a]) => URL_ATTRS.has(a)).map(([, v]) => v ?? ''));
    expect(urls.some((u) => u.includes('javascript') || u.includes('127.0.0.1') || u.includes('evil'))).toBe(false);
    expect(pages['session']).toContain('<span class="mono">javascript:alert(&quot;url-4&quot;)</span>');
  });

  it('a hostile session id becomes an encoded query value, and a forged digest or event id becomes no URL at all', () => {
    expect(sessionPath('../../x?y#z')).toBe('/session?id=..%2F..%2Fx%3Fy%23z');
    expect(sessionPath('javascript:alert(1)')).toBe('/session?id=javascript%3Aalert%281%29');
    expect(artifactPath('A'.repeat(64))).toBeUndefined();
    expect(artifactPath(`${'a'.repeat(64)}/../x`)).toBeUndefined();
    expect(artifactPath('a'.repeat(64))).toBe(`/v1/artifacts/${'a'.repeat(64)}`);
    expect(chaptersPath('../../etc')).toBeUndefined();
  });

  it('[R-VIEWER-INERT] characters that hide or reorder text (bidi controls, zero-width space, controls) are shown as visible stand-ins', () => {
    const tool = 'refund\u202Efdp.exe';
    const html = renderApprovalsPage({
      chrome,
      now: '2026-11-23T10:01:00.000Z',
      pending: [
        {
          requestId: 'r1',
          session: 's\u2066x',
          agent: 'support\u200Bbot',
          tool,
          arguments: { amount: '650\u0007', note: 'a\u2028b\tc\nd' },
          argumentsDigest: 'a'.repeat(64),
          requestedAt: '2026-11-23T10:00:00.000Z',
          approvers: [],
        },
      ],
    });
    expect(html).not.toMatch(/[\u202E\u2066\u200B\u0007\u2028]/);
    expect(html).toContain('refund&lt;U+202E&gt;fdp.exe');
    expect(html).toContain('support&lt;U+200B&gt;bot');
    // JSON.stringify escapes the BEL itself; the line separator, tab and newline come through JSON raw.
    expect(html).toContain('&quot;amount&quot;: &quot;650\\u0007&quot;');
    expect(html).toContain('a&lt;U+2028&gt;b\\tc\\nd');
    expect(html).toContain('/session?id=s%E2%81%A6x');
    expect(renderErrorPage({ status: 400, message: 'bell\u0007 here' })).toContain('bell\u2407 here');
  });

  it('form values echoed back (the filters) stay inside their attribute', () => {
    const inputs = scanTags(pages['sessions']!).filter((t) => t.name === 'input');
    expect(inputs.find((t) => t.attrs.some(([a, v]) => a === 'name' && v === 'agent'))?.attrs).toEqual([
      ['name', 'agent'],
      ['value', ALL_HOSTILE],
      ['maxlength', '512'],
    ]);
  });
});

describe('chapters as WebVTT', () => {
  it('a hostile chapter title stays one cue of plain text: no markup, no forged cue, no forged timing', () => {
    const model = buildSessionModel(fx.events, { chrome });
    const vtt = chaptersVtt(model.video!.chapters);
    expect(vtt.startsWith('WEBVTT\n\n1\n00:00:00.000 --> 00:00:00.500\nOverview\n\n2\n00:00:00.500 --> 00:00:01.500\n')).toBe(true);
    expect(vtt).not.toContain('<script');
    const cues = parseVtt(vtt);
    expect(cues).toHaveLength(3);
    expect(cues[1]).toEqual({ start: 0.5, end: 1.5, text: `Step 1: refund ${HOSTILE.script} WEBVTT 00:00.000 --> 00:09.000` });
  });
});

describe('the page scanner these tests rest on', () => {
  it('fails on markup that did not come from the views: an unquoted attribute, a handler, a script', () => {
    expect(() => scanTags('<p><img src=x onerror=alert(1)></p>')).toThrow(/not a tag the views write/);
    expect(scanTags('<p onmouseover="alert(1)">x</p>')[0]?.attrs).toEqual([['onmouseover', 'alert(1)']]);
    expect(scanTags('<script>alert(1)</script>').map((t) => t.name)).toEqual(['script', 'script']);
    expect(VIEW_ELEMENTS.has('script')).toBe(false);
    expect(allowedUrl('href', 'javascript:alert(1)')).toBe(false);
    expect(allowedUrl('href', '//evil.example/x')).toBe(false);
    expect(allowedUrl('src', 'http://127.0.0.1:9/leak')).toBe(false);
  });
});

describe('the Content-Security-Policy', () => {
  it('[R-VIEWER-INERT] allows nothing but same-origin images, media, styles and form posts, and no script at all', () => {
    const directives = Object.fromEntries(
      contentSecurityPolicy()
        .split(';')
        .map((d) => d.trim().split(/\s+/))
        .map(([k, ...v]) => [k, v.join(' ')]),
    );
    expect(directives).toMatchObject({
      'default-src': "'none'",
      'script-src': "'none'",
      'img-src': "'self'",
      'media-src': "'self'",
      'style-src': "'self'",
      'form-action': "'self'",
      'frame-ancestors': "'none'",
      'base-uri': "'none'",
    });
    expect(contentSecurityPolicy()).not.toMatch(/unsafe|data:|\*|http/);
  });
});

describe('the sessions filter form', () => {
  it('reads datetime-local values as UTC, treats empty fields as no filter, and refuses bad input in one sentence', () => {
    expect(parseSessionFilters({ agent: ' support-bot ', resource: '', outcome: 'denied', since: '2026-11-23T10:00', until: '2026-11-24T00:00:30Z' })).toEqual({
      filters: { agent: 'support-bot', outcome: 'denied', since: '2026-11-23T10:00:00.000Z', until: '2026-11-24T00:00:30.000Z' },
    });
    expect(parseSessionFilters({ cursor: 'abc' })).toEqual({ filters: {}, cursor: 'abc' });
    expect(parseSessionFilters({ outcome: 'maybe' })).toEqual({ error: expect.stringMatching(/^The filter outcome .+\.$/) });
    expect(parseSessionFilters({ since: '2026-13-45T99:99' })).toEqual({ error: 'The filter since is not a real date.' });
    expect(parseSessionFilters({ until: '2026-02-30T10:00' })).toEqual({ error: 'The filter until is not a real date.' });
    expect(parseSessionFilters({ since: 'yesterday' })).toEqual({ error: 'The filter since must be a time like 2026-11-23T10:00 (UTC).' });
  });
});
