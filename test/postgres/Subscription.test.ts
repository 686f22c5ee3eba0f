import { PgClient } from "@effect/sql-pg"
import { assert, layer } from "@effect/vitest"
import { Event, EventStore, Subscription } from "@facta/core"
import { PgEventStore } from "@facta/postgres"
import { Deferred, Effect, Fiber, Queue, Stream } from "effect"
import { SqlClient } from "effect/sql"
import * as Database from "../support/database.ts"

const schema = Database.uniqueSchema("subscription")

const event = (): Event.EventData => ({
  eventId: Event.makeEventIdUnsafe(),
  type: "Ticked",
  schemaVersion: 1,
  data: {}
})

/** A subscriber from the log's head whose poll interval outlasts the test: only wake-ups deliver in time. */
const subscriber = Effect.gen(function* () {
  const seen = yield* Queue.unbounded<string>()
  const after = yield* EventStore.EventStore.use((store) => store.lastCommitted)
  yield* Subscription.subscribe({ after, pollInterval: "1 hour" }).pipe(
    Stream.runForEach((e) => Queue.offer(seen, e.eventId)),
    Effect.forkScoped
  )
  return seen
})

const within = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  effect.pipe(Effect.timeoutOrElse({ duration: "5 seconds", orElse: () => Effect.die("no wake-up in time") }))

layer(Database.eventStoreIn(schema), { excludeTestServices: true })("Subscription on PostgreSQL", (it) => {
  it.effect(
    "an event that commits behind the horizon is delivered soon after the horizon passes, not a poll later",
    () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const sql = yield* SqlClient.SqlClient
        const seen = yield* subscriber
        const warmup = event()
        yield* store.append("Horizon-1", [warmup])
        assert.strictEqual(yield* within(Queue.take(seen)), warmup.eventId)
        // an older writing transaction holds the horizon back while the append commits and notifies
        const release = yield* Deferred.make<void>()
        const holding = yield* Deferred.make<void>()
        const holder = yield* Effect.forkChild(
          sql.withTransaction(
            Effect.gen(function* () {
              yield* sql`SELECT pg_current_xact_id()::text AS xid`
              yield* Deferred.succeed(holding, undefined)
              yield* Deferred.await(release)
            })
          )
        )
        yield* Deferred.await(holding)
        const held = event()
        yield* store.append("Horizon-1", [held])
        yield* Effect.sleep("300 millis") // the wake-up came and found nothing readable
        yield* Deferred.succeed(release, undefined)
        yield* Fiber.join(holder)
        // the poll interval is an hour: only the subscription's second look after the wake-up delivers it
        assert.strictEqual(yield* within(Queue.take(seen)), held.eventId)
      })
  )

  it.effect("wakes through LISTEN, and listens again after its connection is killed", () =>
    Effect.gen(function* () {
      const store = yield* EventStore.EventStore
      const sql = yield* SqlClient.SqlClient
      const { schema: storeSchema } = yield* PgEventStore.PgEventStore
      const seen = yield* subscriber

      const first = event()
      yield* store.append("Tick-1", [first])
      assert.strictEqual(yield* within(Queue.take(seen)), first.eventId)

      const listeners = () =>
        sql<{ pid: number }>`SELECT pid FROM pg_stat_activity
          WHERE query ILIKE ${`LISTEN%${storeSchema}_events%`} AND pid <> pg_backend_pid()`
      const [listener] = yield* listeners()
      assert.isDefined(listener, "a connection listens")
      yield* sql`SELECT pg_terminate_backend(${listener!.pid})`
      // the listener reconnects on its retry schedule
      yield* within(Effect.repeat(listeners(), { until: (rows) => rows.length > 0 && rows[0]!.pid !== listener!.pid }))

      const second = event()
      yield* store.append("Tick-1", [second])
      assert.strictEqual(yield* within(Queue.take(seen)), second.eventId)
    })
  )
})

const Coalesced = Database.eventStore("coalesced", { store: { wakeups: "coalesced" } })

layer(Coalesced, { excludeTestServices: true })("Subscription on PostgreSQL, coalesced wake-ups", (it) => {
  it.effect("appends wake a subscriber after commit, in their own transaction or the caller's", () =>
    Effect.gen(function* () {
      const store = yield* EventStore.EventStore
      const sql = yield* SqlClient.SqlClient
      const seen = yield* subscriber
      // a burst: many appends, at least one wake-up, every event delivered
      const burst = Array.from({ length: 20 }, () => event())
      yield* Effect.forEach(burst, (e) => store.append("Tick-2", [e]), { concurrency: 4, discard: true })
      const delivered = yield* within(Effect.forEach(burst, () => Queue.take(seen)))
      assert.sameMembers(
        delivered,
        burst.map((e) => e.eventId)
      )
      // inside the caller's transaction the append notifies at that transaction's commit
      const inTransaction = event()
      yield* sql.withTransaction(Effect.andThen(store.append("Tick-2", [inTransaction]), Effect.sleep("50 millis")))
      assert.strictEqual(yield* within(Queue.take(seen)), inTransaction.eventId)
    })
  )
})

const autoSchema = Database.uniqueSchema("autowake")
// a long interval, so that a burst is announced by few process-sent wake-ups, whatever the machine's speed
const Auto = Database.eventStoreIn(autoSchema, { store: { coalesceInterval: "200 millis" } })

layer(Auto, { excludeTestServices: true })("Subscription on PostgreSQL, automatic wake-ups (the default)", (it) => {
  it.effect("a lone append notifies in its own transaction; overlapping appends share one wake-up per burst", () =>
    Effect.gen(function* () {
      const store = yield* EventStore.EventStore
      const sql = yield* PgClient.PgClient
      const notifications = yield* sql.listen(`${autoSchema}_events`)
      const settle = Effect.sleep("400 millis")
      yield* settle // the LISTEN is in place, and nothing is pending
      yield* Queue.clear(notifications)

      // one append at a time: each notifies at its own commit, none waits for the process
      for (let i = 0; i < 5; i++) yield* store.append("Lone-1", [event()])
      yield* settle
      assert.strictEqual((yield* Queue.clear(notifications)).length, 5, "one wake-up per lone append")

      // 40 appends, 8 at a time: the first notifies itself, the rest are announced by the process after they commit
      yield* Effect.forEach(
        Array.from({ length: 40 }, (_, i) => i),
        (i) => store.append(`Burst-${i % 8}`, [event()]),
        { concurrency: 8, discard: true }
      )
      yield* settle
      const burst = (yield* Queue.clear(notifications)).length
      assert.isAtLeast(burst, 1, "a burst wakes subscribers")
      assert.isBelow(burst, 40, "overlapping appends do not each notify")
    })
  )
})
