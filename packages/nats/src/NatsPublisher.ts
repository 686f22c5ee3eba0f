/**
 * The relay's publisher for NATS JetStream: each integration event goes to a subject of its category and type
 * (`facta.<category>.<type>` by default), with `Nats-Msg-Id` set to the event id (so that the stream's duplicate
 * window drops an event published again) and the event's envelope in headers; the publisher waits for every
 * publish acknowledgement. A message larger than the server's `max_payload` fails with `MessageTooLarge` before
 * anything of the call is sent.
 *
 * @since 0.1.0
 */
import { IntegrationEvent, type Relay } from "@facta/core"
import { type MsgHdrs, headers as makeHeaders } from "@nats-io/transport-node"
import { Context, Effect, Layer } from "effect"
import { NatsClient } from "./NatsClient.ts"

/**
 * The headers the publisher sets, beside `Nats-Msg-Id` (the event id).
 *
 * @example
 * ```ts
 * import { NatsPublisher } from "@facta/nats"
 *
 * NatsPublisher.Headers.streamId // "Facta-Stream-Id"
 * ```
 *
 * @category constants
 * @since 0.1.0
 */
export const Headers = {
  messageId: "Nats-Msg-Id",
  streamId: "Facta-Stream-Id",
  version: "Facta-Version",
  position: "Facta-Position",
  type: "Facta-Type",
  schemaVersion: "Facta-Schema-Version",
  correlationId: "Facta-Correlation-Id",
  causationId: "Facta-Causation-Id"
} as const

/** A subject token: no dots, wildcards or white space. */
const token = (text: string): string => text.replace(/[.*>\s]/g, "_")

/**
 * The default subject of an event: `<prefix>.<category>.<type>` (prefix `facta`), each token with dots, wildcards
 * and white space replaced by `_`.
 *
 * @example
 * ```ts
 * import { NatsPublisher } from "@facta/nats"
 *
 * const subject = NatsPublisher.subject("bank") // (event) => "bank.Account.Deposited" for an Account deposit
 * ```
 *
 * @category utils
 * @since 0.1.0
 */
export const subject =
  (prefix = "facta") =>
  (event: IntegrationEvent.IntegrationEvent): string =>
    `${prefix}.${token(event.category)}.${token(event.type)}`

/**
 * How to publish: the subject of an event (default {@link subject}`()`), and how many publishes of one call wait for
 * their acknowledgements at once (default 256).
 *
 * @category models
 * @since 0.1.0
 */
export interface Options {
  readonly subject?: ((event: IntegrationEvent.IntegrationEvent) => string) | undefined
  readonly concurrency?: number | undefined
}

const encoder = new TextEncoder()

/** The size NATS counts for a message: its body and its headers as they go on the wire. */
const sizeOf = (body: Uint8Array, hdrs: MsgHdrs): number => {
  let size = body.byteLength + "NATS/1.0\r\n\r\n".length
  for (const [key, values] of hdrs)
    for (const value of values) size += Buffer.byteLength(key) + Buffer.byteLength(value) + 4
  return size
}

const headersOf = (event: IntegrationEvent.IntegrationEvent): MsgHdrs => {
  const h = makeHeaders()
  h.set(Headers.streamId, event.streamId)
  h.set(Headers.version, String(event.version))
  h.set(Headers.position, event.position)
  h.set(Headers.type, event.type)
  h.set(Headers.schemaVersion, String(event.schemaVersion))
  if (event.correlationId !== undefined) h.set(Headers.correlationId, event.correlationId)
  if (event.causationId !== undefined) h.set(Headers.causationId, event.causationId)
  return h
}

/**
 * Makes a publisher on the client's connection.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Relay } from "@facta/core"
 * import { NatsPublisher } from "@facta/nats"
 *
 * const relay = Effect.map(NatsPublisher.make({ subject: NatsPublisher.subject("bank") }), (publisher) =>
 *   Relay.make({ name: "bank-out", publisher })
 * )
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = Effect.fn("NatsPublisher.make")(function* (options?: Options) {
  const client = yield* NatsClient
  const subjectOf = options?.subject ?? subject()
  const concurrency = Math.max(1, options?.concurrency ?? 256)
  const publish = Effect.fn("NatsPublisher.publish")(function* (
    events: ReadonlyArray<IntegrationEvent.IntegrationEvent>
  ) {
    const limit = client.connection.info?.max_payload ?? client.maxPayload
    const messages = events.map((event) => {
      const body = encoder.encode(JSON.stringify(event))
      const hdrs = headersOf(event)
      return { event, body, hdrs, size: sizeOf(body, hdrs) + Headers.messageId.length + event.eventId.length + 4 }
    })
    const tooLarge = messages.find((m) => m.size > limit)
    if (tooLarge !== undefined) {
      return yield* new IntegrationEvent.MessageTooLarge({
        broker: "nats",
        messageId: tooLarge.event.eventId,
        size: tooLarge.size,
        limit
      })
    }
    yield* Effect.forEach(
      messages,
      (m) =>
        Effect.tryPromise({
          try: () => client.jetstream.publish(subjectOf(m.event), m.body, { msgID: m.event.eventId, headers: m.hdrs }),
          catch: (cause) => new IntegrationEvent.PublishError({ broker: "nats", retryable: true, cause })
        }),
      { concurrency, discard: true }
    )
  })
  const publisher: Relay.Publisher = { broker: "nats", publish }
  return publisher
})

/**
 * A publisher as a service, for a relay built from the context.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Relay } from "@facta/core"
 * import { NatsPublisher } from "@facta/nats"
 *
 * const relay = NatsPublisher.NatsPublisher.use((publisher) => Effect.succeed(Relay.make({ name: "out", publisher })))
 * ```
 *
 * @category services
 * @since 0.1.0
 */
export class NatsPublisher extends Context.Service<NatsPublisher, Relay.Publisher>()("@facta/nats/NatsPublisher") {}

/**
 * The publisher as a layer, on the `NatsClient` of the context.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { NatsClient, NatsPublisher } from "@facta/nats"
 *
 * const Publisher = NatsPublisher.layer().pipe(Layer.provide(NatsClient.layer({ servers: "127.0.0.1:4222" })))
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = (options?: Options): Layer.Layer<NatsPublisher, never, NatsClient> =>
  Layer.effect(NatsPublisher, make(options))
