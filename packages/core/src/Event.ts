/**
 * Events as the store sees them: ids, metadata, the encoded event an append takes and the recorded event a read
 * gives back.
 *
 * Domain events themselves are plain Effect Schema tagged structs; {@link EventCodec} turns them into the JSON
 * documents described here and back.
 *
 * @since 0.1.0
 */

import type { DateTime } from "effect"
import { Clock, Effect, Schema } from "effect"
import * as Uuid from "./internal/uuid.ts"
import type { Position } from "./Position.ts"
import type { StreamId } from "./StreamId.ts"

/**
 * A client-generated event id (a UUID; Facta generates version 7, whose time prefix keeps B-tree inserts
 * append-only). The same id appended twice is a retry, never a second event.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Event } from "@facta/core"
 *
 * const id = Schema.decodeUnknownSync(Event.EventId)("0190b6b3-4a8e-7c3d-9f1e-2b5a6c7d8e9f")
 * ```
 *
 * @category schemas
 * @since 0.1.0
 */
export const EventId = Schema.String.check(Schema.isUUID()).pipe(Schema.brand("@facta/EventId"))

/**
 * @since 0.1.0
 */
export type EventId = typeof EventId.Type

/**
 * A fresh UUIDv7 event id, timed by the `Clock` service.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Event } from "@facta/core"
 *
 * const id = Effect.runSync(Event.makeEventId)
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const makeEventId: Effect.Effect<EventId> = Effect.map(
  Clock.currentTimeMillis,
  (millis) => Uuid.v7(millis) as EventId
)

/**
 * A fresh UUIDv7 event id, timed by the wall clock; for code outside Effect.
 *
 * @example
 * ```ts
 * import { Event } from "@facta/core"
 *
 * const id = Event.makeEventIdUnsafe() // "0190b6b3-...", a UUIDv7
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const makeEventIdUnsafe = (): EventId => Uuid.v7(Date.now()) as EventId

/**
 * An event id derived from another event's id and a purpose: the same inputs always give the same id (a UUIDv8 from
 * SHA-256). A reactor that appends to other streams in response to an event uses it, so that handling the event
 * again (at-least-once delivery, a replay) appends nothing twice: the store takes the second append as a retry.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Event } from "@facta/core"
 *
 * const source = Event.makeEventIdUnsafe()
 * const program = Effect.gen(function*() {
 *   const a = yield* Event.deriveEventId(source, "debit")
 *   const b = yield* Event.deriveEventId(source, "debit")
 *   return a === b // true
 * })
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const deriveEventId = (source: string, purpose: string): Effect.Effect<EventId> =>
  Effect.promise(() =>
    crypto.subtle.digest("SHA-256", new TextEncoder().encode(`${source.toLowerCase()}\u0000${purpose}`))
  ).pipe(Effect.map((digest) => Uuid.v8(new Uint8Array(digest)) as EventId))

/**
 * Who did it, why, and in which trace: carried by every recorded event. `attributes` holds an application's own
 * fields.
 *
 * @example
 * ```ts
 * import { Event } from "@facta/core"
 *
 * const metadata: Event.EventMetadata = {
 *   actor: "user-7",
 *   correlationId: "req-1",
 *   attributes: { channel: "web" }
 * }
 * ```
 *
 * @category schemas
 * @since 0.1.0
 */
export const EventMetadata = Schema.Struct({
  correlationId: Schema.optionalKey(Schema.String),
  causationId: Schema.optionalKey(Schema.String),
  actor: Schema.optionalKey(Schema.String),
  traceId: Schema.optionalKey(Schema.String),
  spanId: Schema.optionalKey(Schema.String),
  attributes: Schema.optionalKey(Schema.Record(Schema.String, Schema.Json))
})

/**
 * @since 0.1.0
 */
export type EventMetadata = typeof EventMetadata.Type

/**
 * Metadata with no field set.
 *
 * @example
 * ```ts
 * import { Event } from "@facta/core"
 *
 * Event.mergeMetadata(Event.emptyMetadata, { actor: "ann" }) // { actor: "ann" }
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const emptyMetadata: EventMetadata = {}

/**
 * Combines metadata; fields of `override` win, attributes are merged.
 *
 * @example
 * ```ts
 * import { Event } from "@facta/core"
 *
 * Event.mergeMetadata({ actor: "ann", attributes: { a: 1 } }, { actor: "bob", attributes: { b: 2 } })
 * // { actor: "bob", attributes: { a: 1, b: 2 } }
 * ```
 *
 * @category utils
 * @since 0.1.0
 */
export const mergeMetadata = (base: EventMetadata, override: EventMetadata | undefined): EventMetadata => {
  if (override === undefined) return base
  const merged: Record<string, unknown> = { ...base }
  for (const [key, value] of Object.entries(override)) if (value !== undefined) merged[key] = value
  if (base.attributes !== undefined && override.attributes !== undefined) {
    merged.attributes = { ...base.attributes, ...override.attributes }
  }
  return merged as EventMetadata
}

/**
 * An event ready to append: already encoded to JSON by its codec.
 *
 * @example
 * ```ts
 * import { Event } from "@facta/core"
 *
 * const event: Event.EventData = {
 *   eventId: Event.makeEventIdUnsafe(),
 *   type: "OrderShipped",
 *   schemaVersion: 1,
 *   data: { trackingNumber: "1Z999", carrier: "UPS" }
 * }
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface EventData {
  readonly eventId: EventId
  /** The event's tag. */
  readonly type: string
  /** The version of the event type's shape that `data` follows (1 for a type that never changed). */
  readonly schemaVersion: number
  readonly data: Schema.Json
  /** Merged over the append's metadata. */
  readonly metadata?: EventMetadata | undefined
}

/**
 * An event as stored: its data is `A` once decoded by a codec, JSON before.
 *
 * @category models
 * @since 0.1.0
 */
export interface RecordedEvent<A = Schema.Json> {
  readonly eventId: EventId
  readonly streamId: StreamId
  /** 1-based and contiguous within the stream. */
  readonly version: number
  /** Where the event sits in the global log. */
  readonly position: Position
  readonly type: string
  readonly schemaVersion: number
  readonly data: A
  readonly metadata: EventMetadata
  readonly recordedAt: DateTime.Utc
}
