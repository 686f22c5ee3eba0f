import { assert, layer } from "@effect/vitest"
import { EventStore, Position } from "@facta/core"
import { Effect, Stream } from "effect"
import { SqlClient } from "effect/sql"
import * as Database from "../support/database.ts"

const schema = Database.uniqueSchema("logplans")
const Live = Database.eventStoreIn(schema)
// about 35 MB: large enough that a planner without statistics finds a (parallel) full scan and sort of the table
// cheapest for a page; that took 58 ms a page here, the walk of the key 0.1 ms
const rows = 300_000

/** Rows the current transaction has read from the log's table, by any scan, on its connection. */
const rowsRead = SqlClient.SqlClient.use((sql) =>
  Effect.map(
    sql<{ n: string }>`SELECT (seq_tup_read + coalesce(idx_tup_fetch, 0))::text AS n FROM pg_stat_xact_user_tables
      WHERE relid = ${`${schema}.events`}::regclass`,
    ([row]) => Number(row!.n)
  )
)

layer(Live, { excludeTestServices: true })("Reading the log on PostgreSQL", (it) => {
  it.effect(
    "a page reads about as many rows as it returns, even on a log never analyzed, with or without filters",
    () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const store = yield* EventStore.EventStore
        // a log written faster than statistics follow it: no ANALYZE, ever, on this table
        yield* sql.unsafe(`ALTER TABLE ${schema}.events SET (autovacuum_enabled = false)`)
        yield* sql`
          INSERT INTO ${sql(schema)}.events (epoch, stream_id, category, version, event_id, type, schema_version,
            data, metadata)
          SELECT 1, 'Plan-' || (g % 100), 'Plan', g / 100 + 1, gen_random_uuid(), 'Planned', 1, '{}', '{}'
          FROM generate_series(0, ${rows - 1}) AS g`
        const [near] = yield* sql<{ tx_id: string; global_position: bigint }>`
          SELECT tx_id::text, global_position FROM ${sql(schema)}.events
          ORDER BY global_position DESC OFFSET 10 LIMIT 1`
        const nearTheEnd = Position.make(1, BigInt(near!.tx_id), near!.global_position)
        const page = (options: EventStore.ReadAllOptions) =>
          Stream.runCollect(store.readAll({ batchSize: 500, ...options }).pipe(Stream.take(500)))

        // in one transaction, so that its counters see every page
        const { pages, read } = yield* sql.withTransaction(
          Effect.gen(function* () {
            const before = yield* rowsRead
            const pages = [
              (yield* page({ after: nearTheEnd })).length,
              (yield* page({ after: nearTheEnd, types: ["Planned"] })).length,
              (yield* page({ after: nearTheEnd, categories: ["Plan"] })).length,
              (yield* page({})).length,
              (yield* page({ categories: ["Plan", "Other"] })).length
            ]
            // and what a subscription asks before every page
            yield* store.head
            yield* store.lastCommitted
            return { pages, read: (yield* rowsRead) - before }
          })
        )
        assert.deepStrictEqual(pages, [10, 10, 10, 500, 500])
        // what the pages hold, give or take: not the whole table or category (a scan, or a bitmap, and a sort)
        assert.isBelow(read, 2_000)
      })
  )
})
