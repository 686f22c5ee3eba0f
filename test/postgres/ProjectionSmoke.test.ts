import { assert, layer } from "@effect/vitest"
import { EventCodec, EventStore, Projection } from "@facta/core"
import { Deferred, Effect, Fiber, Schema } from "effect"
import { SqlClient } from "effect/sql"
import * as Database from "../support/database.ts"

const schema = Database.uniqueSchema("projsmoke")
const Live = Database.projectionStoresIn(schema)

const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Int })
const codec = EventCodec.make(Deposited)

const Balances = Projection.make({
  name: "balances",
  events: codec,
  handle: (event) =>
    Effect.flatMap(SqlClient.SqlClient, (sql) =>
      sql`INSERT INTO ${sql(schema)}.balances (account, balance) VALUES (${event.streamId}, ${event.data.amount})
        ON CONFLICT (account) DO UPDATE SET balance = balances.balance + excluded.balance`.pipe(Effect.orDie)
    )
})

layer(Live, { excludeTestServices: true })("Projection on PostgreSQL (smoke)", (it) => {
  it.effect("catches up, tails live through LISTEN, and commits read model with checkpoint", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      yield* sql`CREATE TABLE ${sql(schema)}.balances (account text PRIMARY KEY, balance int NOT NULL)`
      yield* EventStore.appendEvents(codec, "Account-1", [Deposited.make({ amount: 5 })])
      const fiber = yield* Effect.forkChild(Projection.run(Balances, { pollInterval: "30 seconds" }))
      const appended = yield* EventStore.appendEvents(codec, "Account-1", [Deposited.make({ amount: 10 })])
      yield* Projection.waitFor(Balances, appended.positions[0]!, { timeout: "3 seconds" })
      const rows = yield* sql<{ balance: number }>`SELECT balance FROM ${sql(schema)}.balances`
      assert.deepStrictEqual(
        rows.map((r) => r.balance),
        [15]
      )
      yield* Fiber.interrupt(fiber)
    })
  )

  it.effect("pages read while a batch is handled form the next batch, handled in one transaction", () =>
    Effect.gen(function* () {
      const release = yield* Deferred.make<void>()
      const batches: Array<ReadonlyArray<number>> = []
      const Gathering = Projection.make({
        name: "gathering",
        events: codec,
        categories: ["Gather"],
        handleBatch: (events) =>
          Effect.suspend(() => {
            batches.push(events.map((e) => e.data.amount))
            return batches.length === 1 ? Deferred.await(release) : Effect.void
          })
      })
      const amounts = [101, 102, 103, 104, 105, 106]
      const appended = yield* Effect.forEach(amounts, (amount) =>
        EventStore.appendEvents(codec, "Gather-1", [Deposited.make({ amount })])
      )
      // pages of one event: the first batch is held while the rest are read
      const fiber = yield* Effect.forkChild(Projection.run(Gathering, { batchSize: 1, pollInterval: "30 seconds" }))
      yield* Effect.sleep("300 millis")
      yield* Deferred.succeed(release, undefined)
      yield* Projection.waitFor(Gathering, appended.at(-1)!.positions[0]!, { timeout: "3 seconds" })
      yield* Fiber.interrupt(fiber)
      assert.strictEqual(batches.length, 2, `batches: ${JSON.stringify(batches)}`)
      assert.deepStrictEqual(batches.flat(), amounts)
    })
  )

  it.effect("once: an effect runs once per key through a rebuild, its claim committed with the checkpoint", () =>
    Effect.gen(function* () {
      const sent: Array<number> = []
      const Mailer = Projection.make({
        name: "mailer",
        events: codec,
        handle: (event) =>
          Projection.once(
            "mailer",
            event.eventId,
            Effect.sync(() => sent.push(event.data.amount))
          )
      })
      yield* EventStore.appendEvents(codec, "Account-9", [Deposited.make({ amount: 1 }), Deposited.make({ amount: 2 })])
      yield* Projection.run(Mailer, { untilCaughtUp: true, batchWindow: "1 millis" })
      yield* Projection.rebuild(Mailer, { batchWindow: "1 millis" })
      assert.includeMembers(sent, [1, 2])
      assert.strictEqual(sent.length, new Set(sent).size, "nothing sent twice")
    })
  )

  it.effect("untilCaughtUp waits for events committed before it started, even when the horizon holds them back", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const handled: Array<number> = []
      const Counter = Projection.make({
        name: "held-back",
        events: codec,
        categories: ["Held"],
        handle: (event) => Effect.sync(() => handled.push(event.data.amount))
      })
      // another transaction owns an older transaction id and stays open: what commits after it is held back
      const owned = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const holder = yield* Effect.forkChild(
        sql.withTransaction(
          Effect.gen(function* () {
            yield* sql`SELECT pg_current_xact_id()::text`
            yield* Deferred.succeed(owned, undefined)
            yield* Deferred.await(release)
          })
        )
      )
      yield* Deferred.await(owned)
      yield* EventStore.appendEvents(codec, "Held-1", [Deposited.make({ amount: 7 })])
      const run = yield* Effect.forkChild(
        Projection.run(Counter, { untilCaughtUp: true, batchWindow: "1 millis", pollInterval: "50 millis" })
      )
      yield* Effect.sleep("300 millis")
      assert.isUndefined(run.pollUnsafe(), "still waiting for the held-back event")
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(holder)
      yield* Fiber.join(run)
      assert.deepStrictEqual(handled, [7])
    })
  )
})
