/**
 * The inbox store on PostgreSQL: a message's record and its handler's SQL commit in one transaction (a batch of
 * messages, one transaction for all), so that a message redelivered after a lost acknowledgement is applied once,
 * whatever the broker (`@facta/nats`, `@facta/redis`). Its tables (`inbox`: applied message ids, `inbox_parked`) are
 * created in `schema` by versioned migrations (`Migrations.apply`, table `inbox_migrations`) when the store is built.
 *
 * @since 0.1.0
 */
import { Inbox, type StorageError } from "@facta/core"
import { DateTime, Effect, Layer, Option } from "effect"
import { SqlClient } from "effect/sql"
import * as Migrations from "./Migrations.ts"
import * as PgStorage from "./PgStorage.ts"

const migrations = (schema: string): ReadonlyArray<Migrations.Migration> => [
  [
    "inbox",
    [
      `CREATE TABLE ${schema}.inbox (inbox text NOT NULL, message_id text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (inbox, message_id))`,
      `CREATE TABLE ${schema}.inbox_parked (inbox text NOT NULL, message_id text NOT NULL, subject text NOT NULL,
        body text NOT NULL, error text NOT NULL, parked_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (inbox, message_id))`
    ]
  ]
]

/**
 * Builds the store, migrating its tables in `schema` (default `facta`, a plain lower-case identifier) first.
 *
 * @example
 * ```ts
 * import { PgInboxStore } from "@facta/postgres"
 *
 * // needs a SqlClient
 * const store = PgInboxStore.make({ schema: "risk" })
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = Effect.fn("PgInboxStore.make")(function* (options?: { readonly schema?: string | undefined }) {
  const sql = yield* SqlClient.SqlClient
  const schema = options?.schema ?? "facta"
  yield* Migrations.apply({ schema, migrations, table: "inbox_migrations" }).pipe(
    Effect.catchTag("MigrationError", (error) => Effect.die(error)),
    PgStorage.mapErrors("InboxStore", "migrate")
  )
  const inbox = sql(`${schema}.inbox`)
  const parkedTable = sql(`${schema}.inbox_parked`)

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
      .pipe(PgStorage.mapErrors("InboxStore", "apply")) as Effect.Effect<
      Option.Option<A>,
      E | StorageError.StorageError,
      R
    >

  const applyAll = <E, R>(
    name: string,
    messages: ReadonlyArray<{ readonly messageId: string; readonly work: Effect.Effect<unknown, E, R> }>
  ) =>
    sql
      .withTransaction(
        Effect.gen(function* () {
          // one statement claims the whole batch; ids applied before (or twice in it) are not returned. In id order, so
          // that two consumers claiming overlapping batches lock the same rows in the same order (no deadlock)
          const claimed = yield* sql<{ readonly message_id: string }>`
            INSERT INTO ${inbox} (inbox, message_id)
            SELECT ${name}, id FROM unnest(${messages.map((m) => m.messageId)}::text[]) AS id ORDER BY id
            ON CONFLICT DO NOTHING RETURNING message_id`
          const fresh = new Set(claimed.map((row) => row.message_id))
          const applied: Array<boolean> = []
          for (const message of messages) {
            const now = fresh.delete(message.messageId)
            if (now) yield* message.work
            applied.push(now)
          }
          return applied
        })
      )
      .pipe(PgStorage.mapErrors("InboxStore", "applyAll")) as Effect.Effect<
      ReadonlyArray<boolean>,
      E | StorageError.StorageError,
      R
    >

  const park = (name: string, delivery: Inbox.Delivery, error: string) =>
    sql`
      INSERT INTO ${parkedTable} (inbox, message_id, subject, body, error)
      VALUES (${name}, ${delivery.id}, ${delivery.subject}, ${new TextDecoder().decode(delivery.body)}, ${error})
      ON CONFLICT DO NOTHING`.pipe(Effect.asVoid, PgStorage.mapErrors("InboxStore", "park"))

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
      PgStorage.mapErrors("InboxStore", "parked")
    )

  return Inbox.InboxStore.of({ transactional: true, apply, applyAll, park, parked })
})

/**
 * The store as a layer, on the `SqlClient` of the context.
 *
 * @example
 * ```ts
 * import { PgInboxStore } from "@facta/postgres"
 *
 * // needs a SqlClient; NatsInbox.run and RedisInbox.run use it
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
