import { Cause, Clock, DateTime, Duration, Effect, Exit, Option, Result, Schedule, Stream } from "effect"
import type { Key, Lease } from "../CheckpointStore.ts"
import { CheckpointStore, formatKey, isLeaseLost } from "../CheckpointStore.ts"
import type { EventId, RecordedEvent } from "../Event.ts"
import { EventStore } from "../EventStore.ts"
import type { CorruptedEvent } from "../EventStoreError.ts"
import * as Position from "../Position.ts"
import type { Projection, RunOptions } from "../Projection.ts"
import { ProjectionFailed } from "../ProjectionError.ts"
import * as StorageError from "../StorageError.ts"
import type { StreamId } from "../StreamId.ts"
import * as Subscription from "../Subscription.ts"
import { describe } from "./cause.ts"
import { fnv1a } from "./hash.ts"
import { holderId, holdLease } from "./leaseHolder.ts"

export const partitionOf = (streamId: string, count: number): number => (count <= 1 ? 0 : fnv1a(streamId) % count)

interface Batch {
  readonly events: ReadonlyArray<RecordedEvent>
  readonly checkpoint: Position.Position
  readonly caughtUp: boolean
  /** An unreadable event after `events`, at `checkpoint`. */
  readonly corrupted?: CorruptedEvent | undefined
}

/** Pages as batches: all of them in one, unless a page ends on a corrupted event, which ends its batch. */
const merge = (pages: ReadonlyArray<Subscription.Page>): ReadonlyArray<Batch> => {
  const batches: Array<Batch> = []
  let start = 0
  pages.forEach((page, i) => {
    if (page.corrupted === undefined && i < pages.length - 1) return
    const group = pages.slice(start, i + 1)
    batches.push({
      events: group.flatMap((p) => p.events),
      checkpoint: page.checkpoint,
      caughtUp: page.caughtUp,
      corrupted: page.corrupted
    })
    start = i + 1
  })
  return batches
}

/**
 * Groups pages into batches of at most 8. By default a batch is every page that arrived while the previous one was
 * handled: an idle projection handles a page at once, a busy one commits less often. A window waits for more pages.
 */
const gather =
  (window: Duration.Input | undefined) =>
  <E, R>(pages: Stream.Stream<Subscription.Page, E, R>): Stream.Stream<ReadonlyArray<Subscription.Page>, E, R> =>
    window === undefined ? Stream.chunks(Stream.buffer(pages, { capacity: 8 })) : Stream.groupedWithin(pages, 8, window)

export const keyOf = (projection: { readonly name: string; readonly version: number }, partition: number): Key => ({
  name: projection.name,
  version: projection.version,
  partition
})

/**
 * How long a projection waits before it tries again after a retryable storage failure: from 100 ms, doubling, at
 * most 5 seconds, for as long as the failures last (a lost connection, a stalled or restarting server). `runPartition`
 * backs off the same way between runs.
 */
const storageBackoff: Schedule.Schedule<unknown, unknown> = Schedule.exponential("100 millis").pipe(
  Schedule.modifyDelay(({ duration }) => Effect.succeed(Duration.min(duration, Duration.seconds(5))))
)

/** Retries `effect` for as long as it fails with a retryable storage failure, logging each one. */
const retryStorage = <A, E, R>(effect: Effect.Effect<A, E, R>, annotations: Record<string, unknown>) =>
  effect.pipe(
    Effect.tapError((error) =>
      StorageError.isRetryable(error)
        ? Effect.logWarning("projection storage failed; retrying").pipe(
            Effect.annotateLogs({ ...annotations, error: error.message })
          )
        : Effect.void
    ),
    Effect.retry({ schedule: storageBackoff, while: StorageError.isRetryable })
  )

/**
 * How far a run with `rebuild` got: the reset is done once per run, not again each time the run takes its lease back
 * (after a storage failure or a lost lease), which would wipe the replay so far.
 */
interface Rebuild {
  reset: boolean
  caughtUp: boolean
}

/** Runs one partition while holding its lease; ends when caught up (if asked), fails with LeaseLost when it goes. */
const runLeased = Effect.fnUntraced(function* <E extends { readonly _tag: string }, R>(
  projection: Projection<E, R>,
  lease: Lease,
  partitions: number,
  options: RunOptions,
  rebuild: Rebuild
): Effect.fn.Return<void, unknown, R | EventStore | CheckpointStore> {
  const store = yield* CheckpointStore
  const events = yield* EventStore
  const key = lease.key
  const annotations = { projection: formatKey(key), owner: lease.owner }
  let checkpoint = lease.checkpoint
  if (options.rebuild === true && !rebuild.reset) {
    yield* store.setState(lease, "rebuilding")
    yield* store.commit(lease, checkpoint, Position.start, projection.reset)
    rebuild.reset = true
    checkpoint = Position.start
    yield* Effect.logInfo("projection reset for rebuild").pipe(Effect.annotateLogs(annotations))
  } else {
    yield* store.setState(lease, options.rebuild === true && !rebuild.caughtUp ? "rebuilding" : "running")
  }

  // with categories, the server filters by category alone (an ordered walk of its index, whatever the statistics)
  // and the event types are picked here; without, the server filters by type
  const types = new Set<string>(projection.events.types)
  const mine = (event: RecordedEvent) =>
    partitionOf(event.streamId, partitions) === key.partition && types.has(event.type)
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
  // decoding is synchronous: a loop, not an effect per event; a batch with an undecodable event goes through
  // `decode`, which fails with the typed error naming it
  const decodeAll = (batch: ReadonlyArray<RecordedEvent>) =>
    Effect.suspend(() => {
      const decoded: Array<RecordedEvent<E>> = new Array(batch.length)
      for (let i = 0; i < batch.length; i++) {
        const event = batch[i]!
        const data = projection.events.decodeStored(event.type, event.schemaVersion, event.data)
        if (Result.isFailure(data)) return Effect.forEach(batch, projection.events.decode)
        decoded[i] = { ...event, data: data.success }
      }
      return Effect.succeed(decoded)
    })
  const handle = (batch: ReadonlyArray<RecordedEvent>) => Effect.flatMap(decodeAll(batch), projection.handle)
  // `checkpoint` is read when the commit runs, not when it is built; a started commit (the handler's work and the
  // checkpoint) finishes before an interruption stops the run
  const commit = <A, X, Y>(to: Position.Position, work: Effect.Effect<A, X, Y>) =>
    Effect.uninterruptible(
      Effect.suspend(() =>
        Effect.tap(
          store.commit(lease, checkpoint, to, work),
          Effect.sync(() => {
            checkpoint = to
          })
        )
      )
    )
  /**
   * The handler's failures go through the projection's `retry`; a retryable storage failure (the batch's
   * transaction, its checkpoint write, a connection lost under the handler's SQL) is the infrastructure's: it is
   * retried with backoff for as long as it lasts, never counted against an event, and moves no checkpoint.
   */
  const retried = <A, X, Y>(to: Position.Position, work: Effect.Effect<A, X, Y>) =>
    retryStorage(
      commit(to, work).pipe(
        Effect.retry({
          schedule: projection.retry,
          while: (e) => !isLeaseLost(e) && !StorageError.isRetryable(e)
        })
      ),
      annotations
    )

  /** The batch failed as a whole: find the event at fault by handling one event per transaction. */
  const oneByOne = Effect.fnUntraced(function* (batch: Batch) {
    for (const event of batch.events) {
      const exit = yield* Effect.exit(retried(event.position, handle([event])))
      if (Exit.isSuccess(exit)) continue
      const error = Cause.findErrorOption(exit.cause)
      if (Option.isSome(error) && isLeaseLost(error.value)) return yield* Effect.failCause(exit.cause)
      const reason = Option.isSome(error) ? error.value : Cause.squash(exit.cause)
      if (projection.onFailure === "stop") return yield* failure(event, reason)
      yield* retryStorage(commit(event.position, store.park(key, event, describe(reason))), annotations)
      yield* Effect.logWarning("projection parked an event").pipe(
        Effect.annotateLogs({ ...annotations, eventId: event.eventId, error: describe(reason) })
      )
    }
    if (Position.isBefore(checkpoint, batch.checkpoint)) {
      yield* retryStorage(commit(batch.checkpoint, Effect.void), annotations)
    }
  })

  // the rate of a "catching up" line is measured over handling time only: its first window opens when the first
  // batch reaches the handler (not when the run started, which includes the lease and the reset), so the first line
  // shows a real figure; `behind` and the ETA count positions of the log, read with the head every 2 s at most
  let handled = 0
  let reported: number | undefined
  let reportedAt = checkpoint.sequence
  let caughtUpOnce = false
  const opened = Effect.suspend(() =>
    reported !== undefined
      ? Effect.void
      : Effect.map(Clock.currentTimeMillis, (now) => {
          reported = now
          reportedAt = checkpoint.sequence
        })
  )
  const progress = Effect.fnUntraced(function* (batch: Batch) {
    handled += batch.events.length
    const now = yield* Clock.currentTimeMillis
    const since = reported ?? now
    if (batch.caughtUp && !caughtUpOnce) {
      caughtUpOnce = true
      yield* store.promote(key.name, key.version)
      if (options.rebuild === true && !rebuild.caughtUp) {
        rebuild.caughtUp = true
        yield* store.setState(lease, "running")
      }
      yield* Effect.logInfo("projection caught up").pipe(
        Effect.annotateLogs({ ...annotations, position: Position.format(checkpoint), handled })
      )
    } else if (!batch.caughtUp && now - since >= 2000) {
      const head = yield* events.head
      const seconds = (now - since) / 1000
      const behind = head.sequence > checkpoint.sequence ? head.sequence - checkpoint.sequence : 0n
      const positionsPerSecond = Number(checkpoint.sequence - reportedAt) / seconds
      yield* Effect.logInfo("projection catching up").pipe(
        Effect.annotateLogs({
          ...annotations,
          position: Position.format(checkpoint),
          eventsPerSecond: Math.round(handled / seconds),
          behind: String(behind),
          ...(positionsPerSecond > 0 ? { etaSeconds: Math.ceil(Number(behind) / positionsPerSecond) } : {})
        })
      )
      handled = 0
      reported = now
      reportedAt = checkpoint.sequence
    }
  })

  /** An unreadable event: the handler's failure in all but name, so it stops the run or is parked. */
  const corrupted = Effect.fnUntraced(function* (unreadable: CorruptedEvent, at: Position.Position) {
    if (partitionOf(unreadable.streamId, partitions) !== key.partition) {
      return yield* retryStorage(commit(at, Effect.void), annotations)
    }
    const event: RecordedEvent = {
      eventId: (unreadable.eventId ?? "") as EventId,
      streamId: unreadable.streamId as StreamId,
      version: unreadable.version,
      position: at,
      type: "(unreadable)",
      schemaVersion: 0,
      data: null,
      metadata: {},
      recordedAt: DateTime.makeUnsafe(0)
    }
    if (projection.onFailure === "stop") return yield* failure(event, unreadable)
    yield* retryStorage(commit(at, store.park(key, event, unreadable.message)), annotations)
    yield* Effect.logWarning("projection parked an unreadable event").pipe(
      Effect.annotateLogs({ ...annotations, eventId: event.eventId, error: unreadable.message })
    )
  })

  const process: (batch: Batch) => Effect.Effect<void, unknown, R | EventStore | CheckpointStore> = Effect.fnUntraced(
    function* (batch: Batch) {
      yield* opened
      if (batch.corrupted !== undefined) {
        const last = batch.events.at(-1)
        if (last !== undefined) yield* process({ events: batch.events, checkpoint: last.position, caughtUp: false })
        return yield* corrupted(batch.corrupted, batch.checkpoint)
      }
      const own = batch.events.filter(mine)
      if (!store.transactional && own.length > 0) {
        // a batch that failed halfway could not be undone: one event per commit instead
        yield* oneByOne({ ...batch, events: own })
        return yield* progress(batch)
      }
      const done = yield* Effect.exit(retried(batch.checkpoint, own.length === 0 ? Effect.void : handle(own)))
      if (Exit.isFailure(done)) {
        const error = Cause.findErrorOption(done.cause)
        if (Option.isSome(error) && isLeaseLost(error.value)) return yield* Effect.failCause(done.cause)
        yield* oneByOne({ ...batch, events: own })
      }
      yield* progress(batch)
    },
    (effect, batch) =>
      Effect.withSpan(effect, "Projection.batch", {
        attributes: { projection: formatKey(key), events: batch.events.length }
      })
  )

  // "caught up" for a run that stops there means: past everything committed before it started, even events a
  // transaction still open elsewhere holds back from the log for now
  const target = options.untilCaughtUp === true ? yield* events.lastCommitted : Position.start
  const batches = Subscription.pages({
    after: checkpoint,
    categories: projection.categories,
    types: projection.categories === undefined ? projection.events.types : undefined,
    batchSize: options.batchSize,
    pollInterval: options.pollInterval
  }).pipe(
    gather(options.batchWindow),
    Stream.map(merge),
    Stream.flattenIterable,
    options.untilCaughtUp === true
      ? Stream.takeUntilEffect((batch: Batch) =>
          !batch.caughtUp
            ? Effect.succeed(false)
            : !Position.isBefore(batch.checkpoint, target)
              ? Effect.succeed(true)
              : // the events it waits for may have been deleted meanwhile
                Effect.map(events.lastCommitted, (now) => !Position.isBefore(batch.checkpoint, now))
        )
      : (s) => s
  )
  return yield* Stream.runForEach(batches, process)
})

export const runPartition = Effect.fnUntraced(function* <E extends { readonly _tag: string }, R>(
  projection: Projection<E, R>,
  partition: number,
  options: RunOptions
): Effect.fn.Return<void, ProjectionFailed | StorageError.StorageError, R | EventStore | CheckpointStore> {
  const owner = yield* holderId(options.owner ?? "projection")
  const key = keyOf(projection, partition)
  const rebuild: Rebuild = { reset: false, caughtUp: false }
  return yield* holdLease({
    kind: "projection",
    key,
    owner,
    ttl: options.leaseTtl ?? "10 seconds",
    annotations: { projection: formatKey(key), owner },
    work: (lease) => runLeased(projection, lease, options.partitions ?? 1, options, rebuild)
  }) as Effect.Effect<void, ProjectionFailed | StorageError.StorageError, R | EventStore | CheckpointStore>
})
