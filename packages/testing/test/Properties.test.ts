import { AssertionError } from "node:assert"
import { assert, describe, it } from "@effect/vitest"
import { Decider } from "@facta/core"
import { Properties } from "@facta/testing"
import { Arbitrary, Cause, Effect, Exit, Result, Schema } from "effect"

const Deposit = Schema.TaggedStruct("Deposit", { amount: Schema.Int })
const Withdraw = Schema.TaggedStruct("Withdraw", { amount: Schema.Int })
const Command = Schema.Union([Deposit, Withdraw])
type Command = typeof Command.Type

const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Int })
const Withdrawn = Schema.TaggedStruct("Withdrawn", { amount: Schema.Int })
type Event = typeof Deposited.Type | typeof Withdrawn.Type

class InvalidAmount extends Schema.TaggedError<InvalidAmount>()("InvalidAmount", { amount: Schema.Number }) {}
class Overdraft extends Schema.TaggedError<Overdraft>()("Overdraft", {
  balance: Schema.Int,
  requested: Schema.Int
}) {}

/** A wallet that lets a withdrawal overdraw the balance by up to `overdraft`. */
const makeWallet = (overdraft: number) =>
  Decider.make({
    initialState: 0,
    decide: (command: Command, balance: number): Effect.Effect<ReadonlyArray<Event>, InvalidAmount | Overdraft> => {
      if (command.amount <= 0) return Effect.fail(new InvalidAmount({ amount: command.amount }))
      if (command._tag === "Deposit") return Effect.succeed([Deposited.make({ amount: command.amount })])
      return command.amount > balance + overdraft
        ? Effect.fail(new Overdraft({ balance, requested: command.amount }))
        : Effect.succeed([Withdrawn.make({ amount: command.amount })])
    },
    evolve: (balance: number, event: Event) =>
      event._tag === "Deposited" ? balance + event.amount : balance - event.amount
  })

const wallet = makeWallet(0)
const leakyWallet = makeWallet(5)

const deposit = (amount: number): Command => Deposit.make({ amount })
const withdraw = (amount: number): Command => Withdraw.make({ amount })

/** Runs a check that must die with an AssertionError and returns its message. */
const failureMessage = Effect.fnUntraced(function* (check: Effect.Effect<void>) {
  const exit = yield* Effect.exit(check)
  if (Exit.isSuccess(exit)) return assert.fail("the check should have failed")
  const defect = Cause.findDefect(exit.cause)
  if (Result.isFailure(defect)) return assert.fail(`the check should have died, got ${Cause.pretty(exit.cause)}`)
  assert.instanceOf(defect.success, AssertionError)
  return (defect.success as AssertionError).message
})

const replayToken = (message: string): string => {
  const match = /^Replay: (.+)$/m.exec(message)
  if (match === null) return assert.fail(`no replay token in ${message}`)
  return match[1]!
}

describe("Properties.commands", () => {
  it.effect("generates sequences of commands that fit the schema, within the length bounds", () =>
    Effect.gen(function* () {
      const samples = yield* Arbitrary.sampleEffect(Properties.commands(Command, { minLength: 2, maxLength: 8 }), {
        count: 200,
        seed: 7,
        size: 30
      })
      const isCommand = Schema.is(Command)
      for (const sequence of samples) {
        assert.isAtLeast(sequence.length, 2)
        assert.isAtMost(sequence.length, 8)
        for (const command of sequence) assert.isTrue(isCommand(command), `not a command: ${JSON.stringify(command)}`)
      }
      assert.isTrue(
        samples.some((s) => s.length === 8),
        "the longest allowed sequences are generated"
      )
      const tags = new Set(samples.flat().map((command) => command._tag))
      assert.deepStrictEqual([...tags].sort(), ["Deposit", "Withdraw"])
    })
  )

  it.effect("generates empty sequences without a minimum", () =>
    Effect.gen(function* () {
      const samples = yield* Arbitrary.sampleEffect(Properties.commands(Command), { count: 100, seed: 1 })
      assert.isTrue(samples.some((s) => s.length === 0))
    })
  )
})

describe("Properties.replay", () => {
  it.effect("folds accepted events and records rejected commands, which change nothing", () =>
    Effect.gen(function* () {
      const replayed = yield* Properties.replay(wallet, [deposit(10), withdraw(25), withdraw(4), deposit(-1)])
      assert.strictEqual(replayed.state, 6)
      assert.deepStrictEqual(replayed.events, [Deposited.make({ amount: 10 }), Withdrawn.make({ amount: 4 })])
      assert.deepStrictEqual(replayed.rejected, [
        {
          _tag: "Rejected",
          index: 1,
          command: withdraw(25),
          error: new Overdraft({ balance: 10, requested: 25 }),
          state: 10
        },
        { _tag: "Rejected", index: 3, command: deposit(-1), error: new InvalidAmount({ amount: -1 }), state: 6 }
      ])
      assert.deepStrictEqual(
        replayed.history.map((step) => [step.index, step._tag, step.state]),
        [
          [0, "Accepted", 10],
          [1, "Rejected", 10],
          [2, "Accepted", 6],
          [3, "Rejected", 6]
        ]
      )
    })
  )

  it.effect("starts from the initial state", () =>
    Effect.gen(function* () {
      const replayed = yield* Properties.replay(wallet, [])
      assert.deepStrictEqual(replayed, { state: 0, events: [], rejected: [], history: [] })
    })
  )

  it.effect("dies when decide dies", () =>
    Effect.gen(function* () {
      const exploding = Decider.make({
        ...wallet,
        decide: (command: Command, balance: number) =>
          command._tag === "Withdraw" ? Effect.die(new Error("kaboom")) : wallet.decide(command, balance)
      })
      const exit = yield* Effect.exit(Properties.replay(exploding, [deposit(1), withdraw(1)]))
      assert.isTrue(Exit.isFailure(exit) && Cause.hasDies(exit.cause))
    })
  )
})

describe("Properties.invariant", () => {
  it.effect("succeeds when the invariant holds for every generated sequence", () =>
    Properties.invariant(wallet, Properties.commands(Command, { maxLength: 30 }), (balance) => balance >= 0, {
      runs: 200,
      size: 30
    })
  )

  it.effect("dies with the shrunk counterexample, the failing step and a replay token when it is false", () =>
    Effect.gen(function* () {
      const message = yield* failureMessage(
        Properties.invariant(leakyWallet, Properties.commands(Command, { maxLength: 30 }), (balance) => balance >= 0, {
          runs: 200,
          size: 30,
          seed: 42,
          label: "balance >= 0"
        })
      )
      assert.include(message, 'Properties.invariant: the invariant "balance >= 0" does not hold')
      assert.match(message, /Property falsified after \d+ run\(s\) and \d+ shrink\(s\)/)
      // shrunk to the single withdrawal that overdraws the empty wallet by 1
      assert.include(message, 'Shrunk input: [{\n  "_tag": "Withdraw",\n  "amount": 1\n}]')
      assert.include(message, "the invariant is false after command #0 (1 of 1)")
      assert.include(message, "state: -1")
      assert.include(message, "#0 { _tag: 'Withdraw', amount: 1 } -> accepted: [ { _tag: 'Withdrawn', amount: 1 } ]")
      assert.include(message, `pass { replay: ${JSON.stringify(replayToken(message))} } in the options`)
    })
  )

  it.effect("replays a falsified case from its token", () =>
    Effect.gen(function* () {
      const sequences = Properties.commands(Command, { maxLength: 30 })
      const first = yield* failureMessage(
        Properties.invariant(leakyWallet, sequences, (balance) => balance >= 0, { runs: 200, size: 30 })
      )
      const token = replayToken(first)
      const again = yield* failureMessage(
        Properties.invariant(leakyWallet, sequences, (balance) => balance >= 0, { replay: token })
      )
      assert.strictEqual(replayToken(again), token)
      assert.include(again, "the invariant is false")
      // the fixed decider passes the recorded case: the replay no longer reproduces the failure
      const fixed = yield* failureMessage(
        Properties.invariant(wallet, sequences, (balance) => balance >= 0, { replay: token })
      )
      assert.include(fixed, "Properties.invariant: the invariant could not be checked")
      assert.include(fixed, "Property replay failed: PropertyPassed")
    })
  )

  it.effect("checks after every step, not only at the end of the sequence", () =>
    Effect.gen(function* () {
      const message = yield* failureMessage(
        Properties.invariant(wallet, Arbitrary.Constant([deposit(150), withdraw(150)]), (balance) => balance <= 100, {
          runs: 1
        })
      )
      assert.include(message, "Properties.invariant: the invariant does not hold")
      assert.include(message, "the invariant is false after command #0 (1 of 2)")
      assert.include(message, "state: 150")
    })
  )

  it.effect("checks the initial state", () =>
    Effect.gen(function* () {
      const message = yield* failureMessage(
        Properties.invariant(
          Decider.make({ ...wallet, initialState: -1 }),
          Arbitrary.Constant([deposit(5)]),
          (balance) => balance >= 0,
          { runs: 1 }
        )
      )
      assert.include(message, "the invariant is false on the initial state, before any command")
      assert.include(message, "history: (no commands)")
    })
  )

  it.effect("passes the state and the history so far, rejected commands included, after each step", () =>
    Effect.gen(function* () {
      const calls: Array<{ readonly state: number; readonly steps: ReadonlyArray<string> }> = []
      yield* Properties.invariant(
        wallet,
        Arbitrary.Constant([deposit(3), withdraw(5), withdraw(2)]),
        (state, history) => {
          calls.push({ state, steps: history.map((step) => `${step.index}:${step._tag}`) })
          return true
        },
        { runs: 1 }
      )
      assert.deepStrictEqual(calls, [
        { state: 0, steps: [] },
        { state: 3, steps: ["0:Accepted"] },
        { state: 3, steps: ["0:Accepted", "1:Rejected"] },
        { state: 1, steps: ["0:Accepted", "1:Rejected", "2:Accepted"] }
      ])
    })
  )

  it.effect("dies when no sequence can be generated", () =>
    Effect.gen(function* () {
      const none = Arbitrary.filter(Properties.commands(Command), () => false)
      const message = yield* failureMessage(Properties.invariant(wallet, none, () => true, { runs: 10, seed: 1 }))
      assert.include(message, "Properties.invariant: the invariant could not be checked")
      assert.include(message, "Property exhausted after 0 run(s)")
    })
  )

  it.effect("reports an invariant that throws", () =>
    Effect.gen(function* () {
      const message = yield* failureMessage(
        Properties.invariant(
          wallet,
          Arbitrary.Constant([deposit(1)]),
          (balance) => {
            if (balance > 0) throw new Error("no money allowed")
            return true
          },
          { runs: 1 }
        )
      )
      assert.include(message, "the invariant threw after command #0 (1 of 1): Error: no money allowed")
    })
  )

  it.effect("reports a decider that dies", () =>
    Effect.gen(function* () {
      const exploding = Decider.make({
        ...wallet,
        decide: (command: Command, balance: number) =>
          command._tag === "Withdraw" ? Effect.die(new Error("kaboom")) : wallet.decide(command, balance)
      })
      const message = yield* failureMessage(
        Properties.invariant(exploding, Properties.commands(Command, { maxLength: 10 }), () => true, { seed: 3 })
      )
      assert.include(message, "decide or evolve died at command #0 { _tag: 'Withdraw', amount: ")
      assert.include(message, "kaboom")
    })
  )
})
