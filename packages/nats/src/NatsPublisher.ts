/**
 * The relay's publisher for NATS JetStream: each integration event goes to a subject of its category and type
 * (`facta.<category>.<type>` by default), with `Nats-Msg-Id` set to the event id (so that the stream's duplicate
 * window drops an event published again) and the event's envelope in headers; the publisher waits for every
 * publish acknowledgement. The messages of a call are written to the connection together, each with a reply subject
 * of the call's own inbox, and their acknowledgements are collected as they come (a JetStream asynchronous
 * publish): no request, timer or promise per message. A message larger than the server's `max_payload` fails with
 * `MessageTooLarge`, and one NATS cannot carry (a header value with a line break, a subject that is not one) with
 * `MessageUnsendable`, before anything of the call is sent; a message the stream refuses as larger than its
 * `max_msg_size` is `MessageUnsendable` too.
 *
 * @since 0.1.0
 */
import { IntegrationEvent, type Relay } from "@facta/core"
import {
  createInbox,
  type Msg,
  type MsgHdrs,
  headers as makeHeaders,
  type NatsConnection,
  type Subscription
} from "@nats-io/transport-node"
import { Array as Arr, Context, Effect, Layer } from "effect"
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
 * How to publish: the subject of an event (default {@link subject}`()`), and how many messages are written at once
 * before their acknowledgements are awaited (default 1024; a call of more is published in windows of that many).
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

/** The first header whose value would hold a line break, which a NATS header cannot carry, if any. */
const lineBreakHeader = (event: IntegrationEvent.IntegrationEvent): string | undefined => {
  const values: ReadonlyArray<readonly [string, string | undefined]> = [
    [Headers.messageId, event.eventId],
    [Headers.streamId, event.streamId],
    [Headers.position, event.position],
    [Headers.type, event.type],
    [Headers.correlationId, event.correlationId],
    [Headers.causationId, event.causationId]
  ]
  return values.find(([, value]) => value !== undefined && /[\r\n]/.test(value))?.[0]
}

/** Why a subject cannot be published to (empty, white space, an empty token, a wildcard), if it cannot. */
const invalidSubject = (subject: string): string | undefined =>
  subject.length === 0 || /\s/.test(subject)
    ? "it is empty or holds white space"
    : subject.split(".").some((t) => t === "" || t === "*" || t === ">")
      ? "it has an empty or wildcard token"
      : undefined

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

/** JetStream's error code for a message larger than the stream's `max_msg_size`: sending it again never helps. */
const messageSizeExceeded = 10054

interface PubAck {
  readonly error?: { readonly code: number; readonly err_code?: number; readonly description: string }
}

/**
 * Publishes the messages with reply subjects `<inbox>.<index>` under an inbox of the call's own, in one write to
 * the connection, and succeeds once JetStream acknowledged each (a duplicate's acknowledgement counts: the stream
 * holds it). An error acknowledgement, a "no responders" status (no stream takes the subject) or no acknowledgement
 * for `timeout` (silence, however long the whole call takes) fails the call; any of the messages may have been
 * stored then, and the relay publishes them again. A message the stream finds too large is `MessageUnsendable`.
 */
const publishAcknowledged = (connection: NatsConnection, messages: ReadonlyArray<Outgoing>, timeout: number) =>
  Effect.callback<void, IntegrationEvent.PublishError | IntegrationEvent.MessageUnsendable>((resume) => {
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
      resume(
        failure === undefined
          ? Effect.void
          : IntegrationEvent.isMessageUnsendable(failure)
            ? Effect.fail(failure)
            : Effect.fail(publishError(failure))
      )
    }
    const onReply = (reply: Msg) => {
      if (reply.data.length === 0) {
        const code = reply.headers?.code
        return settle(code === 503 ? "no stream takes the subject (no responders)" : `status ${code ?? "unknown"}`)
      }
      const index = Number(reply.subject.slice(inbox.length + 1))
      const ack = JSON.parse(decoder.decode(reply.data)) as PubAck
      if (ack.error !== undefined) {
        const refused = messages[index]
        return settle(
          ack.error.err_code === messageSizeExceeded && refused !== undefined
            ? new IntegrationEvent.MessageUnsendable({
                broker: "nats",
                messageId: refused.event.eventId,
                reason: `the stream refused its ${refused.size} bytes: ${ack.error.description}`
              })
            : `JetStream refused a message: ${ack.error.description} (${ack.error.code})`
        )
      }
      if (acknowledged[index] === 0) {
        acknowledged[index] = 1
        if (--pending === 0) settle()
      }
    }
    /** Fails the call after `timeout` without an acknowledgement; waits again while they keep coming. */
    const watch = (pendingBefore: number) => {
      timer = setTimeout(() => {
        if (pending < pendingBefore) return watch(pending)
        settle(`${pending} of ${messages.length} acknowledgements missing, none for ${timeout} ms`)
      }, timeout)
    }
    try {
      subscription = connection.subscribe(`${inbox}.*`, {
        // the client's read loop stops for good on an exception from a callback: none may escape
        callback: (error, reply) => {
          try {
            if (error !== null) settle(error)
            else onReply(reply)
          } catch (failure) {
            settle(failure)
          }
        }
      })
      // written in one go: the client flushes what was written in the same tick together
      for (let i = 0; i < messages.length; i++) {
        const m = messages[i]!
        connection.publish(m.subject, m.body, { reply: `${inbox}.${i}`, headers: m.hdrs })
      }
      watch(pending)
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
  /** The message of an event, or why it cannot be sent (a subject function's failure is the event's). */
  const prepare = (event: IntegrationEvent.IntegrationEvent): Outgoing | string => {
    const header = lineBreakHeader(event)
    if (header !== undefined) return `its ${header} header would hold a line break, which NATS headers cannot carry`
    let subjectName: string
    try {
      subjectName = subjectOf(event)
    } catch (error) {
      return `its subject could not be made: ${error instanceof Error ? error.message : String(error)}`
    }
    const invalid = invalidSubject(subjectName)
    if (invalid !== undefined) return `its subject "${subjectName}" is not a NATS subject: ${invalid}`
    const body = encoder.encode(JSON.stringify(event))
    const hdrs = headersOf(event)
    return { event, subject: subjectName, body, hdrs, size: sizeOf(body, hdrs) }
  }
  const publish = Effect.fn("NatsPublisher.publish")(function* (
    events: ReadonlyArray<IntegrationEvent.IntegrationEvent>
  ) {
    const limit = client.connection.info?.max_payload ?? client.maxPayload
    const messages: Array<Outgoing> = []
    for (const event of events) {
      const message = prepare(event)
      if (typeof message === "string") {
        return yield* new IntegrationEvent.MessageUnsendable({
          broker: "nats",
          messageId: event.eventId,
          reason: message
        })
      }
      if (message.size > limit) {
        return yield* new IntegrationEvent.MessageTooLarge({
          broker: "nats",
          messageId: event.eventId,
          size: message.size,
          limit
        })
      }
      messages.push(message)
    }
    for (const window of Arr.chunksOf(messages, concurrency)) {
      yield* publishAcknowledged(client.connection, window, client.timeout)
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
