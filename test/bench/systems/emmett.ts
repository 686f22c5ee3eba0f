/**
 * Emmett's PostgreSQL event store (`@event-driven-io/emmett-postgresql`) through its public API, in a database of its
 * own: its tables (`emt_messages`, `emt_streams`, ...) have fixed names in `public`.
 */
import {
  defaultTag,
  getPostgreSQLEventStore,
  type PostgreSQLEventStoreConsumer,
  type PostgresEventStore
} from "@event-driven-io/emmett-postgresql"
import type { Event } from "@facta/core"
import { Effect, type Scope } from "effect"
import pg from "pg"
import * as BankLog from "../bankLog.ts"
import { logStreams, poolSize, readBatch } from "../config.ts"
import { type AccountState, evolveJson, range, type System, type Tail } from "../domain.ts"

type Deposited = { readonly type: "Deposited"; readonly data: { readonly amount: number } }

const promise = <A>(f: () => Promise<A>) => Effect.tryPromise({ try: f, catch: (cause) => cause })

/** Creates `bench_emmett_<ts>` next to the database of `url`, and drops it when the scope closes. */
export const make = (url: string, database: string): Effect.Effect<Emmett, unknown, Scope.Scope> =>
  Effect.gen(function* () {
    const adminPool = () => new pg.Pool({ connectionString: url, max: 1 })
    yield* Effect.acquireRelease(
      promise(async () => {
        const admin = adminPool()
        await admin.query(`CREATE DATABASE ${database}`)
        await admin.end()
      }),
      () =>
        Effect.promise(async () => {
          const admin = adminPool()
          await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).catch((e) => console.error(e))
          await admin.end()
        })
    )
    const target = new URL(url)
    target.pathname = `/${database}`
    const connectionString = target.toString()
    const pool = new pg.Pool({ connectionString, max: poolSize })
    pool.on("error", () => {}) // an idle client killed by the final DROP DATABASE ... WITH (FORCE)
    const store = getPostgreSQLEventStore(connectionString, { connectionOptions: { pool } })
    yield* Effect.addFinalizer(() => Effect.promise(() => store.close().catch(() => undefined)))
    yield* promise(() => store.schema.migrate())
    return new Emmett(store, pool, connectionString)
  })

export class Emmett {
  readonly store: PostgresEventStore
  readonly pool: pg.Pool
  /** Of Emmett's own database. */
  readonly connectionString: string
  constructor(store: PostgresEventStore, pool: pg.Pool, connectionString: string) {
    this.store = store
    this.pool = pool
    this.connectionString = connectionString
  }

  readonly system: System = {
    label: "Emmett",
    append: (streamId, expected, events) =>
      promise(() =>
        this.store.appendToStream<Deposited>(
          streamId,
          events.map((e) => ({ type: "Deposited", data: e.data as { amount: number } })),
          { expectedStreamVersion: BigInt(expected) }
        )
      )
  }

  seedAggregate(streamId: string, n: number, eventData: (k: number) => Event.EventData) {
    const system = this.system
    return Effect.gen(function* () {
      for (let v = 0; v < n; v += 100) {
        yield* system.append(
          streamId,
          v,
          range(Math.min(100, n - v)).map((k) => eventData(v + k + 1))
        )
      }
    })
  }

  /** `aggregateStream` with the same fold as Facta's decider. */
  load(streamId: string) {
    return promise(async () => {
      const result = await this.store.aggregateStream<AccountState, Deposited>(streamId, {
        evolve: (state: AccountState, event: { readonly data: { readonly amount: number } }) =>
          evolveJson(state, event.data),
        initialState: () => ({ balance: 0, deposits: 0 })
      })
      return result.state.deposits
    })
  }

  /** The same log as Facta's, generated on the server straight into `emt_messages` in 100,000-row transactions. */
  seedLog(n: number, progress: (rows: number) => Effect.Effect<void>) {
    const pool = this.pool
    return Effect.gen(function* () {
      yield* promise(() => pool.query("TRUNCATE emt_messages, emt_streams, emt_processors"))
      yield* promise(() => pool.query("SELECT setval('emt_global_message_position', 1, false)"))
      for (let from = 1; from <= n; from += 100_000) {
        const to = Math.min(n, from + 100_000 - 1)
        yield* promise(() =>
          pool.query(
            `INSERT INTO emt_messages (stream_id, stream_position, partition, message_kind, message_data,
               message_metadata, message_schema_version, message_type, message_id, transaction_id)
             SELECT 'Seed-' || ((g - 1) % $1), ((g - 1) / $1)::bigint + 1, $2, 'E', jsonb_build_object('amount', g),
               '{}'::jsonb, '1', 'Deposited', gen_random_uuid()::text, pg_current_xact_id()
             FROM generate_series($3::bigint, $4::bigint) AS g`,
            [logStreams, defaultTag, from, to]
          )
        )
        yield* progress(to)
      }
      yield* promise(() =>
        pool.query(
          `INSERT INTO emt_streams (stream_id, stream_position, partition, stream_type, stream_metadata)
           SELECT stream_id, max(stream_position), $1, 'Seed', '{}'::jsonb FROM emt_messages GROUP BY stream_id`,
          [defaultTag]
        )
      )
      yield* promise(() => pool.query("VACUUM (ANALYZE) emt_messages"))
      yield* promise(() => pool.query("VACUUM (ANALYZE) emt_streams"))
    })
  }

  /** The bank's Account log (bankLog.ts), the same events as Facta's, into `emt_messages` in 100,000-row transactions. */
  seedBankLog(n: number, accounts: number, progress: (rows: number) => Effect.Effect<void>) {
    const pool = this.pool
    return Effect.gen(function* () {
      yield* promise(() => pool.query("TRUNCATE emt_messages, emt_streams, emt_processors, emt_projections"))
      yield* promise(() => pool.query("SELECT setval('emt_global_message_position', 1, false)"))
      const perAccount = Math.ceil(n / accounts)
      for (let from = 1; from <= n; from += 100_000) {
        const to = Math.min(n, from + 100_000 - 1)
        yield* promise(() =>
          pool.query(
            `INSERT INTO emt_messages (stream_id, stream_position, partition, message_kind, message_data,
               message_metadata, message_schema_version, message_type, message_id, transaction_id)
             SELECT stream_id, version, $1, 'E', data, '{}'::jsonb, '1', type, gen_random_uuid()::text,
               pg_current_xact_id()
             FROM (${BankLog.rows(from, to, accounts, perAccount)}) AS generated`,
            [defaultTag]
          )
        )
        yield* progress(to)
      }
      yield* promise(() =>
        pool.query(
          `INSERT INTO emt_streams (stream_id, stream_position, partition, stream_type, stream_metadata)
           SELECT stream_id, max(stream_position), $1, 'Account', '{}'::jsonb FROM emt_messages GROUP BY stream_id`,
          [defaultTag]
        )
      )
      yield* promise(() => pool.query("VACUUM (ANALYZE) emt_messages"))
      yield* promise(() => pool.query("VACUUM (ANALYZE) emt_streams"))
    })
  }

  /** The plan of the page query Emmett's consumer sends, a third of the way into the log. */
  explainPage(after: number) {
    return promise(async () => {
      const result = await this.pool.query<{ "QUERY PLAN": string }>(
        `EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
         SELECT stream_id, stream_position, global_position, message_data, message_metadata, message_schema_version,
           message_type, message_id
         FROM emt_messages
         WHERE partition = $1 AND is_archived = FALSE AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
           AND global_position >= $2
         ORDER BY transaction_id, global_position LIMIT ${readBatch}`,
        [defaultTag, after]
      )
      return result.rows.map((r) => r["QUERY PLAN"]).join("\n")
    })
  }

  /**
   * A consumer with one reactor from the beginning, stopping when no messages are left, with a time budget. Pages of
   * `readBatch` and `pullingFrequencyInMs: 0` (the defaults, 100 and 50 ms, would cap it at 2,000 events/s).
   */
  catchUp(processorId: string, seconds: number) {
    const store = this.store
    return Effect.gen(function* () {
      let rows = 0
      const consumer = store.consumer({
        stopWhen: { noMessagesLeft: true },
        pulling: { batchSize: readBatch, pullingFrequencyInMs: 0 }
      })
      consumer.reactor<Deposited>({
        processorId,
        eachMessage: async () => {
          rows++
        }
      })
      const budget = setTimeout(() => void consumer.stop(), seconds * 1000)
      yield* promise(() => consumer.start()).pipe(Effect.ensuring(Effect.sync(() => clearTimeout(budget))))
      yield* promise(() => consumer.stop())
      return rows
    })
  }

  /** A consumer with Emmett's default pulling (pages of 100, 50 ms between full pages, backing off to 1 s when idle). */
  tail(processorId: string): Tail {
    const { pool, store } = this
    return (handled) =>
      Effect.acquireRelease(
        Effect.gen(function* () {
          // `startFrom: "END"` would replay the whole log: Emmett 0.42's readLastMessageGlobalPosition sorts ascending
          // and takes the first row, so "END" is the log's first position. Start after the current last one instead.
          const [{ last }] = (yield* promise(() =>
            pool.query<{ last: string }>("SELECT coalesce(max(global_position), 0)::text AS last FROM emt_messages")
          )).rows as [{ last: string }]
          const consumer: PostgreSQLEventStoreConsumer<Deposited> = store.consumer<Deposited>()
          consumer.reactor<Deposited>({
            processorId,
            startFrom: { lastCheckpoint: BigInt(last) },
            eachMessage: async (message) => {
              handled(message.metadata.streamName, message.data.amount)
            }
          })
          consumer.start().catch((e) => console.error("emmett consumer failed", e))
          return consumer
        }),
        (consumer) => Effect.promise(() => consumer.stop())
      ).pipe(Effect.asVoid)
  }
}
