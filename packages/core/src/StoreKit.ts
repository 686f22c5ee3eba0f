/**
 * The kit for store authors: the building blocks of an `EventStore` implementation, so that every store refuses
 * exactly the same input and treats retries exactly the same way. The in-memory store and `@facta/postgres` are both
 * built on it.
 *
 * A store validates each append with {@link prepare} or {@link prepareAll} (a `Result`: the {@link Prepared} append,
 * or the typed refusal), writes the prepared events, and when some of their ids are stored already asks
 * {@link matchRetry} whether the append is a retry of one that landed.
 *
 * @see {@link EventStore.EventStore} the service a store implements
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Result from "effect/Result"
import type { EventData, EventId } from "./Event.ts"
import { mergeMetadata } from "./Event.ts"
import type { AppendRequest, AppendResult } from "./EventStore.ts"
import type { EventTooLarge, InvalidEvent } from "./EventStoreError.ts"
import { IdempotencyConflict, InvalidExpectedVersion } from "./EventStoreError.ts"
import * as ExpectedVersion from "./ExpectedVersion.ts"
import * as internal from "./internal/eventData.ts"
import type { Position } from "./Position.ts"
import * as StreamId from "./StreamId.ts"

/**
 * One event of a {@link Prepared} append: the event (its id lower-cased), its data and merged metadata serialised to
 * JSON text once, and its size as {@link jsonbBytes} counts it.
 *
 * @category models
 * @since 0.1.0
 */
export interface PreparedEvent {
  readonly event: EventData
  readonly dataJson: string
  readonly metadataJson: string
  /** At least the bytes of its data and metadata as `jsonb` prints them; exactly when `bytesExact`. */
  readonly bytes: number
  readonly bytesExact: boolean
}

/**
 * An append request that passed validation: a checked stream id and expected version, and its events, each with
 * its data and merged metadata serialised to JSON text once.
 *
 * @category models
 * @since 0.1.0
 */
export interface Prepared {
  readonly streamId: StreamId.StreamId
  readonly category: string
  readonly expected: ExpectedVersion.ExpectedVersion
  readonly events: ReadonlyArray<PreparedEvent>
}

/**
 * Why {@link prepare} refuses a request.
 *
 * @category models
 * @since 0.1.0
 */
export type PrepareError = StreamId.InvalidStreamId | InvalidExpectedVersion | InvalidEvent | EventTooLarge

/**
 * The size limits a store enforces on appends, in bytes of data and metadata as PostgreSQL's `jsonb` prints them
 * (see {@link jsonbBytes}): `maxEventBytes` for one event, `maxAppendBytes` for all the events of one append (of
 * every stream of an `appendMany`). Both stores take them as options.
 *
 * @category models
 * @since 0.1.0
 */
export interface Limits {
  readonly maxEventBytes: number
  readonly maxAppendBytes: number
}

/**
 * The limits a store enforces unless told otherwise: 4 MiB an event and 64 MiB an append. An event of 4 MiB leaves
 * room under the 16 MiB that the PostgreSQL client reads in one message by default.
 *
 * @example
 * ```ts
 * import { StoreKit } from "@facta/core"
 *
 * StoreKit.defaultLimits // { maxEventBytes: 4194304, maxAppendBytes: 67108864 }
 * ```
 *
 * @category constants
 * @since 0.1.0
 */
export const defaultLimits: Limits = internal.defaultLimits

/**
 * A store's limits from its options, the defaults filling in those not given; a failure saying what is wrong when
 * one is not a positive integer.
 *
 * @example
 * ```ts
 * import { StoreKit } from "@facta/core"
 *
 * StoreKit.resolveLimits({ maxEventBytes: 1024 }) // a success: { maxEventBytes: 1024, maxAppendBytes: 67108864 }
 * StoreKit.resolveLimits({ maxEventBytes: 0 }) // a failure: "maxEventBytes must be a positive integer, got 0"
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const resolveLimits = (options?: {
  readonly maxEventBytes?: number | undefined
  readonly maxAppendBytes?: number | undefined
}): Result.Result<Limits, string> => {
  const limits: Limits = {
    maxEventBytes: options?.maxEventBytes ?? internal.defaultMaxEventBytes,
    maxAppendBytes: options?.maxAppendBytes ?? internal.defaultMaxAppendBytes
  }
  for (const [name, value] of Object.entries(limits)) {
    if (!(Number.isSafeInteger(value) && value >= 1)) {
      return Result.fail(`${name} must be a positive integer, got ${value}`)
    }
  }
  return Result.succeed(limits)
}

/**
 * The bytes a JSON text made by `JSON.stringify` takes as PostgreSQL's `jsonb` prints it, which is what a reader
 * receives: UTF-8, the same escapes (a control character is six bytes, `\u0001`), a space after each `:` and `,`
 * outside strings, and numbers in plain notation (`1e300` is 301 bytes). The size the limits count.
 *
 * @example
 * ```ts
 * import { StoreKit } from "@facta/core"
 *
 * StoreKit.jsonbBytes(JSON.stringify({ a: [1, 2] })) // 13: {"a": [1, 2]}
 * StoreKit.jsonbBytes(JSON.stringify("\u0001")) // 8: "\u0001"
 * StoreKit.jsonbBytes(JSON.stringify(1e21)) // 22
 * ```
 *
 * @category utils
 * @since 0.1.0
 */
export const jsonbBytes: (json: string) => number = internal.jsonbBytes

/**
 * Checks that `expected` is one a store can check: fails with an `InvalidExpectedVersion` when it is an exact
 * version that is not an integer from 0 to `ExpectedVersion.maxVersion`. {@link prepare} checks appends with it; a
 * store checks `archive` and `delete` with it.
 *
 * @example
 * ```ts
 * import { Result } from "effect"
 * import { ExpectedVersion, StoreKit } from "@facta/core"
 *
 * Result.isSuccess(StoreKit.checkExpectedVersion("Order-1", ExpectedVersion.exact(2))) // true
 * Result.isFailure(StoreKit.checkExpectedVersion("Order-1", ExpectedVersion.exact(-1))) // true: InvalidExpectedVersion
 * ```
 *
 * @see {@link ExpectedVersion.isValid}
 * @category validation
 * @since 0.1.0
 */
export const checkExpectedVersion = (
  streamId: string,
  expected: ExpectedVersion.ExpectedVersion
): Result.Result<ExpectedVersion.ExpectedVersion, InvalidExpectedVersion> =>
  ExpectedVersion.isValid(expected) ? Result.succeed(expected) : Result.fail(invalidExpectedVersion(streamId, expected))

const invalidExpectedVersion = (streamId: string, expected: ExpectedVersion.ExpectedVersion) =>
  new InvalidExpectedVersion({
    streamId,
    // an exact version is the only kind that can be invalid; anything else that reached a store is not a version
    version: expected?._tag === "Exact" && typeof expected.version === "number" ? expected.version : Number.NaN
  })

/**
 * Validates one request of an append; ids are lower-cased as a `uuid` column would store them. Checks the stream
 * id, the expected version, each event, and each event's size against `limits.maxEventBytes` (default
 * {@link defaultLimits}); {@link prepareAll} also checks the append's size.
 *
 * @example
 * ```ts
 * import { Result } from "effect"
 * import { Event, StoreKit } from "@facta/core"
 *
 * const prepared = StoreKit.prepare({
 *   streamId: "Order-1",
 *   events: [{ eventId: Event.makeEventIdUnsafe(), type: "OrderCreated", schemaVersion: 1, data: {} }]
 * })
 * if (Result.isSuccess(prepared)) prepared.success.events[0]?.dataJson // "{}"
 * ```
 *
 * @category validation
 * @since 0.1.0
 */
export const prepare = (
  request: AppendRequest,
  limits: Limits = defaultLimits
): Result.Result<Prepared, PrepareError> => {
  const reason = StreamId.validate(request.streamId)
  if (reason !== undefined) return Result.fail(new StreamId.InvalidStreamId({ streamId: request.streamId, reason }))
  const expected = request.expectedVersion ?? ExpectedVersion.any
  if (!ExpectedVersion.isValid(expected)) return Result.fail(invalidExpectedVersion(request.streamId, expected))
  const metadata = request.metadata ?? {}
  const events = internal.validateEvents(
    request.streamId,
    request.events,
    (event) => mergeMetadata(metadata, event.metadata),
    limits
  )
  if (Result.isFailure(events)) return Result.fail(events.failure)
  const streamId = request.streamId as StreamId.StreamId
  return Result.succeed({ streamId, category: StreamId.category(streamId), expected, events: events.success })
}

/**
 * Validates every request of a transaction; an event id may appear only once in it, and its events together may
 * take at most `limits.maxAppendBytes` (default {@link defaultLimits}).
 *
 * @example
 * ```ts
 * import { Result } from "effect"
 * import { Event, StoreKit } from "@facta/core"
 *
 * const event = { eventId: Event.makeEventIdUnsafe(), type: "Moved", schemaVersion: 1, data: {} }
 * // the same id twice in one transaction is refused
 * const refused = StoreKit.prepareAll([
 *   { streamId: "Box-1", events: [event] },
 *   { streamId: "Box-2", events: [event] }
 * ])
 * Result.isFailure(refused) && refused.failure._tag // "IdempotencyConflict"
 * ```
 *
 * @category validation
 * @since 0.1.0
 */
export const prepareAll = (
  requests: ReadonlyArray<AppendRequest>,
  limits: Limits = defaultLimits
): Result.Result<ReadonlyArray<Prepared>, PrepareError | IdempotencyConflict> => {
  if (requests.length === 1) {
    // `prepare` already refuses an id twice within one request
    const one = prepare(requests[0]!, limits)
    if (Result.isFailure(one)) return Result.fail(one.failure)
    const prepared = [one.success]
    const tooLarge = internal.checkAppendSize(prepared, limits)
    return tooLarge === undefined ? Result.succeed(prepared) : Result.fail(tooLarge)
  }
  const ids = new Set<string>()
  const prepared: Array<Prepared> = []
  for (const request of requests) {
    const one = prepare(request, limits)
    if (Result.isFailure(one)) return Result.fail(one.failure)
    for (const { event } of one.success.events) {
      if (ids.has(event.eventId)) {
        return Result.fail(
          new IdempotencyConflict({
            streamId: one.success.streamId,
            eventIds: [event.eventId],
            reason: "the same event id appears twice in one transaction"
          })
        )
      }
      ids.add(event.eventId)
    }
    prepared.push(one.success)
  }
  const tooLarge = internal.checkAppendSize(prepared, limits)
  return tooLarge === undefined ? Result.succeed(prepared) : Result.fail(tooLarge)
}

/**
 * A stored event, as much of it as a retry check needs.
 *
 * @category models
 * @since 0.1.0
 */
export interface StoredEvent {
  readonly eventId: EventId | string
  readonly streamId: string
  readonly version: number
  readonly position: Position
  readonly type: string
  readonly schemaVersion: number
  readonly data: unknown
}

/**
 * What {@link matchRetry} found an append to be:
 *
 * - `NotStored`: none of its ids is stored, so it is a new append;
 * - `Retry`: it is an append that landed already, with its original `result`;
 * - `Conflict`: some of its ids are stored, but not as this append (`error` says how).
 *
 * @category models
 * @since 0.1.0
 */
export type RetryMatch = Data.TaggedEnum<{
  NotStored: {}
  Retry: { readonly result: AppendResult }
  Conflict: { readonly error: IdempotencyConflict }
}>

/**
 * The constructors and matchers of {@link RetryMatch}.
 *
 * @example
 * ```ts
 * import { StoreKit } from "@facta/core"
 *
 * const describe = StoreKit.RetryMatch.$match({
 *   NotStored: () => "a new append",
 *   Retry: ({ result }) => `a retry, at version ${result.nextExpectedVersion}`,
 *   Conflict: ({ error }) => error.message
 * })
 * describe(StoreKit.RetryMatch.NotStored()) // "a new append"
 * ```
 *
 * @since 0.1.0
 */
export const RetryMatch = Data.taggedEnum<RetryMatch>()

const notStored: RetryMatch = RetryMatch.NotStored()

/**
 * Decides what an append whose ids are (partly) stored already is, given the stored events found for its ids (in
 * any order): see {@link RetryMatch}.
 *
 * @example
 * ```ts
 * import { Result } from "effect"
 * import { Event, Position, StoreKit } from "@facta/core"
 *
 * const eventId = Event.makeEventIdUnsafe()
 * const prepared = StoreKit.prepare({
 *   streamId: "Order-1",
 *   events: [{ eventId, type: "OrderCreated", schemaVersion: 1, data: {} }]
 * })
 * if (Result.isSuccess(prepared)) {
 *   // the store found the id already stored, as the same append: a retry, answered with the original result
 *   const stored = { eventId, streamId: "Order-1", version: 1, position: Position.make(1, 9n, 1n), type: "OrderCreated", schemaVersion: 1, data: {} }
 *   StoreKit.matchRetry(prepared.success, [stored]) // Retry { result: { streamId: "Order-1", nextExpectedVersion: 1, positions: [...] } }
 * }
 * ```
 *
 * @category validation
 * @since 0.1.0
 */
export const matchRetry = (prepared: Prepared, found: ReadonlyArray<StoredEvent>): RetryMatch => {
  if (found.length === 0) return notStored
  const byId = new Map(found.map((s) => [s.eventId.toLowerCase(), s]))
  const conflict = (reason: string) =>
    RetryMatch.Conflict({
      error: new IdempotencyConflict({ streamId: prepared.streamId, eventIds: found.map((s) => s.eventId), reason })
    })
  const present: Array<StoredEvent> = []
  for (const { event } of prepared.events) {
    const stored = byId.get(event.eventId)
    if (stored === undefined) return conflict("only some of the appended event ids are stored")
    present.push(stored)
  }
  for (let i = 0; i < present.length; i++) {
    const previous = present[i]!
    const { event, dataJson } = prepared.events[i]!
    if (previous.streamId !== prepared.streamId) return conflict(`stored in stream ${previous.streamId}`)
    if (i > 0 && previous.version !== present[i - 1]!.version + 1) return conflict("stored in another order")
    if (previous.type !== event.type || previous.schemaVersion !== event.schemaVersion) {
      return conflict("stored with another type or schema version")
    }
    if (!internal.jsonEquals(previous.data, JSON.parse(dataJson))) return conflict("stored with other data")
  }
  return RetryMatch.Retry({
    result: {
      streamId: prepared.streamId,
      nextExpectedVersion: present[present.length - 1]!.version,
      positions: present.map((s) => s.position)
    }
  })
}
