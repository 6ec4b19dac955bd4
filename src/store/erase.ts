import { UNPURGEABLE_KINDS, WitnessError, erasurePolicy, selectorMatches } from '../core/index.js';
import { GOVERNANCE_STREAM, activeHolds, governanceFields, type Actor } from './holds.js';
import type { Ledger } from './ledger.js';
import { cutoffOf, headerExtras, heldBy, listRetentionRules, purgeBatches, purgeData, sealedSize, type RetentionRule } from './retention.js';

export interface EraseRequest {
  subject: string;
  reason: string;
  dryRun?: boolean;
  now?: Date;
}

export interface EraseResult {
  subject: string;
  dryRun: boolean;
  policy: string;
  /** Payloads of the subject's events erased now (in a dry run: that would be). */
  purged: number;
  /** The subject's events whose payload was already gone. */
  alreadyPurged: number;
  records: Array<{ id: string; pos: number; count: number }>;
  /** Whether the ledger was sealed first, so every event erased had been vouched for by the key. */
  sealedFirst: boolean;
}

/**
 * Subject erasure (GDPR Art. 17): the payloads of every event whose header names `subject` are
 * purged through the same path and with the same receipt as retention, under policy
 * `erasure:<subject>`. Refused in one sentence, changing nothing, when a hold in force covers any
 * of them, or while a keeping duty binds any of them (a rule set by a preset whose period has not
 * passed: Art. 17(3)(b), a legal obligation to keep, wins). A rule set with --older-than is a limit,
 * not a duty, and does not block erasure. Unsealed events are sealed first when this process can
 * seal (Ledger.canSeal: the key, and on PostgreSQL a login in the writer role, which the retention
 * role is not); otherwise the erasure is refused until the writer seals.
 */
export async function eraseSubject(ledger: Ledger, request: EraseRequest, who: Actor): Promise<EraseResult> {
  if (request.subject.trim() === '') throw new WitnessError('invalid_argument', 'Name the subject to erase with --subject ID.');
  if (request.reason.trim() === '') throw new WitnessError('invalid_argument', 'An erasure needs a --reason (e.g. the request reference), which is recorded with it.');
  const now = request.now ?? new Date();
  const holds = await activeHolds(ledger);
  const duties = (await listRetentionRules(ledger)).filter((r) => r.duty);
  const positions: number[] = [];
  const held = new Map<string, number>();
  const bound = new Map<RetentionRule, number>();
  let already = 0;
  let unsealedSeen = false;
  let sealed = await sealedSize(ledger);
  for await (const page of ledger.scanForVerify(0, ledger.info.size, 10_000)) {
    for (const row of page) {
      if (UNPURGEABLE_KINDS.includes(row.kind) || !row.header.includes('"subject":')) continue;
      const extras = headerExtras(row, { subject: true, classes: duties.length > 0 });
      if (extras.subject !== request.subject) continue;
      if (row.data === null) {
        already++;
        continue;
      }
      const hold = heldBy(holds, row, extras);
      if (hold !== undefined) held.set(hold.id, (held.get(hold.id) ?? 0) + 1);
      for (const r of duties) {
        if (selectorMatches(r.match, row.kind, extras) && row.ts >= cutoffOf(r.period, now).toISOString()) bound.set(r, (bound.get(r) ?? 0) + 1);
      }
      if (row.pos >= sealed) unsealedSeen = true;
      positions.push(row.pos);
    }
  }
  if (held.size > 0) {
    const list = [...held].map(([id, n]) => `${id} (${n})`).join(', ');
    throw new WitnessError(
      'conflict',
      `Erasure of subject ${request.subject} refused: a legal hold covers ${[...held.values()].reduce((a, b) => a + b, 0)} of its events (${list}); nothing was erased — release the hold first if the case allows.`,
      {
        details: { holds: Object.fromEntries(held) },
      },
    );
  }
  if (bound.size > 0) {
    const [r, n] = [...bound][0]!;
    throw new WitnessError(
      'conflict',
      `Erasure of subject ${request.subject} refused: a keeping duty (${r.policy}, set ${r.setAt}) still binds ${n} of its events, and a legal obligation to keep wins over erasure (GDPR Art. 17(3)(b)); nothing was erased.`,
      {
        details: { policy: r.policy },
      },
    );
  }
  const policy = erasurePolicy(request.subject);
  const result: EraseResult = { subject: request.subject, dryRun: request.dryRun === true, policy, purged: positions.length, alreadyPurged: already, records: [], sealedFirst: false };
  if (result.dryRun || positions.length === 0) return result;
  if (unsealedSeen) {
    if (!ledger.canSeal) {
      throw new WitnessError(
        'conflict',
        `Erasure of subject ${request.subject} refused: some of its events are not in a signed checkpoint yet and this process cannot seal (it has no signing key, or its PostgreSQL login is not in the writer role); run \`witness seal\` as the writer, then erase.`,
      );
    }
    await ledger.seal();
    sealed = await sealedSize(ledger);
    result.sealedFirst = true;
  }
  const before = now.toISOString();
  const batches = purgeBatches(positions.filter((p) => p < sealed));
  for (const [i, batch] of batches.entries()) {
    const r = await ledger.purgePayloads({
      positions: batch,
      record: {
        stream: GOVERNANCE_STREAM,
        ...governanceFields(who),
        kind: 'retention.purge',
        subject: request.subject,
        resource: 'erasure',
        action: 'purge',
        outcome: 'success',
        data: purgeData(policy, before, batch, { reason: request.reason, batch: i + 1, batches: batches.length }),
      },
    });
    result.records.push({ id: r.record.id, pos: r.record.pos, count: batch.length });
  }
  return result;
}
