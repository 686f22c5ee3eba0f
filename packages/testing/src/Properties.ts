/**
 * Property testing for deciders on `effect/Arbitrary`: generate command sequences from a Schema, run them through a
 * decider the way command handling would (a command that fails with a domain error is rejected and changes
 * nothing), and check an invariant of the state after every step. A falsified invariant is shrunk to a small
 * command sequence and reported with the steps that led to it and a replay token.
 *
 * @since 0.1.0
 */
import { AssertionError } from "node:assert"
import { Decider } from "@facta/core"
import type { Schema } from "effect"
import { Arbitrary, Cause, Effect, Exit } from "effect"
import { show } from "./internal/show.ts"

/**
 * A command `decide` accepted: the events it returned and the state after them.
 *
 * @example
 * ```ts
 * import type { Properties } from "@facta/testing"
 *
 * type Command = { readonly _tag: "Withdraw"; readonly amount: number }
 * type Event = { readonly _tag: "MoneyWithdrawn"; readonly amount: number }
 * type State = { readonly balance: number }
 * type Error = { readonly _tag: "InsufficientFunds" }
 *
 * const describe = (step: Properties.Step<Command, Event, State, Error>): string =>
 *   step._tag === "Accepted"
 *     ? `#${step.index} accepted, ${step.events.length} event(s), balance ${step.state.balance}`
 *     : `#${step.index} rejected with ${step.error._tag}, balance still ${step.state.balance}`
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Accepted<Command, Event, State> {
  readonly _tag: "Accepted"
  /** The command's position in the sequence, from 0. */
  readonly index: number
  readonly command: Command
  readonly events: ReadonlyArray<Event>
  readonly state: State
}

/**
 * A command `decide` rejected with a domain error; `state` is the state it was decided against, which stays.
 *
 * @example
 * ```ts
 * import type { Properties } from "@facta/testing"
 *
 * type Command = { readonly _tag: "Withdraw"; readonly amount: number }
 * type Event = { readonly _tag: "MoneyWithdrawn"; readonly amount: number }
 * type State = { readonly balance: number }
 * type Error = { readonly _tag: "InsufficientFunds" }
 *
 * const describe = (step: Properties.Step<Command, Event, State, Error>): string =>
 *   step._tag === "Accepted"
 *     ? `#${step.index} accepted, ${step.events.length} event(s), balance ${step.state.balance}`
 *     : `#${step.index} rejected with ${step.error._tag}, balance still ${step.state.balance}`
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Rejected<Command, State, Error> {
  readonly _tag: "Rejected"
  /** The command's position in the sequence, from 0. */
  readonly index: number
  readonly command: Command
  readonly error: Error
  readonly state: State
}

/**
 * One command of a sequence and what became of it.
 *
 * @example
 * ```ts
 * import type { Properties } from "@facta/testing"
 *
 * type Command = { readonly _tag: "Withdraw"; readonly amount: number }
 * type Event = { readonly _tag: "MoneyWithdrawn"; readonly amount: number }
 * type State = { readonly balance: number }
 * type Error = { readonly _tag: "InsufficientFunds" }
 *
 * const describe = (step: Properties.Step<Command, Event, State, Error>): string =>
 *   step._tag === "Accepted"
 *     ? `#${step.index} accepted, ${step.events.length} event(s), balance ${step.state.balance}`
 *     : `#${step.index} rejected with ${step.error._tag}, balance still ${step.state.balance}`
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type Step<Command, Event, State, Error> = Accepted<Command, Event, State> | Rejected<Command, State, Error>

/**
 * A command sequence run through a decider.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import type { Decider } from "@facta/core"
 * import { Properties } from "@facta/testing"
 *
 * declare const counter: Decider.Decider<"increment" | "reset", { readonly _tag: "Incremented" }, number, string>
 * const program = Effect.map(Properties.replay(counter, ["increment", "reset", "increment"]), (replayed) => ({
 *   count: replayed.state,
 *   rejected: replayed.rejected.map((step) => step.index)
 * }))
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Replayed<Command, Event, State, Error> {
  /** The state after every accepted event. */
  readonly state: State
  /** Every accepted event, in order. */
  readonly events: ReadonlyArray<Event>
  /** Every rejected command, in order. */
  readonly rejected: ReadonlyArray<Rejected<Command, State, Error>>
  /** Every command, in order. */
  readonly history: ReadonlyArray<Step<Command, Event, State, Error>>
}

/**
 * An Arbitrary of command sequences whose commands are generated from a Schema (usually the union of an
 * aggregate's commands).
 *
 * **Gotchas**
 *
 * Generated lengths grow with the check's `size` (10 unless the check options say otherwise), whatever `maxLength`
 * allows: for sequences longer than that, raise `size` in the options of {@link invariant} (or in
 * `{ arbitrary: { size } }` of `it.effect.prop`). `size` also widens generated numbers (about ±`size`²).
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Properties } from "@facta/testing"
 *
 * const Deposit = Schema.TaggedStruct("Deposit", { amount: Schema.Int })
 * const Withdraw = Schema.TaggedStruct("Withdraw", { amount: Schema.Int })
 * const sequences = Properties.commands(Schema.Union([Deposit, Withdraw]), { minLength: 1, maxLength: 30 })
 * ```
 *
 * @category arbitraries
 * @since 0.1.0
 */
export const commands = <S extends Schema.Constraint>(
  schema: S,
  options?: {
    readonly minLength?: number | undefined
    readonly maxLength?: number | undefined
  }
): Arbitrary.Arbitrary<Array<S["Type"]>> =>
  Arbitrary.array(Arbitrary.schema(schema), { minLength: options?.minLength, maxLength: options?.maxLength })

const decideStep = <Command, Event, State, Error>(
  decider: Decider.Decider<Command, Event, State, Error>,
  state: State,
  command: Command,
  index: number
): Effect.Effect<Step<Command, Event, State, Error>> =>
  Effect.suspend(() => decider.decide(command, state)).pipe(
    Effect.map(
      (events): Step<Command, Event, State, Error> => ({
        _tag: "Accepted",
        index,
        command,
        events,
        state: Decider.fold(decider, state, events)
      })
    ),
    Effect.catch((error) =>
      Effect.succeed<Step<Command, Event, State, Error>>({ _tag: "Rejected", index, command, error, state })
    )
  )

/**
 * Runs commands through a decider from its initial state: each command is decided against the current state; its
 * events are folded in when it is accepted, and it is recorded as rejected (changing nothing) when `decide` fails
 * with a domain error. A defect of `decide` or `evolve` is a defect of the returned Effect.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import type { Decider } from "@facta/core"
 * import { Properties } from "@facta/testing"
 *
 * type Command = { readonly _tag: "Deposit" | "Withdraw"; readonly amount: number }
 * type Event = { readonly _tag: "MoneyDeposited" | "MoneyWithdrawn"; readonly amount: number }
 * declare const account: Decider.Decider<Command, Event, { readonly balance: number }, { readonly _tag: string }>
 *
 * const program = Effect.gen(function*() {
 *   const { state, events, rejected } = yield* Properties.replay(account, [
 *     { _tag: "Deposit", amount: 10 },
 *     { _tag: "Withdraw", amount: 25 }
 *   ])
 *   // the balance is the signed sum of the accepted events; the withdrawal was rejected
 *   const sum = events.reduce((n, e) => (e._tag === "MoneyDeposited" ? n + e.amount : n - e.amount), 0)
 *   return state.balance === sum && rejected.length === 1
 * })
 * ```
 *
 * @category testing
 * @since 0.1.0
 */
export const replay = Effect.fnUntraced(function* <Command, Event, State, Error>(
  decider: Decider.Decider<Command, Event, State, Error>,
  commands: Iterable<NoInfer<Command>>
): Effect.fn.Return<Replayed<Command, Event, State, Error>> {
  let state = decider.initialState
  const events: Array<Event> = []
  const rejected: Array<Rejected<Command, State, Error>> = []
  const history: Array<Step<Command, Event, State, Error>> = []
  for (const command of commands) {
    const step = yield* decideStep(decider, state, command, history.length)
    history.push(step)
    if (step._tag === "Accepted") {
      events.push(...step.events)
      state = step.state
    } else {
      rejected.push(step)
    }
  }
  return { state, events, rejected, history }
})

/**
 * Options of {@link invariant}: those of `Arbitrary.checkEffect` (`runs`, 100 by default; `seed`; `size`;
 * `maxShrinks`; `replay`, the token a failure reports, to run that case again) and a `label` naming the invariant
 * in failure messages.
 *
 * @example
 * ```ts
 * import type { Properties } from "@facta/testing"
 *
 * const thorough: Properties.InvariantOptions = { runs: 1000, size: 50, seed: 42, label: "balance >= 0" }
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface InvariantOptions extends Arbitrary.CheckOptions {
  readonly label?: string | undefined
}

/**
 * Checks that an invariant holds for every generated command sequence: the sequence is run through the decider as
 * {@link replay} does and `predicate(state, history)` is checked on the initial state and again after every
 * command, accepted or rejected (`history` holds the steps so far, the last one being the command just decided).
 *
 * The Effect succeeds when every run holds. When the invariant is false (or throws, or `decide`/`evolve` dies) it
 * dies with an `AssertionError` naming the shrunk command sequence, the step at which the invariant broke, the
 * state there and the history up to it, and a replay token (pass it as `replay` to run that case again).
 *
 * @example
 * ```ts
 * import { it } from "@effect/vitest"
 * import { Schema } from "effect"
 * import type { Decider } from "@facta/core"
 * import { Properties } from "@facta/testing"
 *
 * const Deposit = Schema.TaggedStruct("Deposit", { amount: Schema.Int })
 * const Withdraw = Schema.TaggedStruct("Withdraw", { amount: Schema.Int })
 * type Command = typeof Deposit.Type | typeof Withdraw.Type
 * declare const account: Decider.Decider<Command, unknown, { readonly balance: number }, unknown>
 *
 * it.effect("the balance never goes negative", () =>
 *   Properties.invariant(
 *     account,
 *     Properties.commands(Schema.Union([Deposit, Withdraw]), { maxLength: 30 }),
 *     (state) => state.balance >= 0,
 *     { runs: 200, size: 30, label: "balance >= 0" }
 *   ))
 * ```
 *
 * @category testing
 * @since 0.1.0
 */
export const invariant = Effect.fnUntraced(function* <Command, Event, State, Error>(
  decider: Decider.Decider<Command, Event, State, Error>,
  commands: Arbitrary.Arbitrary<ReadonlyArray<NoInfer<Command>>>,
  predicate: (state: State, history: ReadonlyArray<Step<Command, Event, State, Error>>) => boolean,
  options?: InvariantOptions
): Effect.fn.Return<void> {
  const { label, ...checkOptions } = options ?? {}
  const property = Effect.fnUntraced(function* (sequence: ReadonlyArray<Command>) {
    const history: Array<Step<Command, Event, State, Error>> = []
    let state = decider.initialState
    yield* holds(predicate, state, history, sequence.length)
    for (const command of sequence) {
      const exit = yield* Effect.exit(decideStep(decider, state, command, history.length))
      if (Exit.isFailure(exit)) {
        if (Cause.hasInterruptsOnly(exit.cause)) return yield* Effect.interrupt
        return yield* Effect.fail(
          new Violation(
            `decide or evolve died at command #${history.length} ${show(command)}:\n${Cause.pretty(exit.cause)}\n` +
              describeHistory(history)
          )
        )
      }
      history.push(exit.value)
      state = exit.value.state
      yield* holds(predicate, state, history, sequence.length)
    }
    return true
  })
  const result = yield* Arbitrary.checkEffect(commands, property, checkOptions)
  const failure = Arbitrary.formatCheckFailure(result)
  if (failure === undefined) return
  const name = label === undefined ? "the invariant" : `the invariant ${JSON.stringify(label)}`
  const message =
    result._tag === "Falsified"
      ? `Properties.invariant: ${name} does not hold\n${failure}\n` +
        `To run this case again, pass { replay: ${JSON.stringify(result.replay)} } in the options.`
      : `Properties.invariant: ${name} could not be checked\n${failure}`
  const error = new AssertionError({ message })
  // Node's `diff` option would be printed as text by runners that look for a rendered diff there (vitest)
  delete (error as { diff?: unknown }).diff
  return yield* Effect.die(error)
})

/** The typed failure of a falsified run: `toString` is what `Arbitrary.formatCheckFailure` prints. */
class Violation {
  readonly description: string
  constructor(description: string) {
    this.description = description
  }
  toString() {
    return this.description
  }
}

const holds = <Command, Event, State, Error>(
  predicate: (state: State, history: ReadonlyArray<Step<Command, Event, State, Error>>) => boolean,
  state: State,
  history: ReadonlyArray<Step<Command, Event, State, Error>>,
  length: number
): Effect.Effect<void, Violation> => {
  const where =
    history.length === 0
      ? "on the initial state, before any command"
      : `after command #${history.length - 1} (${history.length} of ${length})`
  let outcome: boolean
  try {
    outcome = predicate(state, [...history])
  } catch (error) {
    return Effect.fail(
      new Violation(`the invariant threw ${where}: ${show(error)}\nstate: ${show(state)}\n${describeHistory(history)}`)
    )
  }
  return outcome
    ? Effect.void
    : Effect.fail(new Violation(`the invariant is false ${where}\nstate: ${show(state)}\n${describeHistory(history)}`))
}

const describeHistory = (history: ReadonlyArray<Step<unknown, unknown, unknown, unknown>>): string =>
  history.length === 0
    ? "history: (no commands)"
    : "history:\n" +
      history
        .map((step) =>
          step._tag === "Accepted"
            ? `  #${step.index} ${show(step.command)} -> accepted: ${show(step.events)}`
            : `  #${step.index} ${show(step.command)} -> rejected: ${show(step.error)}`
        )
        .join("\n")
