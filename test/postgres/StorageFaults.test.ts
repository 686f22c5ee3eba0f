import { assert, layer } from "@effect/vitest"
import { CheckpointStore, Event, EventStore, ExpectedVersion, Projection, StorageError } from "@facta/core"
import { PgEventStore } from "@facta/postgres"
import { Cause, Deferred, Effect, Exit, Fiber, Option, Schedule, Stream } from "effect"
import { SqlClient } from "effect/sql"
import * as Database from "../support/database.ts"
import {
  Counted,
  codec,
  compareWithLog,
  countingProjection,
  createReadModel,
  currentOwner,
  eventually,
  type ReadModel
} from "../support/projection.ts"

// Storage failures under a projection or an append are the infrastructure's, never a handler's: a batch whose
// connection is terminated is retried, never parked or blamed on an event; a multi-stream append whose connection
// drops fails typed; two runs under one owner name are holder and standby; a blocked call meets its deadline.

const schema = Database.uniqueSchema("storagefaults")
const Live = Database.projectionStoresIn(schema, {
  maxConnections: 8,
  store: { deadlines: { read: "600 millis" } }
})

const appendCounted = (streamId: string, count: number) =>
  EventStore.appendEvents(
    codec,
    streamId,
    Array.from({ length: count }, (_, n) => Counted.make({ n: n + 1 }))
  )

/** A counting projection whose batch transaction loses its connection (the backend is terminated) `drops` times. */
const droppingProjection = (
  model: ReadModel,
  name: string,
  category: string,
  onFailure: "stop" | "park",
  drops: number
) => {
  const inner = countingProjection({ model, name, category, onFailure })
  let left = drops
  return Projection.make({
    name,
    events: codec,
    categories: [category],
    onFailure,
    retry: Schedule.recurs(1),
    handleBatch: (events) =>
      Effect.andThen(
        inner.handle(events),
        Effect.suspend(() => {
          if (left <= 0) return Effect.void
          left--
          return SqlClient.SqlClient.use((sql) => sql`SELECT pg_terminate_backend(pg_backend_pid())`)
        })
      )
  })
}

const parkedOf = (name: string) => CheckpointStore.CheckpointStore.use((store) => store.parked(name))

layer(Live, { timeout: 60_000, excludeTestServices: true })("Storage failures on PostgreSQL", (it) => {
  for (const onFailure of ["park", "stop"] as const) {
    it.effect(`a batch whose connection drops three times is retried: nothing parked or blamed (${onFailure})`, () =>
      Effect.gen(function* () {
        const category = `Dropped${onFailure}`
        const model = { schema, prefix: `dropped_${onFailure}` }
        yield* createReadModel(model)
        yield* appendCounted(`${category}-1`, 3)
        const name = `dropped-${onFailure}`
        yield* Projection.run(droppingProjection(model, name, category, onFailure, 3), {
          untilCaughtUp: true,
          batchSize: 1
        })
        const diff = yield* compareWithLog(model, category)
        assert.strictEqual(diff.logSize, 3)
        assert.deepStrictEqual(diff.missing, [], "every healthy event reached the read model")
        assert.deepStrictEqual(diff.duplicates, [], "and once")
        assert.deepStrictEqual(diff.countMismatches, [])
        assert.deepStrictEqual(yield* parkedOf(name), [], "nothing parked")
      })
    )
  }

  it.effect("appendMany whose connection drops inside its transaction fails with a retryable StorageError", () =>
    Effect.gen(function* () {
      const store = yield* EventStore.EventStore
      const sql = yield* SqlClient.SqlClient
      const { schema } = yield* PgEventStore.PgEventStore
      yield* appendCounted("Many-1", 1)
      const locked = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const holder = yield* Effect.forkChild(
        sql.withTransaction(
          Effect.gen(function* () {
            yield* sql`SELECT 1 FROM ${sql(schema)}.streams WHERE stream_id = 'Many-1' FOR UPDATE`
            yield* Deferred.succeed(locked, undefined)
            yield* Deferred.await(release)
          })
        )
      )
      yield* Deferred.await(locked)
      const event = (): Event.EventData => ({
        eventId: Event.makeEventIdUnsafe(),
        type: "Counted",
        schemaVersion: 1,
        data: { n: 1 }
      })
      const requests = [
        { streamId: "Many-1", events: [event()], expectedVersion: ExpectedVersion.exact(1) },
        { streamId: "Many-2", events: [event()], expectedVersion: ExpectedVersion.noStream }
      ]
      const appender = yield* Effect.forkChild(store.appendMany(requests))
      let pid: number | undefined
      yield* eventually(
        "appendMany waiting on the stream lock",
        Effect.map(
          sql<{ pid: number }>`SELECT pid FROM pg_stat_activity
            WHERE wait_event_type = 'Lock' AND query LIKE ${`%${schema}%append%`} AND pid <> pg_backend_pid()`,
          (rows) => {
            pid = rows[0]?.pid
            return rows.length === 1
          }
        ),
        10_000
      )
      yield* sql`SELECT pg_terminate_backend(${pid!}, 5000)`
      const exit = yield* Fiber.await(appender)
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(holder)
      assert.isTrue(Exit.isFailure(exit))
      if (Exit.isFailure(exit)) {
        assert.isFalse(Cause.hasDies(exit.cause), `no defect: ${Cause.pretty(exit.cause)}`)
        const error = Option.getOrUndefined(Exit.findErrorOption(exit))
        assert.isTrue(StorageError.isStorageError(error), `a StorageError: ${Cause.pretty(exit.cause)}`)
        assert.isTrue(StorageError.isRetryable(error))
      }
      // the retry of the same request lands once
      const results = yield* store.appendMany(requests)
      assert.deepStrictEqual(
        results.map((r) => r.nextExpectedVersion),
        [2, 1]
      )
    })
  )

  it.effect("two runs under one owner name are holder and standby; the standby takes over with a higher fence", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const category = "SameOwner"
      const model = { schema, prefix: "same_owner" }
      yield* createReadModel(model)
      yield* appendCounted(`${category}-1`, 5)
      const name = "same-owner"
      const options = { owner: "bank-demo", leaseTtl: "300 millis", pollInterval: "50 millis" } as const
      const first = yield* Effect.forkChild(Projection.run(countingProjection({ model, name, category }), options))
      yield* eventually(
        "the first run holds the lease",
        Effect.map(currentOwner(name), (o) => o.length > 0),
        5000
      )
      const second = yield* Effect.forkChild(Projection.run(countingProjection({ model, name, category }), options))
      const holders = new Set<string>()
      const fences = new Set<string>()
      for (let i = 0; i < 60; i++) {
        const rows = yield* sql<{ owner: string | null; fence: string }>`SELECT owner, fence::text AS fence
          FROM ${sql(schema)}.checkpoints WHERE name = ${name}`
        for (const row of rows) {
          if (row.owner !== null) holders.add(row.owner)
          fences.add(row.fence)
        }
        yield* Effect.sleep("25 millis")
      }
      assert.strictEqual(holders.size, 1, `one holder for 1.5 s, no ping-pong: ${[...holders].join(", ")}`)
      assert.strictEqual(fences.size, 1, "the fence did not move while the holder ran")
      const [held] = [...holders]
      const fenceBefore = Number([...fences][0])
      yield* Fiber.interrupt(first)
      yield* eventually(
        "the standby takes over",
        Effect.map(
          sql<{ owner: string | null; fence: string }>`SELECT owner, fence::text AS fence
            FROM ${sql(schema)}.checkpoints WHERE name = ${name}`,
          ([row]) => row?.owner !== null && row?.owner !== held && Number(row?.fence) > fenceBefore
        ),
        5000
      )
      yield* appendCounted(`${category}-1`, 2)
      yield* Projection.waitFor({ name, version: 1 }, yield* EventStore.EventStore.use((s) => s.head), {
        timeout: "5 seconds"
      })
      yield* Fiber.interrupt(second)
      const diff = yield* compareWithLog(model, category)
      assert.strictEqual(diff.logSize, 7)
      assert.deepStrictEqual(diff.missing, [])
      assert.deepStrictEqual(diff.duplicates, [])
    })
  )

  it.effect("a read blocked behind a lock fails with a retryable StorageError at its deadline, then succeeds", () =>
    Effect.gen(function* () {
      const store = yield* EventStore.EventStore
      const sql = yield* SqlClient.SqlClient
      yield* appendCounted("Blocked-1", 2)
      const locked = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const holder = yield* Effect.forkChild(
        sql.withTransaction(
          Effect.gen(function* () {
            yield* sql`LOCK TABLE ${sql(schema)}.events IN ACCESS EXCLUSIVE MODE`
            yield* Deferred.succeed(locked, undefined)
            yield* Deferred.await(release)
          })
        )
      )
      yield* Deferred.await(locked)
      const started = Date.now()
      const error = yield* Effect.flip(Stream.runCollect(store.read("Blocked-1")))
      const waited = Date.now() - started
      assert.isTrue(StorageError.isRetryable(error), `a retryable StorageError: ${String(error)}`)
      assert.isAtLeast(waited, 550)
      assert.isBelow(waited, 3000, "the read did not wait past its deadline")
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(holder)
      const events = yield* Stream.runCollect(store.read("Blocked-1"))
      assert.strictEqual(events.length, 2, "the pool serves reads again")
    })
  )
})
