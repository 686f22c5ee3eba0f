/**
 * The PostgreSQL `EventStore`: the same laws as the in-memory store (checked by the same conformance suite), on
 * `effect/sql` and `@effect/sql-pg`.
 *
 * - An append is one round trip: a server-side function that takes every stream's writer lock first, then checks
 *   the expected version on the stream row (the first write of its transaction), inserts the events with `unnest`,
 *   and (unless other appends of the process overlap it, see {@link Options}) sends a payload-free `NOTIFY`
 *   delivered at its commit. Concurrent single-stream appends share that round trip and its commit (`batching`),
 *   each with its own result. A transaction of the store's own that PostgreSQL refuses for serialization or as a
 *   deadlock victim runs again (up to 8 times).
 * - The global log is read below the transaction-id horizon (`pg_snapshot_xmin(pg_current_snapshot())`), ordered by
 *   `(epoch, tx_id, global_position)`: every transaction below the horizon has finished, so a reader never skips an
 *   event that commits late. A long-running writing transaction anywhere in the cluster stalls readers (never makes
 *   them skip); {@link PgEventStore.horizon} shows it. A page is an ordered walk of an index, planned the same way
 *   whatever the table's statistics (the `read_log` function).
 *
 * @since 0.1.0
 */
import { PgClient, PgConnection } from "@effect/sql-pg"
import {
  type Event,
  EventStore,
  EventStoreError,
  ExpectedVersion,
  Position,
  type StorageError,
  StoreKit,
  StreamId
} from "@facta/core"
import {
  Context,
  DateTime,
  type Duration,
  Effect,
  Layer,
  Option,
  Queue,
  type Redacted,
  Result,
  Schedule,
  type Schema,
  Stream
} from "effect"
import type { Migrator, SqlClient, SqlError } from "effect/sql"
import * as Append from "./internal/append.ts"
import * as Rows from "./internal/rows.ts"
import { type EventRow, eventColumns } from "./internal/rows.ts"
import { CloseStatus, notifyChannel } from "./internal/schema.ts"
import * as Migrations from "./Migrations.ts"
import * as Storage from "./PgStorage.ts"

/**
 * Options of the PostgreSQL store.
 *
 * @category models
 * @since 0.1.0
 */
export interface Options {
  /** The schema the store's tables live in (default `facta`). */
  readonly schema?: string | undefined
  /** Run pending migrations when the layer starts (default `true`). */
  readonly migrate?: boolean | undefined
  /**
   * How appends wake subscriptions (default `"auto"`). A `NOTIFY` is delivered at its transaction's commit, but a
   * notifying commit holds a cluster-wide lock until it is flushed, so concurrent notifying writers stop sharing WAL
   * flushes (group commit), which halves their throughput.
   * - `"auto"`: an append that starts while no other append of this store is in flight sends its own `NOTIFY`;
   *   appends that overlap others send none, and this process sends one `NOTIFY` per burst after they commit (at
   *   most one per `coalesceInterval`, default 5 ms). A lone writer gets per-append wake-ups, concurrent writers keep
   *   group commit.
   * - `"per-append"`: every append sends its own `NOTIFY`.
   * - `"coalesced"`: no append sends one; this process sends one per burst after they commit.
   *
   * Appends inside the caller's transaction always send their own (only PostgreSQL knows when it commits). Writers
   * outside Facta that send none are found by the subscriptions' polling.
   */
  readonly wakeups?: "auto" | "per-append" | "coalesced" | undefined
  readonly coalesceInterval?: Duration.Input | undefined
  /**
   * Group commit for concurrent appends (default on, `maxInFlight` 2, `maxAppends` 100). A single-stream append
   * that starts while fewer than `maxInFlight` appends of this store run goes at once, on its own; the ones that
   * start while that many run wait, and go together in the next run: one statement, one transaction and one commit
   * for up to `maxAppends` of them. Each keeps its own expected version and its own result: a refused append does
   * not affect the others. `false` runs every append in its own transaction. Multi-stream appends (`appendMany`)
   * and appends inside the caller's transaction always run on their own.
   */
  readonly batching?:
    | false
    | { readonly maxInFlight?: number | undefined; readonly maxAppends?: number | undefined }
    | undefined
  /**
   * How long each kind of call may wait for the server before it fails with a retryable `StorageError` (defaults:
   * reads and appends 10 seconds). A stalled server or a silently dropped network never leaves a caller waiting
   * without bound; an append that missed its deadline may still have committed, and its retry (same event ids)
   * returns the original result.
   */
  readonly deadlines?: Storage.Deadlines | undefined
  /**
   * Run behind a transaction pooler (PgBouncer in transaction mode, RDS Proxy, most hosted poolers), where nothing
   * of a session survives from one transaction to the next. The `PgClient` must be built with `prepare: false`
   * (a named prepared statement would be looked for on another server connection; the layer refuses to start
   * otherwise). `LISTEN` does not survive either, so subscriptions are woken through `listenUrl`, a direct
   * connection to the server, when one is given, and poll otherwise (their lag is then the poll interval);
   * `PgEventStore.wakeupSource` says which.
   */
  readonly pooler?: { readonly listenUrl?: Redacted.Redacted | undefined } | undefined
  /**
   * The largest event the store takes (default 4 MiB): its data and metadata together, in bytes as PostgreSQL's
   * `jsonb` prints them back (`StoreKit.jsonbBytes`: escapes included, a space after each `:` and `,`,
   * numbers in plain notation). A larger one fails the append with `EventTooLarge` and writes nothing. The client
   * must be able to read every event the store takes: the layer refuses to start (a defect, naming both figures)
   * unless the `PgClient`'s `maxMessageSize` (default 16 MiB) is at least `maxEventBytes` plus 64 KiB for the row's
   * other columns; to raise this limit past about 16 MB, raise `maxMessageSize` too.
   */
  readonly maxEventBytes?: number | undefined
  /**
   * The largest append (default 64 MiB): the sum of its events' sizes, counted as for `maxEventBytes`, over every
   * stream of an `appendMany`. A larger one fails with `EventTooLarge` naming the event that passed the limit.
   */
  readonly maxAppendBytes?: number | undefined
}

/**
 * What the global-log horizon looks like now: how many committed events readers cannot see yet because an older
 * transaction is still open, and how long the oldest writing transaction has been running.
 *
 * @category models
 * @since 0.1.0
 */
export interface Horizon {
  readonly heldBackEvents: number
  readonly oldestTransactionSeconds: number
  /**
   * Events that sort after every position a transaction can write now (a transaction id no transaction has had yet,
   * as after a logical restore into a new cluster without an epoch bump): readers do not see them yet. Normally 0.
   */
  readonly unreachableEvents: number
}

/**
 * PostgreSQL-specific operations beside the `EventStore` service.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { PgEventStore } from "@facta/postgres"
 *
 * // alert when an open transaction holds projections back
 * const watch = Effect.gen(function*() {
 *   const { horizon } = yield* PgEventStore.PgEventStore
 *   const { heldBackEvents, oldestTransactionSeconds } = yield* horizon
 *   if (oldestTransactionSeconds > 60) {
 *     yield* Effect.logWarning(`${heldBackEvents} events wait behind a ${oldestTransactionSeconds}s old transaction`)
 *   }
 * })
 * ```
 *
 * @category services
 * @since 0.1.0
 */
export class PgEventStore extends Context.Service<
  PgEventStore,
  {
    readonly schema: string
    /** The horizon lag: a stalled log is visible here before anyone notices missing events. */
    readonly horizon: Effect.Effect<Horizon, StorageError.StorageError>
    /** Where subscriptions' wake-ups come from (see {@link Options.pooler}). */
    readonly wakeupSource: WakeupSource
  }
>()("@facta/postgres/PgEventStore") {}

/**
 * Where a store's subscriptions learn of new events between polls: `LISTEN` on the store's pool (`"listen"`), on a
 * direct connection beside a transaction pooler (`"listen-direct"`), or nowhere, so that they poll (`"polling"`).
 *
 * @category models
 * @since 0.1.0
 */
export type WakeupSource = "listen" | "listen-direct" | "polling"

const maxVersion = 2_147_483_647

/**
 * Builds the store on the `PgClient` in context.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { PgEventStore } from "@facta/postgres"
 *
 * // the store as values (needs a PgClient); PgEventStore.layer provides them as services
 * const program = Effect.gen(function*() {
 *   const { store, pg } = yield* PgEventStore.make({ schema: "facta" })
 *   return { head: yield* store.head, horizon: yield* pg.horizon }
 * })
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = Effect.fnUntraced(function* (options?: Options) {
  const schema = options?.schema ?? Migrations.defaultSchema
  const batching =
    options?.batching === false
      ? false
      : { maxInFlight: options?.batching?.maxInFlight ?? 2, maxAppends: options?.batching?.maxAppends ?? 100 }
  for (const [name, value] of Object.entries(batching || {})) {
    if (!(Number.isSafeInteger(value) && value >= 1)) {
      return yield* Effect.die(new Error(`batching.${name} must be a positive integer, got ${value}`))
    }
  }
  const sql = yield* PgClient.PgClient
  if (options?.pooler !== undefined && sql.config.prepare !== false) {
    return yield* Effect.die(
      new Error("PgEventStore: behind a transaction pooler the PgClient must be built with `prepare: false`")
    )
  }
  const limits = Append.resolveLimits({ ...options, maxMessageSize: sql.config.maxMessageSize })
  if (Result.isFailure(limits)) return yield* Effect.die(new Error(`PgEventStore: ${limits.failure}`))
  if (options?.migrate !== false) yield* Migrations.run(schema)
  const s = sql(schema)
  const deadlines = Storage.resolveDeadlines(options?.deadlines)
  const within = Storage.deadline(yield* Effect.scope, sql, "EventStore")
  /** A store call: effect/sql's failures as `StorageError`s, under the deadline of its kind. */
  const guard =
    (operation: string, kind: "read" | "append" = "read") =>
    <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      effect.pipe(Storage.mapErrors("EventStore", operation), within(operation, deadlines[kind]))
  const wakeupMode = options?.wakeups ?? "auto"
  const pending = yield* Queue.sliding<void>(1)
  if (wakeupMode !== "per-append") {
    // one NOTIFY for every burst of appends: wait for an append, notify, rest, repeat
    yield* Queue.take(pending).pipe(
      Effect.andThen(sql`SELECT pg_notify(${notifyChannel(schema)}, '')`),
      Effect.andThen(Effect.sleep(options?.coalesceInterval ?? "5 millis")),
      Effect.catchCause((cause) => Effect.logWarning("could not send a wake-up", cause)),
      Effect.forever,
      Effect.forkScoped
    )
  }
  const append = yield* Append.make(sql, schema, {
    notify: wakeupMode === "auto" ? "alone" : wakeupMode === "coalesced" ? "never" : "always",
    appended: Effect.asVoid(Queue.offer(pending, undefined)),
    batching,
    limits: limits.success
  })
  // the global log's horizon: every transaction below it has finished, so nothing can commit behind a reader
  const visible = sql`(e.epoch < (SELECT epoch FROM ${s}.store) OR e.tx_id < pg_snapshot_xmin(pg_current_snapshot()))`

  const streamRow = (streamId: string) =>
    sql<{ version: number; created_at: Date; updated_at: Date; archived_at: Date | null; deleted_at: Date | null }>`
      SELECT version, created_at, updated_at, archived_at, deleted_at FROM ${s}.streams WHERE stream_id = ${streamId}`

  const read: EventStore.EventStore["Service"]["read"] = (streamId, options) =>
    Stream.unwrap(
      Effect.gen(function* () {
        yield* StreamId.parse(streamId)
        const [stream] = yield* streamRow(streamId).pipe(guard("read"))
        if (stream === undefined) return yield* new EventStoreError.StreamNotFound({ streamId })
        if (stream.deleted_at !== null) {
          return yield* new EventStoreError.StreamDeleted({ streamId, version: stream.version })
        }
        if (stream.archived_at !== null && options?.includeArchived !== true) {
          return yield* new EventStoreError.StreamArchived({ streamId, version: stream.version })
        }
        const backward = options?.direction === "backward"
        const from = Math.max(1, options?.from ?? 1)
        const to = Math.min(stream.version, options?.to ?? stream.version)
        const total = Math.max(0, Math.min(to - from + 1, options?.limit ?? Number.POSITIVE_INFINITY))
        const batchSize = Math.max(1, options?.batchSize ?? 1000)
        // keyset pages over the version range, in the requested direction; versions are dense (1..version, all
        // deleted at once), so a page holds exactly the versions it asks for, and anything else is a deletion under
        // the read or a row removed by hand
        return Stream.paginate(backward ? to : from, (next: number) => {
          const remaining = backward ? next - (to - total) : from + total - next
          const size = Math.min(batchSize, remaining)
          if (size <= 0) return Effect.succeed([[], Option.none<number>()] as const)
          const page = backward
            ? sql<EventRow>`SELECT ${sql.literal(eventColumns)} FROM ${s}.events
                WHERE stream_id = ${streamId} AND version <= ${next} ORDER BY version DESC LIMIT ${size}`
            : sql<EventRow>`SELECT ${sql.literal(eventColumns)} FROM ${s}.events
                WHERE stream_id = ${streamId} AND version >= ${next} ORDER BY version LIMIT ${size}`
          return Effect.flatMap(guard("read")(page), (rows) => {
            const events = Rows.streamPage(streamId, rows, next, backward ? -1 : 1)
            if (Result.isFailure(events)) return Effect.fail(events.failure)
            if (rows.length < size) return shortPage(streamId, backward ? next - rows.length : next + rows.length)
            const last = backward ? next - rows.length : next + rows.length
            return Effect.succeed([events.success, size === remaining ? Option.none() : Option.some(last)] as const)
          })
        })
      })
    )

  /** A page of a stream came back short at `version`: the stream was deleted meanwhile, or that version is missing. */
  const shortPage = (streamId: string, version: number) =>
    Effect.flatMap(guard("read")(streamRow(streamId)), ([row]) =>
      Effect.fail(
        row === undefined || row.deleted_at !== null
          ? new EventStoreError.StreamDeleted({ streamId, version: row?.version ?? version - 1 })
          : Rows.missingVersion(streamId, version, undefined)
      )
    )

  /**
   * A page of a fold held fewer rows than its range of versions: find the first missing version. One stored after it
   * means a hole in the stream; none, that the stream was deleted since the fold began (or its tail is missing).
   */
  const foldGap = (streamId: string, from: number, through: number) =>
    Effect.flatMap(
      guard("fold")(sql<{ version: number }>`SELECT version FROM ${s}.events
        WHERE stream_id = ${streamId} AND version >= ${from} AND version <= ${through} ORDER BY version`),
      (rows) => {
        let missing = from
        while (rows[missing - from]?.version === missing) missing++
        const after = rows[missing - from]
        return after === undefined
          ? shortPage(streamId, missing)
          : Effect.fail(Rows.missingVersion(streamId, missing, after.version))
      }
    )

  // A fold reads what a fold uses, as arrays: no envelope, no version column. A page asks for a range of versions,
  // and a stream's versions are unique, so a page holding as many rows as its range is dense (1..version, all
  // deleted at once); one holding fewer is looked at again by `foldGap`.
  const fold: EventStore.EventStore["Service"]["fold"] = (streamId, initial, step, options) =>
    Effect.gen(function* () {
      yield* StreamId.parse(streamId)
      const includeArchived = options?.includeArchived === true
      const batchSize = Math.max(1, options?.batchSize ?? 10_000)
      const until = Math.min(maxVersion, options?.to ?? maxVersion)
      let next = Math.max(1, options?.from ?? 1)
      // the stream row and the first page in one round trip, from one snapshot: [head, archived, deleted, type,
      // schema_version, data], or one row ending in nulls when no event is to be folded
      const first = yield* guard("fold")(
        sql`
        SELECT st.version, st.archived_at IS NOT NULL, st.deleted_at IS NOT NULL, e.type, e.schema_version, e.data
        FROM ${s}.streams st
        LEFT JOIN LATERAL (
          SELECT ev.type, ev.schema_version, ev.data FROM ${s}.events ev
          WHERE ev.stream_id = st.stream_id AND ev.version >= ${next}
            AND ev.version <= least(st.version, ${Math.min(until, next + batchSize - 1)})
            AND st.deleted_at IS NULL AND (st.archived_at IS NULL OR ${includeArchived})
          ORDER BY ev.version
        ) e ON true
        WHERE st.stream_id = ${streamId}`.values
      )
      const stream = first[0]
      if (stream === undefined) return yield* new EventStoreError.StreamNotFound({ streamId })
      const head = stream[0] as number
      if (stream[2] === true) return yield* new EventStoreError.StreamDeleted({ streamId, version: head })
      if (stream[1] === true && !includeArchived) {
        return yield* new EventStoreError.StreamArchived({ streamId, version: head })
      }
      const to = Math.min(head, until)
      let page = stream[3] === null ? [] : first
      let column = 3
      let state = initial
      while (next <= to) {
        const through = Math.min(to, next + batchSize - 1)
        if (page.length !== through - next + 1) return yield* foldGap(streamId, next, through)
        for (let i = 0; i < page.length; i++) {
          const row = page[i]!
          const stepped = step(state, {
            version: next + i,
            type: row[column] as string,
            schemaVersion: row[column + 1] as number,
            data: row[column + 2] as Schema.Json
          })
          if (Result.isFailure(stepped)) return yield* Effect.fail(stepped.failure)
          state = stepped.success
        }
        next = through + 1
        if (next > to) break
        page = yield* guard("fold")(
          sql`SELECT type, schema_version, data FROM ${s}.events
          WHERE stream_id = ${streamId} AND version >= ${next} AND version <= ${Math.min(to, next + batchSize - 1)}
          ORDER BY version`.values
        )
        column = 0
      }
      return state
    })

  const readAll: EventStore.EventStore["Service"]["readAll"] = (options) => {
    const batchSize = Math.max(1, options?.batchSize ?? 1000)
    const categories = options?.categories?.length ? [...options.categories] : undefined
    const types = options?.types?.length ? [...options.types] : undefined
    // the events before a corrupted row go out with their page; the next pull fails with the corrupted one
    return Stream.paginate(
      Result.succeed(options?.after ?? Position.start) as Result.Result<
        Position.Position,
        EventStoreError.CorruptedEvent
      >,
      (
        next
      ): Effect.Effect<
        readonly [
          ReadonlyArray<Event.RecordedEvent>,
          Option.Option<Result.Result<Position.Position, EventStoreError.CorruptedEvent>>
        ],
        EventStoreError.CorruptedEvent | StorageError.StorageError
      > => {
        if (Result.isFailure(next)) return Effect.fail(next.failure)
        const cursor = next.success
        return Effect.map(
          guard("readAll")(sql<EventRow>`SELECT ${sql.literal(eventColumns)} FROM ${s}.read_log(${cursor.epoch},
            ${String(cursor.commit)}::xid8, ${cursor.sequence}, ${categories ?? null}::text[], ${types ?? null}::text[],
            ${batchSize})`),
          (rows) => {
            const events: Event.RecordedEvent[] = []
            for (const row of rows) {
              const event = Rows.toRecorded(row)
              if (Result.isFailure(event)) return [events, Option.some(Result.fail(event.failure))] as const
              events.push(event.success)
            }
            const last = events.at(-1)
            return [
              events,
              rows.length < batchSize || last === undefined ? Option.none() : Option.some(Result.succeed(last.position))
            ] as const
          }
        )
      }
    )
  }

  const head = Effect.map(
    sql<{ epoch: number; tx_id: string; global_position: bigint }>`
      SELECT e.epoch, e.tx_id::text AS tx_id, e.global_position FROM ${s}.events e WHERE ${visible}
      ORDER BY e.epoch DESC, e.tx_id DESC, e.global_position DESC LIMIT 1`,
    ([row]) => (row === undefined ? Position.start : Position.make(row.epoch, BigInt(row.tx_id), row.global_position))
  ).pipe(guard("head"))

  // A committed event waits behind the horizon only while its tx_id is below the snapshot's xmax. A row of the current
  // epoch at or above it (a hand edit, or a logical restore into a new cluster without an epoch bump) holds an id no
  // transaction has had yet: no reader sees it until the cluster's ids pass it, so a run until caught up would wait
  // for it without end. Rows from (current epoch, xmax) on are left out here (a bound on the log's key: that tail is
  // skipped, not scanned) and reported by `horizon`.
  const lastCommitted = Effect.map(
    sql<{ epoch: number; tx_id: string; global_position: bigint }>`
      SELECT e.epoch, e.tx_id::text AS tx_id, e.global_position FROM ${s}.events e
      WHERE (e.epoch, e.tx_id) < ((SELECT epoch FROM ${s}.store), pg_snapshot_xmax(pg_current_snapshot()))
      ORDER BY e.epoch DESC, e.tx_id DESC, e.global_position DESC LIMIT 1`,
    ([row]) => (row === undefined ? Position.start : Position.make(row.epoch, BigInt(row.tx_id), row.global_position))
  ).pipe(guard("lastCommitted"))

  // LISTEN holds a connection of its own while someone listens (behind a pooler, a direct one, or none at all); a
  // (re)connected listener may have missed a notification, so it wakes its reader once at once
  const listenUrl = options?.pooler?.listenUrl
  const wakeupSource: WakeupSource =
    options?.pooler === undefined ? "listen" : listenUrl === undefined ? "polling" : "listen-direct"
  const listen =
    listenUrl === undefined
      ? sql.listen(notifyChannel(schema))
      : Effect.flatMap(PgConnection.make({ url: listenUrl, keepAlive: "10 seconds" }), (connection) =>
          connection.listen(notifyChannel(schema))
        )
  const wakeups: Stream.Stream<void, StorageError.StorageError> =
    wakeupSource === "polling"
      ? Stream.never
      : Stream.unwrap(
          Effect.map(listen, (queue) =>
            Stream.concat(
              Stream.succeed(undefined),
              Stream.map(Stream.fromQueue(queue), () => undefined)
            )
          )
        ).pipe(
          Stream.retry(Schedule.spaced("1 second")),
          Stream.mapError((error) => Storage.fromSqlError("EventStore", "listen", error))
        )
  yield* Effect.logDebug("event store wake-ups").pipe(Effect.annotateLogs({ schema, wakeups: wakeupSource }))

  const streamInfo: EventStore.EventStore["Service"]["streamInfo"] = (streamId) =>
    Effect.gen(function* () {
      const id = yield* StreamId.parse(streamId)
      const [row] = yield* streamRow(streamId).pipe(guard("streamInfo"))
      if (row === undefined) return Option.none()
      const instant = (date: Date | null) => Option.map(Option.fromNullishOr(date), DateTime.fromDateUnsafe)
      return Option.some<EventStore.StreamInfo>({
        streamId: id,
        category: StreamId.category(id),
        version: row.version,
        createdAt: DateTime.fromDateUnsafe(row.created_at),
        updatedAt: DateTime.fromDateUnsafe(row.updated_at),
        archivedAt: instant(row.archived_at),
        deletedAt: instant(row.deleted_at)
      })
    })

  /** Archives or deletes in one statement; `undefined` when done, or the version of the tombstone an archive met. */
  const close = Effect.fnUntraced(function* (
    operation: "archive" | "delete",
    streamId: string,
    options: EventStore.LifecycleOptions | undefined
  ) {
    yield* StreamId.parse(streamId)
    const expected = options?.expectedVersion ?? ExpectedVersion.any
    const checked = StoreKit.checkExpectedVersion(streamId, expected)
    if (Result.isFailure(checked)) return yield* checked.failure
    const [kind, version] = Append.kindOf(expected)
    const [row] = yield* sql<{ status: number; version: number }>`SELECT status, version FROM ${s}.close_stream(
        ${streamId}, ${operation === "delete"}, ${kind}::smallint, ${version}::integer)`.pipe(
      guard(operation, "append")
    )
    switch (row?.status) {
      case CloseStatus.ok:
        return undefined
      case CloseStatus.deleted:
        return row.version
      case CloseStatus.notFound:
        return yield* new EventStoreError.StreamNotFound({ streamId })
      case CloseStatus.wrongVersion:
        return yield* new EventStoreError.WrongExpectedVersion({ streamId, expected, actual: row.version })
    }
    return yield* Effect.die(new Error(`close_stream returned status ${row?.status}`))
  })

  // held back: committed behind an open transaction, readable once it ends. Unreachable: rows at or past the current
  // epoch's next transaction id (see lastCommitted), which no open transaction explains and waiting does not cure
  // (bumping the epoch does): not counted as held back, but logged as a warning every time the horizon is asked for
  const horizon = Effect.flatMap(
    sql<{ held_back: bigint; unreachable: bigint; oldest: number | null }>`
      SELECT
        (SELECT count(*) FROM ${s}.events
          WHERE epoch = (SELECT epoch FROM ${s}.store) AND tx_id >= pg_snapshot_xmin(pg_current_snapshot())
            AND tx_id < pg_snapshot_xmax(pg_current_snapshot())) AS held_back,
        (SELECT count(*) FROM ${s}.events
          WHERE (epoch, tx_id) >= ((SELECT epoch FROM ${s}.store), pg_snapshot_xmax(pg_current_snapshot())))
          AS unreachable,
        (SELECT extract(epoch FROM now() - min(xact_start))::float8 FROM pg_stat_activity
          WHERE backend_xid IS NOT NULL) AS oldest`,
    ([row]) => {
      const unreachable = Number(row?.unreachable ?? 0)
      const horizon: Horizon = {
        heldBackEvents: Number(row?.held_back ?? 0),
        oldestTransactionSeconds: row?.oldest ?? 0,
        unreachableEvents: unreachable
      }
      return unreachable === 0
        ? Effect.succeed(horizon)
        : Effect.as(
            Effect.logWarning(
              `${unreachable} events of ${schema}.events sort after every position a transaction can write now ` +
                "(a transaction id no transaction has had yet, or an epoch past the store's): readers do not see " +
                "them until the cluster's transaction ids pass theirs, and runs until caught up do not wait for " +
                "them. After a logical restore into a new cluster, bump the epoch (docs/operating-postgres.md)",
              { schema, unreachableEvents: unreachable }
            ),
            horizon
          )
    }
  ).pipe(guard("horizon"))

  return {
    store: EventStore.EventStore.of({
      append: (streamId, events, options) =>
        Effect.map(
          guard("append", "append")(append.transaction([{ streamId, events, ...options }])),
          (results) => results[0]!
        ),
      appendMany: (requests) => guard("appendMany", "append")(append.transaction(requests)),
      read,
      fold,
      readAll,
      head,
      lastCommitted,
      wakeups,
      streamInfo,
      archive: (streamId, options) =>
        Effect.flatMap(close("archive", streamId, options), (tombstone) =>
          tombstone === undefined
            ? Effect.void
            : Effect.fail(new EventStoreError.StreamDeleted({ streamId, version: tombstone }))
        ),
      delete: (streamId, options) => Effect.asVoid(close("delete", streamId, options))
    }),
    pg: PgEventStore.of({ schema, horizon, wakeupSource })
  }
})

/**
 * The event store alone on an existing `PgClient`, so an application shares its pool; migrates on start unless told
 * not to. `PgStore.layer` gives the checkpoint and snapshot stores beside it, migrating once.
 *
 * @example
 * ```ts
 * import { PgClient } from "@effect/sql-pg"
 * import { Layer, Redacted } from "effect"
 * import { PgEventStore } from "@facta/postgres"
 *
 * const Live = PgEventStore.layer({ schema: "facta" }).pipe(
 *   Layer.provide(PgClient.layer({ url: Redacted.make("postgres://postgres@127.0.0.1:5432/app") }))
 * )
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = (
  options?: Options
): Layer.Layer<
  EventStore.EventStore | PgEventStore,
  SqlError.SqlError | Migrator.MigrationError,
  PgClient.PgClient | SqlClient.SqlClient
> =>
  Layer.effectContext(
    Effect.map(make(options), ({ store, pg }) =>
      Context.make(EventStore.EventStore, store).pipe(Context.add(PgEventStore, pg))
    )
  )
