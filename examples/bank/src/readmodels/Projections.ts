/**
 * The projections that keep the bank's read models. Their SQL runs in the transaction that moves their checkpoint
 * (`PgCheckpointStore`), so every event counts exactly once. They stop on an event they cannot handle rather than
 * park it: a balance that silently missed a movement would be worse than a stale one.
 *
 * `AccountsProjection` and `TransfersProjection` handle a batch at a time with set-based SQL (`PgBatch`): they read
 * the rows the batch touches, fold the batch's events per row in memory, and write each table in one statement. The
 * `*PerEvent` projections build the same tables one event at a time (one or two statements an event); they are the
 * reference the batch ones are tested against.
 */
import { type Event, EventCodec, Position, Projection, StreamId } from "@facta/core"
import { PgBatch } from "@facta/postgres"
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
 * Balances and money movements of every account, one event at a time (the reference for {@link AccountsProjection}).
 */
export const AccountsPerEventProjection = Projection.make({
  name: "bank-accounts-per-event",
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
 * Transfers and their status, one event at a time (the reference for {@link TransfersProjection}).
 */
export const TransfersPerEventProjection = Projection.make({
  name: "bank-transfers-per-event",
  events: EventCodec.make(Transfer.TransferEvent),
  categories: ["Transfer"],
  handle: onTransfer,
  reset: truncate(["transfers"])
})

interface AccountRow {
  readonly account_id: string
  readonly owner: string
  readonly currency: string
  readonly balance: bigint
  readonly status: string
  readonly version: number
  readonly opened_at: Date
  readonly updated_at: Date
}

interface EntryRow {
  readonly account_id: string
  readonly version: number
  readonly position: string
  readonly type: string
  readonly amount: number
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
  readonly amount: number | bigint
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

const batchTables = Effect.map(Effect.service(Schema), (bank) => ({
  accounts: PgBatch.table<AccountRow>(`${bank}.accounts`, {
    account_id: "text",
    owner: "text",
    currency: "text",
    balance: "bigint",
    status: "text",
    version: "integer",
    opened_at: "timestamptz",
    updated_at: "timestamptz"
  }),
  entries: PgBatch.table<EntryRow>(`${bank}.account_entries`, {
    account_id: "text",
    version: "integer",
    position: "text",
    type: "text",
    amount: "bigint",
    balance_after: "bigint",
    transfer_id: "text",
    actor: "text",
    reason: "text",
    reference: "text",
    correlation_id: "text",
    recorded_at: "timestamptz"
  }),
  transfers: PgBatch.table<TransferRow>(`${bank}.transfers`, {
    transfer_id: "text",
    from_account: "text",
    to_account: "text",
    amount: "bigint",
    currency: "text",
    reference: "text",
    status: "text",
    initiated_by: "text",
    approved_by: "text",
    failure: "text",
    version: "integer",
    initiated_at: "timestamptz",
    updated_at: "timestamptz"
  })
}))

const opened = (
  events: ReadonlyArray<Event.RecordedEvent<{ readonly _tag: string }>>,
  before: ReadonlyMap<string, unknown>,
  first: string
) => {
  const seen = new Set(before.keys())
  for (const event of events) {
    if (event.data._tag !== first) continue
    const id = StreamId.entityId(event.streamId)
    if (seen.has(id)) return Effect.fail(new Error(`${first} for ${id}, which already exists`))
    seen.add(id)
  }
  return Effect.void
}

const stepAccount = (row: AccountRow | undefined, event: Event.RecordedEvent<Account.AccountEvent>) => {
  const data = event.data
  const when = at(event)
  switch (data._tag) {
    case "AccountOpened":
      return {
        account_id: StreamId.entityId(event.streamId),
        owner: data.owner,
        currency: data.currency,
        balance: BigInt(data.initialDeposit),
        status: "Active",
        version: event.version,
        opened_at: when,
        updated_at: when
      }
    case "AccountFrozen":
    case "AccountUnfrozen":
    case "AccountClosed": {
      const status = data._tag === "AccountFrozen" ? "Frozen" : data._tag === "AccountClosed" ? "Closed" : "Active"
      return row && { ...row, status, version: event.version, updated_at: when }
    }
    default:
      return (
        row && {
          ...row,
          balance: BigInt(row.balance) + BigInt(Account.signedAmount(data)),
          version: event.version,
          updated_at: when
        }
      )
  }
}

/**
 * Balances and money movements of every account (`accounts`, `account_entries`), a batch at a time: the accounts the
 * batch touches are read in one statement, each account's events fold in order from its balance before the batch
 * (`PgBatch.foldByKey`), and the batch makes one upsert of the accounts and one insert of the entries, each entry
 * with its running balance.
 */
export const AccountsProjection = Projection.make({
  name: "bank-accounts",
  events: EventCodec.make(Account.AccountEvent),
  categories: ["Account"],
  handleBatch: Effect.fnUntraced(function* (events) {
    const { accounts, entries } = yield* batchTables
    const key = (event: Event.RecordedEvent<Account.AccountEvent>) => StreamId.entityId(event.streamId)
    const before = yield* PgBatch.load(accounts, "account_id", events.map(key))
    yield* opened(events, before, "AccountOpened")
    const folded = PgBatch.foldByKey(events, { key, initial: (id) => before.get(id), step: stepAccount })
    const rows: Array<EntryRow> = []
    events.forEach((event, i) => {
      const data = event.data
      const amount = Account.signedAmount(data)
      const after = folded.steps[i]
      if (amount === 0 || after === undefined) return
      rows.push({
        account_id: key(event),
        version: event.version,
        position: Position.format(event.position),
        type: data._tag,
        amount,
        balance_after: after.balance,
        transfer_id: field(data, "transferId"),
        actor: event.metadata.actor ?? null,
        reason: field(data, "reason"),
        reference: field(data, "reference"),
        correlation_id: event.metadata.correlationId ?? null,
        recorded_at: at(event)
      })
    })
    const changed = Array.from(folded.final.values()).filter((row) => row !== undefined)
    yield* PgBatch.upsert(accounts, changed, { onConflict: { key: ["account_id"] } })
    yield* PgBatch.upsert(entries, rows)
  }),
  reset: truncate(["accounts", "account_entries"])
})

const stepTransfer = (
  row: TransferRow | undefined,
  event: Event.RecordedEvent<Transfer.TransferEvent>
): TransferRow | undefined => {
  const data = event.data
  const when = at(event)
  if (data._tag === "TransferInitiated") {
    return {
      transfer_id: StreamId.entityId(event.streamId),
      from_account: data.from,
      to_account: data.to,
      amount: data.amount,
      currency: data.currency,
      reference: data.reference,
      status: Transfer.statusAfter(data),
      initiated_by: data.initiatedBy,
      approved_by: null,
      failure: null,
      version: event.version,
      initiated_at: when,
      updated_at: when
    }
  }
  if (row === undefined) return undefined
  return {
    ...row,
    status: Transfer.statusAfter(data),
    version: event.version,
    updated_at: when,
    approved_by: (data._tag === "TransferApproved" ? data.by : null) ?? row.approved_by,
    failure: field(data, "reason") ?? row.failure
  }
}

/**
 * Transfers and their status (`transfers`), a batch at a time: one read of the transfers the batch touches, a fold
 * per transfer, one upsert.
 */
export const TransfersProjection = Projection.make({
  name: "bank-transfers",
  events: EventCodec.make(Transfer.TransferEvent),
  categories: ["Transfer"],
  handleBatch: Effect.fnUntraced(function* (events) {
    const { transfers } = yield* batchTables
    const key = (event: Event.RecordedEvent<Transfer.TransferEvent>) => StreamId.entityId(event.streamId)
    const before = yield* PgBatch.load(transfers, "transfer_id", events.map(key))
    yield* opened(events, before, "TransferInitiated")
    const folded = PgBatch.foldByKey(events, { key, initial: (id) => before.get(id), step: stepTransfer })
    const changed = Array.from(folded.final.values()).filter((row) => row !== undefined)
    yield* PgBatch.upsert(transfers, changed, { onConflict: { key: ["transfer_id"] } })
  }),
  reset: truncate(["transfers"])
})
