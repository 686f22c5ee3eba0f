/**
 * The conformance suite of the {@link EventStore.EventStore} laws: every store (the in-memory one, PostgreSQL, your
 * own) runs the same cases, so that an application can switch stores without changing behaviour.
 *
 * The cases cover appends and expected versions, idempotent retries, the events and stream ids a store must refuse,
 * reading and folding a stream, the global log and its filters, `appendMany` atomicity, stream info, payload
 * fidelity and size limits, decoding through an {@link EventCodec.EventCodec}, concurrent writers, and archiving and deleting streams
 * (alone and racing writers).
 *
 * The store under test is built once per {@link run} and shared by all of its cases, which may find data written by
 * earlier cases or earlier runs: every case writes to categories of its own, and never relies on the global log being
 * empty or on absolute positions. A database-backed store can therefore run the suite against a long-lived database.
 *
 * @since 0.1.0
 */
import { layer } from "@effect/vitest"
import { type EventStore, StoreKit } from "@facta/core"
import type { Layer } from "effect"
import * as Append from "./internal/conformanceAppend.ts"
import * as AppendMany from "./internal/conformanceAppendMany.ts"
import * as Fold from "./internal/conformanceFold.ts"
import * as Idempotency from "./internal/conformanceIdempotency.ts"
import * as Lifecycle from "./internal/conformanceLifecycle.ts"
import * as Payload from "./internal/conformancePayload.ts"
import * as Races from "./internal/conformanceRaces.ts"
import * as Read from "./internal/conformanceRead.ts"
import * as ReadAll from "./internal/conformanceReadAll.ts"
import * as Validation from "./internal/conformanceValidation.ts"

/**
 * How to run the suite.
 *
 * - `raceFibers`: how many fibers each concurrency case starts at once (default {@link defaultRaceFibers}, at least
 *   2). Raise it to stress a store with a connection pool; keep it below the pool size plus a margin if the store
 *   holds a connection while waiting for a lock.
 * - `maxEventBytes`, `maxAppendBytes`: the size limits the store under test was built with (default
 *   `StoreKit.defaultLimits`, 4 MiB and 64 MiB); the size cases append events at and just over them.
 *
 * @example
 * ```ts
 * import { EventStoreConformance } from "@facta/testing"
 *
 * const options: EventStoreConformance.Options = { raceFibers: 32 }
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Options {
  readonly raceFibers?: number | undefined
  readonly maxEventBytes?: number | undefined
  readonly maxAppendBytes?: number | undefined
}

/**
 * The number of fibers a concurrency case starts when {@link Options.raceFibers} is not set.
 *
 * @example
 * ```ts
 * import { EventStoreConformance } from "@facta/testing"
 *
 * EventStoreConformance.defaultRaceFibers // 16
 * ```
 *
 * @category constants
 * @since 0.1.0
 */
export const defaultRaceFibers = 16

/**
 * Registers the conformance suite for a store, as a `describe` block named after it, with `@effect/vitest`.
 *
 * The layer is built once for the block (before its first case) and released after the last; its cases run with
 * the live clock, so a store's own timeouts and pools behave as in production. Call `run` at the top level of a test
 * file, as you would call `describe`.
 *
 * @example
 * ```ts
 * // test/EventStoreConformance.memory.test.ts
 * import { EventStore } from "@facta/core"
 * import { EventStoreConformance } from "@facta/testing"
 *
 * EventStoreConformance.run("memory", EventStore.layerMemory)
 * ```
 *
 * @category testing
 * @since 0.1.0
 */
export const run = (name: string, storeLayer: Layer.Layer<EventStore.EventStore, unknown>, options?: Options): void => {
  const resolved = { raceFibers: Math.max(2, Math.floor(options?.raceFibers ?? defaultRaceFibers)) }
  layer(storeLayer, { excludeTestServices: true })(`EventStore conformance: ${name}`, (it) => {
    Append.register(it)
    Idempotency.register(it)
    Validation.register(it)
    Read.register(it)
    Fold.register(it, resolved)
    ReadAll.register(it)
    AppendMany.register(it)
    Payload.register(it, {
      maxEventBytes: options?.maxEventBytes ?? StoreKit.defaultLimits.maxEventBytes,
      maxAppendBytes: options?.maxAppendBytes ?? StoreKit.defaultLimits.maxAppendBytes
    })
    Races.register(it, resolved)
    Lifecycle.register(it, resolved)
  })
}
