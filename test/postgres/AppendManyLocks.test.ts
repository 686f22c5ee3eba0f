import { assert, layer } from "@effect/vitest"
import { Event, EventStore, Position } from "@facta/core"
import { PgEventStore } from "@facta/postgres"
import { Deferred, Effect, Exit, Fiber, Stream } from "effect"
import { SqlClient } from "effect/sql"
import * as Database from "../support/database.ts"

// How a multi-stream append (`appendMany`, one transaction) meets other transactions on the same streams. A second
// connection plays the other transaction: it holds a stream's writer lock (the advisory lock every append of the
// stream queues on first) and writes when the test says so.

const event = (type: string): Event.EventData => ({
  eventId: Event.makeEventIdUnsafe(),
  type,
  schemaVersion: 1,
  data: { type }
})

/** Another client's transaction: takes `lockedStream`'s writer lock, waits for `go`, then runs `then`. */
const otherTransaction = <A, E, R>(lockedStream: string, then: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const { schema } = yield* PgEventStore.PgEventStore
    const holding = yield* Deferred.make<number>()
    const go = yield* Deferred.make<void>()
    const fiber = yield* Effect.forkChild(
      sql
        .withTransaction(
          Effect.gen(function* () {
            const [row] = yield* sql<{ pid: number }>`SELECT pg_backend_pid() AS pid,
            pg_advisory_xact_lock(hashtext(${schema}), hashtext(${lockedStream}))::text AS locked`
            yield* Deferred.succeed(holding, row!.pid)
            yield* Deferred.await(go)
            return yield* then
          })
        )
        .pipe(Effect.exit)
    )
    const pid = yield* Deferred.await(holding)
    return { pid, go: Deferred.succeed(go, undefined), done: Fiber.join(fiber) }
  })

/** Waits until some session waits for a lock that the session `pid` holds. */
const someoneWaitsFor = (pid: number) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    for (let tries = 0; tries < 200; tries++) {
      const [row] = yield* sql<{ n: bigint }>`SELECT count(*) AS n FROM pg_stat_activity
        WHERE ${pid}::integer = ANY (pg_blocking_pids(pid))`
      if (row!.n > 0n) return
      yield* Effect.sleep("25 millis")
    }
    assert.fail(`nobody waited for session ${pid}`)
  })

/**
 * Starts `appendMany(requests)`, lets the other transaction go on once the append waits for it, and returns the
 * append's results after checking that the other transaction committed.
 */
const appendManyAgainst = (
  other: Effect.Success<ReturnType<typeof otherTransaction>>,
  requests: ReadonlyArray<EventStore.AppendRequest>
) =>
  Effect.gen(function* () {
    const store = yield* EventStore.EventStore
    const appending = yield* Effect.forkChild(store.appendMany(requests))
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
    it.effect("a transaction that would order a stream's events before its last ones is run again, after them", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        // the other transaction holds B's lock; appendMany takes A (and with it its transaction id), then waits for B
        const theirs = event("Theirs")
        const other = yield* otherTransaction("Retry-b", store.append("Retry-b", [theirs]))
        const ours = [event("OursOnA"), event("OursOnB")]
        // once appendMany waits, the other transaction writes B with a newer transaction id and commits: appendMany's
        // older id would put its B event before theirs in the log, so PostgreSQL refuses it and the store runs it again
        const results = yield* appendManyAgainst(other, [
          { streamId: "Retry-a", events: [ours[0]!] },
          { streamId: "Retry-b", events: [ours[1]!] }
        ])
        assert.deepStrictEqual(
          results.map((r) => [r.streamId, r.nextExpectedVersion]),
          [
            ["Retry-a", 1],
            ["Retry-b", 2]
          ]
        )
        const b = yield* versionsAndPositions("Retry-b")
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

    it.effect("a deadlock with another client's transaction is settled by running the append again", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        // the other transaction holds B's lock; appendMany takes A, waits for B; then the other one wants A. The
        // first to wait (appendMany) finds the cycle after deadlock_timeout and is aborted, then runs again
        const other = yield* otherTransaction("Deadlock-b", store.append("Deadlock-a", [event("Theirs")]))
        const results = yield* appendManyAgainst(other, [
          { streamId: "Deadlock-a", events: [event("OursOnA")] },
          { streamId: "Deadlock-b", events: [event("OursOnB")] }
        ])
        assert.deepStrictEqual(
          results.map((r) => [r.streamId, r.nextExpectedVersion]),
          [
            ["Deadlock-a", 2],
            ["Deadlock-b", 1]
          ]
        )
      })
    )
  }
)
