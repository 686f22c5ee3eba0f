/**
 * Snapshots: an aggregate's state saved at a version, so a load folds only the events after it.
 *
 * A snapshot is keyed by the aggregate's state-schema version; one taken with another version is ignored and the
 * state is folded from the events. The store keeps the latest snapshot per stream.
 *
 * @since 0.1.0
 */

import type { DateTime, Schema } from "effect"
import { Context, Effect, Layer, Option } from "effect"
import type { StorageError } from "./StorageError.ts"

/**
 * A saved state.
 *
 * @category models
 * @since 0.1.0
 */
export interface Snapshot {
  readonly streamId: string
  /** The stream version the state includes. */
  readonly version: number
  /** The aggregate's state-schema version when it was taken. */
  readonly stateVersion: number
  readonly state: Schema.Json
  readonly takenAt: DateTime.Utc
}

/**
 * Where snapshots are kept.
 *
 * `save` keeps the newer of the stored and the given snapshot: a snapshot never moves a stream backwards, except
 * that one with another state version replaces the stored one (a deploy changed the state's shape).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Snapshot } from "@facta/core"
 *
 * const program = Snapshot.SnapshotStore.use((store) => store.load("Order-1"))
 * Effect.runPromise(program.pipe(Effect.provide(Snapshot.layerMemory)))
 * ```
 *
 * @category services
 * @since 0.1.0
 */
export class SnapshotStore extends Context.Service<
  SnapshotStore,
  {
    readonly load: (streamId: string) => Effect.Effect<Option.Option<Snapshot>, StorageError>
    readonly save: (snapshot: Snapshot) => Effect.Effect<void, StorageError>
  }
>()("@facta/core/SnapshotStore") {}

/**
 * Whether `next` should replace `current` under the rules of {@link SnapshotStore}.
 *
 * @example
 * ```ts
 * import { DateTime } from "effect"
 * import { Snapshot } from "@facta/core"
 *
 * const at = (version: number, stateVersion: number): Snapshot.Snapshot => ({
 *   streamId: "Order-1",
 *   version,
 *   stateVersion,
 *   state: {},
 *   takenAt: DateTime.makeUnsafe(0)
 * })
 * Snapshot.supersedes(at(10, 1), at(20, 1)) // false: older
 * Snapshot.supersedes(at(10, 2), at(20, 1)) // true: another state version
 * ```
 *
 * @category utils
 * @since 0.1.0
 */
export const supersedes = (next: Snapshot, current: Snapshot | undefined): boolean =>
  current === undefined || next.stateVersion !== current.stateVersion || next.version > current.version

/**
 * An in-memory snapshot store; each build of the layer starts empty.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { EventStore, Snapshot } from "@facta/core"
 *
 * declare const program: Effect.Effect<void, never, EventStore.EventStore | Snapshot.SnapshotStore>
 * Effect.runPromise(program.pipe(Effect.provide(Layer.mergeAll(EventStore.layerMemory, Snapshot.layerMemory))))
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export const layerMemory: Layer.Layer<SnapshotStore> = Layer.effect(
  SnapshotStore,
  Effect.sync(() => {
    const snapshots = new Map<string, Snapshot>()
    return SnapshotStore.of({
      load: (streamId) =>
        Effect.sync(() =>
          Option.map(Option.fromUndefinedOr(snapshots.get(streamId)), (s) => ({
            ...s,
            state: structuredClone(s.state)
          }))
        ),
      save: (snapshot) =>
        Effect.sync(() => {
          if (supersedes(snapshot, snapshots.get(snapshot.streamId))) {
            snapshots.set(snapshot.streamId, { ...snapshot, state: structuredClone(snapshot.state) })
          }
        })
    })
  })
)

/**
 * A snapshot store that keeps nothing: `load` finds nothing and `save` does nothing. Provide it to handle an
 * aggregate that declares snapshots without keeping any (a test, a tool that replays streams), saying so
 * explicitly: its command handler needs a `SnapshotStore`, and a missing one does not compile.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { EventStore, Snapshot } from "@facta/core"
 *
 * declare const program: Effect.Effect<void, never, EventStore.EventStore | Snapshot.SnapshotStore>
 * // every load folds the whole stream; no snapshot is ever written
 * Effect.runPromise(program.pipe(Effect.provide(Layer.mergeAll(EventStore.layerMemory, Snapshot.layerNone))))
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export const layerNone: Layer.Layer<SnapshotStore> = Layer.succeed(
  SnapshotStore,
  SnapshotStore.of({
    load: () => Effect.succeedNone,
    save: () => Effect.void
  })
)

/**
 * Whether to snapshot after a command, under the policy "every `every` events": the append crossed a multiple of
 * `every`, the load had to fold at least `every` events, or the state is terminal.
 *
 * @example
 * ```ts
 * import { Snapshot } from "@facta/core"
 *
 * Snapshot.isDue({ every: 100, versionBefore: 99, versionAfter: 101, folded: 3, terminal: false }) // true
 * ```
 *
 * @category utils
 * @since 0.1.0
 */
export const isDue = (options: {
  readonly every: number
  readonly versionBefore: number
  readonly versionAfter: number
  readonly folded: number
  readonly terminal: boolean
}): boolean =>
  options.versionAfter > options.versionBefore &&
  (options.terminal ||
    options.folded >= options.every ||
    Math.floor(options.versionAfter / options.every) > Math.floor(options.versionBefore / options.every))
