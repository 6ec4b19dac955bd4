/**
 * The large ledger shared by benchmarks 3–5: built once per run in os.tmpdir() with SqliteLedger
 * itself (big append batches, sealed regularly like the recorder does), with file copies taken at
 * the smaller sizes the benchmarks need, so every size is a real, sealed, verifiable ledger.
 */
import fs from 'node:fs';
import path from 'node:path';
import { SqliteLedger } from '../src/store/index.js';
import { indexTail } from '../src/store/sqlite/indexer.js';
import type { Config } from './config.js';
import { Timeline } from './events.js';
import { benchDir, fileBytes, fmtInt, fmtMiB, log } from './util.js';

export interface BuildInfo {
  events: number;
  seconds: number;
  sessions: number;
  checkpoints: number;
  agents: number;
  bytes: number;
  batch: number;
  sealEvery: number;
}

export class LargeLedgers {
  private readonly sizes: number[];
  private readonly paths = new Map<number, string>();
  private building: Promise<void> | undefined;
  info: BuildInfo | undefined;

  constructor(
    private readonly cfg: Config,
    sizes: readonly number[],
  ) {
    this.sizes = [...new Set(sizes)].sort((a, b) => a - b);
  }

  get largest(): number {
    return this.sizes[this.sizes.length - 1] ?? 0;
  }

  /** Path of a sealed ledger holding exactly `size` events (a planned size). */
  async path(size: number): Promise<string> {
    if (!this.sizes.includes(size)) throw new Error(`ledger size ${size} was not planned (${this.sizes.join(', ')})`);
    this.building ??= this.build();
    await this.building;
    return this.paths.get(size)!;
  }

  private async build(): Promise<void> {
    const total = this.largest;
    const { buildBatch, buildSealEvery } = this.cfg;
    const agents = this.cfg.query.agents;
    const main = path.join(benchDir(), `ledger-${total}.db`);
    log(`ledger: building ${fmtInt(total)} events (${agents} agents, ts over one month) at ${main}`);
    const ledger = SqliteLedger.open({ path: main });
    const timeline = new Timeline(total, agents, 42);
    const t0 = performance.now();
    let built = 0;
    let sealedAt = 0;
    let checkpoints = 0;
    let lastLog = t0;
    for (const size of this.sizes) {
      while (built < size) {
        const n = Math.min(buildBatch, size - built, buildSealEvery - (built % buildSealEvery));
        const batch = new Array(n);
        for (let i = 0; i < n; i++) batch[i] = timeline.next();
        ledger.appendPreparedSync(ledger.prepare(batch));
        built += n;
        if (built % buildSealEvery === 0) {
          if ((await ledger.seal()) !== null) checkpoints++;
          // What the sealer does after each seal (idempotent if it already did): keep the query index current.
          indexTail(ledger.database);
          sealedAt = built;
        }
        const now = performance.now();
        if (now - lastLog > 5000) {
          lastLog = now;
          log(`ledger: ${fmtInt(built)} / ${fmtInt(total)} events (${fmtInt((built / (now - t0)) * 1000)} ev/s)`);
        }
      }
      if (sealedAt !== built) {
        if ((await ledger.seal()) !== null) checkpoints++;
        indexTail(ledger.database);
        sealedAt = built;
      }
      if (size === total) {
        this.paths.set(size, main);
      } else {
        ledger.database.pragma('wal_checkpoint(TRUNCATE)');
        const copy = path.join(benchDir(), `ledger-${size}.db`);
        fs.copyFileSync(main, copy);
        this.paths.set(size, copy);
        log(`ledger: snapshot of the first ${fmtInt(size)} events at ${copy}`);
      }
    }
    const seconds = (performance.now() - t0) / 1000;
    ledger.database.pragma('wal_checkpoint(TRUNCATE)');
    await ledger.close();
    this.info = {
      events: total,
      seconds,
      sessions: timeline.sessions,
      checkpoints,
      agents,
      bytes: fileBytes(main),
      batch: buildBatch,
      sealEvery: buildSealEvery,
    };
    log(
      `ledger: built ${fmtInt(total)} events in ${seconds.toFixed(1)} s (${fmtInt(total / seconds)} ev/s), ${fmtInt(timeline.sessions)} sessions, ${checkpoints} checkpoints, ${fmtMiB(this.info.bytes)} MiB`,
    );
  }
}
