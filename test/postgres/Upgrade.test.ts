import { assert, layer } from "@effect/vitest"
import { Event, ExpectedVersion, Position } from "@facta/core"
import { Migrations, PgEventStore } from "@facta/postgres"
import { Effect, Layer, Stream } from "effect"
import { Migrator, SqlClient } from "effect/sql"
import { migrations } from "../../packages/postgres/src/internal/schema.ts"
import * as Database from "../support/database.ts"

// A store written by an earlier version (migrations 1 and 2 only, appends through the first `append` function), then
// upgraded: every later migration runs over the populated schema, and what was stored reads, retries and extends
// as if it had been written by this version. Processes of the earlier version may still append during a rolling
// deploy, through the old function, on the same locks.

const schema = Database.uniqueSchema("upgrade")

const event = (type: string, n: number): Event.EventData => ({
  eventId: Event.makeEventIdUnsafe(),
  type,
  schemaVersion: 1,
  data: { n }
})

/** The schema as the earlier version left it: its first two migrations. */
const earlierVersion = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE SCHEMA ${sql(schema)}`
  const earlier = migrations(schema).slice(0, 2)
  yield* Migrator.make({})({
    loader: Migrator.fromRecord(
      Object.fromEntries(
        earlier.map(([name, statements], i) => [
          `${String(i + 1).padStart(4, "0")}_${name}`,
          Effect.forEach(statements, (statement) => sql.unsafe(statement), { discard: true })
        ])
      )
    ),
    table: `${schema}.migrations`
  })
})

/** An append as the earlier version made it: its `append` function, exact expected version. */
const earlierAppend = (streamId: string, expected: number, events: ReadonlyArray<Event.EventData>) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.map(
      sql<{ status: number; version: number }>`SELECT status, version FROM ${sql(schema)}.append(
        ${streamId}, ${streamId.split("-")[0]!}, 3::smallint, ${expected}::integer,
        ${events.map((e) => e.eventId)}::uuid[], ${events.map((e) => e.type)}::text[],
        ${events.map((e) => e.schemaVersion)}::smallint[], ${events.map((e) => JSON.stringify(e.data))}::jsonb[],
        ${events.map(() => "{}")}::jsonb[], false)`,
      ([row]) => row!
    )
  )

layer(Database.dropSchemaOnRelease(schema).pipe(Layer.provideMerge(Database.client())), {
  timeout: 60_000,
  excludeTestServices: true
})("Upgrading a populated store", (it) => {
  it.effect("events written before the later migrations read, retry and extend as before", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      yield* earlierVersion
      const first = [event("Opened", 1), event("Deposited", 2)]
      const second = [event("Opened", 3)]
      assert.deepStrictEqual(yield* earlierAppend("Old-1", 0, first), { status: 0, version: 2 })
      assert.deepStrictEqual(yield* earlierAppend("Old-2", 0, second), { status: 0, version: 1 })

      const applied = yield* Migrations.run(schema)
      assert.deepStrictEqual(
        applied.map(([id, name]) => `${id}_${name}`),
        ["3_log_key", "4_append_batch", "5_read_log", "6_append_stream", "7_append_epoch"]
      )
      const { store } = yield* PgEventStore.make({ schema, migrate: false })

      const old1 = yield* Stream.runCollect(store.read("Old-1"))
      assert.deepStrictEqual(
        old1.map((e) => [e.version, e.eventId, e.data]),
        [
          [1, first[0]!.eventId, { n: 1 }],
          [2, first[1]!.eventId, { n: 2 }]
        ]
      )
      // a retry of the earlier version's append is recognised, with its original positions
      const retried = yield* store.append("Old-1", first, { expectedVersion: ExpectedVersion.noStream })
      assert.strictEqual(retried.nextExpectedVersion, 2)
      assert.deepStrictEqual(
        retried.positions.map(Position.format),
        old1.map((e) => Position.format(e.position))
      )

      // this version appends after them, and so does the earlier version's function, still there for a rolling deploy
      const later = yield* store.append("Old-1", [event("Withdrawn", 4)], { expectedVersion: ExpectedVersion.exact(2) })
      assert.strictEqual(later.nextExpectedVersion, 3)
      assert.deepStrictEqual(yield* earlierAppend("Old-2", 1, [event("Deposited", 5)]), { status: 0, version: 2 })
      assert.deepStrictEqual(yield* earlierAppend("Old-2", 1, [event("Deposited", 6)]), { status: 1, version: 2 })
      const last = yield* store.append("Old-2", [event("Closed", 7)], { expectedVersion: ExpectedVersion.exact(2) })
      assert.strictEqual(last.nextExpectedVersion, 3)

      // the global log holds everything once, in order, each stream's events in version order
      const log = yield* Stream.runCollect(store.readAll())
      assert.deepStrictEqual(
        log.map((e) => (e.data as { n: number }).n),
        [1, 2, 3, 4, 5, 7]
      )
      for (let i = 1; i < log.length; i++) assert.isTrue(Position.isBefore(log[i - 1]!.position, log[i]!.position))
      const [{ n }] = (yield* sql<{ n: bigint }>`SELECT count(*) AS n FROM ${sql(schema)}.events`) as unknown as [
        { n: bigint }
      ]
      assert.strictEqual(n, 6n)
    }).pipe(Effect.scoped)
  )
})
