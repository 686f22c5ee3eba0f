import { PgClient } from "@effect/sql-pg"
import { PgEventStore, PgStore } from "@facta/postgres"
import { Effect, Layer, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { inject } from "vitest"

/** The URL of the run's PostgreSQL server (see globalSetup.ts). */
export const databaseUrl = (): string => inject("databaseUrl")

/** How a test's pool and store differ from the defaults. */
export interface StoreOptions {
  readonly maxConnections?: number
  /** Settings every connection of the pool starts with (`default_transaction_isolation`, ...). */
  readonly startupParameters?: Readonly<Record<string, string>>
  /** The stores' options besides their schema. */
  readonly store?: Omit<PgStore.Options, "schema">
}

/** A pool on the run's server. */
export const client = (options?: StoreOptions) =>
  PgClient.layer({
    url: Redacted.make(databaseUrl()),
    maxConnections: options?.maxConnections ?? 10,
    ...(options?.startupParameters === undefined ? {} : { startupParameters: options.startupParameters })
  })

/** A schema name no other test file uses. */
export const uniqueSchema = (prefix: string) =>
  `${prefix}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`.toLowerCase()

/** Drops the schema when the layer is torn down, so runs against a shared server leave nothing behind. */
export const dropSchemaOnRelease = (schema: string) =>
  Layer.effectDiscard(
    Effect.addFinalizer(() =>
      Effect.ignore(SqlClient.SqlClient.use((sql) => sql`DROP SCHEMA IF EXISTS ${sql(schema)} CASCADE`))
    )
  )

/** A migrated PostgreSQL event store in the given schema, on its own pool (the schema is dropped afterwards). */
export const eventStoreIn = (schema: string, options?: StoreOptions) =>
  Layer.mergeAll(PgEventStore.layer({ ...options?.store, schema }), dropSchemaOnRelease(schema)).pipe(
    Layer.provideMerge(client(options))
  )

/** A migrated PostgreSQL event store in a schema of its own, on its own pool. */
export const eventStore = (prefix: string, options?: StoreOptions) => eventStoreIn(uniqueSchema(prefix), options)

/**
 * Every PostgreSQL store (event, checkpoint, snapshot) in the given schema, migrated once, on its own pool (the
 * schema is dropped afterwards).
 */
export const projectionStoresIn = (schema: string, options?: StoreOptions) =>
  Layer.mergeAll(PgStore.layer({ ...options?.store, schema }), dropSchemaOnRelease(schema)).pipe(
    Layer.provideMerge(client(options))
  )
