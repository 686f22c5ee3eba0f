/**
 * A decider is an aggregate's behaviour as three pure pieces: the state a stream starts in, `decide` (which turns a
 * command and the current state into new events or a typed domain error) and `evolve` (which folds one event into
 * the state). No I/O and no services: a decider is tested with plain values.
 *
 * @since 0.1.0
 */
import { Effect } from "effect"

/**
 * The decider of an aggregate.
 *
 * `isTerminal` marks states after which no command can succeed any more (a closed account, a cancelled order);
 * command handling reports it and snapshots such a state at once, since its stream will not grow.
 *
 * @category models
 * @since 0.1.0
 */
export interface Decider<in Command, in out Event, in out State, out Error = never> {
  readonly initialState: State
  readonly decide: (command: Command, state: State) => Effect.Effect<ReadonlyArray<Event>, Error>
  readonly evolve: (state: State, event: Event) => State
  readonly isTerminal?: ((state: State) => boolean) | undefined
}

/**
 * Any decider.
 *
 * @category models
 * @since 0.1.0
 */
// biome-ignore lint/suspicious/noExplicitAny: the variance of every parameter has to be erased here
export type Any = Decider<any, any, any, any>

/**
 * The parts of a decider's type.
 *
 * @since 0.1.0
 */
export declare namespace Decider {
  export type Command<D> = D extends Decider<infer C, infer _E, infer _S, infer _X> ? C : never
  export type Event<D> = D extends Decider<infer _C, infer E, infer _S, infer _X> ? E : never
  export type State<D> = D extends Decider<infer _C, infer _E, infer S, infer _X> ? S : never
  export type Error<D> = D extends Decider<infer _C, infer _E, infer _S, infer X> ? X : never
}

/**
 * Defines a decider; the identity function, there for inference.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Decider } from "@facta/core"
 *
 * type Event = { readonly _tag: "Incremented" }
 * const counter = Decider.make({
 *   initialState: 0,
 *   decide: (_command: "increment", _state: number) => Effect.succeed<ReadonlyArray<Event>>([{ _tag: "Incremented" }]),
 *   evolve: (state: number, _event: Event) => state + 1
 * })
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = <Command, Event, State, Error = never>(
  decider: Decider<Command, Event, State, Error>
): Decider<Command, Event, State, Error> => decider

/**
 * Folds events into a state, starting from `state`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Decider } from "@facta/core"
 *
 * const sum = Decider.make({
 *   initialState: 0,
 *   decide: (n: number) => Effect.succeed([n]),
 *   evolve: (state: number, n: number) => state + n
 * })
 * Decider.fold(sum, sum.initialState, [1, 2, 3]) // 6
 * ```
 *
 * @category combinators
 * @since 0.1.0
 */
export const fold = <Event, State>(
  decider: Pick<Decider<never, Event, State, unknown>, "evolve">,
  state: State,
  events: Iterable<Event>
): State => {
  let current = state
  for (const event of events) current = decider.evolve(current, event)
  return current
}

/**
 * Runs one command against a state: the events `decide` returned and the state after them.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Decider } from "@facta/core"
 *
 * const sum = Decider.make({
 *   initialState: 0,
 *   decide: (n: number) => Effect.succeed([n]),
 *   evolve: (state: number, n: number) => state + n
 * })
 * Effect.runSync(Decider.apply(sum, 1, 2)) // { events: [2], state: 3 }
 * ```
 *
 * @category combinators
 * @since 0.1.0
 */
export const apply = <Command, Event, State, Error>(
  decider: Decider<Command, Event, State, Error>,
  state: State,
  command: Command
): Effect.Effect<{ readonly events: ReadonlyArray<Event>; readonly state: State }, Error> =>
  Effect.map(decider.decide(command, state), (events) => ({ events, state: fold(decider, state, events) }))

/**
 * Whether the decider calls `state` terminal.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Decider } from "@facta/core"
 *
 * const door = Decider.make({
 *   initialState: "open" as "open" | "locked",
 *   decide: (_command: "lock", _state: "open" | "locked") => Effect.succeed(["Locked" as const]),
 *   evolve: (_state: "open" | "locked", _event: "Locked"): "open" | "locked" => "locked",
 *   isTerminal: (state: "open" | "locked") => state === "locked"
 * })
 * Decider.isTerminal(door, "locked") // true
 * ```
 *
 * @category predicates
 * @since 0.1.0
 */
export const isTerminal = <State>(decider: Pick<Decider<never, never, State, unknown>, "isTerminal">, state: State) =>
  decider.isTerminal?.(state) ?? false
