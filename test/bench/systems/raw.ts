/**
 * The raw-SQL baseline: tables shaped like Facta's in the same schema, one autocommit statement per append, plain
 * keyset reads. It is what Facta's SQL costs without Facta.
 */
import { PgClient } from "@effect/sql-pg"
import type { Event } from "@facta/core"
import * as Tables from "@facta/example-bank/readmodels/Tables"
import { Effect, Option, Queue, Stream } from "effect"
import { SqlClient } from "effect/sql"
import * as BankLog from "../bankLog.ts"
import { readBatch } from "../config.ts"
import { type AccountState, evolveJson, range, type System, type Tail } from "../domain.ts"

/** The columns Facta's reads select (packages/postgres/src/internal/rows.ts). */
const eventColumns =
  "global_position, epoch, tx_id::text AS tx_id, stream_id, version, event_id, type, schema_version, data, metadata, recorded_at"

interface Cursor {
  readonly epoch: number
  readonly tx: string
  readonly position: bigint
}
interface Row {
  readonly epoch: number
  readonly tx_id: string
  readonly global_position: bigint
  readonly stream_id: string
  readonly data: { readonly amount: number }
}

export const make = Effect.fnUntraced(function* (schema: string) {
  const sql = yield* PgClient.PgClient
  const s = sql(schema)
  // The same columns, defaults, constraints and indexes as Facta's events and streams.
  yield* sql.unsafe(`CREATE TABLE ${schema}.raw_streams (LIKE ${schema}.streams INCLUDING ALL)`)
  // columns, identity, defaults (tx_id = pg_current_xact_id()), unique keys and the three log indexes
  yield* sql.unsafe(`CREATE TABLE ${schema}.raw_events (LIKE ${schema}.events INCLUDING ALL)`)
  const channel = `${schema}_raw`

  /**
   * One statement: a CTE upserts the stream row with the expected-version check (`WHERE version = expected`) and
   * inserts the events; a refused check inserts nothing, and the unique constraints back it up. Data and metadata
   * travel as one JSON array each, the cheapest encoding measured (as Facta's append_stream takes them).
   */
  const append = (streamId: string, expected: number, events: ReadonlyArray<Event.EventData>, notify: boolean) => {
    const n = events.length
    const wake = notify ? sql`, pg_notify(${channel}, '')` : sql``
    const insert = sql<{ global_position: bigint }>`
      WITH head AS (
        INSERT INTO ${s}.raw_streams AS st (stream_id, category, version) VALUES (${streamId}, 'Bench', ${expected + n})
        ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, updated_at = now()
          WHERE st.version = ${expected}
        RETURNING st.version)
      INSERT INTO ${s}.raw_events (epoch, stream_id, category, version, event_id, type, schema_version, data, metadata)
      SELECT 1, ${streamId}, 'Bench', head.version - ${n}::integer + x.ord::integer, x.id, x.type, x.sv, x.data, x.meta
      FROM head, ROWS FROM (
        unnest(${events.map((e) => e.eventId)}::uuid[]),
        unnest(${events.map((e) => e.type)}::text[]),
        unnest(${events.map((e) => e.schemaVersion)}::smallint[]),
        jsonb_array_elements(${JSON.stringify(events.map((e) => e.data))}::jsonb),
        jsonb_array_elements(${JSON.stringify(events.map(() => ({})))}::jsonb)) WITH ORDINALITY AS x(id, type, sv, data, meta, ord)
      RETURNING global_position, tx_id::text AS tx_id ${wake}`
    return Effect.flatMap(insert, (rows) =>
      rows.length === n ? Effect.void : Effect.die(new Error(`raw append to ${streamId} at ${expected} refused`))
    )
  }
  const plain: System = { label: "raw", append: (id, expected, events) => append(id, expected, events, false) }
  const notifying: System = {
    label: "raw+NOTIFY",
    append: (id, expected, events) => append(id, expected, events, true)
  }

  const seedAggregate = Effect.fnUntraced(function* (
    streamId: string,
    n: number,
    eventData: (k: number) => Event.EventData
  ) {
    for (let v = 0; v < n; v += 100) {
      yield* append(
        streamId,
        v,
        range(Math.min(100, n - v)).map((k) => eventData(v + k + 1)),
        false
      )
    }
  })
  /** Reads the stream's rows by the (stream_id, version) index and folds their JSON. */
  const load = (streamId: string) =>
    Effect.map(
      sql<{
        data: { amount: number }
      }>`SELECT data FROM ${s}.raw_events WHERE stream_id = ${streamId} ORDER BY version`,
      (rows) => {
        let state: AccountState = { balance: 0, deposits: 0 }
        for (const row of rows) state = evolveJson(state, row.data)
        return rows.length
      }
    )

  /** Keyset pages on `(epoch, tx_id, global_position)` below the transaction horizon, as Facta and Emmett read. */
  const page = (table: string, after: Cursor, size: number) =>
    sql<Row>`
      SELECT ${sql.literal(eventColumns)} FROM ${s}.${sql(table)} e
      WHERE (e.epoch, e.tx_id, e.global_position) > (${after.epoch}, ${after.tx}::xid8, ${after.position})
        AND e.tx_id < pg_snapshot_xmin(pg_current_snapshot())
      ORDER BY e.epoch, e.tx_id, e.global_position LIMIT ${size}`
  const cursorOf = (row: Row | undefined, fallback: Cursor): Cursor =>
    row === undefined ? fallback : { epoch: row.epoch, tx: row.tx_id, position: row.global_position }
  const origin: Cursor = { epoch: 0, tx: "0", position: 0n }

  /** The log (Facta's events table), keyset page after keyset page. */
  const readPaged = (): Stream.Stream<unknown, unknown> =>
    Stream.paginate(origin, (after: Cursor) =>
      Effect.map(page("events", after, readBatch), (rows) => {
        const last = rows.at(-1)
        return [
          rows,
          rows.length < readBatch || last === undefined ? Option.none() : Option.some(cursorOf(last, after))
        ] as const
      })
    )
  /** The log in one streamed `SELECT ... ORDER BY`, the fastest the driver reads. */
  const readStreamed = (): Stream.Stream<unknown, unknown> =>
    sql`SELECT ${sql.literal(eventColumns)} FROM ${s}.events e ORDER BY e.epoch, e.tx_id, e.global_position`.stream

  /** LISTEN for the appends' `pg_notify`, then keyset pages after the last row seen, polling each second anyway. */
  const tail: Tail = (handled) =>
    Effect.gen(function* () {
      const wake = yield* sql.listen(channel)
      const [head] = yield* sql<Row>`
        SELECT epoch, tx_id::text AS tx_id, global_position FROM ${s}.raw_events
        ORDER BY epoch DESC, tx_id DESC, global_position DESC LIMIT 1`
      let cursor = cursorOf(head, origin)
      const loop = Effect.gen(function* () {
        while (true) {
          const rows = yield* page("raw_events", cursor, 500)
          for (const row of rows) handled(row.stream_id, row.data.amount)
          cursor = cursorOf(rows.at(-1), cursor)
          if (rows.length < 500) {
            yield* Effect.raceFirst(Queue.take(wake), Effect.sleep("1 second"))
            yield* Queue.clear(wake)
          }
        }
      })
      yield* Effect.forkScoped(loop)
    })

  /**
   * The floor of a rebuild: the bank's account read model (in schema `readModel`, created by the bank's migrations)
   * in one statement over Facta's events table, in one transaction. A running sum over each account's events in
   * version order gives every movement's balance after it; a CTE feeds both inserts from one scan. `upTo` limits it to
   * the first events of the log (to check a rebuild that its time budget stopped). The tables must exist.
   */
  const rebuildAccounts = (readModel: string, upTo?: number) =>
    Effect.gen(function* () {
      yield* Tables.truncate(["accounts", "account_entries"])
      if (upTo === 0) return
      const log = `${schema}.events`
      const limit =
        upTo === undefined
          ? ""
          : `AND (e.epoch, e.tx_id, e.global_position) <= (SELECT epoch, tx_id, global_position FROM ${log}
               WHERE category = 'Account' ORDER BY epoch, tx_id, global_position OFFSET ${upTo - 1} LIMIT 1)`
      yield* sql.unsafe(`
        WITH moved AS MATERIALIZED (
          SELECT substr(e.stream_id, length('Account-') + 1) AS account_id, e.version,
            e.epoch || '.' || e.tx_id || '.' || e.global_position AS position, e.type, e.data, e.metadata,
            e.recorded_at, x.amount, sum(x.amount) OVER (PARTITION BY e.stream_id ORDER BY e.version) AS balance_after
          FROM ${log} e CROSS JOIN LATERAL (SELECT ${BankLog.signedAmount("e.type", "e.data")} AS amount) AS x
          WHERE e.category = 'Account' ${limit}
        ), entries AS (
          INSERT INTO ${readModel}.account_entries (account_id, version, position, type, amount, balance_after,
            transfer_id, actor, reason, reference, correlation_id, recorded_at)
          SELECT account_id, version, position, type, amount, balance_after, data ->> 'transferId',
            metadata ->> 'actor', data ->> 'reason', data ->> 'reference', metadata ->> 'correlationId', recorded_at
          FROM moved WHERE amount <> 0
        )
        INSERT INTO ${readModel}.accounts (account_id, owner, currency, balance, status, version, opened_at, updated_at)
        SELECT account_id,
          (array_agg(data ->> 'owner') FILTER (WHERE type = 'AccountOpened'))[1],
          (array_agg(data ->> 'currency') FILTER (WHERE type = 'AccountOpened'))[1],
          sum(amount),
          (array_agg(CASE type WHEN 'AccountFrozen' THEN 'Frozen' WHEN 'AccountClosed' THEN 'Closed' ELSE 'Active' END
            ORDER BY version DESC)
            FILTER (WHERE type IN ('AccountOpened', 'AccountFrozen', 'AccountUnfrozen', 'AccountClosed')))[1],
          max(version),
          (array_agg(recorded_at) FILTER (WHERE type = 'AccountOpened'))[1],
          (array_agg(recorded_at ORDER BY version DESC))[1]
        FROM moved GROUP BY account_id HAVING bool_or(type = 'AccountOpened')`)
    }).pipe(
      sql.withTransaction,
      Effect.provideService(Tables.Schema, readModel),
      Effect.provideService(SqlClient.SqlClient, sql)
    )

  return { plain, notifying, seedAggregate, load, readPaged, readStreamed, tail, rebuildAccounts }
})
