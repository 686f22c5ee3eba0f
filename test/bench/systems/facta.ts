/** Facta's PostgreSQL event store, as the workloads drive it. */
import {
  CheckpointStore,
  CommandHandler,
  EventCodec,
  EventStore,
  ExpectedVersion,
  Projection,
  Snapshot
} from "@facta/core"
import * as Projections from "@facta/example-bank/readmodels/Projections"
import * as Tables from "@facta/example-bank/readmodels/Tables"
import { PgCheckpointStore, PgEventStore, PgSnapshotStore } from "@facta/postgres"
import { Effect, Layer, Option, Result, type Stream } from "effect"
import { SqlClient } from "effect/sql"
import * as BankLog from "../bankLog.ts"
import { batchSize, logStreams, readBatch, rebuildBatch } from "../config.ts"
import { Deposited, Plain, range, Snapshotted, type System, type Tail } from "../domain.ts"

export const make = Effect.gen(function* () {
  const store = yield* EventStore.EventStore
  const pgStore = yield* PgEventStore.PgEventStore
  const sql = yield* SqlClient.SqlClient
  const schema = pgStore.schema
  const s = sql(schema)
  const services = Layer.succeed(EventStore.EventStore, store).pipe(
    Layer.provideMerge(Layer.succeed(SqlClient.SqlClient, sql))
  )
  const pgCheckpoints = yield* PgCheckpointStore.make({ schema, migrate: false })
  const pgSnapshots = yield* PgSnapshotStore.make({ schema })
  const memorySnapshots = yield* Effect.provide(
    Effect.gen(function* () {
      return yield* Snapshot.SnapshotStore
    }),
    Snapshot.layerMemory
  )

  const system: System = {
    label: "Facta",
    append: (streamId, expected, events) =>
      store.append(streamId, events, { expectedVersion: ExpectedVersion.exact(expected) })
  }

  // the same store with `wakeups: "per-append"`: every append sends its own NOTIFY, overlapping ones too
  const perAppendStore = (yield* PgEventStore.make({ schema, migrate: false, wakeups: "per-append" })).store
  const perAppend: System = {
    label: "Facta, per-append NOTIFY",
    append: (streamId, expected, events) =>
      perAppendStore.append(streamId, events, { expectedVersion: ExpectedVersion.exact(expected) })
  }

  /** Writes `n` events with 100-event appends, then one command that snapshots at the new head. */
  const seedAggregate = Effect.fnUntraced(
    function* (streamId: string, n: number) {
      for (let v = 0; v < n; v += batchSize) {
        const k = Math.min(batchSize, n - v)
        yield* EventStore.appendEvents(
          Plain.events,
          streamId,
          range(k).map((i) => Deposited.make({ amount: v + i + 1 })),
          { expectedVersion: ExpectedVersion.exact(v) }
        )
      }
      const handled = yield* CommandHandler.handle(Snapshotted, streamId, 1).pipe(
        Effect.provideService(Snapshot.SnapshotStore, pgSnapshots)
      )
      const snapshot = yield* pgSnapshots.load(streamId)
      if (snapshot._tag === "None") return yield* Effect.die(new Error(`no snapshot was taken of ${streamId}`))
      yield* memorySnapshots.save(snapshot.value)
      return handled.version
    },
    Effect.provideService(EventStore.EventStore, store)
  )

  const provided = <A>(load: Effect.Effect<CommandHandler.Loaded<A>, unknown, EventStore.EventStore>) =>
    Effect.map(Effect.provideService(load, EventStore.EventStore, store), (l) => l.folded)
  const loads = (streamId: string) => ({
    plain: provided(CommandHandler.load(Plain, streamId)),
    pgSnapshot: provided(
      CommandHandler.load(Snapshotted, streamId).pipe(Effect.provideService(Snapshot.SnapshotStore, pgSnapshots))
    ),
    memorySnapshot: provided(
      CommandHandler.load(Snapshotted, streamId).pipe(Effect.provideService(Snapshot.SnapshotStore, memorySnapshots))
    ),
    /** Only the store's fold, counting: no decoding, no evolve, to split a load's time. */
    foldOnly: Effect.map(
      store.fold(streamId, 0, (n) => Result.succeed(n + 1)),
      () => 0
    )
  })

  /** The whole log, rebuilt: `n` events generated on the server in 100,000-row transactions. */
  const seedLog = Effect.fnUntraced(function* (n: number, progress: (rows: number) => Effect.Effect<void>) {
    yield* sql.unsafe(`TRUNCATE ${schema}.events, ${schema}.streams, ${schema}.snapshots RESTART IDENTITY`)
    for (let from = 1; from <= n; from += 100_000) {
      const to = Math.min(n, from + 100_000 - 1)
      yield* sql`
        INSERT INTO ${s}.events (epoch, stream_id, category, version, event_id, type, schema_version, data, metadata)
        SELECT 1, 'Seed-' || ((g - 1) % ${logStreams}), 'Seed', ((g - 1) / ${logStreams})::integer + 1,
          gen_random_uuid(), 'Deposited', 1, jsonb_build_object('amount', g), '{}'::jsonb
        FROM generate_series(${from}::bigint, ${to}::bigint) AS g`
      yield* progress(to)
    }
    yield* sql`
      INSERT INTO ${s}.streams (stream_id, category, version)
      SELECT stream_id, 'Seed', max(version) FROM ${s}.events GROUP BY stream_id`
    yield* sql.unsafe(`VACUUM (ANALYZE) ${schema}.events`)
    yield* sql.unsafe(`VACUUM (ANALYZE) ${schema}.streams`)
  })

  /** `Projection.run(..., { untilCaughtUp: true })` from the start of the log with a counting handler. */
  const catchUp = (name: string, checkpoints: "pg" | "memory", seconds: number) =>
    Effect.gen(function* () {
      let rows = 0
      const projection = Projection.make({
        name,
        events: EventCodec.make(Deposited),
        handleBatch: (events) =>
          Effect.sync(() => {
            rows += events.length
          })
      })
      const layer =
        checkpoints === "pg"
          ? Layer.succeed(CheckpointStore.CheckpointStore, pgCheckpoints)
          : CheckpointStore.layerMemory
      yield* Projection.run(projection, { untilCaughtUp: true, batchSize: readBatch }).pipe(
        Effect.provide(Layer.mergeAll(layer, services), { local: true }),
        Effect.timeoutOption(`${seconds} seconds`)
      )
      return rows
    })

  const readAll = (): Stream.Stream<unknown, unknown> => store.readAll({ batchSize: readBatch })

  /** A live projection with Facta's defaults (PgCheckpointStore, pages of 500, no batch window, NOTIFY wake-ups). */
  const tail =
    (name: string, options?: Projection.RunOptions): Tail =>
    (handled) =>
      Projection.run(
        Projection.make({
          name,
          events: EventCodec.make(Deposited),
          handle: (event) => Effect.sync(() => handled(event.streamId, event.data.amount))
        }),
        options
      ).pipe(
        Effect.provide(Layer.mergeAll(Layer.succeed(CheckpointStore.CheckpointStore, pgCheckpoints), services)),
        Effect.forkScoped,
        Effect.asVoid
      )

  /** The bank's Account log (bankLog.ts): `n` events over `accounts` accounts, in 100,000-row transactions. */
  const seedBankLog = Effect.fnUntraced(function* (
    n: number,
    accounts: number,
    progress: (rows: number) => Effect.Effect<void>
  ) {
    yield* sql.unsafe(`TRUNCATE ${schema}.events, ${schema}.streams, ${schema}.snapshots RESTART IDENTITY`)
    const perAccount = Math.ceil(n / accounts)
    for (let from = 1; from <= n; from += 100_000) {
      const to = Math.min(n, from + 100_000 - 1)
      yield* sql.unsafe(`
        INSERT INTO ${schema}.events (epoch, stream_id, category, version, event_id, type, schema_version, data, metadata)
        SELECT 1, stream_id, 'Account', version, gen_random_uuid(), type, 1, data, '{}'::jsonb
        FROM (${BankLog.rows(from, to, accounts, perAccount)}) AS generated`)
      yield* progress(to)
    }
    yield* sql`
      INSERT INTO ${s}.streams (stream_id, category, version)
      SELECT stream_id, 'Account', max(version) FROM ${s}.events GROUP BY stream_id`
    yield* sql.unsafe(`VACUUM (ANALYZE) ${schema}.events`)
    yield* sql.unsafe(`VACUUM (ANALYZE) ${schema}.streams`)
  })

  /**
   * Rebuilds the bank's account read model in schema `readModel` (created by the bank's migrations) with
   * `Projection.rebuild` (reset, then `untilCaughtUp` from the start of the log) and PgCheckpointStore, pages of
   * `rebuildBatch`. With a time budget of `seconds`, returns whether it stopped the rebuild: what was committed until
   * then stays, and the batch in flight (several pages when the handler lags the reader) finishes first. The tables
   * must exist ({@link createReadModel}).
   */
  const rebuildAccounts = (handler: "per-event" | "batch", readModel: string, seconds?: number) =>
    Effect.gen(function* () {
      const projection = handler === "batch" ? Projections.AccountsProjection : Projections.AccountsPerEventProjection
      const rebuild = Projection.rebuild(projection, { batchSize: rebuildBatch })
      if (seconds === undefined) return yield* Effect.as(rebuild, false)
      return Option.isNone(yield* Effect.timeoutOption(rebuild, `${seconds} seconds`))
    }).pipe(
      Effect.provideService(Tables.Schema, readModel),
      Effect.provide(Layer.mergeAll(Layer.succeed(CheckpointStore.CheckpointStore, pgCheckpoints), services), {
        local: true
      })
    )

  /** The bank's read-model tables in schema `readModel`, by the bank's migrations; dropped when the scope closes. */
  const createReadModel = (readModel: string) =>
    Effect.gen(function* () {
      yield* Effect.addFinalizer(() => Effect.ignore(sql.unsafe(`DROP SCHEMA IF EXISTS ${readModel} CASCADE`)))
      yield* Tables.migrate.pipe(Effect.provideService(Tables.Schema, readModel))
    })

  /** A read model's fingerprint (bankLog.ts), with the entries' log positions unless `positions` is false. */
  const fingerprint = (readModel: string, positions = true) =>
    Effect.map(sql.unsafe<BankLog.Fingerprint>(BankLog.fingerprint(readModel, positions)), (rows) => rows[0]!)

  /** How many events of each type the log holds, most first. */
  const typeMix = sql<{ type: string; events: string }>`
    SELECT type, count(*)::text AS events FROM ${s}.events GROUP BY type ORDER BY count(*) DESC`

  return {
    system,
    perAppend,
    schema,
    seedAggregate,
    loads,
    seedLog,
    catchUp,
    readAll,
    tail,
    seedBankLog,
    createReadModel,
    rebuildAccounts,
    fingerprint,
    typeMix
  }
})
