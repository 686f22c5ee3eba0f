/**
 * JetStream streams for integration events: created (or updated) with a duplicate window, so that an event the
 * relay publishes again (after a crash, before its checkpoint moved) is dropped by the broker.
 *
 * @since 0.1.0
 */
import { JetStreamApiCodes, JetStreamApiError, StorageType } from "@nats-io/jetstream"
import { nanos } from "@nats-io/transport-node"
import { Duration, Effect } from "effect"
import { NatsClient, NatsError } from "./NatsClient.ts"

/**
 * A stream: its name, the subjects it stores (default `facta.>`, what the relay's publisher sends by default), the
 * duplicate window (default 2 minutes) and, optionally, how long and how much it keeps.
 *
 * @category models
 * @since 0.1.0
 */
export interface Options {
  readonly name: string
  readonly subjects?: ReadonlyArray<string> | undefined
  readonly duplicateWindow?: Duration.Input | undefined
  readonly maxAge?: Duration.Input | undefined
  readonly maxBytes?: number | undefined
  /** The largest message the stream stores, in bytes (default: the server's `max_payload`). */
  readonly maxMessageBytes?: number | undefined
  /** Keep the stream in memory instead of files (default false). */
  readonly memory?: boolean | undefined
}

/**
 * Creates the stream, or updates its subjects and limits when it exists.
 *
 * @example
 * ```ts
 * import { NatsStream } from "@facta/nats"
 *
 * const ready = NatsStream.ensure({ name: "FACTA", subjects: ["facta.>"], duplicateWindow: "5 minutes" })
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const ensure = Effect.fn("NatsStream.ensure")(function* (options: Options) {
  const client = yield* NatsClient
  const config = {
    name: options.name,
    subjects: [...(options.subjects ?? ["facta.>"])],
    duplicate_window: nanos(Duration.toMillis(options.duplicateWindow ?? "2 minutes")),
    ...(options.maxAge === undefined ? {} : { max_age: nanos(Duration.toMillis(options.maxAge)) }),
    ...(options.maxBytes === undefined ? {} : { max_bytes: options.maxBytes }),
    ...(options.maxMessageBytes === undefined ? {} : { max_msg_size: options.maxMessageBytes })
  }
  yield* Effect.tryPromise({
    try: async () => {
      try {
        await client.manager.streams.info(options.name)
      } catch (error) {
        if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound) {
          await client.manager.streams.add({
            ...config,
            ...(options.memory === true ? { storage: StorageType.Memory } : {})
          })
          return
        }
        throw error
      }
      await client.manager.streams.update(options.name, config)
    },
    catch: (cause) => new NatsError({ operation: `ensure stream ${options.name}`, cause })
  })
})
