/**
 * Projections: the global log folded into read models, as values that {@link run} drives.
 *
 * A projection names the events it handles through an {@link EventCodec.EventCodec} (so its handler sees typed,
 * upcast events), and handles them one at a time or a batch at a time. {@link run} reads the log through a
 * {@link Subscription}, batches what arrives (`groupedWithin`), and commits each batch with its checkpoint through
 * the {@link CheckpointStore.CheckpointStore}: in one transaction on PostgreSQL, so that an SQL read model sees every
 * event exactly once. Only the holder of a lease writes; a standby process takes over when the holder's lease
 * expires. Interrupting a run finishes the batch in hand, saves its checkpoint and stops.
 *
 * @since 0.1.0
 */
import { Cause, Duration, Effect, Exit, Option, Schedule, Schema, Stream } from "effect"
import type { Key, Lease, State, Status } from "./CheckpointStore.ts"
import { CheckpointStore, formatKey } from "./CheckpointStore.ts"
import type { RecordedEvent } from "./Event.ts"
import type { EventCodec } from "./EventCodec.ts"
import { EventStore } from "./EventStore.ts"
import type { StorageError } from "./EventStoreError.ts"
import { fnv1a } from "./internal/hash.ts"
import * as Uuid from "./internal/uuid.ts"
import * as Position from "./Position.ts"
import * as Subscription from "./Subscription.ts"

/**
 * A projection.
 *
 * @since 0.1.0
 */
export interface Projection<E extends { readonly _tag: string }, R = never> {
  readonly name: string
  /** The version of the read model; a new version builds beside the old one and takes over once caught up. */
  readonly version: number
  readonly events: EventCodec<E>
  /** Only events of these categories, when set. */
  readonly categories: ReadonlyArray<string> | undefined
  readonly handle: (events: ReadonlyArray<RecordedEvent<E>>) => Effect.Effect<void, unknown, R>
  /** Clears the read model before a rebuild. */
  readonly reset: Effect.Effect<void, unknown, R>
  /** What to do with an event the handler still fails on after `retry`: stop, or park it and go on. */
  readonly onFailure: "stop" | "park"
  readonly retry: Schedule.Schedule<unknown, unknown>
}

/**
 * What {@link make} takes: `handle` for one event at a time, or `handleBatch` for a batch at a time.
 *
 * @since 0.1.0
 */
export type MakeOptions<E extends { readonly _tag: string }, R> = {
  readonly name: string
  readonly version?: number | undefined
  readonly events: EventCodec<E>
  readonly categories?: ReadonlyArray<string> | undefined
  readonly reset?: Effect.Effect<void, unknown, R> | undefined
  readonly onFailure?: "stop" | "park" | undefined
  readonly retry?: Schedule.Schedule<unknown, unknown> | undefined
} & (
  | { readonly handle: (event: RecordedEvent<E>) => Effect.Effect<void, unknown, R>; readonly handleBatch?: never }
  | {
      readonly handleBatch: (events: ReadonlyArray<RecordedEvent<E>>) => Effect.Effect<void, unknown, R>
      readonly handle?: never
    }
)

/**
 * The retry schedule of a handler when none is given: three more tries, 100 ms apart and doubling.
 *
 * @since 0.1.0
 */
export const defaultRetry: Schedule.Schedule<unknown, unknown> = Schedule.exponential("100 millis").pipe(
  Schedule.upTo({ times: 3 })
)

/**
 * Makes a projection.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { EventCodec, Projection } from "@facta/core"
 *
 * const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Int })
 * const totals = new Map<string, number>()
 * const Totals = Projection.make({
 *   name: "totals",
 *   events: EventCodec.make(Deposited),
 *   handle: (event) => Effect.sync(() => totals.set(event.streamId, (totals.get(event.streamId) ?? 0) + event.data.amount)),
 *   reset: Effect.sync(() => totals.clear())
 * })
 * ```
 *
 * @since 0.1.0
 */
export const make = <E extends { readonly _tag: string }, R = never>(options: MakeOptions<E, R>): Projection<E, R> => {
  const one = options.handle
  return {
    name: options.name,
    version: options.version ?? 1,
    events: options.events,
    categories: options.categories,
    handle: one === undefined ? options.handleBatch! : (events) => Effect.forEach(events, one, { discard: true }),
    reset: options.reset ?? Effect.void,
    onFailure: options.onFailure ?? "stop",
    retry: options.retry ?? defaultRetry
  }
}

/**
 * A projection stopped on an event its handler kept failing on (or could not decode). Nothing after the event was
 * handled; the checkpoint stands just before it.
 *
 * @since 0.1.0
 */
export class ProjectionFailed extends Schema.TaggedError<ProjectionFailed>("@facta/core/ProjectionFailed")(
  "ProjectionFailed",
  {
    name: Schema.String,
    version: Schema.Int,
    partition: Schema.Int,
    eventId: Schema.String,
    streamId: Schema.String,
    streamVersion: Schema.Int,
    position: Schema.String,
    cause: Schema.Defect()
  }
) {
  override get message() {
    return `Projection ${this.name} v${this.version} failed on event ${this.eventId} (${this.streamId} version ${this.streamVersion}, position ${this.position}): ${describe(this.cause)}`
  }
}

/**
 * `waitFor` gave up: the projection had not reached the position in time.
 *
 * @since 0.1.0
 */
export class ProjectionLagging extends Schema.TaggedError<ProjectionLagging>("@facta/core/ProjectionLagging")(
  "ProjectionLagging",
  { name: Schema.String, version: Schema.Int, position: Schema.String }
) {
  override get message() {
    return `Projection ${this.name} v${this.version} has not reached ${this.position} yet`
  }
}

const describe = (cause: unknown): string =>
  Cause.isCause(cause) ? Cause.pretty(cause) : cause instanceof Error ? cause.message : String(cause)

/**
 * The partition of a stream among `count` partitions: `fnv1a(streamId) % count`. Every event of a stream goes to the
 * same partition, so per-stream order holds within it.
 *
 * @example
 * ```ts
 * import { Projection } from "@facta/core"
 *
 * Projection.partitionOf("Account-1", 4) // a number from 0 to 3, the same in every process
 * ```
 *
 * @since 0.1.0
 */
export const partitionOf = (streamId: string, count: number): number => (count <= 1 ? 0 : fnv1a(streamId) % count)

/**
 * How to run a projection.
 *
 * @since 0.1.0
 */
export interface RunOptions {
  /** Who this process is, in leases and status (default a fresh id). */
  readonly owner?: string | undefined
  /** Split the work into this many partitions, each with its own checkpoint and lease (default 1). */
  readonly partitions?: number | undefined
  /** How long a lease lasts without a heartbeat (default 10 seconds); a standby takes over after it. */
  readonly leaseTtl?: Duration.Input | undefined
  /** Events read per page (default 500). */
  readonly batchSize?: number | undefined
  /** How long to gather small live pages into one batch (default 50 ms). */
  readonly batchWindow?: Duration.Input | undefined
  readonly pollInterval?: Duration.Input | undefined
  /** Reset the read model and the checkpoint first (default false). */
  readonly rebuild?: boolean | undefined
  /** Stop once caught up with the log instead of tailing it (default false). */
  readonly untilCaughtUp?: boolean | undefined
}

interface Batch {
  readonly events: ReadonlyArray<RecordedEvent>
  readonly checkpoint: Position.Position
  readonly caughtUp: boolean
}

const merge = (pages: ReadonlyArray<Subscription.Page>): Batch => ({
  events: pages.flatMap((page) => page.events),
  checkpoint: pages[pages.length - 1]!.checkpoint,
  caughtUp: pages[pages.length - 1]!.caughtUp
})

const keyOf = (projection: { readonly name: string; readonly version: number }, partition: number): Key => ({
  name: projection.name,
  version: projection.version,
  partition
})

/** Runs one partition while holding its lease; ends when caught up (if asked), fails with LeaseLost when it goes. */
const runLeased = <E extends { readonly _tag: string }, R>(
  projection: Projection<E, R>,
  lease: Lease,
  partitions: number,
  options: RunOptions
) =>
  Effect.gen(function* () {
    const store = yield* CheckpointStore
    const events = yield* EventStore
    const key = lease.key
    const annotations = { projection: formatKey(key), owner: lease.owner }
    let checkpoint = lease.checkpoint
    if (options.rebuild === true) {
      yield* store.setState(lease, "rebuilding")
      yield* store.commit(lease, checkpoint, Position.start, projection.reset)
      checkpoint = Position.start
      yield* Effect.logInfo("projection reset for rebuild").pipe(Effect.annotateLogs(annotations))
    } else {
      yield* store.setState(lease, "running")
    }

    const mine = (event: RecordedEvent) => partitionOf(event.streamId, partitions) === key.partition
    const failure = (event: RecordedEvent, cause: unknown) =>
      new ProjectionFailed({
        name: key.name,
        version: key.version,
        partition: key.partition,
        eventId: event.eventId,
        streamId: event.streamId,
        streamVersion: event.version,
        position: Position.format(event.position),
        cause
      })
    const handle = (batch: ReadonlyArray<RecordedEvent>) =>
      Effect.flatMap(Effect.forEach(batch, projection.events.decode), projection.handle)
    // `checkpoint` is read when the commit runs, not when it is built
    const commit = <A, X, Y>(to: Position.Position, work: Effect.Effect<A, X, Y>) =>
      Effect.suspend(() =>
        Effect.tap(
          store.commit(lease, checkpoint, to, work),
          Effect.sync(() => {
            checkpoint = to
          })
        )
      )
    const retried = <A, X, Y>(to: Position.Position, work: Effect.Effect<A, X, Y>) =>
      commit(to, work).pipe(Effect.retry({ schedule: projection.retry, while: (e) => !isLeaseLost(e) }))

    /** The batch failed as a whole: find the event at fault by handling one event per transaction. */
    const oneByOne = Effect.fnUntraced(function* (batch: Batch) {
      for (const event of batch.events) {
        const exit = yield* Effect.exit(retried(event.position, handle([event])))
        if (Exit.isSuccess(exit)) continue
        const error = Cause.findErrorOption(exit.cause)
        if (Option.isSome(error) && isLeaseLost(error.value)) return yield* Effect.failCause(exit.cause)
        const reason = Option.isSome(error) ? error.value : Cause.squash(exit.cause)
        if (projection.onFailure === "stop") return yield* failure(event, reason)
        yield* commit(event.position, store.park(key, event, describe(reason)))
        yield* Effect.logWarning("projection parked an event").pipe(
          Effect.annotateLogs({ ...annotations, eventId: event.eventId, error: describe(reason) })
        )
      }
      if (Position.isBefore(checkpoint, batch.checkpoint)) yield* commit(batch.checkpoint, Effect.void)
    })

    let handled = 0
    let reported = Date.now()
    let caughtUpOnce = false
    const progress = Effect.fnUntraced(function* (batch: Batch) {
      handled += batch.events.length
      const now = Date.now()
      if (batch.caughtUp && !caughtUpOnce) {
        caughtUpOnce = true
        yield* store.promote(key.name, key.version)
        if (options.rebuild === true) yield* store.setState(lease, "running")
        yield* Effect.logInfo("projection caught up").pipe(
          Effect.annotateLogs({ ...annotations, position: Position.format(checkpoint), handled })
        )
      } else if (!batch.caughtUp && now - reported >= 2000) {
        const head = yield* events.head
        yield* Effect.logInfo("projection catching up").pipe(
          Effect.annotateLogs({
            ...annotations,
            position: Position.format(checkpoint),
            eventsPerSecond: Math.round((handled * 1000) / (now - reported)),
            behind: String(head.sequence - checkpoint.sequence)
          })
        )
        handled = 0
        reported = now
      }
    })

    const process = (batch: Batch) =>
      Effect.gen(function* () {
        const own = batch.events.filter(mine)
        const done = yield* Effect.exit(retried(batch.checkpoint, own.length === 0 ? Effect.void : handle(own)))
        if (Exit.isFailure(done)) {
          const error = Cause.findErrorOption(done.cause)
          if (Option.isSome(error) && isLeaseLost(error.value)) return yield* Effect.failCause(done.cause)
          yield* oneByOne({ ...batch, events: own })
        }
        yield* progress(batch)
      }).pipe(
        Effect.withSpan("Projection.batch", {
          attributes: { projection: formatKey(key), events: batch.events.length }
        }),
        // a started batch finishes (handler and checkpoint) before an interruption stops the run
        Effect.uninterruptible
      )

    const batches = Subscription.pages({
      after: checkpoint,
      categories: projection.categories,
      types: projection.events.types,
      batchSize: options.batchSize,
      pollInterval: options.pollInterval
    }).pipe(
      Stream.groupedWithin(8, options.batchWindow ?? "50 millis"),
      Stream.map(merge),
      options.untilCaughtUp === true ? Stream.takeUntil((batch: Batch) => batch.caughtUp) : (s) => s
    )
    return yield* Stream.runForEach(batches, process)
  })

const isLeaseLost = (u: unknown): boolean =>
  typeof u === "object" && u !== null && "_tag" in u && (u as { _tag: unknown })._tag === "LeaseLost"

/** Renews the lease every third of its life; fails with LeaseLost when it is gone. */
const heartbeat = (lease: Lease, ttl: Duration.Input, interval: number) =>
  CheckpointStore.use((store) =>
    Effect.forever(Effect.andThen(Effect.sleep(interval), store.renew(lease, ttl)), { disableYield: true })
  )

const runPartition = <E extends { readonly _tag: string }, R>(
  projection: Projection<E, R>,
  partition: number,
  options: RunOptions
) =>
  Effect.gen(function* () {
    const store = yield* CheckpointStore
    const owner = options.owner ?? Uuid.v7(Date.now())
    const ttl = options.leaseTtl ?? "10 seconds"
    const interval = Math.max(10, Math.floor(Duration.toMillis(ttl) / 3))
    const key = keyOf(projection, partition)
    while (true) {
      const acquired = yield* store.acquire(key, owner, ttl)
      if (Option.isNone(acquired)) {
        yield* Effect.sleep(interval)
        continue
      }
      const lease = acquired.value
      yield* Effect.logInfo("projection lease taken").pipe(
        Effect.annotateLogs({ projection: formatKey(key), owner, fence: lease.fence })
      )
      const exit = yield* Effect.exit(
        Effect.raceFirst(
          runLeased(projection, lease, options.partitions ?? 1, options),
          heartbeat(lease, ttl, interval)
        )
      ).pipe(Effect.onInterrupt(() => Effect.ignore(store.release(lease, "stopped"))))
      if (Exit.isSuccess(exit)) {
        yield* Effect.ignore(store.release(lease, "stopped"))
        return
      }
      const error = Cause.findErrorOption(exit.cause)
      if (Option.isSome(error) && isLeaseLost(error.value)) {
        yield* Effect.logWarning("projection lease lost; standing by").pipe(
          Effect.annotateLogs({ projection: formatKey(key), owner })
        )
        continue
      }
      yield* Effect.ignore(store.release(lease, "failed", Cause.pretty(exit.cause)))
      return yield* Effect.failCause(exit.cause as Cause.Cause<ProjectionFailed | StorageError>)
    }
  })

/**
 * Runs a projection until interrupted (or, with `untilCaughtUp`, until it has read the whole log): every partition
 * takes its lease (or stands by until it can), reads after its checkpoint, and commits batch after batch. Fails with
 * `ProjectionFailed` naming the event when the handler keeps failing and the projection stops on failures.
 *
 * @example
 * ```ts
 * import { Effect, Layer, Schema } from "effect"
 * import { CheckpointStore, EventCodec, EventStore, Projection } from "@facta/core"
 *
 * const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Int })
 * const Logger = Projection.make({
 *   name: "logger",
 *   events: EventCodec.make(Deposited),
 *   handle: (event) => Effect.log(event.data.amount)
 * })
 * const program = Projection.run(Logger, { untilCaughtUp: true }).pipe(
 *   Effect.provide(Layer.mergeAll(EventStore.layerMemory, CheckpointStore.layerMemory))
 * )
 * ```
 *
 * @since 0.1.0
 */
export const run = <E extends { readonly _tag: string }, R>(
  projection: Projection<E, R>,
  options?: RunOptions
): Effect.Effect<void, ProjectionFailed | StorageError, R | EventStore | CheckpointStore> => {
  const resolved = options ?? {}
  const count = Math.max(1, Math.floor(resolved.partitions ?? 1))
  return Effect.forEach(
    Array.from({ length: count }, (_, partition) => partition),
    (partition) => runPartition(projection, partition, { ...resolved, partitions: count }),
    { concurrency: "unbounded", discard: true }
  ).pipe(Effect.withSpan("Projection.run", { attributes: { projection: projection.name } }))
}

/**
 * Rebuilds a projection: takes its lease(s), clears the read model with its `reset`, replays the whole log with
 * progress in the logs, and returns once caught up. Stop the running instances first, or they stand by until the
 * rebuild is done.
 *
 * @example
 * ```ts
 * import { Projection } from "@facta/core"
 *
 * declare const Balances: Projection.Projection<{ readonly _tag: "Deposited" }>
 * const rebuild = Projection.rebuild(Balances)
 * ```
 *
 * @since 0.1.0
 */
export const rebuild = <E extends { readonly _tag: string }, R>(
  projection: Projection<E, R>,
  options?: Omit<RunOptions, "rebuild" | "untilCaughtUp">
): Effect.Effect<void, ProjectionFailed | StorageError, R | EventStore | CheckpointStore> =>
  run(projection, { ...options, rebuild: true, untilCaughtUp: true })

/**
 * Waits until a projection (every partition of it) has processed the log up to `position`, typically an append's
 * last position, so that a command can answer with fresh read models. Fails with `ProjectionLagging` after
 * `timeout` (default 5 seconds).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { EventStore, Projection } from "@facta/core"
 *
 * declare const Balances: Projection.Projection<{ readonly _tag: "Deposited" }>
 * declare const appended: EventStore.AppendResult
 * const fresh = Projection.waitFor(Balances, appended.positions.at(-1)!, { timeout: "2 seconds" })
 * ```
 *
 * @since 0.1.0
 */
export const waitFor = (
  projection: { readonly name: string; readonly version: number },
  position: Position.Position,
  options?: { readonly timeout?: Duration.Input | undefined; readonly partitions?: number | undefined }
): Effect.Effect<void, ProjectionLagging | StorageError, CheckpointStore> =>
  CheckpointStore.use((store) => {
    const partitions = Math.max(1, options?.partitions ?? 1)
    const reached = Effect.map(store.status(projection.name), (rows) => {
      const mine = rows.filter((row) => row.key.version === projection.version && row.key.partition < partitions)
      return mine.length === partitions && mine.every((row) => !Position.isBefore(row.checkpoint, position))
    })
    return reached.pipe(
      Effect.repeat({ schedule: Schedule.spaced("10 millis"), until: (done) => done }),
      Effect.timeoutOrElse({
        duration: options?.timeout ?? "5 seconds",
        orElse: () =>
          Effect.fail(
            new ProjectionLagging({
              name: projection.name,
              version: projection.version,
              position: Position.format(position)
            })
          )
      }),
      Effect.asVoid
    )
  })

/**
 * Where a projection stands: each checkpoint's status, how many events it is behind the log's head (an upper bound
 * when the database skipped positions), and how old the oldest event it has not handled yet is.
 *
 * @since 0.1.0
 */
export interface ProjectionStatus extends Status {
  readonly eventsBehind: number
  readonly secondsBehind: number
}

/**
 * The status of every checkpoint (versions and partitions) of a projection.
 *
 * @example
 * ```ts
 * import { Projection } from "@facta/core"
 *
 * declare const Balances: Projection.Projection<{ readonly _tag: "Deposited" }>
 * const status = Projection.status(Balances)
 * ```
 *
 * @since 0.1.0
 */
export const status = <E extends { readonly _tag: string }, R>(
  projection: Projection<E, R>
): Effect.Effect<ReadonlyArray<ProjectionStatus>, StorageError, EventStore | CheckpointStore> =>
  Effect.gen(function* () {
    const store = yield* EventStore
    const rows = yield* CheckpointStore.use((checkpoints) => checkpoints.status(projection.name))
    const head = yield* store.head
    const now = Date.now()
    return yield* Effect.forEach(rows, (row) =>
      Effect.map(
        Stream.runHead(
          store.readAll({
            after: row.checkpoint,
            categories: projection.categories,
            types: projection.events.types,
            batchSize: 1
          })
        ),
        (next): ProjectionStatus => ({
          ...row,
          eventsBehind: Number(head.sequence > row.checkpoint.sequence ? head.sequence - row.checkpoint.sequence : 0n),
          secondsBehind: Option.match(next, {
            onNone: () => 0,
            onSome: (event) => Math.max(0, (now - event.recordedAt.epochMilliseconds) / 1000)
          })
        })
      )
    )
  })

/**
 * Whether a state means the projection is doing work.
 *
 * @since 0.1.0
 */
export const isActive = (state: State): boolean => state === "running" || state === "rebuilding"
