import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { BIN, REPO_ROOT, readEvents, verifyFile } from '../helpers/ledger.js';
import { requireBuild } from '../helpers/gateway.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/**
 * bin/witness.js runs `witness hook` from its bundle (dist/hook/hook.cjs and its code cache, made
 * by scripts/bundle-hook.mjs in `npm run build`). The same Claude Code payloads go through the bundle and through the
 * compiled command it replaces (dist/cli/commands/hook-main.js), each into its own ledger: the
 * answers must be byte for byte the same and the ledgers must hold the same events (kinds,
 * fields, identity, order, parents), apart from what is random or clock-made.
 */

requireBuild();
const BUNDLE = path.join(REPO_ROOT, 'dist', 'hook', 'hook.cjs');
const COMPILED = path.join(REPO_ROOT, 'dist', 'cli', 'commands', 'hook-main.js');
if (!fs.existsSync(BUNDLE) || fs.statSync(BUNDLE).mtimeMs < fs.statSync(COMPILED).mtimeMs) {
  throw new Error('dist/hook/ is missing or older than dist/cli/: run `npm run build` (tsc, then scripts/bundle-hook.mjs) before these tests.');
}

const FIX = path.join(REPO_ROOT, 'test', 'fixtures', 'hooks', 'claude-code');
const fixture = (name: string): string => fs.readFileSync(path.join(FIX, `${name}.json`), 'utf8');
const dir = tempDir('witness-hook-fast-');
const policyFile = path.join(dir, 'policy.yaml');
fs.writeFileSync(
  policyFile,
  [
    'version: 1',
    'default: allow',
    'rules:',
    '  - id: no-rm-rf',
    '    match: { tool: Bash }',
    '    when: args.command contains "rm -rf"',
    '    effect: deny',
    '    reason: Recursive deletes are not allowed.',
    '  - id: issues-need-review',
    '    match: { server: github, tool: create_issue }',
    '    effect: review',
    '',
  ].join('\n'),
);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** What bin/witness.js does, with the compiled command instead of the bundle. */
const COMPILED_MAIN = `const m = await import(${JSON.stringify(pathToFileURL(COMPILED).href)});
m.guardStandardStreams();
process.exitCode = await m.main(['node', 'witness', ...process.argv.slice(1)]);`;

function run(entry: 'bundle' | 'compiled', payload: string, args: string[], nodeArgs: string[] = []): Promise<Run> {
  const argv = entry === 'bundle' ? [...nodeArgs, BIN, 'hook', 'claude-code', ...args] : [...nodeArgs, '--input-type=module', '-e', COMPILED_MAIN, 'hook', 'claude-code', ...args];
  return new Promise((resolve) => {
    const child = spawn(process.execPath, argv, { cwd: dir, env: { ...process.env, WITNESS_STORE: '' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => void (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => void (stderr += c.toString()));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(payload);
  });
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

/**
 * An event as both entries must have written it: ids become the position of the event they name,
 * times, salted digests (random salts) and hashes (over those) become placeholders, the process id goes; everything
 * else (kind, stream, seq, agent, recorder, resource, action, outcome, policy, data) stays.
 */
function comparable(events: Awaited<ReturnType<typeof readEvents>>): unknown[] {
  const posOf = new Map(events.map((e) => [e.id, e.pos]));
  const norm = (v: unknown, key = ''): unknown => {
    if (typeof v === 'string') {
      if (UUID.test(v)) return posOf.has(v) ? `<event ${posOf.get(v)}>` : '<uuid>';
      if (ISO_TIME.test(v)) return '<time>';
      if (/(salt|digest|hash)$/.test(key) && /^[0-9a-f]{64}$/.test(v)) return `<${key}>`;
      // Messages that quote an approval request id or a time limit carry the id in their text.
      return v.replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, (id) => (posOf.has(id) ? `<event ${posOf.get(id)}>` : '<uuid>'));
    }
    if (Array.isArray(v)) return v.map((x) => norm(x, key));
    if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, norm(x, k)]));
    return v;
  };
  return events.map(({ id: _id, hash: _hash, prev: _prev, salt: _salt, payload_digest: _pd, ts: _ts, source, ...rest }) => ({
    ...(norm(rest) as object),
    source: { ...source, process: '<pid>' },
  }));
}

/** The answer with the approval request id (logged on stderr and quoted in a refusal) made comparable. */
const answer = (r: Run): Run => ({ ...r, stdout: r.stdout.replace(UUID_ANYWHERE, '<uuid>'), stderr: r.stderr.replace(UUID_ANYWHERE, '<uuid>') });
const UUID_ANYWHERE = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;

describe('witness hook from its bundle', () => {
  it('is what bin/witness.js runs: no compiled module of dist/ and none of zod, yaml, uuid or commander is loaded', async () => {
    const seen = path.join(dir, 'loaded.txt');
    const hooks = path.join(dir, 'record-loads.mjs');
    fs.writeFileSync(
      hooks,
      `import fs from 'node:fs';\nexport async function load(url, context, next) {\n  fs.appendFileSync(${JSON.stringify(seen)}, url + '\\n');\n  return next(url, context);\n}\n`,
    );
    const register = path.join(dir, 'register.mjs');
    fs.writeFileSync(register, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`);
    const r = await run('bundle', fixture('pre-tool-use-bash'), ['--agent', 'dev-laptop', '--store', `sqlite:${tempDb(dir)}`, '--policy', policyFile], ['--import', pathToFileURL(register).href]);
    expect(r).toEqual({ code: 0, stdout: '', stderr: '' });
    const loaded = fs.readFileSync(seen, 'utf8').trim().split('\n');
    expect(loaded).toContain(pathToFileURL(BIN).href);
    expect(loaded.filter((u) => u.includes('/dist/'))).toEqual([]);
    expect(loaded.filter((u) => /node_modules\/(zod|yaml|uuid|commander|protobufjs|@opentelemetry)\//.test(u))).toEqual([]);
  }, 30_000);

  it('comes with a V8 code cache that this node accepts, so the bundle is not parsed again on each call', () => {
    const check = `const fs = require('node:fs'), vm = require('node:vm'), M = require('node:module'); const f = ${JSON.stringify(BUNDLE)};
const s = new vm.Script(M.wrap(fs.readFileSync(f, 'utf8')), { filename: f, cachedData: fs.readFileSync(f + '.cache') });
process.stdout.write(String(s.cachedDataRejected));`;
    expect(execFileSync(process.execPath, ['-e', check]).toString()).toBe('false');
  });

  it('answers and records a whole session exactly as the compiled command does: allowed, denied, reviewed until expiry, results, the end', async () => {
    const dbs = { bundle: tempDb(dir), compiled: tempDb(dir) };
    const steps: Array<[string, string[]]> = [
      ['session-start', []],
      ['user-prompt-submit', []],
      ['pre-tool-use-bash', []],
      ['pre-tool-use-bash-rm', []],
      ['pre-tool-use-write', []],
      ['post-tool-use-write', []],
      ['pre-tool-use-mcp', ['--review-timeout', '300ms']],
      ['session-end', []],
    ];
    for (const [name, extra] of steps) {
      const answers: Run[] = [];
      for (const entry of ['bundle', 'compiled'] as const) {
        answers.push(answer(await run(entry, fixture(name), ['--agent', 'dev-laptop', '--store', `sqlite:${dbs[entry]}`, '--policy', policyFile, ...extra])));
      }
      expect({ name, ...answers[0] }).toEqual({ name, ...answers[1] });
    }
    const [bundled, compiled] = [await readEvents(dbs.bundle), await readEvents(dbs.compiled)];
    expect(bundled.map((e) => e.kind)).toEqual([
      'session.start',
      'note',
      'note',
      'tool.call',
      'policy.decision',
      'tool.call',
      'policy.decision',
      'tool.result',
      'tool.call',
      'policy.decision',
      'tool.result',
      'tool.call',
      'policy.decision',
      'approval.request',
      'approval.decision',
      'tool.result',
      'note',
      'session.end',
    ]);
    expect(comparable(bundled)).toEqual(comparable(compiled));
    for (const db of [dbs.bundle, dbs.compiled]) expect((await verifyFile(db)).ok).toBe(true);
  }, 90_000);

  it('fails as the compiled command does, in one sentence and as --fail says, on a corrupt ledger, unreachable ones (SQLite, PostgreSQL), a bad policy and a bad payload', async () => {
    const corrupt = path.join(dir, 'corrupt.db');
    fs.writeFileSync(corrupt, Buffer.alloc(8192, 0x5a));
    fs.writeFileSync(path.join(dir, 'not-a-dir'), 'a file, so no directory can be made here');
    const unreachable = path.join(dir, 'not-a-dir', 'sub', 'w.db');
    const badPolicy = path.join(dir, 'bad-policy.yaml');
    fs.writeFileSync(badPolicy, 'version: 1\nrules: [ {id: x, effect: explode\n');
    const cases: Array<[string, string, string[]]> = [
      ['corrupt ledger', fixture('pre-tool-use-bash'), ['--store', `sqlite:${corrupt}`]],
      ['unreachable ledger', fixture('pre-tool-use-bash'), ['--store', `sqlite:${unreachable}`]],
      ['missing policy', fixture('pre-tool-use-bash'), ['--store', `sqlite:${path.join(dir, 'policy-missing.db')}`, '--policy', path.join(dir, 'missing.yaml')]],
      ['broken policy', fixture('pre-tool-use-bash'), ['--store', `sqlite:${path.join(dir, 'policy-broken.db')}`, '--policy', badPolicy]],
      ['not JSON', 'not json', ['--store', `sqlite:${path.join(dir, 'not-json.db')}`]],
      // The PostgreSQL driver and pg are loaded only for such a store, by a require inside the bundle.
      ['unreachable PostgreSQL', fixture('pre-tool-use-bash'), ['--store', 'postgres://witness:secret@127.0.0.1:1/witness']],
    ];
    for (const [what, payload, args] of cases) {
      for (const fail of ['closed', 'open']) {
        const [b, c] = [await run('bundle', payload, ['--agent', 'dev-laptop', ...args, '--fail', fail]), await run('compiled', payload, ['--agent', 'dev-laptop', ...args, '--fail', fail])];
        expect({ what, fail, ...b }).toEqual({ what, fail, ...c });
        // Witness's own complaint is one line on stderr; a refusal Claude Code reads from stderr (exit 2) may follow it.
        const complaints = b.stderr.split('\n').filter((l) => l.startsWith('witness hook: '));
        expect({ what, fail, complaints: complaints.length }).toEqual({ what, fail, complaints: b.stderr === '' ? 0 : 1 });
        if (fail === 'open') expect({ what, code: b.code, stdout: b.stdout }).toEqual({ what, code: 0, stdout: '' });
        else if (what !== 'not JSON') expect({ what, decision: JSON.parse(b.stdout).hookSpecificOutput.permissionDecision }).toEqual({ what, decision: 'deny' });
        else expect(b.code).toBe(2);
      }
    }
    const [missing, broken] = [await readEvents(path.join(dir, 'policy-missing.db')), await readEvents(path.join(dir, 'policy-broken.db'))];
    expect(broken.map((e) => e.kind)).toEqual(missing.map((e) => e.kind));
    expect(broken.filter((e) => e.kind === 'error').map((e) => (e.data as { code?: string }).code)).toEqual(['policy_unavailable', 'policy_unavailable', 'policy_unavailable', 'policy_unavailable']);
  }, 90_000);
});
