import { assert, layer } from "@effect/vitest"
import { Event, EventStore, Position } from "@facta/core"
import { PgEventStore } from "@facta/postgres"
import { Cause, Deferred, Effect, Fiber, Option, Stream } from "effect"
import { SqlClient } from "effect/sql"
import * as Database from "../support/database.ts"

// The three ways a global log built on sequences skips events, reproduced step by step with a second connection.
// The reader is a tailing projection: it only ever calls `readAll({ after, categories })` with a checkpoint it got
// from an earlier read.

const event = (type: string): Event.EventData => ({
  eventId: Event.makeEventIdUnsafe(),
  type,
  schemaVersion: 1,
  data: { type }
})

const read = (category: string, after: Position.Position) =>
  Effect.flatMap(EventStore.EventStore, (store) => Stream.runCollect(store.readAll({ after, categories: [category] })))

/** Reads until `count` events are there. Another test file's open transaction may hold the horizon for a moment. */
const readAtLeast = (category: string, after: Position.Position, count: number) =>
  Effect.gen(function* () {
    let events = yield* read(category, after)
    for (let tries = 0; events.length < count && tries < 100; tries++) {
      yield* Effect.sleep("100 millis")
      events = yield* read(category, after)
    }
    return events
  })

/** Seeds the category with one committed event and returns the checkpoint a projection would have saved. */
const checkpointAfterSeed = (category: string) =>
  Effect.gen(function* () {
    const store = yield* EventStore.EventStore
    const seeded = yield* store.append(`${category}-seed`, [event("Seeded")])
    const seen = yield* readAtLeast(category, Position.start, 1)
    assert.strictEqual(seen.length, 1)
    assert.isTrue(Position.equals(seen[0]!.position, seeded.positions[0]!))
    return seen[0]!.position
  })

const assertIncreasing = (events: ReadonlyArray<Event.RecordedEvent>) => {
  for (let i = 1; i < events.length; i++) {
    assert.isTrue(Position.isBefore(events[i - 1]!.position, events[i]!.position), "positions strictly increase")
  }
}

const isCommitted = (schema: string, eventId: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.map(
      sql<{ n: bigint }>`SELECT count(*) AS n FROM ${sql(schema)}.events WHERE event_id = ${eventId}::uuid`,
      ([row]) => row!.n === 1n
    )
  )

layer(Database.eventStore("races", { maxConnections: 6 }), { timeout: 60_000, excludeTestServices: true })(
  "PgEventStore ordering races",
  (it) => {
    it.effect(
      "a transaction that inserts first but commits last is delivered, before the later one, never skipped",
      () =>
        Effect.gen(function* () {
          const store = yield* EventStore.EventStore
          const sql = yield* SqlClient.SqlClient
          const { schema } = yield* PgEventStore.PgEventStore
          const category = "RaceOne"
          const checkpoint = yield* checkpointAfterSeed(category)

          const e1 = event("First")
          const e2 = event("Second")
          const appended = yield* Deferred.make<void>()
          const release = yield* Deferred.make<void>()
          const t1 = yield* Effect.forkChild(
            sql.withTransaction(
              Effect.gen(function* () {
                const result = yield* store.append(`${category}-a`, [e1])
                yield* Deferred.succeed(appended, undefined)
                yield* Deferred.await(release)
                return result
              })
            )
          )
          yield* Deferred.await(appended)
          // T2 appends and commits while T1 is still open
          const r2 = yield* store.append(`${category}-b`, [e2])
          assert.isTrue(yield* isCommitted(schema, e2.eventId), "T2 is committed")
          assert.isFalse(yield* isCommitted(schema, e1.eventId), "T1 is not")

          // T2's event is above the horizon: a reader sees nothing yet (and so cannot move its checkpoint past T1)
          const stalled = yield* read(category, checkpoint)
          assert.deepStrictEqual(
            stalled.map((e) => e.eventId),
            []
          )

          yield* Deferred.succeed(release, undefined)
          const r1 = yield* Fiber.join(t1)
          assert.isTrue(Position.isBefore(r1.positions[0]!, r2.positions[0]!), "T1 took its transaction id first")

          const delivered = yield* readAtLeast(category, checkpoint, 2)
          assert.deepStrictEqual(
            delivered.map((e) => e.eventId),
            [e1.eventId, e2.eventId]
          )
          assert.isTrue(Position.equals(delivered[0]!.position, r1.positions[0]!))
          assert.isTrue(Position.equals(delivered[1]!.position, r2.positions[0]!))
          assertIncreasing(delivered)
          assert.deepStrictEqual(yield* read(category, delivered[1]!.position), [])
        })
    )

    it.effect("a position drawn before the transaction id sorts by its transaction, so resuming never skips it", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const sql = yield* SqlClient.SqlClient
        const { schema } = yield* PgEventStore.PgEventStore
        const s = sql(schema)
        const category = "RaceTwo"
        const checkpoint = yield* checkpointAfterSeed(category)

        const late = event("Late")
        const lateStream = `${category}-late`
        const drawn = yield* Deferred.make<bigint>()
        const release = yield* Deferred.make<void>()
        const t1 = yield* Effect.forkChild(
          sql.withTransaction(
            Effect.gen(function* () {
              const [row] = yield* sql<{ p: bigint }>`
                SELECT nextval(pg_get_serial_sequence(${`${schema}.events`}, 'global_position')) AS p`
              const [owned] = yield* sql<{ x: string | null }>`SELECT pg_current_xact_id_if_assigned()::text AS x`
              assert.isNull(owned!.x, "drawing a position takes no transaction id")
              yield* Deferred.succeed(drawn, row!.p)
              yield* Deferred.await(release)
              // the writer now stores its event at the position it drew earlier
              yield* sql`INSERT INTO ${s}.streams (stream_id, category, version) VALUES (${lateStream}, ${category}, 1)`
              yield* sql`INSERT INTO ${s}.events
                  (global_position, epoch, stream_id, category, version, event_id, type, schema_version, data, metadata)
                OVERRIDING SYSTEM VALUE
                SELECT ${row!.p}, epoch, ${lateStream}, ${category}, 1, ${late.eventId}::uuid, 'Late', 1,
                  '{}'::jsonb, '{}'::jsonb
                FROM ${s}.store`
            })
          )
        )
        const position = yield* Deferred.await(drawn)

        // another transaction appends and commits; T1 holds no transaction id, so the reader sees it at once
        const r2 = yield* store.append(`${category}-b`, [event("Other")])
        const seen = yield* readAtLeast(category, checkpoint, 1)
        assert.strictEqual(seen.length, 1)
        assert.isTrue(Position.equals(seen[0]!.position, r2.positions[0]!))
        const saved = seen[0]!.position
        assert.isTrue(position < saved.sequence, "the stalled writer's position is below the saved checkpoint")

        yield* Deferred.succeed(release, undefined)
        yield* Fiber.join(t1)

        // resuming from the saved checkpoint delivers the late event: its transaction id sorts after the checkpoint
        const resumed = yield* readAtLeast(category, saved, 1)
        assert.deepStrictEqual(
          resumed.map((e) => e.eventId),
          [late.eventId]
        )
        assert.strictEqual(resumed[0]!.position.sequence, position)
        assert.isTrue(Position.isBefore(saved, resumed[0]!.position))
        // from the first checkpoint, both, once each, in log order
        const all = yield* read(category, checkpoint)
        assert.deepStrictEqual(
          all.map((e) => e.eventId),
          [seen[0]!.eventId, late.eventId]
        )
        assertIncreasing(all)
        assert.deepStrictEqual(yield* read(category, resumed[0]!.position), [])
      })
    )

    it.effect("a transaction that owns its id before it appends stalls the reader, which then delivers each once", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const sql = yield* SqlClient.SqlClient
        const category = "RaceThree"
        yield* store.append(`${category}-s`, [event("Started")])
        const [head] = yield* readAtLeast(category, Position.start, 1)
        assert.isDefined(head)
        const checkpoint = head!.position

        const e1 = event("Early")
        const e2 = event("Quick")
        const owned = yield* Deferred.make<bigint>()
        const release = yield* Deferred.make<void>()
        const t1 = yield* Effect.forkChild(
          sql.withTransaction(
            Effect.gen(function* () {
              const [row] = yield* sql<{ x: string }>`SELECT pg_current_xact_id()::text AS x`
              yield* Deferred.succeed(owned, BigInt(row!.x))
              yield* Deferred.await(release)
              return yield* store.append(`${category}-t`, [e1])
            })
          )
        )
        const xid = yield* Deferred.await(owned)

        // T2 appends and commits; T1 holds an older transaction id, so the reader stalls
        const r2 = yield* store.append(`${category}-s`, [e2])
        assert.isTrue(xid < r2.positions[0]!.commit)
        assert.deepStrictEqual(yield* read(category, checkpoint), [])

        yield* Deferred.succeed(release, undefined)
        const r1 = yield* Fiber.join(t1)
        assert.strictEqual(r1.positions[0]!.commit, xid, "T1's event carries the id it took up front")

        const delivered = yield* readAtLeast(category, checkpoint, 2)
        assert.deepStrictEqual(
          delivered.map((e) => e.eventId),
          [e1.eventId, e2.eventId],
          "both once, in transaction-id order"
        )
        assertIncreasing(delivered)
        assert.deepStrictEqual(yield* read(category, delivered[1]!.position), [])
      })
    )

    it.effect("an append whose transaction id is older than its stream's last events is refused, never reordered", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const sql = yield* SqlClient.SqlClient
        const category = "RaceFour"
        const streamId = `${category}-s`
        yield* store.append(streamId, [event("Started")])

        const late = event("Late")
        const owned = yield* Deferred.make<void>()
        const release = yield* Deferred.make<void>()
        const attempt = sql.withTransaction(
          Effect.gen(function* () {
            yield* sql`SELECT pg_current_xact_id()::text`
            yield* Deferred.succeed(owned, undefined)
            yield* Deferred.await(release)
            return yield* store.append(streamId, [late])
          })
        )
        const t1 = yield* Effect.forkChild(Effect.exit(attempt))
        yield* Deferred.await(owned)
        const r2 = yield* store.append(streamId, [event("Quick")])
        assert.strictEqual(r2.nextExpectedVersion, 2)
        yield* Deferred.succeed(release, undefined)

        // in the caller's transaction the store cannot retry: the caller gets the serialization failure to retry
        const refused = yield* Fiber.join(t1)
        assert.isTrue(refused._tag === "Failure", "the append inside the older transaction is refused")
        const error = Cause.findErrorOption(refused._tag === "Failure" ? refused.cause : Cause.empty)
        assert.isTrue(Option.isSome(error) && error.value._tag === "StorageError")
        // retried as a whole, it lands after the stream's last events, with a newer transaction id
        const landed = yield* sql.withTransaction(store.append(streamId, [late]))
        assert.strictEqual(landed.nextExpectedVersion, 3)
        assert.isTrue(Position.isBefore(r2.positions[0]!, landed.positions[0]!))

        const stream = yield* Stream.runCollect(store.read(streamId))
        assert.deepStrictEqual(
          stream.map((e) => e.version),
          [1, 2, 3]
        )
        assertIncreasing(stream)
      })
    )
  }
)
