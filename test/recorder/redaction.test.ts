import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openWitness, type Witness } from '../../src/index.js';
import { verifyLedger } from '../../src/store/index.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

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
  return w.ledger.database.prepare('SELECT data FROM events ORDER BY pos').pluck().all() as string[];
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
    const events = await w.ledger.readStream(s.id);
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
    const report = await verifyLedger(w.ledger);
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
    const result = (await w.ledger.readStream(s.id)).find((e) => e.kind === 'tool.result')!;
    const ref = result.data?.['output'] as { $artifact: string };
    const stored = JSON.parse((await w.ledger.getArtifact(ref.$artifact))!.toString('utf8')) as Array<Record<string, unknown>>;
    expect(stored).toHaveLength(400);
    expect(stored[7]).toEqual({ i: 7, line: 'row 7', password: '[REDACTED:key]', note: 'leaked [REDACTED:api-key]' });
    expect(leakedInFiles(db, [PASSWORD, OPENAI_KEY])).toEqual([]);
    expect((await verifyLedger(w.ledger)).ok).toBe(true);
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
    const stored = (await w.ledger.getEvent(r!.id))!.data;
    expect(stored).toEqual({
      text: '[REDACTED:ticket] and [REDACTED:ticket] refund to [REDACTED:iban]',
      internal_notes: '[REDACTED:key]',
      // Built-ins were turned off, so the key-shaped string stays (this is what "not recommended" means).
      kept: OPENAI_KEY,
    });
    expect(leakedInFiles(db, ['TICKET-1234', 'TICKET-5678', 'DE89370400440532013000'])).toEqual([]);
    // Positive control: the byte scan does find a string that was written.
    expect(leakedInFiles(db, [OPENAI_KEY]).length).toBeGreaterThan(0);
    expect((await verifyLedger(w.ledger)).ok).toBe(true);
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
      const call = (await w.ledger.readStream(s.id)).find((e) => e.kind === 'tool.call')!;
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
});
