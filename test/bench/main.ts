/**
 * Facta's PostgreSQL event store against Emmett's PostgreSQL event store and raw SQL, on the same server, in the same
 * run.
 *
 *   pnpm bench                                   # full size, embedded PostgreSQL unless DATABASE_URL is set
 *   BENCH_SCALE=0.05 pnpm bench                  # a quick run (a couple of minutes)
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test pnpm bench
 *
 * The knobs are in config.ts. Facta and the raw baseline live in a fresh schema of the database, Emmett (whose
 * tables have fixed names in `public`) in a fresh database `bench_emmett_<ts>`; both are dropped at the end.
 *
 * Workloads: single-event appends (1 and 8 writers) and 100-event batches (workloads/appends.ts); loading a 1,000-
 * and a 10,000-event aggregate (workloads/loads.ts); catching up a projection with 1,000,000 events
 * (workloads/catchup.ts); append-to-handler lag under a steady load (workloads/lag.ts); rebuilding the example bank's
 * account read model from a 2,000,000-event Account log (workloads/rebuild.ts); relaying a 100,000-event log to NATS
 * JetStream and to Redis Streams against publishing the same messages directly, and append-to-inbox lag through the
 * relay and a broker inbox (workloads/relay.ts; a broker that does not answer is skipped with one line). Systems:
 * systems/*.ts.
 */
import * as os from "node:os"
import { PgClient } from "@effect/sql-pg"
import { PgEventStore } from "@facta/postgres"
import { Effect, Layer, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import * as Embedded from "../support/embeddedPostgres.ts"
import {
  batchSize,
  logStreams,
  poolSize,
  readBatch,
  readSeconds,
  rebuildBatch,
  rebuildSeconds,
  runs,
  sizes,
  snapshotEvery,
  writers
} from "./config.ts"
import { eventData, now } from "./domain.ts"
import {
  catchUpTable,
  type Environment,
  lagTable,
  loadsTable,
  machine,
  rebuildTable,
  relayTable,
  writesTable
} from "./report.ts"
import * as Brokers from "./systems/brokers.ts"
import * as Emmett from "./systems/emmett.ts"
import * as EmmettAccounts from "./systems/emmettAccounts.ts"
import * as Facta from "./systems/facta.ts"
import * as Raw from "./systems/raw.ts"
import { compareWrites } from "./workloads/appends.ts"
import { compareCatchUps, drain } from "./workloads/catchup.ts"
import { compareLag } from "./workloads/lag.ts"
import { compareLoads } from "./workloads/loads.ts"
import { compareRebuilds } from "./workloads/rebuild.ts"
import { compareRelays } from "./workloads/relay.ts"

const server = Effect.acquireRelease(
  Effect.promise(async () => {
    const configured = process.env.DATABASE_URL
    if (configured !== undefined && configured !== "") {
      return { url: configured, embedded: false, stop: async () => {} }
    }
    const started = Date.now()
    const pg = await Embedded.start()
    console.error(`bench: embedded PostgreSQL ready on port ${new URL(pg.url).port} in ${Date.now() - started} ms`)
    return { url: pg.url, embedded: true, stop: pg.stop }
  }),
  (s) => Effect.promise(s.stop)
)

const program = (url: string, embedded: boolean, stamp: string) =>
  Effect.gen(function* () {
    const sql = yield* PgClient.PgClient
    const facta = yield* Facta.make
    const raw = yield* Raw.make(facta.schema)
    const emmett = yield* Emmett.make(url, `bench_emmett_${stamp}`)

    const [{ version }] = (yield* sql<{ version: string }>`SELECT version()`) as unknown as [{ version: string }]
    const settings = yield* sql<{ name: string; setting: string }>`
      SELECT name, setting FROM pg_settings
      WHERE name IN ('fsync', 'synchronous_commit', 'shared_buffers', 'wal_level', 'max_connections', 'work_mem',
        'effective_cache_size', 'max_wal_size')
      ORDER BY name`
    const env: Environment = { server: version, settings, embedded, load: os.loadavg() }
    yield* Effect.logInfo("bench: starting").pipe(
      Effect.annotateLogs({ schema: facta.schema, ...Object.fromEntries(settings.map((r) => [r.name, r.setting])) })
    )
    for (const line of machine(env)) console.error(line)

    const lines = ["## Facta vs Emmett vs raw SQL on PostgreSQL", "", ...machine(env), ""]

    // --- appends ------------------------------------------------------------------------------------------------
    if (runs("appends")) {
      const systems = [facta.system, facta.perAppend, emmett.system, raw.plain, raw.notifying]
      const single1 = yield* compareWrites("single1", systems, 1, sizes.single1, 1)
      const single8 = yield* compareWrites("single8", systems, writers, sizes.single8PerWriter, 1)
      const batches = yield* compareWrites("batch", systems, 1, sizes.batches, batchSize)
      lines.push(
        writesTable([
          [`single-event appends, 1 writer (${sizes.single1}/round)`, single1],
          [`single-event appends, ${writers} writers (${writers * sizes.single8PerWriter}/round)`, single8],
          [`${batchSize}-event batches, 1 writer (${sizes.batches * batchSize}/round)`, batches]
        ]),
        ""
      )
    }

    // --- aggregate loads ----------------------------------------------------------------------------------------
    if (runs("loads")) {
      const loads = []
      for (const size of [sizes.aggregateSmall, sizes.aggregateLarge]) {
        const id = `Account-bench${size}`
        yield* Effect.logInfo("load: seeding the aggregates").pipe(Effect.annotateLogs({ events: size }))
        const version = yield* facta.seedAggregate(id, size)
        yield* emmett.seedAggregate(id, version, eventData)
        yield* raw.seedAggregate(id, version, eventData)
        const f = facta.loads(id)
        loads.push([
          `${size.toLocaleString("en-US")} events`,
          yield* compareLoads(`load ${size}`, [
            { label: "Facta, no snapshot", load: f.plain, folded: version },
            { label: "Facta, snapshot in PgSnapshotStore", load: f.pgSnapshot, folded: 0 },
            { label: "Facta, snapshot in Snapshot.layerMemory", load: f.memorySnapshot, folded: 0 },
            { label: "Facta, EventStore.fold only (no decode, no evolve)", load: f.foldOnly },
            { label: "Emmett aggregateStream", load: emmett.load(id), folded: version },
            { label: "raw SELECT + JSON fold", load: raw.load(id), folded: version }
          ])
        ] as const)
      }
      lines.push(
        loadsTable(loads),
        "",
        `Aggregates: written with 100-event appends, then (Facta) one command through \`CommandHandler.handle\` whose ` +
          `snapshot policy (every ${snapshotEvery} events) saved a snapshot at the head; Emmett and raw got the same ` +
          "number of events. Emmett's PostgreSQL store has no snapshots.",
        ""
      )
    }

    // --- append-to-projection lag (before the big log, so the tails start near the end) --------------------------
    if (runs("lag")) {
      const lag = yield* compareLag([
        { system: facta.system, tail: (round) => facta.tail(`bench-lag-r${round}`) },
        {
          system: { ...facta.system, label: "Facta, batchWindow 5 ms" },
          tail: (round) => facta.tail(`bench-lag-window-r${round}`, { batchWindow: "5 millis" })
        },
        { system: emmett.system, tail: (round) => emmett.tail(`bench-lag-r${round}`) },
        { system: raw.notifying, tail: () => raw.tail }
      ])
      lines.push(lagTable(lag), "")
    }

    // --- catch-up -----------------------------------------------------------------------------------------------
    if (runs("catchup")) {
      const seedStart = now()
      const progress = (who: string) => (rows: number) =>
        Effect.logInfo(`catch-up: seeding ${who}`).pipe(
          Effect.annotateLogs({ rows, of: sizes.log, rowsPerSec: Math.round((rows / (now() - seedStart)) * 1000) })
        )
      yield* facta.seedLog(sizes.log, progress("Facta's events (read by raw too)"))
      yield* emmett.seedLog(sizes.log, progress("Emmett's emt_messages"))
      const seedSeconds = (now() - seedStart) / 1000
      const plan = yield* emmett.explainPage(Math.round(sizes.log / 3))
      yield* Effect.logInfo(`catch-up: the plan of Emmett's page query\n${plan}`)
      yield* drain(facta.readAll(), Math.min(sizes.log, 100_000)) // warms the cache
      const factaLabel = "Facta Projection.run(untilCaughtUp), PgCheckpointStore"
      const catchUp = yield* compareCatchUps([
        { label: factaLabel, run: (r) => facta.catchUp(`bench-catchup-pg-r${r}`, "pg", readSeconds) },
        {
          label: "Facta Projection.run(untilCaughtUp), CheckpointStore.layerMemory",
          run: (r) => facta.catchUp(`bench-catchup-mem-r${r}`, "memory", readSeconds)
        },
        { label: "Facta EventStore.readAll (no projection)", run: () => drain(facta.readAll()) },
        {
          label: "Emmett consumer + reactor (stopWhen noMessagesLeft)",
          run: (r) => emmett.catchUp(`catchup-r${r}`, readSeconds)
        },
        { label: `raw keyset pages of ${readBatch} below the horizon`, run: () => drain(raw.readPaged()) },
        { label: "raw one streamed SELECT (reference)", run: () => drain(raw.readStreamed()) }
      ])
      lines.push(
        catchUpTable(catchUp, factaLabel),
        "",
        `Catch-up: ${sizes.log.toLocaleString("en-US")} events seeded on the server into Facta's events table and ` +
          `into Emmett's emt_messages (100,000-row transactions, ${logStreams} streams, real transaction ids), then ` +
          `VACUUM (ANALYZE), in ${seedSeconds.toFixed(1)} s. The raw readers read Facta's table.`,
        "",
        "Emmett's page query at a third of the log:",
        "",
        "```",
        plan,
        "```"
      )
    }

    // --- rebuild a real read model (after the catch-up: it replaces the log) ---------------------------------------
    if (runs("rebuild")) {
      const seedStart = now()
      const progress = (who: string) => (rows: number) =>
        Effect.logInfo(`rebuild: seeding ${who}`).pipe(
          Effect.annotateLogs({ rows, of: sizes.bankLog, rowsPerSec: Math.round((rows / (now() - seedStart)) * 1000) })
        )
      yield* facta.seedBankLog(sizes.bankLog, sizes.bankAccounts, progress("Facta's events (read by raw too)"))
      yield* emmett.seedBankLog(sizes.bankLog, sizes.bankAccounts, progress("Emmett's emt_messages"))
      const seedSeconds = (now() - seedStart) / 1000
      const mix = yield* facta.typeMix
      const readModel = (name: string) => `${facta.schema}_${name}`
      for (const name of ["raw", "prefix", "batch", "per_event"]) yield* facta.createReadModel(readModel(name))
      const emmettReadModel = "bank"
      yield* EmmettAccounts.createReadModel(emmett, emmettReadModel)
      const factaBatch = "Facta AccountsProjection (handleBatch with PgBatch)"
      const rebuilt = yield* compareRebuilds(
        {
          label: "raw: one INSERT … SELECT with a running sum per account",
          run: raw.rebuildAccounts(readModel("raw")),
          fingerprint: (positions) => facta.fingerprint(readModel("raw"), positions),
          prefix: (upTo, positions) =>
            Effect.andThen(
              raw.rebuildAccounts(readModel("prefix"), upTo),
              facta.fingerprint(readModel("prefix"), positions)
            )
        },
        [
          {
            label: factaBatch,
            run: facta.rebuildAccounts("batch", readModel("batch")),
            fingerprint: facta.fingerprint(readModel("batch")),
            positions: true
          },
          {
            label: "Facta AccountsPerEventProjection (handle, one event at a time)",
            run: facta.rebuildAccounts("per-event", readModel("per_event"), rebuildSeconds),
            fingerprint: facta.fingerprint(readModel("per_event")),
            positions: true
          },
          {
            label: "Emmett postgreSQLProjection + rebuildPostgreSQLProjections",
            run: EmmettAccounts.rebuildAccounts(emmett, emmettReadModel, rebuildSeconds),
            fingerprint: EmmettAccounts.fingerprint(emmett, emmettReadModel),
            positions: false
          }
        ]
      )
      lines.push(
        rebuildTable(rebuilt, factaBatch),
        "",
        `Rebuild: ${sizes.bankLog.toLocaleString("en-US")} events of the bank's Account category over ` +
          `${sizes.bankAccounts.toLocaleString("en-US")} accounts ` +
          `(${mix.map((m) => `${Number(m.events).toLocaleString("en-US")} ${m.type}`).join(", ")}), generated on ` +
          "the server into Facta's events table and into Emmett's emt_messages (100,000-row transactions, real " +
          `transaction ids), then VACUUM (ANALYZE), in ${seedSeconds.toFixed(1)} s. Each system builds the bank's ` +
          "`accounts` and `account_entries` (created by the bank's migrations) from empty, once, reading pages of " +
          `${rebuildBatch} (a batch is larger when pages piled up while the handler ran). Raw and Facta's batch ` +
          `projection run to the end; the others are stopped after ${rebuildSeconds} s (the batch in flight commits ` +
          "first), and their rate is over the events they committed. Every read model was checked against raw's " +
          "(for a stopped one, raw's of the same first events): row counts, sums of balances and a checksum of " +
          "every row (with the log positions, for Facta's)."
      )
    }

    // --- relay to the brokers (after the rebuild: it replaces the log) ----------------------------------------------
    if (runs("relay")) {
      const brokers = [yield* Brokers.nats(stamp), yield* Brokers.redis(stamp)]
      const relayed = yield* compareRelays(facta.schema, facta.system, brokers)
      lines.push("", relayTable(relayed, Brokers.baselineInFlight))
    }

    // --- report -------------------------------------------------------------------------------------------------
    console.log(`\n${lines.join("\n")}\n`)
  })

const main = Effect.gen(function* () {
  const { url, embedded } = yield* server
  const stamp = Date.now().toString(36)
  const schema = `bench_${stamp}`
  const client = PgClient.layer({ url: Redacted.make(url), maxConnections: poolSize })
  const dropSchema = Layer.effectDiscard(
    Effect.addFinalizer(() =>
      Effect.ignore(SqlClient.SqlClient.use((sql) => sql`DROP SCHEMA IF EXISTS ${sql(schema)} CASCADE`))
    )
  )
  const live = Layer.mergeAll(PgEventStore.layer({ schema }), dropSchema).pipe(Layer.provideMerge(client))
  yield* Effect.scoped(program(url, embedded, stamp)).pipe(Effect.provide(live))
})

Effect.runPromise(Effect.scoped(main)).then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  }
)
