import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openWitness, Redactor, type Witness } from '../../src/index.js';
import { BUILTIN_PATTERNS, BUILTIN_SECRET_KEYS, HEADER_TEXT_FIELDS, systemWriter } from '../../src/recorder/index.js';
import { verifyLedger } from '../../src/store/index.js';
import { tempDb, tempDir } from '../helpers/tmp.js';
import { driverOf } from '../helpers/ledger.js';

const dir = tempDir('witness-redaction-');
const agent = { id: 'redaction-bot', version: '2.0.0' };

// Fake secrets in the shapes real ones have. Each must never appear in any byte Witness writes.
const OPENAI_KEY = 'sk-proj-Zq8xR2vLm4Tn6Wp0Yb3Kc5Hd7Jf9Gs1A';
const ANTHROPIC_KEY = 'sk-ant-api03-Qw3Er5Ty7Ui9Op1As3Df5Gh7Jk9Lz2Xc4Vb6Nm8';
const BEARER = 'ya29.A0ARrdaM-bearer-Token_Value~1234567890';
const AWS_KEY_ID = 'AKIAQ3EXAMPLEKEY7XYZ';
const JWT = 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJjdXN0b21lci0xMjM0NSIsIm5hbWUiOiJKYW5lIn0.c2lnbmF0dXJlLXBhcnQtb2YtdGhlLWp3dA';
const PEM_BODY = 'MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7PemBodyLine';
const PEM = `-----BEGIN RSA PRIVATE KEY-----\n${PEM_BODY}\nAnotherLineOfKeyMaterialQwErTy1234567890\n-----END RSA PRIVATE KEY-----`;
const PASSWORD = 'correct-horse-battery-staple-42';
const AUTH_HEADER = 'Basic dXNlcjpwYXNzd29yZC1zZWNyZXQ=';
const API_KEY_VALUE = 'plain-api-key-value-9f8e7d6c';
const CUSTOMER_ID = 'CUST-904512';
const SSN = '078-05-1120';

const SECRETS = [OPENAI_KEY, ANTHROPIC_KEY, BEARER, AWS_KEY_ID, JWT, PEM_BODY, PASSWORD, AUTH_HEADER, API_KEY_VALUE, CUSTOMER_ID, SSN];

/** Every file Witness wrote for this ledger: the database, its WAL and shared memory, and artifacts. */
function ledgerFiles(db: string): string[] {
  const files = [db, `${db}-wal`, `${db}-shm`].filter((f) => fs.existsSync(f));
  const artifacts = `${db}.artifacts`;
  if (fs.existsSync(artifacts)) {
    for (const sub of fs.readdirSync(artifacts)) {
      for (const f of fs.readdirSync(path.join(artifacts, sub))) files.push(path.join(artifacts, sub, f));
    }
  }
  return files;
}

/** Which of `secrets` occur anywhere in the bytes of the ledger's files (as UTF-8 or in JSON-escaped form). */
function leakedInFiles(db: string, secrets: readonly string[]): string[] {
  const leaks: string[] = [];
  for (const file of ledgerFiles(db)) {
    const bytes = fs.readFileSync(file);
    for (const s of secrets) {
      const forms = [s, JSON.stringify(s).slice(1, -1)];
      if (forms.some((f) => bytes.includes(Buffer.from(f, 'utf8')))) leaks.push(`${path.basename(file)}: ${s}`);
    }
  }
  return leaks;
}

function rawData(w: Witness): string[] {
  return driverOf(w).database.prepare('SELECT data FROM events ORDER BY pos').pluck().all() as string[];
}

async function open(db: string, extra: Record<string, unknown> = {}) {
  const errors: unknown[] = [];
  const w = await openWitness({
    store: `sqlite:${db}`,
    strict: true,
    onError: (e) => errors.push(e),
    redact: { patterns: [{ name: 'customer-id', pattern: /CUST-\d{6}/ }], keys: ['ssn'] },
    ...extra,
  });
  return { w, errors };
}

describe('redaction at write time', () => {
  it('[R-REDACT] replaces built-in secret patterns and secret-named keys with [REDACTED:...] in every payload before it is written', async () => {
    const db = tempDb(dir);
    const { w, errors } = await open(db);
    const s = await w.session({ agent, purpose: `triage with key ${OPENAI_KEY}`, labels: { token_hint: `Bearer ${BEARER}` } });

    const args = {
      request: {
        url: 'https://api.example.com/v1/refunds',
        headers: { Authorization: AUTH_HEADER, 'X-Trace': 'abc', 'content-type': 'application/json' },
        body: { amount: 50, api_key: API_KEY_VALUE, nested: [{ deeper: [`key=${ANTHROPIC_KEY}`] }] },
      },
      credentials: { password: PASSWORD, user: 'alice' },
    };
    const argsBefore = structuredClone(args);
    await s.tool('billing.refund', args, () => ({ ok: true, echo: `aws ${AWS_KEY_ID} jwt ${JWT}` }));
    // The caller's objects are never mutated.
    expect(args).toEqual(argsBefore);

    await s.llmCall({
      model: 'claude-sonnet',
      input: [
        { role: 'user', content: `my key is ${ANTHROPIC_KEY}, please rotate it` },
        { role: 'tool', content: [{ type: 'text', text: PEM }] },
      ],
      output: { text: `Use the header "Authorization: Bearer ${BEARER}" next time.` },
      systemPrompt: `internal prompt with ${OPENAI_KEY}`,
    });
    await s.note(`customer ${CUSTOMER_ID} asked; jwt=${JWT}`);
    await s.record('note', { text: 'profile', profile: { ssn: SSN, name: 'Jane', apiKey: API_KEY_VALUE } });
    await s.error(new Error(`upstream rejected ${OPENAI_KEY}`));
    await expect(
      s.tool('vault.read', { path: 'kv/prod' }, () => {
        throw new Error(`denied for token Bearer ${BEARER} (${AWS_KEY_ID})`);
      }),
    ).rejects.toThrow(/denied/);
    await s.end({ finalOutput: { summary: `done; rotated ${OPENAI_KEY}`, password: PASSWORD } });

    const data = rawData(w).join('\n');
    for (const secret of SECRETS) expect(data, secret).not.toContain(secret);
    for (const name of ['api-key', 'bearer', 'aws-key', 'jwt', 'private-key', 'key', 'customer-id']) {
      expect(data).toContain(`[REDACTED:${name}]`);
    }

    // The surrounding text and the harmless fields survive unchanged.
    const events = await driverOf(w).readStream(s.id);
    const call = events.find((e) => e.kind === 'tool.call' && e.data?.['tool'] === 'billing.refund')!;
    expect(call.data?.['arguments']).toEqual({
      request: {
        url: 'https://api.example.com/v1/refunds',
        headers: { Authorization: '[REDACTED:key]', 'X-Trace': 'abc', 'content-type': 'application/json' },
        body: { amount: 50, api_key: '[REDACTED:key]', nested: [{ deeper: ['key=[REDACTED:api-key]'] }] },
      },
      credentials: { password: '[REDACTED:key]', user: 'alice' },
    });
    const result = events.find((e) => e.kind === 'tool.result' && e.data?.['tool'] === 'billing.refund')!;
    expect(result.data?.['output']).toEqual({ ok: true, echo: 'aws [REDACTED:aws-key] jwt [REDACTED:jwt]' });
    const llm = events.find((e) => e.kind === 'llm.call')!;
    expect(llm.data?.['input']).toEqual([
      { role: 'user', content: 'my key is [REDACTED:api-key], please rotate it' },
      { role: 'tool', content: [{ type: 'text', text: '[REDACTED:private-key]' }] },
    ]);
    expect(llm.data?.['output']).toEqual({ text: 'Use the header "Authorization: [REDACTED:bearer]" next time.' });
    expect(events.find((e) => e.kind === 'session.start')!.data).toMatchObject({
      purpose: 'triage with key [REDACTED:api-key]',
      labels: { token_hint: '[REDACTED:bearer]' },
    });
    const notes = events.filter((e) => e.kind === 'note').map((e) => e.data);
    expect(notes[0]).toEqual({ text: 'customer [REDACTED:customer-id] asked; jwt=[REDACTED:jwt]' });
    expect(notes[1]).toEqual({ text: 'profile', profile: { ssn: '[REDACTED:key]', name: 'Jane', apiKey: '[REDACTED:key]' } });
    const failed = events.filter((e) => e.kind === 'tool.result' && e.data?.['is_error'] === true);
    expect(failed).toHaveLength(1);
    expect(failed[0]!.data?.['error']).toMatchObject({ message: 'denied for token [REDACTED:bearer] ([REDACTED:aws-key])' });

    // Not in the raw bytes of the database or its WAL either, while open ...
    expect(leakedInFiles(db, SECRETS)).toEqual([]);
    const report = await verifyLedger(driverOf(w));
    expect(report.failures).toEqual([]);
    expect(report.ok).toBe(true);
    expect(errors).toEqual([]);
    await w.close();
    // ... and after the WAL has been checkpointed into the main file.
    expect(leakedInFiles(db, SECRETS)).toEqual([]);
  });

  it('redacts secrets inside a tool output that is spilled to an artifact', async () => {
    const db = tempDb(dir);
    const { w } = await open(db, { spillBytes: 4096 });
    const s = await w.session({ agent });
    const rows = Array.from({ length: 400 }, (_, i) => ({ i, line: `row ${i}`, password: PASSWORD, note: i === 7 ? `leaked ${OPENAI_KEY}` : 'ok' }));
    await s.tool('db.dump', { table: 'users' }, () => rows);
    const result = (await driverOf(w).readStream(s.id)).find((e) => e.kind === 'tool.result')!;
    const ref = result.data?.['output'] as { $artifact: string };
    const stored = JSON.parse((await driverOf(w).readArtifact(ref.$artifact))!.toString('utf8')) as Array<Record<string, unknown>>;
    expect(stored).toHaveLength(400);
    expect(stored[7]).toEqual({ i: 7, line: 'row 7', password: '[REDACTED:key]', note: 'leaked [REDACTED:api-key]' });
    expect(leakedInFiles(db, [PASSWORD, OPENAI_KEY])).toEqual([]);
    expect((await verifyLedger(driverOf(w))).ok).toBe(true);
    await w.close();
  });

  it('applies custom patterns (with or without the g flag) and custom keys, and lets built-ins be turned off', async () => {
    const db = tempDb(dir);
    const { w } = await openWitness({
      store: `sqlite:${db}`,
      strict: true,
      redact: {
        builtins: false,
        patterns: [
          { name: 'ticket', pattern: /TICKET-[0-9]{4}/ },
          { name: 'iban', pattern: /\bDE\d{20}\b/g },
        ],
        keys: ['Internal_Notes'],
      },
    }).then((w) => ({ w }));
    const s = await w.session({ agent });
    const r = await s.record('note', {
      text: 'TICKET-1234 and TICKET-5678 refund to DE89370400440532013000',
      internal_notes: { anything: 'here' },
      kept: OPENAI_KEY,
    });
    const stored = (await driverOf(w).getEvent(r!.id))!.data;
    expect(stored).toEqual({
      text: '[REDACTED:ticket] and [REDACTED:ticket] refund to [REDACTED:iban]',
      internal_notes: '[REDACTED:key]',
      // Built-ins were turned off, so the key-shaped string stays (this is what "not recommended" means).
      kept: OPENAI_KEY,
    });
    expect(leakedInFiles(db, ['TICKET-1234', 'TICKET-5678', 'DE89370400440532013000'])).toEqual([]);
    // Positive control: the byte scan does find a string that was written.
    expect(leakedInFiles(db, [OPENAI_KEY]).length).toBeGreaterThan(0);
    expect((await verifyLedger(driverOf(w))).ok).toBe(true);
    await w.close();
  });

  it('redacts secrets carried by objects that serialise through toJSON (URL, class instances)', async () => {
    const db = tempDb(dir);
    const { w } = await open(db);
    const s = await w.session({ agent });
    class OutgoingRequest {
      constructor(readonly headers: Record<string, string>) {}
      toJSON() {
        return { headers: this.headers, password: PASSWORD };
      }
    }
    await s.record('note', {
      text: 'calling upstream',
      url: new URL(`https://api.example.com/v1/models?key=${ANTHROPIC_KEY}`),
      request: new OutgoingRequest({ authorization: AUTH_HEADER }),
    });
    await s.tool('http.get', { url: new URL(`https://x.example/?k=${OPENAI_KEY}`) }, () => 'ok');
    await w.flush();
    const data = rawData(w).join('\n');
    expect(data).not.toContain(ANTHROPIC_KEY);
    expect(data).not.toContain(OPENAI_KEY);
    expect(data).not.toContain(AUTH_HEADER);
    expect(data).not.toContain(PASSWORD);
    await w.close();
  });

  it('redacts values under secret-looking key names in other common spellings', async () => {
    const db = tempDb(dir);
    const { w } = await open(db);
    const s = await w.session({ agent });
    const awsSecret = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
    const sessionToken = 'FwoGZXIvYXdzEXAMPLEsessionTOKENvalue0123456789';
    const dbPassword = 'pg-pass-Very$ecret-991';
    const envKey = 'company-internal-key-0a1b2c3d4e5f';
    await s.record('note', {
      text: 'credentials in use',
      // The shape the AWS SDK hands around, and an environment dump.
      aws: { accessKeyId: AWS_KEY_ID, secretAccessKey: awsSecret, sessionToken },
      env: { DB_PASSWORD: dbPassword, OPENAI_API_KEY: envKey, HOME: '/root' },
    });
    await w.flush();
    const data = rawData(w).join('\n');
    const leaked = [awsSecret, sessionToken, dbPassword, envKey].filter((x) => data.includes(x));
    expect(leaked).toEqual([]);
    expect(data).toContain('/root');
    await w.close();
  });
});

describe('redaction of the shapes secrets also take', () => {
  it('[R-REDACT] redacts header strings, Basic auth, URL passwords, secret query parameters and arrays under secret keys', async () => {
    const db = tempDb(dir);
    const w = await openWitness({ store: `sqlite:${db}`, strict: true });
    const secrets = ['hunter2-db-pass', 'YWRtaW46aHVudGVyMg==', 'tok-3f9a8b7c6d5e', 'k-1234567890', 'S3cretPass'];
    try {
      const s = await w.session({ agent, user: 'alice@example.com password=hunter2-db-pass' });
      await s.tool(
        'db.query',
        {
          dsn: 'postgres://admin:hunter2-db-pass@db.internal:5432/app',
          url: 'https://api.example.com/v1?access_token=tok-3f9a8b7c6d5e&page=2',
          headers: { Authorization: 'Basic YWRtaW46aHVudGVyMg==', 'X-Api-Key': ['k-1234567890'] },
          usage: { input_tokens: 12, output_tokens: 3 },
        },
        () => ({ ok: true }),
        { resource: 'https://user:S3cretPass@db/?api_key=tok-3f9a8b7c6d5e' },
      );
      const call = (await driverOf(w).readStream(s.id)).find((e) => e.kind === 'tool.call')!;
      expect(call.data?.['arguments']).toEqual({
        dsn: 'postgres://admin:[REDACTED:url-credentials]@db.internal:5432/app',
        url: 'https://api.example.com/v1?access_token=[REDACTED:query-secret]&page=2',
        headers: { Authorization: '[REDACTED:key]', 'X-Api-Key': '[REDACTED:key]' },
        // Token counts are not secrets: `tokens` is not a secret key.
        usage: { input_tokens: 12, output_tokens: 3 },
      });
      expect(call.resource).toBe('https://user:[REDACTED:url-credentials]@db/?api_key=[REDACTED:query-secret]');
    } finally {
      await w.close();
    }
    expect(leakedInFiles(db, secrets)).toEqual([]);
  });

  it('[R-REDACT] redacts every free-text header field a caller supplies (approvals, principal, delegation, policy, agent, labels of the record) and leaves ids, digests, kinds and times alone', async () => {
    const db = tempDb(dir);
    const w = await openWitness({ store: `sqlite:${db}`, strict: true, env: 'prod password=hdr-env-qwz', tenant: 'acme token=hdr-tenant-qwz-77' });
    const digest = 'a'.repeat(64);
    const ts = '2026-11-23T10:00:00.123Z';
    const secrets = [
      'hdr-reason-qwz',
      'hdr-meaning-qwz',
      'hdr-role-qwz',
      'hdr-approver-qwz',
      'hdr-principal-qwz',
      'hdr-deleg-id-qwz',
      'hdr-issuer-qwz',
      'hdr-scope-qwz',
      'hdr-rule-qwz',
      'hdr-code-qwz-1234',
      'hdr-policy-approver-qwz',
      'hdr-cred-qwz',
      'hdr-version-qwz',
      'hdr-class-qwz',
      'hdr-category-qwz',
      'hdr-art-role-qwz',
      'hdr-art-name-qwz',
      'hdr-env-qwz',
      'hdr-tenant-qwz-77',
      'hdr-recorder-qwz',
    ];
    let stream = '';
    try {
      // Through Witness's own write path: the SDK's public one refuses principal, policy and
      // approvals (what a person or the gateway did), which the gateway and the CLI do write.
      const s = await systemWriter(w, 'gateway').session({ agent: { id: 'hdr-bot', version: 'v1 passwd=hdr-version-qwz', credential: 'key-id-7 sk-proj-hdrcredqwz0123456789' } });
      stream = s.id;
      const ref = await w.storeArtifact(Buffer.from('x'), 'text/plain', 'role token=hdr-art-role-qwz');
      await s.record(
        'note',
        { text: 'released' },
        {
          principal: { id: 'https://alice:hdr-principal-qwz@idp.example/alice', kind: 'human' },
          delegation: { id: 'grant api_key=hdr-deleg-id-qwz', issuer: 'https://svc:hdr-issuer-qwz@idp.example', scopes: ['refunds:write', 'secret=hdr-scope-qwz'], expires: ts },
          policy: { decision: 'allow', rule: 'r password=hdr-rule-qwz', reason_code: 'token=hdr-code-qwz-1234', version: digest, mode: 'enforce', approver: 'bob pin=hdr-policy-approver-qwz' },
          approvals: [
            {
              approver: 'carol pwd=hdr-approver-qwz',
              role: 'lead secret=hdr-role-qwz',
              decision: 'approved',
              reason: 'ok password=hdr-reason-qwz',
              meaning: 'approved; token=hdr-meaning-qwz',
              args_digest: digest,
              ts,
            },
          ],
          record_class: 'audit-log passwd=hdr-class-qwz',
          data_categories: ['financial', 'apikey=hdr-category-qwz'],
          artifacts: [{ ...ref, name: 'dump.txt password=hdr-art-name-qwz' }],
          recorder: { kind: 'sdk', id: 'sdk token=hdr-recorder-qwz' },
        },
      );
      await w.flush();
      const ev = (await driverOf(w).readStream(s.id)).find((e) => e.kind === 'note')!;
      expect(ev.approvals).toEqual([
        {
          approver: 'carol pwd=[REDACTED:assigned-secret]',
          role: 'lead secret=[REDACTED:assigned-secret]',
          decision: 'approved',
          reason: 'ok password=[REDACTED:assigned-secret]',
          meaning: 'approved; token=[REDACTED:assigned-secret]',
          args_digest: digest,
          ts,
        },
      ]);
      expect(ev.principal).toEqual({ id: 'https://alice:[REDACTED:url-credentials]@idp.example/alice', kind: 'human' });
      expect(ev.delegation).toEqual({
        id: 'grant api_key=[REDACTED:assigned-secret]',
        issuer: 'https://svc:[REDACTED:url-credentials]@idp.example',
        scopes: ['refunds:write', 'secret=[REDACTED:assigned-secret]'],
        expires: ts,
      });
      expect(ev.policy).toEqual({
        decision: 'allow',
        rule: 'r password=[REDACTED:assigned-secret]',
        reason_code: 'token=[REDACTED:assigned-secret]',
        version: digest,
        mode: 'enforce',
        approver: 'bob pin=[REDACTED:assigned-secret]',
      });
      expect(ev.agent).toEqual({ id: 'hdr-bot', version: 'v1 passwd=[REDACTED:assigned-secret]', credential: 'key-id-7 [REDACTED:api-key]' });
      expect(ev.record_class).toBe('audit-log passwd=[REDACTED:assigned-secret]');
      expect(ev.data_categories).toEqual(['financial', 'apikey=[REDACTED:assigned-secret]']);
      expect(ev.artifacts).toEqual([{ sha256: ref.sha256, mime: 'text/plain', bytes: 1, role: 'role token=[REDACTED:assigned-secret]', name: 'dump.txt password=[REDACTED:assigned-secret]' }]);
      expect(ev.env).toBe('prod password=[REDACTED:assigned-secret]');
      expect(ev.tenant).toBe('acme token=[REDACTED:assigned-secret]');
      expect(ev.recorder).toEqual({ kind: 'sdk', id: 'sdk token=[REDACTED:assigned-secret]' });
      expect(ev.stream).toBe(stream);
      expect((await verifyLedger(driverOf(w))).ok).toBe(true);
      // The README's list is the code's list.
      const readme = fs.readFileSync(path.join(import.meta.dirname, '..', '..', 'README.md'), 'utf8');
      const listed = /\*Header fields\.\*([\s\S]*?)The others are/.exec(readme)?.[1] ?? '';
      expect([...listed.matchAll(/`([^`]+)`/g)].map((m) => m[1])).toEqual([...HEADER_TEXT_FIELDS]);
    } finally {
      await w.close();
    }
    expect(leakedInFiles(db, secrets)).toEqual([]);
  });
});

describe('redaction of JSON carried as text, and of key=value, query-string and header text', () => {
  // Values in shapes that never occur by chance in hashes, UUIDs or timestamps (they contain non-hex letters).
  const PW_ARG = 'hunter2-in-json-arg';
  const API_KEY_OUT = 'ak-live-qwzx-0f9e8d7c';
  const DEEP = 'deep-nested-passwd-qrs';
  const PASSWD_ERR = 'passwd-value-xyzzy';
  const TOKEN_Q = 'tq-zyxw-5c4b3a2918';
  const PW_LLM = 'llm-tool-pw-wxyz';
  const AUTH_Q = 'auth-q-mnop-88d7e6';
  const NOTE_PW = 'note-pass-plugh-31';
  const TOOL_CALL_PW = 'tool-call-pw-qwz-5';

  it('[R-REDACT] redacts secrets inside JSON text in tool arguments, tool results, error messages, LLM messages and notes, changing nothing else of the text', async () => {
    const db = tempDb(dir);
    const { w, errors } = await open(db);
    const s = await w.session({ agent });
    // A string argument that is JSON (a request body), and an MCP-style result whose text is pretty-printed
    // JSON holding a key and, one level down, JSON-in-a-string holding a password.
    const body = `{"user":"alice","password":"${PW_ARG}","amount":1250.5}`;
    const resultObject = { customer: 'C-1042', api_key: API_KEY_OUT, items: [{ sku: 'A', qty: 2 }], nested: JSON.stringify({ passwd: DEEP, ok: true }) };
    const output = { content: [{ type: 'text', text: JSON.stringify(resultObject, null, 2) }] };
    await s.tool('crm.update', { body, mode: 'merge' }, () => output);
    await expect(
      s.tool('vault.login', { user: 'alice' }, () => {
        throw new Error(`upstream said 401: {"error":"invalid","passwd":"${PASSWD_ERR}"} after GET /v1/keys?token=${TOKEN_Q}&page=2`);
      }),
    ).rejects.toThrow(/401/);
    await s.llmCall({
      model: 'claude-sonnet',
      input: [
        { role: 'user', content: 'Look the customer up.' },
        { role: 'tool', content: [{ type: 'text', text: `{"result":{"login":"alice","password":"${PW_LLM}"}}` }] },
      ],
      output: { text: `I will call https://api.example.com/v1/items?page=2&auth=${AUTH_Q} next.` },
      // OpenAI-style tool calls carry their arguments as a JSON string.
      toolCalls: [{ id: 'call_1', name: 'vault.login', arguments: `{"user":"alice","password":"${TOOL_CALL_PW}"}` }],
      usage: { input_tokens: 120, output_tokens: 30 },
    });
    await s.note(`config dump: {"db": {"host": "db.internal", "password": "${NOTE_PW}"}}`);
    await w.flush();

    const events = await driverOf(w).readStream(s.id);
    const call = events.find((e) => e.kind === 'tool.call' && e.data?.['tool'] === 'crm.update')!;
    expect(call.data?.['arguments']).toEqual({ body: '{"user":"alice","password":"[REDACTED:key]","amount":1250.5}', mode: 'merge' });
    const result = events.find((e) => e.kind === 'tool.result' && e.data?.['tool'] === 'crm.update')!;
    // Only the secret values change: the layout (two-space indent), key order and numbers stay as the tool wrote them.
    const expected = { ...resultObject, api_key: '[REDACTED:key]', nested: JSON.stringify({ passwd: '[REDACTED:key]', ok: true }) };
    expect(result.data?.['output']).toEqual({ content: [{ type: 'text', text: JSON.stringify(expected, null, 2) }] });
    const failed = events.find((e) => e.kind === 'tool.result' && e.data?.['tool'] === 'vault.login')!;
    expect((failed.data?.['error'] as { message: string }).message).toBe(
      'upstream said 401: {"error":"invalid","passwd":"[REDACTED:assigned-secret]"} after GET /v1/keys?token=[REDACTED:query-secret]&page=2',
    );
    const llm = events.find((e) => e.kind === 'llm.call')!;
    expect(llm.data?.['input']).toEqual([
      { role: 'user', content: 'Look the customer up.' },
      { role: 'tool', content: [{ type: 'text', text: '{"result":{"login":"alice","password":"[REDACTED:key]"}}' }] },
    ]);
    expect(llm.data?.['output']).toEqual({ text: 'I will call https://api.example.com/v1/items?page=2&auth=[REDACTED:query-secret] next.' });
    expect(llm.data?.['tool_calls']).toEqual([{ id: 'call_1', name: 'vault.login', arguments: '{"user":"alice","password":"[REDACTED:key]"}' }]);
    expect(llm.data?.['usage']).toEqual({ input_tokens: 120, output_tokens: 30 });
    expect(events.find((e) => e.kind === 'note')!.data).toEqual({ text: 'config dump: {"db": {"host": "db.internal", "password": "[REDACTED:assigned-secret]"}}' });

    const secrets = [PW_ARG, API_KEY_OUT, DEEP, PASSWD_ERR, TOKEN_Q, PW_LLM, AUTH_Q, NOTE_PW, TOOL_CALL_PW];
    expect(leakedInFiles(db, secrets)).toEqual([]);
    expect((await verifyLedger(driverOf(w))).ok).toBe(true);
    expect(errors).toEqual([]);
    await w.close();
    expect(leakedInFiles(db, secrets)).toEqual([]);
  });

  it('[R-REDACT] redacts header-like and query text: lowercase basic, the Token scheme, URL-encoded Bearer, Cookie, Set-Cookie, auth=, token=, passwd: and JSON fragments', async () => {
    const db = tempDb(dir);
    const { w } = await open(db);
    const s = await w.session({ agent });
    const basic = Buffer.from('svc-user:s3cr3t-basic-pass').toString('base64');
    const cases: Array<[string, string]> = [
      [`authorization: basic ${basic}`, 'authorization: [REDACTED:basic-auth]'],
      ['Authorization: Token 9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b', 'Authorization: [REDACTED:token-scheme]'],
      ['callback?h=Authorization%3A%20Bearer%20bearer-enc-qwz-123456&x=1', 'callback?h=Authorization%3A%20[REDACTED:bearer]&x=1'],
      ['Cookie: sid=cookie-val-qwz-998877; theme=dark', 'Cookie: [REDACTED:assigned-secret]'],
      ['HTTP/1.1 200 OK\r\nSet-Cookie: session=sess-cookie-qwz-abc; Path=/; HttpOnly\r\nX-Trace: t-1', 'HTTP/1.1 200 OK\r\nSet-Cookie: [REDACTED:assigned-secret]\r\nX-Trace: t-1'],
      ['https://hooks.example/in?auth=auth-qwz-771&v=2', 'https://hooks.example/in?auth=[REDACTED:query-secret]&v=2'],
      ['retrying with token=tok-qwz-5521 after 3 s', 'retrying with token=[REDACTED:assigned-secret] after 3 s'],
      ['passwd: pw-qwz-colon-9 (from .netrc)', 'passwd: [REDACTED:assigned-secret] (from .netrc)'],
      ["{'password': 'py-repr-qwz-42', 'user': 'bob'}", "{'password': '[REDACTED:assigned-secret]', 'user': 'bob'}"],
      ['X-Api-Key: xak-qwz-00112233 sent', 'X-Api-Key: [REDACTED:assigned-secret] sent'],
      ['mysql -u root --password cli-pw-qwz-66 -h db', 'mysql -u root --password [REDACTED:assigned-secret] -h db'],
      ['Authorization: Digest username="bob", response="dig-qwz-6629"', 'Authorization: [REDACTED:assigned-secret]'],
      ['the header "Cookie: sid=quoted-qwz-1" was sent', 'the header "Cookie: [REDACTED:assigned-secret]" was sent'],
    ];
    for (const [text] of cases) await s.note(text);
    await w.flush();
    const notes = (await driverOf(w).readStream(s.id)).filter((e) => e.kind === 'note').map((e) => e.data?.['text']);
    expect(notes).toEqual(cases.map(([, redacted]) => redacted));
    const secrets = [
      basic,
      '9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b',
      'bearer-enc-qwz-123456',
      'cookie-val-qwz-998877',
      'sess-cookie-qwz-abc',
      'auth-qwz-771',
      'tok-qwz-5521',
      'pw-qwz-colon-9',
      'py-repr-qwz-42',
      'xak-qwz-00112233',
      'cli-pw-qwz-66',
      'dig-qwz-6629',
      'quoted-qwz-1',
    ];
    await w.close();
    expect(leakedInFiles(db, secrets)).toEqual([]);
  });

  it('[R-REDACT] redacts JSON text that was cut off mid-message, as the gateway keeps the head of a frame it refused', async () => {
    const db = tempDb(dir);
    const { w } = await open(db);
    const s = await w.session({ agent });
    const frame = (args: string) => `{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"login","arguments":${args}`;
    const heads = [
      // Cut after the secret value, in the middle of the next key.
      frame('{"user":"alice","password":"trunc-qwz-4242","no'),
      // Cut in the middle of the secret value.
      frame('{"user":"alice","api_key":"ak-trunc-qwz-55'),
      // Cut inside a JSON string that itself carries JSON with a password.
      frame('{"payload":"{\\"password\\":\\"lvl2-qwz-secret-77\\",\\"x\\":'),
    ];
    for (const head of heads) await s.record('error', { message: 'The client sent a message over the limit.', code: 'frame_too_large', source: 'gateway', head });
    await w.flush();
    const stored = (await driverOf(w).readStream(s.id)).filter((e) => e.kind === 'error').map((e) => e.data?.['head']);
    expect(stored).toEqual([
      frame('{"user":"alice","password":"[REDACTED:key]","no'),
      frame('{"user":"alice","api_key":"[REDACTED:key]"'),
      frame('{"payload":"{\\"password\\":\\"[REDACTED:key]\\",\\"x\\":'),
    ]);
    await w.close();
    expect(leakedInFiles(db, ['trunc-qwz-4242', 'ak-trunc-qwz-55', 'lvl2-qwz-secret-77'])).toEqual([]);
  });

  it('[R-REDACT] keeps what is not a secret: amounts, ids, token usage counts, max_tokens, MCP progress tokens, pagination tokens and prose', async () => {
    const db = tempDb(dir);
    const { w } = await open(db);
    const s = await w.session({ agent });
    const data = {
      text: 'The password reset link was sent; use at most 1024 max tokens. Basic information is in the Token section.',
      usage: { input_tokens: 12, output_tokens: 3, total_tokens: 15, promptTokenCount: 12, cache_read_input_tokens: 0 },
      parameters: { max_tokens: 1024, temperature: 0 },
      _meta: { progressToken: 'progress-qwz-7' },
      progressToken: 42,
      nextPageToken: 'page-qwz-3',
      amount: 650,
      order_id: 'A-1042',
      author: 'Jane',
      // JSON text that holds no secret stays byte for byte as written: odd spacing, a 20-digit id, a progress token.
      json: '{ "amount" : 650.50, "id": 12345678901234567890, "progressToken": "p-qwz-1", "tokens": 12, "ok": true }',
      mcp: '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"},"_meta":{"progressToken":7}}}',
      query: 'https://api.example.com/v1/items?page=2&max_tokens=1024&progressToken=p-qwz-2&nextPageToken=np-qwz-4',
      log: 'tokens: 42, token_count=7, keyboard: us, primary key: customer_id',
      list: '[1, 2, 3]',
    };
    const r = await s.record('note', data);
    await w.flush();
    expect((await driverOf(w).getEvent(r!.id))!.data).toEqual(data);
    await s.llmCall({ model: 'm', input: [], output: 'ok', usage: { input_tokens: 5, output_tokens: 1 }, parameters: { max_tokens: 64 } });
    const llm = (await driverOf(w).readStream(s.id)).find((e) => e.kind === 'llm.call')!;
    expect(llm.data).toMatchObject({ usage: { input_tokens: 5, output_tokens: 1 }, parameters: { max_tokens: 64 } });
    await w.close();
  });

  it('[R-REDACT] redacts JSON text inside a tool output before it is spilled to an artifact', async () => {
    const db = tempDb(dir);
    const { w } = await open(db, { spillBytes: 4096 });
    const s = await w.session({ agent });
    const rows = Array.from({ length: 200 }, (_, i) => ({ i, login: `user-${i}`, password: `spill-qwz-pw-${i}` }));
    await s.tool('db.dump', { table: 'users' }, () => ({ content: [{ type: 'text', text: JSON.stringify(rows) }] }));
    const result = (await driverOf(w).readStream(s.id)).find((e) => e.kind === 'tool.result')!;
    const ref = result.data?.['output'] as { $artifact: string };
    expect(ref.$artifact).toMatch(/^[0-9a-f]{64}$/);
    const stored = JSON.parse((await driverOf(w).readArtifact(ref.$artifact))!.toString('utf8')) as { content: Array<{ text: string }> };
    const inner = JSON.parse(stored.content[0]!.text) as Array<Record<string, unknown>>;
    expect(inner).toHaveLength(200);
    expect(inner[7]).toEqual({ i: 7, login: 'user-7', password: '[REDACTED:key]' });
    await w.close();
    expect(leakedInFiles(db, ['spill-qwz-pw-7', 'spill-qwz-pw-199'])).toEqual([]);
  });

  it('[R-REDACT] redacts hostile JSON text (nested past the depth limit, JSON in strings four levels deep) without failing, and is idempotent', () => {
    const r = new Redactor();
    const deep = `${'['.repeat(100_000)}{"password":"deep-qwz-1"}`;
    expect(r.redact(deep).includes('deep-qwz-1')).toBe(false);
    let nested: unknown = { password: 'nest-qwz-4' };
    for (let i = 0; i < 4; i++) nested = { level: i, inner: JSON.stringify(nested) };
    const text = JSON.stringify(nested);
    const once = r.redact({ text });
    expect(JSON.stringify(once)).not.toContain('nest-qwz-4');
    expect(r.redact(once)).toEqual(once);
    const mixed = { a: `{"token":"t-qwz-1"} and Cookie: a=b-qwz`, b: ['Authorization: Bearer abcdefgh-qwz-123'] };
    const m1 = r.redact(mixed);
    expect(r.redact(m1)).toEqual(m1);
    expect(JSON.stringify(m1)).not.toMatch(/qwz/);
  });
});

describe('redaction of URL passwords without a user, command lines, name/value lists and header pairs', () => {
  const r = new Redactor();

  it('[R-REDACT] redacts scheme://:password@host, mysql -pPASSWORD and curl -u user:password in text, and leaves ports, uids and prompts alone', () => {
    const cases: Array<[string, string]> = [
      ['redis://:hunter2-qwz@cache:6379/0', 'redis://:[REDACTED:url-credentials]@cache:6379/0'],
      ['REDIS_URL=rediss://:rd-qwz-2@cache.internal', 'REDIS_URL=rediss://:[REDACTED:url-credentials]@cache.internal'],
      ['mysql -h db -u root -pmy-qwz-pw app', 'mysql -h db -u root -p[REDACTED:cli-password] app'],
      ["mysqldump -uroot -p'my qwz pw' shop > dump.sql", 'mysqldump -uroot -p[REDACTED:cli-password] shop > dump.sql'],
      ['/usr/bin/mariadb -pmdb-qwz-1 -e "select 1"', '/usr/bin/mariadb -p[REDACTED:cli-password] -e "select 1"'],
      ['mysql --password=my-qwz-pw2 app', 'mysql --password=[REDACTED:assigned-secret] app'],
      ['curl -u admin:curl-qwz-pw https://api.example', 'curl -u admin:[REDACTED:cli-password] https://api.example'],
      ['curl --user=admin:curl-qwz-pw2 https://api.example', 'curl --user=admin:[REDACTED:cli-password] https://api.example'],
      ['curl -sS -uadmin:curl-qwz-pw3 https://api.example', 'curl -sS -uadmin:[REDACTED:cli-password] https://api.example'],
      ["curl -s 'https://x.example/?a=1&b=2' -u 'svc:curl-qwz-pw4' -o out", "curl -s 'https://x.example/?a=1&b=2' -u 'svc:[REDACTED:cli-password]' -o out"],
      // Not passwords: ports, a uid:gid, a password prompt, a user without a password, another command's -p.
      ['ssh -p 2222 host && ssh -p2222 host', 'ssh -p 2222 host && ssh -p2222 host'],
      ['docker run -p 8080:80 --user 1000:1000 img', 'docker run -p 8080:80 --user 1000:1000 img'],
      ['mysql -P 3306 -h db -u root -p app', 'mysql -P 3306 -h db -u root -p app'],
      ['psql -p 5432 -U app', 'psql -p 5432 -U app'],
      ['curl -u alice https://x.example', 'curl -u alice https://x.example'],
      ['curl https://x.example && docker run --user 1000:1000 img', 'curl https://x.example && docker run --user 1000:1000 img'],
      ['mysql -e "select 1"; tar -pxf a.tar', 'mysql -e "select 1"; tar -pxf a.tar'],
      ['see https://:8080/ and http://host:80/path', 'see https://:8080/ and http://host:80/path'],
    ];
    for (const [text, redacted] of cases) {
      expect(r.redactString(text), text).toBe(redacted);
      // Idempotent, and the same inside JSON text.
      expect(r.redactString(redacted), redacted).toBe(redacted);
      expect(r.redactString(JSON.stringify({ cmd: text })), text).toBe(JSON.stringify({ cmd: redacted }));
    }
  });

  it('[R-REDACT] redacts the value beside a secret name in name/value lists (Kubernetes env, AWS, HAR), header pairs and argv lists, as objects and as JSON text', () => {
    const value = {
      env: [
        { name: 'DB_PASSWORD', value: 'k8s-qwz-pw' },
        { name: 'HOME', value: '/root' },
        { name: 'API_TOKEN', valueFrom: { secretKeyRef: { name: 'api', key: 'token' } } },
        { value: 'k8s-qwz-2', name: 'api_key' },
      ],
      aws: [
        { Name: 'DB_PASS', Value: 'aws-qwz-3' },
        { Name: 'REGION', Value: 'eu-west-1' },
      ],
      har: {
        headers: [
          { name: 'Authorization', value: 'Digest username="bob", response="har-qwz-4"' },
          { name: 'Accept', value: 'application/json' },
        ],
      },
      pairs: [
        ['X-Api-Key', 'pair-qwz-1'],
        ['Authorization', 'Bearer pair-qwz-2-abcdefgh'],
        ['Accept', 'json'],
      ],
      argv: [
        ['mysql', '-uroot', '-pargv-qwz-1', 'app'],
        ['/usr/bin/curl', '-u', 'svc:argv-qwz-2', 'https://x.example'],
        ['deploy', '--api-key', 'argv-qwz-3', '--verbose'],
      ],
      // Not secrets: a port, a uid:gid, a pair that is not in a list, a name that is prose, an object value.
      kept: {
        ssh: ['ssh', '-p2222', 'host'],
        docker: ['docker', 'run', '--user', '1000:1000', 'img'],
        tags: ['password', 'reset'],
        header: [['name', 'email']],
        prose: { name: 'Password reset page', value: 'shown' },
        policy: [{ name: 'password_policy', value: { min_length: 12 } }],
        flag: ['login', '--password', '--verbose'],
      },
    };
    const expected = structuredClone(value);
    expected.env[0]!.value = '[REDACTED:key]';
    expected.env[3]!.value = '[REDACTED:key]';
    expected.aws[0]!.Value = '[REDACTED:key]';
    expected.har.headers[0]!.value = '[REDACTED:key]';
    expected.pairs[0]![1] = '[REDACTED:key]';
    expected.pairs[1]![1] = '[REDACTED:key]';
    expected.argv[0]![2] = '-p[REDACTED:cli-password]';
    expected.argv[1]![2] = 'svc:[REDACTED:cli-password]';
    expected.argv[2]![2] = '[REDACTED:key]';
    const before = structuredClone(value);
    expect(r.redact(value)).toEqual(expected);
    expect(value).toEqual(before);
    expect(r.redact(expected)).toEqual(expected);
    // The same shapes carried as JSON text (compact and pretty-printed) are rewritten the same way.
    expect(r.redactString(JSON.stringify(value))).toBe(JSON.stringify(expected));
    expect(r.redactString(JSON.stringify(value, null, 2))).toBe(JSON.stringify(expected, null, 2));
    expect(r.redactString(JSON.stringify(expected))).toBe(JSON.stringify(expected));
  });
});

describe('the first looks that let most strings skip the full search', () => {
  const r = new Redactor();
  // One real-shaped sample per built-in pattern: a pattern added without one fails here, as a reminder
  // that the cheap first look (BUILTIN_HINT in redact.ts) must also find it.
  const samples: Record<string, string> = {
    'private-key': '-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBqwz\n-----END EC PRIVATE KEY-----',
    bearer: 'Bearer abcdefgh12345qwz',
    'basic-auth': `Basic ${Buffer.from('user:pw-qwz-1').toString('base64')}`,
    'token-scheme': 'Token 9944b09199c62bcf9418qwz',
    'url-credentials': 'https://user:pw-qwz-2@db.internal/app',
    'api-key': 'sk-proj-abcdefghijklmnopqwz123',
    'aws-key': 'AKIAQWZ0123456789ABC',
    'github-token': `ghp_${'a1B2c3D4e5'.repeat(4)}`,
    'slack-token': 'xoxb-1234567890-qwzabc',
    jwt: 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJxd3oifQ.c2lnbmF0dXJlcXd6',
    'google-api-key': 'AIzaSy0123456789abcdefghijklmnopqrstuvw',
  };

  it('[R-REDACT] finds every built-in pattern in free text and inside JSON text', () => {
    expect(Object.keys(samples).sort()).toEqual(BUILTIN_PATTERNS.map((p) => p.name).sort());
    for (const [name, sample] of Object.entries(samples)) {
      expect(r.redactString(`seen: ${sample} (end)`), name).toContain(`[REDACTED:${name}]`);
      expect(r.redactString(JSON.stringify({ note: `seen: ${sample}` })), name).toContain(`[REDACTED:${name}]`);
    }
  });

  it('[R-REDACT] finds every built-in secret key name in key=value, key: value and JSON text, in the spellings code uses', () => {
    const spellings = (k: string) => [k, k.toUpperCase(), `db_${k}`, `x-${k}`, `my${k[0]!.toUpperCase()}${k.slice(1)}`];
    for (const key of [...BUILTIN_SECRET_KEYS, 'api_key', 'access-key', 'private_key', 'access_token', 'x-auth-token', 'token', 'pass', 'auth', 'pin']) {
      for (const k of spellings(key)) {
        expect(r.redactString(`${k}=v-qwz-1`), k).not.toContain('qwz');
        expect(r.redactString(`${k}: v-qwz-1`), k).not.toContain('qwz');
        expect(r.redactString(`{"${k}": "v-qwz-1"}`), k).not.toContain('qwz');
        expect(r.redactString(`{"${k}": "v-qwz-1`), k).not.toContain('qwz');
      }
    }
  });
});
