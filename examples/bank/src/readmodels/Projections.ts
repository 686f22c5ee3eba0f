/**
 * The projections that keep the bank's read models. Their SQL runs in the transaction that moves their checkpoint
 * (`PgCheckpointStore`), so every event counts exactly once. They stop on an event they cannot handle rather than
 * park it: a balance that silently missed a movement would be worse than a stale one.
 */
import { type Event, EventCodec, Position, Projection, StreamId } from "@facta/core"
import { DateTime, Effect } from "effect"
import { SqlClient } from "effect/sql"
import * as Account from "../domain/Account.ts"
import * as Transfer from "../domain/Transfer.ts"
import { Schema, truncate } from "./Tables.ts"

const at = (event: Event.RecordedEvent<unknown>) => DateTime.toDateUtc(event.recordedAt)

const field = (data: object, name: string): string | null => {
  const value = (data as Record<string, unknown>)[name]
  return typeof value === "string" ? value : null
}

const tables = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const bank = yield* Schema
  return { sql, t: (table: string) => sql(`${bank}.${table}`) }
})

const onAccount = Effect.fnUntraced(function* (event: Event.RecordedEvent<Account.AccountEvent>) {
  const { sql, t } = yield* tables
  const accountId = StreamId.entityId(event.streamId)
  const data = event.data
  const when = at(event)
  let balance: bigint | undefined
  switch (data._tag) {
    case "AccountOpened": {
      yield* sql`INSERT INTO ${t("accounts")} (account_id, owner, currency, balance, status, version, opened_at, updated_at)
        VALUES (${accountId}, ${data.owner}, ${data.currency}, ${data.initialDeposit}, 'Active', ${event.version},
          ${when}, ${when})`
      balance = BigInt(data.initialDeposit)
      break
    }
    case "AccountFrozen":
    case "AccountUnfrozen":
    case "AccountClosed": {
      const status = data._tag === "AccountFrozen" ? "Frozen" : data._tag === "AccountClosed" ? "Closed" : "Active"
      yield* sql`UPDATE ${t("accounts")} SET status = ${status}, version = ${event.version}, updated_at = ${when}
        WHERE account_id = ${accountId}`
      return
    }
    default: {
      const [row] = yield* sql<{ balance: bigint }>`UPDATE ${t("accounts")}
        SET balance = balance + ${Account.signedAmount(data)}, version = ${event.version}, updated_at = ${when}
        WHERE account_id = ${accountId} RETURNING balance`
      balance = row?.balance
    }
  }
  const amount = Account.signedAmount(data)
  if (amount === 0 || balance === undefined) return
  yield* sql`INSERT INTO ${t("account_entries")} (account_id, version, position, type, amount, balance_after, transfer_id,
      actor, reason, reference, correlation_id, recorded_at)
    VALUES (${accountId}, ${event.version}, ${Position.format(event.position)}, ${data._tag}, ${amount}, ${balance},
      ${field(data, "transferId")}, ${event.metadata.actor ?? null}, ${field(data, "reason")},
      ${field(data, "reference")}, ${event.metadata.correlationId ?? null}, ${when})`
})

/**
 * Balances and money movements of every account (`${t("accounts")}`, `${t("account_entries")}`).
 */
export const AccountsProjection = Projection.make({
  name: "bank-accounts",
  events: EventCodec.make(Account.AccountEvent),
  categories: ["Account"],
  handle: onAccount,
  reset: truncate(["accounts", "account_entries"])
})

const onTransfer = Effect.fnUntraced(function* (event: Event.RecordedEvent<Transfer.TransferEvent>) {
  const { sql, t } = yield* tables
  const transferId = StreamId.entityId(event.streamId)
  const data = event.data
  const when = at(event)
  if (data._tag === "TransferInitiated") {
    yield* sql`INSERT INTO ${t("transfers")} (transfer_id, from_account, to_account, amount, currency, reference, status,
        initiated_by, version, initiated_at, updated_at)
      VALUES (${transferId}, ${data.from}, ${data.to}, ${data.amount}, ${data.currency}, ${data.reference},
        ${Transfer.statusAfter(data)}, ${data.initiatedBy}, ${event.version}, ${when}, ${when})`
    return
  }
  const approvedBy = data._tag === "TransferApproved" ? data.by : null
  const failure = field(data, "reason")
  yield* sql`UPDATE ${t("transfers")} SET status = ${Transfer.statusAfter(data)}, version = ${event.version}, updated_at = ${when},
      approved_by = coalesce(${approvedBy}, approved_by), failure = coalesce(${failure}, failure)
    WHERE transfer_id = ${transferId}`
})

/**
 * Transfers and their status (`${t("transfers")}`).
 */
export const TransfersProjection = Projection.make({
  name: "bank-transfers",
  events: EventCodec.make(Transfer.TransferEvent),
  categories: ["Transfer"],
  handle: onTransfer,
  reset: truncate(["transfers"])
})
