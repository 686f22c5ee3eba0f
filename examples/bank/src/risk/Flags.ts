/**
 * What the risk watch answers on `GET /flags`: the newest flagged transfers and the totals. Only schemas, so that the
 * bank's server (which forwards `GET /risk/alerts` to the watch) decodes the watch's answer without importing the
 * watch.
 */
import { Schema } from "effect"

/**
 * A flagged transfer, as `GET /flags` lists it.
 */
export const Flag = Schema.Struct({
  transferId: Schema.String,
  rule: Schema.Literals(["large", "near-threshold"]),
  reason: Schema.String,
  fromAccount: Schema.String,
  toAccount: Schema.String,
  amount: Schema.String,
  currency: Schema.String,
  requestedBy: Schema.String,
  requestedAt: Schema.String,
  /** The transfer's outcome as the watch heard it: Requested, Approved, Rejected, Completed or Failed. */
  status: Schema.String,
  correlationId: Schema.NullOr(Schema.String)
})

export type Flag = typeof Flag.Type

/**
 * The newest flags and the totals.
 */
export const Flags = Schema.Struct({
  flags: Schema.Array(Flag),
  totals: Schema.Struct({ large: Schema.Int, nearThreshold: Schema.Int, transfersSeen: Schema.Int })
})

export type Flags = typeof Flags.Type
