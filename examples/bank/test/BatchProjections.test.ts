import { assert, layer } from "@effect/vitest"
import { type Event, Position, Projection, StreamId } from "@facta/core"
import { DateTime, Effect, Layer, References, Schema } from "effect"
import { SqlClient } from "effect/sql"
import * as Database from "../../../test/support/database.ts"
import type {} from "../../../test/support/globalSetup.ts"
import type * as Account from "../src/domain/Account.ts"
import * as Infra from "../src/infra/Database.ts"
import * as Projections from "../src/readmodels/Projections.ts"
import * as Tables from "../src/readmodels/Tables.ts"
import * as Seed from "../src/seed/Seed.ts"

// The batch projections (`PgBatch`) must build exactly the tables the per-event ones build: from a seeded log, and
// from random event sequences where several events of one batch touch the same account.

const storeSchema = Database.uniqueSchema("bankbatchstore")
const perEventSchema = Database.uniqueSchema("bankbatchone")
const batchSchema = Database.uniqueSchema("bankbatchmany")

const Live = Layer.mergeAll(
  Infra.layerStores({ storeSchema, bankSchema: perEventSchema }),
  Database.dropSchemaOnRelease(storeSchema),
  Database.dropSchemaOnRelease(perEventSchema),
  Database.dropSchemaOnRelease(batchSchema),
  Layer.succeed(References.MinimumLogLevel, "Warn")
).pipe(Layer.provideMerge(Database.client()))

const inSchema =
  (bank: string) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    Effect.provideService(effect, Tables.Schema, bank)

const tablesOf = (bank: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const t = (table: string) => sql(`${bank}.${table}`)
    return {
      accounts: yield* sql`SELECT * FROM ${t("accounts")} ORDER BY account_id`,
      entries: yield* sql`SELECT * FROM ${t("account_entries")} ORDER BY account_id, version`,
      transfers: yield* sql`SELECT * FROM ${t("transfers")} ORDER BY transfer_id`
    }
  })

const sameTables = Effect.gen(function* () {
  const one = yield* tablesOf(perEventSchema)
  const many = yield* tablesOf(batchSchema)
  assert.deepStrictEqual(many.accounts, one.accounts)
  assert.deepStrictEqual(many.entries, one.entries)
  assert.deepStrictEqual(many.transfers, one.transfers)
  return one
})

const at = DateTime.makeUnsafe("2026-01-01T00:00:00Z")

/** A random sequence of account events over three accounts (a fourth is never opened), cut into batches. */
const eventsOf = (ops: ReadonlyArray<readonly [number, number, number]>) => {
  const versions = new Map<string, number>()
  const events: Array<Event.RecordedEvent<Account.AccountEvent>> = []
  const append = (account: string, data: Account.AccountEvent, metadata: Event.EventMetadata) => {
    const version = (versions.get(account) ?? 0) + 1
    versions.set(account, version)
    const sequence = BigInt(events.length + 1)
    events.push({
      eventId: `00000000-0000-7000-8000-${sequence.toString().padStart(12, "0")}` as never,
      streamId: StreamId.makeUnsafe(`Account-${account}`),
      version,
      position: Position.make(1, sequence, sequence),
      type: data._tag,
      schemaVersion: 1,
      data,
      metadata,
      recordedAt: DateTime.add(at, { seconds: events.length })
    } as Event.RecordedEvent<Account.AccountEvent>)
  }
  for (const account of ["a", "b", "c"]) {
    append(
      account,
      { _tag: "AccountOpened", owner: `owner-${account}`, currency: "USD", initialDeposit: 100 } as never,
      {}
    )
  }
  for (const [who, kind, size] of ops) {
    const account = ["a", "b", "c", "ghost"][Math.abs(who) % 4]!
    const amount = (Math.abs(size) % 1_000) + 1
    const data = [
      { _tag: "MoneyDeposited", amount, reference: "in" },
      { _tag: "MoneyWithdrawn", amount, reference: "out" },
      { _tag: "FeeCharged", amount, reason: "fee" },
      { _tag: "AccountDebitedForTransfer", transferId: `t${amount}`, amount, reference: "rent" },
      { _tag: "AccountCreditedForTransfer", transferId: `t${amount}`, amount, reference: "rent" },
      { _tag: "TransferDebitSettled", transferId: `t${amount}` },
      { _tag: "AccountFrozen", reason: "check" },
      { _tag: "AccountUnfrozen", reason: "ok" },
      // four eyes: a request moves no money, its approval is followed by the withdrawal that does
      {
        _tag: "OutflowRequested",
        requestId: `r${amount}`,
        kind: "Withdrawal",
        amount,
        text: "big",
        requestedBy: "alice",
        approvalThreshold: 1
      },
      { _tag: "OutflowApproved", requestId: `r${amount}`, by: "carol" },
      { _tag: "MoneyWithdrawn", amount, reference: "big", requestId: `r${amount}` },
      { _tag: "OutflowRejected", requestId: `r${amount}`, by: "carol", reason: "no" }
    ][Math.abs(kind) % 12]!
    append(account, data as Account.AccountEvent, kind % 3 === 0 ? { actor: "teller", correlationId: "c" } : {})
  }
  return events
}

const batchesOf = <A>(items: ReadonlyArray<A>, cuts: ReadonlyArray<number>): Array<ReadonlyArray<A>> => {
  const batches: Array<ReadonlyArray<A>> = []
  let start = 0
  for (const cut of cuts) {
    const size = (Math.abs(cut) % 6) + 1
    if (start >= items.length) break
    batches.push(items.slice(start, start + size))
    start += size
  }
  if (start < items.length) batches.push(items.slice(start))
  return batches
}

layer(Live, { excludeTestServices: true, timeout: 120_000 })("bank batch projections on PostgreSQL", (it) => {
  it.effect("a batch rebuild of a seeded log gives the per-event rebuild's tables, row by row", () =>
    Effect.gen(function* () {
      yield* Tables.migrate.pipe(inSchema(batchSchema))
      yield* Seed.run({ transfers: 150, progress: false })
      yield* Projection.rebuild(Projections.AccountsPerEventProjection).pipe(inSchema(perEventSchema))
      yield* Projection.rebuild(Projections.TransfersPerEventProjection).pipe(inSchema(perEventSchema))
      // small pages: batches cut through the seed's accounts and transfers
      for (const batchSize of [7, 500]) {
        yield* Projection.rebuild(Projections.AccountsProjection, { batchSize }).pipe(inSchema(batchSchema))
        yield* Projection.rebuild(Projections.TransfersProjection, { batchSize }).pipe(inSchema(batchSchema))
        const tables = yield* sameTables
        assert.isAbove(tables.entries.length, 300)
        assert.isAbove(tables.transfers.length, 100)
        assert.isAbove(new Set(tables.transfers.map((row) => row.status)).size, 2)
      }
    })
  )

  it.effect.prop(
    "batch and per-event handlers agree on random sequences with several events per account per batch",
    { ops: Schema.Array(Schema.Tuple([Schema.Int, Schema.Int, Schema.Int])), cuts: Schema.Array(Schema.Int) },
    ({ ops, cuts }) =>
      Effect.gen(function* () {
        yield* Tables.migrate.pipe(inSchema(batchSchema))
        const sql = yield* SqlClient.SqlClient
        const events = eventsOf(ops)
        yield* sql.withTransaction(
          Effect.gen(function* () {
            yield* Tables.truncate(["accounts", "account_entries"]).pipe(inSchema(perEventSchema))
            yield* Tables.truncate(["accounts", "account_entries"]).pipe(inSchema(batchSchema))
            yield* Projections.AccountsPerEventProjection.handle(events).pipe(inSchema(perEventSchema))
            for (const batch of batchesOf(events, cuts)) {
              yield* Projections.AccountsProjection.handle(batch).pipe(inSchema(batchSchema))
            }
          })
        )
        yield* sameTables
      }),
    { arbitrary: { runs: 40, size: 30 } }
  )
})
