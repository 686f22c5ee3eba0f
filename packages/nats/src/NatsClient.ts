/**
 * A connection to NATS with JetStream: the client the relay's publisher and the inbox's consumer share, opened when
 * its layer is built and drained, then closed, with the layer's scope.
 *
 * @since 0.1.0
 */
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream"
import { connect, type NatsConnection } from "@nats-io/transport-node"
import { Config, Context, Effect, Layer, Predicate, Schema } from "effect"

/**
 * The identifier a `NatsError` carries, for {@link isNatsError}.
 *
 * @example
 * ```ts
 * import { NatsClient } from "@facta/nats"
 *
 * NatsClient.TypeId // "~@facta/nats/NatsError"
 * ```
 *
 * @category type ids
 * @since 0.1.0
 */
export const TypeId = "~@facta/nats/NatsError" as const

/**
 * NATS refused or failed an operation that is not a publish: connecting, creating a stream or a consumer.
 *
 * @example
 * ```ts
 * import { NatsClient } from "@facta/nats"
 *
 * const error = new NatsClient.NatsError({ operation: "connect", cause: "ECONNREFUSED" })
 * error.message // "NATS connect failed: ECONNREFUSED"
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class NatsError extends Schema.TaggedError<NatsError>("@facta/nats/NatsError")("NatsError", {
  operation: Schema.String,
  cause: Schema.Defect()
}) {
  /** Marks the value for {@link isNatsError}. */
  readonly [TypeId] = TypeId

  override get message() {
    return `NATS ${this.operation} failed: ${this.cause instanceof Error ? this.cause.message : String(this.cause)}`
  }
}

/**
 * Whether a value is a `NatsError`.
 *
 * @example
 * ```ts
 * import { NatsClient } from "@facta/nats"
 *
 * NatsClient.isNatsError(new Error("x")) // false
 * ```
 *
 * @category guards
 * @since 0.1.0
 */
export const isNatsError = (u: unknown): u is NatsError => Predicate.hasProperty(u, TypeId)

/**
 * The connection, its JetStream client and manager, and the largest message the server accepts (`max_payload`).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { NatsClient } from "@facta/nats"
 *
 * const limit = NatsClient.NatsClient.use((client) => Effect.succeed(client.maxPayload))
 * ```
 *
 * @category services
 * @since 0.1.0
 */
export class NatsClient extends Context.Service<
  NatsClient,
  {
    readonly connection: NatsConnection
    readonly jetstream: JetStreamClient
    readonly manager: JetStreamManager
    /** The largest message (headers and body) the server accepts, in bytes. */
    readonly maxPayload: number
    /** How long a JetStream publish or API call waits for its answer, in milliseconds. */
    readonly timeout: number
  }
>()("@facta/nats/NatsClient") {}

/**
 * How to connect: the servers (`host:port`, or a list), and a name the server shows for this connection.
 *
 * @category models
 * @since 0.1.0
 */
export interface Options {
  readonly servers: string | ReadonlyArray<string>
  readonly name?: string | undefined
  /** How long a JetStream publish or API call waits for its answer, in milliseconds (default 5000). */
  readonly timeout?: number | undefined
}

/**
 * Connects (retrying while the server starts, up to `timeout`), and drains and closes the connection when the
 * scope closes.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { NatsClient } from "@facta/nats"
 *
 * const program = Effect.scoped(Effect.map(NatsClient.make({ servers: "127.0.0.1:4222" }), (client) => client.maxPayload))
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = Effect.fn("NatsClient.make")(function* (options: Options) {
  const timeout = options.timeout ?? 5000
  const connection = yield* Effect.acquireRelease(
    Effect.tryPromise({
      try: () =>
        connect({
          servers: typeof options.servers === "string" ? options.servers : [...options.servers],
          ...(options.name === undefined ? {} : { name: options.name }),
          timeout,
          reconnect: true,
          maxReconnectAttempts: -1,
          reconnectTimeWait: 250
        }),
      catch: (cause) => new NatsError({ operation: "connect", cause })
    }),
    (nc) => Effect.promise(() => nc.drain().catch(() => nc.close()))
  )
  const manager = yield* Effect.tryPromise({
    try: () => jetstreamManager(connection, { timeout }),
    catch: (cause) => new NatsError({ operation: "jetstream", cause })
  })
  return NatsClient.of({
    connection,
    jetstream: jetstream(connection, { timeout }),
    manager,
    maxPayload: connection.info?.max_payload ?? 1024 * 1024,
    timeout
  })
})

/**
 * The client as a layer: connected when built, closed with the layer's scope.
 *
 * @example
 * ```ts
 * import { NatsClient } from "@facta/nats"
 *
 * const Nats = NatsClient.layer({ servers: "127.0.0.1:4222", name: "bank" })
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = (options: Options): Layer.Layer<NatsClient, NatsError> => Layer.effect(NatsClient, make(options))

/**
 * {@link layer} with its settings read from `Config`, each either a `Config` of its own or a value
 * (`Config.succeed`), or all of them as one `Config`.
 *
 * @example
 * ```ts
 * import { Config } from "effect"
 * import { NatsClient } from "@facta/nats"
 *
 * const Nats = NatsClient.layerConfig({
 *   servers: Config.String("NATS_URL").pipe(Config.withDefault("127.0.0.1:4222")),
 *   name: Config.succeed("bank")
 * })
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export const layerConfig = (config: Config.Wrap<Options>): Layer.Layer<NatsClient, NatsError | Config.ConfigError> =>
  Layer.unwrap(Effect.map(Config.unwrap(config), layer))
