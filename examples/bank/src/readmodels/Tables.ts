/**
 * The read models' tables (in the `bank` schema, created by versioned migrations) and the queries over them.
 *
 * @since 0.1.0
 */
import { Migrations, PgStorage } from "@facta/postgres"
import { Context, Duration, Effect, Option, type Scope } from "effect"
import { SqlClient, type SqlError } from "effect/sql"
import * as Money from "../domain/Money.ts"
import * as Deadlines from "../infra/Deadlines.ts"
import type { AccountSummary, Entry, Explanation, HistoryPage, TransferSummary } from "./ReadModels.ts"

/**
 * The schema the read models live in (default `bank`); tests give each file its own.
 *
 * @since 0.1.0
 */
export const Schema = Context.Reference<string>("@facta/example-bank/ReadModels/Schema", {
  defaultValue: () => "bank"
})

const migrations = (bank: string): ReadonlyArray<readonly [string, ReadonlyArray<string>]> => [
  [
    "read_models",
    [
      `CREATE TABLE ${bank}.accounts (
        account_id text PRIMARY KEY,
        owner text NOT NULL,
        currency text NOT NULL,
        balance bigint NOT NULL,
        status text NOT NULL,
        version integer NOT NULL,
        opened_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL
      )`,
      `CREATE INDEX accounts_owner_idx ON ${bank}.accounts (owner, account_id)`,
      `CREATE TABLE ${bank}.account_entries (
        account_id text NOT NULL,
        version integer NOT NULL,
        position text NOT NULL,
        type text NOT NULL,
        amount bigint NOT NULL,
        balance_after bigint NOT NULL,
        transfer_id text,
        actor text,
        reason text,
        reference text,
        correlation_id text,
        recorded_at timestamptz NOT NULL,
        PRIMARY KEY (account_id, version)
      )`,
      `CREATE TABLE ${bank}.transfers (
        transfer_id text PRIMARY KEY,
        from_account text NOT NULL,
        to_account text NOT NULL,
        amount bigint NOT NULL,
        currency text NOT NULL,
        reference text NOT NULL,
        status text NOT NULL,
        initiated_by text NOT NULL,
        approved_by text,
        failure text,
        version integer NOT NULL,
        initiated_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL
      )`,
      `CREATE INDEX transfers_status_idx ON ${bank}.transfers (status, initiated_at DESC)`,
      `CREATE INDEX transfers_from_idx ON ${bank}.transfers (from_account, initiated_at DESC)`,
      `CREATE INDEX transfers_to_idx ON ${bank}.transfers (to_account, initiated_at DESC)`
    ]
  ]
]

/**
 * Creates the `bank` schema and applies pending migrations (safe from several processes at once).
 *
 * @since 0.1.0
 */
export const migrate = Effect.gen(function* () {
  const bank = yield* Schema
  return yield* Migrations.apply({ schema: bank, migrations })
})

/**
 * Empties the read models (before a rebuild).
 *
 * @since 0.1.0
 */
export const truncate = (tables: ReadonlyArray<"accounts" | "account_entries" | "transfers">) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const bank = yield* Schema
    yield* Effect.forEach(tables, (table) => sql`TRUNCATE ${sql(bank)}.${sql(table)}`, { discard: true })
  })

interface AccountRow {
  readonly account_id: string
  readonly owner: string
  readonly currency: string
  readonly balance: bigint
  readonly status: AccountSummary["status"]
  readonly version: number
  readonly opened_at: Date
  readonly updated_at: Date
}

interface EntryRow {
  readonly version: number
  readonly position: string
  readonly type: string
  readonly amount: bigint
  readonly balance_after: bigint
  readonly transfer_id: string | null
  readonly actor: string | null
  readonly reason: string | null
  readonly reference: string | null
  readonly correlation_id: string | null
  readonly recorded_at: Date
}

interface TransferRow {
  readonly transfer_id: string
  readonly from_account: string
  readonly to_account: string
  readonly amount: bigint
  readonly currency: string
  readonly reference: string
  readonly status: string
  readonly initiated_by: string
  readonly approved_by: string | null
  readonly failure: string | null
  readonly version: number
  readonly initiated_at: Date
  readonly updated_at: Date
}

const toAccount = (row: AccountRow): AccountSummary => ({
  accountId: row.account_id,
  owner: row.owner,
  currency: row.currency,
  decimals: Money.decimals(row.currency as Money.Currency),
  balance: Number(row.balance),
  status: row.status,
  version: row.version,
  openedAt: row.opened_at.toISOString(),
  updatedAt: row.updated_at.toISOString()
})

const toEntry = (row: EntryRow): Entry => ({
  version: row.version,
  position: row.position,
  type: row.type,
  amount: Number(row.amount),
  balanceAfter: Number(row.balance_after),
  transferId: row.transfer_id,
  actor: row.actor,
  reason: row.reason,
  reference: row.reference,
  correlationId: row.correlation_id,
  recordedAt: row.recorded_at.toISOString()
})

const toTransfer = (row: TransferRow): TransferSummary => ({
  transferId: row.transfer_id,
  from: row.from_account,
  to: row.to_account,
  amount: Number(row.amount),
  currency: row.currency,
  decimals: Money.decimals(row.currency as Money.Currency),
  reference: row.reference,
  status: row.status,
  initiatedBy: row.initiated_by,
  approvedBy: row.approved_by,
  failure: row.failure,
  version: row.version,
  initiatedAt: row.initiated_at.toISOString(),
  updatedAt: row.updated_at.toISOString()
})

const limitOf = (limit: number | undefined) => Math.min(500, Math.max(1, Math.floor(limit ?? 50)))

/**
 * How the queries wait: `deadline` bounds each query (default the storage deadline of `Deadlines`); past it the
 * query fails with a retryable `StorageError` and is interrupted in the background, in a fiber of `scope`.
 *
 * @since 0.1.0
 */
export interface QueryOptions {
  readonly scope: Scope.Scope
  readonly deadline?: Duration.Input | undefined
}

/**
 * The queries of the `ReadModels` service, on a client: each maps its failures to a `StorageError` of store
 * `ReadModels` (`PgStorage.mapErrors`) and runs under a deadline (`PgStorage.deadline`).
 *
 * @since 0.1.0
 */
export const queries = (sql: SqlClient.SqlClient, bank: string, options: QueryOptions) => {
  const t = (table: string) => sql(`${bank}.${table}`)
  const deadline = Duration.fromInputUnsafe(options.deadline ?? Deadlines.defaults.storage)
  const within = PgStorage.deadline(options.scope, sql, "ReadModels")
  const storage =
    (operation: string) =>
    <A>(effect: Effect.Effect<A, SqlError.SqlError>) =>
      effect.pipe(PgStorage.mapErrors("ReadModels", operation), within(operation, deadline))
  const account = (accountId: string) =>
    sql<AccountRow>`SELECT * FROM ${t("accounts")} WHERE account_id = ${accountId}`.pipe(
      Effect.map(([row]) => Option.map(Option.fromUndefinedOr(row), toAccount)),
      storage("account")
    )
  return {
    accounts: (owner?: string) =>
      (owner === undefined
        ? sql<AccountRow>`SELECT * FROM ${t("accounts")} ORDER BY account_id`
        : sql<AccountRow>`SELECT * FROM ${t("accounts")} WHERE owner = ${owner} ORDER BY account_id`
      ).pipe(
        Effect.map((rows) => rows.map(toAccount)),
        storage("accounts")
      ),
    account,
    history: (
      accountId: string,
      options?: { readonly after?: number | undefined; readonly limit?: number | undefined }
    ) => {
      const limit = limitOf(options?.limit)
      return sql<EntryRow>`SELECT * FROM ${t("account_entries")}
        WHERE account_id = ${accountId} AND version > ${options?.after ?? 0}
        ORDER BY version LIMIT ${limit + 1}`.pipe(
        Effect.map(
          (rows): HistoryPage => ({
            entries: rows.slice(0, limit).map(toEntry),
            nextAfter: rows.length > limit ? rows[limit - 1]!.version : null
          })
        ),
        storage("history")
      )
    },
    explain: (accountId: string) =>
      Effect.flatMap(account(accountId), (found) =>
        Option.match(found, {
          onNone: () => Effect.succeed(Option.none<Explanation>()),
          onSome: (summary) =>
            sql<EntryRow>`SELECT * FROM ${t("account_entries")} WHERE account_id = ${accountId} ORDER BY version`.pipe(
              Effect.map((rows) => {
                const entries = rows.map(toEntry)
                const last = entries.at(-1)?.balanceAfter ?? 0
                return Option.some<Explanation>({ account: summary, entries, consistent: last === summary.balance })
              }),
              storage("explain")
            )
        })
      ),
    transfers: (options?: {
      readonly status?: string | undefined
      readonly account?: string | undefined
      readonly limit?: number | undefined
    }) => {
      const filters = sql.and([
        ...(options?.status === undefined ? [] : [sql`status = ${options.status}`]),
        ...(options?.account === undefined
          ? []
          : [sql`(from_account = ${options.account} OR to_account = ${options.account})`])
      ])
      return sql<TransferRow>`SELECT * FROM ${t("transfers")} WHERE ${filters}
        ORDER BY initiated_at DESC, transfer_id LIMIT ${limitOf(options?.limit)}`.pipe(
        Effect.map((rows) => rows.map(toTransfer)),
        storage("transfers")
      )
    },
    transfer: (transferId: string) =>
      sql<TransferRow>`SELECT * FROM ${t("transfers")} WHERE transfer_id = ${transferId}`.pipe(
        Effect.map(([row]) => Option.map(Option.fromUndefinedOr(row), toTransfer)),
        storage("transfer")
      )
  }
}
