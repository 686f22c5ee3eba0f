/**
 * The one error every store reports when its storage fails: which store, which operation, the original cause, and
 * whether trying again can help. Projections retry a retryable one with backoff and never count it against an event.
 *
 * @since 0.1.0
 */
import { Predicate, Schema } from "effect"
import { describe } from "./internal/cause.ts"

/**
 * The identifier a `StorageError` carries, for {@link isStorageError}.
 *
 * @example
 * ```ts
 * import { StorageError } from "@facta/core"
 *
 * const error = new StorageError.StorageError({ store: "EventStore", operation: "read", retryable: true, cause: "lost" })
 * error[StorageError.TypeId] // "~@facta/core/StorageError"
 * ```
 *
 * @category type ids
 * @since 0.1.0
 */
export const TypeId = "~@facta/core/StorageError" as const

/**
 * The storage under a store failed. `store` names the store (`EventStore`, `CheckpointStore`, `SnapshotStore`, or an
 * application's read model), `operation` what it was doing, and `retryable` whether the same call may succeed if made
 * again: a lost connection, a serialization failure, a deadlock, a deadline that passed, a server shutting down or
 * out of connections. `cause` holds the original failure.
 *
 * @example
 * ```ts
 * import { Effect, Schedule } from "effect"
 * import { EventStore, StorageError } from "@facta/core"
 *
 * const head = EventStore.EventStore.use((store) => store.head).pipe(
 *   Effect.retry({ schedule: Schedule.exponential("100 millis"), times: 3, while: StorageError.isRetryable })
 * )
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class StorageError extends Schema.TaggedError<StorageError>("@facta/core/StorageError")("StorageError", {
  store: Schema.String,
  operation: Schema.String,
  retryable: Schema.Boolean,
  cause: Schema.Defect()
}) {
  /** Marks the value for {@link isStorageError}. */
  readonly [TypeId] = TypeId

  override get message() {
    return `${this.store} ${this.operation} failed${this.retryable ? " (retryable)" : ""}: ${describe(this.cause)}`
  }
}

/**
 * Whether a value is a `StorageError`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { EventStore, StorageError } from "@facta/core"
 *
 * const head = EventStore.EventStore.use((store) => store.head).pipe(
 *   Effect.tapError((error) => (StorageError.isStorageError(error) ? Effect.logWarning(error.message) : Effect.void))
 * )
 * ```
 *
 * @category guards
 * @since 0.1.0
 */
export const isStorageError = (u: unknown): u is StorageError => Predicate.hasProperty(u, TypeId)

/**
 * Whether a value is a `StorageError` that trying again may settle.
 *
 * @example
 * ```ts
 * import { StorageError } from "@facta/core"
 *
 * StorageError.isRetryable(
 *   new StorageError.StorageError({ store: "EventStore", operation: "append", retryable: true, cause: "timeout" })
 * ) // true
 * StorageError.isRetryable(new Error("boom")) // false
 * ```
 *
 * @category guards
 * @since 0.1.0
 */
export const isRetryable = (u: unknown): u is StorageError => isStorageError(u) && u.retryable
