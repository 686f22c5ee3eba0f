/**
 * Four-eyes on an account's large outflows: a withdrawal or a fee above its approval threshold does not move money at
 * once. The account records it as requested (`OutflowRequested`), and only a second person (anyone but the requester)
 * can approve it, which moves the money then, after the same checks as any debit (`OutflowApproved` followed by
 * `MoneyWithdrawn` or `FeeCharged`; never an overdraft), or reject it (`OutflowRejected`, nothing moves).
 *
 * The events and commands live here; the rules are part of `Account.decide`, since they need the account's balance
 * and status.
 */
import { Schema } from "effect"
import * as Money from "./Money.ts"

const RequestId = Schema.NonEmptyString
const Actor = Schema.NonEmptyString

/**
 * What a large outflow takes: a withdrawal (by its owner or an admin) or a fee (by an admin).
 */
export const OutflowKind = Schema.Literals(["Withdrawal", "Fee"])

export type OutflowKind = typeof OutflowKind.Type

// Events

/**
 * A withdrawal or fee above `approvalThreshold` waits for a second person; no money moved. `text` is the
 * withdrawal's reference or the fee's reason.
 */
export const OutflowRequested = Schema.TaggedStruct("OutflowRequested", {
  requestId: RequestId,
  kind: OutflowKind,
  amount: Money.PositiveAmount,
  text: Schema.String,
  requestedBy: Actor,
  approvalThreshold: Money.Amount
})

/**
 * A second person approved the outflow; the event that moves the money follows in the same append.
 */
export const OutflowApproved = Schema.TaggedStruct("OutflowApproved", { requestId: RequestId, by: Actor })

/**
 * A second person turned the outflow down; no money moved.
 */
export const OutflowRejected = Schema.TaggedStruct("OutflowRejected", {
  requestId: RequestId,
  by: Actor,
  reason: Schema.String
})

// Commands

/**
 * Approves a waiting outflow, which then moves its money (if the account can still pay it).
 */
export const ApproveOutflow = Schema.TaggedStruct("ApproveOutflow", { requestId: RequestId, by: Actor })

/**
 * Turns down a waiting outflow.
 */
export const RejectOutflow = Schema.TaggedStruct("RejectOutflow", {
  requestId: RequestId,
  by: Actor,
  reason: Schema.String
})

// State

/**
 * An outflow waiting for approval, as the account remembers it.
 */
export const PendingOutflow = Schema.Struct({
  kind: OutflowKind,
  amount: Money.PositiveAmount,
  text: Schema.String,
  requestedBy: Actor,
  approvalThreshold: Money.Amount
})

export type PendingOutflow = typeof PendingOutflow.Type
