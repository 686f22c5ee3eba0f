/**
 * A connection to Redis (the official `redis` client, node-redis v5): the connection the relay's publisher sends its
 * commands on, opened when its layer is built and closed with the layer's scope. Blocking reads (an inbox's
 * `XREADGROUP ... BLOCK`) never run on it: each consumer takes a connection of its own with {@link duplicate}.
 *
 * @since 0.1.0
 */
import { Config, Context, Effect, Layer, Predicate, Schema, type Scope } from "effect"
import { createClient, type RedisClientType } from "redis"

/**
 * The identifier a `RedisError` carries, for {@link isRedisError}.
 *
 * @example
 * ```ts
 * import { RedisClient } from "@facta/redis"
 *
 * RedisClient.TypeId // "~@facta/redis/RedisError"
 * ```
 *
 * @category type ids
 * @since 0.1.0
 */
export const TypeId = "~@facta/redis/RedisError" as const

/**
 * Redis refused or failed an operation that is not a publish: connecting, creating a consumer group, reading one.
 *
 * @example
 * ```ts
 * import { RedisClient } from "@facta/redis"
 *
 * const error = new RedisClient.RedisError({ operation: "connect", cause: "ECONNREFUSED" })
 * error.message // "Redis connect failed: ECONNREFUSED"
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class RedisError extends Schema.TaggedError<RedisError>("@facta/redis/RedisError")("RedisError", {
  operation: Schema.String,
  cause: Schema.Defect()
}) {
  /** Marks the value for {@link isRedisError}. */
  readonly [TypeId] = TypeId

  override get message() {
    return `Redis ${this.operation} failed: ${this.cause instanceof Error ? this.cause.message : String(this.cause)}`
  }
}

/**
 * Whether a value is a `RedisError`.
 *
 * @example
 * ```ts
 * import { RedisClient } from "@facta/redis"
 *
 * RedisClient.isRedisError(new Error("x")) // false
 * ```
 *
 * @category guards
 * @since 0.1.0
 */
export const isRedisError = (u: unknown): u is RedisError => Predicate.hasProperty(u, TypeId)

/**
 * A node-redis client (RESP2, no modules).
 *
 * @category models
 * @since 0.1.0
 */
export type Connection = RedisClientType

/**
 * The shared connection, and how long a command waits for its answer before it counts as failed.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { RedisClient } from "@facta/redis"
 *
 * const pong = RedisClient.RedisClient.use((redis) => Effect.promise(() => redis.connection.ping()))
 * ```
 *
 * @category services
 * @since 0.1.0
 */
export class RedisClient extends Context.Service<
  RedisClient,
  {
    readonly connection: Connection
    /** Milliseconds a command waits for its answer (a connection lost meanwhile is retried by the caller). */
    readonly timeout: number
  }
>()("@facta/redis/RedisClient") {}

/**
 * How to connect: the server's URL (`redis://[[user]:password@]host:port[/db]`), a name the server shows for the
 * connection (`CLIENT SETNAME`), and how long connecting and a command may take.
 *
 * @category models
 * @since 0.1.0
 */
export interface Options {
  readonly url: string
  readonly name?: string | undefined
  /** Milliseconds for connecting, and for a command's answer (default 5000). */
  readonly timeout?: number | undefined
}

/** Opens a connection, reconnecting after a loss (every 50 ms, growing to at most 1 s) for as long as it lasts. */
const open = (options: Options): Effect.Effect<Connection, RedisError, Scope.Scope> => {
  const timeout = options.timeout ?? 5000
  return Effect.acquireRelease(
    Effect.tryPromise({
      try: async (signal) => {
        const settings = {
          url: options.url,
          ...(options.name === undefined ? {} : { name: options.name }),
          socket: {
            connectTimeout: timeout,
            reconnectStrategy: (retries: number) => Math.min(1000, 50 * 2 ** Math.min(retries, 5))
          }
        }
        const connection = createClient(settings) as unknown as Connection
        // an error event without a listener would crash the process; the commands in flight fail by themselves
        connection.on("error", () => undefined)
        signal.addEventListener("abort", () => connection.destroy())
        await connection.connect()
        return connection
      },
      catch: (cause) => new RedisError({ operation: "connect", cause })
    }).pipe(
      Effect.timeoutOrElse({
        duration: timeout,
        orElse: () => Effect.fail(new RedisError({ operation: "connect", cause: `no answer within ${timeout} ms` }))
      })
    ),
    (connection) =>
      Effect.promise(() =>
        (connection.isOpen ? connection.close() : Promise.resolve()).catch(() => connection.destroy())
      )
  )
}

/**
 * Connects (failing after `timeout` when the server does not answer), and closes the connection when the scope
 * closes.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { RedisClient } from "@facta/redis"
 *
 * const program = Effect.scoped(
 *   Effect.flatMap(RedisClient.make({ url: "redis://127.0.0.1:6379" }), (redis) =>
 *     Effect.promise(() => redis.connection.ping())
 *   )
 * )
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = Effect.fn("RedisClient.make")(function* (options: Options) {
  const connection = yield* open(options)
  return RedisClient.of({ connection, timeout: options.timeout ?? 5000 })
})

/**
 * A connection of its own to the same server, with the same settings, closed with the scope (destroyed at once:
 * a blocking command in flight is abandoned): for blocking reads, which would hold up every other command of the
 * shared connection.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { RedisClient } from "@facta/redis"
 *
 * const reader = Effect.scoped(Effect.flatMap(RedisClient.duplicate, (connection) => Effect.promise(() => connection.ping())))
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const duplicate: Effect.Effect<Connection, RedisError, RedisClient | Scope.Scope> = Effect.gen(function* () {
  const client = yield* RedisClient
  const connection = yield* Effect.acquireRelease(
    Effect.tryPromise({
      try: async () => {
        const copy = client.connection.duplicate() as Connection
        copy.on("error", () => undefined)
        await copy.connect()
        return copy
      },
      catch: (cause) => new RedisError({ operation: "connect", cause })
    }).pipe(
      Effect.timeoutOrElse({
        duration: client.timeout,
        orElse: () =>
          Effect.fail(new RedisError({ operation: "connect", cause: `no answer within ${client.timeout} ms` }))
      })
    ),
    (copy) => Effect.sync(() => copy.destroy())
  )
  return connection
})

/**
 * The client as a layer: connected when built, closed with the layer's scope.
 *
 * @example
 * ```ts
 * import { RedisClient } from "@facta/redis"
 *
 * const Redis = RedisClient.layer({ url: "redis://127.0.0.1:6379", name: "bank" })
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = (options: Options): Layer.Layer<RedisClient, RedisError> =>
  Layer.effect(RedisClient, make(options))

/**
 * {@link layer} with its settings read from `Config`, each either a `Config` of its own or a value
 * (`Config.succeed`), or all of them as one `Config`.
 *
 * @example
 * ```ts
 * import { Config } from "effect"
 * import { RedisClient } from "@facta/redis"
 *
 * const Redis = RedisClient.layerConfig({
 *   url: Config.String("REDIS_URL").pipe(Config.withDefault("redis://127.0.0.1:6379")),
 *   name: Config.succeed("bank")
 * })
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export const layerConfig = (config: Config.Wrap<Options>): Layer.Layer<RedisClient, RedisError | Config.ConfigError> =>
  Layer.unwrap(Effect.map(Config.unwrap(config), layer))
