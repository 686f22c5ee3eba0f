/**
 * Building blocks for `EventStore` implementations, so that every store refuses exactly the same input and treats
 * retries exactly the same way. The in-memory store and `@facta/postgres` are both built on these.
 *
 * @since 0.1.0
 */
import type { EventId } from "./Event.ts"
import { mergeMetadata } from "./Event.ts"
import type { AppendRequest, AppendResult } from "./EventStore.ts"
import type { InvalidEvent } from "./EventStoreError.ts"
import { IdempotencyConflict } from "./EventStoreError.ts"
import * as ExpectedVersion from "./ExpectedVersion.ts"
import type { ValidEvent } from "./internal/eventData.ts"
import { jsonEquals, validateEvents } from "./internal/eventData.ts"
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
 * Validates one request of an append; ids are lower-cased as a `uuid` column would store them.
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
export const prepare = (request: AppendRequest): Prepared | StreamId.InvalidStreamId | InvalidEvent => {
  const reason = StreamId.validate(request.streamId)
  if (reason !== undefined) return new StreamId.InvalidStreamId({ streamId: request.streamId, reason })
  const metadata = request.metadata ?? {}
  const events = validateEvents(request.streamId, request.events, (event) => mergeMetadata(metadata, event.metadata))
  if (!Array.isArray(events)) return events as InvalidEvent
  const streamId = request.streamId as StreamId.StreamId
  return {
    streamId,
    category: StreamId.category(streamId),
    expected: request.expectedVersion ?? ExpectedVersion.any,
    events
  }
}

/**
 * Validates every request of a transaction; an event id may appear only once in it.
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
  requests: ReadonlyArray<AppendRequest>
): ReadonlyArray<Prepared> | StreamId.InvalidStreamId | InvalidEvent | IdempotencyConflict => {
  if (requests.length === 1) {
    // `prepare` already refuses an id twice within one request
    const one = prepare(requests[0]!)
    return "events" in one ? [one] : one
  }
  const ids = new Set<string>()
  const prepared: Array<Prepared> = []
  for (const request of requests) {
    const one = prepare(request)
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
  return prepared
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
    if (!jsonEquals(previous.data as never, JSON.parse(dataJson))) return conflict("stored with other data")
  }
  return {
    streamId: prepared.streamId,
    nextExpectedVersion: stored[stored.length - 1]!.version,
    positions: stored.map((s) => s!.position)
  }
}
