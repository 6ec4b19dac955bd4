/** Sizes for a full run and for a `--quick` smoke run. */
export interface Config {
  quick: boolean;
  /** Repetitions per measurement (medians are reported). */
  reps: number;
  append: { events: number; batch: number };
  recorder: {
    /** (a) sequential awaited writes per repetition. */
    seqWrites: number;
    /** (b) writes fired without awaiting per repetition. */
    fireWrites: number;
    seqWritesPower: number;
    fireWritesPower: number;
  };
  verify: { events: number };
  query: { events: number; queries: number; agents: number };
  memory: { sizes: number[]; reps: number };
  gateway: {
    /** Sequential echo calls per side per repetition (stdio and HTTP latency). */
    calls: number;
    warmup: number;
    reps: number;
    /** Concurrent HTTP sessions for throughput and memory. */
    clients: number;
    /** Sequential calls per session in the throughput runs. */
    callsPerClient: number;
    /** Completed-call counts at which the gateway's RSS is sampled; the last is the run's length. */
    memoryMarks: number[];
  };
  /** Benchmark 7, the 2026-07-28 era over HTTP: sequential echo calls per side per repetition. */
  modern: { calls: number; warmup: number; reps: number };
  capture: { captures: number; warmup: number; calls: number; videoSteps: number; videoReps: number };
  /** Benchmark 8, the PostgreSQL ledger (bench/postgres.ts). */
  postgres: {
    /** (1) events per append repetition, in batches of `batch`. */
    appendEvents: number;
    batch: number;
    /** (2) writer process counts, events per writer, its batch size and streams, repetitions. */
    writers: number[];
    writerEvents: number;
    writerBatch: number;
    writerStreams: number;
    writerReps: number;
    /** (3) size of the ledger queried (built per run), events per append while building it. */
    queryEvents: number;
    buildBatch: number;
  };
  /** Events per append transaction while building the shared large ledger. */
  buildBatch: number;
  /** The large ledger is sealed every this many events (the recorder seals every 1,000 or 10 s). */
  buildSealEvery: number;
}

export function makeConfig(quick: boolean): Config {
  if (quick) {
    return {
      quick,
      reps: 3,
      append: { events: 20_000, batch: 1000 },
      recorder: { seqWrites: 300, fireWrites: 3_000, seqWritesPower: 50, fireWritesPower: 500 },
      verify: { events: 30_000 },
      query: { events: 100_000, queries: 50, agents: 100 },
      memory: { sizes: [25_000, 50_000, 100_000], reps: 1 },
      gateway: { calls: 300, warmup: 50, reps: 3, clients: 8, callsPerClient: 150, memoryMarks: [1_000, 2_500, 5_000] },
      modern: { calls: 300, warmup: 50, reps: 3 },
      capture: { captures: 10, warmup: 3, calls: 5, videoSteps: 5, videoReps: 1 },
      postgres: { appendEvents: 20_000, batch: 1000, writers: [1, 2, 4], writerEvents: 2_000, writerBatch: 100, writerStreams: 10, writerReps: 2, queryEvents: 100_000, buildBatch: 5_000 },
      buildBatch: 5_000,
      buildSealEvery: 10_000,
    };
  }
  return {
    quick,
    reps: 5,
    append: { events: 200_000, batch: 1000 },
    recorder: { seqWrites: 2_000, fireWrites: 20_000, seqWritesPower: 300, fireWritesPower: 5_000 },
    verify: { events: 300_000 },
    query: { events: 1_000_000, queries: 200, agents: 100 },
    memory: { sizes: [250_000, 500_000, 1_000_000], reps: 3 },
    gateway: { calls: 1_000, warmup: 100, reps: 3, clients: 8, callsPerClient: 1_000, memoryMarks: [10_000, 50_000, 100_000] },
    modern: { calls: 1_000, warmup: 100, reps: 3 },
    capture: { captures: 50, warmup: 5, calls: 30, videoSteps: 20, videoReps: 3 },
    postgres: { appendEvents: 50_000, batch: 1000, writers: [1, 2, 4], writerEvents: 5_000, writerBatch: 100, writerStreams: 10, writerReps: 3, queryEvents: 1_000_000, buildBatch: 5_000 },
    buildBatch: 5_000,
    buildSealEvery: 10_000,
  };
}
