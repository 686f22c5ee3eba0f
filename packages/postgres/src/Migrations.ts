/**
 * The PostgreSQL store's schema, created and upgraded by versioned migrations (effect's `Migrator`).
 *
 * Migrations run in one transaction that locks the migrations table, so several processes may start at once: one
 * migrates, the others wait and find nothing left to do.
 *
 * @since 0.1.0
 */
import { Effect, Schema } from "effect"
import { Migrator, SqlClient } from "effect/sql"
import { migrations } from "./internal/schema.ts"

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
 * @since 0.1.0
 */
export const defaultSchema = "facta"

/**
 * Creates the schema if needed and applies every pending migration.
 *
 * @example
 * ```ts
 * import { Migrations } from "@facta/postgres"
 *
 * const migrate = Migrations.run("facta") // needs a SqlClient
 * ```
 *
 * @since 0.1.0
 */
export const run = Effect.fn("Migrations.run")(function* (schema: string) {
  const name = yield* Schema.decodeUnknownEffect(SchemaName)(schema).pipe(Effect.orDie)
  const sql = yield* SqlClient.SqlClient
  // concurrent `CREATE SCHEMA IF NOT EXISTS` can still collide in the catalog; a second look settles it
  yield* sql`CREATE SCHEMA IF NOT EXISTS ${sql(name)}`.pipe(
    Effect.catch((error) =>
      Effect.flatMap(sql`SELECT 1 FROM pg_namespace WHERE nspname = ${name}`, (rows) =>
        rows.length > 0 ? Effect.void : Effect.fail(error)
      )
    )
  )
  const loader = Migrator.fromRecord(
    Object.fromEntries(
      migrations(name).map(([migration, statements], i) => [
        `${String(i + 1).padStart(4, "0")}_${migration}`,
        Effect.forEach(statements, (statement) => sql.unsafe(statement), { discard: true })
      ])
    )
  )
  return yield* Migrator.make({})({ loader, table: `${name}.migrations` })
})
