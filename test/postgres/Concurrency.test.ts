import { assert, layer } from "@effect/vitest"
import { Event, EventStore, type EventStoreError, ExpectedVersion, Position } from "@facta/core"
import { PgEventStore } from "@facta/postgres"
import { Effect, Option, Stream } from "effect"
import { SqlClient } from "effect/sql"
import * as Database from "../support/database.ts"

// 32 fibers, each on a backend of its own, hammer 4 hot streams with a mix of `any` and exact-version appends.
const fibers = 32
const appendsPerFiber = 250
const streams = ["Hot-a", "Hot-b", "Hot-c", "Hot-d"] as const

interface Acked {
  readonly streamId: string
  readonly eventIds: ReadonlyArray<string>
  readonly result: EventStore.AppendResult
}
interface Rejected {
  readonly streamId: string
  readonly eventIds: ReadonlyArray<string>
  readonly expected: number
  readonly error: EventStoreError.WrongExpectedVersion
}

interface EventDbRow {
  readonly stream_id: string
  readonly version: number
  readonly event_id: string
  readonly epoch: number
  readonly tx_id: string
  readonly global_position: bigint
}

layer(Database.eventStore("concurrency", { maxConnections: 40 }), { timeout: 60_000, excludeTestServices: true })(
  "PgEventStore concurrency",
  (it) => {
    it.effect(
      "32 fibers on their own connections keep every stream gapless and the log exactly-once",
      () =>
        Effect.gen(function* () {
          const store = yield* EventStore.EventStore
          const { schema } = yield* PgEventStore.PgEventStore
          const sql = yield* SqlClient.SqlClient
          const acked: Array<Acked> = []
          const rejected: Array<Rejected> = []
          const unexpected: Array<unknown> = []
          let anyAttempts = 0
          let exactAttempts = 0

          const worker = (fiber: number) =>
            Effect.forEach(
              Array.from({ length: appendsPerFiber }, (_, i) => i),
              (i) =>
                Effect.gen(function* () {
                  const streamId = streams[(fiber * 7 + i * 3) % streams.length]!
                  const size = 1 + ((fiber + i) % 3)
                  const events = Array.from(
                    { length: size },
                    (_, k): Event.EventData => ({
                      eventId: Event.makeEventIdUnsafe(),
                      type: "Bumped",
                      schemaVersion: 1,
                      data: { fiber, i, k }
                    })
                  )
                  const eventIds = events.map((e) => e.eventId)
                  if ((fiber + i) % 2 === 0) {
                    anyAttempts++
                    const result = yield* store.append(streamId, events, { expectedVersion: ExpectedVersion.any })
                    acked.push({ streamId, eventIds, result })
                    return
                  }
                  exactAttempts++
                  const info = yield* store.streamInfo(streamId)
                  const expected = Option.match(info, { onNone: () => 0, onSome: (s) => s.version })
                  const outcome = yield* Effect.result(
                    store.append(streamId, events, { expectedVersion: ExpectedVersion.exact(expected) })
                  )
                  if (outcome._tag === "Success") {
                    acked.push({ streamId, eventIds, result: outcome.success })
                  } else if (outcome.failure._tag === "WrongExpectedVersion") {
                    rejected.push({ streamId, eventIds, expected, error: outcome.failure })
                  } else {
                    unexpected.push(outcome.failure)
                  }
                }).pipe(Effect.catch((error) => Effect.sync(() => unexpected.push(error)))),
              { discard: true }
            )

          // open a backend per fiber up front, so the workers never wait for the pool to grow
          yield* Effect.forEach(Array.from({ length: fibers + 4 }), () => sql`SELECT pg_sleep(0.3)`, {
            concurrency: "unbounded",
            discard: true
          })
          yield* Effect.forEach(
            Array.from({ length: fibers }, (_, f) => f),
            worker,
            { concurrency: "unbounded", discard: true }
          )

          // the pool really spread the fibers over separate backends (idle pooled sessions keep their last query: an
          // append, or the wake-up the store sent after overlapping appends on the session one of them freed)
          const [backends] = yield* sql<{ n: bigint }>`
          SELECT count(DISTINCT pid) AS n FROM pg_stat_activity
          WHERE datname = current_database() AND (query LIKE ${`%${schema}%`} OR query LIKE 'SELECT pg_notify(%')`
          // (a freed session may go to the next waiting fiber, so allow a few fewer backends than fibers)
          assert.isAtLeast(Number(backends!.n), fibers - 4, "distinct backends that served the appends")

          assert.deepStrictEqual(
            unexpected.slice(0, 3).map((e) => (e instanceof Error ? e.message : String(e))),
            [],
            `only WrongExpectedVersion may refuse an append (${unexpected.length} did otherwise)`
          )
          assert.isAbove(rejected.length, 0, "the race produced conflicts")
          assert.isAbove(acked.length, anyAttempts, "some exact-version appends won")
          assert.strictEqual(acked.length + rejected.length, fibers * appendsPerFiber)
          assert.strictEqual(acked.length + rejected.length, anyAttempts + exactAttempts)
          for (const r of rejected) {
            assert.strictEqual(r.error.streamId, r.streamId)
            assert.deepStrictEqual(r.error.expected, ExpectedVersion.exact(r.expected))
            assert.isAbove(r.error.actual, r.expected, `conflict on ${r.streamId} reports a newer actual version`)
          }

          const rows = yield* sql<EventDbRow>`
          SELECT stream_id, version, event_id::text AS event_id, epoch, tx_id::text AS tx_id, global_position
          FROM ${sql(schema)}.events ORDER BY stream_id, version`
          const heads = yield* sql<{ stream_id: string; version: number }>`
          SELECT stream_id, version FROM ${sql(schema)}.streams`

          // every stream holds versions 1..n with no hole, and n is the stream row's version
          for (const streamId of streams) {
            const versions = rows.filter((r) => r.stream_id === streamId).map((r) => r.version)
            assert.deepStrictEqual(
              versions,
              Array.from({ length: versions.length }, (_, i) => i + 1),
              `${streamId} is gapless`
            )
            assert.strictEqual(heads.find((h) => h.stream_id === streamId)?.version, versions.length)
          }
          assert.strictEqual(rows.length, new Set(rows.map((r) => r.event_id)).size, "no event id is stored twice")

          // every acknowledged append is stored at exactly the versions and positions it was given
          const byId = new Map(rows.map((r) => [r.event_id, r]))
          let ackedEvents = 0
          for (const a of acked) {
            assert.strictEqual(a.result.positions.length, a.eventIds.length)
            a.eventIds.forEach((id, k) => {
              const row = byId.get(id)
              assert.isDefined(row, `acknowledged event ${id} is stored`)
              assert.strictEqual(row!.stream_id, a.streamId)
              assert.strictEqual(row!.version, a.result.nextExpectedVersion - a.eventIds.length + k + 1)
              assert.isTrue(
                Position.equals(
                  a.result.positions[k]!,
                  Position.make(row!.epoch, BigInt(row!.tx_id), row!.global_position)
                ),
                `position of ${id}`
              )
              ackedEvents++
            })
          }
          assert.strictEqual(rows.length, ackedEvents, "only acknowledged events are stored")
          // every refused append left nothing behind
          for (const r of rejected) for (const id of r.eventIds) assert.isFalse(byId.has(id), `refused event ${id}`)

          // the global log: every event exactly once, positions strictly increasing. Another test file's open
          // transaction may hold the horizon back for a moment, so wait (bounded) for the log to catch up.
          const readLog = Stream.runCollect(store.readAll({ categories: ["Hot"], batchSize: 700 }))
          let log = yield* readLog
          for (let tries = 0; log.length < rows.length && tries < 50; tries++) {
            yield* Effect.sleep("100 millis")
            log = yield* readLog
          }
          assert.strictEqual(log.length, rows.length, "readAll returns every stored event")
          assert.strictEqual(new Set(log.map((e) => e.eventId)).size, log.length, "each event once")
          for (let i = 1; i < log.length; i++) {
            assert.isTrue(Position.isBefore(log[i - 1]!.position, log[i]!.position), `log position ${i} increases`)
          }
          for (const e of log) {
            const row = byId.get(e.eventId)
            assert.isDefined(row)
            assert.isTrue(
              Position.equals(e.position, Position.make(row!.epoch, BigInt(row!.tx_id), row!.global_position))
            )
          }
          // paging from every 997th checkpoint resumes exactly where it left off
          for (let i = 0; i < log.length; i += 997) {
            const rest = yield* Stream.runCollect(store.readAll({ after: log[i]!.position, categories: ["Hot"] }))
            assert.deepStrictEqual(
              rest.map((e) => e.eventId),
              log.slice(i + 1).map((e) => e.eventId)
            )
          }
        }),
      60_000
    )
  }
)
