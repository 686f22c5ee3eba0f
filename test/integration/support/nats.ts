import * as net from "node:net"
import { IntegrationEvent } from "@facta/core"
import { NatsClient, NatsPublisher, NatsStream } from "@facta/nats"
import type { RelayConformance } from "@facta/testing"
import { Effect, Layer, Schema } from "effect"

/** The shared NATS server of this machine (or `NATS_URL`). */
export const natsUrl = process.env.NATS_URL ?? "127.0.0.1:4222"

const answers = (url: string): Promise<boolean> => {
  const [host, port] = url.replace(/^nats:\/\//, "").split(":")
  return new Promise((resolve) => {
    const socket = net.connect({ host: host ?? "127.0.0.1", port: Number(port ?? 4222) })
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(1000, () => done(false))
    socket.once("data", (data) => done(data.toString().startsWith("INFO")))
    socket.once("error", () => done(false))
  })
}

/**
 * Whether the broker answers. When it does not, the broker tests are skipped with one line saying why; under
 * `CI=true` a missing broker fails the run instead.
 */
export const natsAvailable = async (): Promise<boolean> => {
  if (await answers(natsUrl)) return true
  const line = `NATS at ${natsUrl} does not answer: the broker tests are skipped`
  if (process.env.CI === "true") throw new Error(`${line} (CI=true requires a broker)`)
  console.log(line)
  return false
}

/** A name no other test run uses: for a stream, a durable consumer, a subject prefix. */
export const unique = (prefix: string) =>
  `${prefix}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`

/** A client on the broker. */
export const client = (servers: string = natsUrl) => NatsClient.layer({ servers, name: "facta-test" })

/** A stream of the test's own (subjects `<prefix>.>`), deleted when the layer is torn down. */
export const stream = (name: string, prefix: string, options?: Omit<NatsStream.Options, "name" | "subjects">) =>
  Layer.effectDiscard(
    Effect.gen(function* () {
      const nats = yield* NatsClient.NatsClient
      yield* NatsStream.ensure({ ...options, name, subjects: [`${prefix}.>`] })
      yield* Effect.addFinalizer(() => Effect.promise(() => nats.manager.streams.delete(name).catch(() => false)))
    })
  )

/** A message body as the relay sends it. */
export interface Body {
  readonly eventId: string
  readonly streamId: string
  readonly version: number
  readonly position: string
  readonly data: unknown
}

/** Every message of a stream, in the stream's order: subject, headers and body (JSON). */
export const readStream = (name: string) =>
  Effect.gen(function* () {
    const nats = yield* NatsClient.NatsClient
    const info = yield* Effect.promise(() => nats.manager.streams.info(name))
    const out: Array<{ subject: string; headers: Record<string, string>; body: Body }> = []
    for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
      const message = yield* Effect.promise(() => nats.manager.streams.getMessage(name, { seq }))
      if (message === null) continue
      const headers: Record<string, string> = {}
      if (message.header !== undefined) for (const [key, values] of message.header) headers[key] = values[0]!
      out.push({ subject: message.subject, headers, body: message.json<Body>() })
    }
    return out
  })

/** How many messages a stream holds. */
export const messageCount = (name: string) =>
  NatsClient.NatsClient.use((nats) =>
    Effect.promise(() => nats.manager.streams.info(name)).pipe(Effect.map((info) => info.state.messages))
  )

/**
 * A destination of the relay conformance suite: a stream of its own (subjects `<prefix>.>`, deleted with the case's
 * scope), the publisher to it, its messages as integration events. The broker refuses publishes for real: the stream
 * is deleted, so that no stream takes the subjects, and created again to accept them.
 */
export const destination = Effect.gen(function* () {
  const nats = yield* NatsClient.NatsClient
  const name = unique("CONF")
  const prefix = unique("t")
  const ensure = NatsStream.ensure({ name, subjects: [`${prefix}.>`] }).pipe(
    Effect.provideService(NatsClient.NatsClient, nats)
  )
  yield* ensure
  yield* Effect.addFinalizer(() => Effect.promise(() => nats.manager.streams.delete(name).catch(() => false)))
  const publisher = yield* NatsPublisher.make({ subject: NatsPublisher.subject(prefix) })
  const decode = Schema.decodeUnknownSync(IntegrationEvent.IntegrationEvent)
  return {
    publisher,
    received: Effect.map(readStream(name), (messages) => messages.map((m) => decode(m.body))).pipe(
      Effect.provideService(NatsClient.NatsClient, nats)
    ),
    refuse: () =>
      Effect.as(
        Effect.promise(() => nats.manager.streams.delete(name)),
        ensure
      ),
    maxMessageBytes: nats.maxPayload
  } satisfies RelayConformance.Destination
})
