import { Clock, DateTime, Effect, Option, PubSub, Result, Stream } from "effect"
import type { EventId, RecordedEvent } from "../Event.ts"
import type {
  AppendRequest,
  AppendResult,
  EventStore,
  FoldEvent,
  FoldOptions,
  LifecycleOptions,
  ReadAllOptions,
  ReadOptions,
  StreamInfo
} from "../EventStore.ts"
import type { IdempotencyConflict, InvalidExpectedVersion, ReadError } from "../EventStoreError.ts"
import { StreamArchived, StreamDeleted, StreamNotFound, WrongExpectedVersion } from "../EventStoreError.ts"
import * as ExpectedVersion from "../ExpectedVersion.ts"
import * as Position from "../Position.ts"
import * as StoreKit from "../StoreKit.ts"
import * as StreamId from "../StreamId.ts"

/** The memory store's epoch; a real store bumps its epoch on restore, this one is never restored. */
const epoch = 1

interface Stored {
  readonly eventId: EventId
  readonly streamId: StreamId.StreamId
  readonly category: string
  readonly version: number
  readonly position: Position.Position
  readonly type: string
  readonly schemaVersion: number
  // kept serialised, as a database would, so no reader can alias or mutate what was stored
  readonly dataJson: string
  readonly metadataJson: string
  readonly recordedAt: DateTime.Utc
}

interface StreamState {
  readonly streamId: StreamId.StreamId
  // emptied when the stream is deleted; until then, event `i` has version `i + 1`
  events: Array<Stored>
  version: number
  readonly createdAt: DateTime.Utc
  updatedAt: DateTime.Utc
  archivedAt: DateTime.Utc | undefined
  deletedAt: DateTime.Utc | undefined
}

/** Why a stream takes no more events, if it does not. */
const closed = (stream: StreamState | undefined): StreamArchived | StreamDeleted | undefined =>
  stream?.deletedAt !== undefined
    ? new StreamDeleted({ streamId: stream.streamId, version: stream.version })
    : stream?.archivedAt !== undefined
      ? new StreamArchived({ streamId: stream.streamId, version: stream.version })
      : undefined

const toRecorded = (stored: Stored): RecordedEvent => ({
  eventId: stored.eventId,
  streamId: stored.streamId,
  version: stored.version,
  position: stored.position,
  type: stored.type,
  schemaVersion: stored.schemaVersion,
  data: JSON.parse(stored.dataJson),
  metadata: JSON.parse(stored.metadataJson),
  recordedAt: stored.recordedAt
})

const toStoredEvent = (stored: Stored): StoreKit.StoredEvent => ({ ...stored, data: JSON.parse(stored.dataJson) })

type PlanStep =
  | { readonly _tag: "Retry"; readonly result: AppendResult }
  | { readonly _tag: "Write"; readonly prepared: StoreKit.Prepared; readonly firstVersion: number }

/** The memory store's options: its size limits (see `EventStore.MemoryOptions`). */
export interface Options {
  readonly maxEventBytes?: number | undefined
  readonly maxAppendBytes?: number | undefined
}

export const make = Effect.fnUntraced(function* (options?: Options) {
  const resolved = StoreKit.resolveLimits(options)
  if (Result.isFailure(resolved)) return yield* Effect.die(new Error(`EventStore.layerMemory: ${resolved.failure}`))
  const limits = resolved.success
  // at most one pending wake-up per listener: they carry nothing, so one says as much as many
  const committed = yield* PubSub.sliding<void>(1)
  const streams = new Map<string, StreamState>()
  const byEventId = new Map<string, Stored>()
  let log: Array<Stored> = []
  let commit = 0n
  let sequence = 0n

  /** Checks a whole transaction against the current state (and against its own earlier steps) without writing. */
  const plan = (
    requests: ReadonlyArray<AppendRequest>
  ): Result.Result<
    ReadonlyArray<PlanStep>,
    StoreKit.PrepareError | IdempotencyConflict | WrongExpectedVersion | StreamArchived | StreamDeleted
  > => {
    const prepared = StoreKit.prepareAll(requests, limits)
    if (Result.isFailure(prepared)) return Result.fail(prepared.failure)
    const pending = new Map<string, number>()
    const steps: Array<PlanStep> = []
    for (const request of prepared.success) {
      const found = request.events.flatMap(({ event }) => byEventId.get(event.eventId) ?? [])
      const retry = StoreKit.matchRetry(request, found.map(toStoredEvent))
      if (retry._tag === "Conflict") return Result.fail(retry.error)
      if (retry._tag === "Retry") {
        steps.push({ _tag: "Retry", result: retry.result })
        continue
      }
      const stream = streams.get(request.streamId)
      const refusal = closed(stream)
      if (refusal !== undefined) return Result.fail(refusal)
      const actual = pending.get(request.streamId) ?? stream?.version ?? 0
      if (!ExpectedVersion.isSatisfiedBy(request.expected, actual)) {
        return Result.fail(new WrongExpectedVersion({ streamId: request.streamId, expected: request.expected, actual }))
      }
      pending.set(request.streamId, actual + request.events.length)
      steps.push({ _tag: "Write", prepared: request, firstVersion: actual + 1 })
    }
    return Result.succeed(steps)
  }

  /** Writes a checked plan; runs synchronously, so no other fiber sees a partial transaction. */
  const write = (steps: ReadonlyArray<PlanStep>, now: DateTime.Utc): ReadonlyArray<AppendResult> => {
    const writes = steps.some((s) => s._tag === "Write" && s.prepared.events.length > 0)
    if (writes) commit += 1n
    return steps.map((step) => {
      if (step._tag === "Retry") return step.result
      const { prepared, firstVersion } = step
      let stream = streams.get(prepared.streamId)
      if (stream === undefined && prepared.events.length > 0) {
        stream = {
          streamId: prepared.streamId,
          events: [],
          version: 0,
          createdAt: now,
          updatedAt: now,
          archivedAt: undefined,
          deletedAt: undefined
        }
        streams.set(prepared.streamId, stream)
      }
      const positions = prepared.events.map(({ event, dataJson, metadataJson }, i) => {
        sequence += 1n
        const stored: Stored = {
          eventId: event.eventId,
          streamId: prepared.streamId,
          category: StreamId.category(prepared.streamId),
          version: firstVersion + i,
          position: Position.make(epoch, commit, sequence),
          type: event.type,
          schemaVersion: event.schemaVersion,
          dataJson,
          metadataJson,
          recordedAt: now
        }
        stream!.events.push(stored)
        stream!.version = stored.version
        stream!.updatedAt = now
        byEventId.set(stored.eventId, stored)
        log.push(stored)
        return stored.position
      })
      return {
        streamId: prepared.streamId,
        nextExpectedVersion: firstVersion - 1 + prepared.events.length,
        positions
      }
    })
  }

  const transact = (requests: ReadonlyArray<AppendRequest>) =>
    Effect.flatMap(Clock.currentTimeMillis, (millis) => {
      const steps = plan(requests)
      if (Result.isFailure(steps)) return Effect.fail(steps.failure)
      const results = write(steps.success, DateTime.makeUnsafe(millis))
      return Effect.as(PubSub.publish(committed, undefined), results)
    })

  const append: EventStore["Service"]["append"] = (streamId, events, options) =>
    Effect.map(transact([{ streamId, events, ...options }]), (results) => results[0]!)

  const appendMany: EventStore["Service"]["appendMany"] = (requests) => transact(requests)

  const read: EventStore["Service"]["read"] = (streamId, options?: ReadOptions) =>
    Stream.unwrap(
      Effect.flatMap(StreamId.parse(streamId), (id): Effect.Effect<Stream.Stream<RecordedEvent>, ReadError> => {
        const stream = streams.get(id)
        if (stream === undefined) return Effect.fail(new StreamNotFound({ streamId }))
        const refusal = closed(stream)
        if (refusal?._tag === "StreamDeleted" || (refusal !== undefined && options?.includeArchived !== true)) {
          return Effect.fail(refusal)
        }
        const from = Math.max(1, options?.from ?? 1)
        const to = Math.min(stream.version, options?.to ?? stream.version)
        let slice = from > to ? [] : stream.events.slice(from - 1, to)
        if (options?.direction === "backward") slice = slice.reverse()
        if (options?.limit !== undefined) slice = slice.slice(0, Math.max(0, options.limit))
        return Effect.succeed(Stream.fromArray(slice.map(toRecorded)))
      })
    )

  const fold = <S, E>(
    streamId: string,
    initial: S,
    step: (state: S, event: FoldEvent) => Result.Result<S, E>,
    options?: FoldOptions
  ): Effect.Effect<S, E | ReadError | StreamId.InvalidStreamId> =>
    Effect.flatMap(StreamId.parse(streamId), (id): Effect.Effect<S, E | ReadError> => {
      const stream = streams.get(id)
      if (stream === undefined) return Effect.fail(new StreamNotFound({ streamId }))
      const refusal = closed(stream)
      if (refusal?._tag === "StreamDeleted" || (refusal !== undefined && options?.includeArchived !== true)) {
        return Effect.fail(refusal)
      }
      const to = Math.min(stream.version, options?.to ?? stream.version)
      let state = initial
      for (let i = Math.max(1, options?.from ?? 1) - 1; i < to; i++) {
        const event = stream.events[i]!
        const next = step(state, {
          version: event.version,
          type: event.type,
          schemaVersion: event.schemaVersion,
          data: JSON.parse(event.dataJson)
        })
        if (Result.isFailure(next)) return Effect.fail(next.failure)
        state = next.success
      }
      return Effect.succeed(state)
    })

  /** Index of the first logged event after `after` (the log is in position order). */
  const firstAfter = (after: Position.Position): number => {
    let lo = 0
    let hi = log.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (Position.isBefore(after, log[mid]!.position)) hi = mid
      else lo = mid + 1
    }
    return lo
  }

  const readAll: EventStore["Service"]["readAll"] = (options?: ReadAllOptions) =>
    Stream.suspend(() => {
      const batchSize = Math.max(1, options?.batchSize ?? 1000)
      const categories = options?.categories?.length ? new Set(options.categories) : undefined
      const types = options?.types?.length ? new Set(options.types) : undefined
      const matches = (e: Stored) =>
        (categories === undefined || categories.has(e.category)) && (types === undefined || types.has(e.type))
      // pages continue after the last position scanned, not at an index: a delete between pages shifts the log
      return Stream.paginate(options?.after ?? Position.start, (after: Position.Position) => {
        const batch: Array<RecordedEvent> = []
        let i = firstAfter(after)
        let last = after
        for (; i < log.length && batch.length < batchSize; i++) {
          last = log[i]!.position
          if (matches(log[i]!)) batch.push(toRecorded(log[i]!))
        }
        return Effect.succeed([batch, i < log.length ? Option.some(last) : Option.none()] as const)
      })
    })

  const streamInfo: EventStore["Service"]["streamInfo"] = (streamId) =>
    Effect.map(StreamId.parse(streamId), (id) => {
      const stream = streams.get(id)
      return stream === undefined
        ? Option.none()
        : Option.some<StreamInfo>({
            streamId: stream.streamId,
            category: StreamId.category(stream.streamId),
            version: stream.version,
            createdAt: stream.createdAt,
            updatedAt: stream.updatedAt,
            archivedAt: Option.fromUndefinedOr(stream.archivedAt),
            deletedAt: Option.fromUndefinedOr(stream.deletedAt)
          })
    })

  /** The stream to archive or delete; an expectation no stream can meet is refused before the stream is looked at. */
  const find = (streamId: string, options: LifecycleOptions | undefined) =>
    Effect.flatMap(
      StreamId.parse(streamId),
      (id): Effect.Effect<StreamState, InvalidExpectedVersion | StreamNotFound> => {
        const checked = StoreKit.checkExpectedVersion(id, options?.expectedVersion ?? ExpectedVersion.any)
        if (Result.isFailure(checked)) return Effect.fail(checked.failure)
        const stream = streams.get(id)
        return stream === undefined ? Effect.fail(new StreamNotFound({ streamId })) : Effect.succeed(stream)
      }
    )

  const check = (stream: StreamState, options: LifecycleOptions | undefined) => {
    const expected = options?.expectedVersion ?? ExpectedVersion.any
    return ExpectedVersion.isSatisfiedBy(expected, stream.version)
      ? Effect.void
      : Effect.fail(new WrongExpectedVersion({ streamId: stream.streamId, expected, actual: stream.version }))
  }

  const archive: EventStore["Service"]["archive"] = Effect.fnUntraced(function* (
    streamId: string,
    options?: LifecycleOptions
  ) {
    const stream = yield* find(streamId, options)
    if (stream.deletedAt !== undefined) {
      return yield* new StreamDeleted({ streamId: stream.streamId, version: stream.version })
    }
    yield* check(stream, options)
    if (stream.archivedAt !== undefined) return
    stream.archivedAt = DateTime.makeUnsafe(yield* Clock.currentTimeMillis)
    stream.updatedAt = stream.archivedAt
  })

  const remove: EventStore["Service"]["delete"] = Effect.fnUntraced(function* (
    streamId: string,
    options?: LifecycleOptions
  ) {
    const stream = yield* find(streamId, options)
    yield* check(stream, options)
    if (stream.deletedAt !== undefined) return
    const deletedAt = DateTime.makeUnsafe(yield* Clock.currentTimeMillis)
    const gone = new Set(stream.events)
    for (const event of gone) byEventId.delete(event.eventId)
    log = log.filter((event) => !gone.has(event))
    stream.events = []
    stream.deletedAt = deletedAt
    stream.updatedAt = deletedAt
  })

  const head = Effect.sync(() => log.at(-1)?.position ?? Position.start)

  return {
    append,
    appendMany,
    read,
    fold,
    readAll,
    head,
    // every committed event is readable at once here
    lastCommitted: head,
    wakeups: Stream.fromPubSub(committed),
    streamInfo,
    archive,
    delete: remove
  }
})
