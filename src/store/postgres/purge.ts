import { WitnessError } from '../../core/index.js';
import { checkPurgeRequest, purgeTargetRefusal, type PurgeReceipt, type PurgeRequest } from '../ledger.js';
import { DEFAULT_RETENTION_ROLE } from '../roles.js';
import { PURGE_FUNCTION } from './schema.js';
import { PostgresSeal } from './seal.js';

/**
 * The retention purge (Ledger.purgePayloads): the record is appended and the payloads erased in
 * the append's own transaction, under the ledger lock, so both commit or neither does. The erasure
 * goes through the schema's `witness_purge` function (schema.ts purgeGuard), which admits only
 * positions a retention.purge event of this transaction lists, refuses what purgeTargetRefusal
 * refuses (schema version 5), and nulls only data and salt. Only the retention role and the
 * schema's owner may EXECUTE it; the writer role cannot, and no role but the owner may UPDATE events.
 */
export abstract class PostgresPurge extends PostgresSeal {
  async purgePayloads(request: PurgeRequest): Promise<PurgeReceipt> {
    this.assertOpen();
    this.assertWritable('purge payloads');
    checkPurgeRequest(request);
    const positions = [...request.positions];
    let erased = 0;
    const [record] = await this.appendOnce(this.prepare([request.record]), undefined, async (c) => {
      const rows = (await c.query<{ pos: number; kind: string }>('SELECT pos, kind FROM events WHERE pos = ANY($1::bigint[])', [positions])).rows;
      const sealed = (await c.query<{ size: number }>('SELECT size FROM checkpoints ORDER BY id DESC LIMIT 1')).rows[0]?.size ?? 0;
      const refusal = purgeTargetRefusal(rows, Number(sealed), positions.length);
      if (refusal !== undefined) throw refusal;
      try {
        erased = Number((await c.query<{ n: number }>(`SELECT ${PURGE_FUNCTION}($1::bigint[]) AS n`, [positions])).rows[0]!.n);
      } catch (e) {
        // 42501 here is the function's EXECUTE, not a table: the login may write but not purge.
        if ((e as { code?: unknown }).code !== '42501') throw e;
        throw new WitnessError(
          'forbidden',
          `This login may not purge payloads of the ledger ${this.info.location} (${(e as Error).message}); run \`witness retention run\` or \`witness erase\` as a login that is a member of the retention role (\`witness init --roles\` makes ${DEFAULT_RETENTION_ROLE}).`,
          { cause: e },
        );
      }
    });
    return { record: record!, erased };
  }
}
