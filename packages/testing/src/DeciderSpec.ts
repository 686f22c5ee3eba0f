/**
 * Given/when/then for deciders: given the events a stream already holds (or a state), when a command is decided,
 * then it yields these events, fails with this domain error, or leaves this state.
 *
 * Every check is an `Effect<void>`. A mismatch is a defect carrying a `node:assert` `AssertionError` whose message
 * names the command, what was expected and what came instead (with a diff), so the checks work inside `it.effect`
 * and with any other runner.
 *
 * @since 0.1.0
 */
import { AssertionError, deepStrictEqual } from "node:assert"
import { Decider } from "@facta/core"
import { Cause, Effect, Result } from "effect"
import { show } from "./internal/show.ts"

/**
 * A decider and the state a scenario starts from.
 *
 * @example
 * ```ts
 * import type { Decider } from "@facta/core"
 * import { DeciderSpec } from "@facta/testing"
 *
 * declare const counter: Decider.Decider<"increment", { readonly _tag: "Incremented" }, number>
 * const given = DeciderSpec.given(counter, [{ _tag: "Incremented" }, { _tag: "Incremented" }])
 * given.state // 2, if `evolve` counts
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Given<Command, Event, State, Error> {
  readonly decider: Decider.Decider<Command, Event, State, Error>
  /** The events the scenario starts from (empty when it starts from a state). */
  readonly events: ReadonlyArray<Event>
  /** The state the scenario starts from: the decider's initial state with `events` folded in. */
  readonly state: State
  /** Decides `command` against {@link Given.state}. */
  readonly when: (command: Command) => When<Command, Event, State, Error>
}

/**
 * A scenario with its command, waiting for the expected outcome.
 *
 * The checks are not named `then` on purpose: an object with a `then` method is a thenable, and returning one from
 * an `async` function or a test would make the runner call it and wait forever.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import type { Decider } from "@facta/core"
 * import { DeciderSpec } from "@facta/testing"
 *
 * declare const counter: Decider.Decider<"increment", { readonly _tag: "Incremented" }, number>
 * const when = DeciderSpec.given(counter).when("increment")
 * const checks = Effect.all([when.thenEvents([{ _tag: "Incremented" }]), when.thenState(1)])
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface When<Command, Event, State, Error> {
  readonly given: Given<Command, Event, State, Error>
  readonly command: Command
  /**
   * Checks that `decide` accepts the command and returns exactly these events (deep, strict equality; order
   * matters). `[]` checks that the command is accepted and changes nothing.
   */
  readonly thenEvents: (events: ReadonlyArray<Event>) => Effect.Effect<void>
  /**
   * Checks that `decide` rejects the command with a domain error equal to `error` (deep, strict equality, so the
   * class and every field count), or, given a predicate, with an error the predicate holds for.
   */
  readonly thenFails: (error: Error | ((error: Error) => boolean)) => Effect.Effect<void>
  /** Checks that `decide` accepts the command and that folding its events leaves `state` (deep, strict equality). */
  readonly thenState: (state: State) => Effect.Effect<void>
}

/**
 * Starts a scenario from the events a stream already holds (none by default).
 *
 * @example
 * ```ts
 * import { it } from "@effect/vitest"
 * import { Decider } from "@facta/core"
 * import { DeciderSpec } from "@facta/testing"
 * import { Effect, Schema } from "effect"
 *
 * class Overdraft extends Schema.TaggedError<Overdraft>()("Overdraft", { balance: Schema.Int }) {}
 * type Event = { readonly _tag: "Deposited" | "Withdrawn"; readonly amount: number }
 * const wallet = Decider.make({
 *   initialState: 0,
 *   decide: (withdraw: number, balance: number) =>
 *     withdraw > balance
 *       ? Effect.fail(new Overdraft({ balance }))
 *       : Effect.succeed<ReadonlyArray<Event>>([{ _tag: "Withdrawn", amount: withdraw }]),
 *   evolve: (balance: number, event: Event) => event._tag === "Deposited" ? balance + event.amount : balance - event.amount
 * })
 *
 * it.effect("withdraws", () =>
 *   Effect.gen(function*() {
 *     const given = DeciderSpec.given(wallet, [{ _tag: "Deposited", amount: 10 }])
 *     yield* given.when(4).thenEvents([{ _tag: "Withdrawn", amount: 4 }])
 *     yield* given.when(4).thenState(6)
 *     yield* given.when(11).thenFails(new Overdraft({ balance: 10 }))
 *     yield* given.when(11).thenFails((error) => error.balance === 10)
 *   }))
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const given = <Command, Event, State, Error>(
  decider: Decider.Decider<Command, Event, State, Error>,
  events: ReadonlyArray<NoInfer<Event>> = []
): Given<Command, Event, State, Error> => {
  const state = Decider.fold(decider, decider.initialState, events)
  return makeGiven(decider, events, state, events.length === 0 ? "no events" : `the events ${show(events)}`)
}

/**
 * Starts a scenario from a state, as a snapshot would give it.
 *
 * @example
 * ```ts
 * import type { Decider } from "@facta/core"
 * import { DeciderSpec } from "@facta/testing"
 *
 * declare const account: Decider.Decider<
 *   { readonly _tag: "Close" },
 *   { readonly _tag: "AccountClosed" },
 *   { readonly status: "Open" | "Closed"; readonly balance: number }
 * >
 * // an Effect<void> that dies with an AssertionError unless closing an empty open account closes it
 * const closes = DeciderSpec.givenState(account, { status: "Open", balance: 0 })
 *   .when({ _tag: "Close" })
 *   .thenState({ status: "Closed", balance: 0 })
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const givenState = <Command, Event, State, Error>(
  decider: Decider.Decider<Command, Event, State, Error>,
  state: NoInfer<State>
): Given<Command, Event, State, Error> => makeGiven(decider, [], state, `the state ${show(state)}`)

/**
 * Binds {@link given} and {@link givenState} to one decider, for a test file about it.
 *
 * @example
 * ```ts
 * import type { Decider } from "@facta/core"
 * import { DeciderSpec } from "@facta/testing"
 *
 * declare const account: Decider.Decider<
 *   { readonly _tag: "Deposit"; readonly amount: number },
 *   { readonly _tag: "MoneyDeposited"; readonly amount: number },
 *   number,
 *   { readonly _tag: "AccountNotOpened" }
 * >
 * const spec = DeciderSpec.make(account)
 * const rejected = spec.given().when({ _tag: "Deposit", amount: 5 }).thenFails((e) => e._tag === "AccountNotOpened")
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = <Command, Event, State, Error>(
  decider: Decider.Decider<Command, Event, State, Error>
): {
  readonly given: (events?: ReadonlyArray<Event>) => Given<Command, Event, State, Error>
  readonly givenState: (state: State) => Given<Command, Event, State, Error>
} => ({
  given: (events) => given(decider, events),
  givenState: (state) => givenState(decider, state)
})

const makeGiven = <Command, Event, State, Error>(
  decider: Decider.Decider<Command, Event, State, Error>,
  events: ReadonlyArray<Event>,
  state: State,
  description: string
): Given<Command, Event, State, Error> => {
  const self: Given<Command, Event, State, Error> = {
    decider,
    events,
    state,
    when: (command) => makeWhen(self, description, command)
  }
  return self
}

type Outcome<Event, Error> =
  | { readonly _tag: "Accepted"; readonly events: ReadonlyArray<Event> }
  | { readonly _tag: "Rejected"; readonly error: Error }

const makeWhen = <Command, Event, State, Error>(
  given: Given<Command, Event, State, Error>,
  description: string,
  command: Command
): When<Command, Event, State, Error> => {
  const header = `DeciderSpec: given ${description},\nwhen ${show(command)}:`

  const decide: Effect.Effect<Outcome<Event, Error>> = Effect.suspend(() =>
    given.decider.decide(command, given.state)
  ).pipe(
    Effect.matchCauseEffect({
      onSuccess: (events) => Effect.succeed<Outcome<Event, Error>>({ _tag: "Accepted", events }),
      onFailure: (cause) => {
        if (Cause.hasInterruptsOnly(cause)) return Effect.interrupt
        const error = Cause.findError(cause)
        if (Result.isSuccess(error) && !Cause.hasDies(cause)) {
          return Effect.succeed<Outcome<Event, Error>>({ _tag: "Rejected", error: error.success })
        }
        return fail(`${header}\ndecide died:\n${Cause.pretty(cause)}`)
      }
    })
  )

  const thenEvents = Effect.fnUntraced(function* (expected: ReadonlyArray<Event>) {
    const outcome = yield* decide
    if (outcome._tag === "Rejected") {
      return yield* fail(
        `${header}\nexpected the events ${show(expected)},\nbut the command was rejected with ${show(outcome.error)}`
      )
    }
    yield* equal(outcome.events, expected, `${header}\nthe events differ from the expected ones`)
  })

  const thenFails = Effect.fnUntraced(function* (expected: Error | ((error: Error) => boolean)) {
    const outcome = yield* decide
    const wanted =
      typeof expected === "function" ? "a failure that satisfies the predicate" : `the failure ${show(expected)}`
    if (outcome._tag === "Accepted") {
      return yield* fail(`${header}\nexpected ${wanted},\nbut the command was accepted with ${show(outcome.events)}`)
    }
    if (typeof expected === "function") {
      if ((expected as (error: Error) => boolean)(outcome.error)) return
      return yield* fail(`${header}\nexpected ${wanted},\nbut the command was rejected with ${show(outcome.error)}`)
    }
    yield* equal(outcome.error, expected, `${header}\nthe command was rejected with another error`)
  })

  const thenState = Effect.fnUntraced(function* (expected: State) {
    const outcome = yield* decide
    if (outcome._tag === "Rejected") {
      return yield* fail(
        `${header}\nexpected the state ${show(expected)},\nbut the command was rejected with ${show(outcome.error)}`
      )
    }
    yield* equal(
      Decider.fold(given.decider, given.state, outcome.events),
      expected,
      `${header}\nthe state after the events ${show(outcome.events)} differs from the expected one`
    )
  })

  return { given, command, thenEvents, thenFails, thenState }
}

const fail = (message: string): Effect.Effect<never> => Effect.die(assertionError(message))

const equal = <A>(actual: A, expected: A, header: string): Effect.Effect<void> =>
  Effect.suspend(() => {
    try {
      deepStrictEqual(actual, expected)
      return Effect.void
    } catch (error) {
      if (!(error instanceof AssertionError)) return Effect.die(error)
      return Effect.die(
        assertionError(`${header}\n${error.message}`, {
          actual: error.actual,
          expected: error.expected,
          operator: error.operator
        })
      )
    }
  })

/**
 * An `AssertionError` whose message says it all, diff included, for every runner. `actual` and `expected` stay for
 * programmatic use; `showDiff: false` keeps runners that render their own diff from them (vitest, chai) from
 * printing a second one, and Node's `diff` option is dropped so that they do not print it as text either.
 */
const assertionError = (
  message: string,
  fields?: { readonly actual: unknown; readonly expected: unknown; readonly operator: string }
): AssertionError => {
  const error = new AssertionError({ message })
  delete (error as { diff?: unknown }).diff
  return Object.assign(error, fields, { showDiff: false })
}
