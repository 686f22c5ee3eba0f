import { assert, describe, it } from "@effect/vitest"
import { Aggregate, CheckpointStore, Event, EventStore, Projection, Snapshot } from "@facta/core"
import { Effect, Layer, References, Stream } from "effect"
import * as Database from "../../../test/support/database.ts"
import type {} from "../../../test/support/globalSetup.ts"
import * as Aggregates from "../src/app/Aggregates.ts"
import { Accounts, Transfers } from "../src/app/Aggregates.ts"
import { Account, Money, Transfer, TransferProcess } from "../src/index.ts"

const USD = Money.Currency.make("USD")
const EUR = Money.Currency.make("EUR")
const amount = Money.Amount.make

/** A fresh in-memory world per test, logging warnings and worse only (the projection runner logs its progress). */
const memory = () =>
  Layer.mergeAll(
    Layer.fresh(
      Aggregates.layer.pipe(
        Layer.provideMerge(Layer.mergeAll(EventStore.layerMemory, Snapshot.layerMemory, CheckpointStore.layerMemory))
      )
    ),
    Layer.succeed(References.MinimumLogLevel, "Warn")
  )

/** The same on PostgreSQL, in a schema of its own per test. */
const postgres = () =>
  Layer.mergeAll(
    Aggregates.layer.pipe(Layer.provideMerge(Database.projectionStoresIn(Database.uniqueSchema("bankprocess")))),
    Layer.succeed(References.MinimumLogLevel, "Warn")
  )

const onAccount = (id: string, command: Account.AccountCommand) =>
  Accounts.use((accounts) => accounts.handle(id, command))

/** A teller's command (tina): the opening deposits and deposits, since money enters an account only through one. */
const byTeller = (id: string, command: Account.AccountCommand) =>
  Accounts.use((accounts) =>
    accounts.handle(id, command, { metadata: { actor: "tina", correlationId: `teller-${id}` } })
  )

/** The teller's limit per deposit ($50,000.00), as the API gives a teller. */
const tellerLimit = amount(5_000_000)

const openAccount = (id: string, owner: string, initialDeposit: number, currency = USD) =>
  byTeller(
    id,
    Account.Open.make({ owner, currency, initialDeposit: amount(initialDeposit), depositLimit: tellerLimit })
  )

const initiate = (transferId: string, from: string, to: string, cents: number, approvalThreshold = 100_000) =>
  Transfers.use((transfers) =>
    transfers.handle(
      transferId,
      Transfer.Initiate.make({
        from,
        to,
        amount: amount(cents),
        currency: USD,
        reference: `invoice ${transferId}`,
        initiatedBy: "alice",
        approvalThreshold: amount(approvalThreshold)
      }),
      { metadata: { actor: "alice" } }
    )
  )

const approve = (transferId: string, by = "carol") =>
  Transfers.use((transfers) => transfers.handle(transferId, Transfer.Approve.make({ by }), { metadata: { actor: by } }))

const runProcess = Projection.run(TransferProcess.TransferProcess, { untilCaughtUp: true, batchWindow: "1 millis" })

const transferOf = (transferId: string) =>
  Effect.map(
    Transfers.use((transfers) => transfers.load(transferId)),
    ({ state }) => {
      assert.strictEqual(state._tag, "Transfer")
      return state as Transfer.TransferInfo
    }
  )

/** Runs the process, caught up each time, until the transfer is finished (each step causes the next event). */
const processUntilFinished = Effect.fnUntraced(function* (transferId: string) {
  for (let round = 1; round <= 10; round++) {
    yield* runProcess
    const transfer = yield* transferOf(transferId)
    if (Transfer.isFinished(transfer) && transfer.status !== "Completed") return transfer
    // a completed transfer still has its debit settled by one more round
    if (transfer.status === "Completed") {
      yield* runProcess
      return transfer
    }
  }
  return assert.fail(`transfer ${transferId} did not finish`)
})

const accountOf = (id: string) =>
  Effect.map(
    Accounts.use((accounts) => accounts.load(id)),
    ({ state }) => {
      assert.strictEqual(state._tag, "Opened")
      return state as Account.Opened
    }
  )

const accountEvents = (id: string) => Accounts.use((accounts) => Stream.runCollect(accounts.events(id)))
const transferEvents = (id: string) => Transfers.use((transfers) => Stream.runCollect(transfers.events(id)))

const accountTags = (id: string) => Effect.map(accountEvents(id), (events) => events.map((event) => event.type))
const transferTags = (id: string) => Effect.map(transferEvents(id), (events) => events.map((event) => event.type))

const head = EventStore.EventStore.use((store) => store.head)

describe("TransferProcess", () => {
  it.live("moves the money of an approved transfer, settles the debit, and records who caused what", () =>
    Effect.gen(function* () {
      yield* openAccount("alice", "Alice", 100_000)
      yield* openAccount("bob", "Bob", 0)
      yield* initiate("t1", "alice", "bob", 25_000, 10_000)

      // above the threshold: nothing moves before the approval
      yield* runProcess
      assert.strictEqual((yield* transferOf("t1")).status, "AwaitingApproval")
      assert.strictEqual((yield* accountOf("alice")).balance, 100_000)

      const approval = yield* approve("t1")
      const transfer = yield* processUntilFinished("t1")
      assert.strictEqual(transfer.status, "Completed")
      assert.strictEqual((yield* accountOf("alice")).balance, 75_000)
      assert.strictEqual((yield* accountOf("bob")).balance, 25_000)
      assert.deepStrictEqual((yield* accountOf("alice")).transfers, { t1: { step: "Settled", amount: amount(25_000) } })
      assert.deepStrictEqual((yield* accountOf("bob")).transfers, { t1: { step: "Credited", amount: amount(25_000) } })
      assert.deepStrictEqual(yield* transferTags("t1"), [
        "TransferInitiated",
        "TransferApproved",
        "TransferDebited",
        "TransferCompleted"
      ])

      // metadata: the process is the actor, the transfer the correlation, the approval the cause of the debit
      const aliceEvents = yield* accountEvents("alice")
      const debit = aliceEvents.find((event) => event.type === "AccountDebitedForTransfer")!
      assert.strictEqual(debit.metadata.actor, "transfer-process")
      assert.strictEqual(debit.metadata.correlationId, "t1")
      const approvedEvent = (yield* transferEvents("t1"))[1]!
      assert.strictEqual(approvedEvent.version, approval.version)
      assert.strictEqual(debit.metadata.causationId, approvedEvent.eventId)

      // the settled debit no longer keeps the account from closing
      yield* onAccount(
        "alice",
        Account.Withdraw.make({
          amount: amount(75_000),
          currency: USD,
          reference: "moving out",
          requestId: "w1",
          requestedBy: "alice",
          approvalThreshold: amount(100_000)
        })
      )
      yield* onAccount("alice", Account.Close.make({ reason: "moved" }))
    }).pipe(Effect.provide(memory()))
  )

  it.live("a transfer within the threshold needs no approval", () =>
    Effect.gen(function* () {
      yield* openAccount("alice", "Alice", 10_000)
      yield* openAccount("bob", "Bob", 500)
      yield* initiate("t2", "alice", "bob", 1_000)
      assert.strictEqual((yield* processUntilFinished("t2")).status, "Completed")
      assert.strictEqual((yield* accountOf("alice")).balance, 9_000)
      assert.strictEqual((yield* accountOf("bob")).balance, 1_500)
    }).pipe(Effect.provide(memory()))
  )

  it.live("a transfer from an account with too little money fails with nothing taken", () =>
    Effect.gen(function* () {
      yield* openAccount("alice", "Alice", 100)
      yield* openAccount("bob", "Bob", 0)
      yield* initiate("t3", "alice", "bob", 500)
      const transfer = yield* processUntilFinished("t3")
      assert.strictEqual(transfer.status, "Failed")
      assert.isFalse(transfer.debited)
      assert.strictEqual(transfer.failure, "Insufficient funds: the balance is 1.00 USD, 5.00 USD was requested")
      assert.strictEqual((yield* accountOf("alice")).balance, 100)
      assert.strictEqual((yield* accountOf("bob")).balance, 0)
      assert.deepStrictEqual(yield* accountTags("alice"), ["AccountOpened"])
      assert.deepStrictEqual(yield* transferTags("t3"), ["TransferInitiated", "TransferDebitFailed"])
    }).pipe(Effect.provide(memory()))
  )

  it.live("a debit refused by a frozen, unknown or foreign-currency source fails the transfer", () =>
    Effect.gen(function* () {
      yield* openAccount("alice", "Alice", 10_000)
      yield* openAccount("euro", "Eve", 10_000, EUR)
      yield* openAccount("bob", "Bob", 0)
      yield* onAccount("alice", Account.Freeze.make({ reason: "kyc" }))
      yield* initiate("f1", "alice", "bob", 100)
      yield* initiate("f2", "nobody", "bob", 100)
      yield* initiate("f3", "euro", "bob", 100)
      for (const id of ["f1", "f2", "f3"]) yield* processUntilFinished(id)
      const failures = yield* Effect.forEach(["f1", "f2", "f3"], (id) =>
        Effect.map(transferOf(id), (t) => [t.status, t.debited, t.failure])
      )
      assert.deepStrictEqual(failures, [
        ["Failed", false, "Cannot DebitForTransfer: the account is frozen"],
        ["Failed", false, "Cannot DebitForTransfer: the account has not been opened"],
        ["Failed", false, "The account holds EUR, not USD"]
      ])
      assert.strictEqual((yield* accountOf("bob")).balance, 0)
    }).pipe(Effect.provide(memory()))
  )

  it.live("a credit to a closed account is compensated: the debit is reversed", () =>
    Effect.gen(function* () {
      yield* openAccount("alice", "Alice", 10_000)
      yield* openAccount("bob", "Bob", 0)
      yield* onAccount("bob", Account.Close.make({ reason: "left" }))
      yield* initiate("t4", "alice", "bob", 3_000)
      const transfer = yield* processUntilFinished("t4")
      assert.strictEqual(transfer.status, "Failed")
      assert.isTrue(transfer.debited)
      assert.strictEqual(transfer.failure, "Cannot CreditForTransfer: the account is closed")
      assert.strictEqual((yield* accountOf("alice")).balance, 10_000)
      assert.deepStrictEqual((yield* accountOf("alice")).transfers, { t4: { step: "Reversed", amount: amount(3_000) } })
      assert.deepStrictEqual(yield* accountTags("alice"), [
        "AccountOpened",
        "AccountDebitedForTransfer",
        "TransferDebitReversed"
      ])
      assert.deepStrictEqual(yield* transferTags("t4"), [
        "TransferInitiated",
        "TransferDebited",
        "TransferCreditFailed",
        "TransferCompensated"
      ])
    }).pipe(Effect.provide(memory()))
  )

  it.live("running the process again over the same events changes nothing", () =>
    Effect.gen(function* () {
      yield* openAccount("alice", "Alice", 10_000)
      yield* openAccount("bob", "Bob", 0)
      yield* openAccount("carl", "Carl", 0)
      yield* onAccount("carl", Account.Close.make({ reason: "left" }))
      yield* initiate("ok", "alice", "bob", 1_000)
      yield* initiate("poor", "bob", "alice", 1_000_000, 10_000_000)
      yield* initiate("comp", "alice", "carl", 2_000)
      for (const id of ["ok", "poor", "comp"]) yield* processUntilFinished(id)
      const before = yield* head
      const balances = yield* Effect.forEach(["alice", "bob"], (id) => Effect.map(accountOf(id), (a) => a.balance))
      assert.deepStrictEqual(balances, [9_000, 1_000])

      // a replay from the start of the log (what a lost checkpoint would cause) appends nothing
      yield* Projection.run(TransferProcess.TransferProcess, { untilCaughtUp: true, rebuild: true })
      yield* runProcess
      assert.deepStrictEqual(yield* head, before)
      // and neither does handling every event once more, directly
      const all = yield* Stream.runCollect(
        Stream.unwrap(
          EventStore.EventStore.useSync((store) =>
            store.readAll({ types: TransferProcess.TransferProcess.events.types })
          )
        ).pipe(Stream.mapEffect(TransferProcess.TransferProcess.events.decode))
      )
      assert.isAbove(all.length, 5)
      yield* Effect.forEach(all, TransferProcess.handle, { discard: true })
      assert.deepStrictEqual(yield* head, before)
      assert.deepStrictEqual(
        yield* Effect.forEach(["alice", "bob"], (id) => Effect.map(accountOf(id), (a) => a.balance)),
        balances
      )
    }).pipe(Effect.provide(memory()))
  )

  it.live("a crash between the debit and marking it is repaired without a second debit", () =>
    Effect.gen(function* () {
      yield* openAccount("alice", "Alice", 10_000)
      yield* openAccount("bob", "Bob", 0)
      yield* initiate("t5", "alice", "bob", 4_000)
      // the process debited the source, then crashed before marking the transfer debited and saving its checkpoint
      yield* onAccount(
        "alice",
        Account.DebitForTransfer.make({ transferId: "t5", amount: amount(4_000), currency: USD, reference: "x" })
      )
      assert.strictEqual((yield* processUntilFinished("t5")).status, "Completed")
      assert.strictEqual((yield* accountOf("alice")).balance, 6_000)
      assert.strictEqual((yield* accountOf("bob")).balance, 4_000)
      const debits = (yield* accountTags("alice")).filter((tag) => tag === "AccountDebitedForTransfer")
      assert.strictEqual(debits.length, 1)
    }).pipe(Effect.provide(memory()))
  )

  it.live("a late replay of the approval after a refused debit does not debit after all", () =>
    Effect.gen(function* () {
      yield* openAccount("alice", "Alice", 100)
      yield* openAccount("bob", "Bob", 0)
      yield* initiate("t6", "alice", "bob", 500)
      assert.strictEqual((yield* processUntilFinished("t6")).status, "Failed")
      // the money arrives later; handling the old event again must not revive the failed transfer
      yield* byTeller(
        "alice",
        Account.Deposit.make({
          amount: amount(1_000),
          currency: USD,
          reference: "salary",
          depositLimit: tellerLimit
        })
      )
      const before = yield* head
      yield* Projection.run(TransferProcess.TransferProcess, { untilCaughtUp: true, rebuild: true })
      assert.deepStrictEqual(yield* head, before)
      assert.strictEqual((yield* accountOf("alice")).balance, 1_100)
    }).pipe(Effect.provide(memory()))
  )

  /** A redelivered event (a crash before the checkpoint, two instances racing) appends its commands' events once. */
  const redelivered = Effect.gen(function* () {
    yield* openAccount("alice", "Alice", 10_000)
    yield* openAccount("bob", "Bob", 0)
    yield* initiate("t7", "alice", "bob", 1_000)
    const initiated = yield* TransferProcess.TransferProcess.events.decode((yield* transferEvents("t7"))[0]!)
    assert.strictEqual(initiated.data._tag, "TransferInitiated")

    yield* TransferProcess.handle(initiated)
    const once = yield* head
    assert.deepStrictEqual(yield* transferTags("t7"), ["TransferInitiated", "TransferDebited"])
    // the debit's id is derived from the event that caused it, which is its causation id
    const debit = (yield* accountEvents("alice")).find((event) => event.type === "AccountDebitedForTransfer")!
    const alice = yield* Aggregate.streamId(Account.Account, "alice")
    assert.strictEqual(debit.eventId.toLowerCase(), yield* Event.deriveEventId(initiated.eventId, `${alice}/0`))
    assert.strictEqual(debit.metadata.causationId, initiated.eventId)

    // the same event again, after the first, and twice side by side: nothing more is appended
    yield* TransferProcess.handle(initiated)
    yield* Effect.all([TransferProcess.handle(initiated), TransferProcess.handle(initiated)], {
      concurrency: "unbounded",
      discard: true
    })
    assert.deepStrictEqual(yield* head, once)
    assert.deepStrictEqual(yield* accountTags("alice"), ["AccountOpened", "AccountDebitedForTransfer"])
    assert.deepStrictEqual(yield* transferTags("t7"), ["TransferInitiated", "TransferDebited"])
    assert.strictEqual((yield* accountOf("alice")).balance, 9_000)
  })

  it.live("the same event handled twice appends once (memory)", () => redelivered.pipe(Effect.provide(memory())))

  it.live("the same event handled twice appends once (PostgreSQL)", () => redelivered.pipe(Effect.provide(postgres())))
})
