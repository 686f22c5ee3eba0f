/**
 * The ways an event store can refuse or fail, as typed errors that carry what a caller needs to react: the real
 * versions on a conflict, the ids on an idempotency clash, the cause of a storage failure.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import * as ExpectedVersion from "./ExpectedVersion.ts"
import type { StorageError } from "./StorageError.ts"

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
 * @since 0.1.0
 */
export class StreamNotFound extends Schema.TaggedError<StreamNotFound>("@facta/core/StreamNotFound")("StreamNotFound", {
  streamId: Schema.String
}) {
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
 * @since 0.1.0
 */
export class StreamArchived extends Schema.TaggedError<StreamArchived>("@facta/core/StreamArchived")("StreamArchived", {
  streamId: Schema.String,
  version: Schema.Int
}) {
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
 * @since 0.1.0
 */
export class StreamDeleted extends Schema.TaggedError<StreamDeleted>("@facta/core/StreamDeleted")("StreamDeleted", {
  streamId: Schema.String,
  version: Schema.Int
}) {
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
 * @since 0.1.0
 */
export class InvalidEvent extends Schema.TaggedError<InvalidEvent>("@facta/core/InvalidEvent")("InvalidEvent", {
  streamId: Schema.String,
  eventId: Schema.optionalKey(Schema.String),
  reason: Schema.String
}) {
  override get message() {
    const at = this.eventId === undefined ? "" : ` (event ${this.eventId})`
    return `Stream ${this.streamId}${at}: ${this.reason}`
  }
}

/**
 * Every error an append can fail with.
 *
 * @since 0.1.0
 */
export type AppendError =
  | WrongExpectedVersion
  | StreamArchived
  | StreamDeleted
  | IdempotencyConflict
  | InvalidEvent
  | StorageError

/**
 * Every error reading a stream can fail with.
 *
 * @since 0.1.0
 */
export type ReadError = StreamNotFound | StreamArchived | StreamDeleted | StorageError
