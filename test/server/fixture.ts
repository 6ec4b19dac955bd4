import { createServer, createKey, type Caller } from '../../src/server/index.js';
import { openLedger, type Ledger } from '../../src/store/index.js';
import { buildLedger, type BuiltLedger } from '../helpers/ledger.js';

export const ROLE_LIST = ['agent', 'developer', 'approver', 'auditor', 'admin'] as const;
export type RoleName = (typeof ROLE_LIST)[number];

export interface ServerFixture {
  built: BuiltLedger;
  ledger: Ledger;
  app: ReturnType<typeof createServer>;
  /** One key per role; the agent key acts as `api-bot`. */
  keys: Record<RoleName, string>;
  ids: Record<RoleName, string>;
  call(method: string, path: string, opts?: { key?: string | undefined; body?: unknown; raw?: string | Uint8Array | ReadableStream<Uint8Array>; headers?: Record<string, string> }): Promise<Response>;
  close(): Promise<void>;
}

export const AGENT_ID = 'api-bot';

/** A real SQLite ledger with three recorded sessions and an artifact (test/helpers/ledger.ts), one key per role, and the app over it. */
export async function serverFixture(dir: string, options: { ledger?: Ledger; built?: BuiltLedger } = {}): Promise<ServerFixture> {
  const built = options.built ?? (await buildLedger(dir));
  const ledger = options.ledger ?? (await openLedger(`sqlite:${built.file}`, { create: false }));
  const keys = {} as Record<RoleName, string>;
  const ids = {} as Record<RoleName, string>;
  for (const role of ROLE_LIST) {
    const { key, record } = await createKey(ledger, role === 'agent' ? { role, agent: AGENT_ID, name: `test ${role}` } : { role, name: `test ${role}` }, { who: 'test', recorder: 'cli' });
    keys[role] = key;
    ids[role] = record.id;
  }
  const app = createServer({ ledger });
  return {
    built,
    ledger,
    app,
    keys,
    ids,
    call: (method, path, opts = {}) => {
      const headers: Record<string, string> = { ...(opts.headers ?? {}) };
      if (opts.key !== undefined) headers['authorization'] = `Bearer ${opts.key}`;
      let body: string | Uint8Array | ReadableStream<Uint8Array> | undefined = opts.raw;
      if (opts.body !== undefined) {
        body = JSON.stringify(opts.body);
        headers['content-type'] = 'application/json';
      }
      return Promise.resolve(app.request(path, { method, headers, ...(body === undefined ? {} : { body }) }));
    },
    close: () => ledger.close(),
  };
}

export type { Caller };
