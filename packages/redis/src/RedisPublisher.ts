/**
 * The relay's publisher for Redis Streams: each integration event is appended (`XADD`) to a stream of its category
 * (`facta:<category>` by default), trimmed by a retention policy (`MAXLEN ~ n`, or `MINID ~` an age), its entry
 * holding the event id and the envelope's fields, and `data` as JSON. A call's entries go in one `MULTI`/`EXEC`, and
 * the call succeeds only once Redis answered every one of them; optionally each entry is also announced with
 * `PUBLISH` on a channel of its category, for best-effort live listeners. An entry larger than the configured limit
 * fails with `MessageTooLarge` before anything of the call is sent.
 *
 * Redis has no broker-side de-duplication: an event the relay publishes again (after a crash, before its checkpoint
 * moved) is a second entry with the same `eventId`, and consumers de-duplicate by it (an inbox does).
 *
 * @since 0.1.0
 */
import { IntegrationEvent, type Relay } from "@facta/core"
import { Clock, Context, Duration, Effect, Layer } from "effect"
import { RedisClient } from "./RedisClient.ts"

/**
 * The fields of an entry: the envelope, and `data` (the event's data as JSON). `correlationId` and `causationId`
 * are present when the event has them.
 *
 * @example
 * ```ts
 * import { RedisPublisher } from "@facta/redis"
 *
 * RedisPublisher.Fields.eventId // "eventId"
 * ```
 *
 * @category constants
 * @since 0.1.0
 */
export const Fields = {
  eventId: "eventId",
  streamId: "streamId",
  category: "category",
  version: "version",
  position: "position",
  type: "type",
  schemaVersion: "schemaVersion",
  correlationId: "correlationId",
  causationId: "causationId",
  recordedAt: "recordedAt",
  data: "data"
} as const

/**
 * The default stream key of an event: `<prefix>:<category>` (prefix `facta`).
 *
 * @example
 * ```ts
 * import { RedisPublisher } from "@facta/redis"
 *
 * const key = RedisPublisher.streamKey("bank") // (event) => "bank:Account" for an Account event
 * ```
 *
 * @category utils
 * @since 0.1.0
 */
export const streamKey =
  (prefix = "facta") =>
  (event: IntegrationEvent.IntegrationEvent): string =>
    `${prefix}:${event.category}`

/**
 * How much a stream keeps: at most about `maxLen` entries (`MAXLEN ~`), or the entries of about the last `maxAge`
 * (`MINID ~`, by the entry ids' times). Trimming is approximate (whole macro nodes), so a stream may hold a few more.
 *
 * @category models
 * @since 0.1.0
 */
export type Retention = { readonly maxLen: number } | { readonly maxAge: Duration.Input } | { readonly keepAll: true }

/**
 * How to publish: the stream key of an event (default {@link streamKey}`()`; keep a stream's events on one key, as
 * any function of the category does, or a failing key could store a stream's later events before its earlier ones:
 * the relay hands this publisher several events of one stream at once), the retention (default
 * `{ maxLen: 1_000_000 }`), the largest entry accepted (default 1 MiB, counting field names and values), and
 * whether to announce each entry with `PUBLISH` (`true`: on the stream's key as channel; or a channel per event).
 *
 * @category models
 * @since 0.1.0
 */
export interface Options {
  readonly key?: ((event: IntegrationEvent.IntegrationEvent) => string) | undefined
  readonly retention?: Retention | undefined
  readonly maxEntryBytes?: number | undefined
  readonly notify?: boolean | ((event: IntegrationEvent.IntegrationEvent) => string) | undefined
}

/**
 * The fields of an event's entry.
 *
 * @example
 * ```ts
 * import type { IntegrationEvent } from "@facta/core"
 * import { RedisPublisher } from "@facta/redis"
 *
 * declare const event: IntegrationEvent.IntegrationEvent
 * const fields = RedisPublisher.toFields(event) // { eventId, streamId, ..., data: "{...}" }
 * ```
 *
 * @category utils
 * @since 0.1.0
 */
export const toFields = (event: IntegrationEvent.IntegrationEvent): Record<string, string> => ({
  [Fields.eventId]: event.eventId,
  [Fields.streamId]: event.streamId,
  [Fields.category]: event.category,
  [Fields.version]: String(event.version),
  [Fields.position]: event.position,
  [Fields.type]: event.type,
  [Fields.schemaVersion]: String(event.schemaVersion),
  ...(event.correlationId === undefined ? {} : { [Fields.correlationId]: event.correlationId }),
  ...(event.causationId === undefined ? {} : { [Fields.causationId]: event.causationId }),
  [Fields.recordedAt]: event.recordedAt,
  [Fields.data]: JSON.stringify(event.data)
})

// counted, not encoded: encoding every field to measure it took about a quarter of a relay's round (profiled)
const sizeOf = (fields: Record<string, string>): number => {
  let size = 0
  for (const [name, value] of Object.entries(fields)) size += Buffer.byteLength(name) + Buffer.byteLength(value)
  return size
}

/** A failed `EXEC` (node-redis' `MultiErrorReply`) said by its first failed command's error. */
const firstError = (cause: unknown): unknown => {
  const replies = (cause as { readonly replies?: unknown }).replies
  const indexes = (cause as { readonly errorIndexes?: unknown }).errorIndexes
  if (!Array.isArray(replies) || !Array.isArray(indexes) || indexes.length === 0) return cause
  const first = replies[indexes[0] as number]
  const text = first instanceof Error ? first.message : String(first)
  return new Error(`${indexes.length} of ${replies.length} commands failed, the first with: ${text}`)
}

/**
 * Makes a publisher on the client's connection.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Relay } from "@facta/core"
 * import { RedisPublisher } from "@facta/redis"
 *
 * const relay = Effect.map(
 *   RedisPublisher.make({ key: RedisPublisher.streamKey("bank"), retention: { maxAge: "7 days" }, notify: true }),
 *   (publisher) => Relay.make({ name: "bank-out", publisher })
 * )
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = Effect.fn("RedisPublisher.make")(function* (options?: Options) {
  const client = yield* RedisClient
  const keyOf = options?.key ?? streamKey()
  const limit = options?.maxEntryBytes ?? 1024 * 1024
  const retention = options?.retention ?? { maxLen: 1_000_000 }
  const notify = options?.notify ?? false
  const channelOf = notify === false ? undefined : notify === true ? keyOf : notify
  const publish = Effect.fn("RedisPublisher.publish")(function* (
    events: ReadonlyArray<IntegrationEvent.IntegrationEvent>
  ) {
    if (events.length === 0) return
    const entries = events.map((event) => {
      const fields = toFields(event)
      return { event, fields, size: sizeOf(fields) }
    })
    const tooLarge = entries.find((e) => e.size > limit)
    if (tooLarge !== undefined) {
      return yield* new IntegrationEvent.MessageTooLarge({
        broker: "redis",
        messageId: tooLarge.event.eventId,
        size: tooLarge.size,
        limit
      })
    }
    const now = yield* Clock.currentTimeMillis
    const trim =
      "maxLen" in retention
        ? { TRIM: { strategy: "MAXLEN" as const, strategyModifier: "~" as const, threshold: retention.maxLen } }
        : "maxAge" in retention
          ? {
              TRIM: {
                strategy: "MINID" as const,
                strategyModifier: "~" as const,
                threshold: Math.max(0, now - Duration.toMillis(Duration.fromInputUnsafe(retention.maxAge)))
              }
            }
          : {}
    const replies = yield* Effect.tryPromise({
      try: () => {
        const multi = client.connection.multi()
        for (const entry of entries) {
          const key = keyOf(entry.event)
          multi.xAdd(key, "*", entry.fields, trim)
          if (channelOf !== undefined) multi.publish(channelOf(entry.event), JSON.stringify(entry.event))
        }
        return multi.exec()
      },
      catch: (cause) =>
        new IntegrationEvent.PublishError({ broker: "redis", retryable: true, cause: firstError(cause) })
    }).pipe(
      Effect.timeoutOrElse({
        duration: client.timeout,
        orElse: () =>
          Effect.fail(
            new IntegrationEvent.PublishError({
              broker: "redis",
              retryable: true,
              cause: `no answer within ${client.timeout} ms`
            })
          )
      })
    )
    // EXEC answers each command; one that failed (a key of another type, out of memory) is in its place
    const failed = (replies as ReadonlyArray<unknown>).find((reply) => reply instanceof Error)
    if (failed !== undefined) {
      return yield* new IntegrationEvent.PublishError({ broker: "redis", retryable: true, cause: failed })
    }
  })
  // one MULTI stores its XADDs in order, and those of one key all or none: a stream's events stay in order as long as
  // they share a key (the default key, per category, does)
  const publisher: Relay.Publisher = { broker: "redis", ordered: true, publish }
  return publisher
})

/**
 * A publisher as a service, for a relay built from the context.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Relay } from "@facta/core"
 * import { RedisPublisher } from "@facta/redis"
 *
 * const relay = RedisPublisher.RedisPublisher.use((publisher) => Effect.succeed(Relay.make({ name: "out", publisher })))
 * ```
 *
 * @category services
 * @since 0.1.0
 */
export class RedisPublisher extends Context.Service<RedisPublisher, Relay.Publisher>()("@facta/redis/RedisPublisher") {}

/**
 * The publisher as a layer, on the `RedisClient` of the context.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { RedisClient, RedisPublisher } from "@facta/redis"
 *
 * const Publisher = RedisPublisher.layer({ retention: { maxLen: 100_000 } }).pipe(
 *   Layer.provide(RedisClient.layer({ url: "redis://127.0.0.1:6379" }))
 * )
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = (options?: Options): Layer.Layer<RedisPublisher, never, RedisClient> =>
  Layer.effect(RedisPublisher, make(options))
