import { isDeepStrictEqual } from "node:util"
import { assert, describe, it } from "@effect/vitest"
import { CommandHandler, Decider, EventStore, Snapshot } from "@facta/core"
import { DeciderSpec, Properties } from "@facta/testing"
import { Arbitrary, Effect, Exit, Layer, Option, Schema } from "effect"
import {
  AccountAlreadyOpened,
  AccountClosed,
  AccountIsClosed,
  AccountNotEmpty,
  AccountNotOpened,
  AccountOpened,
  BalanceLimitExceeded,
  BankAccount,
  BankAccountCommand,
  type BankAccountEvent,
  BankAccountState,
  InsufficientFunds,
  InvalidAmount,
  MoneyDeposited,
  MoneyWithdrawn
} from "./fixtures/BankAccount.ts"

const spec = DeciderSpec.make(BankAccount.decider)

// Commands are built as plain values rather than with `make`, which would validate them: `decide` has to reject what
// the command schema would, too (a caller may skip decoding).
const open = (initialDeposit: number): BankAccountCommand => ({ _tag: "Open", initialDeposit })
const deposit = (amount: number): BankAccountCommand => ({ _tag: "Deposit", amount })
const withdraw = (amount: number): BankAccountCommand => ({ _tag: "Withdraw", amount })
const close: BankAccountCommand = { _tag: "Close" }

const opened = (initialDeposit: number) => AccountOpened.make({ initialDeposit })
const deposited = (amount: number) => MoneyDeposited.make({ amount })
const withdrawn = (amount: number) => MoneyWithdrawn.make({ amount })
const closed = AccountClosed.make({})

describe("BankAccount: Open", () => {
  it.effect("opens an account with an initial deposit, which may be 0", () =>
    Effect.gen(function* () {
      yield* spec
        .given()
        .when(open(100))
        .thenEvents([opened(100)])
      yield* spec.given().when(open(100)).thenState({ status: "Open", balance: 100 })
      yield* spec.given().when(open(0)).thenState({ status: "Open", balance: 0 })
    })
  )

  it.effect.each([-1, 2.5, Number.NaN])("rejects the initial deposit %s", (initialDeposit) =>
    spec
      .given()
      .when(open(initialDeposit))
      .thenFails(new InvalidAmount({ amount: initialDeposit }))
  )

  it.effect("rejects opening twice", () =>
    spec
      .given([opened(10)])
      .when(open(10))
      .thenFails(new AccountAlreadyOpened())
  )

  it.effect("rejects opening a closed account", () =>
    spec
      .given([opened(0), closed])
      .when(open(10))
      .thenFails(new AccountIsClosed({ command: "Open" }))
  )
})

describe("BankAccount: Deposit", () => {
  it.effect("adds to the balance", () =>
    Effect.gen(function* () {
      yield* spec
        .given([opened(10)])
        .when(deposit(5))
        .thenEvents([deposited(5)])
      yield* spec
        .given([opened(10), deposited(5)])
        .when(deposit(7))
        .thenState({ status: "Open", balance: 22 })
    })
  )

  it.effect.each([0, -5, 0.5, Number.POSITIVE_INFINITY])("rejects the amount %s", (amount) =>
    spec
      .given([opened(10)])
      .when(deposit(amount))
      .thenFails(new InvalidAmount({ amount }))
  )

  it.effect("rejects a deposit that would take the balance past the largest safe integer", () =>
    spec
      .givenState({ status: "Open", balance: Number.MAX_SAFE_INTEGER - 1 })
      .when(deposit(2))
      .thenFails(new BalanceLimitExceeded({ balance: Number.MAX_SAFE_INTEGER - 1, amount: 2 }))
  )

  it.effect("rejects a deposit into an account that was never opened", () =>
    spec
      .given()
      .when(deposit(5))
      .thenFails(new AccountNotOpened({ command: "Deposit" }))
  )

  it.effect("rejects a deposit into a closed account", () =>
    spec
      .given([opened(0), closed])
      .when(deposit(5))
      .thenFails(new AccountIsClosed({ command: "Deposit" }))
  )
})

describe("BankAccount: Withdraw", () => {
  it.effect("takes from the balance, down to exactly 0", () =>
    Effect.gen(function* () {
      yield* spec
        .given([opened(10)])
        .when(withdraw(4))
        .thenEvents([withdrawn(4)])
      yield* spec
        .given([opened(10)])
        .when(withdraw(4))
        .thenState({ status: "Open", balance: 6 })
      yield* spec
        .given([opened(10), withdrawn(4)])
        .when(withdraw(6))
        .thenState({ status: "Open", balance: 0 })
    })
  )

  it.effect("rejects an overdraft", () =>
    Effect.gen(function* () {
      yield* spec
        .given([opened(10)])
        .when(withdraw(11))
        .thenFails(new InsufficientFunds({ balance: 10, requested: 11 }))
      yield* spec
        .given([opened(0)])
        .when(withdraw(1))
        .thenFails(new InsufficientFunds({ balance: 0, requested: 1 }))
    })
  )

  it.effect.each([0, -5, 0.5])("rejects the amount %s", (amount) =>
    spec
      .given([opened(10)])
      .when(withdraw(amount))
      .thenFails(new InvalidAmount({ amount }))
  )

  it.effect("rejects a withdrawal from an account that was never opened", () =>
    spec
      .given()
      .when(withdraw(5))
      .thenFails(new AccountNotOpened({ command: "Withdraw" }))
  )

  it.effect("rejects a withdrawal from a closed account", () =>
    spec
      .given([opened(0), closed])
      .when(withdraw(5))
      .thenFails(new AccountIsClosed({ command: "Withdraw" }))
  )
})

describe("BankAccount: Close", () => {
  it.effect("closes an empty account", () =>
    Effect.gen(function* () {
      yield* spec
        .given([opened(0)])
        .when(close)
        .thenEvents([closed])
      yield* spec
        .given([opened(5), withdrawn(5)])
        .when(close)
        .thenState({ status: "Closed", balance: 0 })
    })
  )

  it.effect("rejects closing an account that holds money", () =>
    spec
      .given([opened(5)])
      .when(close)
      .thenFails(new AccountNotEmpty({ balance: 5 }))
  )

  it.effect("rejects closing an account that was never opened", () =>
    spec
      .given()
      .when(close)
      .thenFails(new AccountNotOpened({ command: "Close" }))
  )

  it.effect("rejects closing twice", () =>
    spec
      .given([opened(0), closed])
      .when(close)
      .thenFails(new AccountIsClosed({ command: "Close" }))
  )

  it("is terminal once closed, and only then", () => {
    const { decider } = BankAccount
    assert.isFalse(Decider.isTerminal(decider, decider.initialState))
    assert.isFalse(Decider.isTerminal(decider, Decider.fold(decider, decider.initialState, [opened(0)])))
    assert.isTrue(Decider.isTerminal(decider, Decider.fold(decider, decider.initialState, [opened(0), closed])))
  })
})

// Properties

/** The money an event moved into (positive) or out of (negative) the account. */
const moved = (event: BankAccountEvent): number => {
  switch (event._tag) {
    case "AccountOpened":
      return event.initialDeposit
    case "MoneyDeposited":
      return event.amount
    case "MoneyWithdrawn":
      return -event.amount
    case "AccountClosed":
      return 0
  }
}

/** Signed sum of the money the events moved: what the balance must be. */
const signedSum = (events: ReadonlyArray<BankAccountEvent>): number => events.reduce((sum, e) => sum + moved(e), 0)

const acceptedEvents = (history: ReadonlyArray<Properties.Step<unknown, BankAccountEvent, unknown, unknown>>) =>
  history.flatMap((step) => (step._tag === "Accepted" ? step.events : []))

/** Any commands, invalid amounts included; amounts reach about ±1600 at size 40, so the balance seldom returns to 0. */
const anyCommands = Properties.commands(BankAccountCommand, { maxLength: 40 })

// Small amounts make the interesting paths (balance back to 0, closing, commands after closing) common.
const SmallAmount = Schema.Int.check(Schema.isBetween({ minimum: -1, maximum: 3 }))
const SmallCommand = Schema.Union([
  Schema.TaggedStruct("Open", { initialDeposit: SmallAmount }),
  Schema.TaggedStruct("Deposit", { amount: SmallAmount }),
  Schema.TaggedStruct("Withdraw", { amount: SmallAmount }),
  Schema.TaggedStruct("Close", {})
])
const smallCommands = Properties.commands(SmallCommand, { maxLength: 40 })

const checkOptions = { runs: 300, size: 40 }

/** After the first step that closes the account, every command is rejected as closed and the state stays. */
const staysClosed = (
  _state: BankAccountState,
  history: ReadonlyArray<Properties.Step<BankAccountCommand, BankAccountEvent, BankAccountState, unknown>>
): boolean => {
  const closing = history.findIndex((step) => step.state.status === "Closed")
  if (closing === -1) return true
  const closedState = history[closing]!.state
  return history
    .slice(closing + 1)
    .every(
      (step) =>
        step._tag === "Rejected" &&
        step.error instanceof AccountIsClosed &&
        step.error.command === step.command._tag &&
        isDeepStrictEqual(step.state, closedState)
    )
}

describe("BankAccount properties", () => {
  it.effect("the balance never goes negative", () =>
    Effect.gen(function* () {
      yield* Properties.invariant(BankAccount.decider, anyCommands, (state) => state.balance >= 0, {
        ...checkOptions,
        label: "balance >= 0"
      })
      yield* Properties.invariant(BankAccount.decider, smallCommands, (state) => state.balance >= 0, {
        ...checkOptions,
        label: "balance >= 0"
      })
    })
  )

  it.effect("the balance equals the signed sum of the accepted events, after every command", () =>
    Properties.invariant(
      BankAccount.decider,
      smallCommands,
      (state, history) => state.balance === signedSum(acceptedEvents(history)),
      { ...checkOptions, label: "balance = signed sum of events" }
    )
  )

  it.effect.prop(
    "the balance equals the signed sum of the accepted events (replay)",
    { commands: anyCommands },
    ({ commands }) =>
      Effect.gen(function* () {
        const { state, events, rejected, history } = yield* Properties.replay(BankAccount.decider, commands)
        assert.strictEqual(state.balance, signedSum(events))
        assert.strictEqual(history.length, commands.length)
        assert.strictEqual(rejected.length, history.filter((step) => step._tag === "Rejected").length)
      }),
    { arbitrary: checkOptions }
  )

  it.effect("a closed account stays closed: every later command is rejected and the state does not change", () =>
    Effect.gen(function* () {
      let checkedAfterClosing = 0
      yield* Properties.invariant(
        BankAccount.decider,
        smallCommands,
        (state, history) => {
          const closing = history.findIndex((step) => step.state.status === "Closed")
          if (closing !== -1 && closing < history.length - 1) checkedAfterClosing++
          return staysClosed(state, history)
        },
        { ...checkOptions, label: "closed stays closed" }
      )
      // the property is not vacuous: many generated commands come after the account was closed
      assert.isAbove(checkedAfterClosing, 100)
    })
  )

  it.effect("a closed account rejects any command whatsoever", () =>
    Properties.invariant(
      BankAccount.decider,
      Arbitrary.map(anyCommands, (commands): Array<BankAccountCommand> => [open(0), close, ...commands]),
      staysClosed,
      { ...checkOptions, label: "closed stays closed" }
    )
  )

  it.effect("the properties catch deciders that break the rules", () =>
    Effect.gen(function* () {
      const overdrawing = Decider.make({
        ...BankAccount.decider,
        decide: (command: BankAccountCommand, state: BankAccountState) =>
          command._tag === "Withdraw" && state.status === "Open" && command.amount > 0
            ? Effect.succeed<ReadonlyArray<BankAccountEvent>>([withdrawn(command.amount)])
            : BankAccount.decider.decide(command, state)
      })
      const reopening = Decider.make({
        ...BankAccount.decider,
        decide: (command: BankAccountCommand, state: BankAccountState) =>
          command._tag === "Open" && state.status === "Closed"
            ? Effect.succeed<ReadonlyArray<BankAccountEvent>>([opened(command.initialDeposit)])
            : BankAccount.decider.decide(command, state)
      })
      const negative = yield* Effect.exit(
        Properties.invariant(overdrawing, smallCommands, (state) => state.balance >= 0, checkOptions)
      )
      assert.isTrue(Exit.isFailure(negative))
      const reopened = yield* Effect.exit(Properties.invariant(reopening, smallCommands, staysClosed, checkOptions))
      assert.isTrue(Exit.isFailure(reopened))
    })
  )

  it.effect.prop(
    "every reachable state is a valid snapshot: it encodes to JSON and decodes back",
    { commands: smallCommands },
    ({ commands }) =>
      Effect.gen(function* () {
        const { state } = yield* Properties.replay(BankAccount.decider, commands)
        const codec = Schema.toCodecJson(BankAccountState)
        const json = yield* Schema.encodeEffect(codec)(state)
        assert.deepStrictEqual(yield* Schema.decodeUnknownEffect(codec)(JSON.parse(JSON.stringify(json))), state)
      }),
    { arbitrary: checkOptions }
  )
})

describe("BankAccount aggregate", () => {
  it("snapshots its Schema-described state every 50 events, at state version 1", () => {
    assert.deepStrictEqual(BankAccount.snapshot, { schema: BankAccountState, version: 1, every: 50 })
    assert.isTrue(Schema.is(BankAccountState)({ status: "Open", balance: 0 }))
    assert.isFalse(Schema.is(BankAccountState)({ status: "Open", balance: -1 }))
    assert.isFalse(Schema.is(BankAccountState)({ status: "Open", balance: 0.5 }))
  })

  it.effect("runs through command handling, snapshotting after 50 events", () =>
    Effect.gen(function* () {
      yield* CommandHandler.handle(BankAccount, "BankAccount-1", open(0))
      for (let i = 1; i < 50; i++) yield* CommandHandler.handle(BankAccount, "BankAccount-1", deposit(i))
      const snapshot = yield* Snapshot.SnapshotStore.use((store) => store.load("BankAccount-1"))
      assert.isTrue(Option.isSome(snapshot))
      if (Option.isNone(snapshot)) return
      const expectedBalance = (49 * 50) / 2
      assert.strictEqual(snapshot.value.version, 50)
      assert.strictEqual(snapshot.value.stateVersion, 1)
      assert.deepStrictEqual(snapshot.value.state, { status: "Open", balance: expectedBalance })
      const loaded = yield* CommandHandler.load(BankAccount, "BankAccount-1")
      assert.deepStrictEqual(loaded, { state: { status: "Open", balance: expectedBalance }, version: 50, folded: 0 })
      const rejected = yield* Effect.flip(CommandHandler.handle(BankAccount, "BankAccount-1", close))
      assert.deepStrictEqual(rejected, new AccountNotEmpty({ balance: expectedBalance }))
    }).pipe(Effect.provide(Layer.merge(EventStore.layerMemory, Snapshot.layerMemory)))
  )
})
