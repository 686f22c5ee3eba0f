import { type Event, EventStoreError, Position, type StreamId } from "@facta/core"
import { DateTime, Result, type Schema } from "effect"

/** The columns every event read selects, in this order. */
export const eventColumns =
  "global_position, epoch, tx_id::text AS tx_id, stream_id, version, event_id, type, schema_version, data, metadata, recorded_at"

export interface EventRow {
  readonly global_position: bigint
  readonly epoch: number
  readonly tx_id: string
  readonly stream_id: string
  readonly version: number
  readonly event_id: string
  readonly type: string
  readonly schema_version: number
  readonly data: Schema.Json
  readonly metadata: Event.EventMetadata
  readonly recorded_at: Date
}

/**
 * A row as an event, or a `CorruptedEvent` when the row holds what no append writes (a row changed by hand): readers
 * get a typed error instead of a crash.
 */
// the rows of a page mostly come a transaction at a time: its id is parsed once
let lastTxId = "0"
let lastCommit = 0n
const commitOf = (txId: string): bigint => {
  if (txId !== lastTxId) {
    lastCommit = BigInt(txId)
    lastTxId = txId
  }
  return lastCommit
}

export const toRecorded = (row: EventRow): Result.Result<Event.RecordedEvent, EventStoreError.CorruptedEvent> => {
  const position = Position.make(row.epoch, commitOf(row.tx_id), row.global_position)
  // `infinity` and dates past year 275760 come back from the driver as an invalid Date
  if (Number.isNaN(row.recorded_at.getTime())) {
    return Result.fail(
      new EventStoreError.CorruptedEvent({
        streamId: row.stream_id,
        version: row.version,
        eventId: row.event_id,
        position,
        reason: "its recorded_at is not a representable timestamp"
      })
    )
  }
  return Result.succeed({
    eventId: row.event_id as Event.EventId,
    streamId: row.stream_id as StreamId.StreamId,
    version: row.version,
    position,
    type: row.type,
    schemaVersion: row.schema_version,
    data: row.data,
    metadata: row.metadata,
    recordedAt: DateTime.fromDateUnsafe(row.recorded_at)
  })
}

/** Versions a stream lacks: the store writes 1..n with no hole, so a hole is a row removed by hand. */
export const missingVersion = (streamId: string, version: number, next: number | undefined) =>
  new EventStoreError.CorruptedEvent({
    streamId,
    version,
    reason:
      next === undefined
        ? `version ${version} is missing from the stream's events`
        : `version ${version} is missing from the stream's events (the next one stored is ${next})`
  })

/**
 * Converts a page of a stream's rows, expecting versions from `expected` on, one apart (`step` -1 when reading
 * backwards): the events, or the first corrupted row or missing version.
 */
export const streamPage = (
  streamId: string,
  rows: ReadonlyArray<EventRow>,
  expected: number,
  step: 1 | -1
): Result.Result<Array<Event.RecordedEvent>, EventStoreError.CorruptedEvent> => {
  const events = new Array<Event.RecordedEvent>(rows.length)
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!
    const version = expected + i * step
    if (row.version !== version) return Result.fail(missingVersion(streamId, version, row.version))
    const event = toRecorded(row)
    if (Result.isFailure(event)) return Result.fail(event.failure)
    events[i] = event.success
  }
  return Result.succeed(events)
}
