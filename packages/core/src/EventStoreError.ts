/**
 * The ways an event store can refuse or fail, as typed errors that carry what a caller needs to react: the real
 * versions on a conflict, the ids on an idempotency clash, the cause of a storage failure.
 *
 * @since 0.1.0
 */
import { Predicate, Schema } from "effect"
import * as ExpectedVersion from "./ExpectedVersion.ts"
import * as Position from "./Position.ts"
import type { StorageError } from "./StorageError.ts"

/**
 * The identifier every error of this module carries, for {@link isEventStoreError} and the guards of each error.
 *
 * @example
 * ```ts
 * import { EventStoreError } from "@facta/core"
 *
 * const missing = new EventStoreError.StreamNotFound({ streamId: "Account-404" })
 * missing[EventStoreError.TypeId] // "~@facta/core/EventStoreError"
 * ```
 *
 * @category type ids
 * @since 0.1.0
 */
export const TypeId = "~@facta/core/EventStoreError" as const

/**
 * The stream was not where the append expected it. `actual` is the stream's real last version at the time of the
 * check (0 when it does not exist).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { EventStore, ExpectedVersion } from "@facta/core"
 *
 * const appendAt = (version: number) =>
 *   EventStore.EventStore.use((store) => store.append("Account-1", [], { expectedVersion: ExpectedVersion.exact(version) }))
 * const reported = appendAt(3).pipe(
 *   Effect.catchTag("WrongExpectedVersion", (conflict) => Effect.succeed(`the stream is at ${conflict.actual}`))
 * )
 * ```
 *
 * @see {@link isWrongExpectedVersion}
 * @category errors
 * @since 0.1.0
 */
export class WrongExpectedVersion extends Schema.TaggedError<WrongExpectedVersion>("@facta/core/WrongExpectedVersion")(
  "WrongExpectedVersion",
  {
    streamId: Schema.String,
    expected: ExpectedVersion.ExpectedVersion,
    actual: Schema.Int
  }
) {
  /** Marks the value for {@link isEventStoreError}. */
  readonly [TypeId] = TypeId

  override get message() {
    return `Stream ${this.streamId}: expected ${ExpectedVersion.format(this.expected)}, but it is at version ${this.actual}`
  }
}

/**
 * The stream does not exist.
 *
 * @example
 * ```ts
 * import { Effect, Stream } from "effect"
 * import { EventStore } from "@facta/core"
 *
 * const events = EventStore.EventStore.use((store) => Stream.runCollect(store.read("Account-404"))).pipe(
 *   Effect.catchTag("StreamNotFound", () => Effect.succeed([]))
 * )
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class StreamNotFound extends Schema.TaggedError<StreamNotFound>("@facta/core/StreamNotFound")("StreamNotFound", {
  streamId: Schema.String
}) {
  /** Marks the value for {@link isEventStoreError}. */
  readonly [TypeId] = TypeId

  override get message() {
    return `Stream ${this.streamId} does not exist`
  }
}

/**
 * The stream is archived: it takes no more events and is hidden from reads (`read` with `includeArchived` shows it,
 * for audit). `version` is its last version.
 *
 * @example
 * ```ts
 * import { Effect, Stream } from "effect"
 * import { EventStore } from "@facta/core"
 *
 * const history = EventStore.EventStore.use((store) => Stream.runCollect(store.read("Account-1"))).pipe(
 *   // an archived stream is still readable for audit
 *   Effect.catchTag("StreamArchived", () =>
 *     EventStore.EventStore.use((store) => Stream.runCollect(store.read("Account-1", { includeArchived: true })))
 *   )
 * )
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class StreamArchived extends Schema.TaggedError<StreamArchived>("@facta/core/StreamArchived")("StreamArchived", {
  streamId: Schema.String,
  version: Schema.Int
}) {
  /** Marks the value for {@link isEventStoreError}. */
  readonly [TypeId] = TypeId

  override get message() {
    return `Stream ${this.streamId} is archived at version ${this.version}`
  }
}

/**
 * The stream was deleted: its events are gone and its id stays taken (the tombstone keeps its last `version`), so
 * it can never be appended to or read again.
 *
 * @example
 * ```ts
 * import { EventStoreError } from "@facta/core"
 *
 * const deleted = new EventStoreError.StreamDeleted({ streamId: "Account-1", version: 12 })
 * deleted.message // "Stream Account-1 was deleted at version 12"
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class StreamDeleted extends Schema.TaggedError<StreamDeleted>("@facta/core/StreamDeleted")("StreamDeleted", {
  streamId: Schema.String,
  version: Schema.Int
}) {
  /** Marks the value for {@link isEventStoreError}. */
  readonly [TypeId] = TypeId

  override get message() {
    return `Stream ${this.streamId} was deleted at version ${this.version}`
  }
}

/**
 * Some of an append's event ids are already stored, but not as this exact append: at another stream or version,
 * with other contents, or only some of them.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Event, EventStore } from "@facta/core"
 *
 * const eventId = Event.makeEventIdUnsafe()
 * const program = Effect.gen(function*() {
 *   const store = yield* EventStore.EventStore
 *   yield* store.append("Account-1", [{ eventId, type: "Opened", schemaVersion: 1, data: {} }])
 *   // the same id with other data is not a retry
 *   return yield* Effect.flip(store.append("Account-1", [{ eventId, type: "Opened", schemaVersion: 1, data: { x: 1 } }]))
 * }).pipe(Effect.provide(EventStore.layerMemory)) // fails with nothing; succeeds with an IdempotencyConflict
 * ```
 *
 * @see {@link isIdempotencyConflict}
 * @category errors
 * @since 0.1.0
 */
export class IdempotencyConflict extends Schema.TaggedError<IdempotencyConflict>("@facta/core/IdempotencyConflict")(
  "IdempotencyConflict",
  {
    streamId: Schema.String,
    eventIds: Schema.Array(Schema.String),
    reason: Schema.String
  }
) {
  /** Marks the value for {@link isEventStoreError}. */
  readonly [TypeId] = TypeId

  override get message() {
    return `Stream ${this.streamId}: event ids ${this.eventIds.join(", ")} were already stored differently (${this.reason})`
  }
}

/**
 * An event cannot be stored as given: a malformed id or type, a duplicate id within the append, or data that is not
 * storable JSON.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Event, EventStore } from "@facta/core"
 *
 * const refused = EventStore.EventStore.use((store) =>
 *   Effect.flip(store.append("Account-1", [{ eventId: Event.makeEventIdUnsafe(), type: "", schemaVersion: 1, data: {} }]))
 * ).pipe(Effect.provide(EventStore.layerMemory)) // an InvalidEvent: the type is empty
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class InvalidEvent extends Schema.TaggedError<InvalidEvent>("@facta/core/InvalidEvent")("InvalidEvent", {
  streamId: Schema.String,
  eventId: Schema.optionalKey(Schema.String),
  reason: Schema.String
}) {
  /** Marks the value for {@link isEventStoreError}. */
  readonly [TypeId] = TypeId

  override get message() {
    const at = this.eventId === undefined ? "" : ` (event ${this.eventId})`
    return `Stream ${this.streamId}${at}: ${this.reason}`
  }
}

/**
 * An expected version that no stream can be at: an exact version that is negative, fractional, NaN, infinite or
 * above {@link ExpectedVersion.maxVersion} (2,147,483,647, the most events a stream can hold). Appends (`append`,
 * `appendMany`), `archive`, `delete` and `CommandHandler.handle` refuse it before they look at the stream, in every
 * store, and write nothing. `version` is the value given.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { EventStore, ExpectedVersion } from "@facta/core"
 *
 * // an If-Match header that is not a version
 * const refused = EventStore.EventStore.use((store) =>
 *   Effect.flip(store.append("Account-1", [], { expectedVersion: ExpectedVersion.exact(Number("1.5")) }))
 * ).pipe(Effect.provide(EventStore.layerMemory)) // an InvalidExpectedVersion with version 1.5
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidExpectedVersion extends Schema.TaggedError<InvalidExpectedVersion>(
  "@facta/core/InvalidExpectedVersion"
)("InvalidExpectedVersion", {
  streamId: Schema.String,
  version: Schema.Number
}) {
  /** Marks the value for {@link isEventStoreError}. */
  readonly [TypeId] = TypeId

  override get message() {
    return `Stream ${this.streamId}: expected version ${this.version} is not a version (an integer from 0 to ${ExpectedVersion.maxVersion})`
  }
}

/**
 * An event, or a whole append, is larger than the store takes. `limit` names the limit that was passed:
 *
 * - `maxEventBytes`: the event's data and metadata together take `bytes` bytes, as PostgreSQL stores and sends them
 *   back (the UTF-8 text of `jsonb`, with its escapes, the spaces it prints after `:` and `,`, and numbers in plain
 *   notation, so `1e300` counts 301 bytes);
 * - `maxAppendBytes`: the events of the append (of every stream of an `appendMany`), measured the same way, take
 *   `bytes` bytes up to and including the event named, which is where the append passed the limit.
 *
 * Nothing of the append is written. The limits are options of each store (defaults: 4 MiB an event, 64 MiB an
 * append); they exist so that every event a store accepts can be read back.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Event, EventStore } from "@facta/core"
 *
 * const huge = { eventId: Event.makeEventIdUnsafe(), type: "Uploaded", schemaVersion: 1, data: "x".repeat(5_000_000) }
 * const reported = EventStore.EventStore.use((store) => store.append("File-1", [huge])).pipe(
 *   Effect.catchTag("EventTooLarge", (error) => Effect.succeed(`${error.bytes} bytes, over ${error.maxBytes}`)),
 *   Effect.provide(EventStore.layerMemory)
 * )
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class EventTooLarge extends Schema.TaggedError<EventTooLarge>("@facta/core/EventTooLarge")("EventTooLarge", {
  streamId: Schema.String,
  eventId: Schema.String,
  limit: Schema.Literals(["maxEventBytes", "maxAppendBytes"]),
  maxBytes: Schema.Int,
  bytes: Schema.Int
}) {
  /** Marks the value for {@link isEventStoreError}. */
  readonly [TypeId] = TypeId

  override get message() {
    const what = this.limit === "maxEventBytes" ? "the event takes" : "the append takes, up to this event,"
    return `Stream ${this.streamId} (event ${this.eventId}): ${what} ${this.bytes} bytes, over ${this.limit} (${this.maxBytes})`
  }
}

/**
 * A stored event that cannot be read as an event: a row changed by hand or by a broken tool (a timestamp out of
 * range, a hole in its stream's versions). Readers get this typed error instead of a crash; a projection stops on it,
 * or parks it and goes on, like an event its handler fails on.
 *
 * @example
 * ```ts
 * import { Effect, Stream } from "effect"
 * import { EventStore } from "@facta/core"
 *
 * const history = EventStore.EventStore.use((store) => Stream.runCollect(store.read("Account-1"))).pipe(
 *   Effect.catchTag("CorruptedEvent", (corrupted) =>
 *     Effect.logError(`event ${corrupted.eventId} of ${corrupted.streamId} is unreadable: ${corrupted.reason}`)
 *   )
 * )
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class CorruptedEvent extends Schema.TaggedError<CorruptedEvent>("@facta/core/CorruptedEvent")("CorruptedEvent", {
  streamId: Schema.String,
  version: Schema.Number,
  reason: Schema.String,
  /** The event's id and place in the global log, when the row has them (a missing version has neither). */
  eventId: Schema.optionalKey(Schema.String),
  position: Schema.optionalKey(Position.Position)
}) {
  /** Marks the value for {@link isEventStoreError}. */
  readonly [TypeId] = TypeId

  override get message() {
    const at = this.position === undefined ? "" : ` at ${Position.format(this.position)}`
    const event = this.eventId === undefined ? "" : ` (event ${this.eventId}${at})`
    return `Stream ${this.streamId} version ${this.version}${event} cannot be read: ${this.reason}`
  }
}

/**
 * Every error an append can fail with.
 *
 * @see {@link isEventStoreError} and the guard of each error
 * @category models
 * @since 0.1.0
 */
export type AppendError =
  | WrongExpectedVersion
  | StreamArchived
  | StreamDeleted
  | IdempotencyConflict
  | InvalidEvent
  | InvalidExpectedVersion
  | EventTooLarge
  | StorageError

/**
 * Every error reading a stream can fail with.
 *
 * @category models
 * @since 0.1.0
 */
export type ReadError = StreamNotFound | StreamArchived | StreamDeleted | CorruptedEvent | StorageError

/**
 * Every error of this module: the refusals and failures an event store reports besides a `StorageError`.
 *
 * @category models
 * @since 0.1.0
 */
export type EventStoreError =
  | WrongExpectedVersion
  | StreamNotFound
  | StreamArchived
  | StreamDeleted
  | IdempotencyConflict
  | InvalidEvent
  | InvalidExpectedVersion
  | EventTooLarge
  | CorruptedEvent

/**
 * Whether a value is one of this module's errors.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { EventStore, EventStoreError } from "@facta/core"
 *
 * const logged = EventStore.EventStore.use((store) => store.append("Account-1", [])).pipe(
 *   Effect.tapError((error) => (EventStoreError.isEventStoreError(error) ? Effect.logInfo(error.message) : Effect.void))
 * )
 * ```
 *
 * @see {@link TypeId}
 * @category guards
 * @since 0.1.0
 */
export const isEventStoreError = (u: unknown): u is EventStoreError => Predicate.hasProperty(u, TypeId)

const isTagged =
  <Tag extends EventStoreError["_tag"]>(tag: Tag) =>
  (u: unknown): u is Extract<EventStoreError, { readonly _tag: Tag }> =>
    isEventStoreError(u) && u._tag === tag

/**
 * Whether a value is a `WrongExpectedVersion`.
 *
 * @example
 * ```ts
 * import { EventStoreError, ExpectedVersion } from "@facta/core"
 *
 * EventStoreError.isWrongExpectedVersion(
 *   new EventStoreError.WrongExpectedVersion({ streamId: "Account-1", expected: ExpectedVersion.exact(1), actual: 2 })
 * ) // true
 * ```
 *
 * @category guards
 * @since 0.1.0
 */
export const isWrongExpectedVersion: (u: unknown) => u is WrongExpectedVersion = isTagged("WrongExpectedVersion")

/**
 * Whether a value is a `StreamNotFound`.
 *
 * @example
 * ```ts
 * import { EventStoreError } from "@facta/core"
 *
 * EventStoreError.isStreamNotFound(new EventStoreError.StreamNotFound({ streamId: "Account-404" })) // true
 * ```
 *
 * @category guards
 * @since 0.1.0
 */
export const isStreamNotFound: (u: unknown) => u is StreamNotFound = isTagged("StreamNotFound")

/**
 * Whether a value is a `StreamArchived`.
 *
 * @example
 * ```ts
 * import { EventStoreError } from "@facta/core"
 *
 * EventStoreError.isStreamArchived(new EventStoreError.StreamArchived({ streamId: "Account-1", version: 3 })) // true
 * ```
 *
 * @category guards
 * @since 0.1.0
 */
export const isStreamArchived: (u: unknown) => u is StreamArchived = isTagged("StreamArchived")

/**
 * Whether a value is a `StreamDeleted`.
 *
 * @example
 * ```ts
 * import { EventStoreError } from "@facta/core"
 *
 * EventStoreError.isStreamDeleted(new EventStoreError.StreamArchived({ streamId: "Account-1", version: 3 })) // false
 * ```
 *
 * @category guards
 * @since 0.1.0
 */
export const isStreamDeleted: (u: unknown) => u is StreamDeleted = isTagged("StreamDeleted")

/**
 * Whether a value is a `IdempotencyConflict`.
 *
 * @example
 * ```ts
 * import { EventStoreError } from "@facta/core"
 *
 * EventStoreError.isIdempotencyConflict(
 *   new EventStoreError.IdempotencyConflict({ streamId: "Account-1", eventIds: [], reason: "stored with other data" })
 * ) // true
 * ```
 *
 * @category guards
 * @since 0.1.0
 */
export const isIdempotencyConflict: (u: unknown) => u is IdempotencyConflict = isTagged("IdempotencyConflict")

/**
 * Whether a value is a `InvalidEvent`.
 *
 * @example
 * ```ts
 * import { EventStoreError } from "@facta/core"
 *
 * EventStoreError.isInvalidEvent(new EventStoreError.InvalidEvent({ streamId: "Account-1", reason: "an empty type" })) // true
 * ```
 *
 * @category guards
 * @since 0.1.0
 */
export const isInvalidEvent: (u: unknown) => u is InvalidEvent = isTagged("InvalidEvent")

/**
 * Whether a value is a `InvalidExpectedVersion`.
 *
 * @example
 * ```ts
 * import { EventStoreError } from "@facta/core"
 *
 * EventStoreError.isInvalidExpectedVersion(
 *   new EventStoreError.InvalidExpectedVersion({ streamId: "Account-1", version: -1 })
 * ) // true
 * ```
 *
 * @category guards
 * @since 0.1.0
 */
export const isInvalidExpectedVersion: (u: unknown) => u is InvalidExpectedVersion = isTagged("InvalidExpectedVersion")

/**
 * Whether a value is a `EventTooLarge`.
 *
 * @example
 * ```ts
 * import { EventStoreError } from "@facta/core"
 *
 * EventStoreError.isEventTooLarge(new Error("too large")) // false
 * ```
 *
 * @category guards
 * @since 0.1.0
 */
export const isEventTooLarge: (u: unknown) => u is EventTooLarge = isTagged("EventTooLarge")

/**
 * Whether a value is a `CorruptedEvent`.
 *
 * @example
 * ```ts
 * import { EventStoreError } from "@facta/core"
 *
 * EventStoreError.isCorruptedEvent(
 *   new EventStoreError.CorruptedEvent({ streamId: "Account-1", version: 2, reason: "a hole in the versions" })
 * ) // true
 * ```
 *
 * @category guards
 * @since 0.1.0
 */
export const isCorruptedEvent: (u: unknown) => u is CorruptedEvent = isTagged("CorruptedEvent")
