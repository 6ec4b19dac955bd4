import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { WitnessError, type AgentRef, type StoredEvent } from '../core/index.js';
import type { Ledger, LedgerReader } from '../store/index.js';
import { RECORDER_VERSION } from '../recorder/index.js';
import { keyringKeyPath, loadKeyringKey, type KeyRecordFields, type KeyringKey } from './keyring-key.js';
import { Role } from './roles.js';

/**
 * API keys live in the ledger itself, as `config.change` events on the system stream
 * `witness.keys` (one on creation, one on revocation): tamper-evident like every other record,
 * the same on SQLite and PostgreSQL through the `Ledger` seam, with no table of their own. Only
 * the SHA-256 of a key is recorded; the key is shown once, to whoever created it.
 *
 * Every record is signed with the server's API-key signing key (keyring-key.ts says which bytes),
 * kept outside the database: whoever can only append to the ledger (on PostgreSQL, every
 * recorder host) cannot mint a key or revoke one, since a record without a valid signature is
 * ignored.
 *
 * A key is `wk_<16 hex id>_<32 random bytes, base64url>`: the id finds the record without
 * comparing against every key, the 256 random bits make guessing pointless, and the prefix lets
 * secret scanners spot a leaked key.
 */
export const KEYS_STREAM = 'witness.keys';

/** Streams whose names start with this are Witness's own (keys, approvals, access records): no agent writes there. */
export const SYSTEM_STREAM_PREFIX = 'witness.';

const KEY_PATTERN = /^wk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

export const KeyName = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[^\u0000-\u001f\u007f]*$/, 'must not contain control characters');
export const AgentId = z
  .string()
  .min(1)
  .max(512)
  .regex(/^[^\u0000-\u001f\u007f]*$/, 'must not contain control characters');

/** What a `config.change` on the keys stream says, validated on every read. */
const KeyEvent = z.discriminatedUnion('op', [
  z.looseObject({
    target: z.literal('key'),
    op: z.literal('create'),
    key_id: z.string().regex(/^[0-9a-f]{16}$/),
    role: Role,
    agent: AgentId.optional(),
    name: KeyName.optional(),
    key_sha256: z.string().regex(/^[0-9a-f]{64}$/),
    signature: z.string().optional(),
  }),
  z.looseObject({ target: z.literal('key'), op: z.literal('revoke'), key_id: z.string().regex(/^[0-9a-f]{16}$/), signature: z.string().optional() }),
]);

/** The key-record signing key of a ledger, created on first need (by `witness keys create`, or `witness serve` on its first refresh). */
function signingKey(reader: LedgerReader): KeyringKey {
  return loadKeyringKey(keyringKeyPath(reader.info), true)!;
}

function signed(reader: LedgerReader, f: KeyRecordFields): { signature: string; signed_by: string } {
  const k = signingKey(reader);
  return { signature: k.sign(reader.info.id, f), signed_by: k.fingerprint };
}

export interface ApiKeyRecord {
  id: string;
  role: Role;
  agent?: string;
  name?: string;
  createdAt: string;
  createdBy: string;
  revokedAt?: string;
  revokedBy?: string;
}

/** The caller a presented key stands for. */
export interface Caller {
  keyId: string;
  role: Role;
  agent?: string;
  name?: string;
}

/** Who changes keys: the CLI (a person at the ledger's host) or an admin through the API. */
export interface KeyActor {
  /** The person (or admin key name) making the change. */
  who: string;
  recorder: 'cli' | 'server';
  /** The admin key that made the change, when made through the API. */
  credential?: string;
}

export interface CreateKeyInput {
  role: Role;
  agent?: string;
  name?: string;
}

export function keySha256(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}

function checkCreate(input: CreateKeyInput): void {
  if (input.role === 'agent' && input.agent === undefined) {
    throw new WitnessError('invalid_argument', 'A key with role agent needs the agent it acts as; give --agent <id>.');
  }
  if (input.role !== 'agent' && input.agent !== undefined) {
    throw new WitnessError('invalid_argument', `Only agent keys carry an agent id; drop --agent for a ${input.role} key.`);
  }
  if (input.agent !== undefined && !AgentId.safeParse(input.agent).success) {
    throw new WitnessError('invalid_argument', '--agent must be an agent id of 1 to 512 characters without control characters.', { details: { path: 'agent' } });
  }
  if (input.name !== undefined && !KeyName.safeParse(input.name).success) {
    throw new WitnessError('invalid_argument', '--name must be 1 to 128 characters without control characters.', { details: { path: 'name' } });
  }
}

function actorFields(actor: KeyActor): { agent: AgentRef; principal: { id: string; kind: 'human' } } {
  const agent: AgentRef = actor.credential === undefined ? { id: `witness-${actor.recorder}` } : { id: `witness-${actor.recorder}`, credential: actor.credential };
  return { agent, principal: { id: actor.who, kind: 'human' } };
}

/** Creates a key: returns it (shown once, never stored) and its record; appends the `config.change`. */
export async function createKey(ledger: Ledger, input: CreateKeyInput, actor: KeyActor): Promise<{ key: string; record: ApiKeyRecord }> {
  checkCreate(input);
  const id = randomBytes(8).toString('hex');
  const key = `wk_${id}_${randomBytes(32).toString('base64url')}`;
  const fields: KeyRecordFields = {
    op: 'create',
    key_id: id,
    role: input.role,
    ...(input.agent === undefined ? {} : { agent: input.agent }),
    ...(input.name === undefined ? {} : { name: input.name }),
    key_sha256: keySha256(key).toString('hex'),
  };
  const what = `API key ${id} created for role ${input.role}${input.agent === undefined ? '' : ` as agent ${input.agent}`}${input.name === undefined ? '' : ` (${input.name})`}`;
  const [receipt] = await ledger.append([
    {
      stream: KEYS_STREAM,
      ...actorFields(actor),
      recorder: { kind: actor.recorder, version: RECORDER_VERSION },
      kind: 'config.change',
      resource: 'api-keys',
      action: 'key.create',
      outcome: 'success',
      data: {
        target: 'key',
        description: what,
        ...fields,
        ...signed(ledger, fields),
      },
    },
  ]);
  const stored = receipt === undefined ? undefined : await ledger.getEvent(receipt.id);
  const record: ApiKeyRecord = {
    id,
    role: input.role,
    ...(input.agent === undefined ? {} : { agent: input.agent }),
    ...(input.name === undefined ? {} : { name: input.name }),
    createdAt: stored?.ts ?? new Date().toISOString(),
    createdBy: actor.who,
  };
  return { key, record };
}

/** Revokes a key by id; refuses an unknown or already revoked one. */
export async function revokeKey(ledger: Ledger, id: string, actor: KeyActor): Promise<ApiKeyRecord> {
  const ring = new KeyRing(ledger);
  await ring.refresh();
  const rec = ring.get(id);
  if (rec === undefined) throw new WitnessError('not_found', `No API key has id ${JSON.stringify(id)}; run \`witness keys list\` to see the ids.`);
  if (rec.revokedAt !== undefined) throw new WitnessError('conflict', `API key ${id} was already revoked at ${rec.revokedAt}.`);
  await ledger.append([
    {
      stream: KEYS_STREAM,
      ...actorFields(actor),
      recorder: { kind: actor.recorder, version: RECORDER_VERSION },
      kind: 'config.change',
      resource: 'api-keys',
      action: 'key.revoke',
      outcome: 'success',
      data: { target: 'key', description: `API key ${id} (${rec.role}) revoked`, op: 'revoke', key_id: id, ...signed(ledger, { op: 'revoke', key_id: id }) },
    },
  ]);
  await ring.refresh();
  return ring.get(id) ?? rec;
}

export async function listKeys(reader: LedgerReader): Promise<ApiKeyRecord[]> {
  const ring = new KeyRing(reader);
  await ring.refresh();
  return ring.list();
}

export type AuthResult = { ok: true; caller: Caller } | { ok: false; message: string };

/**
 * How far back a refresh re-reads the keys stream before the newest key change it has seen. A
 * change is found by its time (`ts`, the writer's clock); one written by a host whose clock is
 * behind by less than this is still found. Changes already applied are skipped by their seq.
 */
export const KEY_CLOCK_SKEW_MS = 30_000;

/** A refresh reads the whole stream at least this often anyway, as the backstop for a clock further behind than KEY_CLOCK_SKEW_MS. */
export const KEY_FULL_READ_MS = 60_000;

/**
 * The current key set, derived from the keys stream. The first refresh reads the stream whole;
 * each later one reads only its tail (events from KEY_CLOCK_SKEW_MS before the newest change seen)
 * and applies what it has not applied (by seq), so every request that refreshes first sees a
 * revocation another process committed before it arrived, at the cost of one indexed read of a
 * few rows. A seq gap in the tail (a change written with a clock further behind) makes it read
 * the stream whole again, and so does every refresh KEY_FULL_READ_MS after the last whole read.
 */
export class KeyRing {
  private readonly keys = new Map<string, ApiKeyRecord & { sha256: Buffer }>();
  private next = 0;
  private newestTs: string | undefined;
  private fullReadAt = 0;
  /** Events on the keys stream that are not key changes Witness wrote (kept out of the key set). */
  ignored = 0;
  /** Of those, key changes whose signature does not verify with this ledger's API-key signing key: forgeries, or records signed with another key file. */
  unverified = 0;
  private signer: KeyringKey | undefined;

  constructor(private readonly reader: LedgerReader) {}

  async refresh(): Promise<void> {
    this.signer ??= signingKey(this.reader);
    if (this.newestTs === undefined || Date.now() - this.fullReadAt >= KEY_FULL_READ_MS) {
      this.fullReadAt = Date.now();
      this.applyAll(await this.reader.readStream(KEYS_STREAM));
      return;
    }
    const since = new Date(Date.parse(this.newestTs) - KEY_CLOCK_SKEW_MS).toISOString();
    const tail: StoredEvent[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.reader.query({ stream: KEYS_STREAM, since, limit: 1000, ...(cursor === undefined ? {} : { cursor }) });
      tail.push(...page.events);
      cursor = page.next;
    } while (cursor !== undefined);
    const fresh = tail.filter((e) => e.seq >= this.next).sort((a, b) => a.seq - b.seq);
    if (fresh.some((e, i) => e.seq !== this.next + i)) {
      this.applyAll(await this.reader.readStream(KEYS_STREAM));
      return;
    }
    this.applyAll(fresh);
  }

  private applyAll(events: readonly StoredEvent[]): void {
    for (const e of events) {
      if (e.seq < this.next) continue;
      this.apply(e);
      this.next = e.seq + 1;
      if (this.newestTs === undefined || e.ts > this.newestTs) this.newestTs = e.ts;
    }
    // An empty stream still counts as read, so the next refresh reads only what arrives.
    this.newestTs ??= new Date(0).toISOString();
  }

  private apply(e: StoredEvent): void {
    const parsed = e.kind === 'config.change' ? KeyEvent.safeParse(e.data) : undefined;
    if (parsed === undefined || !parsed.success) {
      this.ignored++;
      return;
    }
    const d = parsed.data;
    const fields: KeyRecordFields =
      d.op === 'create'
        ? { op: 'create', key_id: d.key_id, role: d.role, ...(d.agent === undefined ? {} : { agent: d.agent }), ...(d.name === undefined ? {} : { name: d.name }), key_sha256: d.key_sha256 }
        : { op: 'revoke', key_id: d.key_id };
    if (d.signature === undefined || !this.signer!.verify(this.reader.info.id, fields, d.signature)) {
      this.ignored++;
      this.unverified++;
      return;
    }
    const by = e.principal?.id ?? e.agent.id;
    if (d.op === 'create') {
      if (this.keys.has(d.key_id)) {
        // A second creation under the same id is not a key Witness made: never let it replace the first.
        this.ignored++;
        return;
      }
      this.keys.set(d.key_id, {
        id: d.key_id,
        role: d.role,
        ...(d.agent === undefined ? {} : { agent: d.agent }),
        ...(d.name === undefined ? {} : { name: d.name }),
        createdAt: e.ts,
        createdBy: by,
        sha256: Buffer.from(d.key_sha256, 'hex'),
      });
    } else {
      const k = this.keys.get(d.key_id);
      if (k !== undefined && k.revokedAt === undefined) {
        k.revokedAt = e.ts;
        k.revokedBy = by;
      }
    }
  }

  get(id: string): ApiKeyRecord | undefined {
    const k = this.keys.get(id);
    if (k === undefined) return undefined;
    const { sha256: _hash, ...rec } = k;
    return rec;
  }

  list(): ApiKeyRecord[] {
    return [...this.keys.keys()].map((id) => this.get(id)!);
  }

  /** Checks `Authorization: Bearer <key>` against the key set as last refreshed. */
  authenticate(header: string | undefined): AuthResult {
    if (header === undefined || header.trim() === '') return { ok: false, message: 'No API key was sent; send it as `Authorization: Bearer <key>`.' };
    const m = /^Bearer\s+(\S+)$/i.exec(header.trim());
    if (m === null) return { ok: false, message: 'The Authorization header is not `Bearer <key>`; send the API key that way.' };
    const key = m[1]!;
    const parts = KEY_PATTERN.exec(key);
    const presented = keySha256(key);
    const rec = parts === null ? undefined : this.keys.get(parts[1]!);
    // The hash is compared in constant time, against a dummy when the id is unknown, so the
    // answer's timing says nothing about which ids exist.
    const equal = timingSafeEqual(presented, rec?.sha256 ?? DUMMY);
    if (rec === undefined || !equal) return { ok: false, message: 'The API key is not one this server issued; check it, or ask an admin for a key.' };
    if (rec.revokedAt !== undefined) return { ok: false, message: `This API key was revoked at ${rec.revokedAt}; ask an admin for a new one.` };
    return {
      ok: true,
      caller: { keyId: rec.id, role: rec.role, ...(rec.agent === undefined ? {} : { agent: rec.agent }), ...(rec.name === undefined ? {} : { name: rec.name }) },
    };
  }
}

const DUMMY = Buffer.alloc(32);
