/**
 * The message brokers of the relay workload (workloads/relay.ts): NATS JetStream and Redis Streams, each giving
 * destinations of their own (a JetStream stream, a Redis key prefix; deleted afterwards) with the relay's publisher
 * on it, a direct-publish baseline on the same client, a count of what it holds, and an inbox reading it.
 */
import * as net from "node:net"
import type { Inbox, IntegrationEvent, Relay } from "@facta/core"
import { NatsClient, NatsInbox, NatsPublisher, NatsStream } from "@facta/nats"
import { RedisClient, RedisInbox, RedisPublisher } from "@facta/redis"
import { Effect, type Scope } from "effect"

/** The shared brokers of this machine (or `NATS_URL`, `REDIS_URL`). */
export const natsUrl = process.env.NATS_URL ?? "127.0.0.1:4222"
export const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379"

/**
 * Messages the direct-publish baselines keep in flight: NATS, windows of this many asynchronous publishes through the
 * relay's own publisher, each window's acknowledgements awaited before the next; Redis, pipelines of this many
 * `XADD`s (node-redis writes the commands of one tick together), each awaited before the next.
 */
export const baselineInFlight = 1000

/** Where a relay or a baseline publishes and an inbox reads. */
export interface Destination {
  readonly publisher: Relay.Publisher
  /** Publishes the messages straight to the broker on the same client: no log, no checkpoint. */
  readonly direct: (messages: ReadonlyArray<IntegrationEvent.IntegrationEvent>) => Effect.Effect<void, unknown>
  /** How many messages the destination holds. */
  readonly stored: Effect.Effect<number, unknown>
  /** Runs an inbox on the messages of one category, until interrupted. */
  readonly consume: <A>(inbox: Inbox.Inbox<A>, category: string) => Effect.Effect<void, unknown, Inbox.InboxStore>
}

export interface Broker {
  readonly label: string
  /** A short name for relay, stream and key names. */
  readonly key: string
  /** A fresh destination, deleted when the scope closes. */
  readonly destination: (tag: string) => Effect.Effect<Destination, unknown, Scope.Scope>
}

/** Whether something answers on host:port like the broker would (NATS sends INFO; Redis answers a PING). */
const answers = (host: string, port: number, ping: boolean, ok: (greeting: string) => boolean): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = net.connect({ host, port })
    const done = (answer: boolean) => {
      socket.destroy()
      resolve(answer)
    }
    socket.setTimeout(1000, () => done(false))
    if (ping) socket.once("connect", () => socket.write("PING\r\n"))
    socket.once("data", (data) => done(ok(data.toString())))
    socket.once("error", () => done(false))
  })

const unique = (tag: string, stamp: string) => `bench_${tag}_${stamp}_${Math.random().toString(36).slice(2, 6)}`

/** NATS JetStream, or why not. */
export const nats = (stamp: string): Effect.Effect<Broker | string, never, Scope.Scope> =>
  Effect.gen(function* () {
    const [host, port] = natsUrl.replace(/^nats:\/\//, "").split(":")
    const up = yield* Effect.promise(() =>
      answers(host || "127.0.0.1", Number(port ?? 4222), false, (greeting) => greeting.startsWith("INFO"))
    )
    if (!up) return `NATS at ${natsUrl} does not answer`
    const client = yield* Effect.orDie(NatsClient.make({ servers: natsUrl, name: "facta-bench" }))
    const provide = Effect.provideService(NatsClient.NatsClient, client)
    const destination = (tag: string) =>
      Effect.gen(function* () {
        const name = unique(tag, stamp).toUpperCase()
        const prefix = unique(tag, stamp)
        yield* provide(NatsStream.ensure({ name, subjects: [`${prefix}.>`] }))
        yield* Effect.addFinalizer(() => Effect.promise(() => client.manager.streams.delete(name).catch(() => false)))
        const subjectOf = NatsPublisher.subject(prefix)
        const publisher = yield* provide(NatsPublisher.make({ subject: subjectOf }))
        // the publisher itself, fed from memory: the client's fastest way (asynchronous publishes, one write per
        // window) with the same headers, no log and no checkpoint
        const direct = (messages: ReadonlyArray<IntegrationEvent.IntegrationEvent>) =>
          Effect.gen(function* () {
            for (let i = 0; i < messages.length; i += baselineInFlight)
              yield* publisher.publish(messages.slice(i, i + baselineInFlight))
          })
        const stored = Effect.promise(() => client.manager.streams.info(name)).pipe(
          Effect.map((info) => info.state.messages)
        )
        const consume = <A>(inbox: Inbox.Inbox<A>, category: string) =>
          provide(
            NatsInbox.run(inbox, { stream: name, durable: "bench-inbox", filterSubjects: [`${prefix}.${category}.>`] })
          )
        return { publisher, direct, stored, consume } satisfies Destination
      })
    return { label: "NATS JetStream", key: "nats", destination } satisfies Broker
  })

/** Redis Streams, or why not. */
export const redis = (stamp: string): Effect.Effect<Broker | string, never, Scope.Scope> =>
  Effect.gen(function* () {
    const url = new URL(redisUrl)
    const up = yield* Effect.promise(() =>
      answers(url.hostname || "127.0.0.1", Number(url.port || 6379), true, (greeting) => /^[+-]/.test(greeting))
    )
    if (!up) return `Redis at ${redisUrl} does not answer`
    const client = yield* Effect.orDie(RedisClient.make({ url: redisUrl, name: "facta-bench" }))
    const connection = client.connection
    const provide = Effect.provideService(RedisClient.RedisClient, client)
    // the publisher's default retention, for the baseline's XADDs too
    const trim = { TRIM: { strategy: "MAXLEN" as const, strategyModifier: "~" as const, threshold: 1_000_000 } }
    const keysOf = async (prefix: string) => {
      const keys: Array<string> = []
      for await (const batch of connection.scanIterator({ MATCH: `${prefix}:*`, COUNT: 1000 })) keys.push(...batch)
      return keys
    }
    const destination = (tag: string) =>
      Effect.gen(function* () {
        const prefix = unique(tag, stamp)
        yield* Effect.addFinalizer(() =>
          Effect.promise(async () => {
            const keys = await keysOf(prefix)
            if (keys.length > 0) await connection.del(keys)
          }).pipe(Effect.ignore)
        )
        const keyOf = RedisPublisher.streamKey(prefix)
        const publisher = yield* provide(RedisPublisher.make({ key: keyOf }))
        const direct = (messages: ReadonlyArray<IntegrationEvent.IntegrationEvent>) =>
          Effect.promise(async () => {
            for (let i = 0; i < messages.length; i += baselineInFlight) {
              await Promise.all(
                messages
                  .slice(i, i + baselineInFlight)
                  .map((m) => connection.xAdd(keyOf(m), "*", RedisPublisher.toFields(m), trim))
              )
            }
          })
        const stored = Effect.promise(async () => {
          let n = 0
          for (const key of await keysOf(prefix)) n += await connection.xLen(key)
          return n
        })
        const consume = <A>(inbox: Inbox.Inbox<A>, category: string) =>
          provide(RedisInbox.run(inbox, { key: `${prefix}:${category}`, group: "bench-inbox" }))
        return { publisher, direct, stored, consume } satisfies Destination
      })
    return { label: "Redis Streams", key: "redis", destination } satisfies Broker
  })
