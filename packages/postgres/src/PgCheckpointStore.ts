/**
 * The PostgreSQL `CheckpointStore`: checkpoints, leases and parked events in the store's schema.
 *
 * `commit` runs the projection's work and the checkpoint's compare-and-set in one transaction on the same
 * `SqlClient`, so a read model written with that client sees every event exactly once: either the batch and its
 * checkpoint commit together, or neither does. The compare-and-set runs first and locks the checkpoint row, so a
 * zombie holder (its lease expired and taken over) fails before it writes anything. Lease expiry is judged by the
 * database's clock, never by the processes' clocks.
 *
 * @since 0.1.0
 */
import { CheckpointStore, type Event, Position, type StreamId } from "@facta/core"
import { DateTime, Duration, Effect, Layer, Option } from "effect"
import { SqlClient } from "effect/sql"
import * as Migrations from "./Migrations.ts"
import * as Storage from "./PgStorage.ts"

interface CheckpointRow {
  readonly name: string
  readonly version: number
  readonly partition: number
  readonly checkpoint: string
  readonly owner: string | null
  readonly lease_expires_at: Date | null
  readonly held: boolean
  readonly state: CheckpointStore.State
  readonly error: string | null
  readonly updated_at: Date
}

interface ParkedRow {
  readonly name: string
  readonly version: number
  readonly partition: number
  readonly event_id: string
  readonly stream_id: string
  readonly stream_version: number
  readonly position: string
  readonly type: string
  readonly schema_version: number
  readonly data: unknown
  readonly metadata: Event.EventMetadata
  readonly recorded_at: Date
  readonly error: string
  readonly parked_at: Date
}

// written only by Position.format: anything else is a corrupted row, never a reason to start over from the beginning
const parsePosition = (text: string): Position.Position => {
  const position = Position.parse(text)
  if (position === undefined) throw new Error(`corrupted checkpoint ${JSON.stringify(text)}`)
  return position
}

/**
 * What {@link make} and {@link layer} take: the store's schema (default `facta`) and whether to run the migrations
 * (`migrate: false` when another layer already ran them; `PgStore.layer` builds every store and migrates once).
 *
 * @example
 * ```ts
 * import { PgCheckpointStore } from "@facta/postgres"
 *
 * const options: PgCheckpointStore.Options = { schema: "billing", migrate: false }
 * const Checkpoints = PgCheckpointStore.layer(options)
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Options {
  readonly schema?: string | undefined
  readonly migrate?: boolean | undefined
  /**
   * How long lease, state and status calls (`control`, default 5 seconds) and a batch's transaction (`commit`, its
   * handler's work and the checkpoint, default 60 seconds) may wait for the server before they fail with a
   * retryable `StorageError`.
   */
  readonly deadlines?: Pick<Storage.Deadlines, "control" | "commit"> | undefined
}

/**
 * Builds the checkpoint store on the `SqlClient` in context, in `schema` (default `facta`); the tables come with the
 * store's migrations.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { PgCheckpointStore } from "@facta/postgres"
 *
 * // the store as a value (needs a SqlClient); PgCheckpointStore.layer provides it as a service
 * const store = PgCheckpointStore.make({ schema: "facta", migrate: false }).pipe(
 *   Effect.map((checkpoints) => checkpoints.transactional) // true
 * )
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = Effect.fnUntraced(function* (options?: Options) {
  const schema = options?.schema ?? Migrations.defaultSchema
  if (options?.migrate !== false) yield* Migrations.run(schema)
  const sql = yield* SqlClient.SqlClient
  const s = sql(schema)
  const deadlines = Storage.resolveDeadlines(options?.deadlines)
  const within = Storage.deadline(yield* Effect.scope, sql, "CheckpointStore")
  /** A store call: effect/sql's failures as `StorageError`s, under the deadline of its kind. */
  const storage =
    (operation: string) =>
    <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      effect.pipe(Storage.mapErrors("CheckpointStore", operation), within(operation, deadlines.control))
  const lost = (lease: CheckpointStore.Lease) => new CheckpointStore.LeaseLost({ ...lease.key, owner: lease.owner })
  const millis = (ttl: Duration.Input) => Math.max(1, Math.round(Duration.toMillis(ttl)))
  const heldBy = (lease: CheckpointStore.Lease) =>
    sql`name = ${lease.key.name} AND version = ${lease.key.version} AND partition = ${lease.key.partition}
      AND owner = ${lease.owner} AND fence = ${lease.fence}`

  const acquire: CheckpointStore.CheckpointStore["Service"]["acquire"] = (key, owner, ttl) =>
    sql<{ fence: bigint; checkpoint: string }>`
      INSERT INTO ${s}.checkpoints AS c (name, version, partition, checkpoint, owner, fence, lease_expires_at)
      VALUES (${key.name}, ${key.version}, ${key.partition}, ${Position.format(Position.start)}, ${owner}, 1,
        now() + ${millis(ttl)} * interval '1 millisecond')
      ON CONFLICT (name, version, partition) DO UPDATE SET
        fence = c.fence + 1,
        owner = excluded.owner,
        lease_expires_at = excluded.lease_expires_at,
        updated_at = now()
      WHERE c.owner IS NULL OR c.lease_expires_at <= now() OR c.owner = excluded.owner
      RETURNING fence, checkpoint`.pipe(
      Effect.map(([row]) =>
        row === undefined
          ? Option.none()
          : Option.some<CheckpointStore.Lease>({
              key,
              owner,
              fence: Number(row.fence),
              checkpoint: parsePosition(row.checkpoint)
            })
      ),
      storage("acquire")
    )

  const renew: CheckpointStore.CheckpointStore["Service"]["renew"] = (lease, ttl) =>
    sql`UPDATE ${s}.checkpoints SET lease_expires_at = now() + ${millis(ttl)} * interval '1 millisecond'
      WHERE ${heldBy(lease)} AND lease_expires_at > now() RETURNING 1`.pipe(
      storage("renew"),
      Effect.flatMap((rows) => (rows.length === 0 ? Effect.fail(lost(lease)) : Effect.void))
    )

  const release: CheckpointStore.CheckpointStore["Service"]["release"] = (lease, state, error) =>
    sql`UPDATE ${s}.checkpoints SET owner = NULL, lease_expires_at = NULL, state = ${state},
        error = ${error ?? null}, updated_at = now()
      WHERE ${heldBy(lease)}`.pipe(Effect.asVoid, storage("release"))

  // the work's own SQL that the database refuses is the handler's failure, so it passes through; a lost
  // connection, a deadlock or a deadline under it is the storage's, and so is anything the checkpoint write meets
  const commit: CheckpointStore.CheckpointStore["Service"]["commit"] = (lease, from, to, work) =>
    sql
      .withTransaction(
        Effect.gen(function* () {
          const moved = yield* sql`UPDATE ${s}.checkpoints SET checkpoint = ${Position.format(to)}, updated_at = now()
            WHERE ${heldBy(lease)} AND lease_expires_at > now() AND checkpoint = ${Position.format(from)}
            RETURNING 1`.pipe(Storage.mapErrors("CheckpointStore", "commit"))
          if (moved.length === 0) return yield* lost(lease)
          return yield* work
        })
      )
      .pipe(Storage.mapErrors("CheckpointStore", "commit", "retryable"), within("commit", deadlines.commit))

  const setState: CheckpointStore.CheckpointStore["Service"]["setState"] = (lease, state, error) =>
    sql`UPDATE ${s}.checkpoints SET state = ${state}, error = ${error ?? null}, updated_at = now()
      WHERE ${heldBy(lease)} RETURNING 1`.pipe(
      storage("setState"),
      Effect.flatMap((rows) => (rows.length === 0 ? Effect.fail(lost(lease)) : Effect.void))
    )

  const status: CheckpointStore.CheckpointStore["Service"]["status"] = (name) =>
    sql<CheckpointRow>`SELECT name, version, partition, checkpoint, owner, lease_expires_at,
        (owner IS NOT NULL AND lease_expires_at > now()) AS held, state, error, updated_at
      FROM ${s}.checkpoints WHERE name = ${name} ORDER BY version, partition`.pipe(
      Effect.map((rows) =>
        rows.map(
          (row): CheckpointStore.Status => ({
            key: { name: row.name, version: row.version, partition: row.partition },
            checkpoint: parsePosition(row.checkpoint),
            owner: row.held ? Option.fromNullishOr(row.owner) : Option.none(),
            leaseExpiresAt:
              row.held && row.lease_expires_at !== null
                ? Option.some(DateTime.fromDateUnsafe(row.lease_expires_at))
                : Option.none(),
            state: row.state,
            error: Option.fromNullishOr(row.error),
            updatedAt: DateTime.fromDateUnsafe(row.updated_at)
          })
        )
      ),
      storage("status")
    )

  const park: CheckpointStore.CheckpointStore["Service"]["park"] = (key, event, error) =>
    sql`INSERT INTO ${s}.parked_events (name, version, partition, event_id, stream_id, stream_version, position, type,
        schema_version, data, metadata, recorded_at, error)
      VALUES (${key.name}, ${key.version}, ${key.partition}, ${event.eventId}::uuid, ${event.streamId}, ${event.version},
        ${Position.format(event.position)}, ${event.type}, ${event.schemaVersion}, ${JSON.stringify(event.data)}::jsonb,
        ${JSON.stringify(event.metadata)}::jsonb, ${DateTime.toDateUtc(event.recordedAt)}, ${error})
      ON CONFLICT (name, version, partition, event_id) DO UPDATE SET error = excluded.error, parked_at = now()`.pipe(
      Effect.asVoid,
      storage("park")
    )

  const parked: CheckpointStore.CheckpointStore["Service"]["parked"] = (name) =>
    sql<ParkedRow>`SELECT * FROM ${s}.parked_events WHERE name = ${name} ORDER BY parked_at, position`.pipe(
      Effect.map((rows) =>
        rows.map(
          (row): CheckpointStore.Parked => ({
            key: { name: row.name, version: row.version, partition: row.partition },
            event: {
              eventId: row.event_id as Event.EventId,
              streamId: row.stream_id as StreamId.StreamId,
              version: row.stream_version,
              position: parsePosition(row.position),
              type: row.type,
              schemaVersion: row.schema_version,
              data: row.data as never,
              metadata: row.metadata,
              recordedAt: DateTime.fromDateUnsafe(row.recorded_at)
            },
            error: row.error,
            parkedAt: DateTime.fromDateUnsafe(row.parked_at)
          })
        )
      ),
      storage("parked")
    )

  const unpark: CheckpointStore.CheckpointStore["Service"]["unpark"] = (key, eventId) =>
    sql`DELETE FROM ${s}.parked_events WHERE name = ${key.name} AND version = ${key.version}
      AND partition = ${key.partition} AND event_id = ${eventId}::uuid`.pipe(Effect.asVoid, storage("unpark"))

  const activeVersion: CheckpointStore.CheckpointStore["Service"]["activeVersion"] = (name) =>
    sql<{ active_version: number }>`SELECT active_version FROM ${s}.projection_versions WHERE name = ${name}`.pipe(
      Effect.map(([row]) => Option.fromUndefinedOr(row?.active_version)),
      storage("activeVersion")
    )

  const promote: CheckpointStore.CheckpointStore["Service"]["promote"] = (name, version) =>
    sql`INSERT INTO ${s}.projection_versions AS v (name, active_version) VALUES (${name}, ${version})
      ON CONFLICT (name) DO UPDATE SET active_version = excluded.active_version
      WHERE v.active_version < excluded.active_version`.pipe(Effect.asVoid, storage("promote"))

  const claim: CheckpointStore.CheckpointStore["Service"]["claim"] = (name, key) =>
    sql`INSERT INTO ${s}.projection_claims (name, key) VALUES (${name}, ${key})
      ON CONFLICT DO NOTHING RETURNING 1`.pipe(
      Effect.map((rows) => rows.length > 0),
      storage("claim")
    )

  const unclaim: CheckpointStore.CheckpointStore["Service"]["unclaim"] = (name, key) =>
    sql`DELETE FROM ${s}.projection_claims WHERE name = ${name} AND key = ${key}`.pipe(
      Effect.asVoid,
      storage("unclaim")
    )

  return CheckpointStore.CheckpointStore.of({
    transactional: true,
    acquire,
    renew,
    release,
    commit,
    setState,
    status,
    park,
    parked,
    unpark,
    claim,
    unclaim,
    activeVersion,
    promote
  })
})

/**
 * The checkpoint store alone on an existing `SqlClient` (share it with the read models, so that their writes and the
 * checkpoints commit together), migrating on start unless told not to. With the event store too, use
 * `PgStore.layer`, which builds both on one schema and migrates once.
 *
 * @example
 * ```ts
 * import { PgCheckpointStore } from "@facta/postgres"
 *
 * // projections over an event store that lives elsewhere, their checkpoints beside the read models
 * const Checkpoints = PgCheckpointStore.layer({ schema: "projections", deadlines: { commit: "30 seconds" } })
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = (options?: Options) => Layer.effect(CheckpointStore.CheckpointStore, make(options))
