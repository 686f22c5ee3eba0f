/**
 * Where the bank keeps its data, for the demo (`src/main.ts`), the admin CLI and the seed: the PostgreSQL server
 * `DATABASE_URL` names, or else an embedded server with its data in `examples/bank/.data/` (kept between runs). On
 * it: the event store, snapshots and projection checkpoints (schema `facta`, one `PgStore.layer`), the command side
 * on them (`Accounts` and `Transfers`) and the read models (schema `bank`), each schema migrated once when the layer
 * is built.
 *
 * @since 0.1.0
 */
import { fileURLToPath } from "node:url"
import { EmbeddedPostgres } from "@facta/embedded-postgres"
import { PgStore } from "@facta/postgres"
import { Effect, Layer } from "effect"
import * as Aggregates from "../app/Aggregates.ts"
import * as ReadModels from "../readmodels/ReadModels.ts"
import * as Tables from "../readmodels/Tables.ts"
import * as Deadlines from "./Deadlines.ts"

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
 * The stores, the command side (`Accounts`, `Transfers`) and the read models (whose `waitFor` reads the stores'
 * checkpoints) on the `PgClient` in context, migrated; also sets the read models' schema
 * (`Tables.Schema`) for the projections that run with it. Every store call runs under the storage deadline of the
 * `Deadlines` in context (projection batches under the commit deadline): a stalled database fails it with a
 * retryable `StorageError` instead of leaving it waiting.
 *
 * @since 0.1.0
 */
export const layerStores = (options?: Options) =>
  Layer.unwrap(
    Effect.gen(function* () {
      const deadlines = yield* Deadlines.Deadlines
      const schema = options?.storeSchema ?? "facta"
      const bankSchema = Layer.succeed(Tables.Schema, options?.bankSchema ?? "bank")
      return Layer.mergeAll(ReadModels.layer.pipe(Layer.provide(bankSchema)), bankSchema, Aggregates.layer).pipe(
        Layer.provideMerge(
          PgStore.layer({
            schema,
            deadlines: {
              read: deadlines.storage,
              append: deadlines.storage,
              control: deadlines.storage,
              commit: deadlines.commit
            }
          })
        )
      )
    })
  )

/**
 * {@link layerStores} on {@link layerClient}, with the deadlines from `Config` (`BANK_STORAGE_TIMEOUT` and friends,
 * see `Deadlines.ts`), which it also provides: everything the bank needs, migrated.
 *
 * @since 0.1.0
 */
export const layer = (options?: Options) =>
  layerStores(options).pipe(Layer.provideMerge(Layer.merge(layerClient(options), Deadlines.layerConfig)))
