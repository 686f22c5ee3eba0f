import { AssertionError } from "node:assert"
import { assert, describe, it } from "@effect/vitest"
import { Decider } from "@facta/core"
import { DeciderSpec } from "@facta/testing"
import { Cause, Effect, Exit, Result, Schema } from "effect"

const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Int })
const Withdrawn = Schema.TaggedStruct("Withdrawn", { amount: Schema.Int })
type Event = typeof Deposited.Type | typeof Withdrawn.Type

type Command =
  | { readonly _tag: "Deposit"; readonly amount: number }
  | { readonly _tag: "Withdraw"; readonly amount: number }
  | { readonly _tag: "Noop" }
  | { readonly _tag: "Explode" }

class Overdraft extends Schema.TaggedError<Overdraft>()("Overdraft", {
  balance: Schema.Int,
  requested: Schema.Int
}) {}

const wallet = Decider.make({
  initialState: 0,
  decide: (command: Command, balance: number): Effect.Effect<ReadonlyArray<Event>, Overdraft> => {
    switch (command._tag) {
      case "Deposit":
        return Effect.succeed([Deposited.make({ amount: command.amount })])
      case "Withdraw":
        return command.amount > balance
          ? Effect.fail(new Overdraft({ balance, requested: command.amount }))
          : Effect.succeed([Withdrawn.make({ amount: command.amount })])
      case "Noop":
        return Effect.succeed([])
      case "Explode":
        throw new Error("kaboom")
    }
  },
  evolve: (balance: number, event: Event) =>
    event._tag === "Deposited" ? balance + event.amount : balance - event.amount
})

const deposited = (amount: number) => Deposited.make({ amount })
const withdrawn = (amount: number) => Withdrawn.make({ amount })

/** Runs a check that must fail and returns its AssertionError. */
const assertionErrorOf = Effect.fnUntraced(function* (check: Effect.Effect<void>) {
  const exit = yield* Effect.exit(check)
  assert.isTrue(Exit.isFailure(exit), "the check should have failed")
  if (Exit.isSuccess(exit)) return assert.fail("unreachable")
  const defect = Cause.findDefect(exit.cause)
  assert.isTrue(Result.isSuccess(defect), `the check should have died, got ${Cause.pretty(exit.cause)}`)
  if (Result.isFailure(defect)) return assert.fail("unreachable")
  assert.instanceOf(defect.success, AssertionError)
  return defect.success as AssertionError
})

describe("DeciderSpec.given", () => {
  it("folds the given events into the starting state", () => {
    const given = DeciderSpec.given(wallet, [deposited(10), withdrawn(3)])
    assert.strictEqual(given.state, 7)
    assert.deepStrictEqual(given.events, [deposited(10), withdrawn(3)])
  })

  it("starts from the initial state without events", () => {
    assert.strictEqual(DeciderSpec.given(wallet).state, 0)
    assert.deepStrictEqual(DeciderSpec.given(wallet).events, [])
  })

  it("givenState starts from the given state", () => {
    const given = DeciderSpec.givenState(wallet, 42)
    assert.strictEqual(given.state, 42)
    assert.deepStrictEqual(given.events, [])
  })

  it.effect("takes its types from the decider, so plain literals fit as events and states", () =>
    Effect.gen(function* () {
      type Light = { readonly _tag: "SwitchedOn" } | { readonly _tag: "SwitchedOff" }
      const light = Decider.make({
        initialState: "off" as "on" | "off",
        decide: (_: "toggle", state: "on" | "off") =>
          Effect.succeed<ReadonlyArray<Light>>([{ _tag: state === "on" ? "SwitchedOff" : "SwitchedOn" }]),
        evolve: (_: "on" | "off", event: Light): "on" | "off" => (event._tag === "SwitchedOn" ? "on" : "off")
      })
      yield* DeciderSpec.given(light, [{ _tag: "SwitchedOn" }])
        .when("toggle")
        .thenEvents([{ _tag: "SwitchedOff" }])
      yield* DeciderSpec.givenState(light, "on").when("toggle").thenState("off")
    })
  )

  it.effect("make binds given and givenState to a decider", () =>
    Effect.gen(function* () {
      const spec = DeciderSpec.make(wallet)
      assert.strictEqual(spec.given([deposited(5)]).state, 5)
      assert.strictEqual(spec.given().state, 0)
      yield* spec.givenState(9).when({ _tag: "Withdraw", amount: 9 }).thenState(0)
    })
  )
})

describe("DeciderSpec thenEvents", () => {
  it.effect("passes when decide returns exactly the expected events", () =>
    Effect.gen(function* () {
      yield* DeciderSpec.given(wallet, [deposited(10)])
        .when({ _tag: "Withdraw", amount: 4 })
        .thenEvents([withdrawn(4)])
      yield* DeciderSpec.given(wallet).when({ _tag: "Noop" }).thenEvents([])
    })
  )

  it.effect("dies with a diff naming the command when the events differ", () =>
    Effect.gen(function* () {
      const error = yield* assertionErrorOf(
        DeciderSpec.given(wallet, [deposited(10)])
          .when({ _tag: "Withdraw", amount: 4 })
          .thenEvents([withdrawn(5)])
      )
      assert.include(error.message, "given the events [ { _tag: 'Deposited', amount: 10 } ]")
      assert.include(error.message, "when { _tag: 'Withdraw', amount: 4 }")
      assert.include(error.message, "the events differ from the expected ones")
      assert.include(error.message, "+     amount: 4")
      assert.include(error.message, "-     amount: 5")
      assert.deepStrictEqual(error.actual, [withdrawn(4)])
      assert.deepStrictEqual(error.expected, [withdrawn(5)])
    })
  )

  it.effect("dies when an empty list is expected but events come", () =>
    Effect.gen(function* () {
      const error = yield* assertionErrorOf(
        DeciderSpec.given(wallet).when({ _tag: "Deposit", amount: 1 }).thenEvents([])
      )
      assert.include(error.message, "the events differ")
    })
  )

  it.effect("dies when the order of the events differs", () =>
    Effect.gen(function* () {
      const twice = Decider.make({
        ...wallet,
        decide: (_: Command, _balance: number) => Effect.succeed<ReadonlyArray<Event>>([deposited(1), withdrawn(1)])
      })
      yield* DeciderSpec.given(twice)
        .when({ _tag: "Noop" })
        .thenEvents([deposited(1), withdrawn(1)])
      yield* assertionErrorOf(
        DeciderSpec.given(twice)
          .when({ _tag: "Noop" })
          .thenEvents([withdrawn(1), deposited(1)])
      )
    })
  )

  it.effect("dies naming the command and the error when the command is rejected", () =>
    Effect.gen(function* () {
      const error = yield* assertionErrorOf(
        DeciderSpec.given(wallet, [deposited(10)])
          .when({ _tag: "Withdraw", amount: 11 })
          .thenEvents([withdrawn(11)])
      )
      assert.include(error.message, "when { _tag: 'Withdraw', amount: 11 }")
      assert.include(error.message, "expected the events [ { _tag: 'Withdrawn', amount: 11 } ]")
      assert.include(error.message, "but the command was rejected with Overdraft { balance: 10, requested: 11 }")
    })
  )

  it.effect("dies with the defect when decide throws", () =>
    Effect.gen(function* () {
      const error = yield* assertionErrorOf(DeciderSpec.given(wallet).when({ _tag: "Explode" }).thenEvents([]))
      assert.include(error.message, "when { _tag: 'Explode' }")
      assert.include(error.message, "decide died")
      assert.include(error.message, "kaboom")
    })
  )
})

describe("DeciderSpec thenFails", () => {
  it.effect("passes when the error is deep-equal to the expected one", () =>
    DeciderSpec.given(wallet, [deposited(10)])
      .when({ _tag: "Withdraw", amount: 11 })
      .thenFails(new Overdraft({ balance: 10, requested: 11 }))
  )

  it.effect("passes when the predicate holds for the error", () =>
    DeciderSpec.given(wallet, [deposited(10)])
      .when({ _tag: "Withdraw", amount: 11 })
      .thenFails((error) => error._tag === "Overdraft" && error.requested === 11)
  )

  it.effect("dies with a diff when the error has other fields", () =>
    Effect.gen(function* () {
      const error = yield* assertionErrorOf(
        DeciderSpec.given(wallet, [deposited(10)])
          .when({ _tag: "Withdraw", amount: 11 })
          .thenFails(new Overdraft({ balance: 10, requested: 12 }))
      )
      assert.include(error.message, "the command was rejected with another error")
      assert.include(error.message, "+   requested: 11")
      assert.include(error.message, "-   requested: 12")
    })
  )

  it.effect("dies when the predicate does not hold", () =>
    Effect.gen(function* () {
      const error = yield* assertionErrorOf(
        DeciderSpec.given(wallet)
          .when({ _tag: "Withdraw", amount: 1 })
          .thenFails((error) => error.requested === 2)
      )
      assert.include(error.message, "expected a failure that satisfies the predicate")
      assert.include(error.message, "but the command was rejected with Overdraft { balance: 0, requested: 1 }")
    })
  )

  it.effect("dies naming the command and the events when the command is accepted", () =>
    Effect.gen(function* () {
      const error = yield* assertionErrorOf(
        DeciderSpec.given(wallet, [deposited(10)])
          .when({ _tag: "Withdraw", amount: 10 })
          .thenFails(new Overdraft({ balance: 10, requested: 10 }))
      )
      assert.include(error.message, "when { _tag: 'Withdraw', amount: 10 }")
      assert.include(error.message, "expected the failure Overdraft { balance: 10, requested: 10 }")
      assert.include(error.message, "but the command was accepted with [ { _tag: 'Withdrawn', amount: 10 } ]")
      const withPredicate = yield* assertionErrorOf(
        DeciderSpec.given(wallet)
          .when({ _tag: "Noop" })
          .thenFails(() => true)
      )
      assert.include(withPredicate.message, "but the command was accepted with []")
    })
  )
})

describe("DeciderSpec thenState", () => {
  it.effect("passes when folding the events leaves the expected state", () =>
    Effect.gen(function* () {
      yield* DeciderSpec.given(wallet, [deposited(10)])
        .when({ _tag: "Withdraw", amount: 4 })
        .thenState(6)
      yield* DeciderSpec.givenState(wallet, 3).when({ _tag: "Noop" }).thenState(3)
    })
  )

  it.effect("dies with the events and a diff when the state differs", () =>
    Effect.gen(function* () {
      const error = yield* assertionErrorOf(
        DeciderSpec.givenState(wallet, 3).when({ _tag: "Deposit", amount: 2 }).thenState(6)
      )
      assert.include(error.message, "given the state 3")
      assert.include(error.message, "when { _tag: 'Deposit', amount: 2 }")
      assert.include(error.message, "the state after the events [ { _tag: 'Deposited', amount: 2 } ] differs")
      assert.strictEqual(error.actual, 5)
      assert.strictEqual(error.expected, 6)
    })
  )

  it.effect("dies when the command is rejected", () =>
    Effect.gen(function* () {
      const error = yield* assertionErrorOf(
        DeciderSpec.given(wallet).when({ _tag: "Withdraw", amount: 1 }).thenState(0)
      )
      assert.include(error.message, "expected the state 0")
      assert.include(error.message, "but the command was rejected with Overdraft { balance: 0, requested: 1 }")
    })
  )
})
