/**
 * The bank's read models: SQL tables kept by projections (exactly once: each batch commits with its checkpoint), and
 * the queries the API and the CLI answer from.
 *
 * - `bank.accounts`: one row per account with its balance, status and stream version.
 * - `bank.account_entries`: every event that moved an account's money, with the running balance, the actor, the
 *   transfer it belongs to and its correlation id: the transaction history and the answer to "why is this balance
 *   $237.50?" in one query.
 * - `bank.transfers`: one row per transfer with its status.
 */
import { CheckpointStore, type Position, Projection, type ProjectionError, type StorageError } from "@facta/core"
import type { Duration, Option } from "effect"
import { Context, Effect, Layer, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { Deadlines } from "../infra/Deadlines.ts"
import { AccountsProjection, TransfersProjection } from "./Projections.ts"
import * as Tables from "./Tables.ts"

const Decimals = Schema.Int.annotate({
  description: "How many decimals the currency's minor unit has (2 for USD, 0 for JPY, 3 for KWD): amount / 10^decimals"
})

/**
 * An account as the balances read model holds it. Amounts are integer minor units of `currency`, which has
 * `decimals` of them per major unit.
 */
export const AccountSummary = Schema.Struct({
  accountId: Schema.String,
  owner: Schema.String,
  currency: Schema.String,
  decimals: Decimals,
  balance: Schema.Int,
  status: Schema.Literals(["Active", "Frozen", "Closed"]),
  version: Schema.Int,
  openedAt: Schema.String,
  updatedAt: Schema.String
})

export type AccountSummary = typeof AccountSummary.Type

/**
 * One money movement of an account: `amount` is signed (credits positive), `balanceAfter` is the running balance.
 */
export const Entry = Schema.Struct({
  version: Schema.Int,
  position: Schema.String,
  type: Schema.String,
  amount: Schema.Int,
  balanceAfter: Schema.Int,
  transferId: Schema.NullOr(Schema.String),
  actor: Schema.NullOr(Schema.String),
  reason: Schema.NullOr(Schema.String),
  reference: Schema.NullOr(Schema.String),
  correlationId: Schema.NullOr(Schema.String),
  recordedAt: Schema.String
})

export type Entry = typeof Entry.Type

/**
 * A page of an account's history, oldest first; `nextAfter` is the version to continue after, when there is more.
 */
export const HistoryPage = Schema.Struct({
  entries: Schema.Array(Entry),
  nextAfter: Schema.NullOr(Schema.Int)
})

export type HistoryPage = typeof HistoryPage.Type

/**
 * Why an account holds its balance: every money movement in order with the running balance. `consistent` says
 * whether the last running balance equals the balance (it always should).
 */
export const Explanation = Schema.Struct({
  account: AccountSummary,
  entries: Schema.Array(Entry),
  consistent: Schema.Boolean
})

export type Explanation = typeof Explanation.Type

/**
 * A transfer as the transfers read model holds it.
 */
export const TransferSummary = Schema.Struct({
  transferId: Schema.String,
  from: Schema.String,
  to: Schema.String,
  amount: Schema.Int,
  currency: Schema.String,
  decimals: Decimals,
  reference: Schema.String,
  status: Schema.String,
  initiatedBy: Schema.String,
  approvedBy: Schema.NullOr(Schema.String),
  failure: Schema.NullOr(Schema.String),
  version: Schema.Int,
  initiatedAt: Schema.String,
  updatedAt: Schema.String
})

export type TransferSummary = typeof TransferSummary.Type

/**
 * The bank's read models.
 */
export class ReadModels extends Context.Service<
  ReadModels,
  {
    /** Every account, or one owner's, by id. */
    readonly accounts: (owner?: string) => Effect.Effect<ReadonlyArray<AccountSummary>, StorageError.StorageError>
    readonly account: (accountId: string) => Effect.Effect<Option.Option<AccountSummary>, StorageError.StorageError>
    /** An account's money movements after version `after` (default 0), at most `limit` (default 50, at most 500). */
    readonly history: (
      accountId: string,
      options?: { readonly after?: number | undefined; readonly limit?: number | undefined }
    ) => Effect.Effect<HistoryPage, StorageError.StorageError>
    readonly explain: (accountId: string) => Effect.Effect<Option.Option<Explanation>, StorageError.StorageError>
    /** Transfers, newest first, optionally of one status, at most `limit` (default 50, at most 500). */
    readonly transfers: (options?: {
      readonly status?: string | undefined
      readonly account?: string | undefined
      readonly limit?: number | undefined
    }) => Effect.Effect<ReadonlyArray<TransferSummary>, StorageError.StorageError>
    readonly transfer: (transferId: string) => Effect.Effect<Option.Option<TransferSummary>, StorageError.StorageError>
    /** Resolves once every read model has caught up with `position` (read your writes). */
    readonly waitFor: (
      position: Position.Position,
      timeout?: Duration.Input
    ) => Effect.Effect<void, StorageError.StorageError | ProjectionError.ProjectionLagging>
  }
>()("@facta/example-bank/ReadModels") {}

/**
 * The projections that keep the read models, by name, to run with `Projection.run`.
 */
export const projections = { accounts: AccountsProjection, transfers: TransfersProjection } as const

/**
 * The read models on the `SqlClient` in context; creates their tables when missing. Every query runs under the
 * storage deadline of `Deadlines` and fails with a `StorageError` (retryable when trying again may help); `waitFor`
 * reads the projections' checkpoints from the `CheckpointStore` in context.
 */
export const layer: Layer.Layer<ReadModels, unknown, SqlClient.SqlClient | CheckpointStore.CheckpointStore> =
  Layer.effect(
    ReadModels,
    Effect.gen(function* () {
      yield* Tables.migrate
      const sql = yield* SqlClient.SqlClient
      const deadlines = yield* Deadlines
      const checkpoints = yield* CheckpointStore.CheckpointStore
      const queries = Tables.queries(sql, yield* Tables.Schema, {
        scope: yield* Effect.scope,
        deadline: deadlines.storage
      })
      return ReadModels.of({
        ...queries,
        waitFor: (position, timeout) =>
          Effect.forEach(
            Object.values(projections),
            (projection) => Projection.waitFor(projection, position, { timeout: timeout ?? "5 seconds" }),
            { concurrency: "unbounded", discard: true }
          ).pipe(Effect.provideService(CheckpointStore.CheckpointStore, checkpoints))
      })
    })
  )
