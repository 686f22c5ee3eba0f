/**
 * What the store's SQL and its code agree on: the status codes of its functions, the wake-up channel, and the
 * ordered list of its migrations (one module each, in `migrations/`). Statements are built for one schema name,
 * which is validated as a plain identifier before it gets here (it is the only text ever spliced into SQL; every
 * value is a bound parameter).
 */
import * as EventStore from "./migrations/0001_event_store.ts"
import * as Projections from "./migrations/0002_projections.ts"
import * as LogKey from "./migrations/0003_log_key.ts"
import * as AppendBatch from "./migrations/0004_append_batch.ts"
import * as ReadLog from "./migrations/0005_read_log.ts"
import * as AppendStream from "./migrations/0006_append_stream.ts"
import * as AppendEpoch from "./migrations/0007_append_epoch.ts"

/** Status codes returned by the append function. */
export const AppendStatus = {
  ok: 0,
  wrongVersion: 1,
  idsExist: 2,
  archived: 3,
  deleted: 4
} as const

/** Status codes returned by the close_stream function (archive and delete). */
export const CloseStatus = {
  ok: 0,
  wrongVersion: 1,
  deleted: 4,
  notFound: 5
} as const

/** Expected-version kinds as the append and close_stream functions take them. */
export const ExpectedKind = { any: 0, noStream: 1, streamExists: 2, exact: 3 } as const

export const notifyChannel = (schema: string) => `${schema}_events`

/**
 * The store's migrations in order, for schema `s`: the position in this list is the number each one is recorded
 * under (`0001_event_store`, ...), so a new one goes at the end and none is ever removed or reordered.
 */
export const migrations = (s: string): ReadonlyArray<readonly [name: string, statements: ReadonlyArray<string>]> =>
  [EventStore, Projections, LogKey, AppendBatch, ReadLog, AppendStream, AppendEpoch].map(
    (migration) => [migration.name, migration.statements(s)] as const
  )
