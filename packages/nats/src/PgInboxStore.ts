/**
 * The inbox store on PostgreSQL (any `effect/sql` client speaking PostgreSQL): a message's record and its handler's
 * SQL commit in one transaction, so that a message redelivered after a lost acknowledgement is applied once. Its two
 * tables (`inbox`, applied message ids, and `inbox_parked`) are created in `schema` when the store is built.
 *
 * @since 0.1.0
 */
import { Inbox, StorageError } from "@facta/core"
import { DateTime, Effect, Layer, Option, Schema } from "effect"
import { SqlClient, SqlError } from "effect/sql"

/** A lost connection, a serialization failure, a deadlock, a timeout: what `effect/sql` marks retryable. */
const isRetryableSql = (error: SqlError.SqlError): boolean => error.isRetryable

const storageError = (operation: string) => (error: SqlError.SqlError) =>
  new StorageError.StorageError({ store: "InboxStore", operation, retryable: isRetryableSql(error), cause: error })

const SchemaName = Schema.String.check(
  Schema.isPattern(/^[a-z_][a-z0-9_]{0,62}$/, { expected: "a lower-case SQL identifier" })
)

/**
 * Builds the store, creating its tables in `schema` (default `facta`) when missing.
 *
 * @example
 * ```ts
 * import { PgInboxStore } from "@facta/nats"
 *
 * const store = PgInboxStore.make({ schema: "risk" })
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = Effect.fn("PgInboxStore.make")(function* (options?: { readonly schema?: string | undefined }) {
  const sql = yield* SqlClient.SqlClient
  const schema = yield* Schema.decodeUnknownEffect(SchemaName)(options?.schema ?? "facta").pipe(Effect.orDie)
  const inbox = sql(`${schema}.inbox`)
  const parkedTable = sql(`${schema}.inbox_parked`)
  // one process creates the tables, the others wait for its transaction (a lock on the schema's name)
  yield* sql
    .withTransaction(
      Effect.gen(function* () {
        yield* sql`SELECT pg_advisory_xact_lock(hashtext(${`facta-inbox:${schema}`}))`
        yield* sql.unsafe(`CREATE SCHEMA IF NOT EXISTS ${schema}`)
        yield* sql.unsafe(
          `CREATE TABLE IF NOT EXISTS ${schema}.inbox (inbox text NOT NULL, message_id text NOT NULL, ` +
            `applied_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (inbox, message_id))`
        )
        yield* sql.unsafe(
          `CREATE TABLE IF NOT EXISTS ${schema}.inbox_parked (inbox text NOT NULL, message_id text NOT NULL, ` +
            `subject text NOT NULL, body text NOT NULL, error text NOT NULL, ` +
            `parked_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (inbox, message_id))`
        )
      })
    )
    .pipe(Effect.mapError(storageError("migrate")))

  const apply = <A, E, R>(name: string, messageId: string, work: Effect.Effect<A, E, R>) =>
    sql
      .withTransaction(
        Effect.gen(function* () {
          const claimed = yield* sql<{ readonly one: number }>`
            INSERT INTO ${inbox} (inbox, message_id) VALUES (${name}, ${messageId})
            ON CONFLICT DO NOTHING RETURNING 1 AS one`
          if (claimed.length === 0) return Option.none<A>()
          return Option.some(yield* work)
        })
      )
      .pipe(
        Effect.catchIf(
          (error): error is SqlError.SqlError => SqlError.isSqlError(error),
          (error) => Effect.fail(storageError("apply")(error))
        )
      ) as Effect.Effect<Option.Option<A>, E | StorageError.StorageError, R>

  const park = (name: string, delivery: Inbox.Delivery, error: string) =>
    sql`
      INSERT INTO ${parkedTable} (inbox, message_id, subject, body, error)
      VALUES (${name}, ${delivery.id}, ${delivery.subject}, ${new TextDecoder().decode(delivery.body)}, ${error})
      ON CONFLICT DO NOTHING`.pipe(Effect.asVoid, Effect.mapError(storageError("park")))

  const parked = (name: string) =>
    sql<{
      readonly message_id: string
      readonly subject: string
      readonly body: string
      readonly error: string
      readonly parked_at: Date
    }>`SELECT message_id, subject, body, error, parked_at FROM ${parkedTable} WHERE inbox = ${name}
       ORDER BY parked_at, message_id`.pipe(
      Effect.map((rows) =>
        rows.map(
          (row): Inbox.ParkedMessage => ({
            inbox: name,
            messageId: row.message_id,
            subject: row.subject,
            body: row.body,
            error: row.error,
            parkedAt: DateTime.makeUnsafe(row.parked_at)
          })
        )
      ),
      Effect.mapError(storageError("parked"))
    )

  return Inbox.InboxStore.of({ transactional: true, apply, park, parked })
})

/**
 * The store as a layer, on the `SqlClient` of the context.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { PgClient } from "@effect/sql-pg"
 * import { PgInboxStore } from "@facta/nats"
 *
 * declare const Database: Layer.Layer<PgClient.PgClient>
 * const Store = PgInboxStore.layer({ schema: "risk" })
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = (options?: {
  readonly schema?: string | undefined
}): Layer.Layer<Inbox.InboxStore, StorageError.StorageError, SqlClient.SqlClient> =>
  Layer.effect(Inbox.InboxStore, make(options))
