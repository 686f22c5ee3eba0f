import {
  type EventStore,
  EventStoreError,
  EventStoreSupport,
  type ExpectedVersion,
  Position,
  type StreamId
} from "@facta/core"
import { Effect, Option } from "effect"
import type { SqlClient } from "effect/sql"
import { SqlError } from "effect/sql"
import { AppendStatus, ExpectedKind } from "./schema.ts"

interface AppendRow {
  readonly status: number
  readonly version: number | null
  readonly epoch: number | null
  readonly tx_id: string | null
  readonly positions: ReadonlyArray<bigint> | null
}

interface StoredRow {
  readonly event_id: string
  readonly stream_id: string
  readonly version: number
  readonly type: string
  readonly schema_version: number
  readonly data: unknown
  readonly epoch: number
  readonly tx_id: string
  readonly global_position: bigint
}

const isSqlError = (u: unknown): u is SqlError.SqlError => SqlError.isSqlError(u)

/** Failures that running the whole transaction again settles. */
const isRetryable = (u: unknown): boolean =>
  isSqlError(u) && (u.reason._tag === "SerializationError" || u.reason._tag === "DeadlockError")

type AppendFailure = EventStoreError.AppendError

type Refusal = EventStoreError.WrongExpectedVersion | EventStoreError.StreamArchived | EventStoreError.StreamDeleted

/** An expectation as the store's functions take it: a kind and a version. */
export const kindOf = (expected: ExpectedVersion.ExpectedVersion): readonly [number, number] => {
  switch (expected._tag) {
    case "Any":
      return [ExpectedKind.any, 0]
    case "NoStream":
      return [ExpectedKind.noStream, 0]
    case "StreamExists":
      return [ExpectedKind.streamExists, 0]
    case "Exact":
      return [ExpectedKind.exact, expected.version]
  }
}

/** Appends through the store's `append` function: one statement per stream, one transaction per call. */
export const make = (
  sql: SqlClient.SqlClient,
  schema: string,
  options: {
    /**
     * Which appends send their own NOTIFY, delivered at their commit: all of them, none, or (`"alone"`) those that
     * start while no other append of this store is in flight.
     */
    readonly notify: "always" | "never" | "alone"
    /** Called after appends that stored events, when the append did not notify itself. */
    readonly appended: Effect.Effect<void>
  }
) => {
  const s = sql(schema)
  let inFlight = 0
  const storage = (cause: unknown) => new EventStoreError.StorageError({ operation: "append", cause })

  const call = (p: EventStoreSupport.Prepared, notify: boolean) => {
    const [kind, version] = kindOf(p.expected)
    return sql<AppendRow>`SELECT status, version, epoch, tx_id::text AS tx_id, positions FROM ${s}.append(
      ${p.streamId}, ${p.category}, ${kind}::smallint, ${version}::integer,
      ${p.events.map((e) => e.event.eventId)}::uuid[],
      ${p.events.map((e) => e.event.type)}::text[],
      ${p.events.map((e) => e.event.schemaVersion)}::smallint[],
      ${p.events.map((e) => e.dataJson)}::jsonb[],
      ${p.events.map((e) => e.metadataJson)}::jsonb[],
      ${notify}::boolean)`
  }

  const lookup = (p: EventStoreSupport.Prepared) =>
    Effect.map(
      sql<StoredRow>`SELECT event_id, stream_id, version, type, schema_version, data, epoch, tx_id::text AS tx_id,
          global_position
        FROM ${s}.events WHERE event_id = ANY(${p.events.map((e) => e.event.eventId)}::uuid[])`,
      (rows) =>
        rows.map(
          (row): EventStoreSupport.StoredEvent => ({
            eventId: row.event_id,
            streamId: row.stream_id,
            version: row.version,
            position: Position.make(row.epoch, BigInt(row.tx_id), row.global_position),
            type: row.type,
            schemaVersion: row.schema_version,
            data: row.data
          })
        )
    )

  const refusal = (p: EventStoreSupport.Prepared, status: number, version: number): Refusal => {
    switch (status) {
      case AppendStatus.deleted:
        return new EventStoreError.StreamDeleted({ streamId: p.streamId, version })
      case AppendStatus.archived:
        return new EventStoreError.StreamArchived({ streamId: p.streamId, version })
      default:
        return new EventStoreError.WrongExpectedVersion({ streamId: p.streamId, expected: p.expected, actual: version })
    }
  }

  /** Why the stream refuses this append, as it is now. */
  const currentRefusal = (p: EventStoreSupport.Prepared) =>
    Effect.map(
      sql<{ version: number; archived: boolean; deleted: boolean }>`SELECT version,
          archived_at IS NOT NULL AS archived, deleted_at IS NOT NULL AS deleted
        FROM ${s}.streams WHERE stream_id = ${p.streamId}`,
      ([row]) =>
        refusal(
          p,
          row?.deleted ? AppendStatus.deleted : row?.archived ? AppendStatus.archived : AppendStatus.wrongVersion,
          row?.version ?? 0
        )
    )

  /**
   * After a refusal (wrong version, or an id that is already stored): the original result when this append already
   * landed, an idempotency conflict when its ids are stored otherwise, else the refusal.
   */
  const settle = (p: EventStoreSupport.Prepared, otherwise: Effect.Effect<Refusal, SqlError.SqlError>) =>
    Effect.flatMap(lookup(p), (found): Effect.Effect<EventStore.AppendResult, AppendFailure | SqlError.SqlError> => {
      const retry = EventStoreSupport.matchRetry(p, found)
      if (retry === undefined) return Effect.flatMap(otherwise, Effect.fail)
      return retry instanceof EventStoreError.IdempotencyConflict ? Effect.fail(retry) : Effect.succeed(retry)
    })

  const one = (p: EventStoreSupport.Prepared, notify: boolean) =>
    Effect.flatMap(call(p, notify), ([row]) => {
      if (row === undefined) return Effect.die(new Error("append returned no row"))
      switch (row.status) {
        case AppendStatus.ok:
          return Effect.succeed<EventStore.AppendResult>({
            streamId: p.streamId,
            nextExpectedVersion: row.version!,
            positions: (row.positions ?? []).map((position) => Position.make(row.epoch!, BigInt(row.tx_id!), position))
          })
        case AppendStatus.idsExist:
          return settle(p, currentRefusal(p))
        case AppendStatus.wrongVersion:
        case AppendStatus.archived:
          // a retry that landed earlier (the function looks for its ids only for `any` and `streamExists`), or the
          // same append landing concurrently after the function looked
          return settle(p, Effect.succeed(refusal(p, row.status, row.version ?? 0)))
        default:
          return Effect.fail(refusal(p, row.status, row.version ?? 0))
      }
    })

  /** A database-side refusal, seen only when the transaction failed: re-examined outside it. */
  const classify = (p: EventStoreSupport.Prepared, error: SqlError.SqlError) => {
    const reason = error.reason
    const isConflict =
      reason._tag === "UniqueViolation" &&
      (reason.constraint === "events_event_id_key" || reason.constraint === "events_stream_version_key")
    return isConflict ? settle(p, currentRefusal(p)) : Effect.fail(storage(error))
  }

  const transaction = (
    requests: ReadonlyArray<EventStore.AppendRequest>
  ): Effect.Effect<ReadonlyArray<EventStore.AppendResult>, AppendFailure | StreamId.InvalidStreamId> => {
    const prepared = EventStoreSupport.prepareAll(requests)
    if (!Array.isArray(prepared)) return Effect.fail(prepared as Exclude<typeof prepared, ReadonlyArray<unknown>>)
    const list = prepared as ReadonlyArray<EventStoreSupport.Prepared>
    let failedAt = 0
    const attempt = (
      notify: boolean
    ): Effect.Effect<ReadonlyArray<EventStore.AppendResult>, AppendFailure | SqlError.SqlError> =>
      list.length === 1
        ? Effect.map(one(list[0]!, notify), (result) => [result])
        : sql.withTransaction(
            Effect.forEach(list, (p, i) =>
              Effect.suspend(() => {
                failedAt = i
                return one(p, notify)
              })
            )
          )
    // a serialization failure (the append would have ordered a stream's events out of version order, or the
    // caller's isolation level refused it) or a deadlock with another client's transaction is settled by running
    // again in a new transaction: only possible when the caller has not opened one around the append (then it is
    // theirs to retry)
    const retrying = (notify: boolean, retries: number): ReturnType<typeof attempt> =>
      retries === 0
        ? attempt(notify)
        : Effect.catchIf(attempt(notify), isRetryable, () => retrying(notify, retries - 1))
    const retried = Effect.flatMap(Effect.serviceOption(sql.transactionService), (outer) => {
      // inside the caller's transaction the append always sends its own NOTIFY: only PostgreSQL knows when that
      // transaction commits
      const inside = Option.isSome(outer)
      const notify = inside || options.notify === "always" || (options.notify === "alone" && inFlight === 0)
      inFlight++
      return retrying(notify, inside ? 0 : 8).pipe(
        Effect.ensuring(Effect.sync(() => inFlight--)),
        Effect.tap((results) =>
          !notify && results.some((result) => result.positions.length > 0) ? options.appended : Effect.void
        )
      )
    })
    return retried.pipe(
      Effect.catch((error) => {
        if (!isSqlError(error)) return Effect.fail(error)
        // a refusal the database raised aborted the transaction, so it is examined outside; only a lone append can
        // turn out to be a retry of one that landed
        return Effect.flatMap(classify(list[failedAt]!, error), (result) =>
          list.length === 1 ? Effect.succeed([result]) : Effect.fail(storage(error))
        )
      }),
      Effect.mapError((error) => (isSqlError(error) ? storage(error) : error))
    )
  }

  return { transaction }
}
