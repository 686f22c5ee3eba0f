/**
 * Every PostgreSQL store at once: the `EventStore`, the `CheckpointStore` and the `SnapshotStore` (and
 * `PgEventStore`'s own operations) over one `PgClient` and one schema, migrated once when the layer starts. What
 * an application normally provides; the per-store layers (`PgEventStore.layer`, ...) remain for one store alone.
 *
 * - {@link layer} builds the stores on the `PgClient` in context, so the read models share the pool and their
 *   writes commit with the projections' checkpoints.
 * - {@link layerConfig} builds the pool too, every setting of the pool and of the stores read from `Config`, as
 *   `PgClient.layerConfig` does.
 *
 * @since 0.1.0
 */
import { PgClient } from "@effect/sql-pg"
import { CheckpointStore, EventStore, Snapshot } from "@facta/core"
import { Config, Context, Effect, Layer } from "effect"
import type { Migrator, SqlClient, SqlError } from "effect/sql"
import * as PgCheckpointStore from "./PgCheckpointStore.ts"
import * as PgEventStore from "./PgEventStore.ts"
import * as PgSnapshotStore from "./PgSnapshotStore.ts"
import type * as PgStorage from "./PgStorage.ts"

/**
 * The options of every store in one: the schema, whether to migrate, the event store's wake-ups, batching, size
 * limits and pooler mode (see `PgEventStore.Options` for each), and one set of deadlines for all of them.
 *
 * @example
 * ```ts
 * import { PgStore } from "@facta/postgres"
 *
 * const options: PgStore.Options = {
 *   schema: "billing",
 *   batching: { maxInFlight: 4 },
 *   deadlines: { read: "2 seconds", append: "5 seconds", control: "2 seconds", commit: "30 seconds" },
 *   maxEventBytes: 1024 * 1024
 * }
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Options extends PgEventStore.Options {
  /**
   * How long each kind of call may wait for the server before it fails with a retryable `StorageError`: `read`
   * (the event store's reads, folds, log pages and heads; default 10 seconds), `append` (appends, archives and
   * deletes; 10 seconds), `control` (the checkpoint store's lease, state and status calls, snapshot loads and
   * saves; 5 seconds) and `commit` (a projection batch's transaction; 60 seconds).
   */
  readonly deadlines?: PgStorage.Deadlines | undefined
}

/**
 * What {@link layerConfig} reads: the pool's settings, as `PgClient.layerConfig` takes them (`url` as a `Redacted`,
 * `maxConnections`, `prepare`, ...), and the stores' {@link Options}.
 *
 * @example
 * ```ts
 * import { Redacted } from "effect"
 * import { PgStore } from "@facta/postgres"
 *
 * // what the Config of PgStore.layerConfig yields
 * const options: PgStore.ConfigOptions = {
 *   url: Redacted.make("postgres://app@db:5432/app"),
 *   maxConnections: 20,
 *   schema: "facta",
 *   batching: false
 * }
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type ConfigOptions = PgClient.PgPoolConfig & Options

/**
 * The stores as values, as {@link layer} provides them.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { PgStore } from "@facta/postgres"
 *
 * const lag = (stores: PgStore.Stores) =>
 *   Effect.map(stores.pg.horizon, (horizon) => horizon.heldBackEvents)
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Stores {
  readonly eventStore: EventStore.EventStore["Service"]
  readonly pg: PgEventStore.PgEventStore["Service"]
  readonly checkpoints: CheckpointStore.CheckpointStore["Service"]
  readonly snapshots: Snapshot.SnapshotStore["Service"]
}

/**
 * Builds every store on the `PgClient` in context, in one schema, running the migrations once (unless
 * `migrate: false`). Options the event store refuses (a batching limit below 1, a pooler without `prepare: false`,
 * an event limit the client cannot read) are a defect before any SQL runs.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { PgStore } from "@facta/postgres"
 *
 * // the stores as values (needs a PgClient); PgStore.layer provides them as services
 * const program = Effect.gen(function*() {
 *   const { eventStore, checkpoints } = yield* PgStore.make({ schema: "facta" })
 *   return { head: yield* eventStore.head, projections: yield* checkpoints.status("balances") }
 * })
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = Effect.fnUntraced(function* (options?: Options) {
  // the event store checks its options, then migrates (once, for every store); the others only build on the schema
  const { store, pg } = yield* PgEventStore.make(options)
  const checkpoints = yield* PgCheckpointStore.make({
    schema: pg.schema,
    migrate: false,
    deadlines: options?.deadlines
  })
  const snapshots = yield* PgSnapshotStore.make({ schema: pg.schema, deadline: options?.deadlines?.control })
  const stores: Stores = { eventStore: store, pg, checkpoints, snapshots }
  return stores
})

/**
 * The event store, checkpoint store and snapshot store (and `PgEventStore`) on the `PgClient` in context, in one
 * schema, migrated once when the layer starts (unless `migrate: false`). Share the client with the read models, so
 * that a projection's writes and its checkpoint commit together.
 *
 * @example
 * ```ts
 * import { PgClient } from "@effect/sql-pg"
 * import { Layer, Redacted } from "effect"
 * import { PgStore } from "@facta/postgres"
 *
 * const Database = PgClient.layer({ url: Redacted.make("postgres://postgres@127.0.0.1:5432/app") })
 * const Stores = PgStore.layer({ schema: "facta", deadlines: { read: "2 seconds" } }).pipe(
 *   Layer.provideMerge(Database)
 * )
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = (
  options?: Options
): Layer.Layer<
  EventStore.EventStore | CheckpointStore.CheckpointStore | Snapshot.SnapshotStore | PgEventStore.PgEventStore,
  SqlError.SqlError | Migrator.MigrationError,
  PgClient.PgClient | SqlClient.SqlClient
> =>
  Layer.effectContext(
    Effect.map(make(options), (stores) =>
      Context.make(EventStore.EventStore, stores.eventStore).pipe(
        Context.add(PgEventStore.PgEventStore, stores.pg),
        Context.add(CheckpointStore.CheckpointStore, stores.checkpoints),
        Context.add(Snapshot.SnapshotStore, stores.snapshots)
      )
    )
  )

/**
 * {@link layer} with a pool of its own, every setting read from `Config`: the pool's as `PgClient.layerConfig`
 * takes them (`url`, `maxConnections`, `prepare`, ...) and the stores' {@link Options}, each either a `Config` of
 * its own or a value (`Config.succeed`), or all of them as one `Config`. Provides the `PgClient` and `SqlClient`
 * too, for the read models.
 *
 * @example
 * ```ts
 * import { Config } from "effect"
 * import { PgStore } from "@facta/postgres"
 *
 * const Stores = PgStore.layerConfig({
 *   url: Config.Redacted("DATABASE_URL"),
 *   maxConnections: Config.Int("FACTA_POOL_SIZE").pipe(Config.withDefault(10)),
 *   schema: Config.String("FACTA_SCHEMA").pipe(Config.withDefault("facta")),
 *   deadlines: { read: Config.Duration("FACTA_READ_DEADLINE").pipe(Config.withDefault("10 seconds")) }
 * })
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export const layerConfig = (
  config: Config.Wrap<ConfigOptions>
): Layer.Layer<
  | EventStore.EventStore
  | CheckpointStore.CheckpointStore
  | Snapshot.SnapshotStore
  | PgEventStore.PgEventStore
  | PgClient.PgClient
  | SqlClient.SqlClient,
  SqlError.SqlError | Migrator.MigrationError | Config.ConfigError
> =>
  Layer.unwrap(
    Effect.map(
      Config.unwrap(config),
      ({
        schema,
        migrate,
        wakeups,
        coalesceInterval,
        batching,
        deadlines,
        pooler,
        maxEventBytes,
        maxAppendBytes,
        ...pool
      }) =>
        layer({
          schema,
          migrate,
          wakeups,
          coalesceInterval,
          batching,
          deadlines,
          pooler,
          maxEventBytes,
          maxAppendBytes
        }).pipe(Layer.provideMerge(PgClient.layer(pool)))
    )
  )
