/**
 * The relay's publisher for NATS JetStream: each integration event goes to a subject of its category and type
 * (`facta.<category>.<type>` by default), with `Nats-Msg-Id` set to the event id (so that the stream's duplicate
 * window drops an event published again) and the event's envelope in headers; the publisher waits for every
 * publish acknowledgement. The messages of a call are written to the connection together, each with a reply subject
 * of the call's own inbox, and their acknowledgements are collected as they come (a JetStream asynchronous
 * publish): no request, timer or promise per message. A message larger than the server's `max_payload` fails with
 * `MessageTooLarge`, and one whose type, correlation or causation id holds a line break (which a header cannot carry)
 * with `MessageUnsendable`, before anything of the call is sent.
 *
 * @since 0.1.0
 */
import { IntegrationEvent, type Relay } from "@facta/core"
import {
  createInbox,
  type MsgHdrs,
  headers as makeHeaders,
  type NatsConnection,
  type Subscription
} from "@nats-io/transport-node"
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
 * their acknowledgements at once (default 1024).
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

/** The header whose value would hold a line break (those of the event's own strings), if any. */
const lineBreakHeader = (event: IntegrationEvent.IntegrationEvent): string | undefined => {
  if (/[\r\n]/.test(event.type)) return Headers.type
  if (event.correlationId !== undefined && /[\r\n]/.test(event.correlationId)) return Headers.correlationId
  if (event.causationId !== undefined && /[\r\n]/.test(event.causationId)) return Headers.causationId
  return undefined
}

// a fresh set of headers: `append` skips `set`'s search for an earlier value of the same name
const headersOf = (event: IntegrationEvent.IntegrationEvent): MsgHdrs => {
  const h = makeHeaders()
  h.append(Headers.messageId, event.eventId)
  h.append(Headers.streamId, event.streamId)
  h.append(Headers.version, String(event.version))
  h.append(Headers.position, event.position)
  h.append(Headers.type, event.type)
  h.append(Headers.schemaVersion, String(event.schemaVersion))
  if (event.correlationId !== undefined) h.append(Headers.correlationId, event.correlationId)
  if (event.causationId !== undefined) h.append(Headers.causationId, event.causationId)
  return h
}

interface Outgoing {
  readonly event: IntegrationEvent.IntegrationEvent
  readonly subject: string
  readonly body: Uint8Array
  readonly hdrs: MsgHdrs
  readonly size: number
}

const decoder = new TextDecoder()

const publishError = (cause: unknown) => new IntegrationEvent.PublishError({ broker: "nats", retryable: true, cause })

/**
 * Publishes the messages with reply subjects `<inbox>.<index>` under an inbox of the call's own, in one write to
 * the connection, and succeeds once JetStream acknowledged each (a duplicate's acknowledgement counts: the stream
 * holds it). An error acknowledgement, a "no responders" status (no stream takes the subject) or silence past
 * `timeout` fails the call; any of the messages may have been stored then, and the relay publishes them again.
 */
const publishAcknowledged = (connection: NatsConnection, messages: ReadonlyArray<Outgoing>, timeout: number) =>
  Effect.callback<void, IntegrationEvent.PublishError>((resume) => {
    const inbox = createInbox()
    const acknowledged = new Uint8Array(messages.length)
    let pending = messages.length
    let settled = false
    let timer: ReturnType<typeof setTimeout> | undefined
    let subscription: Subscription | undefined
    const cleanUp = () => {
      settled = true
      clearTimeout(timer)
      subscription?.unsubscribe()
    }
    const settle = (failure?: unknown) => {
      if (settled) return
      cleanUp()
      resume(failure === undefined ? Effect.void : Effect.fail(publishError(failure)))
    }
    try {
      subscription = connection.subscribe(`${inbox}.*`, {
        callback: (error, reply) => {
          if (error !== null) return settle(error)
          if (reply.data.length === 0) {
            const code = reply.headers?.code
            return settle(code === 503 ? "no stream takes the subject (no responders)" : `status ${code ?? "unknown"}`)
          }
          const ack = JSON.parse(decoder.decode(reply.data)) as {
            readonly error?: { readonly code: number; readonly description: string }
          }
          if (ack.error !== undefined)
            return settle(`JetStream refused a message: ${ack.error.description} (${ack.error.code})`)
          const index = Number(reply.subject.slice(inbox.length + 1))
          if (acknowledged[index] === 0) {
            acknowledged[index] = 1
            if (--pending === 0) settle()
          }
        }
      })
      // written in one go: the client flushes what was written in the same tick together
      for (let i = 0; i < messages.length; i++) {
        const m = messages[i]!
        connection.publish(m.subject, m.body, { reply: `${inbox}.${i}`, headers: m.hdrs })
      }
      timer = setTimeout(
        () => settle(`${pending} of ${messages.length} acknowledgements not received within ${timeout} ms`),
        timeout
      )
    } catch (error) {
      settle(error)
    }
    return Effect.sync(cleanUp)
  })

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
  const concurrency = Math.max(1, options?.concurrency ?? 1024)
  const publish = Effect.fn("NatsPublisher.publish")(function* (
    events: ReadonlyArray<IntegrationEvent.IntegrationEvent>
  ) {
    const limit = client.connection.info?.max_payload ?? client.maxPayload
    const unsendable = events.find((event) => lineBreakHeader(event) !== undefined)
    if (unsendable !== undefined) {
      return yield* new IntegrationEvent.MessageUnsendable({
        broker: "nats",
        messageId: unsendable.eventId,
        reason: `its ${lineBreakHeader(unsendable)} header would hold a line break, which NATS headers cannot carry`
      })
    }
    const messages = events.map((event): Outgoing => {
      const body = encoder.encode(JSON.stringify(event))
      const hdrs = headersOf(event)
      return { event, subject: subjectOf(event), body, hdrs, size: sizeOf(body, hdrs) }
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
    for (let i = 0; i < messages.length; i += concurrency) {
      yield* publishAcknowledged(client.connection, messages.slice(i, i + concurrency), client.timeout)
    }
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
