/**
 * The PostgreSQL `SnapshotStore`: one row per stream in the store's `snapshots` table, written with the version rules
 * of `Snapshot.supersedes` enforced in SQL (a snapshot never moves a stream backwards within a state version).
 *
 * @since 0.1.0
 */
import { Snapshot } from "@facta/core"
import { DateTime, type Duration, Effect, Layer, Option, type Schema } from "effect"
import { SqlClient } from "effect/sql"
import * as Migrations from "./Migrations.ts"
import * as Storage from "./PgStorage.ts"

/**
 * Builds the snapshot store on the `SqlClient` in context, in the store's schema (migrated by `PgStore.layer`, the
 * event store's layer, or `Migrations.run`; this store runs no migration).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { PgSnapshotStore } from "@facta/postgres"
 *
 * // the store as a value (needs a SqlClient); PgSnapshotStore.layer provides it as a service
 * const latest = Effect.flatMap(PgSnapshotStore.make(), (snapshots) => snapshots.load("Account-1"))
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = Effect.fnUntraced(function* (options?: {
  readonly schema?: string | undefined
  /** How long a load or save may wait for the server (default 5 seconds). */
  readonly deadline?: Duration.Input | undefined
}) {
  const sql = yield* SqlClient.SqlClient
  const s = sql(options?.schema ?? Migrations.defaultSchema)
  const within = Storage.deadline(yield* Effect.scope, sql, "SnapshotStore")
  const duration = Storage.resolveDeadlines({ control: options?.deadline }).control
  const storage =
    (operation: string) =>
    <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      effect.pipe(Storage.mapErrors("SnapshotStore", operation), within(operation, duration))
  return Snapshot.SnapshotStore.of({
    load: (streamId) =>
      sql<{ version: number; state_version: number; state: Schema.Json; taken_at: Date }>`
        SELECT version, state_version, state, taken_at FROM ${s}.snapshots WHERE stream_id = ${streamId}`.pipe(
        Effect.map(([row]) =>
          Option.map(
            Option.fromUndefinedOr(row),
            (r): Snapshot.Snapshot => ({
              streamId,
              version: r.version,
              stateVersion: r.state_version,
              state: r.state,
              takenAt: DateTime.fromDateUnsafe(r.taken_at)
            })
          )
        ),
        storage("load")
      ),
    save: (snapshot) =>
      // never for a deleted stream: its tombstone must not be shadowed by a copy of its state
      sql`INSERT INTO ${s}.snapshots AS sn (stream_id, version, state_version, state, taken_at)
        SELECT ${snapshot.streamId}, ${snapshot.version}, ${snapshot.stateVersion}, ${JSON.stringify(snapshot.state)}::jsonb,
          ${DateTime.toDateUtc(snapshot.takenAt)}
        WHERE NOT EXISTS (SELECT 1 FROM ${s}.streams WHERE stream_id = ${snapshot.streamId} AND deleted_at IS NOT NULL)
        ON CONFLICT (stream_id) DO UPDATE
          SET version = excluded.version, state_version = excluded.state_version, state = excluded.state,
              taken_at = excluded.taken_at
          WHERE sn.state_version <> excluded.state_version OR sn.version < excluded.version`.pipe(
        Effect.asVoid,
        storage("save")
      )
  })
})

/**
 * The snapshot store alone on an existing `SqlClient` (`PgStore.layer` provides it with the other stores).
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { PgEventStore, PgSnapshotStore } from "@facta/postgres"
 *
 * // the event store's layer migrates the schema both use
 * const Stores = Layer.mergeAll(PgEventStore.layer(), PgSnapshotStore.layer({ deadline: "2 seconds" }))
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = (options?: Parameters<typeof make>[0]) => Layer.effect(Snapshot.SnapshotStore, make(options))
