import { Clock, DateTime, Effect, Option, Stream } from "effect"
import type { EventId, RecordedEvent } from "../Event.ts"
import { mergeMetadata } from "../Event.ts"
import type { AppendRequest, AppendResult, EventStore, ReadAllOptions, ReadOptions, StreamInfo } from "../EventStore.ts"
import type { InvalidEvent } from "../EventStoreError.ts"
import { IdempotencyConflict, StreamNotFound, WrongExpectedVersion } from "../EventStoreError.ts"
import * as ExpectedVersion from "../ExpectedVersion.ts"
import * as Position from "../Position.ts"
import * as StreamId from "../StreamId.ts"
import type { ValidEvent } from "./eventData.ts"
import { jsonEquals, validateEvents } from "./eventData.ts"

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
  readonly events: Array<Stored>
  readonly createdAt: DateTime.Utc
  updatedAt: DateTime.Utc
}

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

/** A validated request, with its stream id checked and its events serialised. */
interface Prepared {
  readonly streamId: StreamId.StreamId
  readonly expected: ExpectedVersion.ExpectedVersion
  readonly events: ReadonlyArray<ValidEvent>
}

type PlanStep =
  | { readonly _tag: "Retry"; readonly result: AppendResult }
  | { readonly _tag: "Write"; readonly prepared: Prepared; readonly firstVersion: number }

export const make = (): EventStore["Service"] => {
  const streams = new Map<string, StreamState>()
  const byEventId = new Map<string, Stored>()
  const log: Array<Stored> = []
  let commit = 0n
  let sequence = 0n

  const prepare = (request: AppendRequest): Prepared | StreamId.InvalidStreamId | InvalidEvent => {
    const reason = StreamId.validate(request.streamId)
    if (reason !== undefined) return new StreamId.InvalidStreamId({ streamId: request.streamId, reason })
    const metadata = request.metadata ?? {}
    const events = validateEvents(request.streamId, request.events, (event) => mergeMetadata(metadata, event.metadata))
    if (!Array.isArray(events)) return events as InvalidEvent
    return {
      streamId: request.streamId as StreamId.StreamId,
      expected: request.expectedVersion ?? ExpectedVersion.any,
      events
    }
  }

  /**
   * When the append's ids are already stored: the original result if this is the same append again, a conflict
   * otherwise. `undefined` when none of the ids is stored.
   */
  const checkRetry = (prepared: Prepared): AppendResult | IdempotencyConflict | undefined => {
    const found = prepared.events.map((e) => byEventId.get(e.event.eventId))
    const stored = found.filter((s): s is Stored => s !== undefined)
    if (stored.length === 0) return undefined
    const conflict = (reason: string) =>
      new IdempotencyConflict({ streamId: prepared.streamId, eventIds: stored.map((s) => s.eventId), reason })
    if (stored.length < found.length) return conflict("only some of the appended event ids are stored")
    for (let i = 0; i < stored.length; i++) {
      const previous = stored[i]!
      const { event, dataJson } = prepared.events[i]!
      if (previous.streamId !== prepared.streamId) return conflict(`stored in stream ${previous.streamId}`)
      if (i > 0 && previous.version !== stored[i - 1]!.version + 1) return conflict("stored in another order")
      if (previous.type !== event.type || previous.schemaVersion !== event.schemaVersion) {
        return conflict("stored with another type or schema version")
      }
      if (previous.dataJson !== dataJson && !jsonEquals(JSON.parse(previous.dataJson), JSON.parse(dataJson))) {
        return conflict("stored with other data")
      }
    }
    return {
      streamId: prepared.streamId,
      nextExpectedVersion: stored[stored.length - 1]!.version,
      positions: stored.map((s) => s.position)
    }
  }

  /** Checks a whole transaction against the current state (and against its own earlier steps) without writing. */
  const plan = (
    requests: ReadonlyArray<AppendRequest>
  ): ReadonlyArray<PlanStep> | WrongExpectedVersion | IdempotencyConflict | InvalidEvent | StreamId.InvalidStreamId => {
    const pending = new Map<string, number>()
    const ids = new Set<string>()
    const steps: Array<PlanStep> = []
    for (const request of requests) {
      const prepared = prepare(request)
      if (!("events" in prepared)) return prepared
      for (const { event } of prepared.events) {
        if (ids.has(event.eventId)) {
          return new IdempotencyConflict({
            streamId: prepared.streamId,
            eventIds: [event.eventId],
            reason: "the same event id appears twice in one transaction"
          })
        }
        ids.add(event.eventId)
      }
      const retry = checkRetry(prepared)
      if (retry instanceof IdempotencyConflict) return retry
      if (retry !== undefined) {
        steps.push({ _tag: "Retry", result: retry })
        continue
      }
      const actual = pending.get(prepared.streamId) ?? streams.get(prepared.streamId)?.events.length ?? 0
      if (!ExpectedVersion.isSatisfiedBy(prepared.expected, actual)) {
        return new WrongExpectedVersion({ streamId: prepared.streamId, expected: prepared.expected, actual })
      }
      pending.set(prepared.streamId, actual + prepared.events.length)
      steps.push({ _tag: "Write", prepared, firstVersion: actual + 1 })
    }
    return steps
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
        stream = { streamId: prepared.streamId, events: [], createdAt: now, updatedAt: now }
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
      return Array.isArray(steps)
        ? Effect.succeed(write(steps, DateTime.makeUnsafe(millis)))
        : Effect.fail(steps as Exclude<typeof steps, ReadonlyArray<PlanStep>>)
    })

  const append: EventStore["Service"]["append"] = (streamId, events, options) =>
    Effect.map(transact([{ streamId, events, ...options }]), (results) => results[0]!)

  const appendMany: EventStore["Service"]["appendMany"] = (requests) => transact(requests)

  const read: EventStore["Service"]["read"] = (streamId, options?: ReadOptions) =>
    Stream.suspend((): ReturnType<EventStore["Service"]["read"]> => {
      const reason = StreamId.validate(streamId)
      if (reason !== undefined) return Stream.fail(new StreamId.InvalidStreamId({ streamId, reason }))
      const stream = streams.get(streamId)
      if (stream === undefined) return Stream.fail(new StreamNotFound({ streamId }))
      const from = Math.max(1, options?.from ?? 1)
      const to = Math.min(stream.events.length, options?.to ?? stream.events.length)
      let slice = from > to ? [] : stream.events.slice(from - 1, to)
      if (options?.direction === "backward") slice = slice.reverse()
      if (options?.limit !== undefined) slice = slice.slice(0, Math.max(0, options.limit))
      return Stream.fromArray(slice.map(toRecorded))
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
      return Stream.paginate(firstAfter(options?.after ?? Position.start), (index: number) => {
        const batch: Array<RecordedEvent> = []
        let i = index
        for (; i < log.length && batch.length < batchSize; i++) {
          if (matches(log[i]!)) batch.push(toRecorded(log[i]!))
        }
        return Effect.succeed([batch, i < log.length ? Option.some(i) : Option.none()] as const)
      })
    })

  const streamInfo: EventStore["Service"]["streamInfo"] = (streamId) =>
    Effect.suspend(() => {
      const reason = StreamId.validate(streamId)
      if (reason !== undefined) return Effect.fail(new StreamId.InvalidStreamId({ streamId, reason }))
      const stream = streams.get(streamId)
      return Effect.succeed(
        stream === undefined
          ? Option.none()
          : Option.some<StreamInfo>({
              streamId: stream.streamId,
              category: StreamId.category(stream.streamId),
              version: stream.events.length,
              createdAt: stream.createdAt,
              updatedAt: stream.updatedAt
            })
      )
    })

  return { append, appendMany, read, readAll, streamInfo }
}
