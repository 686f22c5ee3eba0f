import { PgClient } from "@effect/sql-pg"
import { assert, describe, it } from "@effect/vitest"
import { CheckpointStore, Event, EventStore, Position, Snapshot, StorageError } from "@facta/core"
import { Migrations, PgCheckpointStore, PgEventStore, PgStore } from "@facta/postgres"
import { Config, ConfigProvider, DateTime, Deferred, Effect, Fiber, Layer, Option, Tracer } from "effect"
import { SqlClient } from "effect/sql"
import * as Database from "../support/database.ts"

// PgStore: every store over one pool and one schema, migrated once; layerConfig reads the pool's and the stores'
// settings from Config; Migrations.apply runs an application's own migrations the way the store runs its own.

const event = (data: { readonly [key: string]: string } = {}): Event.EventData => ({
  eventId: Event.makeEventIdUnsafe(),
  type: "Pinged",
  schemaVersion: 1,
  data
})

const dropSchema = (schema: string) =>
  SqlClient.SqlClient.use((sql) => sql`DROP SCHEMA IF EXISTS ${sql(schema)} CASCADE`).pipe(
    Effect.provide(Database.client({ maxConnections: 1 }), { local: true })
  )

/** The migrations a schema recorded, as `number_name`. */
const recorded = (schema: string) =>
  SqlClient.SqlClient.use(
    (sql) => sql<{ id: number; name: string }>`SELECT migration_id AS id, name FROM ${sql(schema)}.migrations
      ORDER BY migration_id`
  ).pipe(Effect.map((rows) => rows.map((row) => `${row.id}_${row.name}`)))

const storeMigrations = [
  "1_event_store",
  "2_projections",
  "3_log_key",
  "4_append_batch",
  "5_read_log",
  "6_append_stream",
  "7_append_epoch"
]

/** A tracer that keeps every span, to count the migration runs a layer's construction makes. */
const spanRecorder = () => {
  const spans: Array<Tracer.NativeSpan> = []
  const tracer = Tracer.make({
    span: (options) => {
      const span = new Tracer.NativeSpan(options)
      spans.push(span)
      return span
    }
  })
  return { tracer, runs: () => spans.filter((span) => span.name === "Migrations.apply").length }
}

/**
 * Runs `call` while another transaction holds `table` in ACCESS EXCLUSIVE mode; returns its error and how long it
 * waited for it.
 */
const blockedOn = <A, E, R>(schema: string, table: string, call: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const locked = yield* Deferred.make<void>()
    const release = yield* Deferred.make<void>()
    const holder = yield* Effect.forkChild(
      sql.withTransaction(
        Effect.gen(function* () {
          yield* sql`LOCK TABLE ${sql(schema)}.${sql(table)} IN ACCESS EXCLUSIVE MODE`
          yield* Deferred.succeed(locked, undefined)
          yield* Deferred.await(release)
        })
      )
    )
    yield* Deferred.await(locked)
    const started = Date.now()
    const error = yield* Effect.flip(call)
    const waited = Date.now() - started
    yield* Deferred.succeed(release, undefined)
    yield* Fiber.join(holder)
    return { error, waited }
  })

describe("PgStore.layer", () => {
  it.live(
    "migrates once and gives the event, checkpoint and snapshot stores over the client in context",
    () =>
      Effect.gen(function* () {
        const schema = Database.uniqueSchema("pgstore")
        const once = spanRecorder()
        yield* Effect.gen(function* () {
          const store = yield* EventStore.EventStore
          const checkpoints = yield* CheckpointStore.CheckpointStore
          const snapshots = yield* Snapshot.SnapshotStore
          const pg = yield* PgEventStore.PgEventStore
          const sql = yield* SqlClient.SqlClient
          assert.strictEqual(pg.schema, schema)
          assert.deepStrictEqual(yield* recorded(schema), storeMigrations)

          const appended = yield* store.append("Ping-1", [event()])
          yield* snapshots.save({
            streamId: "Ping-1",
            version: 1,
            stateVersion: 1,
            state: { pings: 1 },
            takenAt: DateTime.makeUnsafe("2026-01-01T00:00:00Z")
          })
          assert.strictEqual(Option.getOrThrow(yield* snapshots.load("Ping-1")).version, 1)

          // the checkpoint store commits on the client in context: the work sees the checkpoint it moves, in the
          // same transaction
          const key = { name: "pings", version: 1, partition: 0 }
          const lease = Option.getOrThrow(yield* checkpoints.acquire(key, "owner-1", "10 seconds"))
          const seen = yield* checkpoints.commit(
            lease,
            Position.start,
            appended.positions[0]!,
            sql<{ checkpoint: string }>`SELECT checkpoint FROM ${sql(schema)}.checkpoints WHERE name = 'pings'`
          )
          assert.strictEqual(seen[0]!.checkpoint, Position.format(appended.positions[0]!))
        }).pipe(
          Effect.provide(PgStore.layer({ schema }).pipe(Layer.provideMerge(Database.client({ maxConnections: 4 }))), {
            local: true
          }),
          Effect.withTracer(once.tracer)
        )
        assert.strictEqual(once.runs(), 1, "one migration run for the three stores")

        // the spy sees what the separate layers did: the event store's and the checkpoint store's runs
        const separate = spanRecorder()
        yield* EventStore.EventStore.pipe(
          Effect.provide(
            Layer.mergeAll(PgEventStore.layer({ schema }), PgCheckpointStore.layer({ schema })).pipe(
              Layer.provide(Database.client({ maxConnections: 2 }))
            ),
            { local: true }
          ),
          Effect.withTracer(separate.tracer)
        )
        assert.strictEqual(separate.runs(), 2)

        // and migrate: false runs none
        const none = spanRecorder()
        yield* EventStore.EventStore.pipe(
          Effect.provide(PgStore.layer({ schema, migrate: false }).pipe(Layer.provide(Database.client())), {
            local: true
          }),
          Effect.withTracer(none.tracer)
        )
        assert.strictEqual(none.runs(), 0)
        yield* dropSchema(schema)
      }),
    60_000
  )
})

describe("PgStore.layerConfig", () => {
  it.live(
    "reads the pool's and every store's settings from a ConfigProvider",
    () =>
      Effect.gen(function* () {
        const schema = Database.uniqueSchema("pgstore_config")
        const provider = ConfigProvider.fromUnknown({
          DATABASE_URL: Database.databaseUrl(),
          POOL_SIZE: "3",
          PREPARE: "false",
          SCHEMA: schema,
          MIGRATE: "true",
          WAKEUPS: "coalesced",
          COALESCE_INTERVAL: "10 millis",
          BATCHING: "false",
          READ_DEADLINE: "500 millis",
          APPEND_DEADLINE: "10 seconds",
          CONTROL_DEADLINE: "2 seconds",
          COMMIT_DEADLINE: "30 seconds",
          LISTEN_URL: Database.databaseUrl(),
          MAX_EVENT_BYTES: "1000",
          MAX_APPEND_BYTES: "2500"
        })
        const Stores = PgStore.layerConfig({
          url: Config.Redacted("DATABASE_URL"),
          maxConnections: Config.Int("POOL_SIZE"),
          prepare: Config.Boolean("PREPARE"),
          schema: Config.String("SCHEMA"),
          migrate: Config.Boolean("MIGRATE"),
          wakeups: Config.Literals(["auto", "per-append", "coalesced"], "WAKEUPS"),
          coalesceInterval: Config.Duration("COALESCE_INTERVAL"),
          batching: Config.Boolean("BATCHING").pipe(Config.map((on) => (on ? {} : false))),
          deadlines: {
            read: Config.Duration("READ_DEADLINE"),
            append: Config.Duration("APPEND_DEADLINE"),
            control: Config.Duration("CONTROL_DEADLINE"),
            commit: Config.Duration("COMMIT_DEADLINE")
          },
          pooler: { listenUrl: Config.Redacted("LISTEN_URL") },
          maxEventBytes: Config.Int("MAX_EVENT_BYTES"),
          maxAppendBytes: Config.Int("MAX_APPEND_BYTES")
        }).pipe(Layer.provide(ConfigProvider.layer(provider)))

        yield* Effect.gen(function* () {
          const store = yield* EventStore.EventStore
          const checkpoints = yield* CheckpointStore.CheckpointStore
          const pg = yield* PgEventStore.PgEventStore
          const client = yield* PgClient.PgClient

          // the pool: its size and prepared statements off, as a pooler needs
          assert.strictEqual((client.config as PgClient.PgPoolConfig).maxConnections, 3)
          assert.strictEqual(client.config.prepare, false)
          // the schema, migrated
          assert.strictEqual(pg.schema, schema)
          assert.deepStrictEqual(yield* recorded(schema), storeMigrations)
          // the pooler, woken through its direct connection
          assert.strictEqual(pg.wakeupSource, "listen-direct")

          // the size limit: an event over 1,000 bytes fails typed, one under it lands
          const tooLarge = yield* Effect.flip(store.append("Sized-1", [event({ text: "x".repeat(1200) })]))
          assert.strictEqual(tooLarge._tag, "EventTooLarge")
          yield* store.append("Sized-1", [event({ text: "x".repeat(100) })])
          // the append limit: three events of about 900 bytes pass 2,500 bytes together
          const appendTooLarge = yield* Effect.flip(
            store.append(
              "Sized-2",
              [1, 2, 3].map(() => event({ text: "x".repeat(880) }))
            )
          )
          assert.strictEqual(
            appendTooLarge._tag === "EventTooLarge" ? appendTooLarge.limit : undefined,
            "maxAppendBytes"
          )
          assert.strictEqual(appendTooLarge._tag === "EventTooLarge" ? appendTooLarge.maxBytes : undefined, 2500)

          // batching off: concurrent appends each commit in a transaction of their own
          const results = yield* Effect.forEach([1, 2, 3, 4, 5, 6], (n) => store.append(`Alone-${n}`, [event()]), {
            concurrency: "unbounded"
          })
          assert.strictEqual(new Set(results.map((result) => result.positions[0]!.commit)).size, 6)

          // the read deadline: a read blocked behind a lock fails retryable at 500 ms
          const read = yield* blockedOn(schema, "streams", store.streamInfo("Sized-1"))
          assert.isTrue(StorageError.isRetryable(read.error), String(read.error))
          assert.isAtLeast(read.waited, 450)
          assert.isBelow(read.waited, 1900, "the read met the read deadline, not the control one")

          // the control deadline: the checkpoint store's status call fails at 2 seconds
          const status = yield* blockedOn(schema, "checkpoints", checkpoints.status("pings"))
          assert.isTrue(StorageError.isRetryable(status.error), String(status.error))
          assert.isAtLeast(status.waited, 1900)
          assert.isBelow(status.waited, 6000)
        }).pipe(Effect.provide(Stores, { local: true }))
        yield* dropSchema(schema)
      }),
    60_000
  )
})

describe("Migrations.apply", () => {
  it.live("runs an application's migrations once each, as statements or effects, in a table it names", () =>
    Effect.gen(function* () {
      const schema = Database.uniqueSchema("app_tables")
      const sql = yield* SqlClient.SqlClient
      const migrations = (app: string): ReadonlyArray<Migrations.Migration> => [
        ["orders", [`CREATE TABLE ${app}.orders (order_id text PRIMARY KEY, total bigint NOT NULL)`]],
        ["seed", Effect.asVoid(sql`INSERT INTO ${sql(app)}.orders (order_id, total) VALUES ('order-1', 10)`)]
      ]
      const first = yield* Migrations.apply({ schema, table: "read_model_migrations", migrations })
      assert.deepStrictEqual(first, [
        [1, "orders"],
        [2, "seed"]
      ])
      // a later version adds one at the end: only that one runs
      const later = yield* Migrations.apply({
        schema,
        table: "read_model_migrations",
        migrations: (app) => [...migrations(app), ["orders_total", [`CREATE INDEX ON ${app}.orders (total)`]]]
      })
      assert.deepStrictEqual(later, [[3, "orders_total"]])
      const rows = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM ${sql(schema)}.orders`
      assert.strictEqual(rows[0]!.n, 1, "the seed ran once")
      const exit = yield* Effect.exit(Migrations.apply({ schema, table: "bad; name", migrations }))
      assert.strictEqual(exit._tag, "Failure", "a table name that is not a plain identifier is refused")
      yield* sql`DROP SCHEMA ${sql(schema)} CASCADE`
    }).pipe(Effect.provide(Database.client({ maxConnections: 2 })))
  )
})
