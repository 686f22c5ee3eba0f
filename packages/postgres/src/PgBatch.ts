/**
 * Set-based SQL for batch projections (`Projection.make({ handleBatch })`): fold a batch's events per row in memory
 * ({@link foldByKey}), then write all the rows of the batch in one statement ({@link upsert}). The statements run in
 * the transaction that moves the projection's checkpoint (`PgCheckpointStore.commit`), so a batch counts exactly once.
 *
 * @since 0.1.0
 */
import { PgTypes } from "@effect/sql-pg"
import { Effect } from "effect"
import { SqlClient, SqlError, type Statement } from "effect/sql"

/**
 * The SQL types a column of {@link upsert} can have (a fixed list: types are never taken from user strings).
 *
 * @category models
 * @since 0.1.0
 */
export type ColumnType =
  | "text"
  | "integer"
  | "bigint"
  | "numeric"
  | "boolean"
  | "double precision"
  | "timestamptz"
  | "uuid"
  | "jsonb"

const columnTypes: ReadonlySet<string> = new Set<ColumnType>([
  "text",
  "integer",
  "bigint",
  "numeric",
  "boolean",
  "double precision",
  "timestamptz",
  "uuid",
  "jsonb"
])

/**
 * A table the rows of a batch go to: its name (may be schema-qualified, `bank.accounts`) and the SQL type of each
 * column written.
 *
 * @category models
 * @since 0.1.0
 */
export interface Table<Row> {
  readonly name: string
  readonly columns: { readonly [K in keyof Row & string]: ColumnType }
}

/**
 * Describes a table for {@link upsert}.
 *
 * @example
 * ```ts
 * import { PgBatch } from "@facta/postgres"
 *
 * interface Balance { readonly account_id: string; readonly balance: bigint }
 * const Balances = PgBatch.table<Balance>("bank.balances", { account_id: "text", balance: "bigint" })
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const table = <Row>(name: string, columns: Table<Row>["columns"]): Table<Row> => {
  for (const [column, type] of Object.entries<string>(columns)) {
    if (!columnTypes.has(type)) throw new TypeError(`PgBatch.table: column ${column} has unknown type ${type}`)
  }
  return { name, columns }
}

const json = (value: unknown): string =>
  JSON.stringify(value, (_key, inner) => (typeof inner === "bigint" ? inner.toString() : inner))

const asText = (value: unknown, type: ColumnType): string | null => {
  if (value === null || value === undefined) return null
  if (type === "jsonb") return json(value)
  if (typeof value === "string") return value
  if (value instanceof Date) return value.toISOString()
  if (typeof value === "object") return json(value)
  return String(value)
}

const isNullish = (value: unknown): value is null | undefined => value === null || value === undefined

/**
 * A column bound as an array the server need not parse: binary int4, int8 or timestamptz elements when every value
 * already is what the driver encodes (about 1.2x the rows/s of text for the bank's entries here); anything else, as
 * text the server casts.
 */
const columnArray = (values: ReadonlyArray<unknown>, type: ColumnType) => {
  const binary =
    type === "integer" && values.every((v) => isNullish(v) || Number.isInteger(v))
      ? PgTypes.array(
          values.map((v) => v ?? null),
          PgTypes.OID.int4
        )
      : type === "bigint" && values.every((v) => isNullish(v) || typeof v === "bigint" || Number.isSafeInteger(v))
        ? PgTypes.array(
            values.map((v) => (isNullish(v) ? null : BigInt(v as bigint | number))),
            PgTypes.OID.int8
          )
        : type === "timestamptz" &&
            values.every((v) => isNullish(v) || (v instanceof Date && !Number.isNaN(v.getTime())))
          ? PgTypes.array(
              values.map((v) => v ?? null),
              PgTypes.OID.timestamptz
            )
          : undefined
  return Effect.mapError(
    Effect.fromResult(
      binary ??
        PgTypes.array(
          values.map((value) => asText(value, type)),
          PgTypes.OID.text
        )
    ),
    (cause) =>
      new SqlError.SqlError({ reason: new SqlError.UnknownError({ cause, message: "PgBatch: cannot bind a column" }) })
  )
}

/**
 * Writes `rows` in one statement: `INSERT … SELECT … FROM unnest($1::text[], $2::bigint[], …)`, one bound array per
 * column (sent as `text[]`, so a column of nulls binds too, and cast to the column's type on the server: bigints and
 * numbers as decimal text, dates as ISO strings, `jsonb` values as JSON). With `onConflict`, a row whose `key` exists
 * updates the `update` columns instead (default: every column outside the key); the rows must then have distinct
 * keys (fold them first, {@link foldByKey}). No rows, no statement.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { PgBatch } from "@facta/postgres"
 *
 * interface Balance { readonly account_id: string; readonly balance: bigint }
 * const Balances = PgBatch.table<Balance>("bank.balances", { account_id: "text", balance: "bigint" })
 *
 * const write = PgBatch.upsert(Balances, [{ account_id: "a1", balance: 100n }, { account_id: "b1", balance: 5n }], {
 *   onConflict: { key: ["account_id"] }
 * })
 * ```
 *
 * @category writes
 * @since 0.1.0
 */
export const upsert = <Row>(
  table: Table<Row>,
  rows: ReadonlyArray<Row>,
  options?: {
    readonly onConflict?:
      | { readonly key: ReadonlyArray<keyof Row & string>; readonly update?: ReadonlyArray<keyof Row & string> }
      | undefined
  }
): Effect.Effect<void, SqlError.SqlError, SqlClient.SqlClient> =>
  Effect.gen(function* () {
    if (rows.length === 0) return
    const sql = yield* SqlClient.SqlClient
    const names = Object.keys(table.columns) as Array<keyof Row & string>
    const columns = sql.csv(names.map((name) => sql`${sql(name)}`))
    const arrays: Array<Statement.Fragment> = []
    for (const name of names) {
      const values = yield* columnArray(
        rows.map((row) => row[name]),
        table.columns[name]
      )
      arrays.push(sql`${values}::${sql.literal(checked(table.columns[name]))}[]`)
    }
    const conflict = options?.onConflict
    const onConflict =
      conflict === undefined
        ? sql.literal("")
        : sql`ON CONFLICT (${sql.csv(conflict.key.map((name) => sql`${sql(name)}`))}) DO UPDATE SET ${sql.csv(
            (conflict.update ?? names.filter((name) => !conflict.key.includes(name))).map(
              (name) => sql`${sql(name)} = excluded.${sql(name)}`
            )
          )}`
    yield* sql`INSERT INTO ${sql(table.name)} (${columns})
      SELECT * FROM unnest(${sql.csv(arrays)}) ${onConflict}`
  })

const checked = (type: ColumnType): string => {
  if (!columnTypes.has(type)) throw new TypeError(`PgBatch: unknown column type ${type}`)
  return type
}

/**
 * Reads the rows of `table` whose `key` column is one of `keys`, by key, in one statement (`= ANY($1::text[])`):
 * the state of the rows a batch touches, before the batch.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { PgBatch } from "@facta/postgres"
 *
 * interface Balance { readonly account_id: string; readonly balance: bigint }
 * const Balances = PgBatch.table<Balance>("bank.balances", { account_id: "text", balance: "bigint" })
 * const before = PgBatch.load(Balances, "account_id", ["a1", "b1"]) // Map { "a1" => { account_id, balance } }
 * ```
 *
 * @category reads
 * @since 0.1.0
 */
export const load = <Row extends object, K extends keyof Row & string>(
  table: Table<Row>,
  key: K,
  keys: Iterable<string>
): Effect.Effect<Map<string, Row>, SqlError.SqlError, SqlClient.SqlClient> =>
  Effect.gen(function* () {
    const wanted = Array.from(new Set(keys))
    const found = new Map<string, Row>()
    if (wanted.length === 0) return found
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<Row>`SELECT * FROM ${sql(table.name)} WHERE ${sql(key)}::text = ANY(${wanted}::text[])`
    for (const row of rows) found.set(String(row[key]), row)
    return found
  })

/**
 * Folds the items of a batch per key, in order: the events of one row (one account) go through `step` one after
 * another, from the row's state before the batch (`initial`, `undefined` when the row does not exist yet). Returns
 * each key's final state (the one write per row) and every step's state (e.g. the running balance of each entry).
 * Keys keep the order of their first item.
 *
 * @example
 * ```ts
 * import { PgBatch } from "@facta/postgres"
 *
 * const events = [{ account: "a", amount: 5 }, { account: "b", amount: 1 }, { account: "a", amount: -2 }]
 * const folded = PgBatch.foldByKey(events, {
 *   key: (event) => event.account,
 *   initial: () => 10,
 *   step: (balance, event) => (balance ?? 0) + event.amount
 * })
 * // folded.final: Map { "a" => 13, "b" => 11 }; folded.steps: the state after each event, [15, 11, 13]
 * ```
 *
 * @category folds
 * @since 0.1.0
 */
export const foldByKey = <A, S>(
  items: ReadonlyArray<A>,
  options: {
    readonly key: (item: A) => string
    readonly initial: (key: string) => S | undefined
    readonly step: (state: S | undefined, item: A) => S | undefined
  }
): { readonly final: Map<string, S | undefined>; readonly steps: ReadonlyArray<S | undefined> } => {
  const final = new Map<string, S | undefined>()
  const steps: Array<S | undefined> = []
  for (const item of items) {
    const key = options.key(item)
    const before = final.has(key) ? final.get(key) : options.initial(key)
    const after = options.step(before, item)
    final.set(key, after)
    steps.push(after)
  }
  return { final, steps }
}
