/**
 * Where projections keep their place: a checkpoint per projection (version and partition), behind a lease that makes
 * one process at a time the active one, plus the events a projection parked because it could not handle them.
 *
 * Every checkpoint write is a compare-and-set on the previous checkpoint and on the lease's fencing token: a process
 * that lost its lease (paused too long, partitioned away) cannot move the checkpoint, whatever it still believes.
 * A store backed by a database (PostgreSQL) runs the read model's writes and the checkpoint write in one transaction,
 * so that a read model sees every event exactly once.
 *
 * @since 0.1.0
 */
import type { DateTime, Duration, Option } from "effect"
import { Context, type Effect, Layer, Predicate, Schema } from "effect"
import type { RecordedEvent } from "./Event.ts"
import * as MemoryCheckpoints from "./internal/memoryCheckpoints.ts"
import type { Position } from "./Position.ts"
import type { StorageError } from "./StorageError.ts"

/**
 * Which checkpoint: a projection's name, the version of its read model, and its partition (0 when unpartitioned).
 *
 * @category models
 * @since 0.1.0
 */
export interface Key {
  readonly name: string
  readonly version: number
  readonly partition: number
}

/**
 * The right to move a checkpoint, held by `owner` until it expires. `fence` grows every time the lease changes hands;
 * `checkpoint` is where the projection stood when the lease was taken (`Position.start` when it never ran).
 *
 * @category models
 * @since 0.1.0
 */
export interface Lease {
  readonly key: Key
  readonly owner: string
  readonly fence: number
  readonly checkpoint: Position
}

/**
 * What a projection is doing, as its last holder reported it.
 *
 * @category models
 * @since 0.1.0
 */
export type State = "running" | "stopped" | "failed" | "rebuilding" | "retired"

/**
 * A checkpoint's row: where it stands, who holds it until when, and its state.
 *
 * @category models
 * @since 0.1.0
 */
export interface Status {
  readonly key: Key
  readonly checkpoint: Position
  readonly owner: Option.Option<string>
  readonly leaseExpiresAt: Option.Option<DateTime.Utc>
  readonly state: State
  readonly error: Option.Option<string>
  readonly updatedAt: DateTime.Utc
}

/**
 * An event a projection could not handle, kept with the reason so it can be listed, fixed and replayed.
 *
 * @category models
 * @since 0.1.0
 */
export interface Parked {
  readonly key: Key
  readonly event: RecordedEvent
  readonly error: string
  readonly parkedAt: DateTime.Utc
}

/**
 * The identifier a `LeaseLost` carries, for {@link isLeaseLost}.
 *
 * @example
 * ```ts
 * import { CheckpointStore } from "@facta/core"
 *
 * const lost = new CheckpointStore.LeaseLost({ name: "balances", version: 1, partition: 0, owner: "worker-1" })
 * lost[CheckpointStore.LeaseLostTypeId] // "~@facta/core/LeaseLost"
 * ```
 *
 * @category type ids
 * @since 0.1.0
 */
export const LeaseLostTypeId = "~@facta/core/LeaseLost" as const

/**
 * The lease is gone (expired and taken by another owner, or released): this process must stop writing.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { CheckpointStore } from "@facta/core"
 *
 * declare const work: Effect.Effect<void, CheckpointStore.LeaseLost>
 * // another process holds the projection now: stop quietly
 * const stopped = work.pipe(Effect.catchTag("LeaseLost", (lost) => Effect.logInfo(lost.message)))
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class LeaseLost extends Schema.TaggedError<LeaseLost>("@facta/core/LeaseLost")("LeaseLost", {
  name: Schema.String,
  version: Schema.Int,
  partition: Schema.Int,
  owner: Schema.String
}) {
  /** Marks the value for {@link isLeaseLost}. */
  readonly [LeaseLostTypeId] = LeaseLostTypeId

  override get message() {
    return `Projection ${this.name} v${this.version} partition ${this.partition}: ${this.owner} no longer holds the lease`
  }
}

/**
 * Whether a value is a `LeaseLost`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { CheckpointStore } from "@facta/core"
 *
 * declare const lease: CheckpointStore.Lease
 * const renewed = CheckpointStore.CheckpointStore.use((store) => store.renew(lease, "10 seconds")).pipe(
 *   Effect.catchIf(CheckpointStore.isLeaseLost, () => Effect.logInfo("another process holds the lease now"))
 * )
 * ```
 *
 * @category guards
 * @since 0.1.0
 */
export const isLeaseLost = (u: unknown): u is LeaseLost => Predicate.hasProperty(u, LeaseLostTypeId)

/**
 * The checkpoint store.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { CheckpointStore } from "@facta/core"
 *
 * const statuses = CheckpointStore.CheckpointStore.use((store) => store.status("balances")).pipe(
 *   Effect.provide(CheckpointStore.layerMemory)
 * )
 * ```
 *
 * @category services
 * @since 0.1.0
 */
export class CheckpointStore extends Context.Service<
  CheckpointStore,
  {
    /**
     * Whether `commit` runs its work and the checkpoint move atomically. When it cannot, projections commit one event
     * at a time, so that a failure never makes them apply an event twice.
     */
    readonly transactional: boolean
    /**
     * Takes the lease for `owner` (also when `owner` holds it already); `None` while another owner holds it. Every
     * acquisition increments the lease's fence, so a lease taken earlier, even by the same owner, is stale.
     */
    readonly acquire: (
      key: Key,
      owner: string,
      ttl: Duration.Input
    ) => Effect.Effect<Option.Option<Lease>, StorageError>
    /** Extends the lease; fails with `LeaseLost` when it changed hands. */
    readonly renew: (lease: Lease, ttl: Duration.Input) => Effect.Effect<void, LeaseLost | StorageError>
    /** Gives the lease up at once and records the state the holder leaves the projection in. */
    readonly release: (lease: Lease, state: State, error?: string) => Effect.Effect<void, StorageError>
    /**
     * Runs `work` and moves the checkpoint from `from` to `to`, atomically where the store can (in one database
     * transaction for PostgreSQL, so that `work`'s SQL commits with the checkpoint or not at all). Fails with
     * `LeaseLost` when the lease changed hands or the checkpoint is no longer `from`.
     */
    readonly commit: <A, E, R>(
      lease: Lease,
      from: Position,
      to: Position,
      work: Effect.Effect<A, E, R>
    ) => Effect.Effect<A, E | LeaseLost | StorageError, R>
    /** Marks what the holder is doing (running, rebuilding...) for status readers. */
    readonly setState: (lease: Lease, state: State, error?: string) => Effect.Effect<void, LeaseLost | StorageError>
    /** Every checkpoint of a projection (all versions and partitions). */
    readonly status: (name: string) => Effect.Effect<ReadonlyArray<Status>, StorageError>
    /** Parks an event; call it inside `commit`'s work so that it commits with the checkpoint that passes the event. */
    readonly park: (key: Key, event: RecordedEvent, error: string) => Effect.Effect<void, StorageError>
    /** The parked events of a projection, oldest first. */
    readonly parked: (name: string) => Effect.Effect<ReadonlyArray<Parked>, StorageError>
    /** Forgets a parked event (after it was replayed or judged harmless). */
    readonly unpark: (key: Key, eventId: string) => Effect.Effect<void, StorageError>
    /**
     * Records that `key` (typically an event id and a purpose) was handled by projection `name`; `false` when it was
     * already. Inside `commit`'s work on PostgreSQL the record commits with the checkpoint.
     */
    readonly claim: (name: string, key: string) => Effect.Effect<boolean, StorageError>
    /** Forgets a claim (its effect failed, so it must be able to run again). */
    readonly unclaim: (name: string, key: string) => Effect.Effect<void, StorageError>
    /** The version of a projection that readers should use: the newest one that caught up. */
    readonly activeVersion: (name: string) => Effect.Effect<Option.Option<number>, StorageError>
    /** Makes `version` the active one, unless a newer version is active already. */
    readonly promote: (name: string, version: number) => Effect.Effect<void, StorageError>
  }
>()("@facta/core/CheckpointStore") {}

/**
 * An in-memory checkpoint store, for tests and for projections into in-memory read models. `commit` runs the work
 * and then moves the checkpoint; it cannot undo the work when the move is refused.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { CheckpointStore, EventStore } from "@facta/core"
 *
 * const Memory = Layer.mergeAll(EventStore.layerMemory, CheckpointStore.layerMemory)
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export const layerMemory: Layer.Layer<CheckpointStore> = Layer.effect(CheckpointStore, MemoryCheckpoints.make)

/**
 * The text form of a key, for logs and span attributes: `name@version#partition`.
 *
 * @example
 * ```ts
 * import { CheckpointStore } from "@facta/core"
 *
 * CheckpointStore.formatKey({ name: "balances", version: 2, partition: 0 }) // "balances@2#0"
 * ```
 *
 * @category utils
 * @since 0.1.0
 */
export const formatKey = (key: Key): string => `${key.name}@${key.version}#${key.partition}`

/**
 * Whether two keys name the same checkpoint.
 *
 * @example
 * ```ts
 * import { CheckpointStore } from "@facta/core"
 *
 * CheckpointStore.sameKey({ name: "a", version: 1, partition: 0 }, { name: "a", version: 1, partition: 0 }) // true
 * ```
 *
 * @category utils
 * @since 0.1.0
 */
export const sameKey = (a: Key, b: Key): boolean =>
  a.name === b.name && a.version === b.version && a.partition === b.partition
