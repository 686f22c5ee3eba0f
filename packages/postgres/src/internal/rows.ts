import { type Event, Position, type StreamId } from "@facta/core"
import { DateTime, type Schema } from "effect"

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

export const toRecorded = (row: EventRow): Event.RecordedEvent => ({
  eventId: row.event_id as Event.EventId,
  streamId: row.stream_id as StreamId.StreamId,
  version: row.version,
  position: Position.make(row.epoch, BigInt(row.tx_id), row.global_position),
  type: row.type,
  schemaVersion: row.schema_version,
  data: row.data,
  metadata: row.metadata,
  recordedAt: DateTime.fromDateUnsafe(row.recorded_at)
})
