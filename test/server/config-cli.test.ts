import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, buildLedger, oneSentence, runBin } from '../helpers/ledger.js';
import { tempDir } from '../helpers/tmp.js';

/** `witness serve --config`, run as the built command (dist/). */
describe('witness serve --config', () => {
  const dir = tempDir('witness-serve-config-');
  let child: ChildProcess | undefined;
  afterAll(() => {
    child?.kill('SIGKILL');
  });

  it('refuses a bad config file in one sentence naming the file, line and field, as bad usage, before opening the ledger', async () => {
    const file = path.join(dir, 'bad.yaml');
    fs.writeFileSync(
      file,
      'oidc:\n  issuer: https://idp.example\n  client_id: witness\n  redirect_uri: https://w.example/sign-in/oidc/callback\n  roles:\n    claim: groups\n    map:\n      bots: agent\n',
    );
    const r = await runBin(['serve', '--config', file, '--store', `sqlite:${dir}/none.db`, '--port', '0']);
    expect(r.code).toBe(2);
    expect(oneSentence(r.stderr)).toBe(`${file} line 8: oidc.roles.map.bots may not map to agent: a person can be a developer, approver, auditor or admin.`);
    const missing = await runBin(['serve', '--config', path.join(dir, 'nope.yaml'), '--store', `sqlite:${dir}/none.db`]);
    expect(missing.code).toBe(2);
    expect(oneSentence(missing.stderr)).toContain('nope.yaml: no such config file.');
  });

  it('serves with an oidc section: the sign-in page offers the provider by its label', async () => {
    const built = await buildLedger(dir);
    const file = path.join(dir, 'server.yaml');
    fs.writeFileSync(
      file,
      'public_url: http://127.0.0.1:7350\noidc:\n  issuer: https://idp.example\n  client_id: witness\n  client_secret_env: TEST_OIDC_SECRET\n  label: Corp SSO\n  roles:\n    claim: groups\n    map:\n      auditors: auditor\n',
    );
    child = spawn(process.execPath, [BIN, 'serve', '--config', file, '--store', `sqlite:${built.file}`, '--port', '0'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, TEST_OIDC_SECRET: 's3cret' },
    });
    let stdout = '';
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const url = await new Promise<string>((resolve, reject) => {
      child!.stdout!.on('data', (d: Buffer) => {
        stdout += d.toString();
        const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout);
        if (m) resolve(m[1]!);
      });
      child!.once('exit', (code) => reject(new Error(`witness serve exited ${code}: ${stderr}`)));
    });
    const page = await fetch(`${url}/sign-in`);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('Sign in with Corp SSO (OpenID Connect)');
    expect(html).toContain('href="/sign-in/oidc"');
    expect(stderr).toContain('OpenID Connect sign-in through https://idp.example, returning to http://127.0.0.1:7350/sign-in/oidc/callback.');
    // idp.example does not exist: said at start, the server still serving key sign-in.
    for (let i = 0; i < 100 && !stderr.includes('could not be reached'); i++) await new Promise((r) => setTimeout(r, 100));
    expect(stderr).toContain('witness serve: The OpenID provider https://idp.example could not be reached');
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    child.kill('SIGTERM');
    await new Promise((resolve) => child!.once('exit', resolve));
  });
});
