/**
 * The conformance suite of subscriptions and projections: every pair of stores (the in-memory ones, PostgreSQL, your
 * own) runs the same cases, so that a projection behaves the same whichever `EventStore` and `CheckpointStore` it
 * runs on.
 *
 * The cases cover subscriptions (catch-up from a checkpoint, live delivery through the store's wake-ups well before
 * the poll interval, category and type filters), exactly-once delivery into a read model over restarts and through
 * graceful interruptions, resuming from a checkpoint, runs with nothing to do, rebuilds, poison events (stop or
 * park), two instances sharing one lease, partitions, `waitFor`, and blue/green versions.
 *
 * The stores are built once per {@link run} and shared by all of its cases, which may find data written by earlier
 * cases or earlier runs: every case writes to categories of its own and uses projection names of its own, and never
 * relies on the global log being empty or on absolute positions. A database-backed pair can therefore run the suite
 * against a long-lived database. The read models are in memory and keyed by event id, so that a duplicate delivery
 * shows.
 *
 * @since 0.1.0
 */
import { layer } from "@effect/vitest"
import type { CheckpointStore, EventStore } from "@facta/core"
import type { Layer } from "effect"
import * as Delivery from "./internal/projectionDelivery.ts"
import * as Failures from "./internal/projectionFailures.ts"
import * as Leases from "./internal/projectionLeases.ts"
import * as Subscribe from "./internal/projectionSubscribe.ts"
import * as Versions from "./internal/projectionVersions.ts"

/**
 * Registers the projection conformance suite for a pair of stores, as a `describe` block named after them, with
 * `@effect/vitest`.
 *
 * The layer is built once for the block (before its first case) and released after the last; its cases run with the
 * live clock, since leases, batching windows and wake-ups are about real time. Call `run` at the top level of a test
 * file, as you would call `describe`.
 *
 * @example
 * ```ts
 * // test/ProjectionConformance.memory.test.ts
 * import { CheckpointStore, EventStore } from "@facta/core"
 * import { ProjectionConformance } from "@facta/testing"
 * import { Layer } from "effect"
 *
 * ProjectionConformance.run("memory", Layer.mergeAll(EventStore.layerMemory, CheckpointStore.layerMemory))
 * ```
 *
 * @category testing
 * @since 0.1.0
 */
export const run = (
  name: string,
  storeLayer: Layer.Layer<EventStore.EventStore | CheckpointStore.CheckpointStore, unknown>
): void => {
  layer(storeLayer, { excludeTestServices: true })(`Projection conformance: ${name}`, (it) => {
    Subscribe.register(it)
    Delivery.register(it)
    Failures.register(it)
    Leases.register(it)
    Versions.register(it)
  })
}
