/**
 * Projections: the global log folded into read models, as values that {@link run} drives.
 *
 * A projection names the events it handles through an {@link EventCodec.EventCodec} (so its handler sees typed,
 * upcast events), and handles them one at a time or a batch at a time. {@link run} reads the log through a
 * `Subscription`, batches what arrives (`groupedWithin`), and commits each batch with its checkpoint through
 * the {@link CheckpointStore.CheckpointStore}: in one transaction on PostgreSQL, so that an SQL read model sees every
 * event exactly once. Only the holder of a lease writes; a standby process takes over when the holder's lease
 * expires. Interrupting a run finishes the batch in hand, saves its checkpoint and stops. On a store that cannot
 * commit work and checkpoint together (memory), events are committed one at a time, so that a failing handler never
 * makes an earlier event count twice; a crash between the two can still repeat one event (at least once).
 *
 * @since 0.1.0
 */
import type { Duration } from "effect"
import { Cause, Clock, Effect, Exit, Option, Schedule, Stream } from "effect"
import type { State, Status } from "./CheckpointStore.ts"
import { CheckpointStore, isLeaseLost, type LeaseLost } from "./CheckpointStore.ts"
import type { RecordedEvent } from "./Event.ts"
import type { EventCodec } from "./EventCodec.ts"
import { EventStore } from "./EventStore.ts"
import { describe } from "./internal/cause.ts"
import * as Runner from "./internal/projectionRunner.ts"
import * as Uuid from "./internal/uuid.ts"
import * as Position from "./Position.ts"
import type { ProjectionFailed } from "./ProjectionError.ts"
import { ProjectionLagging } from "./ProjectionError.ts"
import * as StorageError from "./StorageError.ts"

/**
 * A projection: a named, versioned handler of the events an {@link EventCodec.EventCodec} decodes. `R` is what its
 * handler requires, `Err` how it fails (`unknown` when not named); {@link make} infers both from the handler.
 *
 * @see {@link make}
 * @see {@link run}
 * @category models
 * @since 0.1.0
 */
export interface Projection<E extends { readonly _tag: string }, R = never, Err = unknown> {
  readonly name: string
  /** The version of the read model; a new version builds beside the old one and takes over once caught up. */
  readonly version: number
  readonly events: EventCodec<E>
  /** Only events of these categories, when set. */
  readonly categories: ReadonlyArray<string> | undefined
  readonly handle: (events: ReadonlyArray<RecordedEvent<E>>) => Effect.Effect<void, Err, R>
  /** Clears the read model before a rebuild. */
  readonly reset: Effect.Effect<void, unknown, R>
  /** What to do with an event the handler still fails on after `retry`: stop, or park it and go on. */
  readonly onFailure: "stop" | "park"
  readonly retry: Schedule.Schedule<unknown, unknown>
}

/**
 * What {@link make} takes: `handle` for one event at a time, or `handleBatch` for a batch at a time.
 *
 * @category models
 * @since 0.1.0
 */
export type MakeOptions<E extends { readonly _tag: string }, R, Err = unknown> = {
  readonly name: string
  readonly version?: number | undefined
  readonly events: EventCodec<E>
  readonly categories?: ReadonlyArray<string> | undefined
  readonly reset?: Effect.Effect<void, unknown, R> | undefined
  readonly onFailure?: "stop" | "park" | undefined
  readonly retry?: Schedule.Schedule<unknown, unknown> | undefined
} & (
  | { readonly handle: (event: RecordedEvent<E>) => Effect.Effect<void, Err, R>; readonly handleBatch?: never }
  | {
      readonly handleBatch: (events: ReadonlyArray<RecordedEvent<E>>) => Effect.Effect<void, Err, R>
      readonly handle?: never
    }
)

/**
 * The retry schedule of a handler when none is given: three more tries, 100 ms apart and doubling.
 *
 * @example
 * ```ts
 * import { Effect, Schedule, Schema } from "effect"
 * import { EventCodec, Projection } from "@facta/core"
 *
 * const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Int })
 * const Patient = Projection.make({
 *   name: "patient",
 *   events: EventCodec.make(Deposited),
 *   handle: () => Effect.void,
 *   // more tries than Projection.defaultRetry, then park the event instead of stopping
 *   retry: Schedule.exponential("100 millis").pipe(Schedule.upTo({ times: 8 })),
 *   onFailure: "park"
 * })
 * ```
 *
 * @category constants
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
 * @category constructors
 * @since 0.1.0
 */
export const make = <E extends { readonly _tag: string }, R = never, Err = never>(
  options: MakeOptions<E, R, Err>
): Projection<E, R, Err> => {
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
 * @category utils
 * @since 0.1.0
 */
export const partitionOf: (streamId: string, count: number) => number = Runner.partitionOf

/**
 * How to run a projection.
 *
 * @category models
 * @since 0.1.0
 */
export interface RunOptions {
  /**
   * The name this process runs under (default `projection`). Leases and status show it followed by an id of this
   * run's own (`name/<uuid>`), so two processes configured with the same name run as holder and standby, never both.
   */
  readonly owner?: string | undefined
  /** Split the work into this many partitions, each with its own checkpoint and lease (default 1). */
  readonly partitions?: number | undefined
  /** How long a lease lasts without a heartbeat (default 10 seconds); a standby takes over after it. */
  readonly leaseTtl?: Duration.Input | undefined
  /** Events read per page (default 500). */
  readonly batchSize?: number | undefined
  /**
   * How long to wait for more live pages before handling a batch (default none: a batch is the pages that arrived
   * while the previous one was handled, so an idle projection handles an event at once and a busy one commits less
   * often).
   */
  readonly batchWindow?: Duration.Input | undefined
  readonly pollInterval?: Duration.Input | undefined
  /** Reset the read model and the checkpoint first (default false). */
  readonly rebuild?: boolean | undefined
  /** Stop once caught up with the log instead of tailing it (default false). */
  readonly untilCaughtUp?: boolean | undefined
}

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
 * @category running
 * @since 0.1.0
 */
export const run = <E extends { readonly _tag: string }, R, Err>(
  projection: Projection<E, R, Err>,
  options?: RunOptions
): Effect.Effect<void, ProjectionFailed | StorageError.StorageError, R | EventStore | CheckpointStore> => {
  const resolved = options ?? {}
  const count = Math.max(1, Math.floor(resolved.partitions ?? 1))
  return Effect.forEach(
    Array.from({ length: count }, (_, partition) => partition),
    (partition) => Runner.runPartition(projection, partition, { ...resolved, partitions: count }),
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
 * @category running
 * @since 0.1.0
 */
export const rebuild = <E extends { readonly _tag: string }, R, Err>(
  projection: Projection<E, R, Err>,
  options?: Omit<RunOptions, "rebuild" | "untilCaughtUp">
): Effect.Effect<void, ProjectionFailed | StorageError.StorageError, R | EventStore | CheckpointStore> =>
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
 * @category running
 * @since 0.1.0
 */
export const waitFor = (
  projection: { readonly name: string; readonly version: number },
  position: Position.Position,
  options?: { readonly timeout?: Duration.Input | undefined; readonly partitions?: number | undefined }
): Effect.Effect<void, ProjectionLagging | StorageError.StorageError, CheckpointStore> =>
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
 * Runs an effect of a projection (an e-mail, a call to another service) at most once per `key` across deliveries,
 * replays and rebuilds: the key is claimed first (`Some` of the effect's result), and a claimed key skips the effect
 * (`None`). If the effect fails the claim is dropped, so a retry runs it again. Inside a handler on PostgreSQL the
 * claim commits with the checkpoint; a crash between the effect and that commit runs the effect again on redelivery
 * (at least once), so the effect should also carry the key to its receiver as an idempotency key.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Projection } from "@facta/core"
 *
 * declare const sendReceipt: (to: string, idempotencyKey: string) => Effect.Effect<void>
 * const handle = (event: { readonly eventId: string; readonly data: { readonly email: string } }) =>
 *   Projection.once("receipts", `${event.eventId}:receipt`, sendReceipt(event.data.email, event.eventId))
 * ```
 *
 * @category running
 * @since 0.1.0
 */
export const once = <A, E, R>(
  name: string,
  key: string,
  effect: Effect.Effect<A, E, R>
): Effect.Effect<Option.Option<A>, E | StorageError.StorageError, R | CheckpointStore> =>
  CheckpointStore.use((store) =>
    Effect.flatMap(store.claim(name, key), (claimed) =>
      claimed
        ? effect.pipe(
            Effect.map(Option.some),
            Effect.onError(() => Effect.ignore(store.unclaim(name, key)))
          )
        : Effect.succeed(Option.none<A>())
    )
  )

/**
 * What {@link replayParked} did: the events it handled and unparked, and those that still fail (left parked, with the
 * new error).
 *
 * @category models
 * @since 0.1.0
 */
export interface ReplayResult {
  readonly replayed: ReadonlyArray<string>
  readonly stillFailing: ReadonlyArray<string>
}

/**
 * Hands the projection's parked events (of its version) to its handler again, after a fix, each in its own commit
 * with its unparking; on PostgreSQL the read model's writes and the unparking commit together. Takes each partition's
 * lease for the duration (stop the running instances first, or it waits for them), and fails with `LeaseLost` if
 * it loses one.
 *
 * @example
 * ```ts
 * import { Projection } from "@facta/core"
 *
 * declare const Balances: Projection.Projection<{ readonly _tag: "Deposited" }>
 * const replay = Projection.replayParked(Balances, { owner: "admin" })
 * ```
 *
 * @category running
 * @since 0.1.0
 */
export const replayParked = Effect.fnUntraced(function* <E extends { readonly _tag: string }, R, Err>(
  projection: Projection<E, R, Err>,
  options?: { readonly owner?: string | undefined; readonly leaseTtl?: Duration.Input | undefined }
): Effect.fn.Return<ReplayResult, StorageError.StorageError | LeaseLost, R | CheckpointStore> {
  const store = yield* CheckpointStore
  const owner = `${options?.owner ?? "replay"}/${Uuid.v7(yield* Clock.currentTimeMillis)}`
  const ttl = options?.leaseTtl ?? "30 seconds"
  const parked = (yield* store.parked(projection.name)).filter((p) => p.key.version === projection.version)
  const replayed: Array<string> = []
  const stillFailing: Array<string> = []
  for (const partition of new Set(parked.map((p) => p.key.partition))) {
    const key = Runner.keyOf(projection, partition)
    let lease = yield* store.acquire(key, owner, ttl)
    while (Option.isNone(lease)) {
      yield* Effect.sleep("200 millis")
      lease = yield* store.acquire(key, owner, ttl)
    }
    const held = lease.value
    for (const { event } of parked.filter((p) => p.key.partition === partition)) {
      const handled = Effect.flatMap(projection.events.decode(event), (decoded) => projection.handle([decoded]))
      const exit = yield* Effect.exit(
        store.commit(held, held.checkpoint, held.checkpoint, Effect.andThen(handled, store.unpark(key, event.eventId)))
      )
      if (Exit.isSuccess(exit)) {
        replayed.push(event.eventId)
        continue
      }
      const error = Cause.findErrorOption(exit.cause)
      // the lease or the storage failed, not the handler: the event stays parked as it was
      if (Option.isSome(error) && (isLeaseLost(error.value) || StorageError.isRetryable(error.value))) {
        return yield* Effect.failCause(exit.cause as Cause.Cause<LeaseLost | StorageError.StorageError>)
      }
      stillFailing.push(event.eventId)
      yield* store.park(key, event, describe(Option.isSome(error) ? error.value : Cause.squash(exit.cause)))
    }
    yield* store.release(held, "stopped")
  }
  return { replayed, stillFailing }
})

/**
 * Where a projection stands: each checkpoint's status, how many events it is behind the log's head (an upper bound
 * when the database skipped positions), and how old the oldest event it has not handled yet is.
 *
 * @category models
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
 * @category status
 * @since 0.1.0
 */
export const status = Effect.fn("Projection.status")(function* <E extends { readonly _tag: string }, R, Err>(
  projection: Projection<E, R, Err>
): Effect.fn.Return<ReadonlyArray<ProjectionStatus>, StorageError.StorageError, EventStore | CheckpointStore> {
  const store = yield* EventStore
  const rows = yield* CheckpointStore.use((checkpoints) => checkpoints.status(projection.name))
  const head = yield* store.head
  const now = yield* Clock.currentTimeMillis
  return yield* Effect.forEach(rows, (row) =>
    Effect.map(
      Stream.runHead(
        store.readAll({
          after: row.checkpoint,
          categories: projection.categories,
          types: projection.events.types,
          batchSize: 1
        })
      ).pipe(
        // the next event is unreadable: how long it waited is unknown, and the run says what it did with it
        Effect.catchTag("CorruptedEvent", () => Effect.succeedNone)
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
 * @example
 * ```ts
 * import { Projection } from "@facta/core"
 *
 * Projection.isActive("rebuilding") // true
 * Projection.isActive("stopped") // false
 * ```
 *
 * @category predicates
 * @since 0.1.0
 */
export const isActive = (state: State): boolean => state === "running" || state === "rebuilding"
