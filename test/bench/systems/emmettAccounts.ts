/**
 * The bank's account read model (`accounts`, `account_entries`) as an Emmett user would build it: a
 * `postgreSQLProjection` whose handler writes the rows in the handler's transaction, rebuilt with
 * `rebuildPostgreSQLProjections` (truncate on start, then a consumer from the beginning that stops when no messages
 * are left), from Emmett's own store.
 *
 * Emmett 0.42's projector hands its projection one message at a time (and stores its checkpoint after each), in one
 * transaction per pulled page; the handler therefore sends one statement per event: a CTE that updates the account
 * and inserts the movement with the balance the update returned (the bank's per-event handler needs two).
 */

import { PgClient } from "@effect/sql-pg"
import type { Event as EmmettEvent } from "@event-driven-io/emmett"
import {
  type PostgreSQLProjectionHandlerContext,
  postgreSQLProjection,
  rebuildPostgreSQLProjections
} from "@event-driven-io/emmett-postgresql"
import { Account } from "@facta/example-bank"
import * as Projections from "@facta/example-bank/readmodels/Projections"
import * as Tables from "@facta/example-bank/readmodels/Tables"
import { Effect, Redacted } from "effect"
import * as BankLog from "../bankLog.ts"
import { rebuildBatch } from "../config.ts"
import type { Emmett } from "./emmett.ts"

type AccountEventType = Account.AccountEvent["_tag"]
/** An account event as Emmett reads it: the bank's type name, its JSON data. */
type AccountEvent = EmmettEvent<AccountEventType, Record<string, unknown>>

/** Every account event type, as the bank's projections decode them. */
const accountEventTypes: Array<AccountEventType> = [...Projections.AccountsProjection.events.types]

const promise = <A>(f: () => Promise<A>) => Effect.tryPromise({ try: f, catch: (cause) => cause })

const text = (data: Record<string, unknown>, name: string): string | null => {
  const value = data[name]
  return typeof value === "string" ? value : null
}

/** The statement one event needs, as the bank's per-event handler would write it in one round trip. */
const statement = (
  readModel: string,
  event: AccountEvent & { readonly metadata: { readonly streamName: string; readonly streamPosition: bigint } },
  position: string
): [string, Array<unknown>] => {
  const accountId = event.metadata.streamName.slice(event.metadata.streamName.indexOf("-") + 1)
  const version = Number(event.metadata.streamPosition)
  const data = event.data
  // the bank's own rule of what an event moves (its events carry `_tag` where Emmett's carry `type`)
  const amount = Account.signedAmount({ _tag: event.type, ...data } as Account.AccountEvent)
  const metadata = event.metadata as Record<string, unknown>
  const entry = [position, event.type, amount, text(data, "transferId"), text(metadata, "actor")]
  const entryText = [text(data, "reason"), text(data, "reference"), text(metadata, "correlationId")]
  const insertEntry = (from: string) => `
    INSERT INTO ${readModel}.account_entries (account_id, version, position, type, amount, balance_after, transfer_id,
      actor, reason, reference, correlation_id, recorded_at)
    SELECT $1, $2, $3, $4, $5, balance, $6, $7, $8, $9, $10, now() FROM ${from} WHERE $5::bigint <> 0`
  switch (event.type) {
    case "AccountOpened":
      return [
        `WITH opened AS (
           INSERT INTO ${readModel}.accounts (account_id, owner, currency, balance, status, version, opened_at,
             updated_at)
           VALUES ($1, $11, $12, $5, 'Active', $2, now(), now()) RETURNING balance)
         ${insertEntry("opened")}`,
        [accountId, version, ...entry, ...entryText, text(data, "owner"), text(data, "currency")]
      ]
    case "AccountFrozen":
    case "AccountUnfrozen":
    case "AccountClosed": {
      const status = event.type === "AccountFrozen" ? "Frozen" : event.type === "AccountClosed" ? "Closed" : "Active"
      return [
        `UPDATE ${readModel}.accounts SET status = $3, version = $2, updated_at = now() WHERE account_id = $1`,
        [accountId, version, status]
      ]
    }
    default:
      return [
        `WITH moved AS (
           UPDATE ${readModel}.accounts SET balance = balance + $5, version = $2, updated_at = now()
           WHERE account_id = $1 RETURNING balance)
         ${insertEntry("moved")}`,
        [accountId, version, ...entry, ...entryText]
      ]
  }
}

/** The bank's read-model tables in Emmett's database, by the bank's own migrations (the same DDL as Facta's). */
export const createReadModel = (emmett: Emmett, readModel: string) =>
  Tables.migrate.pipe(
    Effect.provideService(Tables.Schema, readModel),
    Effect.provide(PgClient.layer({ url: Redacted.make(emmett.connectionString), maxConnections: 1 }), {
      local: true
    }),
    Effect.asVoid
  )

/**
 * Rebuilds the read model in schema `readModel` of Emmett's database from the whole of Emmett's log, pulling pages of
 * `rebuildBatch` without pauses between full pages (`pullingFrequencyInMs: 0`; the defaults, pages of 100 and 50 ms,
 * would cap it at 2,000 events/s). Returns whether the time budget stopped it.
 */
export const rebuildAccounts = (emmett: Emmett, readModel: string, seconds: number) =>
  Effect.gen(function* () {
    const projection = postgreSQLProjection<AccountEvent>({
      name: "bank-accounts",
      canHandle: accountEventTypes,
      truncate: async (context: PostgreSQLProjectionHandlerContext) => {
        await context.connection.client.query(`TRUNCATE ${readModel}.accounts, ${readModel}.account_entries`)
      },
      handle: async (events, context) => {
        for (const event of events) {
          const [sql, values] = statement(readModel, event, String(event.metadata.globalPosition))
          await context.connection.client.query(sql, values)
        }
      }
    })
    const consumer = rebuildPostgreSQLProjections<AccountEvent>({
      connectionString: emmett.connectionString,
      projection,
      pulling: { batchSize: rebuildBatch, pullingFrequencyInMs: 0 }
    })
    let stopped = false
    const budget = setTimeout(() => {
      stopped = true
      void consumer.stop()
    }, seconds * 1000)
    yield* promise(() => consumer.start()).pipe(Effect.ensuring(Effect.sync(() => clearTimeout(budget))))
    yield* promise(() => consumer.close())
    return stopped
  })

/** A read model's fingerprint (bankLog.ts), without log positions (Emmett's are its own). */
export const fingerprint = (emmett: Emmett, readModel: string) =>
  promise(async () => (await emmett.pool.query<BankLog.Fingerprint>(BankLog.fingerprint(readModel, false))).rows[0]!)
