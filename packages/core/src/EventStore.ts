/**
 * The `EventStore` service: append with optimistic concurrency and idempotency, read or fold a stream, read the global
 * log.
 *
 * Every implementation (the in-memory one here, PostgreSQL in `@facta/postgres`) keeps the same laws, checked by the
 * conformance suite in `@facta/testing`:
 *
 * - versions within a stream are 1-based and contiguous; an append lands whole or not at all;
 * - `fold` hands its step exactly the events `read` returns, in the same order, and never a part of a stream that
 *   was deleted meanwhile;
 * - `expectedVersion` is enforced exactly, and a conflict reports the stream's real version;
 * - appending event ids that are already stored, in the same stream, in the same order, with the same type, schema
 *   version and data, writes nothing and returns the original result (metadata may differ: a retry has a new trace);
 *   any other reuse of a stored id is an {@link EventStoreError.IdempotencyConflict};
 * - the global log is totally ordered by {@link Position.Position} and never skips an event: reading after a
 *   checkpoint yields every event committed after it, exactly once;
 * - an archived stream takes no more events and is hidden from `read` unless asked for (audit), while its events stay
 *   in the global log (history is not rewritten: a rebuilt read model equals the live one); a deleted stream's
 *   events are gone from every read and its id stays taken by a tombstone.
 *
 * The store speaks JSON; {@link EventCodec} turns domain events into that JSON and back, and the typed helpers below
 * ({@link appendEvents}, {@link readEvents}) combine the two.
 *
 * @since 0.1.0
 */

import type { DateTime, Option, Result, Schema } from "effect"
import { Context, Effect, Layer, Stream } from "effect"
import type { EventData, EventMetadata, RecordedEvent } from "./Event.ts"
import type { EventCodec, EventDecodeError, EventEncodeError } from "./EventCodec.ts"
import { toEventData } from "./EventCodec.ts"
import type {
  AppendError,
  CorruptedEvent,
  InvalidExpectedVersion,
  ReadError,
  StreamDeleted,
  StreamNotFound,
  WrongExpectedVersion
} from "./EventStoreError.ts"
import type { ExpectedVersion } from "./ExpectedVersion.ts"
import * as MemoryStore from "./internal/memoryStore.ts"
import type { Position } from "./Position.ts"
import type { StorageError } from "./StorageError.ts"
import type { InvalidStreamId, StreamId } from "./StreamId.ts"

/**
 * How to append: the expectation on the stream (default {@link ExpectedVersion.any}) and metadata for every event
 * (each event's own metadata is merged over it).
 *
 * @category models
 * @since 0.1.0
 */
export interface AppendOptions {
  readonly expectedVersion?: ExpectedVersion | undefined
  readonly metadata?: EventMetadata | undefined
}

/**
 * What an append did: the stream's version after it (the version to expect next) and each event's global position.
 *
 * @category models
 * @since 0.1.0
 */
export interface AppendResult {
  readonly streamId: StreamId
  readonly nextExpectedVersion: number
  readonly positions: ReadonlyArray<Position>
}

/**
 * One stream's part of an {@link EventStore.appendMany}.
 *
 * @category models
 * @since 0.1.0
 */
export interface AppendRequest extends AppendOptions {
  readonly streamId: string
  readonly events: ReadonlyArray<EventData>
}

/**
 * Which part of a stream to read: versions `from` to `to` inclusive (default: all of them), in `direction` order
 * (default forward), at most `limit` events counted from the start of that order. `backward` with `limit: 1` reads
 * the last event.
 *
 * @category models
 * @since 0.1.0
 */
export interface ReadOptions {
  readonly from?: number | undefined
  readonly to?: number | undefined
  readonly direction?: "forward" | "backward" | undefined
  readonly limit?: number | undefined
  /** Events fetched per round trip; a tuning knob with no effect on what is read. */
  readonly batchSize?: number | undefined
  /** Read the stream even when it is archived (audit); otherwise an archived stream fails with `StreamArchived`. */
  readonly includeArchived?: boolean | undefined
}

/**
 * Which part of the global log to read: events after the checkpoint `after` (default: from the start), only of the
 * given categories and event types when these are set.
 *
 * @category models
 * @since 0.1.0
 */
export interface ReadAllOptions {
  readonly after?: Position | undefined
  readonly categories?: ReadonlyArray<string> | undefined
  readonly types?: ReadonlyArray<string> | undefined
  readonly batchSize?: number | undefined
}

/**
 * Which part of a stream to fold: versions `from` to `to` inclusive (default: all of them), forward.
 *
 * @category models
 * @since 0.1.0
 */
export interface FoldOptions {
  readonly from?: number | undefined
  readonly to?: number | undefined
  /** Events fetched per round trip; a tuning knob with no effect on what is folded. */
  readonly batchSize?: number | undefined
  /** Fold the stream even when it is archived (its history); otherwise an archived stream fails with `StreamArchived`. */
  readonly includeArchived?: boolean | undefined
}

/**
 * A stored event as a fold sees it: what a decider needs to evolve its state and nothing else, so that loading an
 * aggregate builds no envelope per event.
 *
 * @category models
 * @since 0.1.0
 */
export interface FoldEvent {
  readonly version: number
  readonly type: string
  readonly schemaVersion: number
  readonly data: Schema.Json
}

/**
 * What the store knows of a stream, archived and deleted ones included.
 *
 * @category models
 * @since 0.1.0
 */
export interface StreamInfo {
  readonly streamId: StreamId
  readonly category: string
  /** The stream's last version (a deleted stream keeps the version it had). */
  readonly version: number
  readonly createdAt: DateTime.Utc
  readonly updatedAt: DateTime.Utc
  /** When the stream was archived; `None` while it takes events. */
  readonly archivedAt: Option.Option<DateTime.Utc>
  /** When the stream was deleted; `None` unless it is a tombstone. */
  readonly deletedAt: Option.Option<DateTime.Utc>
}

/**
 * How to archive or delete a stream: the expectation on its version (default {@link ExpectedVersion.any}), so that
 * nothing appended since the caller looked is archived or deleted unseen.
 *
 * @category models
 * @since 0.1.0
 */
export interface LifecycleOptions {
  readonly expectedVersion?: ExpectedVersion | undefined
}

/**
 * The event store.
 *
 * @example
 * ```ts
 * import { Effect, Stream } from "effect"
 * import { Event, EventStore, ExpectedVersion } from "@facta/core"
 *
 * const program = Effect.gen(function*() {
 *   const store = yield* EventStore.EventStore
 *   const event = { eventId: Event.makeEventIdUnsafe(), type: "Opened", schemaVersion: 1, data: { owner: "ann" } }
 *   yield* store.append("Account-1", [event], { expectedVersion: ExpectedVersion.noStream })
 *   return yield* Stream.runCollect(store.read("Account-1"))
 * }).pipe(Effect.provide(EventStore.layerMemory))
 * ```
 *
 * @see {@link StoreKit} the kit a store implementation is built on
 * @category services
 * @since 0.1.0
 */
export class EventStore extends Context.Service<
  EventStore,
  {
    /** Appends events to one stream, atomically, checking `expectedVersion`. */
    readonly append: (
      streamId: string,
      events: ReadonlyArray<EventData>,
      options?: AppendOptions
    ) => Effect.Effect<AppendResult, AppendError | InvalidStreamId>
    /** Appends to several streams in one transaction: all of them land, or none does. */
    readonly appendMany: (
      requests: ReadonlyArray<AppendRequest>
    ) => Effect.Effect<ReadonlyArray<AppendResult>, AppendError | InvalidStreamId>
    /**
     * Reads one stream; fails with `StreamNotFound` when it never existed, `StreamArchived` when it is archived (unless
     * `includeArchived`), `StreamDeleted` when it was deleted.
     */
    readonly read: (
      streamId: string,
      options?: ReadOptions
    ) => Stream.Stream<RecordedEvent, ReadError | InvalidStreamId>
    /**
     * Folds one stream's events in version order: the fast path of aggregate loads (no envelope, only the columns a
     * decider needs, large pages). Fails like `read` (`StreamNotFound`, `StreamArchived` unless `includeArchived`,
     * `StreamDeleted`, also when the stream is deleted while it is folded). A failure returned by `step` ends the fold
     * with that failure.
     */
    readonly fold: <S, E>(
      streamId: string,
      initial: S,
      step: (state: S, event: FoldEvent) => Result.Result<S, E>,
      options?: FoldOptions
    ) => Effect.Effect<S, E | ReadError | InvalidStreamId>
    /** Reads the global log after a checkpoint up to its current end, in position order. */
    readonly readAll: (options?: ReadAllOptions) => Stream.Stream<RecordedEvent, StorageError | CorruptedEvent>
    /**
     * The position of the last event `readAll` can return now (`Position.start` when there is none): a reader that
     * asked for `head` and then read to the end has seen everything up to it, whatever its filters.
     */
    readonly head: Effect.Effect<Position, StorageError>
    /**
     * The position of the last committed event, readable yet or not (on PostgreSQL a transaction still open elsewhere
     * can hold newer commits back from `readAll` for a while): what "everything appended so far" reaches.
     */
    readonly lastCommitted: Effect.Effect<Position, StorageError>
    /**
     * A signal each time events may have been committed, for subscriptions to wake up without waiting for their
     * next poll. Only a hint: it carries nothing, may come when nothing is new, and is lost while nobody listens.
     */
    readonly wakeups: Stream.Stream<void, StorageError>
    /** The stream's version, timestamps and lifecycle, or `None` when it never existed. */
    readonly streamInfo: (streamId: string) => Effect.Effect<Option.Option<StreamInfo>, StorageError | InvalidStreamId>
    /**
     * Closes a stream for good and hides it from reads, keeping its events for audit. Archiving an archived stream
     * again does nothing.
     */
    readonly archive: (
      streamId: string,
      options?: LifecycleOptions
    ) => Effect.Effect<
      void,
      WrongExpectedVersion | InvalidExpectedVersion | StreamNotFound | StreamDeleted | StorageError | InvalidStreamId
    >
    /**
     * Deletes a stream's events and leaves a tombstone, so that its id is never used again; a store that keeps
     * snapshots beside the events (PostgreSQL) deletes those too. Deleting a deleted stream again does nothing.
     */
    readonly delete: (
      streamId: string,
      options?: LifecycleOptions
    ) => Effect.Effect<
      void,
      WrongExpectedVersion | InvalidExpectedVersion | StreamNotFound | StorageError | InvalidStreamId
    >
  }
>()("@facta/core/EventStore") {}

/**
 * An in-memory store with exactly the semantics of the PostgreSQL one; for tests, examples and prototypes. Each
 * build of the layer starts empty.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { EventStore } from "@facta/core"
 *
 * const program = EventStore.EventStore.use((store) => store.streamInfo("Order-1"))
 * Effect.runPromise(program.pipe(Effect.provide(EventStore.layerMemory)))
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export const layerMemory: Layer.Layer<EventStore> = Layer.effect(EventStore, MemoryStore.make())

/**
 * Options of the in-memory store: the size limits it enforces on appends, as the PostgreSQL store does (defaults
 * `maxEventBytes` 4 MiB and `maxAppendBytes` 64 MiB, counted as PostgreSQL's `jsonb` prints data and metadata; see
 * `StoreKit.jsonbBytes`). An event or an append over its limit fails with `EventTooLarge`.
 *
 * @category models
 * @since 0.1.0
 */
export interface MemoryOptions {
  readonly maxEventBytes?: number | undefined
  readonly maxAppendBytes?: number | undefined
}

/**
 * {@link layerMemory} with options: to give it the limits of the PostgreSQL store it stands in for. A limit that is
 * not a positive integer is a defect when the layer is built.
 *
 * @example
 * ```ts
 * import { EventStore } from "@facta/core"
 *
 * // the same limits as PgEventStore.layer({ maxEventBytes: 1_000_000 })
 * const Test = EventStore.layerMemoryWith({ maxEventBytes: 1_000_000 })
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export const layerMemoryWith = (options: MemoryOptions): Layer.Layer<EventStore> =>
  Layer.effect(EventStore, MemoryStore.make(options))

/**
 * Encodes domain events with their codec and appends them.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { EventCodec, EventStore, ExpectedVersion } from "@facta/core"
 *
 * const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Int })
 * const codec = EventCodec.make(Deposited)
 * const program = EventStore.appendEvents(codec, "Account-1", [Deposited.make({ amount: 5 })], {
 *   expectedVersion: ExpectedVersion.noStream
 * })
 * ```
 *
 * @category accessors
 * @since 0.1.0
 */
export const appendEvents = Effect.fnUntraced(function* <A extends { readonly _tag: string }>(
  codec: EventCodec<A>,
  streamId: string,
  events: ReadonlyArray<A>,
  options?: AppendOptions
): Effect.fn.Return<AppendResult, AppendError | InvalidStreamId | EventEncodeError, EventStore> {
  const store = yield* EventStore
  const data = yield* Effect.forEach(events, (event) => toEventData(codec, event))
  return yield* store.append(streamId, data, options)
})

/**
 * Reads a stream and decodes its events with their codec (upcasting old schema versions).
 *
 * @example
 * ```ts
 * import { Schema, Stream } from "effect"
 * import { EventCodec, EventStore } from "@facta/core"
 *
 * const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Int })
 * const amounts = EventStore.readEvents(EventCodec.make(Deposited), "Account-1").pipe(
 *   Stream.map((event) => event.data.amount)
 * )
 * ```
 *
 * @category accessors
 * @since 0.1.0
 */
export const readEvents = <A extends { readonly _tag: string }>(
  codec: EventCodec<A>,
  streamId: string,
  options?: ReadOptions
): Stream.Stream<RecordedEvent<A>, ReadError | InvalidStreamId | EventDecodeError, EventStore> =>
  Stream.unwrap(EventStore.useSync((store) => store.read(streamId, options).pipe(Stream.mapEffect(codec.decode))))
