/**
 * Shared pieces of the PostgreSQL projection tests: an SQL read model that detects double processing, a projection
 * that feeds it, a random writer, per-instance layers on pools of their own, and the comparison of the read model
 * with a fold of the whole log.
 *
 * No vitest import here: the child process of ProjectionCrash.test.ts (fixtures/projectionWorker.ts) loads this file
 * with plain Node.
 */
import { PgClient } from "@effect/sql-pg"
import { CheckpointStore, EventCodec, EventStore, Position, Projection } from "@facta/core"
import { PgBatch, PgCheckpointStore, PgEventStore } from "@facta/postgres"
import { Effect, Fiber, Layer, Option, Redacted, Schedule, Schema, Stream } from "effect"
import { SqlClient } from "effect/sql"

export const Counted = Schema.TaggedStruct("Counted", { n: Schema.Int })
export const codec = EventCodec.make(Counted)

/**
 * A read model of two tables in `schema`, named after `prefix`:
 * - `<prefix>_seen`: one row per handled event id (PRIMARY KEY); handling an id again bumps `times` instead of
 *   failing, so double processing is counted, not hidden behind a handler failure. `seq` records the handling order.
 * - `<prefix>_counts`: per stream, how many events and the sum of their `n` (off when an event counts twice).
 */
export interface ReadModel {
  readonly schema: string
  readonly prefix: string
}

export const createReadModel = (model: ReadModel) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const s = sql(model.schema)
    yield* sql`CREATE TABLE ${s}.${sql(`${model.prefix}_seen`)} (
      event_id uuid PRIMARY KEY,
      stream_id text NOT NULL,
      position text NOT NULL,
      handled_by text NOT NULL,
      times integer NOT NULL DEFAULT 1,
      seq bigserial NOT NULL
    )`
    yield* sql`CREATE TABLE ${s}.${sql(`${model.prefix}_counts`)} (
      stream_id text PRIMARY KEY,
      events integer NOT NULL,
      total bigint NOT NULL
    )`
  })

export interface ProjectionOptions {
  readonly model: ReadModel
  readonly name: string
  readonly category: string
  /** Written into `handled_by`: which instance handled the event. */
  readonly handledBy?: string | undefined
  /** A `pg_sleep` inside each batch's transaction, after the writes (widens the window for a crash mid-batch). */
  readonly slowMillis?: number | undefined
  /** The handler fails on events with this `n`, with `Poisoned` (or `BarePoison` when `bare`). */
  readonly poison?: number | undefined
  readonly bare?: boolean | undefined
  readonly onFailure?: "stop" | "park" | undefined
}

/** The handler's failure on a poison event. */
export class Poisoned extends Schema.TaggedError<Poisoned>()("Poisoned", { eventId: Schema.String }) {
  override get message() {
    return `poisoned event ${this.eventId}`
  }
}

/** The same failure as a tagged error with no message of its own (the common way to declare one). */
export class BarePoison extends Schema.TaggedError<BarePoison>()("BarePoison", { eventId: Schema.String }) {}

/** The projection that feeds the read model, with the SqlClient in context (the checkpoint store's, for one tx). */
export const countingProjection = (options: ProjectionOptions) => {
  const { model } = options
  return Projection.make({
    name: options.name,
    events: codec,
    categories: [options.category],
    onFailure: options.onFailure,
    retry: Schedule.recurs(1),
    handleBatch: (events) =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const s = sql(model.schema)
        for (const event of events) {
          if (options.poison !== undefined && event.data.n === options.poison) {
            return yield* options.bare === true
              ? new BarePoison({ eventId: event.eventId })
              : new Poisoned({ eventId: event.eventId })
          }
          yield* sql`INSERT INTO ${s}.${sql(`${model.prefix}_seen`)} AS t (event_id, stream_id, position, handled_by)
            VALUES (${event.eventId}::uuid, ${event.streamId}, ${Position.format(event.position)},
              ${options.handledBy ?? "?"})
            ON CONFLICT (event_id) DO UPDATE SET times = t.times + 1`
          yield* sql`INSERT INTO ${s}.${sql(`${model.prefix}_counts`)} AS c (stream_id, events, total)
            VALUES (${event.streamId}, 1, ${event.data.n})
            ON CONFLICT (stream_id) DO UPDATE SET events = c.events + 1, total = c.total + excluded.total`
        }
        if (options.slowMillis !== undefined && options.slowMillis > 0) {
          yield* sql`SELECT pg_sleep(${options.slowMillis / 1000})`
        }
      })
  })
}

/** A `<prefix>_seen` row as `batchCountingProjection` writes it (`seq` is left to its default). */
interface SeenWrite {
  readonly event_id: string
  readonly stream_id: string
  readonly position: string
  readonly handled_by: string
  readonly times: number
}

/** A `<prefix>_counts` row. */
interface CountRow {
  readonly stream_id: string
  readonly events: number
  readonly total: bigint
}

/**
 * The counting projection written the batch way (docs/batch-projections.md), for the same read model as
 * `countingProjection`: it loads the rows the batch touches (`PgBatch.load`), folds the batch per stream and per
 * event id in memory (`PgBatch.foldByKey`), and writes each table with one `PgBatch.upsert`. An event id handled again
 * finds its row and bumps `times`, so double processing shows as it does with the per-event SQL. With `slowMillis`,
 * a `pg_sleep` runs between the two upserts (counts written, seen rows not yet, nothing committed): a window for a
 * kill in the middle of a batch.
 */
export const batchCountingProjection = (options: {
  readonly model: ReadModel
  readonly name: string
  readonly category: string
  readonly handledBy?: string | undefined
  readonly slowMillis?: number | undefined
  readonly onFailure?: "stop" | "park" | undefined
}) => {
  const { model } = options
  const Seen = PgBatch.table<SeenWrite>(`${model.schema}.${model.prefix}_seen`, {
    event_id: "uuid",
    stream_id: "text",
    position: "text",
    handled_by: "text",
    times: "integer"
  })
  const Counts = PgBatch.table<CountRow>(`${model.schema}.${model.prefix}_counts`, {
    stream_id: "text",
    events: "integer",
    total: "bigint"
  })
  return Projection.make({
    name: options.name,
    events: codec,
    categories: [options.category],
    onFailure: options.onFailure,
    retry: Schedule.recurs(1),
    handleBatch: Effect.fnUntraced(function* (events) {
      // 1. the rows the batch touches, before it
      const counts = yield* PgBatch.load(
        Counts,
        "stream_id",
        events.map((event) => event.streamId)
      )
      const seen = yield* PgBatch.load(
        Seen,
        "event_id",
        events.map((event) => event.eventId)
      )
      // 2. folded per row, in log order
      const perStream = PgBatch.foldByKey(events, {
        key: (event) => event.streamId,
        initial: (stream) => counts.get(stream),
        step: (row: CountRow | undefined, event): CountRow => ({
          stream_id: event.streamId,
          events: (row?.events ?? 0) + 1,
          total: BigInt(row?.total ?? 0n) + BigInt(event.data.n)
        })
      })
      const perEvent = PgBatch.foldByKey(events, {
        key: (event) => event.eventId,
        initial: (id) => seen.get(id),
        step: (row: SeenWrite | undefined, event): SeenWrite =>
          row === undefined
            ? {
                event_id: event.eventId,
                stream_id: event.streamId,
                position: Position.format(event.position),
                handled_by: options.handledBy ?? "?",
                times: 1
              }
            : { ...row, times: row.times + 1 }
      })
      // 3. one statement per table
      const defined = <A>(row: A | undefined): row is A => row !== undefined
      yield* PgBatch.upsert(Counts, [...perStream.final.values()].filter(defined), {
        onConflict: { key: ["stream_id"] }
      })
      if (options.slowMillis !== undefined && options.slowMillis > 0) {
        const sql = yield* SqlClient.SqlClient
        yield* sql`SELECT pg_sleep(${options.slowMillis / 1000})`
      }
      yield* PgBatch.upsert(Seen, [...perEvent.final.values()].filter(defined), {
        onConflict: { key: ["event_id"], update: ["times"] }
      })
    })
  })
}

export interface SeenRow {
  readonly event_id: string
  readonly stream_id: string
  readonly position: string
  readonly handled_by: string
  readonly times: number
  readonly seq: bigint
}

/** The read model's rows, `seen` in handling order. */
export const readModelRows = (model: ReadModel) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const s = sql(model.schema)
    const seen = yield* sql<SeenRow>`SELECT event_id::text AS event_id, stream_id, position, handled_by, times, seq
      FROM ${s}.${sql(`${model.prefix}_seen`)} ORDER BY seq`
    const counts = yield* sql<{ stream_id: string; events: number; total: bigint }>`
      SELECT stream_id, events, total FROM ${s}.${sql(`${model.prefix}_counts`)} ORDER BY stream_id`
    return { seen, counts }
  })

/** The committed events of a category, from the start of the log. */
export const logOf = (category: string) =>
  Effect.flatMap(EventStore.EventStore, (store) => Stream.runCollect(store.readAll({ categories: [category] })))

/**
 * The read model against a fold of the log from scratch: every difference, as lists that are empty when each
 * committed event (except `skip`) was handled exactly once.
 */
export const compareWithLog = (model: ReadModel, category: string, skip?: ReadonlySet<string>) =>
  Effect.gen(function* () {
    const log = (yield* logOf(category)).filter((event) => skip === undefined || !skip.has(event.eventId))
    const { seen, counts } = yield* readModelRows(model)
    const expected = new Map<string, { events: number; total: bigint }>()
    for (const event of log) {
      const n = (event.data as { n: number }).n
      const row = expected.get(event.streamId) ?? { events: 0, total: 0n }
      expected.set(event.streamId, { events: row.events + 1, total: row.total + BigInt(n) })
    }
    const logIds = new Set(log.map((event) => event.eventId as string))
    const seenIds = new Set(seen.map((row) => row.event_id))
    const actualCounts = new Map(counts.map((row) => [row.stream_id, { events: row.events, total: BigInt(row.total) }]))
    const streams = new Set([...expected.keys(), ...actualCounts.keys()])
    return {
      logSize: log.length,
      seenSize: seen.length,
      duplicates: seen.filter((row) => row.times !== 1).map((row) => `${row.event_id} x${row.times}`),
      missing: [...logIds].filter((id) => !seenIds.has(id)),
      unexpected: [...seenIds].filter((id) => !logIds.has(id)),
      countMismatches: [...streams]
        .filter((stream) => {
          const a = expected.get(stream)
          const b = actualCounts.get(stream)
          return a?.events !== b?.events || a?.total !== b?.total
        })
        .map((stream) => ({ stream, expected: expected.get(stream), actual: actualCounts.get(stream) }))
    }
  })

/**
 * The read model against the projection's checkpoint, read in one snapshot (REPEATABLE READ): lists that are empty
 * when the read model holds exactly the events of the log up to the checkpoint, each once, and per-stream counts equal
 * to their fold. The checkpoint store must be in `checkpointSchema` (default: the read model's schema); the
 * projection must have one partition. Run while the projection runs, it checks that the read model and the checkpoint
 * commit together; `checkpoint` is undefined before the projection first took its lease.
 */
export const compareAtCheckpoint = (
  model: ReadModel,
  category: string,
  name: string,
  checkpointSchema: string = model.schema
) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const snapshot = yield* sql.withTransaction(
      Effect.gen(function* () {
        yield* sql`SET TRANSACTION ISOLATION LEVEL REPEATABLE READ`
        const rows = yield* sql<{ checkpoint: string }>`SELECT checkpoint FROM ${sql(checkpointSchema)}.checkpoints
          WHERE name = ${name}`
        if (rows.length > 1) return yield* Effect.die(new Error(`${name} has ${rows.length} checkpoints`))
        const checkpoint = rows[0] === undefined ? undefined : Position.parse(rows[0].checkpoint)
        return { checkpoint, ...(yield* readModelRows(model)) }
      })
    )
    const { checkpoint, seen, counts } = snapshot
    // every event at or before the checkpoint committed before the checkpoint did: a later read of the log has them
    const log = (yield* logOf(category)).filter(
      (event) => checkpoint !== undefined && !Position.isBefore(checkpoint, event.position)
    )
    const expected = new Map<string, { events: number; total: bigint }>()
    for (const event of log) {
      const row = expected.get(event.streamId) ?? { events: 0, total: 0n }
      expected.set(event.streamId, {
        events: row.events + 1,
        total: row.total + BigInt((event.data as { n: number }).n)
      })
    }
    const logIds = new Set(log.map((event) => event.eventId as string))
    const seenIds = new Set(seen.map((row) => row.event_id))
    const actual = new Map(counts.map((row) => [row.stream_id, { events: row.events, total: BigInt(row.total) }]))
    return {
      checkpoint,
      logSize: log.length,
      duplicates: seen.filter((row) => row.times !== 1).map((row) => `${row.event_id} x${row.times}`),
      missing: [...logIds].filter((id) => !seenIds.has(id)),
      beyondCheckpoint: [...seenIds].filter((id) => !logIds.has(id)),
      countMismatches: [...new Set([...expected.keys(), ...actual.keys()])]
        .filter((stream) => {
          const a = expected.get(stream)
          const b = actual.get(stream)
          return a?.events !== b?.events || a?.total !== b?.total
        })
        .map((stream) => ({ stream, expected: expected.get(stream), actual: actual.get(stream) }))
    }
  })

/** The positions of `seen` rows that do not come strictly after the previous row's (handling order ≠ log order). */
export const outOfOrder = (seen: ReadonlyArray<SeenRow>): ReadonlyArray<string> => {
  const bad: Array<string> = []
  for (let i = 1; i < seen.length; i++) {
    const before = Position.parse(seen[i - 1]!.position)!
    const after = Position.parse(seen[i]!.position)!
    if (!Position.isBefore(before, after)) bad.push(`${seen[i - 1]!.position} then ${seen[i]!.position}`)
  }
  return bad
}

export const randomInt = (min: number, max: number): number => min + Math.floor(Math.random() * (max - min + 1))

/**
 * Starts appending batches of 1-3 `Counted` events to random streams of the category, in a fiber of the caller.
 * `stop` ends it after the append in hand (an interrupted append could still commit after the interruption, behind
 * the back of a test that then reads the log's head).
 */
export const startWriter = (category: string, options?: { readonly streams?: number; readonly pauseMillis?: number }) =>
  Effect.gen(function* () {
    let stopped = false
    let last = Position.start
    const fiber = yield* Effect.forkChild(
      Effect.gen(function* () {
        while (!stopped) {
          const stream = `${category}-${randomInt(1, options?.streams ?? 5)}`
          const events = Array.from({ length: randomInt(1, 3) }, () => Counted.make({ n: randomInt(1, 1000) }))
          const appended = yield* EventStore.appendEvents(codec, stream, events)
          last = Position.max(last, appended.positions.at(-1) ?? last)
          yield* Effect.sleep(randomInt(0, options?.pauseMillis ?? 10))
        }
      })
    )
    return {
      /** Stops, and gives the last position it was acknowledged: waiting for a projection to pass it is waiting for
       * every event it wrote (the log's head may still hide some behind another file's open transaction). */
      stop: Effect.suspend(() => {
        stopped = true
        // read once the append in hand is done
        return Effect.map(Fiber.join(fiber), () => last)
      })
    }
  })

/** A switch that turns an instance's `release` into a no-op: it then leaves its lease behind like a crashed process. */
export interface CrashSwitch {
  crashed: boolean
}

/**
 * One projection instance's services on a pool of its own (as another process would have): the event store and the
 * checkpoint store of `schema`, already migrated.
 */
export const instanceLayer = (
  url: string,
  schema: string,
  options?: { readonly maxConnections?: number; readonly crash?: CrashSwitch; readonly applicationName?: string }
) => {
  const checkpoints = Layer.effect(
    CheckpointStore.CheckpointStore,
    Effect.map(PgCheckpointStore.make({ schema, migrate: false }), (store) =>
      CheckpointStore.CheckpointStore.of({
        ...store,
        release: (lease, state, error) =>
          options?.crash?.crashed === true ? Effect.void : store.release(lease, state, error)
      })
    )
  )
  return Layer.mergeAll(PgEventStore.layer({ schema, migrate: false }), checkpoints).pipe(
    Layer.provideMerge(
      PgClient.layer({
        url: Redacted.make(url),
        maxConnections: options?.maxConnections ?? 4,
        ...(options?.applicationName === undefined ? {} : { applicationName: options.applicationName })
      })
    )
  )
}

/** The name of a lease holder (`name/<run id>`, see `Projection.RunOptions.owner`). */
export const ownerName = (holder: string) => (holder.includes("/") ? holder.slice(0, holder.lastIndexOf("/")) : holder)

/** The owner (by its configured name) holding the (single) checkpoint of a projection now, if any. */
export const currentOwner = (name: string) =>
  Effect.map(
    CheckpointStore.CheckpointStore.use((store) => store.status(name)),
    (rows) => rows.map((row) => Option.map(row.owner, ownerName))
  )

/** Polls until `check` holds; dies naming `what` after `timeoutMillis`. Returns how long it waited. */
export const eventually = <E, R>(what: string, check: Effect.Effect<boolean, E, R>, timeoutMillis: number) =>
  Effect.gen(function* () {
    const started = Date.now()
    while (!(yield* check)) {
      if (Date.now() - started > timeoutMillis) {
        return yield* Effect.die(new Error(`timed out after ${timeoutMillis} ms waiting for ${what}`))
      }
      yield* Effect.sleep("10 millis")
    }
    return Date.now() - started
  })

/** Whether `owner` holds a (live) lease on the projection now. */
export const holds = (name: string, owner: string) =>
  Effect.map(currentOwner(name), (owners) => owners.some((o) => Option.getOrUndefined(o) === owner))

/** Whether nobody holds a live lease on the projection now. */
export const unheld = (name: string) => Effect.map(currentOwner(name), (owners) => owners.every(Option.isNone))
