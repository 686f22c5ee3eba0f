import * as net from "node:net"
import { IntegrationEvent } from "@facta/core"
import { RedisClient, RedisInbox, RedisPublisher } from "@facta/redis"
import type { RelayConformance } from "@facta/testing"
import { Effect, Layer, Schema } from "effect"

/** The shared Redis server of this machine (or `REDIS_URL`). */
export const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379"

const answers = (url: string): Promise<boolean> => {
  const parsed = new URL(url)
  return new Promise((resolve) => {
    const socket = net.connect({ host: parsed.hostname || "127.0.0.1", port: Number(parsed.port || 6379) })
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(1000, () => done(false))
    // a server asking for a password answers -NOAUTH: it is there
    socket.once("connect", () => socket.write("PING\r\n"))
    socket.once("data", (data) => done(/^[+-]/.test(data.toString())))
    socket.once("error", () => done(false))
  })
}

/**
 * Whether the broker answers. When it does not, the broker tests are skipped with one line saying why; under
 * `CI=true` a missing broker fails the run instead.
 */
export const redisAvailable = async (): Promise<boolean> => {
  if (await answers(redisUrl)) return true
  const line = `Redis at ${redisUrl} does not answer: the broker tests are skipped`
  if (process.env.CI === "true") throw new Error(`${line} (CI=true requires a broker)`)
  console.log(line)
  return false
}

/** A name no other test run uses: for a key prefix, a consumer group. */
export const unique = (prefix: string) =>
  `${prefix}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`

/** A client on the broker. */
export const client = (url: string = redisUrl) => RedisClient.layer({ url, name: "facta-test" })

/** A client whose keys under `<prefix>:*` are deleted when the layer is torn down. */
export const clientWithPrefix = (prefix: string, url: string = redisUrl) =>
  Layer.effectDiscard(
    Effect.gen(function* () {
      const redis = yield* RedisClient.RedisClient
      yield* Effect.addFinalizer(() => Effect.promise(() => deletePrefix(redis.connection, prefix)))
    })
  ).pipe(Layer.provideMerge(client(url)))

const deletePrefix = async (connection: RedisClient.Connection, prefix: string) => {
  try {
    const keys: Array<string> = []
    for await (const batch of connection.scanIterator({ MATCH: `${prefix}:*`, COUNT: 1000 })) keys.push(...batch)
    if (keys.length > 0) await connection.del(keys)
  } catch {
    // the server is gone: nothing to clean
  }
}

/** An entry's fields, and the integration event it carries (data parsed). */
export interface Entry {
  readonly id: string
  readonly fields: Record<string, string>
  readonly body: {
    readonly eventId: string
    readonly streamId: string
    readonly version: number
    readonly position: string
    readonly data: unknown
  }
}

/** Every entry of a stream, in the stream's order. */
export const readStream = (key: string) =>
  RedisClient.RedisClient.use((redis) =>
    Effect.promise(() => redis.connection.xRange(key, "-", "+")).pipe(
      Effect.map((entries) =>
        entries.map((entry): Entry => {
          const fields = { ...(entry.message as Record<string, string>) }
          return {
            id: entry.id,
            fields,
            body: {
              eventId: fields.eventId!,
              streamId: fields.streamId!,
              version: Number(fields.version),
              position: fields.position!,
              data: JSON.parse(fields.data!)
            }
          }
        })
      )
    )
  )

/** How many entries a stream holds. */
export const length = (key: string) =>
  RedisClient.RedisClient.use((redis) => Effect.promise(() => redis.connection.xLen(key)))

/**
 * A destination of the relay conformance suite: a key prefix of its own (its keys deleted with the case's scope),
 * the default publisher to a stream per category under it (limit 1 MiB), and its entries read back as a consumer
 * reads them (`RedisInbox.toDelivery`, then the integration event's schema). Redis refuses the XADDs for real: the
 * categories' keys hold strings (WRONGTYPE) until they are deleted.
 */
export const destination = Effect.gen(function* () {
  const redis = yield* RedisClient.RedisClient
  const prefix = unique("conf")
  yield* Effect.addFinalizer(() => Effect.promise(() => deletePrefix(redis.connection, prefix)))
  const publisher = yield* RedisPublisher.make({ key: RedisPublisher.streamKey(prefix) })
  const decode = Schema.decodeUnknownSync(Schema.fromJsonString(IntegrationEvent.IntegrationEvent))
  const received = Effect.promise(async () => {
    const keys: Array<string> = []
    for await (const batch of redis.connection.scanIterator({ MATCH: `${prefix}:*`, COUNT: 1000 })) keys.push(...batch)
    const events: Array<IntegrationEvent.IntegrationEvent> = []
    for (const key of keys.sort()) {
      for (const entry of await redis.connection.xRange(key, "-", "+")) {
        const delivery = RedisInbox.toDelivery(key, entry.id, entry.message as Record<string, string>)
        events.push(decode(new TextDecoder().decode(delivery.body)))
      }
    }
    return events
  })
  return {
    publisher,
    received,
    refuse: (categories: ReadonlyArray<string>) => {
      const keys = categories.map((category) => `${prefix}:${category}`)
      return Effect.as(
        Effect.promise(() => Promise.all(keys.map((key) => redis.connection.set(key, "not a stream")))),
        Effect.promise(() => redis.connection.del(keys))
      )
    },
    refusal: "WRONGTYPE",
    maxMessageBytes: 1024 * 1024
  } satisfies RelayConformance.Destination
})
