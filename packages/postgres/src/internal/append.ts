import { type EventStore, EventStoreError, type ExpectedVersion, Position, StoreKit, type StreamId } from "@facta/core"
import { Effect, Exit, Option, Result } from "effect"
import type { SqlClient } from "effect/sql"
import { SqlError } from "effect/sql"
import * as Storage from "../PgStorage.ts"
import * as Batcher from "./batcher.ts"
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

/** The PostgreSQL client's own default for the largest message it reads: a row larger than this never reads. */
export const defaultMaxMessageSize = 16 * 1024 * 1024

/**
 * Room in a message for everything of an event row besides its data and metadata: the message and field headers,
 * positions, ids, a stream id and a type of up to 255 characters each (at most 765 bytes each in UTF-8), the
 * timestamp. Well under 4 KiB; 64 KiB leaves a wide margin.
 */
export const rowOverheadBytes = 64 * 1024

/**
 * The size limits of the store's options, checked against what its client can read: every event it accepts must
 * come back in one message of at most `maxMessageSize` bytes. A message saying what to change when it cannot.
 */
export const resolveLimits = (options: {
  readonly maxEventBytes?: number | undefined
  readonly maxAppendBytes?: number | undefined
  readonly maxMessageSize?: number | undefined
}): Result.Result<StoreKit.Limits, string> => {
  const resolved = StoreKit.resolveLimits(options)
  if (Result.isFailure(resolved)) return Result.fail(resolved.failure)
  const limits = resolved.success
  const maxMessageSize = options.maxMessageSize ?? defaultMaxMessageSize
  if (limits.maxEventBytes + rowOverheadBytes > maxMessageSize) {
    return Result.fail(
      `maxEventBytes ${limits.maxEventBytes} leaves too little room in the client's maxMessageSize ${maxMessageSize}: ` +
        `an event row takes up to maxEventBytes + ${rowOverheadBytes} bytes, so a larger event could be stored but ` +
        `never read back; raise the PgClient's maxMessageSize to at least ${limits.maxEventBytes + rowOverheadBytes} ` +
        "or lower maxEventBytes"
    )
  }
  return resolved
}

/**
 * Appends through the store's `append_stream` and `append_batch` functions: one statement per transaction, one
 * transaction per call.
 */
export const make = Effect.fnUntraced(function* (
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
    /** How concurrent single-stream appends share transactions (`false`: each runs its own). */
    readonly batching: false | { readonly maxInFlight: number; readonly maxAppends: number }
    /** The size limits (checked with {@link resolveLimits}). */
    readonly limits: StoreKit.Limits
  }
) {
  const s = sql(schema)
  let inFlight = 0
  const storage = (error: SqlError.SqlError) => Storage.fromSqlError("EventStore", "append", error)

  /**
   * One request goes through `append_stream`: `append_batch` without its loop over requests, and the events' data and
   * metadata as one JSON array each (the JSON texts the validation made, joined) rather than `jsonb[]`, which
   * measured cheaper (docs/benchmarks.md, item 12).
   */
  const callOne = (p: StoreKit.Prepared, notify: boolean) => {
    const [kind, version] = kindOf(p.expected)
    const events = p.events
    const ids = new Array<string>(events.length)
    const types = new Array<string>(events.length)
    const schemaVersions = new Array<number>(events.length)
    let data = "["
    let metadata = "["
    for (let i = 0; i < events.length; i++) {
      const e = events[i]!
      ids[i] = e.event.eventId
      types[i] = e.event.type
      schemaVersions[i] = e.event.schemaVersion
      const comma = i === 0 ? "" : ","
      data += comma + e.dataJson
      metadata += comma + e.metadataJson
    }
    return sql<AppendRow>`SELECT status, version, epoch, tx_id::text AS tx_id, positions FROM ${s}.append_stream(
      ${p.streamId}, ${p.category}, ${kind}::smallint, ${version}::integer, ${ids}::uuid[], ${types}::text[],
      ${schemaVersions}::smallint[], ${`${data}]`}::jsonb, ${`${metadata}]`}::jsonb, ${notify}::boolean)`
  }

  const call = (list: ReadonlyArray<StoreKit.Prepared>, notify: boolean) => {
    if (list.length === 1) return callOne(list[0]!, notify)
    const kinds = list.map((p) => kindOf(p.expected))
    const events = list.flatMap((p) => p.events)
    return sql<AppendRow>`SELECT status, version, epoch, tx_id::text AS tx_id, positions FROM ${s}.append_batch(
      ${list.map((p) => p.streamId)}::text[],
      ${list.map((p) => p.category)}::text[],
      ${kinds.map(([kind]) => kind)}::smallint[],
      ${kinds.map(([, version]) => version)}::integer[],
      ${list.map((p) => p.events.length)}::integer[],
      ${events.map((e) => e.event.eventId)}::uuid[],
      ${events.map((e) => e.event.type)}::text[],
      ${events.map((e) => e.event.schemaVersion)}::smallint[],
      ${events.map((e) => e.dataJson)}::jsonb[],
      ${events.map((e) => e.metadataJson)}::jsonb[],
      ${notify}::boolean)`
  }

  const lookup = (p: StoreKit.Prepared) =>
    Effect.map(
      sql<StoredRow>`SELECT event_id, stream_id, version, type, schema_version, data, epoch, tx_id::text AS tx_id,
          global_position
        FROM ${s}.events WHERE event_id = ANY(${p.events.map((e) => e.event.eventId)}::uuid[])`,
      (rows) =>
        rows.map(
          (row): StoreKit.StoredEvent => ({
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

  const refusal = (p: StoreKit.Prepared, status: number, version: number): Refusal => {
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
  const currentRefusal = (p: StoreKit.Prepared) =>
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
  const settle = (p: StoreKit.Prepared, otherwise: Effect.Effect<Refusal, SqlError.SqlError>) =>
    Effect.flatMap(lookup(p), (found): Effect.Effect<EventStore.AppendResult, AppendFailure | SqlError.SqlError> => {
      const match = StoreKit.matchRetry(p, found)
      switch (match._tag) {
        case "NotStored":
          return Effect.flatMap(otherwise, Effect.fail)
        case "Retry":
          return Effect.succeed(match.result)
        case "Conflict":
          return Effect.fail(match.error)
      }
    })

  /** What one request's status row means. */
  const outcome = (
    p: StoreKit.Prepared,
    row: AppendRow | undefined
  ): Effect.Effect<EventStore.AppendResult, AppendFailure | SqlError.SqlError> => {
    if (row === undefined) return Effect.die(new Error("append_batch returned too few rows"))
    switch (row.status) {
      case AppendStatus.ok: {
        const commit = row.tx_id === null ? 0n : BigInt(row.tx_id)
        return Effect.succeed({
          streamId: p.streamId,
          nextExpectedVersion: row.version!,
          positions: (row.positions ?? []).map((position) => Position.make(row.epoch!, commit, position))
        })
      }
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
  }

  /** A unique key the database refused, seen only when the transaction failed: examined outside it. */
  const isConflict = (error: SqlError.SqlError) =>
    error.reason._tag === "UniqueViolation" &&
    (error.reason.constraint === "events_event_id_key" || error.reason.constraint === "events_stream_version_key")

  /** A lone append: its refusal may turn out to be a retry of one that landed. */
  const classifyOne = (p: StoreKit.Prepared, error: SqlError.SqlError) =>
    isConflict(error) ? settle(p, currentRefusal(p)) : Effect.fail(storage(error))

  /** A multi-stream append: the first request whose ids are stored with other content is the conflict. */
  const classifyMany = Effect.fnUntraced(function* (list: ReadonlyArray<StoreKit.Prepared>, error: SqlError.SqlError) {
    if (isConflict(error)) {
      for (const p of list) {
        const match = StoreKit.matchRetry(p, yield* lookup(p))
        if (match._tag === "Conflict") return yield* Effect.fail(match.error)
      }
    }
    return yield* Effect.fail(storage(error))
  })

  /**
   * Runs `attempt` as one of the store's appends in flight: whether it sends its own NOTIFY (`alone`: it is a single
   * request, so it may when nothing else is in flight), and a wake-up after it when it stored events without one.
   */
  const tracked = <A, E>(
    alone: boolean,
    attempt: (notify: boolean) => Effect.Effect<A, E>,
    wrote: (a: A) => boolean
  ): Effect.Effect<A, E> =>
    Effect.suspend(() => {
      const notify = options.notify === "always" || (options.notify === "alone" && alone && inFlight === 0)
      inFlight++
      return attempt(notify).pipe(
        Effect.ensuring(Effect.sync(() => inFlight--)),
        Effect.tap((a) => (!notify && wrote(a) ? options.appended : Effect.void))
      )
    })
  const storedAny = (results: ReadonlyArray<EventStore.AppendResult>) =>
    results.some((result) => result.positions.length > 0)

  /** The requests of one call in one transaction: the statement alone for one request, else in a transaction. */
  const attempt = (
    list: ReadonlyArray<StoreKit.Prepared>,
    notify: boolean
  ): Effect.Effect<ReadonlyArray<EventStore.AppendResult>, AppendFailure | SqlError.SqlError> =>
    list.length === 1
      ? Effect.flatMap(call(list, notify), ([row]) => Effect.map(outcome(list[0]!, row), (result) => [result]))
      : sql.withTransaction(
          Effect.flatMap(call(list, notify), (rows) => Effect.forEach(list, (p, i) => outcome(p, rows[i])))
        )

  /** A database refusal aborted the transaction, so it is examined outside it; other errors stay as they are. */
  const examined = (
    list: ReadonlyArray<StoreKit.Prepared>,
    effect: Effect.Effect<ReadonlyArray<EventStore.AppendResult>, AppendFailure | SqlError.SqlError>
  ): Effect.Effect<ReadonlyArray<EventStore.AppendResult>, AppendFailure> =>
    effect.pipe(
      Effect.catchTag("SqlError", (error) =>
        list.length === 1 ? Effect.map(classifyOne(list[0]!, error), (result) => [result]) : classifyMany(list, error)
      ),
      Effect.mapError((error) => (isSqlError(error) ? storage(error) : error))
    )

  /**
   * The requests of one call in a transaction of the store's own. A serialization failure (the database's isolation
   * level refused it) or a deadlock with another client's transaction is settled by running it again.
   */
  const ownTransaction = (list: ReadonlyArray<StoreKit.Prepared>) => {
    const retrying = (notify: boolean, retries: number): ReturnType<typeof attempt> =>
      retries === 0
        ? attempt(list, notify)
        : Effect.catchIf(attempt(list, notify), isRetryable, () => retrying(notify, retries - 1))
    return examined(
      list,
      tracked(list.length === 1, (notify) => retrying(notify, 8), storedAny)
    )
  }

  /**
   * The requests of one call in the caller's transaction: the caller's to retry. It always notifies: only PostgreSQL
   * knows when that transaction commits.
   */
  const callersTransaction = (list: ReadonlyArray<StoreKit.Prepared>) => examined(list, attempt(list, true))

  /**
   * Independent single-stream appends of several callers in one statement, autocommitted: each gets its own
   * result. When the statement fails as a whole (a unique key, a deadlock, a lost connection), nothing of it is
   * written and each runs again alone, where its own refusal is told apart; ids make that safe even if the lost
   * connection did commit.
   */
  const together = (
    list: ReadonlyArray<StoreKit.Prepared>
  ): Effect.Effect<ReadonlyArray<Exit.Exit<EventStore.AppendResult, AppendFailure>>> => {
    type Outcomes = ReadonlyArray<Exit.Exit<EventStore.AppendResult, AppendFailure | SqlError.SqlError>>
    // undefined: the statement failed as a whole
    const statement = (notify: boolean): Effect.Effect<Outcomes | undefined> =>
      Effect.matchEffect(call(list, notify), {
        onFailure: () => Effect.undefined,
        onSuccess: (rows) =>
          Effect.forEach(list, (p, i) => Effect.exit(outcome(p, rows[i])), { concurrency: "unbounded" })
      })
    const wrote = (outcomes: Outcomes | undefined) =>
      outcomes?.some((exit) => Exit.isSuccess(exit) && exit.value.positions.length > 0) === true
    return Effect.flatMap(tracked(false, statement, wrote), (outcomes) =>
      outcomes === undefined
        ? Effect.forEach(list, (p) => Effect.exit(single(p)), { concurrency: "unbounded" })
        : Effect.succeed(
            outcomes.map((exit) => Exit.mapError(exit, (error) => (isSqlError(error) ? storage(error) : error)))
          )
    )
  }

  const single = (p: StoreKit.Prepared) => Effect.map(ownTransaction([p]), (results) => results[0]!)
  const batched =
    options.batching === false
      ? single
      : yield* Batcher.make({
          maxInFlight: options.batching.maxInFlight,
          maxSize: options.batching.maxAppends,
          span: "PgEventStore.appendBatch",
          one: single,
          many: together
        })

  const transaction = (
    requests: ReadonlyArray<EventStore.AppendRequest>
  ): Effect.Effect<ReadonlyArray<EventStore.AppendResult>, AppendFailure | StreamId.InvalidStreamId> => {
    const prepared = StoreKit.prepareAll(requests, options.limits)
    if (Result.isFailure(prepared)) return Effect.fail(prepared.failure)
    const list = prepared.success
    return Effect.flatMap(Effect.serviceOption(sql.transactionService), (outer) => {
      if (Option.isSome(outer)) return callersTransaction(list)
      return list.length === 1 ? Effect.map(batched(list[0]!), (result) => [result]) : ownTransaction(list)
    })
  }

  return { transaction }
})
