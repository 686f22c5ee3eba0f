import { isDeepStrictEqual } from "node:util"
import { assert, describe, it } from "@effect/vitest"
import { CommandHandler, Decider, EventStore, Snapshot } from "@facta/core"
import { DeciderSpec, Properties } from "@facta/testing"
import { Arbitrary, Effect, Layer, Option, Schema } from "effect"
import { Account, Money } from "../src/index.ts"

const spec = DeciderSpec.make(Account.decider)

const USD = Money.Currency.make("USD")
const EUR = Money.Currency.make("EUR")
/** Unchecked: invalid amounts must reach `decide`, which has to refuse them too (a caller may skip decoding). */
const amount = (n: number) => n as Money.Amount

// Commands
const open = (initialDeposit?: number): Account.AccountCommand =>
  initialDeposit === undefined
    ? { _tag: "Open", owner: "Alice", currency: USD }
    : { _tag: "Open", owner: "Alice", currency: USD, initialDeposit: amount(initialDeposit) }
/** No limit worth the name: the rules of the limits and of four eyes have their own tests below. */
const unlimited = amount(Number.MAX_SAFE_INTEGER)
const deposit = (n: number, currency = USD, depositLimit = unlimited): Account.AccountCommand => ({
  _tag: "Deposit",
  amount: amount(n),
  currency,
  reference: "cash",
  depositLimit
})
const outflow = (approvalThreshold: Money.Amount, requestId = "r1", requestedBy = "alice") => ({
  requestId,
  requestedBy,
  approvalThreshold
})
const withdraw = (n: number, currency = USD, threshold = unlimited, requestId = "r1"): Account.AccountCommand => ({
  _tag: "Withdraw",
  amount: amount(n),
  currency,
  reference: "atm",
  ...outflow(threshold, requestId)
})
const chargeFee = (
  n: number,
  currency = USD,
  threshold = unlimited,
  requestId = "r1",
  requestedBy = "admin"
): Account.AccountCommand => ({
  _tag: "ChargeFee",
  amount: amount(n),
  currency,
  reason: "monthly fee",
  ...outflow(threshold, requestId, requestedBy)
})
const freeze: Account.AccountCommand = { _tag: "Freeze", reason: "fraud check" }
const unfreeze: Account.AccountCommand = { _tag: "Unfreeze", reason: "cleared" }
const close: Account.AccountCommand = { _tag: "Close", reason: "customer request" }
const debitFor = (transferId: string, n: number, currency = USD): Account.AccountCommand => ({
  _tag: "DebitForTransfer",
  transferId,
  amount: amount(n),
  currency,
  reference: "rent"
})
const creditFor = (transferId: string, n: number, currency = USD): Account.AccountCommand => ({
  _tag: "CreditForTransfer",
  transferId,
  amount: amount(n),
  currency,
  reference: "rent"
})
const reverse = (transferId: string): Account.AccountCommand => ({
  _tag: "ReverseDebit",
  transferId,
  reason: "target closed"
})
const settle = (transferId: string): Account.AccountCommand => ({ _tag: "SettleDebit", transferId })

// Events
const opened = (n = 0) => Account.AccountOpened.make({ owner: "Alice", currency: USD, initialDeposit: amount(n) })
const deposited = (n: number) => Account.MoneyDeposited.make({ amount: amount(n), reference: "cash" })
const withdrawn = (n: number) => Account.MoneyWithdrawn.make({ amount: amount(n), reference: "atm" })
const feeCharged = (n: number) => Account.FeeCharged.make({ amount: amount(n), reason: "monthly fee" })
const frozen = Account.AccountFrozen.make({ reason: "fraud check" })
const unfrozen = Account.AccountUnfrozen.make({ reason: "cleared" })
const closed = Account.AccountClosed.make({ reason: "customer request" })
const debited = (transferId: string, n: number) =>
  Account.AccountDebitedForTransfer.make({ transferId, amount: amount(n), reference: "rent" })
const credited = (transferId: string, n: number) =>
  Account.AccountCreditedForTransfer.make({ transferId, amount: amount(n), reference: "rent" })
const reversed = (transferId: string, n: number) =>
  Account.TransferDebitReversed.make({ transferId, amount: amount(n), reason: "target closed" })
const settled = (transferId: string) => Account.TransferDebitSettled.make({ transferId })

const state = (
  balance: number,
  status: "Active" | "Frozen" | "Closed" = "Active",
  transfers: Record<string, Account.TransferStep> = {}
): Account.AccountState =>
  Account.Opened.make({
    status,
    owner: "Alice",
    currency: USD,
    balance: amount(balance),
    transfers,
    pendingOutflows: {}
  })

describe("Account: Open", () => {
  it.effect("opens in a currency, with an initial deposit or none", () =>
    Effect.gen(function* () {
      yield* spec
        .given()
        .when(open(100))
        .thenEvents([opened(100)])
      yield* spec.given().when(open(100)).thenState(state(100))
      yield* spec
        .given()
        .when(open())
        .thenEvents([opened(0)])
    })
  )

  it.effect.each([-1, 2.5, Number.NaN])("refuses the initial deposit %s", (n) =>
    spec
      .given()
      .when(open(n))
      .thenFails(new Account.InvalidAmount({ amount: n }))
  )

  it.effect("refuses opening twice, and opening a closed account", () =>
    Effect.gen(function* () {
      yield* spec
        .given([opened(10)])
        .when(open(10))
        .thenFails(new Account.AccountAlreadyOpened({ owner: "Alice" }))
      yield* spec
        .given([opened(), closed])
        .when(open(10))
        .thenFails(new Account.AccountIsClosed({ command: "Open" }))
    })
  )

  it.effect("refuses every other command before opening", () =>
    Effect.forEach(
      [deposit(1), withdraw(1), chargeFee(1), freeze, unfreeze, close, debitFor("t", 1), creditFor("t", 1)],
      (command) =>
        spec
          .given()
          .when(command)
          .thenFails(new Account.AccountNotOpened({ command: command._tag })),
      { discard: true }
    )
  )
})

describe("Account: Deposit", () => {
  it.effect("adds to the balance", () =>
    Effect.gen(function* () {
      yield* spec
        .given([opened(10)])
        .when(deposit(5))
        .thenEvents([deposited(5)])
      yield* spec
        .given([opened(10), deposited(5)])
        .when(deposit(7))
        .thenState(state(22))
    })
  )

  it.effect.each([0, -5, 0.5, Number.POSITIVE_INFINITY])("refuses the amount %s", (n) =>
    spec
      .given([opened(10)])
      .when(deposit(n))
      .thenFails(new Account.InvalidAmount({ amount: n }))
  )

  it.effect("refuses another currency", () =>
    spec
      .given([opened(10)])
      .when(deposit(5, EUR))
      .thenFails(new Account.CurrencyMismatch({ account: "USD", requested: "EUR" }))
  )

  it.effect("refuses a deposit past the largest safe integer", () =>
    spec
      .givenState(state(Number.MAX_SAFE_INTEGER - 1))
      .when(deposit(2))
      .thenFails(new Account.BalanceLimitExceeded({ balance: Number.MAX_SAFE_INTEGER - 1, amount: 2 }))
  )

  it.effect("is accepted while frozen: a freeze stops money leaving, not arriving", () =>
    spec
      .given([opened(10), frozen])
      .when(deposit(5))
      .thenState(state(15, "Frozen"))
  )
})

describe("Account: Withdraw and ChargeFee (debits)", () => {
  it.effect("take from the balance, down to exactly 0", () =>
    Effect.gen(function* () {
      yield* spec
        .given([opened(10)])
        .when(withdraw(4))
        .thenEvents([withdrawn(4)])
      yield* spec
        .given([opened(10)])
        .when(chargeFee(3))
        .thenEvents([feeCharged(3)])
      yield* spec
        .given([opened(10), withdrawn(4), feeCharged(3)])
        .when(withdraw(3))
        .thenState(state(0))
    })
  )

  it.effect("refuse an overdraft, naming the balance and the amount requested", () =>
    Effect.gen(function* () {
      yield* spec
        .given([opened(10)])
        .when(withdraw(11))
        .thenFails(new Account.InsufficientFunds({ currency: "USD", balance: 10, requested: 11 }))
      yield* spec
        .given([opened(0)])
        .when(chargeFee(1))
        .thenFails(new Account.InsufficientFunds({ currency: "USD", balance: 0, requested: 1 }))
      const error = new Account.InsufficientFunds({ currency: "USD", balance: 23750, requested: 30000 })
      assert.strictEqual(error.message, "Insufficient funds: the balance is 237.50 USD, 300.00 USD was requested")
    })
  )

  it.effect("refuse invalid amounts and another currency", () =>
    Effect.gen(function* () {
      yield* spec
        .given([opened(10)])
        .when(withdraw(0))
        .thenFails(new Account.InvalidAmount({ amount: 0 }))
      yield* spec
        .given([opened(10)])
        .when(chargeFee(-1))
        .thenFails(new Account.InvalidAmount({ amount: -1 }))
      yield* spec
        .given([opened(10)])
        .when(withdraw(1, EUR))
        .thenFails(new Account.CurrencyMismatch({ account: "USD", requested: "EUR" }))
    })
  )

  it.effect("are refused while frozen", () =>
    Effect.gen(function* () {
      yield* spec
        .given([opened(10), frozen])
        .when(withdraw(1))
        .thenFails(new Account.AccountIsFrozen({ command: "Withdraw" }))
      yield* spec
        .given([opened(10), frozen])
        .when(chargeFee(1))
        .thenFails(new Account.AccountIsFrozen({ command: "ChargeFee" }))
      yield* spec
        .given([opened(10), frozen, unfrozen])
        .when(withdraw(1))
        .thenEvents([withdrawn(1)])
    })
  )
})

describe("Account: Freeze and Unfreeze", () => {
  it.effect("freeze and unfreeze; repeating either changes nothing", () =>
    Effect.gen(function* () {
      yield* spec
        .given([opened(10)])
        .when(freeze)
        .thenEvents([frozen])
      yield* spec
        .given([opened(10)])
        .when(freeze)
        .thenState(state(10, "Frozen"))
      yield* spec
        .given([opened(10), frozen])
        .when(freeze)
        .thenEvents([])
      yield* spec
        .given([opened(10), frozen])
        .when(unfreeze)
        .thenEvents([unfrozen])
      yield* spec
        .given([opened(10)])
        .when(unfreeze)
        .thenEvents([])
    })
  )
})

describe("Account: Close", () => {
  it.effect("closes an empty account, for good", () =>
    Effect.gen(function* () {
      yield* spec.given([opened()]).when(close).thenEvents([closed])
      yield* spec
        .given([opened(5), withdrawn(5)])
        .when(close)
        .thenState(state(0, "Closed"))
      assert.isTrue(Decider.isTerminal(Account.decider, state(0, "Closed")))
      assert.isFalse(Decider.isTerminal(Account.decider, state(0, "Frozen")))
    })
  )

  it.effect("refuses closing with money in the account", () =>
    Effect.gen(function* () {
      yield* spec
        .given([opened(5)])
        .when(close)
        .thenFails(new Account.BalanceNotZero({ currency: "USD", balance: 5 }))
      assert.strictEqual(
        new Account.BalanceNotZero({ currency: "USD", balance: 5 }).message,
        "Cannot close: the balance is 0.05 USD, not zero"
      )
    })
  )

  it.effect("refuses closing a frozen account", () =>
    spec
      .given([opened(), frozen])
      .when(close)
      .thenFails(new Account.AccountIsFrozen({ command: "Close" }))
  )

  it.effect("refuses closing while a transfer debit may still be reversed into it", () =>
    Effect.gen(function* () {
      yield* spec
        .given([opened(5), debited("t1", 5)])
        .when(close)
        .thenFails(new Account.TransfersInFlight({ transferIds: ["t1"] }))
      yield* spec
        .given([opened(5), debited("t1", 5), settled("t1")])
        .when(close)
        .thenEvents([closed])
    })
  )

  it.effect("a closed account refuses everything", () =>
    Effect.forEach(
      [
        open(1),
        deposit(1),
        withdraw(1),
        chargeFee(1),
        freeze,
        unfreeze,
        close,
        debitFor("t", 1),
        creditFor("t", 1),
        reverse("t"),
        settle("t")
      ],
      (command) =>
        spec
          .given([opened(), closed])
          .when(command)
          .thenFails(new Account.AccountIsClosed({ command: command._tag })),
      { discard: true }
    )
  )
})

describe("Account: transfer steps", () => {
  it.effect("DebitForTransfer debits like a withdrawal and remembers the transfer", () =>
    Effect.gen(function* () {
      yield* spec
        .given([opened(10)])
        .when(debitFor("t1", 4))
        .thenEvents([debited("t1", 4)])
      yield* spec
        .given([opened(10)])
        .when(debitFor("t1", 4))
        .thenState(state(6, "Active", { t1: { step: "Debited", amount: amount(4) } }))
      yield* spec
        .given([opened(10)])
        .when(debitFor("t1", 11))
        .thenFails(new Account.InsufficientFunds({ currency: "USD", balance: 10, requested: 11 }))
      yield* spec
        .given([opened(10), frozen])
        .when(debitFor("t1", 1))
        .thenFails(new Account.AccountIsFrozen({ command: "DebitForTransfer" }))
      yield* spec
        .given([opened(10)])
        .when(debitFor("t1", 1, EUR))
        .thenFails(new Account.CurrencyMismatch({ account: "USD", requested: "EUR" }))
    })
  )

  it.effect("DebitForTransfer is idempotent per transfer id", () =>
    Effect.gen(function* () {
      yield* spec
        .given([opened(10), debited("t1", 4)])
        .when(debitFor("t1", 4))
        .thenEvents([])
      yield* spec
        .given([opened(10), debited("t1", 4), settled("t1")])
        .when(debitFor("t1", 4))
        .thenEvents([])
      yield* spec
        .given([opened(10), debited("t1", 4), reversed("t1", 4)])
        .when(debitFor("t1", 4))
        .thenEvents([])
      // a retry succeeds even when the account could not afford the debit again, or froze since
      yield* spec
        .given([opened(4), debited("t1", 4), frozen])
        .when(debitFor("t1", 4))
        .thenEvents([])
    })
  )

  it.effect("a transfer id reused for another amount or role is a conflict", () =>
    Effect.gen(function* () {
      yield* spec
        .given([opened(10), debited("t1", 4)])
        .when(debitFor("t1", 5))
        .thenFails(
          new Account.TransferStepConflict({
            transferId: "t1",
            command: "DebitForTransfer",
            recorded: "Debited",
            recordedAmount: 4
          })
        )
      yield* spec
        .given([opened(10), credited("t1", 4)])
        .when(debitFor("t1", 4))
        .thenFails((error) => error._tag === "TransferStepConflict")
      yield* spec
        .given([opened(10), debited("t1", 4)])
        .when(creditFor("t1", 4))
        .thenFails((error) => error._tag === "TransferStepConflict")
    })
  )

  it.effect("CreditForTransfer credits like a deposit (frozen or not) and is idempotent", () =>
    Effect.gen(function* () {
      yield* spec
        .given([opened()])
        .when(creditFor("t1", 4))
        .thenEvents([credited("t1", 4)])
      yield* spec
        .given([opened(), frozen])
        .when(creditFor("t1", 4))
        .thenState(state(4, "Frozen", { t1: { step: "Credited", amount: amount(4) } }))
      yield* spec
        .given([opened(), credited("t1", 4)])
        .when(creditFor("t1", 4))
        .thenEvents([])
      yield* spec
        .given([opened()])
        .when(creditFor("t1", 4, EUR))
        .thenFails(new Account.CurrencyMismatch({ account: "USD", requested: "EUR" }))
    })
  )

  it.effect("ReverseDebit gives the debited amount back, even while frozen, once", () =>
    Effect.gen(function* () {
      yield* spec
        .given([opened(10), debited("t1", 4)])
        .when(reverse("t1"))
        .thenEvents([reversed("t1", 4)])
      yield* spec
        .given([opened(10), debited("t1", 4), frozen])
        .when(reverse("t1"))
        .thenState(state(10, "Frozen", { t1: { step: "Reversed", amount: amount(4) } }))
      yield* spec
        .given([opened(10), debited("t1", 4), reversed("t1", 4)])
        .when(reverse("t1"))
        .thenEvents([])
      yield* spec
        .given([opened(10)])
        .when(reverse("t1"))
        .thenFails(new Account.NoTransferDebit({ transferId: "t1", command: "ReverseDebit" }))
      yield* spec
        .given([opened(10), credited("t1", 4)])
        .when(reverse("t1"))
        .thenFails(new Account.NoTransferDebit({ transferId: "t1", command: "ReverseDebit" }))
      yield* spec
        .given([opened(10), debited("t1", 4), settled("t1")])
        .when(reverse("t1"))
        .thenFails((error) => error._tag === "TransferStepConflict")
    })
  )

  it.effect("SettleDebit makes a debit final, once", () =>
    Effect.gen(function* () {
      yield* spec
        .given([opened(10), debited("t1", 4)])
        .when(settle("t1"))
        .thenEvents([settled("t1")])
      yield* spec
        .given([opened(10), debited("t1", 4), frozen])
        .when(settle("t1"))
        .thenState(state(6, "Frozen", { t1: { step: "Settled", amount: amount(4) } }))
      yield* spec
        .given([opened(10), debited("t1", 4), settled("t1")])
        .when(settle("t1"))
        .thenEvents([])
      yield* spec
        .given([opened(10)])
        .when(settle("t1"))
        .thenFails(new Account.NoTransferDebit({ transferId: "t1", command: "SettleDebit" }))
      yield* spec
        .given([opened(10), debited("t1", 4), reversed("t1", 4)])
        .when(settle("t1"))
        .thenFails((error) => error._tag === "TransferStepConflict")
    })
  )
})

// Properties

const Small = Schema.Int.check(Schema.isBetween({ minimum: -1, maximum: 4 }))
const SmallId = Schema.Literals(["t1", "t2", "t3"])
const SmallCurrency = Schema.Literals(["USD", "USD", "USD", "EUR"])
const SmallCommand = Schema.Union([
  Schema.TaggedStruct("Open", { initialDeposit: Small }),
  Schema.TaggedStruct("Deposit", { amount: Small, currency: SmallCurrency }),
  Schema.TaggedStruct("Withdraw", { amount: Small, currency: SmallCurrency }),
  Schema.TaggedStruct("ChargeFee", { amount: Small, currency: SmallCurrency }),
  Schema.TaggedStruct("Freeze", {}),
  Schema.TaggedStruct("Unfreeze", {}),
  Schema.TaggedStruct("Close", {}),
  Schema.TaggedStruct("DebitForTransfer", { transferId: SmallId, amount: Small }),
  Schema.TaggedStruct("CreditForTransfer", { transferId: SmallId, amount: Small }),
  Schema.TaggedStruct("ReverseDebit", { transferId: SmallId }),
  Schema.TaggedStruct("SettleDebit", { transferId: SmallId })
])

/** Small generated commands (amounts -1..4, three transfer ids, mostly USD), so that every rule is reached often. */
const toCommand = (c: typeof SmallCommand.Type): Account.AccountCommand => {
  switch (c._tag) {
    case "Open":
      return open(c.initialDeposit)
    case "Deposit":
      return deposit(c.amount, Money.Currency.make(c.currency))
    case "Withdraw":
      return withdraw(c.amount, Money.Currency.make(c.currency))
    case "ChargeFee":
      return chargeFee(c.amount, Money.Currency.make(c.currency))
    case "Freeze":
      return freeze
    case "Unfreeze":
      return unfreeze
    case "Close":
      return close
    case "DebitForTransfer":
      return debitFor(c.transferId, c.amount)
    case "CreditForTransfer":
      return creditFor(c.transferId, c.amount)
    case "ReverseDebit":
      return reverse(c.transferId)
    case "SettleDebit":
      return settle(c.transferId)
  }
}

const commands = Arbitrary.map(Properties.commands(SmallCommand, { maxLength: 40 }), (cs) => cs.map(toCommand))
const opening = Arbitrary.map(commands, (cs): Array<Account.AccountCommand> => [open(3), ...cs])
const checkOptions = { runs: 300, size: 40 }

const balanceOf = (s: Account.AccountState) => (s._tag === "Opened" ? s.balance : 0)
const signedSum = (events: ReadonlyArray<Account.AccountEvent>) =>
  events.reduce((sum, event) => sum + Account.signedAmount(event), 0)

describe("Account properties", () => {
  it.effect("the balance never goes negative", () =>
    Effect.gen(function* () {
      yield* Properties.invariant(Account.decider, commands, (s) => balanceOf(s) >= 0, {
        ...checkOptions,
        label: "balance >= 0"
      })
      yield* Properties.invariant(Account.decider, opening, (s) => balanceOf(s) >= 0, {
        ...checkOptions,
        label: "balance >= 0"
      })
    })
  )

  it.effect.prop(
    "the balance equals the signed sum of the money events",
    { commands: opening },
    ({ commands }) =>
      Effect.gen(function* () {
        const { state: s, events, history } = yield* Properties.replay(Account.decider, commands)
        assert.strictEqual(balanceOf(s), signedSum(events))
        // and after every step, not only at the end
        let sum = 0
        for (const step of history) {
          if (step._tag === "Accepted") sum += signedSum(step.events)
          assert.strictEqual(balanceOf(step.state), sum)
        }
      }),
    { arbitrary: checkOptions }
  )

  it.effect("a closed account stays closed: every later command is refused and the state does not change", () =>
    Effect.gen(function* () {
      let checkedAfterClosing = 0
      yield* Properties.invariant(
        Account.decider,
        opening,
        (_state, history) => {
          const closing = history.findIndex((step) => Account.isClosed(step.state))
          if (closing === -1) return true
          const closedState = history[closing]!.state
          const later = history.slice(closing + 1)
          checkedAfterClosing += later.length
          return later.every(
            (step) =>
              step._tag === "Rejected" &&
              step.error._tag === "AccountIsClosed" &&
              isDeepStrictEqual(step.state, closedState)
          )
        },
        { ...checkOptions, label: "closed stays closed" }
      )
      // not vacuous: generated commands do come after the account was closed (how many varies from run to run)
      assert.isAbove(checkedAfterClosing, 0)
    })
  )

  it.effect("a frozen account never pays out", () =>
    Properties.invariant(
      Account.decider,
      opening,
      (_state, history) => {
        const last = history.at(-1)
        if (last === undefined || last._tag === "Rejected") return true
        const before = history.length > 1 ? history.at(-2)!.state : Account.initialState
        const frozenBefore = before._tag === "Opened" && before.status === "Frozen"
        return !frozenBefore || last.events.every((event) => Account.signedAmount(event) >= 0)
      },
      { ...checkOptions, label: "frozen never pays out" }
    )
  )

  it.effect("a transfer step repeated at once decides no events", () =>
    Properties.invariant(
      Account.decider,
      opening,
      (s, history) => {
        const last = history.at(-1)
        if (last === undefined || last._tag === "Rejected") return true
        const tag = last.command._tag
        if (
          tag !== "DebitForTransfer" &&
          tag !== "CreditForTransfer" &&
          tag !== "ReverseDebit" &&
          tag !== "SettleDebit"
        )
          return true
        const again = Effect.runSync(Effect.result(Account.decider.decide(last.command, s)))
        return again._tag === "Success" && again.success.length === 0
      },
      { ...checkOptions, label: "transfer steps are idempotent" }
    )
  )

  it.effect.prop(
    "every reachable state is a valid snapshot",
    { commands: opening },
    ({ commands }) =>
      Effect.gen(function* () {
        const { state: s } = yield* Properties.replay(Account.decider, commands)
        const codec = Schema.toCodecJson(Account.AccountState)
        const json = yield* Schema.encodeEffect(codec)(s)
        assert.deepStrictEqual(yield* Schema.decodeUnknownEffect(codec)(JSON.parse(JSON.stringify(json))), s)
      }),
    { arbitrary: checkOptions }
  )
})

describe("Account aggregate", () => {
  it.effect("runs through command handling and snapshots every 100 events", () =>
    Effect.gen(function* () {
      assert.strictEqual(Account.Account.snapshot?.every, 100)
      const id = "Account-alice"
      yield* CommandHandler.handle(Account.Account, id, open(0))
      for (let i = 1; i < 100; i++) yield* CommandHandler.handle(Account.Account, id, deposit(i))
      const snapshot = yield* Snapshot.SnapshotStore.use((store) => store.load(id))
      assert.isTrue(Option.isSome(snapshot))
      const loaded = yield* CommandHandler.load(Account.Account, id)
      assert.deepStrictEqual(loaded, { state: state((99 * 100) / 2), version: 100, folded: 0 })
      const refused = yield* Effect.flip(CommandHandler.handle(Account.Account, id, withdraw(1_000_000)))
      assert.strictEqual(refused._tag, "InsufficientFunds")
    }).pipe(Effect.provide(Layer.merge(EventStore.layerMemory, Snapshot.layerMemory)))
  )
})

// The bank's controls: four eyes on large outflows, deposit limits

const requested = (n: number, threshold: number, requestId = "r1", kind: "Withdrawal" | "Fee" = "Withdrawal") =>
  Account.OutflowRequested.make({
    requestId,
    kind,
    amount: amount(n),
    text: kind === "Withdrawal" ? "atm" : "monthly fee",
    requestedBy: kind === "Withdrawal" ? "alice" : "admin",
    approvalThreshold: amount(threshold)
  })
const approveOutflow = (by: string, requestId = "r1"): Account.AccountCommand => ({
  _tag: "ApproveOutflow",
  requestId,
  by
})
const rejectOutflow = (by: string, requestId = "r1"): Account.AccountCommand => ({
  _tag: "RejectOutflow",
  requestId,
  by,
  reason: "not justified"
})

describe("Account: four eyes on withdrawals and fees above the threshold", () => {
  it.effect("at or below the threshold the money moves at once; above it the request waits and nothing moves", () =>
    Effect.gen(function* () {
      yield* spec
        .given([opened(100)])
        .when(withdraw(50, USD, amount(50)))
        .thenEvents([withdrawn(50)])
      yield* spec
        .given([opened(100)])
        .when(withdraw(51, USD, amount(50)))
        .thenEvents([requested(51, 50)])
      yield* spec
        .given([opened(100)])
        .when(chargeFee(51, USD, amount(50)))
        .thenEvents([requested(51, 50, "r1", "Fee")])
      const waiting = Decider.fold(Account.decider, Account.initialState, [opened(100), requested(51, 50)])
      assert.strictEqual(balanceOf(waiting), 100)
      assert.deepStrictEqual(waiting._tag === "Opened" ? Object.keys(waiting.pendingOutflows) : [], ["r1"])
    })
  )

  it.effect("a second person approves: the money moves then; the requester may not approve or reject", () =>
    Effect.gen(function* () {
      yield* spec
        .given([opened(100), requested(60, 50)])
        .when(approveOutflow("carol"))
        .thenEvents([
          Account.OutflowApproved.make({ requestId: "r1", by: "carol" }),
          Account.MoneyWithdrawn.make({ amount: amount(60), reference: "atm", requestId: "r1" })
        ])
      yield* spec
        .given([opened(100), requested(60, 50, "r1", "Fee")])
        .when(approveOutflow("carol"))
        .thenEvents([
          Account.OutflowApproved.make({ requestId: "r1", by: "carol" }),
          Account.FeeCharged.make({ amount: amount(60), reason: "monthly fee", requestId: "r1" })
        ])
      yield* spec
        .given([opened(100), requested(60, 50)])
        .when(approveOutflow("alice"))
        .thenFails(new Account.FourEyesRequired({ requestId: "r1", actor: "alice" }))
      yield* spec
        .given([opened(100), requested(60, 50)])
        .when(rejectOutflow("alice"))
        .thenFails(new Account.FourEyesRequired({ requestId: "r1", actor: "alice" }))
    })
  )

  it.effect("a rejection moves nothing and ends the request; a decided or unknown request cannot be reviewed", () =>
    Effect.gen(function* () {
      const rejected = Account.OutflowRejected.make({ requestId: "r1", by: "carol", reason: "not justified" })
      yield* spec
        .given([opened(100), requested(60, 50)])
        .when(rejectOutflow("carol"))
        .thenEvents([rejected])
      yield* spec
        .given([opened(100), requested(60, 50), rejected])
        .when(approveOutflow("carol"))
        .thenFails(new Account.OutflowNotPending({ requestId: "r1", command: "ApproveOutflow" }))
      yield* spec
        .given([opened(100)])
        .when(approveOutflow("carol", "r9"))
        .thenFails(new Account.OutflowNotPending({ requestId: "r9", command: "ApproveOutflow" }))
      yield* spec
        .given([opened(100), requested(60, 50)])
        .when(withdraw(60, USD, amount(50)))
        .thenFails(new Account.OutflowAlreadyRequested({ requestId: "r1" }))
    })
  )

  it.effect("no overdraft at execution: the approval checks the balance and the status of that moment", () =>
    Effect.gen(function* () {
      // the balance fell below the request while it waited
      yield* spec
        .given([opened(100), requested(60, 50), withdrawn(50)])
        .when(approveOutflow("carol"))
        .thenFails(new Account.InsufficientFunds({ currency: "USD", balance: 50, requested: 60 }))
      yield* spec
        .given([opened(100), requested(60, 50), frozen])
        .when(approveOutflow("carol"))
        .thenFails(new Account.AccountIsFrozen({ command: "ApproveOutflow" }))
      // a request the account cannot pay now does not wait at all
      yield* spec
        .given([opened(10)])
        .when(withdraw(60, USD, amount(50)))
        .thenFails(new Account.InsufficientFunds({ currency: "USD", balance: 10, requested: 60 }))
      // and an account with a waiting request does not close
      yield* spec
        .given([opened(0), deposited(60), requested(60, 50), withdrawn(60)])
        .when(close)
        .thenFails(new Account.OutflowsPending({ requestIds: ["r1"] }))
    })
  )
})

describe("Account: deposit limits", () => {
  it.effect("a deposit (or an initial deposit) above the depositor's limit is refused; at the limit it is taken", () =>
    Effect.gen(function* () {
      yield* spec
        .given([opened(0)])
        .when(deposit(100, USD, amount(100)))
        .thenEvents([deposited(100)])
      yield* spec
        .given([opened(0)])
        .when(deposit(101, USD, amount(100)))
        .thenFails(new Account.DepositLimitExceeded({ currency: "USD", amount: 101, limit: 100 }))
      yield* spec
        .given()
        .when({ _tag: "Open", owner: "Alice", currency: USD, initialDeposit: amount(101), depositLimit: amount(100) })
        .thenFails(new Account.DepositLimitExceeded({ currency: "USD", amount: 101, limit: 100 }))
    })
  )

  it.effect("a limit of 0 (anyone but a teller or an admin) takes no money in, but opens an empty account", () =>
    Effect.gen(function* () {
      yield* spec
        .given([opened(0)])
        .when(deposit(1, USD, amount(0)))
        .thenFails(new Account.DepositLimitExceeded({ currency: "USD", amount: 1, limit: 0 }))
      yield* spec
        .given()
        .when({ _tag: "Open", owner: "Alice", currency: USD, initialDeposit: amount(1), depositLimit: amount(0) })
        .thenFails(new Account.DepositLimitExceeded({ currency: "USD", amount: 1, limit: 0 }))
      yield* spec
        .given()
        .when({ _tag: "Open", owner: "Alice", currency: USD, initialDeposit: amount(0), depositLimit: amount(0) })
        .thenEvents([opened(0)])
    })
  )
})

const Person = Schema.Literals(["alice", "carol"])
const SmallRequest = Schema.Literals(["r1", "r2"])
const OutflowCommand = Schema.Union([
  Schema.TaggedStruct("Deposit", { amount: Small }),
  Schema.TaggedStruct("Withdraw", { amount: Small, threshold: Small, requestId: SmallRequest }),
  Schema.TaggedStruct("ChargeFee", { amount: Small, threshold: Small, requestId: SmallRequest }),
  Schema.TaggedStruct("ApproveOutflow", { requestId: SmallRequest, by: Person }),
  Schema.TaggedStruct("RejectOutflow", { requestId: SmallRequest, by: Person }),
  Schema.TaggedStruct("Freeze", {}),
  Schema.TaggedStruct("Unfreeze", {})
])

/** Withdrawals, fees and reviews by alice (the requester) and carol, with small thresholds that are often crossed. */
const toOutflowCommand = (c: typeof OutflowCommand.Type): Account.AccountCommand => {
  switch (c._tag) {
    case "Deposit":
      return deposit(c.amount)
    case "Withdraw":
      return withdraw(c.amount, USD, amount(c.threshold), c.requestId)
    case "ChargeFee":
      return chargeFee(c.amount, USD, amount(c.threshold), c.requestId, "alice")
    case "ApproveOutflow":
      return approveOutflow(c.by, c.requestId)
    case "RejectOutflow":
      return rejectOutflow(c.by, c.requestId)
    case "Freeze":
      return freeze
    case "Unfreeze":
      return unfreeze
  }
}

const outflowCommands = Arbitrary.map(
  Properties.commands(OutflowCommand, { maxLength: 40 }),
  (cs): Array<Account.AccountCommand> => [open(4), ...cs.map(toOutflowCommand)]
)

describe("Account properties: four eyes", () => {
  it.effect.prop(
    "no withdrawal or fee above its threshold moves money without the approval of someone other than its requester",
    { commands: outflowCommands },
    ({ commands }) =>
      Effect.gen(function* () {
        const { history } = yield* Properties.replay(Account.decider, commands)
        const requesters = new Map<string, string>()
        for (const step of history) {
          if (step._tag !== "Accepted") continue
          for (const event of step.events) {
            if (event._tag === "OutflowRequested") requesters.set(event.requestId, event.requestedBy)
            if (event._tag !== "MoneyWithdrawn" && event._tag !== "FeeCharged") continue
            const command = step.command
            if (command._tag === "Withdraw" || command._tag === "ChargeFee") {
              assert.isAtMost(event.amount, command.approvalThreshold, "executed at once only within the threshold")
            } else {
              assert.strictEqual(command._tag, "ApproveOutflow")
              if (command._tag !== "ApproveOutflow") continue
              assert.strictEqual(event.requestId, command.requestId)
              assert.notStrictEqual(command.by, requesters.get(command.requestId), "approved by a second person")
            }
          }
        }
      }),
    { arbitrary: checkOptions }
  )

  it.effect("the balance never goes negative, whenever the approvals come", () =>
    Properties.invariant(Account.decider, outflowCommands, (s) => balanceOf(s) >= 0, {
      ...checkOptions,
      label: "balance >= 0 with four eyes"
    })
  )
})
