/**
 * Command handling: load an aggregate (its snapshot, then the events after it), decide, append with the exact
 * expected version, and on a concurrent write reload and decide again.
 *
 * Domain errors from `decide` pass through typed and untouched and are never retried. Metadata (actor, correlation
 * and causation ids) flows into every appended event, together with the current trace and span ids.
 *
 * @since 0.1.0
 */
import { Clock, Context, DateTime, Effect, Option, Result, Schedule, Schema, Stream } from "effect"
import type { Aggregate, SnapshotSettings } from "./Aggregate.ts"
import * as Decider from "./Decider.ts"
import type { EventMetadata } from "./Event.ts"
import { makeEventId, mergeMetadata } from "./Event.ts"
import type { EventCodec, EventDecodeError, EventEncodeError } from "./EventCodec.ts"
import { EventStore } from "./EventStore.ts"
import type { AppendError, CorruptedEvent, StreamArchived, StreamDeleted } from "./EventStoreError.ts"
import { WrongExpectedVersion } from "./EventStoreError.ts"
import { checkExpectedVersion } from "./EventStoreSupport.ts"
import * as ExpectedVersion from "./ExpectedVersion.ts"
import type { Position } from "./Position.ts"
import { isDue, SnapshotStore } from "./Snapshot.ts"
import type { StorageError } from "./StorageError.ts"
import type { InvalidStreamId } from "./StreamId.ts"

/**
 * The retry schedule used when a handle call gives none: up to 5 retries, exponential from 5 ms, jittered so that
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
 * @since 0.1.0
 */
export const RetrySchedule = Context.Reference<Schedule.Schedule<unknown, unknown>>(
  "@facta/core/CommandHandler/RetrySchedule",
  { defaultValue: () => Schedule.exponential("5 millis").pipe(Schedule.jittered, Schedule.upTo({ times: 5 })) }
)

/**
 * An aggregate's state at a version.
 *
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
 * What a handled command did.
 *
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
 * more events); {@link loadAsOf} still reads an archived one, as history.
 *
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
 * @since 0.1.0
 */
export type HandleError = LoadError | AppendError | EventEncodeError

// a load reads the whole rest of a stream: few round trips beat small pages
const loadBatchSize = 10_000

const loadSnapshot = Effect.fnUntraced(function* <State>(settings: SnapshotSettings<State>, streamId: string) {
  const snapshots = yield* Effect.serviceOption(SnapshotStore)
  if (Option.isNone(snapshots)) return Option.none<{ state: State; version: number }>()
  const snapshot = yield* snapshots.value.load(streamId)
  if (Option.isNone(snapshot) || snapshot.value.stateVersion !== settings.version) return Option.none()
  const decoded = Schema.decodeUnknownExit(Schema.toCodecJson(settings.schema))(snapshot.value.state)
  if (decoded._tag === "Failure") {
    yield* Effect.logWarning("Ignoring a snapshot that no longer decodes", { streamId })
    return Option.none()
  }
  return Option.some({ state: decoded.value, version: snapshot.value.version })
})

/** The events after `start`, folded with the decider (the store's fold: no envelope per event). */
const fromVersion = <Command, Event extends { readonly _tag: string }, State, Error>(
  aggregate: Aggregate<Command, Event, State, Error>,
  streamId: string,
  start: { readonly state: State; readonly version: number },
  history?: { readonly to: number }
): Effect.Effect<Loaded<State>, LoadError, EventStore> =>
  EventStore.use((store) => {
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
        { from: start.version + 1, to: history?.to, includeArchived: history !== undefined, batchSize: loadBatchSize }
      )
      .pipe(
        Effect.catchTag("StreamNotFound", () => Effect.succeed(loaded)),
        // an event that does not decode: read it whole for an error that names it
        Effect.catchIf(
          (failure): failure is number => typeof failure === "number",
          (version) => undecodable(store, aggregate.events, streamId, version)
        )
      )
  })

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

/**
 * Loads an aggregate's current state: its snapshot when one fits, then the events after it.
 *
 * @example
 * ```ts
 * import { Aggregate, CommandHandler } from "@facta/core"
 *
 * declare const Order: Aggregate.Any
 * const loaded = CommandHandler.load(Order, "Order-42") // Effect of { state, version, folded }
 * ```
 *
 * @since 0.1.0
 */
export const load = Effect.fnUntraced(function* <Command, Event extends { readonly _tag: string }, State, Error>(
  aggregate: Aggregate<Command, Event, State, Error>,
  streamId: string
): Effect.fn.Return<Loaded<State>, LoadError, EventStore> {
  const initial = { state: aggregate.decider.initialState, version: 0 }
  const snapshot = aggregate.snapshot === undefined ? Option.none() : yield* loadSnapshot(aggregate.snapshot, streamId)
  return yield* fromVersion(
    aggregate,
    streamId,
    Option.getOrElse(snapshot, () => initial)
  )
})

/**
 * An aggregate's state as it was: after version `version`, or at the instant `at` (every event recorded at or
 * before it). Reads the store; no read model is involved.
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
 * @since 0.1.0
 */
export const loadAsOf = Effect.fnUntraced(function* <Command, Event extends { readonly _tag: string }, State, Error>(
  aggregate: Aggregate<Command, Event, State, Error>,
  streamId: string,
  asOf: { readonly version: number } | { readonly at: DateTime.DateTime }
): Effect.fn.Return<Loaded<State>, LoadError, EventStore> {
  const initial = { state: aggregate.decider.initialState, version: 0 }
  if ("version" in asOf) {
    if (asOf.version <= 0) return { ...initial, folded: 0 }
    const snapshot =
      aggregate.snapshot === undefined ? Option.none() : yield* loadSnapshot(aggregate.snapshot, streamId)
    const start = Option.getOrElse(
      Option.filter(snapshot, (s) => s.version <= asOf.version),
      () => initial
    )
    return yield* fromVersion(aggregate, streamId, start, { to: asOf.version })
  }
  const store = yield* EventStore
  return yield* store.read(streamId, { includeArchived: true, batchSize: loadBatchSize }).pipe(
    Stream.catchTag("StreamNotFound", () => Stream.empty),
    Stream.takeWhile((event) => DateTime.isLessThanOrEqualTo(event.recordedAt, asOf.at)),
    Stream.mapEffect(aggregate.events.decode),
    Stream.runFold(
      () => ({ ...initial, folded: 0 }),
      (acc, event) => ({
        state: aggregate.decider.evolve(acc.state, event.data),
        version: event.version,
        folded: acc.folded + 1
      })
    )
  )
})

const currentTrace = Effect.map(Effect.option(Effect.currentSpan), (span) =>
  Option.match(span, {
    onNone: (): EventMetadata => ({}),
    onSome: (s): EventMetadata => ({ traceId: s.traceId, spanId: s.spanId })
  })
)

const saveSnapshot = Effect.fnUntraced(function* <State>(
  settings: SnapshotSettings<State>,
  streamId: string,
  state: State,
  version: number
) {
  const snapshots = yield* Effect.serviceOption(SnapshotStore)
  if (Option.isNone(snapshots)) return
  const encoded = yield* Schema.encodeEffect(Schema.toCodecJson(settings.schema))(state)
  const takenAt = DateTime.makeUnsafe(yield* Clock.currentTimeMillis)
  yield* snapshots.value.save({ streamId, version, stateVersion: settings.version, state: encoded, takenAt })
})

/**
 * Handles one command: load, decide, append with the exact version that was loaded. On `WrongExpectedVersion`
 * (another writer got there first) it reloads and decides again on the `retry` schedule (default
 * {@link RetrySchedule}); when the schedule is exhausted the last `WrongExpectedVersion` is returned. A domain error
 * from `decide` ends the call at once.
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
 * @since 0.1.0
 */
export const handle = Effect.fn("CommandHandler.handle")(function* <
  Command,
  Event extends { readonly _tag: string },
  State,
  Error
>(
  aggregate: Aggregate<Command, Event, State, Error>,
  streamId: string,
  command: Command,
  options?: {
    readonly metadata?: EventMetadata | undefined
    readonly retry?: Schedule.Schedule<unknown, unknown> | undefined
    /**
     * Decide only on the state at this version (an HTTP `If-Match`, say): a stream at any other version fails with
     * `WrongExpectedVersion` at once, and a conflict is not retried, since a retry would decide on another state. A
     * number that is not a version (negative, fractional, NaN, infinite, above `ExpectedVersion.maxVersion`) fails
     * with `InvalidExpectedVersion` before anything is loaded.
     */
    readonly expectedVersion?: number | undefined
  }
): Effect.fn.Return<CommandResult<State, Event>, Error | HandleError, EventStore> {
  const expectedVersion = options?.expectedVersion
  const invalid =
    expectedVersion === undefined ? undefined : checkExpectedVersion(streamId, ExpectedVersion.exact(expectedVersion))
  if (invalid !== undefined) return yield* invalid
  const store = yield* EventStore
  const metadata = mergeMetadata(yield* currentTrace, options?.metadata)
  const schedule = options?.retry ?? (yield* RetrySchedule)
  const attempt = Effect.gen(function* () {
    const loaded = yield* load(aggregate, streamId)
    const expected = options?.expectedVersion
    if (expected !== undefined && loaded.version !== expected) {
      return yield* new WrongExpectedVersion({
        streamId,
        expected: ExpectedVersion.exact(expected),
        actual: loaded.version
      })
    }
    const events = yield* aggregate.decider.decide(command, loaded.state)
    const state = Decider.fold(aggregate.decider, loaded.state, events)
    const terminal = Decider.isTerminal(aggregate.decider, state)
    if (events.length === 0) {
      return { state, events, version: loaded.version, positions: [], terminal, loaded }
    }
    const data = yield* Effect.forEach(events, (event) =>
      Effect.map(Effect.zip(aggregate.events.encode(event), makeEventId), ([encoded, eventId]) => ({
        ...encoded,
        eventId
      }))
    )
    const result = yield* store.append(streamId, data, {
      expectedVersion: ExpectedVersion.exact(loaded.version),
      metadata
    })
    return { state, events, version: result.nextExpectedVersion, positions: result.positions, terminal, loaded }
  })
  const { loaded, ...result } = yield* Effect.retry(attempt, {
    schedule,
    while: (error) => error instanceof WrongExpectedVersion && options?.expectedVersion === undefined
  })
  const settings = aggregate.snapshot
  if (
    settings !== undefined &&
    isDue({
      every: settings.every,
      versionBefore: loaded.version,
      versionAfter: result.version,
      folded: loaded.folded,
      terminal: result.terminal
    })
  ) {
    yield* saveSnapshot(settings, streamId, result.state, result.version).pipe(
      Effect.catchCause((cause) => Effect.logWarning("Could not save a snapshot", { streamId, cause }))
    )
  }
  return result
})
