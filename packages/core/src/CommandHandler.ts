/**
 * Command handling: load an aggregate (its snapshot, then the events after it), decide, append with the exact
 * expected version, and on a concurrent write catch up with what was appended since and decide again.
 *
 * {@link make} binds an aggregate to the stores once and gives a {@link CommandHandler}: `handle(id, command)` and
 * `load(id)` take the entity id (the part after `Category-`), so a stream of another category can never be passed,
 * and need nothing from the context, so the handler fits in a service. The free {@link handle} and {@link load}
 * take a stream id and the stores from the context, for scripts and tests.
 *
 * Domain errors from `decide` pass through typed and untouched and are never retried. Metadata (actor, correlation
 * and causation ids) flows into every appended event, together with the current trace and span ids.
 *
 * @since 0.1.0
 */
import { Clock, Context, DateTime, Effect, Option, Result, Schedule, Schema, Stream } from "effect"
import type { Aggregate, SnapshotSettings, WithSnapshots } from "./Aggregate.ts"
import * as Decider from "./Decider.ts"
import type { EventId, EventMetadata, RecordedEvent } from "./Event.ts"
import { deriveEventId, makeEventId, mergeMetadata } from "./Event.ts"
import type { EventCodec, EventDecodeError, EventEncodeError } from "./EventCodec.ts"
import { toEventData } from "./EventCodec.ts"
import { EventStore } from "./EventStore.ts"
import type { AppendError, CorruptedEvent, StreamArchived, StreamDeleted } from "./EventStoreError.ts"
import {
  InvalidExpectedVersion,
  isIdempotencyConflict,
  isWrongExpectedVersion,
  WrongExpectedVersion
} from "./EventStoreError.ts"
import * as ExpectedVersion from "./ExpectedVersion.ts"
import type { Position } from "./Position.ts"
import { isDue, SnapshotStore } from "./Snapshot.ts"
import type { StorageError } from "./StorageError.ts"
import type { InvalidStreamId } from "./StreamId.ts"
import * as StreamId from "./StreamId.ts"

/**
 * The retry schedule used when neither a handle call nor its handler gives one: up to 5 retries, exponential from 5 ms, jittered so that
 * contending writers spread out.
 *
 * @example
 * ```ts
 * import { Effect, Schedule } from "effect"
 * import { CommandHandler } from "@facta/core"
 *
 * declare const program: Effect.Effect<void>
 * // retry conflicts up to 10 times, 20 ms apart, for every handle call in `program`
 * const patient = program.pipe(
 *   Effect.provideService(CommandHandler.RetrySchedule, Schedule.spaced("20 millis").pipe(Schedule.upTo({ times: 10 })))
 * )
 * ```
 *
 * @category references
 * @since 0.1.0
 */
export const RetrySchedule = Context.Reference<Schedule.Schedule<unknown, unknown>>(
  "@facta/core/CommandHandler/RetrySchedule",
  { defaultValue: () => Schedule.exponential("5 millis").pipe(Schedule.jittered, Schedule.upTo({ times: 5 })) }
)

/**
 * An aggregate's state at a version.
 *
 * @category models
 * @since 0.1.0
 */
export interface Loaded<State> {
  readonly state: State
  /** The last version folded into `state` (0 for a stream that does not exist). */
  readonly version: number
  /** How many events were folded on top of the snapshot (all of them without one). */
  readonly folded: number
}

/**
 * What a handled command did. A command redelivered with the same `causedBy` after its events were stored gets the
 * original result back: the events, version and positions of the first append and the state right after it.
 *
 * @category models
 * @since 0.1.0
 */
export interface CommandResult<State, Event> {
  /** The state after the command's events. */
  readonly state: State
  /** The events `decide` returned, now stored (empty when the command changed nothing). */
  readonly events: ReadonlyArray<Event>
  /** The stream version after the command: the version to expect next. */
  readonly version: number
  /** The global position of each appended event. */
  readonly positions: ReadonlyArray<Position>
  /** Whether the state is terminal for the decider. */
  readonly terminal: boolean
}

/**
 * Every failure of loading an aggregate. An archived or deleted stream cannot be loaded for a command (it takes no
 * more events); a load with `includeArchived` still reads an archived one, as history.
 *
 * @category errors
 * @since 0.1.0
 */
export type LoadError =
  | StorageError
  | StreamArchived
  | StreamDeleted
  | CorruptedEvent
  | InvalidStreamId
  | EventDecodeError

/**
 * Every failure of handling a command, besides the decider's own domain errors.
 *
 * @category errors
 * @since 0.1.0
 */
export type HandleError = LoadError | AppendError | EventEncodeError

/**
 * How to load an aggregate.
 *
 * - `asOf`: the state as it was after version `version`, or at the instant `at` (every event recorded at or before
 *   it); without it, the current state;
 * - `includeArchived`: read an archived stream too (history, audit); otherwise an archived stream fails with
 *   `StreamArchived`, as it takes no more commands.
 *
 * @category models
 * @since 0.1.0
 */
export interface LoadOptions {
  readonly asOf?: { readonly version: number } | { readonly at: DateTime.DateTime } | undefined
  readonly includeArchived?: boolean | undefined
}

/**
 * How to handle one command.
 *
 * @category models
 * @since 0.1.0
 */
export interface HandleOptions {
  /** Merged into every appended event's metadata (over the current trace and span ids). */
  readonly metadata?: EventMetadata | undefined
  /** The schedule of retries on a conflict; default the handler's, else {@link RetrySchedule}. */
  readonly retry?: Schedule.Schedule<unknown, unknown> | undefined
  /**
   * Decide only on the state at this version (an HTTP `If-Match`, say): a stream at any other version fails with
   * `WrongExpectedVersion` at once, and a conflict is not retried, since a retry would decide on another state. A
   * number that is not a version (negative, fractional, NaN, infinite, above `ExpectedVersion.maxVersion`) fails
   * with `InvalidExpectedVersion` before anything is loaded.
   */
  readonly expectedVersion?: number | undefined
  /**
   * The event id of the event that caused this command (a reactor's or process manager's input). The appended
   * events' ids are derived from it (`Event.deriveEventId(causedBy, "<stream id>/<index>")`) and it becomes their
   * `causationId`, so that handling the same event again appends nothing twice: a redelivery after the first append
   * landed gets the original result back, even when the stream moved on meanwhile or `decide` would now refuse.
   * One cause drives at most one command per stream; derive a distinct cause for a second one.
   */
  readonly causedBy?: string | undefined
  /**
   * The stream is known to be new (its id was just generated): skip the load, decide on the initial state and
   * append with `ExpectedVersion.noStream`. When the stream exists after all, that is a conflict like any other:
   * retried on the schedule (catching up with the stream's events), or returned as `WrongExpectedVersion`.
   */
  readonly assumeEmpty?: boolean | undefined
}

/**
 * A command handler bound to one aggregate and to the stores: `handle` and `load` take the entity id (`"42"` for
 * stream `Order-42`) and need nothing from the context. Built by {@link make}; a plain value to keep in a service.
 *
 * @category models
 * @since 0.1.0
 */
export interface CommandHandler<Command, Event extends { readonly _tag: string }, State, Error> {
  readonly aggregate: Aggregate<Command, Event, State, Error>
  /** Handles one command for the entity `id`: load, decide, append, catch up and decide again on a conflict. */
  readonly handle: (
    id: string,
    command: Command,
    options?: HandleOptions
  ) => Effect.Effect<CommandResult<State, Event>, Error | HandleError>
  /** Loads the entity `id`: its current state, or its state as of a version or an instant. */
  readonly load: (id: string, options?: LoadOptions) => Effect.Effect<Loaded<State>, LoadError>
}

/**
 * How a handler handles every command unless a call says otherwise.
 *
 * @category models
 * @since 0.1.0
 */
export interface MakeOptions {
  /** The schedule of retries on a conflict; default {@link RetrySchedule}. */
  readonly retry?: Schedule.Schedule<unknown, unknown> | undefined
}

// the stores a handler captured; `snapshots` is absent for an aggregate without snapshots
interface Stores {
  readonly events: EventStore["Service"]
  readonly snapshots: SnapshotStore["Service"] | undefined
}

// a load reads the whole rest of a stream: few round trips beat small pages
const loadBatchSize = 10_000

const loadSnapshot = Effect.fnUntraced(function* <State>(
  settings: SnapshotSettings<State> | undefined,
  stores: Stores,
  streamId: string
) {
  if (settings === undefined || stores.snapshots === undefined) return Option.none<Start<State>>()
  const snapshot = yield* stores.snapshots.load(streamId)
  if (Option.isNone(snapshot) || snapshot.value.stateVersion !== settings.version) return Option.none<Start<State>>()
  const decoded = Schema.decodeUnknownExit(Schema.toCodecJson(settings.schema))(snapshot.value.state)
  if (decoded._tag === "Failure") {
    yield* Effect.logWarning("Ignoring a snapshot that no longer decodes", { streamId })
    return Option.none<Start<State>>()
  }
  return Option.some<Start<State>>({ state: decoded.value, version: snapshot.value.version })
})

interface Start<State> {
  readonly state: State
  readonly version: number
}

/** The events after `start`, folded with the decider (the store's fold: no envelope per event). */
const fromVersion = <Command, Event extends { readonly _tag: string }, State, Error>(
  aggregate: Aggregate<Command, Event, State, Error>,
  store: EventStore["Service"],
  streamId: string,
  start: Start<State>,
  options?: { readonly to?: number | undefined; readonly includeArchived?: boolean | undefined }
): Effect.Effect<Loaded<State>, LoadError> => {
  const { decodeStored } = aggregate.events
  const { evolve } = aggregate.decider
  // one accumulator, updated in place: it never escapes before the fold ends
  const loaded = { state: start.state, version: start.version, folded: 0 }
  return store
    .fold(
      streamId,
      loaded,
      (acc, event) => {
        const decoded = decodeStored(event.type, event.schemaVersion, event.data)
        if (Result.isFailure(decoded)) return Result.fail(event.version)
        acc.state = evolve(acc.state, decoded.success)
        acc.version = event.version
        acc.folded++
        return Result.succeed(acc)
      },
      { from: start.version + 1, to: options?.to, includeArchived: options?.includeArchived, batchSize: loadBatchSize }
    )
    .pipe(
      Effect.catchTag("StreamNotFound", () => Effect.succeed(loaded)),
      // an event that does not decode: read it whole for an error that names it
      Effect.catchIf(
        (failure): failure is number => typeof failure === "number",
        (version) => undecodable(store, aggregate.events, streamId, version)
      )
    )
}

const undecodable = <A extends { readonly _tag: string }>(
  store: EventStore["Service"],
  codec: EventCodec<A>,
  streamId: string,
  version: number
): Effect.Effect<never, LoadError> =>
  store.read(streamId, { from: version, to: version, includeArchived: true }).pipe(
    Stream.mapEffect(codec.decode),
    Stream.runDrain,
    // streams are never removed (a deleted one leaves its tombstone), and this one was just read
    Effect.catchTag("StreamNotFound", (error) => Effect.die(error)),
    Effect.andThen(Effect.die(new Error(`${streamId}@${version} did not decode in a fold but did when read whole`)))
  )

/** Loads a stream: current, or as of a version or an instant. */
const loadStream = Effect.fnUntraced(function* <Command, Event extends { readonly _tag: string }, State, Error>(
  aggregate: Aggregate<Command, Event, State, Error>,
  stores: Stores,
  streamId: string,
  options?: LoadOptions
): Effect.fn.Return<Loaded<State>, LoadError> {
  const initial: Start<State> = { state: aggregate.decider.initialState, version: 0 }
  const asOf = options?.asOf
  const includeArchived = options?.includeArchived
  if (asOf !== undefined && "at" in asOf) {
    return yield* stores.events.read(streamId, { includeArchived, batchSize: loadBatchSize }).pipe(
      Stream.catchTag("StreamNotFound", () => Stream.empty),
      Stream.takeWhile((event) => DateTime.isLessThanOrEqualTo(event.recordedAt, asOf.at)),
      Stream.mapEffect(aggregate.events.decode),
      Stream.runFold(
        (): Loaded<State> => ({ ...initial, folded: 0 }),
        (acc, event) => ({
          state: aggregate.decider.evolve(acc.state, event.data),
          version: event.version,
          folded: acc.folded + 1
        })
      )
    )
  }
  const to = asOf?.version
  if (to !== undefined && to <= 0) return { ...initial, folded: 0 }
  const snapshot = yield* loadSnapshot(aggregate.snapshot, stores, streamId)
  const start = Option.getOrElse(
    Option.filter(snapshot, (s) => to === undefined || s.version <= to),
    () => initial
  )
  return yield* fromVersion(aggregate, stores.events, streamId, start, { to, includeArchived })
})

const currentTrace = Effect.map(Effect.option(Effect.currentSpan), (span) =>
  Option.match(span, {
    onNone: (): EventMetadata => ({}),
    onSome: (s): EventMetadata => ({ traceId: s.traceId, spanId: s.spanId })
  })
)

const saveSnapshot = Effect.fnUntraced(function* <State>(
  settings: SnapshotSettings<State>,
  snapshots: SnapshotStore["Service"],
  streamId: string,
  state: State,
  version: number
) {
  const encoded = yield* Schema.encodeEffect(Schema.toCodecJson(settings.schema))(state)
  const takenAt = DateTime.makeUnsafe(yield* Clock.currentTimeMillis)
  yield* snapshots.save({ streamId, version, stateVersion: settings.version, state: encoded, takenAt })
})

/** The id of the `index`th event a command caused by `causedBy` appends to `streamId`. */
const causedEventId = (causedBy: string, streamId: string, index: number): Effect.Effect<EventId> =>
  deriveEventId(causedBy, `${streamId}/${index}`)

/**
 * The events a command caused by `causedBy` appended to the stream earlier: those from the one with the first
 * derived id on, as long as their ids are the derived ones. Empty when nothing was appended.
 */
const appendedBefore = Effect.fnUntraced(function* (
  store: EventStore["Service"],
  streamId: string,
  causedBy: string
): Effect.fn.Return<ReadonlyArray<RecordedEvent>, LoadError> {
  const first = yield* causedEventId(causedBy, streamId, 0)
  const candidates = yield* store.read(streamId, { includeArchived: true, batchSize: loadBatchSize }).pipe(
    Stream.catchTag("StreamNotFound", () => Stream.empty),
    Stream.dropWhile((event) => event.eventId.toLowerCase() !== first),
    Stream.runCollect
  )
  const original: Array<RecordedEvent> = []
  for (const event of candidates) {
    if (event.eventId.toLowerCase() !== (yield* causedEventId(causedBy, streamId, original.length))) break
    original.push(event)
  }
  return original
})

/** The result of an append that had landed before: its events, version and positions, and the state right after it. */
const original = Effect.fnUntraced(function* <Command, Event extends { readonly _tag: string }, State, Error>(
  aggregate: Aggregate<Command, Event, State, Error>,
  stores: Stores,
  streamId: string,
  appended: {
    readonly events: ReadonlyArray<Event>
    readonly version: number
    readonly positions: ReadonlyArray<Position>
  }
): Effect.fn.Return<CommandResult<State, Event>, LoadError> {
  const { state } = yield* loadStream(aggregate, stores, streamId, {
    asOf: { version: appended.version },
    includeArchived: true
  })
  return { ...appended, state, terminal: Decider.isTerminal(aggregate.decider, state) }
})

/** The one implementation of handling a command, behind the bound and the free `handle`. */
const handleStream = Effect.fn("CommandHandler.handle")(function* <
  Command,
  Event extends { readonly _tag: string },
  State,
  Error
>(
  aggregate: Aggregate<Command, Event, State, Error>,
  stores: Stores,
  streamId: string,
  command: Command,
  options: HandleOptions | undefined,
  defaultRetry: Schedule.Schedule<unknown, unknown> | undefined
): Effect.fn.Return<CommandResult<State, Event>, Error | HandleError> {
  const expectedVersion = options?.expectedVersion
  if (expectedVersion !== undefined && !ExpectedVersion.isValid(ExpectedVersion.exact(expectedVersion))) {
    return yield* new InvalidExpectedVersion({
      streamId,
      version: typeof expectedVersion === "number" ? expectedVersion : Number.NaN
    })
  }
  const causedBy = options?.causedBy
  const assumeEmpty = options?.assumeEmpty === true
  const metadata = mergeMetadata(
    mergeMetadata(yield* currentTrace, causedBy === undefined ? undefined : { causationId: causedBy }),
    options?.metadata
  )
  const schedule = options?.retry ?? defaultRetry ?? (yield* RetrySchedule)
  const { decider } = aggregate
  // the state decided on: loaded (or assumed empty) once, then caught up with the events appended since each conflict
  let known: Loaded<State> | undefined = assumeEmpty
    ? { state: decider.initialState, version: 0, folded: 0 }
    : undefined
  let stale = false
  // whether `decide` refused: with a cause, that may be a redelivery deciding on the state its first delivery made
  let refused = false
  const attempt = Effect.gen(function* () {
    if (known === undefined) {
      known = yield* loadStream(aggregate, stores, streamId)
    } else if (stale) {
      const caughtUp = yield* fromVersion(aggregate, stores.events, streamId, known)
      known = { state: caughtUp.state, version: caughtUp.version, folded: known.folded + caughtUp.folded }
    }
    stale = false
    const loaded = known
    if (expectedVersion !== undefined && loaded.version !== expectedVersion) {
      return yield* new WrongExpectedVersion({
        streamId,
        expected: ExpectedVersion.exact(expectedVersion),
        actual: loaded.version
      })
    }
    const events = yield* decider
      .decide(command, loaded.state)
      .pipe(Effect.tapError(() => Effect.sync(() => (refused = true))))
    const state = Decider.fold(decider, loaded.state, events)
    const terminal = Decider.isTerminal(decider, state)
    if (events.length === 0) {
      return { result: { state, events, version: loaded.version, positions: [], terminal }, loaded, fresh: false }
    }
    const data = yield* Effect.forEach(events, (event, index) =>
      Effect.flatMap(causedBy === undefined ? makeEventId : causedEventId(causedBy, streamId, index), (eventId) =>
        toEventData(aggregate.events, event, { eventId })
      )
    )
    stale = true
    const appended = yield* stores.events.append(streamId, data, {
      expectedVersion:
        assumeEmpty && loaded.version === 0 ? ExpectedVersion.noStream : ExpectedVersion.exact(loaded.version),
      metadata
    })
    stale = false
    const version = appended.nextExpectedVersion
    // an append that landed before (the same derived ids): the store answered with the original result
    if (version !== loaded.version + events.length) {
      const result = yield* original(aggregate, stores, streamId, { events, version, positions: appended.positions })
      return { result, loaded, fresh: false }
    }
    return { result: { state, events, version, positions: appended.positions, terminal }, loaded, fresh: true }
  })
  const outcome = yield* Effect.retry(attempt, {
    schedule,
    while: (error) => isWrongExpectedVersion(error) && expectedVersion === undefined
  }).pipe(
    Effect.catch((error) =>
      causedBy === undefined || !(refused || isIdempotencyConflict(error))
        ? Effect.fail(error)
        : Effect.flatMap(appendedBefore(stores.events, streamId, causedBy), (stored) =>
            stored.length === 0
              ? Effect.fail(error)
              : Effect.flatMap(Effect.forEach(stored, aggregate.events.decode), (decoded) =>
                  Effect.map(
                    original(aggregate, stores, streamId, {
                      events: decoded.map((event) => event.data),
                      version: stored[stored.length - 1]!.version,
                      positions: stored.map((event) => event.position)
                    }),
                    (result) => ({ result, loaded: undefined, fresh: false })
                  )
                )
          )
    )
  )
  const { result, loaded, fresh } = outcome
  const settings = aggregate.snapshot
  if (
    fresh &&
    loaded !== undefined &&
    settings !== undefined &&
    stores.snapshots !== undefined &&
    isDue({
      every: settings.every,
      versionBefore: loaded.version,
      versionAfter: result.version,
      folded: loaded.folded,
      terminal: result.terminal
    })
  ) {
    yield* saveSnapshot(settings, stores.snapshots, streamId, result.state, result.version).pipe(
      Effect.catchCause((cause) => Effect.logWarning("Could not save a snapshot", { streamId, cause }))
    )
  }
  return result
})

const bind = <Command, Event extends { readonly _tag: string }, State, Error>(
  aggregate: Aggregate<Command, Event, State, Error>,
  stores: Stores,
  options?: MakeOptions
): CommandHandler<Command, Event, State, Error> => ({
  aggregate,
  handle: (id, command, handleOptions) =>
    Effect.flatMap(StreamId.make(aggregate.category, id), (streamId) =>
      handleStream(aggregate, stores, streamId, command, handleOptions, options?.retry)
    ),
  load: (id, loadOptions) =>
    Effect.flatMap(StreamId.make(aggregate.category, id), (streamId) =>
      loadStream(aggregate, stores, streamId, loadOptions)
    )
})

/**
 * Binds an aggregate to the stores of the context, once: the {@link CommandHandler} it returns needs nothing more,
 * so it goes into a service built in a layer. Its `handle` and `load` take the entity id and build the stream id
 * from the aggregate's category.
 *
 * An aggregate with snapshot settings (an `Aggregate.WithSnapshots`) needs a `SnapshotStore` as well
 * (`Snapshot.layerMemory`, `PgSnapshotStore.layer`, or `Snapshot.layerNone` to keep none): without one, the program
 * does not compile.
 *
 * @example
 * ```ts
 * import { Context, Effect, Layer } from "effect"
 * import { Aggregate, CommandHandler, EventStore } from "@facta/core"
 *
 * type Pay = { readonly _tag: "Pay"; readonly amount: number }
 * declare const Order: Aggregate.Aggregate<Pay, { readonly _tag: "Paid" }, { readonly paid: number }, never>
 *
 * // a service whose methods need nothing: the handler captured the store when the layer was built
 * class Orders extends Context.Service<Orders, { readonly pay: (id: string, amount: number) => Effect.Effect<void> }>()(
 *   "Orders"
 * ) {
 *   static readonly layer = Layer.effect(
 *     Orders,
 *     Effect.gen(function* () {
 *       const handler = yield* CommandHandler.make(Order)
 *       return Orders.of({
 *         pay: (id, amount) => handler.handle(id, { _tag: "Pay", amount }).pipe(Effect.asVoid, Effect.orDie) // Order-<id>
 *       })
 *     })
 *   )
 * }
 * const live = Orders.layer.pipe(Layer.provide(EventStore.layerMemory))
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export function make<Command, Event extends { readonly _tag: string }, State, Error>(
  aggregate: WithSnapshots<Command, Event, State, Error>,
  options?: MakeOptions
): Effect.Effect<CommandHandler<Command, Event, State, Error>, never, EventStore | SnapshotStore>
export function make<Command, Event extends { readonly _tag: string }, State, Error>(
  aggregate: Aggregate<Command, Event, State, Error>,
  options?: MakeOptions
): Effect.Effect<CommandHandler<Command, Event, State, Error>, never, EventStore>
export function make<Command, Event extends { readonly _tag: string }, State, Error>(
  aggregate: Aggregate<Command, Event, State, Error>,
  options?: MakeOptions
): Effect.Effect<CommandHandler<Command, Event, State, Error>, never, EventStore | SnapshotStore> {
  return Effect.gen(function* () {
    const events = yield* EventStore
    const snapshots = aggregate.snapshot === undefined ? undefined : yield* SnapshotStore
    return bind(aggregate, { events, snapshots }, options)
  })
}

/** The stores of the context, for the free functions: a snapshot store when there is one. */
const contextStores: Effect.Effect<Stores, never, EventStore> = Effect.gen(function* () {
  const events = yield* EventStore
  const snapshots = yield* Effect.serviceOption(SnapshotStore)
  return { events, snapshots: Option.getOrUndefined(snapshots) }
})

/**
 * Loads an aggregate by stream id, with the stores of the context (a `SnapshotStore` is used when there is one):
 * its current state (its snapshot when one fits, then the events after it), or with `asOf` its state as of a
 * version or an instant. The bound {@link CommandHandler}'s `load` takes the entity id instead.
 *
 * @example
 * ```ts
 * import { Aggregate, CommandHandler } from "@facta/core"
 *
 * declare const Order: Aggregate.Any
 * const loaded = CommandHandler.load(Order, "Order-42") // Effect of { state, version, folded }
 * const audit = CommandHandler.load(Order, "Order-42", { includeArchived: true, asOf: { version: 3 } })
 * ```
 *
 * @category loading
 * @since 0.1.0
 */
export const load = <Command, Event extends { readonly _tag: string }, State, Error>(
  aggregate: Aggregate<Command, Event, State, Error>,
  streamId: string,
  options?: LoadOptions
): Effect.Effect<Loaded<State>, LoadError, EventStore> =>
  Effect.flatMap(contextStores, (stores) => loadStream(aggregate, stores, streamId, options))

/**
 * An aggregate's state as it was: after version `version`, or at the instant `at` (every event recorded at or
 * before it), archived streams included. Reads the store; no read model is involved. Superseded by
 * `load(aggregate, streamId, { asOf, includeArchived: true })` and the bound handler's `load(id, { asOf })`.
 *
 * @example
 * ```ts
 * import { DateTime } from "effect"
 * import { Aggregate, CommandHandler } from "@facta/core"
 *
 * declare const Account: Aggregate.Any
 * const atVersion = CommandHandler.loadAsOf(Account, "Account-1", { version: 3 })
 * const atInstant = CommandHandler.loadAsOf(Account, "Account-1", { at: DateTime.makeUnsafe("2026-01-01T00:00:00Z") })
 * ```
 *
 * @category loading
 * @since 0.1.0
 */
export const loadAsOf = <Command, Event extends { readonly _tag: string }, State, Error>(
  aggregate: Aggregate<Command, Event, State, Error>,
  streamId: string,
  asOf: { readonly version: number } | { readonly at: DateTime.DateTime }
): Effect.Effect<Loaded<State>, LoadError, EventStore> => load(aggregate, streamId, { asOf, includeArchived: true })

/**
 * Handles one command on a stream, with the stores of the context (a `SnapshotStore` is used when there is one): a
 * convenience for scripts, tests and examples over the same implementation as the bound {@link CommandHandler}.
 *
 * Load, decide, append with the exact version that was loaded. On `WrongExpectedVersion` (another writer got there
 * first) it folds the events appended since onto the state it has and decides again, on the `retry` schedule
 * (default {@link RetrySchedule}); when the schedule is exhausted the last `WrongExpectedVersion` is returned. A
 * domain error from `decide` ends the call at once. See {@link HandleOptions} for `causedBy`, `assumeEmpty` and
 * `expectedVersion`.
 *
 * A snapshot is saved when the aggregate's policy says so; a failure to save one is logged, never returned, because
 * the command itself has been stored.
 *
 * @example
 * ```ts
 * import { Aggregate, CommandHandler } from "@facta/core"
 *
 * declare const Order: Aggregate.Any
 * const result = CommandHandler.handle(Order, "Order-42", { _tag: "Pay", amount: 100 }, {
 *   metadata: { actor: "user-7", correlationId: "req-1" }
 * })
 * ```
 *
 * @category handling
 * @since 0.1.0
 */
export const handle = <Command, Event extends { readonly _tag: string }, State, Error>(
  aggregate: Aggregate<Command, Event, State, Error>,
  streamId: string,
  command: Command,
  options?: HandleOptions
): Effect.Effect<CommandResult<State, Event>, Error | HandleError, EventStore> =>
  Effect.flatMap(contextStores, (stores) => handleStream(aggregate, stores, streamId, command, options, undefined))
