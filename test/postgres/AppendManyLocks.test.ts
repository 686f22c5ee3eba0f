import { assert, layer } from "@effect/vitest"
import { Event, EventStore, Position } from "@facta/core"
import { Effect, Exit, Fiber, Stream } from "effect"
import { SqlClient } from "effect/sql"
import * as Database from "../support/database.ts"
import { inLockOrder, otherTransaction, someoneWaitsFor } from "../support/locks.ts"

// How a multi-stream append (`appendMany`, one transaction) meets other transactions on the same streams. A second
// connection plays the other transaction: it holds a stream's writer lock (the advisory lock every append of the
// stream queues on first) and writes when the test says so.

const range = (n: number) => Array.from({ length: n }, (_, i) => i)

const event = (type: string): Event.EventData => ({
  eventId: Event.makeEventIdUnsafe(),
  type,
  schemaVersion: 1,
  data: { type }
})

/**
 * Starts `append`, lets the other transaction go on once the append waits for it, and returns the append's results
 * after checking that the other transaction committed.
 */
const appendAgainst = <A, E, R>(
  other: Effect.Success<ReturnType<typeof otherTransaction>>,
  append: Effect.Effect<A, E, R>
) =>
  Effect.gen(function* () {
    const appending = yield* Effect.forkChild(append)
    yield* someoneWaitsFor(other.pid)
    yield* other.go
    assert.isTrue(Exit.isSuccess(yield* other.done), "the other transaction committed")
    return yield* Fiber.join(appending)
  })

const versionsAndPositions = (streamId: string) =>
  Effect.flatMap(EventStore.EventStore, (store) => Stream.runCollect(store.read(streamId)))

layer(Database.eventStore("appendmany", { maxConnections: 6 }), { timeout: 60_000, excludeTestServices: true })(
  "PgEventStore appendMany against other transactions",
  (it) => {
    it.effect("appendMany takes every writer lock before its transaction id, so its events follow the other's", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const sql = yield* SqlClient.SqlClient
        // the other transaction holds B's lock and then writes B. appendMany runs in the caller's transaction, where
        // the store never runs it again: had it written A (taking a transaction id) before waiting for B, its B
        // event would order before theirs, and PostgreSQL would refuse it
        const theirs = event("Theirs")
        const other = yield* otherTransaction("Order-b", store.append("Order-b", [theirs]))
        const ours = [event("OursOnA"), event("OursOnB")]
        const results = yield* appendAgainst(
          other,
          sql.withTransaction(
            store.appendMany([
              { streamId: "Order-a", events: [ours[0]!] },
              { streamId: "Order-b", events: [ours[1]!] }
            ])
          )
        )
        assert.deepStrictEqual(
          results.map((r) => [r.streamId, r.nextExpectedVersion]),
          [
            ["Order-a", 1],
            ["Order-b", 2]
          ]
        )
        const b = yield* versionsAndPositions("Order-b")
        assert.deepStrictEqual(
          b.map((e) => [e.version, e.eventId]),
          [
            [1, theirs.eventId],
            [2, ours[1]!.eventId]
          ]
        )
        assert.isTrue(Position.isBefore(b[0]!.position, b[1]!.position), "the log has B's events in version order")
      })
    )

    it.effect("appendMany calls over the same streams in opposite orders never deadlock each other", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const sql = yield* SqlClient.SqlClient
        // inside the caller's transaction nothing is run again, so a deadlock would surface as a StorageError; taking
        // the locks stream by stream in request order, the two would deadlock in the first round or so
        const both = (first: string, second: string) =>
          sql.withTransaction(
            store.appendMany([
              { streamId: first, events: [event("Crossed")] },
              { streamId: second, events: [event("Crossed")] }
            ])
          )
        for (const round of range(10)) {
          const [a, b] = [`Crossed-a${round}`, `Crossed-b${round}`]
          yield* Effect.all([both(a, b), both(b, a)], { concurrency: 2 })
          const versions = yield* Effect.forEach([a, b], (id) => versionsAndPositions(id))
          assert.deepStrictEqual(
            versions.map((events) => events.map((e) => e.version)),
            [
              [1, 2],
              [1, 2]
            ]
          )
        }
      })
    )

    it.effect("a deadlock with another client's transaction is settled by running the append again", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        // appendMany takes the first lock, then waits for the second, which the other transaction holds; then the
        // other one wants the first. The first to wait (appendMany) finds the cycle after deadlock_timeout and is
        // aborted, then runs again
        const [first, second] = yield* inLockOrder("Deadlock-a", "Deadlock-b")
        const other = yield* otherTransaction(second, store.append(first, [event("Theirs")]))
        const results = yield* appendAgainst(
          other,
          store.appendMany([
            { streamId: first, events: [event("OursOnFirst")] },
            { streamId: second, events: [event("OursOnSecond")] }
          ])
        )
        assert.deepStrictEqual(
          results.map((r) => [r.streamId, r.nextExpectedVersion]),
          [
            [first, 2],
            [second, 1]
          ]
        )
      })
    )
  }
)

// A database whose transactions default to REPEATABLE READ: an append's snapshot is taken before it waits for the
// stream's writer, so the stream row it then finds changed refuses it with a serialization failure, which the store
// settles by running the append again.
layer(
  Database.eventStore("repeatable", {
    maxConnections: 8,
    startupParameters: { default_transaction_isolation: "repeatable read" },
    store: { batching: false }
  }),
  { timeout: 60_000, excludeTestServices: true }
)("PgEventStore under REPEATABLE READ", (it) => {
  it.effect("concurrent appends to one stream that PostgreSQL refuses for serialization are run again", () =>
    Effect.gen(function* () {
      const store = yield* EventStore.EventStore
      const sql = yield* SqlClient.SqlClient
      const [isolation] = yield* sql<{ level: string }>`SELECT current_setting('transaction_isolation') AS level`
      assert.strictEqual(isolation!.level, "repeatable read")
      const results = yield* Effect.forEach(range(8), () => store.append("Repeatable-1", [event("Raced")]), {
        concurrency: "unbounded"
      })
      assert.deepStrictEqual(
        results.map((r) => r.nextExpectedVersion).sort((x, y) => x - y),
        range(8).map((i) => i + 1)
      )
    })
  )
})
