import { assert, layer } from "@effect/vitest"
import { Event, EventStore, EventStoreError, ExpectedVersion, Position } from "@facta/core"
import { Cause, Deferred, Effect, Exit, Fiber, Option, Tracer } from "effect"
import { SqlClient } from "effect/sql"
import * as Database from "../support/database.ts"
import { inLockOrder, otherTransaction, someoneWaitsFor } from "../support/locks.ts"

// Group commit: with one append in flight at a time, the appends that start meanwhile wait and then go together in
// one statement. The append in flight is held on a stream's writer lock by another connection, so the test decides
// when the waiting ones go.

const event = (type: string): Event.EventData => ({
  eventId: Event.makeEventIdUnsafe(),
  type,
  schemaVersion: 1,
  data: { type }
})

/** The value of an exit that must be a success. */
const succeeded = <A, E>(exit: Exit.Exit<A, E> | undefined): A => {
  if (exit === undefined || Exit.isFailure(exit)) return assert.fail(`expected a success, got ${exit}`)
  return exit.value
}

/** The typed error of an exit that must be a failure. */
const failed = <A, E>(exit: Exit.Exit<A, E> | undefined): E | undefined =>
  exit !== undefined && Exit.isFailure(exit) ? Option.getOrUndefined(Cause.findErrorOption(exit.cause)) : undefined

/** The transaction an append's events were written in. */
const transactionOf = (result: EventStore.AppendResult) => result.positions[0]!.commit

/**
 * Holds the store's one slot with an append to `Blocker-n` waiting on another transaction, runs `waiting` (forked
 * appends that queue meanwhile), lets the blocker go, and returns the blocker's result and the forked fibers.
 */
const whileBusy = <A>(n: number, waiting: Effect.Effect<A>) =>
  Effect.gen(function* () {
    const store = yield* EventStore.EventStore
    const blocker = `Blocker-${n}`
    const other = yield* otherTransaction(blocker, Effect.void)
    const busy = yield* Effect.forkChild(store.append(blocker, [event("Busy")]))
    yield* someoneWaitsFor(other.pid)
    const queued = yield* waiting
    // the forked appends reach the queue at their first step; give the scheduler a moment to run them
    yield* Effect.sleep("50 millis")
    yield* other.go
    yield* other.done
    return { blocked: yield* Fiber.join(busy), queued }
  })

/** Each suite has its own store; lock waits may take a deadlock_timeout. */
const suite = { timeout: 60_000, excludeTestServices: true } as const

const fork = <A, E>(append: Effect.Effect<A, E>) => Effect.forkChild(Effect.exit(append))

layer(Database.eventStore("batching", { maxConnections: 6, store: { batching: { maxInFlight: 1 } } }), suite)(
  "PgEventStore batching",
  (it) => {
    it.effect("appends that wait go together in one transaction, each with its own expectation and result", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        yield* store.append("Moved-1", [event("A"), event("B")])
        yield* store.append("Closed-1", [event("A")])
        yield* store.archive("Closed-1")
        const earlier = [event("Earlier")]
        const original = yield* store.append("Again-1", earlier, { expectedVersion: ExpectedVersion.noStream })

        const { blocked, queued } = yield* whileBusy(
          1,
          Effect.all([
            fork(store.append("New-1", [event("A")], { expectedVersion: ExpectedVersion.noStream })),
            fork(store.append("Moved-1", [event("C")], { expectedVersion: ExpectedVersion.exact(1) })),
            fork(store.append("Closed-1", [event("B")])),
            fork(store.append("Again-1", earlier, { expectedVersion: ExpectedVersion.noStream })),
            fork(store.append("Twice-1", [event("First")], { expectedVersion: ExpectedVersion.noStream })),
            fork(store.append("Twice-1", [event("Second")], { expectedVersion: ExpectedVersion.noStream })),
            fork(store.append("New-2", [event("A"), event("B")], { expectedVersion: ExpectedVersion.noStream }))
          ])
        )
        const [created, moved, closed, again, first, second, created2] = yield* Effect.forEach(queued, Fiber.join)

        assert.strictEqual(succeeded(created).nextExpectedVersion, 1)
        assert.deepStrictEqual(
          failed(moved),
          new EventStoreError.WrongExpectedVersion({
            streamId: "Moved-1",
            expected: ExpectedVersion.exact(1),
            actual: 2
          })
        )
        assert.strictEqual(failed(closed)?._tag, "StreamArchived")
        assert.deepStrictEqual(succeeded(again), original, "a retry of a landed append gets the original result")
        // the same stream twice: in the order they started, the second seeing the first's event
        assert.strictEqual(succeeded(first).nextExpectedVersion, 1)
        assert.strictEqual(failed(second)?._tag, "WrongExpectedVersion")
        assert.strictEqual(succeeded(created2).nextExpectedVersion, 2)

        // the ones that wrote shared one transaction, after the blocked append's
        const transactions = [created, first, created2].map((exit) => transactionOf(succeeded(exit)))
        assert.strictEqual(new Set(transactions).size, 1, "one transaction for the waiting appends")
        assert.notStrictEqual(transactions[0], transactionOf(blocked))
        assert.isTrue(Position.isBefore(blocked.positions[0]!, succeeded(created).positions[0]!))
        // nothing of the refused ones was written
        const moved1 = yield* store.streamInfo("Moved-1")
        assert.strictEqual(Option.getOrThrow(moved1).version, 2)
      })
    )

    it.effect("a batch that fails as a whole runs each append again on its own", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const reused = event("Reused")
        yield* store.append("Owner-1", [reused])
        // an exact expectation does not look for its ids first, so the reused id fails the batch's statement on the
        // unique key; on its own, the append is told apart as a conflict, and the other one lands
        const { queued } = yield* whileBusy(
          2,
          Effect.all([
            fork(store.append("Good-1", [event("A")], { expectedVersion: ExpectedVersion.noStream })),
            fork(store.append("Thief-1", [reused], { expectedVersion: ExpectedVersion.noStream }))
          ])
        )
        const [good, thief] = yield* Effect.forEach(queued, Fiber.join)
        assert.strictEqual(succeeded(good).nextExpectedVersion, 1)
        assert.strictEqual(failed(thief)?._tag, "IdempotencyConflict")
        assert.isTrue(Option.isNone(yield* store.streamInfo("Thief-1")))
      })
    )

    it.effect("appends that waited run under a root span linked to each caller's span", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const spans: Array<Tracer.NativeSpan> = []
        const tracer = Tracer.make({
          span: (options) => {
            const span = new Tracer.NativeSpan(options)
            spans.push(span)
            return span
          }
        })
        const { queued } = yield* whileBusy(
          4,
          Effect.all([
            fork(store.append("Traced-1", [event("A")]).pipe(Effect.withSpan("caller-1"))),
            fork(store.append("Traced-2", [event("A")]).pipe(Effect.withSpan("caller-2")))
          ])
        ).pipe(Effect.withSpan("blocked caller"), Effect.withTracer(tracer))
        for (const exit of yield* Effect.forEach(queued, Fiber.join)) succeeded(exit)
        const batch = spans.filter((span) => span.name === "PgEventStore.appendBatch")
        assert.strictEqual(batch.length, 1)
        // not a child of the caller whose run ended before it (the blocked one), whose fiber started it
        assert.isTrue(Option.isNone(batch[0]!.parent))
        assert.deepStrictEqual(
          batch[0]!.links.map((link) => (link.span as Tracer.Span).name),
          ["caller-1", "caller-2"]
        )
        assert.strictEqual(batch[0]!.attributes.get("requests"), 2)
        // the batch's statement is traced under the batch
        const children = spans.filter((span) => Option.getOrUndefined(span.parent) === batch[0])
        assert.isAbove(children.length, 0)
      })
    )

    it.effect(
      "a batch caught in a deadlock with a caller's transaction gives way, and its appends land one by one",
      () =>
        Effect.gen(function* () {
          const store = yield* EventStore.EventStore
          const sql = yield* SqlClient.SqlClient
          // the batch takes `first`'s lock, then waits for `second`'s, which the caller's transaction holds; then that
          // transaction appends to `first`. The batch waited first, so its deadlock check runs first and aborts it
          const [first, second] = yield* inLockOrder("Cycle-a", "Cycle-b")
          const holding = yield* Deferred.make<number>()
          const go = yield* Deferred.make<void>()
          const caller = yield* Effect.forkChild(
            sql.withTransaction(
              Effect.gen(function* () {
                const [row] = yield* sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`
                yield* store.append(second, [event("Theirs")])
                yield* Deferred.succeed(holding, row!.pid)
                yield* Deferred.await(go)
                return yield* store.append(first, [event("Theirs")])
              })
            )
          )
          const pid = yield* Deferred.await(holding)
          const { queued } = yield* whileBusy(
            5,
            Effect.all([fork(store.append(first, [event("Ours")])), fork(store.append(second, [event("Ours")]))])
          )
          yield* someoneWaitsFor(pid)
          yield* Deferred.succeed(go, undefined)
          assert.strictEqual((yield* Fiber.join(caller)).nextExpectedVersion, 1, "the caller's transaction committed")
          const [ours1, ours2] = yield* Effect.forEach(queued, Fiber.join)
          assert.strictEqual(succeeded(ours1).nextExpectedVersion, 2)
          assert.strictEqual(succeeded(ours2).nextExpectedVersion, 2)
          // one by one: each in a transaction of its own
          assert.notStrictEqual(transactionOf(succeeded(ours1)), transactionOf(succeeded(ours2)))
        })
    )

    it.effect("an append interrupted while it waits is never written", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const { queued } = yield* whileBusy(
          3,
          Effect.gen(function* () {
            const dropped = yield* Effect.forkChild(store.append("Dropped-1", [event("A")]))
            const kept = yield* Effect.forkChild(store.append("Kept-1", [event("A")]))
            yield* Effect.sleep("20 millis")
            yield* Fiber.interrupt(dropped)
            return kept
          })
        )
        assert.strictEqual((yield* Fiber.join(queued)).nextExpectedVersion, 1)
        assert.isTrue(Option.isNone(yield* store.streamInfo("Dropped-1")))
      })
    )
  }
)

layer(
  Database.eventStore("batchcap", { maxConnections: 6, store: { batching: { maxInFlight: 1, maxAppends: 2 } } }),
  suite
)("PgEventStore batching, at most maxAppends per statement", (it) => {
  it.effect("appends beyond maxAppends go in the next statement", () =>
    Effect.gen(function* () {
      const store = yield* EventStore.EventStore
      const { queued } = yield* whileBusy(
        1,
        Effect.all([1, 2, 3].map((n) => fork(store.append(`Capped-${n}`, [event("A")]))))
      )
      const [first, second, third] = (yield* Effect.forEach(queued, Fiber.join)).map((exit) =>
        transactionOf(succeeded(exit))
      )
      assert.strictEqual(first, second, "the first two share a statement")
      assert.notStrictEqual(third, first, "the third waits for the next one")
    })
  )
})

layer(Database.eventStore("batchoff", { maxConnections: 10, store: { batching: false } }), suite)(
  "PgEventStore without batching",
  (it) => {
    it.effect("concurrent appends each run in a transaction of their own", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const results = yield* Effect.forEach(
          [1, 2, 3, 4, 5, 6, 7, 8],
          (n) => store.append(`Alone-${n}`, [event("A")]),
          {
            concurrency: "unbounded"
          }
        )
        assert.strictEqual(new Set(results.map(transactionOf)).size, 8)
      })
    )
  }
)
