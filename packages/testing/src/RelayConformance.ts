/**
 * The conformance suite of relays: every broker (NATS JetStream, Redis Streams, your own `Relay.Publisher`) runs the
 * same cases on the stores it is given, so that a relay behaves the same whichever broker it publishes to.
 *
 * The cases cover every event published once per append under 8 concurrent writers, in order per stream and as
 * stored (the envelope's id, stream, version, position, type, schema version, data, correlation and causation), and
 * nothing handed to the broker again by a restarted relay; category and type filters; a mapping to a public schema,
 * with an event it cannot encode parked with the reason; a message larger than the broker accepts (a typed
 * `MessageTooLarge` naming both sizes, the event parked, the rest published), for a broker with a limit; and a
 * checkpoint that does not move while the broker refuses publishes, then catches up.
 *
 * The stores are built once per {@link run} and shared by all of its cases, which may find data written by earlier
 * cases or earlier runs: every case writes to categories of its own, relays only those and uses relay names of its
 * own. Each case opens destinations of its own on the broker (a stream, a key prefix), so that it reads back only
 * what its relays published.
 *
 * @since 0.1.0
 */
import { layer } from "@effect/vitest"
import type { CheckpointStore, EventStore, IntegrationEvent, Relay } from "@facta/core"
import type { Effect, Layer, Scope } from "effect"
import * as Delivery from "./internal/relayDelivery.ts"
import * as Failures from "./internal/relayFailures.ts"

/**
 * A place on the broker that no other case publishes to, opened by a case (and removed when the case's scope
 * closes):
 *
 * - `publisher`: the relay's publisher to it;
 * - `received`: every message the broker holds there, as the integration events a consumer decodes, in the broker's
 *   order within each event stream (messages of different streams may come in any order);
 * - `refuse(categories)`: makes the broker refuse (retryably) every publish of events of these categories, for real
 *   (no stream for the subjects, a key of the wrong type...), and returns the effect that makes it accept them again;
 * - `refusal`: a text the relay's status shows while refused (the broker's error), if the suite should check it;
 * - `maxMessageBytes`: the largest message the publisher accepts; the oversize cases publish events of a little more
 *   than that (the store under test must take them). A broker with no limit leaves it out and runs the suite with
 *   `oversize: false`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { IntegrationEvent, type Relay } from "@facta/core"
 * import type { RelayConformance } from "@facta/testing"
 *
 * // an in-memory broker: it holds what it is given, refuses messages over 64 KiB, and refuses on request
 * const destination = Effect.sync((): RelayConformance.Destination => {
 *   const held: Array<IntegrationEvent.IntegrationEvent> = []
 *   const refused = new Set<string>()
 *   const limit = 64 * 1024
 *   const publisher: Relay.Publisher = {
 *     broker: "memory",
 *     // suspended: a relay retries the effect a call returns, so the answer is decided when it runs
 *     publish: (events) =>
 *       Effect.suspend((): Effect.Effect<void, IntegrationEvent.PublishError | IntegrationEvent.MessageTooLarge> => {
 *         const large = events.find((event) => JSON.stringify(event).length > limit)
 *         if (large !== undefined) {
 *           const size = JSON.stringify(large).length
 *           return Effect.fail(
 *             new IntegrationEvent.MessageTooLarge({ broker: "memory", messageId: large.eventId, size, limit })
 *           )
 *         }
 *         return events.some((event) => refused.has(event.category))
 *           ? Effect.fail(new IntegrationEvent.PublishError({ broker: "memory", retryable: true, cause: "refused" }))
 *           : Effect.sync(() => void held.push(...events))
 *       })
 *   }
 *   return {
 *     publisher,
 *     received: Effect.sync(() => [...held]),
 *     refuse: (categories) =>
 *       Effect.sync(() => {
 *         for (const category of categories) refused.add(category)
 *         return Effect.sync(() => refused.clear())
 *       }),
 *     maxMessageBytes: limit
 *   }
 * })
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Destination {
  readonly publisher: Relay.Publisher
  readonly received: Effect.Effect<ReadonlyArray<IntegrationEvent.IntegrationEvent>, unknown>
  readonly refuse: (categories: ReadonlyArray<string>) => Effect.Effect<Effect.Effect<void, unknown>, unknown>
  readonly refusal?: string | undefined
  readonly maxMessageBytes?: number | undefined
}

/**
 * The broker under test: its name (what its publisher and its errors call it) and how a case opens a
 * {@link Destination} of its own, with what the layer of {@link run} provides (a client) and a scope.
 *
 * @example
 * ```ts
 * import type { Effect } from "effect"
 * import type { RelayConformance } from "@facta/testing"
 *
 * declare const destination: Effect.Effect<RelayConformance.Destination>
 * const broker: RelayConformance.Broker<never> = { broker: "memory", destination }
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Broker<R> {
  readonly broker: string
  readonly destination: Effect.Effect<Destination, unknown, R | Scope.Scope>
}

/**
 * Registers the relay conformance suite for a broker, as a `describe` block named after it, with `@effect/vitest`.
 *
 * The layer (the stores, and what the broker's destinations need, such as its client) is built once for the block
 * and released after the last case; the cases run with the live clock, since leases, polling and backoff are about
 * real time. Call `run` at the top level of a test file, as you would call `describe`.
 *
 * @example
 * ```ts
 * // test/RelayConformance.memory.test.ts
 * import { CheckpointStore, EventStore } from "@facta/core"
 * import { RelayConformance } from "@facta/testing"
 * import { type Effect, Layer } from "effect"
 *
 * declare const destination: Effect.Effect<RelayConformance.Destination>
 * RelayConformance.run("memory", Layer.mergeAll(EventStore.layerMemory, CheckpointStore.layerMemory), {
 *   broker: "memory",
 *   destination
 * })
 * ```
 *
 * @category testing
 * @since 0.1.0
 */
export const run = <R>(
  name: string,
  storeLayer: Layer.Layer<EventStore.EventStore | CheckpointStore.CheckpointStore | R, unknown>,
  broker: Broker<R>,
  options?: {
    /** Whether to run the oversize cases (default true; they need the destinations' `maxMessageBytes`). */
    readonly oversize?: boolean | undefined
  }
): void => {
  layer(storeLayer, { excludeTestServices: true })(`Relay conformance: ${name}`, (it) => {
    Delivery.register(it, broker)
    Failures.register(it, broker, { oversize: options?.oversize ?? true })
  })
}
