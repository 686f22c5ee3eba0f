/**
 * The benchmark's knobs, read from the environment, and the sizes they give.
 *
 * BENCH_SCALE (default 1) multiplies every size and the lag test's duration; BENCH_ROUNDS (5) measured rounds per
 * write and load workload after one warm-up round; BENCH_SLICES (10) the turns a write round is cut into, each system
 * making its share of the round's appends in every turn; BENCH_READ_ROUNDS (3) measured catch-ups per reader;
 * BENCH_LOADS (10) aggregate loads per round and system; BENCH_POOL (10) pool size of every system;
 * BENCH_READ_BATCH (1000) the page size of every catch-up reader; BENCH_READ_SECONDS (30) the time budget of one
 * catch-up (a reader that runs out of it is reported with the rows it managed, and marked); BENCH_LAG_RATE (200)
 * appends per second and BENCH_LAG_SECONDS (10 × scale, at least 2) the length of the lag test; BENCH_LAG_ROUNDS (2)
 * its rounds per system; BENCH_REBUILD_SECONDS (60) the time budget of the slow read-model rebuilds (Facta's per-event
 * projection, Emmett's; one that runs out of it is reported with the events it handled, and marked);
 * BENCH_REBUILD_BATCH (2000) the page size of the rebuilds
 * (Facta's `batchSize`, Emmett's `pulling.batchSize`); BENCH_RELAY_ROUNDS (3) the relay workload's measured rounds
 * per broker of the relay's catch-up and of the direct-publish baseline; BENCH_RELAY_RATE (1000) appends per second
 * and BENCH_RELAY_SECONDS (10 × scale, at least 3) the length of its append → inbox lag test; BENCH_ONLY (all) a
 * comma-separated subset of the workloads `appends`, `loads`, `lag`, `catchup`, `rebuild`, `relay`, to iterate on one
 * of them.
 */

const positive = (name: string, fallback: number): number => {
  const text = process.env[name]
  if (text === undefined || text === "") return fallback
  const n = Number(text)
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number (got ${JSON.stringify(text)})`)
  return n
}
const count = (name: string, fallback: number) => Math.max(1, Math.round(positive(name, fallback)))

export const scale = positive("BENCH_SCALE", 1)
export const rounds = count("BENCH_ROUNDS", 5)
export const slices = count("BENCH_SLICES", 10)
export const readRounds = count("BENCH_READ_ROUNDS", 3)
export const loadsPerRound = count("BENCH_LOADS", 10)
export const poolSize = count("BENCH_POOL", 10)
export const readSeconds = positive("BENCH_READ_SECONDS", 30)
export const readBatch = count("BENCH_READ_BATCH", 1000)
export const lagRate = positive("BENCH_LAG_RATE", 200)
export const lagSeconds = positive("BENCH_LAG_SECONDS", Math.max(2, 10 * scale))
export const lagRounds = count("BENCH_LAG_ROUNDS", 2)
export const rebuildSeconds = positive("BENCH_REBUILD_SECONDS", 60)
export const rebuildBatch = count("BENCH_REBUILD_BATCH", 2000)
export const relayRounds = count("BENCH_RELAY_ROUNDS", 3)
export const relayRate = positive("BENCH_RELAY_RATE", 1000)
export const relaySeconds = positive("BENCH_RELAY_SECONDS", Math.max(3, 10 * scale))

const workloads = ["appends", "loads", "lag", "catchup", "rebuild", "relay"] as const
export type Workload = (typeof workloads)[number]
const only = (process.env.BENCH_ONLY ?? "")
  .split(",")
  .map((w) => w.trim())
  .filter((w) => w !== "")
for (const w of only) {
  if (!(workloads as ReadonlyArray<string>).includes(w)) {
    throw new Error(`BENCH_ONLY: unknown workload ${JSON.stringify(w)} (known: ${workloads.join(", ")})`)
  }
}
/** Whether this run measures the workload (every workload unless BENCH_ONLY names a subset). */
export const runs = (workload: Workload): boolean => only.length === 0 || only.includes(workload)

const sized = (n: number, min: number) => Math.max(min, Math.round(n * scale))

export const writers = 8
export const batchSize = 100
export const sizes = {
  /** events per round, one writer, one event per append */
  single1: sized(2_000, 20),
  /** events per round per writer, eight writers, one event per append */
  single8PerWriter: sized(500, 5),
  /** 100-event appends per round, one writer */
  batches: sized(200, 2),
  /** events in the small and the large aggregate's stream */
  aggregateSmall: sized(1_000, 100),
  aggregateLarge: sized(10_000, 200),
  /** events in the global log for the catch-up */
  log: sized(1_000_000, 10_000),
  /** events in the bank's Account log whose read model the rebuild workload builds, and the accounts they belong to */
  bankLog: sized(2_000_000, 20_000),
  bankAccounts: sized(10_000, 100),
  /** events in the log the relay workload relays to each broker (over {@link relayStreams} streams) */
  relayLog: sized(100_000, 1_000)
}
/** One snapshot policy for both aggregates: the command that follows the seeding folds more than this, so it snapshots. */
export const snapshotEvery = Math.max(1, Math.floor(sizes.aggregateSmall / 2))
export const logStreams = Math.max(1, Math.round(sizes.log / 1000))
/** The streams of the relay workload's log: 1,000, so that a page of 500 is one event per stream (one wave). */
export const relayStreams = Math.min(1000, sizes.relayLog)
