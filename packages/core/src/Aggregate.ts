/**
 * An aggregate binds a decider to its stream category, its event codec and, optionally, how its state is
 * snapshotted. It is a plain value: command handling and tests take it as an argument.
 *
 * @since 0.1.0
 */
import type { Effect, Schema } from "effect"
import type { Decider } from "./Decider.ts"
import * as EventCodec from "./EventCodec.ts"
import * as StreamId from "./StreamId.ts"

/**
 * How an aggregate's state is snapshotted.
 *
 * - `schema` encodes the state to JSON and back;
 * - `version` is the state schema's version: bump it whenever the state's shape or the decider's `evolve` changes,
 *   and snapshots taken with another version are ignored (the state is folded from the events instead);
 * - `every`: take a snapshot each time the stream crosses a multiple of this many events, and when a load had to
 *   fold at least this many.
 *
 * @category models
 * @since 0.1.0
 */
export interface SnapshotSettings<State> {
  readonly schema: Schema.Codec<State, unknown>
  readonly version: number
  readonly every: number
}

/**
 * An aggregate.
 *
 * @category models
 * @since 0.1.0
 */
export interface Aggregate<Command, Event extends { readonly _tag: string }, State, Error> {
  /** The stream category: the aggregate with id `42` lives in stream `${category}-42`. */
  readonly category: string
  readonly events: EventCodec.EventCodec<Event>
  readonly decider: Decider<Command, Event, State, Error>
  readonly snapshot?: SnapshotSettings<State> | undefined
}

/**
 * An aggregate that declares snapshots: its command handler needs a `SnapshotStore` (`Snapshot.layerNone` when it
 * should keep none), a requirement its type carries so that a missing store does not compile.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Aggregate, Decider } from "@facta/core"
 *
 * const Incremented = Schema.TaggedStruct("Incremented", { by: Schema.Int })
 * const Counter: Aggregate.WithSnapshots<number, typeof Incremented.Type, number, never> = Aggregate.make({
 *   category: "Counter",
 *   events: Incremented,
 *   decider: Decider.make({
 *     initialState: 0,
 *     decide: (by: number) => Effect.succeed([Incremented.make({ by })]),
 *     evolve: (n: number, e: typeof Incremented.Type) => n + e.by
 *   }),
 *   snapshot: { schema: Schema.Int, version: 1, every: 100 }
 * })
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface WithSnapshots<Command, Event extends { readonly _tag: string }, State, Error>
  extends Aggregate<Command, Event, State, Error> {
  readonly snapshot: SnapshotSettings<State>
}

/**
 * Any aggregate.
 *
 * @category models
 * @since 0.1.0
 */
// biome-ignore lint/suspicious/noExplicitAny: the variance of every parameter has to be erased here
export type Any = Aggregate<any, any, any, any>

interface MakeOptions<Command, Event extends { readonly _tag: string }, State, Error, S extends Schema.Top> {
  readonly category: string
  readonly events: EventCodec.EventCodec<Event> | (S & Schema.Codec<Event, S["Encoded"], never, never>)
  readonly decider: Decider<Command, Event, State, Error>
  readonly snapshot?: SnapshotSettings<State> | undefined
}

/**
 * Defines an aggregate from a category, the event schema (or a codec with upcasters), a decider and optional
 * snapshot settings. With snapshot settings the result is a {@link WithSnapshots}: its command handler needs a
 * `SnapshotStore`.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Aggregate, Decider } from "@facta/core"
 *
 * const Incremented = Schema.TaggedStruct("Incremented", { by: Schema.Int })
 * const Counter = Aggregate.make({
 *   category: "Counter",
 *   events: Incremented,
 *   decider: Decider.make({
 *     initialState: 0,
 *     decide: (by: number) => Effect.succeed([Incremented.make({ by })]),
 *     evolve: (n: number, e: typeof Incremented.Type) => n + e.by
 *   })
 * })
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export function make<
  Command,
  Event extends { readonly _tag: string },
  State,
  Error,
  S extends Schema.Top & { readonly Type: Event }
>(
  options: MakeOptions<Command, Event, State, Error, S> & { readonly snapshot: SnapshotSettings<State> }
): WithSnapshots<Command, Event, State, Error>
export function make<
  Command,
  Event extends { readonly _tag: string },
  State,
  Error,
  S extends Schema.Top & { readonly Type: Event }
>(options: MakeOptions<Command, Event, State, Error, S>): Aggregate<Command, Event, State, Error>
export function make<
  Command,
  Event extends { readonly _tag: string },
  State,
  Error,
  S extends Schema.Top & { readonly Type: Event }
>(options: MakeOptions<Command, Event, State, Error, S>): Aggregate<Command, Event, State, Error> {
  if (StreamId.validate(`${options.category}-x`) !== undefined || options.category.includes("-")) {
    throw new Error(`Aggregate.make: ${JSON.stringify(options.category)} is not a valid stream category`)
  }
  if (options.snapshot !== undefined && !(options.snapshot.every >= 1 && Number.isInteger(options.snapshot.every))) {
    throw new Error("Aggregate.make: snapshot.every must be a positive integer")
  }
  const events: EventCodec.EventCodec<Event> = isCodec(options.events)
    ? options.events
    : (EventCodec.make(options.events as never) as unknown as EventCodec.EventCodec<Event>)
  return { category: options.category, events, decider: options.decider, snapshot: options.snapshot }
}

const isCodec = (u: unknown): u is EventCodec.Any =>
  typeof u === "object" && u !== null && "decode" in u && "currentVersion" in u

/**
 * The stream id of one instance of the aggregate.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Aggregate } from "@facta/core"
 *
 * declare const Order: Aggregate.Any
 * const streamId = Aggregate.streamId(Order, "42") // Effect of "Order-42"
 * ```
 *
 * @category utils
 * @since 0.1.0
 */
export const streamId = (
  aggregate: Pick<Any, "category">,
  id: string
): Effect.Effect<StreamId.StreamId, StreamId.InvalidStreamId> => StreamId.make(aggregate.category, id)
