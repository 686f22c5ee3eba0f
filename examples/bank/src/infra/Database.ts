/**
 * Where the bank keeps its data, for the demo (`src/main.ts`), the admin CLI and the seed: the PostgreSQL server
 * `DATABASE_URL` names, or else an embedded server with its data in `examples/bank/.data/` (kept between runs). On
 * it: the event store, snapshots and projection checkpoints (schema `facta`) and the read models (schema `bank`),
 * each migrated when the layer is built.
 *
 * @since 0.1.0
 */
import { fileURLToPath } from "node:url"
import { EmbeddedPostgres } from "@facta/embedded-postgres"
import { PgCheckpointStore, PgEventStore, PgSnapshotStore } from "@facta/postgres"
import { Layer } from "effect"
import * as ReadModels from "../readmodels/ReadModels.ts"
import * as Tables from "../readmodels/Tables.ts"

/**
 * The embedded server's data directory: `examples/bank/.data/`.
 *
 * @since 0.1.0
 */
export const defaultDataDir: string = fileURLToPath(new URL("../../.data", import.meta.url))

/**
 * Where to connect and which schemas to use.
 *
 * @since 0.1.0
 */
export interface Options {
  /** The embedded server's data directory (default {@link defaultDataDir}); unused when `DATABASE_URL` is set. */
  readonly dataDir?: string | undefined
  /** The schema of the event store, snapshots and checkpoints (default `facta`). */
  readonly storeSchema?: string | undefined
  /** The schema of the read models (default `bank`). */
  readonly bankSchema?: string | undefined
  readonly maxConnections?: number | undefined
}

/**
 * A pool on `DATABASE_URL` or on the embedded server (started for the layer's lifetime, stopped after it).
 *
 * @since 0.1.0
 */
export const layerClient = (options?: Options) =>
  EmbeddedPostgres.layerClient({
    dataDir: options?.dataDir ?? defaultDataDir,
    // a demo database: fast commits matter more than the last fraction of a second before a crash
    settings: { synchronous_commit: "off" },
    maxConnections: options?.maxConnections ?? 20
  })

/**
 * The stores and the read models on the `PgClient` in context, migrated; also sets the read models' schema
 * (`Tables.Schema`) for the projections that run with it.
 *
 * @since 0.1.0
 */
export const layerStores = (options?: Options) => {
  const schema = options?.storeSchema ?? "facta"
  const bankSchema = Layer.succeed(Tables.Schema, options?.bankSchema ?? "bank")
  return Layer.mergeAll(
    ReadModels.layer.pipe(Layer.provide(bankSchema)),
    bankSchema,
    PgSnapshotStore.layer({ schema }),
    PgCheckpointStore.layer({ schema })
  ).pipe(Layer.provideMerge(PgEventStore.layer({ schema })))
}

/**
 * {@link layerStores} on {@link layerClient}: everything the bank needs, migrated.
 *
 * @since 0.1.0
 */
export const layer = (options?: Options) => layerStores(options).pipe(Layer.provideMerge(layerClient(options)))
