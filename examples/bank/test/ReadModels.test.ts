import { assert, layer } from "@effect/vitest"
import { Projection } from "@facta/core"
import { PgCheckpointStore, PgSnapshotStore } from "@facta/postgres"
import { Effect, Layer, Option, References } from "effect"
import { SqlClient } from "effect/sql"
import * as Database from "../../../test/support/database.ts"
import type {} from "../../../test/support/globalSetup.ts"
import * as Aggregates from "../src/app/Aggregates.ts"
import * as TransferExpiry from "../src/app/TransferExpiry.ts"
import { Account, Money, Transfer, TransferProcess } from "../src/index.ts"
import * as ReadModels from "../src/readmodels/ReadModels.ts"
import * as Tables from "../src/readmodels/Tables.ts"

const store = Database.uniqueSchema("bankstore")
const bank = Database.uniqueSchema("bankrm")
const USD = Money.Currency.make("USD")
const cents = Money.Amount.make

const bankSchema = Layer.succeed(Tables.Schema, bank)
const Live = Layer.mergeAll(
  ReadModels.layer.pipe(Layer.provide(bankSchema)),
  Aggregates.layer,
  Database.dropSchemaOnRelease(bank),
  bankSchema,
  Layer.succeed(References.MinimumLogLevel, "Warn")
).pipe(
  Layer.provideMerge(
    Layer.mergeAll(PgCheckpointStore.layer({ schema: store }), PgSnapshotStore.layer({ schema: store }))
  ),
  Layer.provideMerge(Database.eventStoreIn(store))
)

const once = <E extends { readonly _tag: string }, R>(projection: Projection.Projection<E, R>) =>
  Projection.run(projection, { untilCaughtUp: true, batchWindow: "1 millis" })
const { accounts: Accounts, transfers: Transfers } = ReadModels.projections
// twice: the process reacts to transfer events, and its own commands make more
const catchUp = Effect.all([
  once(TransferProcess.TransferProcess),
  once(TransferProcess.TransferProcess),
  once(Accounts),
  once(Transfers)
])

/** Every money command as the teller books it (money enters an account only through a teller or an admin). */
const money = (accountId: string, command: Account.AccountCommand) =>
  Aggregates.Accounts.use((accounts) =>
    accounts.handle(accountId, command, { metadata: { actor: "teller", correlationId: "c-1" } })
  )

layer(Live, { excludeTestServices: true })("bank read models on PostgreSQL", (it) => {
  it.effect("balances, history, explain, transfers: exactly once, and a rebuild gives the same", () =>
    Effect.gen(function* () {
      const models = yield* ReadModels.ReadModels
      yield* money(
        "a1",
        Account.Open.make({
          owner: "alice",
          currency: USD,
          initialDeposit: cents(10_000),
          depositLimit: cents(5_000_000)
        })
      )
      yield* money("b1", Account.Open.make({ owner: "bob", currency: USD }))
      yield* money(
        "a1",
        Account.Deposit.make({
          amount: cents(5_000),
          currency: USD,
          reference: "salary",
          depositLimit: cents(5_000_000)
        })
      )
      yield* money(
        "a1",
        Account.Withdraw.make({
          amount: cents(2_000),
          currency: USD,
          reference: "atm",
          requestId: "w1",
          requestedBy: "alice",
          approvalThreshold: cents(100_000)
        })
      )
      const transfers = yield* Aggregates.Transfers
      yield* transfers.handle(
        "t1",
        Transfer.Initiate.make({
          from: "a1",
          to: "b1",
          amount: cents(3_000),
          currency: USD,
          reference: "rent",
          initiatedBy: "alice",
          approvalThreshold: cents(100_000)
        }),
        { metadata: { actor: "alice" } }
      )
      yield* catchUp

      const a = Option.getOrThrow(yield* models.account("a1"))
      const b = Option.getOrThrow(yield* models.account("b1"))
      assert.deepStrictEqual([a.balance, a.owner, a.status], [10_000, "alice", "Active"])
      assert.strictEqual(b.balance, 3_000)
      assert.deepStrictEqual(
        (yield* models.accounts("bob")).map((x) => x.accountId),
        ["b1"]
      )

      const explained = Option.getOrThrow(yield* models.explain("a1"))
      assert.isTrue(explained.consistent)
      assert.deepStrictEqual(
        explained.entries.map((e) => [e.type, e.amount, e.balanceAfter]),
        [
          ["AccountOpened", 10_000, 10_000],
          ["MoneyDeposited", 5_000, 15_000],
          ["MoneyWithdrawn", -2_000, 13_000],
          ["AccountDebitedForTransfer", -3_000, 10_000]
        ]
      )
      const debit = explained.entries[3]!
      assert.deepStrictEqual([debit.transferId, debit.actor, debit.correlationId], ["t1", "transfer-process", "t1"])
      assert.strictEqual(explained.entries[1]!.actor, "teller")

      const first = yield* models.history("a1", { limit: 3 })
      assert.deepStrictEqual(
        first.entries.map((e) => e.version),
        [1, 2, 3]
      )
      const rest = yield* models.history("a1", { after: first.nextAfter ?? 0, limit: 3 })
      assert.strictEqual(rest.entries.length, 1)
      assert.isNull(rest.nextAfter)

      const completed = yield* models.transfers({ status: "Completed" })
      assert.deepStrictEqual(
        completed.map((t) => [t.transferId, t.amount, t.from, t.to]),
        [["t1", 3_000, "a1", "b1"]]
      )
      assert.deepStrictEqual(
        (yield* models.transfers({ account: "b1" })).map((t) => t.transferId),
        ["t1"]
      )

      yield* catchUp
      assert.strictEqual(
        Option.getOrThrow(yield* models.account("a1")).balance,
        10_000,
        "running again changes nothing"
      )

      const before = yield* models.explain("a1")
      yield* Projection.rebuild(Accounts, { batchWindow: "1 millis" })
      assert.deepStrictEqual(yield* models.explain("a1"), before, "a rebuild gives the same read model")
      const sql = yield* SqlClient.SqlClient
      const [count] = yield* sql<{ n: bigint }>`SELECT count(*) AS n FROM ${sql(bank)}.account_entries`
      assert.strictEqual(Number(count?.n), 5, "every money movement exactly once (an empty opening moves none)")
    })
  )

  it.effect("the expiry sweep expires only transfers that waited too long for approval, and moves no money", () =>
    Effect.gen(function* () {
      const models = yield* ReadModels.ReadModels
      yield* money(
        "c1",
        Account.Open.make({
          owner: "carl",
          currency: USD,
          initialDeposit: cents(500_000),
          depositLimit: cents(5_000_000)
        })
      )
      yield* money("d1", Account.Open.make({ owner: "dana", currency: USD }))
      const transfers = yield* Aggregates.Transfers
      const initiate = (id: string) =>
        transfers.handle(
          id,
          Transfer.Initiate.make({
            from: "c1",
            to: "d1",
            amount: cents(200_000),
            currency: USD,
            reference: id,
            initiatedBy: "carl",
            approvalThreshold: cents(100_000)
          })
        )
      yield* initiate("big-1")
      yield* initiate("big-2")
      yield* transfers.handle("big-2", Transfer.Approve.make({ by: "carol" }))
      yield* catchUp
      assert.deepStrictEqual(yield* TransferExpiry.sweep("1 hour"), [], "nothing has waited an hour")
      assert.deepStrictEqual(yield* TransferExpiry.sweep("0 millis"), ["big-1"])
      yield* catchUp
      const expired = Option.getOrThrow(yield* models.transfer("big-1"))
      assert.strictEqual(expired.status, "Expired")
      assert.strictEqual(Option.getOrThrow(yield* models.transfer("big-2")).status, "Completed")
      assert.strictEqual(Option.getOrThrow(yield* models.account("c1")).balance, 300_000, "only the approved one moved")
      assert.deepStrictEqual(yield* TransferExpiry.sweep("0 millis"), [], "an expired transfer is not expired again")
    })
  )
})
