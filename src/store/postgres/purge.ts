import { checkPurgeRequest, purgeTargetRefusal, type PurgeReceipt, type PurgeRequest } from '../ledger.js';
import { PURGE_FUNCTION } from './schema.js';
import { PostgresSeal } from './seal.js';

/**
 * The retention purge (Ledger.purgePayloads): the record is appended and the payloads erased in
 * the append's own transaction, under the ledger lock, so both commit or neither does. The erasure
 * goes through the schema's `witness_purge` function (schema.ts purgeGuard), which admits only
 * positions a retention.purge event of this transaction lists and nulls only data and salt; the
 * writer role holds EXECUTE on it and no UPDATE on events.
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
      erased = Number((await c.query<{ n: number }>(`SELECT ${PURGE_FUNCTION}($1::bigint[]) AS n`, [positions])).rows[0]!.n);
    });
    return { record: record!, erased };
  }
}
