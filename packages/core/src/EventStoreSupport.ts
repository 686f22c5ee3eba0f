/**
 * Building blocks for `EventStore` implementations, so that every store refuses exactly the same input and treats
 * retries exactly the same way. The in-memory store and `@facta/postgres` are both built on these.
 *
 * @since 0.1.0
 */
import type { EventId } from "./Event.ts"
import { mergeMetadata } from "./Event.ts"
import type { AppendRequest, AppendResult } from "./EventStore.ts"
import type { EventTooLarge, InvalidEvent } from "./EventStoreError.ts"
import { IdempotencyConflict, InvalidExpectedVersion } from "./EventStoreError.ts"
import * as ExpectedVersion from "./ExpectedVersion.ts"
import type { ValidEvent } from "./internal/eventData.ts"
import * as EventData from "./internal/eventData.ts"
import type { Position } from "./Position.ts"
import * as StreamId from "./StreamId.ts"

/**
 * An append request that passed validation: a checked stream id, and each event with its data and merged metadata
 * serialised to JSON text once.
 *
 * @since 0.1.0
 */
export interface Prepared {
  readonly streamId: StreamId.StreamId
  readonly category: string
  readonly expected: ExpectedVersion.ExpectedVersion
  readonly events: ReadonlyArray<ValidEvent>
}

/**
 * The size limits a store enforces on appends, in bytes of data and metadata as PostgreSQL's `jsonb` prints them
 * (see {@link jsonbBytes}): `maxEventBytes` for one event, `maxAppendBytes` for all the events of one append (of
 * every stream of an `appendMany`). Both stores take them as options.
 *
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
 * import { EventStoreSupport } from "@facta/core"
 *
 * EventStoreSupport.defaultLimits // { maxEventBytes: 4194304, maxAppendBytes: 67108864 }
 * ```
 *
 * @since 0.1.0
 */
export const defaultLimits: Limits = EventData.defaultLimits

/**
 * A store's limits from its options, the defaults filling in those not given; a message saying what is wrong when
 * one is not a positive integer.
 *
 * @example
 * ```ts
 * import { EventStoreSupport } from "@facta/core"
 *
 * EventStoreSupport.resolveLimits({ maxEventBytes: 1024 }) // { maxEventBytes: 1024, maxAppendBytes: 67108864 }
 * EventStoreSupport.resolveLimits({ maxEventBytes: 0 }) // "maxEventBytes must be a positive integer, got 0"
 * ```
 *
 * @since 0.1.0
 */
export const resolveLimits: (options?: {
  readonly maxEventBytes?: number | undefined
  readonly maxAppendBytes?: number | undefined
}) => Limits | string = EventData.resolveLimits

/**
 * The bytes a JSON text made by `JSON.stringify` takes as PostgreSQL's `jsonb` prints it, which is what a reader
 * receives: UTF-8, the same escapes (a control character is six bytes, `\u0001`), a space after each `:` and `,`
 * outside strings, and numbers in plain notation (`1e300` is 301 bytes). The size the limits count.
 *
 * @example
 * ```ts
 * import { EventStoreSupport } from "@facta/core"
 *
 * EventStoreSupport.jsonbBytes(JSON.stringify({ a: [1, 2] })) // 13: {"a": [1, 2]}
 * EventStoreSupport.jsonbBytes(JSON.stringify("\u0001")) // 8: "\u0001"
 * EventStoreSupport.jsonbBytes(JSON.stringify(1e21)) // 22
 * ```
 *
 * @since 0.1.0
 */
export const jsonbBytes: (json: string) => number = EventData.jsonbBytes

/**
 * An `InvalidExpectedVersion` when `expected` is not one a store can check (an exact version that is not an integer
 * from 0 to `ExpectedVersion.maxVersion`), else `undefined`. `prepare` checks appends; a store checks `archive` and
 * `delete` with it.
 *
 * @example
 * ```ts
 * import { EventStoreSupport, ExpectedVersion } from "@facta/core"
 *
 * EventStoreSupport.checkExpectedVersion("Order-1", ExpectedVersion.exact(2)) // undefined
 * EventStoreSupport.checkExpectedVersion("Order-1", ExpectedVersion.exact(-1)) // an InvalidExpectedVersion
 * ```
 *
 * @since 0.1.0
 */
export const checkExpectedVersion = (
  streamId: string,
  expected: ExpectedVersion.ExpectedVersion
): InvalidExpectedVersion | undefined => {
  if (ExpectedVersion.isValid(expected)) return undefined
  const version = typeof expected === "object" && expected !== null ? (expected as { version?: unknown }).version : NaN
  return new InvalidExpectedVersion({ streamId, version: typeof version === "number" ? version : Number.NaN })
}

/**
 * Validates one request of an append; ids are lower-cased as a `uuid` column would store them. Checks the stream
 * id, the expected version, each event, and each event's size against `limits.maxEventBytes` (default
 * {@link defaultLimits}); `prepareAll` also checks the append's size.
 *
 * @example
 * ```ts
 * import { Event, EventStoreSupport } from "@facta/core"
 *
 * const prepared = EventStoreSupport.prepare({
 *   streamId: "Order-1",
 *   events: [{ eventId: Event.makeEventIdUnsafe(), type: "OrderCreated", schemaVersion: 1, data: {} }]
 * })
 * ```
 *
 * @since 0.1.0
 */
export const prepare = (
  request: AppendRequest,
  limits: Limits = defaultLimits
): Prepared | StreamId.InvalidStreamId | InvalidExpectedVersion | InvalidEvent | EventTooLarge => {
  const reason = StreamId.validate(request.streamId)
  if (reason !== undefined) return new StreamId.InvalidStreamId({ streamId: request.streamId, reason })
  const expected = request.expectedVersion ?? ExpectedVersion.any
  const invalid = checkExpectedVersion(request.streamId, expected)
  if (invalid !== undefined) return invalid
  const metadata = request.metadata ?? {}
  const events = EventData.validateEvents(
    request.streamId,
    request.events,
    (event) => mergeMetadata(metadata, event.metadata),
    limits
  )
  if (!Array.isArray(events)) return events as InvalidEvent | EventTooLarge
  const streamId = request.streamId as StreamId.StreamId
  return { streamId, category: StreamId.category(streamId), expected, events }
}

/**
 * Validates every request of a transaction; an event id may appear only once in it, and its events together may
 * take at most `limits.maxAppendBytes` (default {@link defaultLimits}).
 *
 * @example
 * ```ts
 * import { Event, EventStoreSupport } from "@facta/core"
 *
 * const event = { eventId: Event.makeEventIdUnsafe(), type: "Moved", schemaVersion: 1, data: {} }
 * // the same id twice in one transaction is refused
 * const refused = EventStoreSupport.prepareAll([
 *   { streamId: "Box-1", events: [event] },
 *   { streamId: "Box-2", events: [event] }
 * ]) // an IdempotencyConflict
 * ```
 *
 * @since 0.1.0
 */
export const prepareAll = (
  requests: ReadonlyArray<AppendRequest>,
  limits: Limits = defaultLimits
):
  | ReadonlyArray<Prepared>
  | StreamId.InvalidStreamId
  | InvalidExpectedVersion
  | InvalidEvent
  | EventTooLarge
  | IdempotencyConflict => {
  if (requests.length === 1) {
    // `prepare` already refuses an id twice within one request
    const one = prepare(requests[0]!, limits)
    if (!("events" in one)) return one
    return EventData.checkAppendSize([one], limits) ?? [one]
  }
  const ids = new Set<string>()
  const prepared: Array<Prepared> = []
  for (const request of requests) {
    const one = prepare(request, limits)
    if (!("events" in one)) return one
    for (const { event } of one.events) {
      if (ids.has(event.eventId)) {
        return new IdempotencyConflict({
          streamId: one.streamId,
          eventIds: [event.eventId],
          reason: "the same event id appears twice in one transaction"
        })
      }
      ids.add(event.eventId)
    }
    prepared.push(one)
  }
  return EventData.checkAppendSize(prepared, limits) ?? prepared
}

/**
 * A stored event, as much of it as a retry check needs.
 *
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
 * Decides what an append whose ids are (partly) stored already is: given the stored events found for its ids (in
 * any order), the original result when it is the same append again, otherwise an `IdempotencyConflict`, or
 * `undefined` when none of its ids is stored.
 *
 * @example
 * ```ts
 * import { Event, EventStoreSupport, Position } from "@facta/core"
 *
 * const eventId = Event.makeEventIdUnsafe()
 * const prepared = EventStoreSupport.prepare({
 *   streamId: "Order-1",
 *   events: [{ eventId, type: "OrderCreated", schemaVersion: 1, data: {} }]
 * })
 * if ("events" in prepared) {
 *   // the store found the id already stored, as the same append: a retry, answered with the original result
 *   const stored = { eventId, streamId: "Order-1", version: 1, position: Position.make(1, 9n, 1n), type: "OrderCreated", schemaVersion: 1, data: {} }
 *   EventStoreSupport.matchRetry(prepared, [stored]) // { streamId: "Order-1", nextExpectedVersion: 1, positions: [...] }
 * }
 * ```
 *
 * @since 0.1.0
 */
export const matchRetry = (
  prepared: Prepared,
  found: ReadonlyArray<StoredEvent>
): AppendResult | IdempotencyConflict | undefined => {
  if (found.length === 0) return undefined
  const byId = new Map(found.map((s) => [s.eventId.toLowerCase(), s]))
  const stored = prepared.events.map((e) => byId.get(e.event.eventId))
  const conflict = (reason: string) =>
    new IdempotencyConflict({ streamId: prepared.streamId, eventIds: found.map((s) => s.eventId), reason })
  if (stored.some((s) => s === undefined)) return conflict("only some of the appended event ids are stored")
  for (let i = 0; i < stored.length; i++) {
    const previous = stored[i]!
    const { event, dataJson } = prepared.events[i]!
    if (previous.streamId !== prepared.streamId) return conflict(`stored in stream ${previous.streamId}`)
    if (i > 0 && previous.version !== stored[i - 1]!.version + 1) return conflict("stored in another order")
    if (previous.type !== event.type || previous.schemaVersion !== event.schemaVersion) {
      return conflict("stored with another type or schema version")
    }
    if (!EventData.jsonEquals(previous.data as never, JSON.parse(dataJson))) return conflict("stored with other data")
  }
  return {
    streamId: prepared.streamId,
    nextExpectedVersion: stored[stored.length - 1]!.version,
    positions: stored.map((s) => s!.position)
  }
}
