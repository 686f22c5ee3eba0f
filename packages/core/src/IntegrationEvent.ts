/**
 * Integration events: what a relay sends to other services, and what an inbox receives. By default one is the stored
 * event itself (its id, stream, version, position, type, schema version, data, correlation and causation); a relay
 * may map internal events to a public schema instead, so that they can change without breaking consumers.
 *
 * @since 0.1.0
 */
import { Predicate, Schema } from "effect"
import type { RecordedEvent } from "./Event.ts"
import * as Position from "./Position.ts"
import { category, type StreamId } from "./StreamId.ts"

/**
 * The schema of an integration event as it travels (JSON): a consumer decodes a message body with it.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { IntegrationEvent } from "@facta/core"
 *
 * const event = Schema.decodeUnknownSync(IntegrationEvent.IntegrationEvent)({
 *   eventId: "0190e9a8-0000-7000-8000-000000000000",
 *   streamId: "Account-1",
 *   category: "Account",
 *   version: 1,
 *   position: "0.1.1",
 *   type: "Opened",
 *   schemaVersion: 1,
 *   data: { owner: "ann" },
 *   recordedAt: "2026-01-01T00:00:00.000Z"
 * })
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export const IntegrationEvent = Schema.Struct({
  /** The stored event's id: the message id a broker de-duplicates by, and an inbox records. */
  eventId: Schema.String,
  streamId: Schema.String,
  category: Schema.String,
  /** The event's version in its stream (1-based): per-stream order. */
  version: Schema.Int,
  /** The event's position in the global log, as `Position.format` writes it. */
  position: Schema.String,
  type: Schema.String,
  schemaVersion: Schema.Int,
  data: Schema.Json,
  correlationId: Schema.optionalKey(Schema.String),
  causationId: Schema.optionalKey(Schema.String),
  /** When the event was stored (ISO 8601). */
  recordedAt: Schema.String
})

/**
 * An integration event: see {@link IntegrationEvent}.
 *
 * @example
 * ```ts
 * import type { IntegrationEvent } from "@facta/core"
 *
 * const show = (event: IntegrationEvent.IntegrationEvent) => `${event.streamId}@${event.version} ${event.type}`
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type IntegrationEvent = typeof IntegrationEvent.Type

/**
 * The integration event of a stored event, unchanged: the relay's message when it maps nothing.
 *
 * @example
 * ```ts
 * import type { Event } from "@facta/core"
 * import { IntegrationEvent } from "@facta/core"
 *
 * declare const stored: Event.RecordedEvent
 * const message = IntegrationEvent.fromRecorded(stored) // same id, stream, version, type and data
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const fromRecorded = (event: RecordedEvent): IntegrationEvent => ({
  eventId: event.eventId,
  streamId: event.streamId,
  category: category(event.streamId as StreamId),
  version: event.version,
  position: Position.format(event.position),
  type: event.type,
  schemaVersion: event.schemaVersion,
  data: event.data,
  ...(event.metadata.correlationId === undefined ? {} : { correlationId: event.metadata.correlationId }),
  ...(event.metadata.causationId === undefined ? {} : { causationId: event.metadata.causationId }),
  recordedAt: new Date(event.recordedAt.epochMilliseconds).toISOString()
})

/**
 * The identifier a `PublishError` carries, for {@link isPublishError}.
 *
 * @example
 * ```ts
 * import { IntegrationEvent } from "@facta/core"
 *
 * IntegrationEvent.PublishErrorTypeId // "~@facta/core/PublishError"
 * ```
 *
 * @category type ids
 * @since 0.1.0
 */
export const PublishErrorTypeId = "~@facta/core/PublishError" as const

/**
 * A broker did not acknowledge a publish. `retryable` says whether publishing again may succeed (a lost connection,
 * a timeout, a broker restarting); a relay retries those with backoff for as long as they last and moves no
 * checkpoint meanwhile.
 *
 * @example
 * ```ts
 * import { IntegrationEvent } from "@facta/core"
 *
 * const error = new IntegrationEvent.PublishError({ broker: "nats", retryable: true, cause: "timeout" })
 * error.message // "nats publish failed (retryable): timeout"
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class PublishError extends Schema.TaggedError<PublishError>("@facta/core/PublishError")("PublishError", {
  broker: Schema.String,
  retryable: Schema.Boolean,
  cause: Schema.Defect()
}) {
  /** Marks the value for {@link isPublishError}. */
  readonly [PublishErrorTypeId] = PublishErrorTypeId

  override get message() {
    const cause = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `${this.broker} publish failed${this.retryable ? " (retryable)" : ""}: ${cause}`
  }
}

/**
 * Whether a value is a `PublishError`.
 *
 * @example
 * ```ts
 * import { IntegrationEvent } from "@facta/core"
 *
 * IntegrationEvent.isPublishError(new Error("x")) // false
 * ```
 *
 * @category guards
 * @since 0.1.0
 */
export const isPublishError = (u: unknown): u is PublishError => Predicate.hasProperty(u, PublishErrorTypeId)

/**
 * The identifier a `MessageTooLarge` carries, for {@link isMessageTooLarge}.
 *
 * @example
 * ```ts
 * import { IntegrationEvent } from "@facta/core"
 *
 * IntegrationEvent.MessageTooLargeTypeId // "~@facta/core/MessageTooLarge"
 * ```
 *
 * @category type ids
 * @since 0.1.0
 */
export const MessageTooLargeTypeId = "~@facta/core/MessageTooLarge" as const

/**
 * A message is larger than the broker accepts: its id, its size and the broker's limit, in bytes. A relay parks the
 * event with this reason (it would never fit) and goes on.
 *
 * @example
 * ```ts
 * import { IntegrationEvent } from "@facta/core"
 *
 * const error = new IntegrationEvent.MessageTooLarge({ broker: "nats", messageId: "e-1", size: 2_000_000, limit: 1_048_576 })
 * error.message // "nats message e-1 is 2000000 bytes, more than the broker's limit of 1048576 bytes"
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class MessageTooLarge extends Schema.TaggedError<MessageTooLarge>("@facta/core/MessageTooLarge")(
  "MessageTooLarge",
  { broker: Schema.String, messageId: Schema.String, size: Schema.Int, limit: Schema.Int }
) {
  /** Marks the value for {@link isMessageTooLarge}. */
  readonly [MessageTooLargeTypeId] = MessageTooLargeTypeId

  override get message() {
    return `${this.broker} message ${this.messageId} is ${this.size} bytes, more than the broker's limit of ${this.limit} bytes`
  }
}

/**
 * Whether a value is a `MessageTooLarge`.
 *
 * @example
 * ```ts
 * import { IntegrationEvent } from "@facta/core"
 *
 * IntegrationEvent.isMessageTooLarge(new Error("x")) // false
 * ```
 *
 * @category guards
 * @since 0.1.0
 */
export const isMessageTooLarge = (u: unknown): u is MessageTooLarge => Predicate.hasProperty(u, MessageTooLargeTypeId)

/**
 * The identifier a `MessageUnsendable` carries, for {@link isMessageUnsendable}.
 *
 * @example
 * ```ts
 * import { IntegrationEvent } from "@facta/core"
 *
 * IntegrationEvent.MessageUnsendableTypeId // "~@facta/core/MessageUnsendable"
 * ```
 *
 * @category type ids
 * @since 0.1.0
 */
export const MessageUnsendableTypeId = "~@facta/core/MessageUnsendable" as const

/**
 * A message the broker's format cannot carry, however often it is tried: its id and why (a NATS header value with a
 * line break, say). A relay parks the event with this reason and goes on.
 *
 * @example
 * ```ts
 * import { IntegrationEvent } from "@facta/core"
 *
 * const error = new IntegrationEvent.MessageUnsendable({
 *   broker: "nats",
 *   messageId: "e-1",
 *   reason: "its Facta-Correlation-Id header would hold a line break"
 * })
 * error.message // "nats message e-1 cannot be sent: its Facta-Correlation-Id header would hold a line break"
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class MessageUnsendable extends Schema.TaggedError<MessageUnsendable>("@facta/core/MessageUnsendable")(
  "MessageUnsendable",
  { broker: Schema.String, messageId: Schema.String, reason: Schema.String }
) {
  /** Marks the value for {@link isMessageUnsendable}. */
  readonly [MessageUnsendableTypeId] = MessageUnsendableTypeId

  override get message() {
    return `${this.broker} message ${this.messageId} cannot be sent: ${this.reason}`
  }
}

/**
 * Whether a value is a `MessageUnsendable`.
 *
 * @example
 * ```ts
 * import { IntegrationEvent } from "@facta/core"
 *
 * IntegrationEvent.isMessageUnsendable(new Error("x")) // false
 * ```
 *
 * @category guards
 * @since 0.1.0
 */
export const isMessageUnsendable = (u: unknown): u is MessageUnsendable =>
  Predicate.hasProperty(u, MessageUnsendableTypeId)
