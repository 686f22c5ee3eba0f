import { PgClient } from "@effect/sql-pg"
import { assert, describe, it, layer } from "@effect/vitest"
import { Event, EventStore, StoreKit } from "@facta/core"
import { PgEventStore } from "@facta/postgres"
import { Effect, Layer, Redacted, Result, Stream } from "effect"
import { SqlClient } from "effect/sql"
import * as Database from "../support/database.ts"
import * as SizeLimits from "../support/sizeLimits.ts"

// The size cases with small limits, on a PostgreSQL store built with them.
SizeLimits.register(
  "postgres",
  Database.eventStore("sizes_small", { store: { ...SizeLimits.smallLimits, batching: false } })
)

/** A pool on the run's server whose client reads messages of up to `maxMessageSize` bytes. */
const clientWith = (maxMessageSize: number) =>
  PgClient.layer({ url: Redacted.make(Database.databaseUrl()), maxConnections: 4, maxMessageSize })

const category = () => `Big${crypto.randomUUID().replaceAll("-", "")}`
const seventeenMB = 17_000_000
const big = (bytes: number): Event.EventData => ({
  eventId: Event.makeEventIdUnsafe(),
  type: "Big",
  schemaVersion: 1,
  data: { text: "x".repeat(bytes - 14) }
})
const small = (): Event.EventData => ({ eventId: Event.makeEventIdUnsafe(), type: "Small", schemaVersion: 1, data: {} })

/** Every read of the stream and its category: read, fold, readAll, and the idempotent retry of `first`. */
const readsAll = Effect.fnUntraced(function* (streamId: string, first: ReadonlyArray<Event.EventData>) {
  const store = yield* EventStore.EventStore
  const read = yield* Stream.runCollect(store.read(streamId))
  const folded = yield* store.fold(streamId, 0, (n) => Result.succeed(n + 1))
  const logged = yield* Stream.runCollect(store.readAll({ categories: [streamId.split("-")[0]!] }))
  const retry = yield* store.append(streamId, first)
  return { read, folded, logged, retry }
})

describe("the size of what PostgreSQL prints back", () => {
  layer(Database.client(), { excludeTestServices: true })("jsonbBytes", (it) => {
    it.effect("counts exactly the bytes of jsonb's text output", () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const values: ReadonlyArray<unknown> = [
          {},
          [],
          null,
          true,
          { a: [1, 2, { b: null }], "k:,": "v, w: x" },
          'quote " backslash \\ slash / tab \t newline \n cr \r bell \u0007 form \f back \b',
          "\u0001\u001f\u007f controls and DEL",
          "é 中文 🎉 👩‍👩‍👧‍👦 \u2028 \ufeff",
          { "ключ 🔑": ["значение", { 中: "文" }] },
          [0, -0, 1, -17.25, 0.1, 1 / 3, 123456789012345680000, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER],
          [1e21, -1.5e21, 1e300, Number.MAX_VALUE, -Number.MAX_VALUE, 1e-7, 1.5e-7, -2.5e-10, 5e-324, 1.2345e-300],
          { nested: Array.from({ length: 50 }, (_, i) => ({ i, s: `v${i}`, f: i / 7, e: i * 1e25 })) },
          "e-mail e+1 1e+5 not numbers"
        ]
        for (const value of values) {
          const json = JSON.stringify(value)
          const [row] = yield* sql<{ bytes: number }>`SELECT octet_length(${json}::jsonb::text)::int AS bytes`
          assert.strictEqual(StoreKit.jsonbBytes(json), row!.bytes, json.slice(0, 80))
        }
      })
    )
  })
})

describe("an event over the client's default maxMessageSize (16 MiB)", () => {
  layer(Database.eventStore("sizes_default"), { excludeTestServices: true })("with the default limits", (it) => {
    it.effect("17 MB is refused typed, and every read of the stream and the log still works", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const streamId = `${category()}-1`
        const first = [small()]
        yield* store.append(streamId, first)
        const huge = big(seventeenMB)
        const error = yield* Effect.flip(store.append(streamId, [huge]))
        assert.strictEqual(error._tag, "EventTooLarge")
        if (error._tag === "EventTooLarge") {
          assert.deepStrictEqual(
            [error.eventId, error.limit, error.maxBytes, error.bytes],
            [huge.eventId, "maxEventBytes", StoreKit.defaultLimits.maxEventBytes, seventeenMB]
          )
        }
        const { read, folded, logged, retry } = yield* readsAll(streamId, first)
        assert.strictEqual(read.length, 1)
        assert.strictEqual(folded, 1)
        assert.strictEqual(logged.length, 1)
        assert.strictEqual(retry.nextExpectedVersion, 1)
      })
    )
  })

  it.effect("a store whose client could not read its largest event refuses to start, naming both figures", () =>
    SizeLimits.assertRefusedToStart(
      Database.eventStore("sizes_refused", { store: { maxEventBytes: 20_000_000 } }),
      "maxMessageSize 16777216"
    )
  )
})

describe("a larger maxEventBytes with a client that reads it", () => {
  const schema = Database.uniqueSchema("sizes_raised")
  const store = Layer.mergeAll(
    PgEventStore.layer({ schema, maxEventBytes: 20_000_000 }),
    Database.dropSchemaOnRelease(schema)
  ).pipe(Layer.provideMerge(clientWith(32 * 1024 * 1024)))
  layer(store, { excludeTestServices: true, timeout: 120_000 })("20 MB events, 32 MiB messages", (it) => {
    it.effect(
      "a 17 MB event is stored and reads back whole through read, fold and readAll, and its retry is recognised",
      () =>
        Effect.gen(function* () {
          const streamId = `${category()}-1`
          const huge = big(seventeenMB)
          const store = yield* EventStore.EventStore
          const result = yield* store.append(streamId, [huge])
          const { read, folded, logged, retry } = yield* readsAll(streamId, [huge])
          assert.strictEqual(read.length, 1)
          assert.isTrue((read[0]!.data as { text: string }).text === (huge.data as { text: string }).text)
          assert.strictEqual(folded, 1)
          assert.strictEqual(logged[0]!.eventId, huge.eventId)
          assert.deepStrictEqual(retry, result)
          // what the limit protects against: a client with the default 16 MiB messages cannot read that row
          const unreadable = yield* Effect.exit(
            SqlClient.SqlClient.use(
              (sql) => sql`SELECT data FROM ${sql(schema)}.events WHERE event_id = ${huge.eventId}::uuid`
            ).pipe(Effect.provide(Database.client()))
          )
          assert.isTrue(unreadable._tag === "Failure", "a 16 MiB client fails on the 17 MB row")
          assert.include(String(unreadable), "maxMessageSize")
        }),
      120_000
    )
  })
})
