import { inspect } from "node:util"
import { assert, layer } from "@effect/vitest"
import { Aggregate, CommandHandler, Decider, Event, EventCodec, EventStore, ExpectedVersion } from "@facta/core"
import { PgEventStore } from "@facta/postgres"
import { Deferred, Effect, Exit, Fiber, Layer, Option, Schema, Stream } from "effect"
import { SqlClient } from "effect/sql"
import * as Database from "../support/database.ts"

const event = (type: string, data: Schema.Json = {}, metadata?: Event.EventMetadata): Event.EventData => ({
  eventId: Event.makeEventIdUnsafe(),
  type,
  schemaVersion: 1,
  data,
  metadata
})

const countIds = (schema: string, ids: ReadonlyArray<string>) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.map(
      sql<{ n: bigint }>`SELECT count(*) AS n FROM ${sql(schema)}.events WHERE event_id = ANY(${[...ids]}::uuid[])`,
      ([row]) => Number(row!.n)
    )
  )

/** Polls (bounded) until a backend waits on a lock while running an append; returns its pid. */
const lockWaiter = (schema: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    for (let tries = 0; tries < 200; tries++) {
      const rows = yield* sql<{ pid: number }>`
        SELECT pid FROM pg_stat_activity
        WHERE wait_event_type = 'Lock' AND query LIKE ${`%${schema}%.append%(%`} AND pid <> pg_backend_pid()`
      if (rows.length === 1) return rows[0]!.pid
      yield* Effect.sleep("25 millis")
    }
    return yield* Effect.die(new Error("the append never reached the lock wait"))
  })

const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Int })
type Deposited = typeof Deposited.Type
const codec = EventCodec.make(Deposited)
const Balance = Aggregate.make({
  category: "Corrupt",
  events: Deposited,
  decider: Decider.make({
    initialState: 0,
    decide: (_: never, _state: number) => Effect.succeed([]),
    evolve: (balance: number, event: Deposited) => balance + event.amount
  })
})

layer(Database.eventStore("faults", { maxConnections: 6 }), { timeout: 60_000, excludeTestServices: true })(
  "PgEventStore faults",
  (it) => {
    it.effect("an appender killed while waiting on the stream lock leaves nothing; a retry lands once", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const sql = yield* SqlClient.SqlClient
        const { schema } = yield* PgEventStore.PgEventStore
        const streamId = "Killed-1"
        yield* store.append(streamId, [event("Opened")])
        const batch = [event("A"), event("B"), event("C")]
        const ids = batch.map((e) => e.eventId)

        const locked = yield* Deferred.make<void>()
        const release = yield* Deferred.make<void>()
        const holder = yield* Effect.forkChild(
          sql.withTransaction(
            Effect.gen(function* () {
              yield* sql`SELECT 1 FROM ${sql(schema)}.streams WHERE stream_id = ${streamId} FOR UPDATE`
              yield* Deferred.succeed(locked, undefined)
              yield* Deferred.await(release)
            })
          )
        )
        yield* Deferred.await(locked)
        const appender = yield* Effect.forkChild(
          store.append(streamId, batch, { expectedVersion: ExpectedVersion.exact(1) })
        )
        const pid = yield* lockWaiter(schema)
        const [killed] = yield* sql<{ ok: boolean }>`SELECT pg_terminate_backend(${pid}, 5000) AS ok`
        assert.isTrue(killed!.ok)
        const exit = yield* Fiber.await(appender)
        assert.isTrue(Exit.isFailure(exit), "the killed append fails")
        const failure = Exit.isFailure(exit) ? Option.getOrUndefined(Exit.findErrorOption(exit)) : undefined
        assert.strictEqual(failure?._tag, "StorageError")
        yield* Deferred.succeed(release, undefined)
        yield* Fiber.join(holder)

        assert.strictEqual(yield* countIds(schema, ids), 0, "no partial batch")
        assert.strictEqual(Option.getOrThrow(yield* store.streamInfo(streamId)).version, 1)

        const retried = yield* store.append(streamId, batch, { expectedVersion: ExpectedVersion.exact(1) })
        assert.strictEqual(retried.nextExpectedVersion, 4)
        assert.strictEqual(yield* countIds(schema, ids), 3)
        const again = yield* store.append(streamId, batch, { expectedVersion: ExpectedVersion.exact(1) })
        assert.deepStrictEqual(again, retried, "a second retry returns the original result")
        const stream = yield* Stream.runCollect(store.read(streamId))
        assert.deepStrictEqual(
          stream.map((e) => e.version),
          [1, 2, 3, 4]
        )
      })
    )

    it.effect("an appender killed after its append but before commit leaves nothing; a retry lands once", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const sql = yield* SqlClient.SqlClient
        const { schema } = yield* PgEventStore.PgEventStore
        const streamId = "Killed-2"
        const batch = [event("A"), event("B")]
        const ids = batch.map((e) => e.eventId)
        const appended = yield* Deferred.make<number>()
        const release = yield* Deferred.make<void>()
        const appender = yield* Effect.forkChild(
          sql.withTransaction(
            Effect.gen(function* () {
              const [row] = yield* sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`
              yield* store.append(streamId, batch, { expectedVersion: ExpectedVersion.noStream })
              yield* Deferred.succeed(appended, row!.pid)
              yield* Deferred.await(release)
            })
          )
        )
        const pid = yield* Deferred.await(appended)
        const [killed] = yield* sql<{ ok: boolean }>`SELECT pg_terminate_backend(${pid}, 5000) AS ok`
        assert.isTrue(killed!.ok)
        yield* Deferred.succeed(release, undefined)
        const exit = yield* Fiber.await(appender)
        assert.isTrue(Exit.isFailure(exit), "the commit of a killed session fails")

        assert.strictEqual(yield* countIds(schema, ids), 0, "no partial batch")
        assert.isTrue(Option.isNone(yield* store.streamInfo(streamId)))
        const retried = yield* store.append(streamId, batch, { expectedVersion: ExpectedVersion.noStream })
        assert.strictEqual(retried.nextExpectedVersion, 2)
        assert.strictEqual(yield* countIds(schema, ids), 2)
        const again = yield* store.append(streamId, batch, { expectedVersion: ExpectedVersion.noStream })
        assert.deepStrictEqual(again, retried)
      })
    )

    it.effect("corrupted rows fail reads and loads with an EventDecodeError naming stream, version and event", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const sql = yield* SqlClient.SqlClient
        const { schema } = yield* PgEventStore.PgEventStore
        const s = sql(schema)
        const good = yield* codec.encode(Deposited.make({ amount: 5 }))
        const cases: ReadonlyArray<readonly [string, string, number, string, string]> = [
          ["Corrupt-shape", "Deposited", 1, `{"amount":"five"}`, "amount"],
          ["Corrupt-type", "Mystery", 1, `{"amount":1}`, "unknown event type"],
          ["Corrupt-newer", "Deposited", 7, `{"amount":1}`, "newer schema"],
          ["Corrupt-array", "Deposited", 1, `[1,2]`, "JSON object"]
        ]
        for (const [streamId, type, schemaVersion, data, issue] of cases) {
          const corruptId = Event.makeEventIdUnsafe()
          yield* store.append(streamId, [{ ...event(good.type, good.data) }])
          yield* sql`UPDATE ${s}.streams SET version = 2 WHERE stream_id = ${streamId}`
          yield* sql`INSERT INTO ${s}.events (epoch, stream_id, category, version, event_id, type, schema_version, data,
              metadata)
            SELECT epoch, ${streamId}, 'Corrupt', 2, ${corruptId}::uuid, ${type}, ${schemaVersion},
              ${data}::jsonb, '{}'::jsonb
            FROM ${s}.store`
          const error = yield* Effect.flip(Stream.runCollect(EventStore.readEvents(codec, streamId)))
          assert.strictEqual(error._tag, "EventDecodeError")
          if (error._tag !== "EventDecodeError") continue
          // loading the aggregate (the store's fold, which reads no event ids) fails with the very same error
          assert.deepStrictEqual(yield* Effect.flip(CommandHandler.load(Balance, streamId)), error)
          assert.strictEqual(error.eventId, corruptId)
          assert.strictEqual(error.streamId, streamId)
          assert.strictEqual(error.version, 2)
          assert.strictEqual(error.type, type)
          assert.strictEqual(error.schemaVersion, schemaVersion)
          assert.include(error.issue, issue)
          // the first, intact event is still readable on its own
          const first = yield* Stream.runCollect(EventStore.readEvents(codec, streamId, { to: 1 }))
          assert.deepStrictEqual(
            first.map((e) => e.data),
            [Deposited.make({ amount: 5 })]
          )
        }
        // other streams stay readable
        yield* EventStore.appendEvents(codec, "Intact-1", [Deposited.make({ amount: 9 })])
        const intact = yield* Stream.runCollect(EventStore.readEvents(codec, "Intact-1"))
        assert.deepStrictEqual(
          intact.map((e) => e.data),
          [Deposited.make({ amount: 9 })]
        )
      })
    )

    it.effect("hostile stream ids, types and metadata are stored exactly or refused with a typed error", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const sql = yield* SqlClient.SqlClient
        const { schema } = yield* PgEventStore.PgEventStore
        const hostile = [
          "'; DROP TABLE x; --",
          `"); DROP SCHEMA ${schema} CASCADE; --`,
          "$1 $2 ::text",
          "back\\slash \\\\ \\u0000 \\x00",
          "quote ' double \" semi ;",
          "ünïcødé 😀 中文 \u202e rtl",
          "%_ LIKE wildcards"
        ]
        const before = yield* sql<{ n: bigint }>`SELECT count(*) AS n FROM ${sql(schema)}.events`

        let stored = 0
        for (const text of hostile) {
          const streamId = `Hostile-${text}`
          const e = event(text, { text, nested: { [text]: [text] } }, { actor: text, attributes: { [text]: text } })
          const result = yield* store.append(streamId, [e], { expectedVersion: ExpectedVersion.noStream })
          stored++
          assert.strictEqual(result.nextExpectedVersion, 1)
          const [back] = yield* Stream.runCollect(store.read(streamId))
          assert.strictEqual(back!.streamId, streamId)
          assert.strictEqual(back!.type, text)
          assert.deepStrictEqual(back!.data, { text, nested: { [text]: [text] } })
          assert.deepStrictEqual(back!.metadata, { actor: text, attributes: { [text]: text } })
        }

        // the longest accepted values, and very long metadata
        const longId = `Long-${"x".repeat(250)}`
        const longType = "T".repeat(255)
        const bigText = "ä'; --".repeat(20_000)
        yield* store.append(longId, [event(longType, { bigText }, { correlationId: bigText })])
        stored++
        const [long] = yield* Stream.runCollect(store.read(longId))
        assert.strictEqual(long!.streamId.length, 255)
        assert.strictEqual(long!.type, longType)
        assert.deepStrictEqual(long!.data, { bigText })
        assert.strictEqual(long!.metadata.correlationId, bigText)

        // refused before anything is written
        const refusedStreams = [
          "'; DROP TABLE x; --",
          `Long-${"x".repeat(251)}`,
          "Nul-a\u0000b",
          "Surrogate-\ud800",
          "",
          "-x",
          "Cat$1-x"
        ]
        for (const streamId of refusedStreams) {
          const error = yield* Effect.flip(store.append(streamId, [event("Fine")]))
          assert.strictEqual(error._tag, "InvalidStreamId", JSON.stringify(streamId.slice(0, 40)))
        }
        const refusedEvents: ReadonlyArray<Event.EventData> = [
          event("T".repeat(256)),
          event("nul\u0000type"),
          event("newline\ntype"),
          event(""),
          event("Fine", { text: "nul \u0000 inside" }),
          event("Fine", {}, { actor: "nul \u0000 inside" }),
          event("Fine", { lone: "\udc00" })
        ]
        for (const e of refusedEvents) {
          const error = yield* Effect.flip(store.append("Refused-1", [event("Fine"), e]))
          assert.strictEqual(error._tag, "InvalidEvent")
        }
        assert.isTrue(Option.isNone(yield* store.streamInfo("Refused-1")), "nothing half-written")

        // the tables are all there, and hold exactly what was accepted
        const tables = yield* sql<{ t: string | null }>`
          SELECT to_regclass(${`${schema}.${"events"}`})::text AS t
          UNION ALL SELECT to_regclass(${`${schema}.streams`})::text
          UNION ALL SELECT to_regclass(${`${schema}.store`})::text`
        assert.isTrue(
          tables.every((t) => t.t !== null),
          "tables still exist"
        )
        const [after] = yield* sql<{ n: bigint }>`SELECT count(*) AS n FROM ${sql(schema)}.events`
        assert.strictEqual(Number(after!.n) - Number(before[0]!.n), stored)
        const [streams] = yield* sql<{ n: bigint }>`
          SELECT count(*) AS n FROM ${sql(schema)}.streams WHERE stream_id LIKE 'Refused-%' OR stream_id LIKE 'Nul-%'`
        assert.strictEqual(Number(streams!.n), 0)
      })
    )

    it.effect("append_stream refuses a call whose events do not line up, and writes nothing", () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const { schema } = yield* PgEventStore.PgEventStore
        const ids = [Event.makeEventIdUnsafe(), Event.makeEventIdUnsafe()]
        // another client's mistakes: one datum short, metadata that is not an array, one type short
        const calls: ReadonlyArray<readonly [ReadonlyArray<string>, string, string]> = [
          [["A", "B"], `[{"n":1}]`, `[{},{}]`],
          [["A", "B"], `[{"n":1},{"n":2}]`, `{}`],
          [["A"], `[{"n":1},{"n":2}]`, `[{},{}]`]
        ]
        for (const [types, data, metadata] of calls) {
          const error = yield* Effect.flip(
            sql`SELECT * FROM ${sql(schema)}.append_stream('Misaligned-1', 'Misaligned', 1::smallint, 0, ${ids}::uuid[],
              ${types}::text[], ${[1, 1]}::smallint[], ${data}::jsonb, ${metadata}::jsonb, false)`
          )
          // the function's own check, not a constraint the padded rows happen to break
          assert.match(
            inspect(error, { depth: 6 }),
            /every event needs an id, a type, a schema version, data and metadata/
          )
        }
        assert.strictEqual(yield* countIds(schema, ids), 0)
        const [streams] = yield* sql<{ n: bigint }>`
          SELECT count(*) AS n FROM ${sql(schema)}.streams WHERE stream_id = 'Misaligned-1'`
        assert.strictEqual(Number(streams!.n), 0)
      })
    )

    it.effect("a schema name with SQL in it fails the layer before anything runs", () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const canary = `canary_${Date.now().toString(36)}`
        const names = [
          "x; drop",
          `x; CREATE TABLE public.${canary} (id int); --`,
          `"x"; CREATE TABLE public.${canary} (id int); --`,
          "Facta",
          "a-b",
          "",
          "a".repeat(64)
        ]
        for (const name of names) {
          const exit = yield* Effect.exit(
            Effect.scoped(
              Layer.build(
                PgEventStore.layer({ schema: name }).pipe(
                  Layer.provide(Layer.succeedContext(yield* Effect.context<SqlClient.SqlClient>()))
                )
              )
            )
          )
          assert.isTrue(Exit.isFailure(exit), `schema ${JSON.stringify(name)} is refused`)
        }
        const [found] = yield* sql<{ n: bigint }>`
          SELECT (SELECT count(*) FROM pg_class WHERE relname = ${canary})
            + (SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'x%' AND nspname ~ '[^a-z0-9_]') AS n`
        assert.strictEqual(Number(found!.n), 0, "nothing was executed")
      })
    )
  }
)
