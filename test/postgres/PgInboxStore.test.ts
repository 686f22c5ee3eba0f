/**
 * The inbox's batches on PostgreSQL (`Inbox.receiveAll` over `PgInboxStore.applyAll`): a batch's handlers and its
 * records commit together, each message applied once whatever the batch repeats, and a batch that cannot commit
 * leaves nothing half-written behind.
 */
import { assert, describe, it, layer } from "@effect/vitest"
import { Inbox, StorageError } from "@facta/core"
import { PgInboxStore } from "@facta/postgres"
import { Effect, Layer, Schedule, Schema } from "effect"
import { SqlClient } from "effect/sql"
import * as Database from "../support/database.ts"

const schema = Database.uniqueSchema("inboxbatch")
const Live = Layer.mergeAll(Database.dropSchemaOnRelease(schema), PgInboxStore.layer({ schema })).pipe(
  Layer.provideMerge(Database.client())
)

const Message = Schema.Struct({ n: Schema.Int })

const delivery = (id: string, n: number): Inbox.Delivery => ({
  id,
  subject: "test.Message",
  headers: {},
  body: new TextEncoder().encode(JSON.stringify({ n }))
})

/** The rows the handler wrote for one inbox, in the order they were written. */
const appliedOf = (table: string) =>
  SqlClient.SqlClient.use((sql) =>
    sql<{ readonly id: string }>`SELECT id FROM ${sql(schema)}.${sql(table)} ORDER BY seq`.pipe(
      Effect.map((rows) => rows.map((row) => row.id))
    )
  )

/** An inbox whose handler writes the message's id to its own table; `before` runs first, inside the transaction. */
const recordingInbox = (name: string, before: (n: number) => Effect.Effect<void, unknown, SqlClient.SqlClient>) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    yield* sql`CREATE TABLE ${sql(schema)}.${sql(name)} (seq serial PRIMARY KEY, id text NOT NULL)`
    return Inbox.make({
      name,
      schema: Message,
      // tried three times, without the default's sleeps (the test clock would never wake them)
      retry: Schedule.recurs(2),
      handle: (message, d) =>
        Effect.andThen(before(message.n), sql`INSERT INTO ${sql(schema)}.${sql(name)} (id) VALUES (${d.id})`).pipe(
          Effect.provideService(SqlClient.SqlClient, sql)
        )
    })
  })

layer(Live, { timeout: 60_000 })("PgInboxStore batches", (it) => {
  it.effect.prop(
    "a batch applies each message once, in order, whatever it repeats or was applied before",
    [Schema.Array(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 30 })))],
    ([ids]) =>
      Effect.gen(function* () {
        const name = `prop_${Math.random().toString(36).slice(2, 8)}`
        const inbox = yield* recordingInbox(name, () => Effect.void)
        // half of the ids come first, alone; then the whole list in one batch
        const first = ids.filter((id) => id % 2 === 0).slice(0, 3)
        const firstOutcomes = yield* Inbox.receiveAll(
          inbox,
          first.map((id) => delivery(`m${id}`, id))
        )
        const outcomes = yield* Inbox.receiveAll(
          inbox,
          ids.map((id) => delivery(`m${id}`, id))
        )
        const seen = new Set<number>()
        const expectOutcome = (id: number) => {
          const now = !seen.has(id)
          seen.add(id)
          return now ? "applied" : "duplicate"
        }
        assert.deepStrictEqual(firstOutcomes, first.map(expectOutcome))
        assert.deepStrictEqual(outcomes, ids.map(expectOutcome))
        // every distinct id once, in the order of its first delivery
        assert.deepStrictEqual(
          yield* appliedOf(name),
          [...new Set([...first, ...ids])].map((id) => `m${id}`)
        )
      }),
    { arbitrary: { runs: 25 } }
  )

  it.effect("a handler failing on one message: the others are applied once, the failing one is parked", () =>
    Effect.gen(function* () {
      const name = "poison"
      const inbox = yield* recordingInbox(name, (n) => (n === 3 ? Effect.fail("n = 3 is refused") : Effect.void))
      const outcomes = yield* Inbox.receiveAll(
        inbox,
        [1, 2, 3, 4].map((n) => delivery(`p${n}`, n))
      )
      assert.deepStrictEqual(outcomes, ["applied", "applied", "parked", "applied"])
      assert.deepStrictEqual(yield* appliedOf(name), ["p1", "p2", "p4"])
      const parked = yield* Inbox.InboxStore.use((store) => store.parked(name))
      assert.deepStrictEqual(
        parked.map((p) => [p.messageId, p.error]),
        [["p3", "n = 3 is refused"]]
      )
      // delivered again, the batch changes nothing
      assert.deepStrictEqual(
        yield* Inbox.receiveAll(
          inbox,
          [1, 2, 4].map((n) => delivery(`p${n}`, n))
        ),
        ["duplicate", "duplicate", "duplicate"]
      )
    })
  )

  it.effect("a message alone is not batched: a failing handler runs only as often as its retries allow", () =>
    Effect.gen(function* () {
      let runs = 0
      const inbox = yield* recordingInbox("alone", () =>
        Effect.andThen(
          Effect.sync(() => {
            runs++
          }),
          Effect.fail("refused")
        )
      )
      assert.deepStrictEqual(yield* Inbox.receiveAll(inbox, [delivery("a1", 1)]), ["parked"])
      // the first try and two retries (Schedule.recurs(2)); a batch before them would make it four
      assert.strictEqual(runs, 3)
    })
  )

  it.effect("an undecodable message in a batch is parked; the rest commit together", () =>
    Effect.gen(function* () {
      const name = "undecodable"
      const inbox = yield* recordingInbox(name, () => Effect.void)
      const junk = { ...delivery("u2", 0), body: new TextEncoder().encode("{not json") }
      const outcomes = yield* Inbox.receiveAll(inbox, [delivery("u1", 1), junk, delivery("u3", 3)])
      assert.deepStrictEqual(outcomes, ["applied", "parked", "applied"])
      assert.deepStrictEqual(yield* appliedOf(name), ["u1", "u3"])
      const parked = yield* Inbox.InboxStore.use((store) => store.parked(name))
      assert.isTrue(parked[0]!.error.startsWith("undecodable"))
    })
  )

  it.effect("a connection dropped inside a batch rolls all of it back; nothing is applied twice", () =>
    Effect.gen(function* () {
      const name = "dropped"
      let killed = false
      // the first time message 3 is handled, its connection is terminated mid-transaction
      const inbox = yield* recordingInbox(name, (n) =>
        n === 3 && !killed
          ? Effect.andThen(
              Effect.sync(() => {
                killed = true
              }),
              SqlClient.SqlClient.use((sql) => sql`SELECT pg_terminate_backend(pg_backend_pid())`)
            )
          : Effect.void
      )
      const batch = [1, 2, 3, 4, 5].map((n) => delivery(`d${n}`, n))
      const outcomes = yield* Inbox.receiveAll(inbox, batch).pipe(
        // the store may refuse the fallback too while the pool reconnects: the broker would deliver it again
        Effect.catchIf(StorageError.isRetryable, () => Inbox.receiveAll(inbox, batch))
      )
      assert.isTrue(killed)
      assert.strictEqual(outcomes.filter((o) => o === "parked").length, 0)
      // the batch's first two inserts were rolled back with it: each message once
      assert.deepStrictEqual(yield* appliedOf(name), ["d1", "d2", "d3", "d4", "d5"])
      assert.deepStrictEqual(yield* Inbox.receiveAll(inbox, batch), Array(5).fill("duplicate"))
    })
  )
})

layer(Live, { timeout: 60_000 })("PgInboxStore batches at once", (it) => {
  it.effect("two batches of the same ids in opposite orders, at once, both commit: no deadlock, each id once", () =>
    Effect.gen(function* () {
      const store = yield* Inbox.InboxStore
      const sql = yield* SqlClient.SqlClient
      yield* sql`CREATE TABLE ${sql(schema)}.crossed (id text NOT NULL)`
      const work = (id: string) =>
        // held open a moment, so that the two transactions overlap
        sql`INSERT INTO ${sql(schema)}.crossed (id) SELECT ${id} FROM pg_sleep(0.001)`
      for (let round = 0; round < 10; round++) {
        const ids = Array.from({ length: 200 }, (_, i) => `r${round}-${String(i).padStart(3, "0")}`)
        const batch = (order: ReadonlyArray<string>) =>
          store.applyAll(
            "crossed",
            order.map((messageId) => ({ messageId, work: work(messageId) }))
          )
        const [forward, backward] = yield* Effect.all([batch(ids), batch([...ids].reverse())], {
          concurrency: 2
        })
        // every id applied by exactly one of the two
        const applied = [...forward.filter(Boolean), ...backward.filter(Boolean)]
        assert.strictEqual(applied.length, ids.length)
      }
      const rows = yield* sql<{ n: number; distinct: number }>`
        SELECT count(*)::int AS n, count(DISTINCT id)::int AS distinct FROM ${sql(schema)}.crossed`
      assert.deepStrictEqual(rows[0], { n: 2000, distinct: 2000 })
    })
  )
})

describe("Inbox.receiveAll in memory", () => {
  it.effect("applies each message once and reports duplicates in the batch", () =>
    Effect.gen(function* () {
      const seen: Array<number> = []
      const inbox = Inbox.make({
        name: "memory",
        schema: Message,
        handle: (message) => Effect.sync(() => void seen.push(message.n))
      })
      const outcomes = yield* Inbox.receiveAll(inbox, [delivery("a", 1), delivery("b", 2), delivery("a", 1)])
      assert.deepStrictEqual(outcomes, ["applied", "applied", "duplicate"])
      assert.deepStrictEqual(seen, [1, 2])
    }).pipe(Effect.provide(Inbox.layerMemory))
  )
})
