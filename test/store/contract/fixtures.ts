import { randomBytes } from 'node:crypto';
import { v7 as uuidv7 } from 'uuid';
import { canonicalize, eventHash, payloadDigest, type EventInput, type VerifyReport } from '../../../src/core/index.js';
import { verifyLedger, type AppendRequest, type CheckpointRow, type Ledger, type RawEventRow, type VerifyLedgerOptions } from '../../../src/store/index.js';
import type { DriverUnderTest, EventImage } from './driver.js';

export const agent = { id: 'contract-bot' };

export function note(stream: string, text: string, extra: Partial<EventInput> = {}): AppendRequest {
  return { stream, agent, kind: 'note', data: { text }, ...extra } as AppendRequest;
}

export function event(stream: string, kind: string, data: Record<string, unknown>, extra: Partial<EventInput> = {}): AppendRequest {
  return { stream, agent, kind, data, ...extra } as AppendRequest;
}

/** Opens a fresh ledger, runs `fn`, and always closes it (and every handle `fn` registers). */
export async function withLedger<T>(driver: DriverUnderTest, fn: (l: Ledger, also: (h: Ledger) => Ledger) => Promise<T>): Promise<T> {
  const l = await driver.open();
  const handles: Ledger[] = [];
  try {
    return await fn(l, (h) => {
      handles.push(h);
      return h;
    });
  } finally {
    for (const h of handles.reverse()) await h.close();
    await l.close();
  }
}

/**
 * Verifies as an auditor would, on a handle of its own (read-only when the driver offers it), so
 * nothing the writer's handle cached can hide an edit.
 */
export async function verifyAfresh(driver: DriverUnderTest, l: Ledger, options: VerifyLedgerOptions = {}): Promise<VerifyReport> {
  const reader = await driver.openAgain(l, driver.readonly ? { readonly: true } : {});
  try {
    return await verifyLedger(reader, options);
  } finally {
    await reader.close();
  }
}

/** A compact view of a report's failures, for readable assertion diffs. */
export function where(r: VerifyReport): Array<{ code: string; stream?: string; seq?: number; leaf?: number; checkpoint?: number; artifact?: string }> {
  return r.failures.map(({ code, stream, seq, leaf, checkpoint, artifact }) => ({
    code,
    ...(stream === undefined ? {} : { stream }),
    ...(seq === undefined ? {} : { seq }),
    ...(leaf === undefined ? {} : { leaf }),
    ...(checkpoint === undefined ? {} : { checkpoint }),
    ...(artifact === undefined ? {} : { artifact }),
  }));
}

export async function rawRows(l: Ledger): Promise<RawEventRow[]> {
  const rows: RawEventRow[] = [];
  for await (const page of l.scan()) rows.push(...page);
  return rows;
}

export function image(r: RawEventRow): EventImage {
  return { pos: r.pos, id: r.id, stream: r.stream, seq: r.seq, header: r.header, data: r.data, salt: r.salt === null ? null : Buffer.from(r.salt), hash: Buffer.from(r.hash) };
}

/**
 * A correctly chained event built from the published hashing rules (README, "How verification
 * works"), as a forger with the source would build one: salted payload digest, canonical header,
 * event hash over prev and header.
 */
export function forge(stream: string, seq: number, prev: Buffer, pos: number, kind: string, data: Record<string, unknown>, ts = new Date().toISOString()): EventImage {
  const salt = randomBytes(32);
  const canonicalData = canonicalize(data);
  const id = uuidv7();
  const header = canonicalize({ v: 1, id, ts, stream, seq, agent: { id: 'forger' }, kind, payload_digest: payloadDigest(salt, canonicalData).toString('hex'), prev: prev.toString('hex') });
  return { pos, id, stream, seq, header, data: canonicalData, salt, hash: eventHash(prev, header) };
}

/** Edits a header as JSON and returns its canonical text (what a careful forger writes back). */
export function editedHeader(header: string, edit: (h: Record<string, unknown>) => void): string {
  const h = JSON.parse(header) as Record<string, unknown>;
  edit(h);
  return canonicalize(h);
}

/**
 * Rewrites stream `stream` from `fromSeq` on so that its chain verifies again: new payload for the
 * first event, every later header re-linked and re-hashed, a session.end's last_hash recomputed.
 * Returns the edited images; only what is signed (checkpoints, the sealer's record) can tell.
 */
export function rewrittenStream(rows: readonly RawEventRow[], stream: string, fromSeq: number, newData: Record<string, unknown>): EventImage[] {
  const own = rows.filter((r) => r.stream === stream).sort((a, b) => a.seq - b.seq);
  let prev: Buffer = Buffer.from(own[fromSeq - 1]!.hash);
  const out: EventImage[] = [];
  for (const r of own.slice(fromSeq)) {
    let data = r.data!;
    if (r.seq === fromSeq) data = canonicalize(newData);
    const h = JSON.parse(r.header) as Record<string, unknown>;
    if (h['kind'] === 'session.end') data = canonicalize({ ...(JSON.parse(data) as Record<string, unknown>), last_hash: prev.toString('hex') });
    h['payload_digest'] = payloadDigest(r.salt!, data).toString('hex');
    h['prev'] = prev.toString('hex');
    const header = canonicalize(h);
    const hash = eventHash(prev, header);
    out.push({ ...image(r), header, data, hash });
    prev = hash;
  }
  return out;
}

/**
 * The ledger the tamper and seal tests start from, appended and sealed through the interface alone
 * (pos: stream seq kind):
 *
 *   0 a0 session.start  1 b0 session.start  2 a1 tool.call  3 a2 note  4 b1 capture (artifact)
 *   ── checkpoint 1 (size 5)
 *   5 a3 note           6 b2 tool.call      7 a4 session.end
 *   ── checkpoint 2 (size 8)
 *   8 c0 session.start  9 c1 note          10 b3 session.end
 *   ── checkpoint 3 (size 11)
 */
export interface SealedLedger {
  a: string;
  b: string;
  c: string;
  artifact: { sha256: string; bytes: Buffer };
  checkpoints: CheckpointRow[];
  pos(stream: string, seq: number): number;
}

export const ARTIFACT_BYTES = Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010806000000', 'hex');

export async function buildSealed(l: Ledger): Promise<SealedLedger> {
  const a = `a-${uuidv7()}`;
  const b = `b-${uuidv7()}`;
  const c = `c-${uuidv7()}`;
  const ref = await l.putArtifact(ARTIFACT_BYTES, 'image/png', 'before');
  const receipts = [
    ...(await l.append([
      event(a, 'session.start', {}),
      event(b, 'session.start', {}),
      event(a, 'tool.call', { tool: 'billing.refund', arguments: { order: 'A-1042', amount: 50 } }, { resource: 'billing', action: 'refund', outcome: 'success' }),
      note(a, 'refund requested'),
      event(b, 'capture', { role: 'before', url: 'https://billing.example/orders/A-1042' }, { artifacts: [ref], resource: 'billing', action: 'screenshot' }),
    ])),
  ];
  const cp1 = (await l.seal())!;
  receipts.push(
    ...(await l.append([
      note(a, 'refund done'),
      event(b, 'tool.call', { tool: 'crm.lookup', arguments: { customer: 'customer-12345' } }, { resource: 'crm', action: 'lookup', outcome: 'success' }),
      event(a, 'session.end', { reason: 'completed' }),
    ])),
  );
  const cp2 = (await l.seal())!;
  receipts.push(...(await l.append([event(c, 'session.start', {}), note(c, 'nightly check'), event(b, 'session.end', { reason: 'completed' })])));
  const cp3 = (await l.seal())!;
  const index = new Map(receipts.map((r) => [`${r.stream}#${r.seq}`, r.pos]));
  return {
    a,
    b,
    c,
    artifact: { sha256: ref.sha256, bytes: ARTIFACT_BYTES },
    checkpoints: [cp1, cp2, cp3],
    pos: (stream, seq) => {
      const p = index.get(`${stream}#${seq}`);
      if (p === undefined) throw new Error(`no event ${stream}#${seq}`);
      return p;
    },
  };
}
