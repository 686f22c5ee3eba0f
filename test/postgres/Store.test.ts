import { PgClient } from "@effect/sql-pg"
import { assert, describe, it, layer } from "@effect/vitest"
import { Event, EventStore } from "@facta/core"
import { Migrations, PgEventStore, PgStore } from "@facta/postgres"
import { Cause, Config, ConfigProvider, Deferred, Effect, Exit, Fiber, Layer, Queue, Schedule } from "effect"
import { SqlClient } from "effect/sql"
import * as Database from "../support/database.ts"

const schema = Database.uniqueSchema("store")
const Live = Database.eventStoreIn(schema, { maxConnections: 6 })
const event = () => ({ eventId: Event.makeEventIdUnsafe(), type: "Pinged", schemaVersion: 1, data: {} })

layer(Live, { excludeTestServices: true })("PgEventStore", (it) => {
  it.effect("an append sends a payload-free NOTIFY, delivered at commit", () =>
    Effect.gen(function* () {
      const pg = yield* PgClient.PgClient
      const wakeups = yield* pg.listen(`${schema}_events`)
      const store = yield* EventStore.EventStore
      yield* store.append("Ping-1", [event()])
      const notification = yield* Queue.take(wakeups).pipe(Effect.timeout("5 seconds"))
      assert.strictEqual(notification.payload, "")
    })
  )

  it.effect("the horizon shows events held back by an open transaction, and clears when it ends", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const pg = yield* PgEventStore.PgEventStore
      const store = yield* EventStore.EventStore
      const opened = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      // an unrelated writing transaction that stays open holds the horizon back
      const blocker = yield* sql
        .withTransaction(
          Effect.gen(function* () {
            yield* sql`SELECT pg_current_xact_id()::text`
            yield* Deferred.succeed(opened, undefined)
            yield* Deferred.await(release)
          })
        )
        .pipe(Effect.forkChild)
      yield* Deferred.await(opened)
      yield* store.append("Ping-2", [event(), event()])
      const held = yield* pg.horizon
      assert.isAtLeast(held.heldBackEvents, 2)
      assert.isAbove(held.oldestTransactionSeconds, 0)
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(blocker)
      // other test files' short transactions share the cluster-wide horizon, so wait for it to clear
      const cleared = yield* pg.horizon.pipe(
        Effect.repeat({ schedule: Schedule.spaced("100 millis"), until: (h) => h.heldBackEvents === 0, times: 100 })
      )
      assert.strictEqual(cleared.heldBackEvents, 0)
    })
  )
})

describe("Migrations", () => {
  it.effect(
    "several processes migrating one schema at once all succeed and leave it migrated once",
    () =>
      Effect.gen(function* () {
        const target = Database.uniqueSchema("migrate")
        const migrate = Migrations.run(target).pipe(
          Effect.provide(Database.client({ maxConnections: 1 }), { local: true })
        )
        const results = yield* Effect.all(
          Array.from({ length: 4 }, () => migrate),
          { concurrency: "unbounded" }
        )
        assert.strictEqual(results.filter((applied) => applied.length > 0).length, 1, "exactly one of them migrated")
        assert.isAbove(results.flat().length, 0)
        const rows = yield* SqlClient.SqlClient.use(
          (sql) => sql<{ n: number }>`SELECT count(*)::int AS n FROM ${sql(target)}.migrations`
        )
        assert.strictEqual(rows[0]!.n, results.flat().length, "each migration recorded once")
        yield* SqlClient.SqlClient.use((sql) => sql`DROP SCHEMA ${sql(target)} CASCADE`)
      }).pipe(Effect.provide(Database.client())),
    60_000
  )

  it.effect("a schema name that is not a plain identifier is refused before any SQL runs", () =>
    Effect.gen(function* () {
      const exit = yield* Effect.exit(Migrations.run("x; drop table y"))
      assert.strictEqual(exit._tag, "Failure")
    }).pipe(Effect.provide(Database.client()))
  )

  it.effect("batching limits that would stop appends are refused when the store is built", () =>
    Effect.gen(function* () {
      for (const batching of [{ maxInFlight: 0 }, { maxAppends: 0 }, { maxInFlight: 1.5 }]) {
        const exit = yield* Effect.exit(Effect.scoped(PgEventStore.make({ migrate: false, batching })))
        const defect = Exit.isFailure(exit) ? Cause.squash(exit.cause) : undefined
        assert.match(String(defect), /must be a positive integer/, JSON.stringify(batching))
      }
    }).pipe(Effect.provide(Database.client()))
  )
})

describe("layerConfig", () => {
  it.effect("reads DATABASE_URL, the pool size and the schema from configuration", () =>
    Effect.gen(function* () {
      const target = Database.uniqueSchema("config")
      const provider = ConfigProvider.fromUnknown({
        DATABASE_URL: Database.databaseUrl(),
        FACTA_POOL_SIZE: 2,
        FACTA_SCHEMA: target
      })
      const result = yield* EventStore.EventStore.use((store) => store.append("Config-1", [event()])).pipe(
        Effect.provide(
          PgStore.layerConfig({
            url: Config.Redacted("DATABASE_URL"),
            maxConnections: Config.Int("FACTA_POOL_SIZE"),
            schema: Config.String("FACTA_SCHEMA")
          }).pipe(Layer.provide(ConfigProvider.layer(provider))),
          { local: true }
        )
      )
      assert.strictEqual(result.nextExpectedVersion, 1)
      yield* SqlClient.SqlClient.use((sql) => sql`DROP SCHEMA ${sql(target)} CASCADE`).pipe(
        Effect.provide(Database.client())
      )
    })
  )
})
