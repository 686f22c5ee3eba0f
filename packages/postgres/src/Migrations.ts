/**
 * Versioned migrations on effect's `Migrator`: the PostgreSQL store's own ({@link run}), and an application's for its
 * read-model tables ({@link apply}), with the same guarantees.
 *
 * Migrations run in one transaction that locks the migrations table, so several processes may start at once: one
 * migrates, the others wait and find nothing left to do. Each is recorded by its number (its place in the list, from
 * 1) and its name, so a deployed database never runs one twice: a new migration goes at the end of the list, and a
 * migration's text never changes once it shipped.
 *
 * @since 0.1.0
 */
import { Effect, Schema } from "effect"
import { Migrator, SqlClient, type SqlError } from "effect/sql"
import { migrations as storeMigrations } from "./internal/schema.ts"

/**
 * The schema name is the one piece of text spliced into SQL, so it must be a plain lower-case identifier.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Migrations } from "@facta/postgres"
 *
 * Schema.is(Migrations.SchemaName)("facta_test") // true
 * Schema.is(Migrations.SchemaName)("Facta; DROP") // false
 * ```
 *
 * @category schemas
 * @since 0.1.0
 */
export const SchemaName = Schema.String.check(
  Schema.isPattern(/^[a-z_][a-z0-9_]{0,62}$/, { expected: "a lower-case SQL identifier" })
)

/**
 * The schema a store lives in when none is configured.
 *
 * @example
 * ```ts
 * import { Migrations } from "@facta/postgres"
 *
 * const migrate = Migrations.run(Migrations.defaultSchema) // "facta"
 * ```
 *
 * @category constants
 * @since 0.1.0
 */
export const defaultSchema = "facta"

/**
 * One migration: its name (recorded with its number) and what it does, either SQL statements run one after the
 * other or an effect on the `SqlClient` (for a migration that needs to look before it writes). Every migration of a
 * run shares one transaction.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { SqlClient } from "effect/sql"
 * import type { Migrations } from "@facta/postgres"
 *
 * const statements: Migrations.Migration = ["accounts", ["CREATE TABLE bank.accounts (id text PRIMARY KEY)"]]
 * const effect: Migrations.Migration = [
 *   "accounts_seed",
 *   Effect.flatMap(SqlClient.SqlClient, (sql) => sql`INSERT INTO bank.accounts (id) VALUES ('house')`)
 * ]
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type Migration = readonly [
  name: string,
  up: ReadonlyArray<string> | Effect.Effect<unknown, unknown, SqlClient.SqlClient>
]

/**
 * What {@link apply} takes: the schema, the migrations in order (or a function building them from the schema's
 * name, once it is known to be a plain identifier) and the migrations table's name inside the schema (default
 * `migrations`).
 *
 * @example
 * ```ts
 * import { Migrations } from "@facta/postgres"
 *
 * const options: Migrations.Options = {
 *   schema: "bank",
 *   table: "read_model_migrations",
 *   migrations: (bank) => [["accounts", [`CREATE TABLE ${bank}.accounts (id text PRIMARY KEY)`]]]
 * }
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Options {
  readonly schema: string
  readonly migrations: ReadonlyArray<Migration> | ((schema: string) => ReadonlyArray<Migration>)
  readonly table?: string | undefined
}

/**
 * Creates `schema` if needed and applies every migration of the list it has not recorded yet, returning those it
 * applied (`[number, name]`). The same runner as the store's: an application keeps its read-model tables in a schema
 * of its own, migrated the same way. The schema and table names must be plain lower-case identifiers (a defect
 * otherwise, before any SQL runs); a migration's number is its place in the list, from 1.
 *
 * @example
 * ```ts
 * import { Migrations } from "@facta/postgres"
 *
 * // the read models' tables, in schema `shop` (needs a SqlClient)
 * const migrate = Migrations.apply({
 *   schema: "shop",
 *   migrations: (shop) => [
 *     ["orders", [`CREATE TABLE ${shop}.orders (order_id text PRIMARY KEY, total bigint NOT NULL)`]],
 *     ["orders_by_total", [`CREATE INDEX orders_total_idx ON ${shop}.orders (total)`]]
 *   ]
 * })
 * ```
 *
 * @category running
 * @since 0.1.0
 */
export const apply: (
  options: Options
) => Effect.Effect<
  ReadonlyArray<readonly [id: number, name: string]>,
  Migrator.MigrationError | SqlError.SqlError,
  SqlClient.SqlClient
> = Effect.fn("Migrations.apply")(function* (options: Options) {
  const name = yield* Schema.decodeUnknownEffect(SchemaName)(options.schema).pipe(Effect.orDie)
  const table = yield* Schema.decodeUnknownEffect(SchemaName)(options.table ?? "migrations").pipe(Effect.orDie)
  const sql = yield* SqlClient.SqlClient
  // concurrent `CREATE SCHEMA IF NOT EXISTS` can still collide in the catalog; a second look settles it
  yield* sql`CREATE SCHEMA IF NOT EXISTS ${sql(name)}`.pipe(
    Effect.catch((error) =>
      Effect.flatMap(sql`SELECT 1 FROM pg_namespace WHERE nspname = ${name}`, (rows) =>
        rows.length > 0 ? Effect.void : Effect.fail(error)
      )
    )
  )
  const migrations = typeof options.migrations === "function" ? options.migrations(name) : options.migrations
  const loader = Migrator.fromRecord(
    Object.fromEntries(
      migrations.map(([migration, up], i) => [
        `${String(i + 1).padStart(4, "0")}_${migration}`,
        Effect.isEffect(up)
          ? Effect.asVoid(up)
          : Effect.forEach(up, (statement) => sql.unsafe(statement), { discard: true })
      ])
    )
  )
  return yield* Migrator.make({})({ loader, table: `${name}.${table}` })
})

/**
 * Creates the store's schema if needed and applies every pending migration of the store (what `PgStore.layer` does
 * when it starts, unless `migrate: false`): for a deployment that migrates in a step of its own.
 *
 * @example
 * ```ts
 * import { Migrations } from "@facta/postgres"
 *
 * const migrate = Migrations.run("facta") // needs a SqlClient
 * ```
 *
 * @category running
 * @since 0.1.0
 */
export const run = Effect.fn("Migrations.run")(function* (schema: string) {
  return yield* apply({ schema, migrations: storeMigrations })
})
