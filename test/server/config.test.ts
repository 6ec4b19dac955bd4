import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { WitnessError } from '../../src/core/index.js';
import { loadServerConfig, parseServerConfig } from '../../src/server/index.js';
import { tempDir } from '../helpers/tmp.js';

const GOOD = `
public_url: https://witness.example.com
oidc:
  issuer: https://login.example.com/realms/corp
  client_id: witness
  client_secret_env: WITNESS_OIDC_SECRET
  scopes: [openid, profile, groups]
  roles:
    claim: groups
    map:
      auditors: auditor
      approvers: approver
      devs: developer
`;

function refusal(text: string, env: Record<string, string | undefined> = { WITNESS_OIDC_SECRET: 's3cret' }): WitnessError {
  try {
    parseServerConfig(text, { source: 'server.yaml', env });
  } catch (e) {
    if (e instanceof WitnessError) return e;
    throw e;
  }
  throw new Error('the config was accepted');
}

describe('server config file', () => {
  it('reads an oidc section: the secret from the environment, the redirect URL from public_url, the role map in the order written', () => {
    const config = parseServerConfig(GOOD, { source: 'server.yaml', env: { WITNESS_OIDC_SECRET: 's3cret' } });
    expect(config.oidc).toMatchObject({
      issuer: 'https://login.example.com/realms/corp',
      clientId: 'witness',
      clientSecret: 's3cret',
      clientAuth: 'client_secret_basic',
      redirectUri: 'https://witness.example.com/sign-in/oidc/callback',
      scopes: ['openid', 'profile', 'groups'],
      label: 'login.example.com',
      roleClaim: 'groups',
    });
    expect(config.oidc!.roleMap).toEqual([
      { value: 'auditors', role: 'auditor' },
      { value: 'approvers', role: 'approver' },
      { value: 'devs', role: 'developer' },
    ]);
  });

  it('keeps the written order of the role map even for values that look like numbers', () => {
    const config = parseServerConfig(
      `oidc:\n  issuer: https://idp.example\n  client_id: w\n  redirect_uri: https://w.example/sign-in/oidc/callback\n  roles:\n    claim: gid\n    map:\n      "900": auditor\n      "12": developer\n`,
      { source: 'server.yaml', env: {} },
    );
    expect(config.oidc!.roleMap.map((r) => r.value)).toEqual(['900', '12']);
    // No secret: a public client, which PKCE alone protects.
    expect(config.oidc!.clientAuth).toBe('none');
  });

  it('reads the client secret from a file named relative to the config file', () => {
    const dir = tempDir('witness-config-');
    fs.writeFileSync(path.join(dir, 'oidc-secret'), 'from-a-file\n', { mode: 0o600 });
    const file = path.join(dir, 'server.yaml');
    fs.writeFileSync(file, GOOD.replace('client_secret_env: WITNESS_OIDC_SECRET', 'client_secret_file: oidc-secret'));
    expect(loadServerConfig(file, {}).oidc!.clientSecret).toBe('from-a-file');
  });

  it('refuses a bad config file in one sentence naming the file, line and field', () => {
    const cases: Array<[string, RegExp, Record<string, string | undefined>?]> = [
      [GOOD.replace('  client_id: witness\n', ''), /^server\.yaml line 3: oidc\.client_id is missing\.$/],
      [GOOD.replace('issuer: https://login.example.com/realms/corp', 'issuer: login.example.com'), /^server\.yaml line 4: oidc\.issuer must be an https URL/],
      [GOOD.replace('issuer: https://login.example.com/realms/corp', 'issuer: http://login.example.com'), /oidc\.issuer must be an https URL \(http only for a loopback address/],
      [GOOD.replace('devs: developer', 'bots: agent'), /^server\.yaml line 13: oidc\.roles\.map\.bots may not map to agent: a person can be a developer, approver, auditor or admin\.$/],
      [GOOD.replace('devs: developer', 'devs: superuser'), /^server\.yaml line 13: oidc\.roles\.map\.devs must be developer, approver, auditor or admin, not "superuser"\.$/],
      [GOOD.replace('scopes: [openid, profile, groups]', 'scopes: [profile, groups]'), /oidc\.scopes must include openid/],
      [GOOD.replace('  client_id', '  clientid'), /oidc has an unknown key "clientid"; did you mean "client_id"\?/],
      [GOOD, /oidc\.client_secret_env names WITNESS_OIDC_SECRET, which is not set/, {}],
      [GOOD.replace('public_url: https://witness.example.com\n', ''), /oidc\.redirect_uri is missing: set it, or set public_url/],
      [
        GOOD.replace('  client_id: witness\n', '  client_id: witness\n  redirect_uri: https://witness.example.com/callback\n'),
        /^server\.yaml line 6: oidc\.redirect_uri must end in \/sign-in\/oidc\/callback, the path this server answers the provider on\.$/,
      ],
      [GOOD.replace('client_secret_env: WITNESS_OIDC_SECRET', 'client_secret_env: WITNESS_OIDC_SECRET\n  client_secret: inline'), /give the client secret one way only/],
      [GOOD.replace('    map:\n      auditors: auditor\n      approvers: approver\n      devs: developer\n', '    map: {}\n'), /oidc\.roles\.map must map at least one claim value to a role/],
      ['oidc: [1, 2\n', /^server\.yaml line \d+: not valid YAML/],
      ['', /^server\.yaml line 1: the file is empty/],
    ];
    for (const [text, expected, env] of cases) {
      const e = refusal(text, env);
      expect(e.code, text).toBe('invalid_argument');
      expect(e.message, text).toMatch(expected);
      // One sentence: no line breaks, one full stop at the end.
      expect(e.message, text).not.toContain('\n');
    }
  });

  it('says a missing config file is missing', () => {
    expect(() => loadServerConfig('/nonexistent/server.yaml', {})).toThrow(/^\/nonexistent\/server\.yaml: no such config file\.$/);
  });
});
