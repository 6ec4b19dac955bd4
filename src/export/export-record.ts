import { WitnessError, type AgentRef } from '../core/index.js';
import type { AppendRequest, CheckpointRow, Ledger } from '../store/index.js';
import { ExportRecord, type BundleMode, type BundleScope } from './bundle-format.js';

/** The stream where reads and exports of audit data are themselves recorded. */
export const AUDIT_STREAM = 'witness.audit-access';

/** Who the export's audit.access event names: the person exporting, through which program. */
export interface ExportIdentity {
  /** The person (or service) exporting: the event's principal and `data.actor`. */
  actor: string;
  /** The recording program: `witness-cli` by default; the server passes its own, with the key's id. */
  agent?: AgentRef;
  recorder?: { kind: 'cli' | 'server'; version?: string };
  /** Where the request came from (the server's remote address). */
  from?: string;
}

/**
 * Appends the export's own audit.access event (stream witness.audit-access, action `export`) and
 * seals until a signed checkpoint covers it. It is appended before the bundle is written, so the
 * signed tree — not the unsigned manifest — says what the bundle must hold (ExportRecord); a
 * ledger that cannot record and seal it cannot export.
 */
export async function recordExport(
  ledger: Ledger,
  who: ExportIdentity,
  what: {
    scope: BundleScope;
    mode: BundleMode;
    span: { from: number; to: number };
    eventsDigest: string;
    count: number;
    inScope: number;
    output: string;
    files: Record<string, string>;
    checkpointsFrom: number | null;
  },
): Promise<{ leaf: number; id: string; checkpoint: CheckpointRow }> {
  const data: ExportRecord = ExportRecord.parse({
    actor: who.actor,
    operation: 'export',
    format: 'witness-evidence/2',
    scope: what.scope,
    mode: what.mode,
    span: what.span,
    events_digest: what.eventsDigest,
    count: what.count,
    in_scope: what.inScope,
    files: what.files,
    checkpoints_from: what.checkpointsFrom,
    output: what.output,
  });
  const request: AppendRequest = {
    stream: AUDIT_STREAM,
    agent: who.agent ?? { id: 'witness-cli' },
    principal: { id: who.actor, kind: 'human' },
    recorder: who.recorder ?? { kind: 'cli' },
    ...(who.from === undefined ? {} : { source: { host: who.from } }),
    kind: 'audit.access',
    resource: 'bundle',
    action: 'export',
    outcome: 'success',
    data,
  };
  const [receipt] = await ledger.append([request]);
  const leaf = receipt!.pos;
  return { leaf, id: receipt!.id, checkpoint: await sealThrough(ledger, leaf) };
}

/** A signed checkpoint covering `leaf`: sealed now, or by another sealer meanwhile (a few tries). */
async function sealThrough(ledger: Ledger, leaf: number): Promise<CheckpointRow> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const sealed = await ledger.seal();
    if (sealed !== null && sealed.size > leaf) return sealed;
    const latest = await ledger.latestCheckpoint();
    if (latest !== undefined && latest.size > leaf) return latest;
    // Another process is sealing the tail right now: its checkpoint is a moment away.
    await new Promise((r) => setTimeout(r, 50 * (attempt + 1)));
  }
  throw new WitnessError('invalid_checkpoint', `The export was recorded at leaf ${leaf} but no signed checkpoint covers it yet; run \`witness seal\`, then export again.`);
}

/** Refuses, before anything is read or written, a ledger this process cannot seal (the export's record must be signed). */
export function assertCanSeal(ledger: Ledger): void {
  if (!ledger.canSeal) {
    throw new WitnessError(
      'invalid_checkpoint',
      `Exporting records the export in ${ledger.info.location} and seals it, which needs the ledger's signing key; run the export where the key is (beside the ledger, or set $WITNESS_SIGNING_KEY or, on PostgreSQL, $WITNESS_SIGNING_KEY_FILE).`,
    );
  }
}
