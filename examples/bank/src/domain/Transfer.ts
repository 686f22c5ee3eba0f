/**
 * The Transfer aggregate (stream category `Transfer`): moving money from one account to another, with four-eyes
 * approval above a threshold and the steps of the transfer process recorded as they happen.
 *
 * Life cycle:
 *
 * ```text
 * Initiate ─┬─ amount <= threshold ─> Initiated ──────────────┬─> Debited ─┬─> Completed
 *           └─ amount >  threshold ─> AwaitingApproval         │            └─> Compensating ─> Failed (debit reversed)
 *                                       ├─ Approve ─> Approved ┤
 *                                       ├─ Reject ──> Rejected └─> Failed (debit refused, nothing taken)
 *                                       └─ Expire ──> Expired
 * ```
 *
 * Users issue `Initiate`, `Approve`, `Reject` and `Expire`; the transfer process issues the `Mark*` steps. Those
 * steps are idempotent: a step the transfer is already at or past decides no events, so the process can repeat
 * them after a crash. Only a transfer awaiting approval can be rejected or expire; once a transfer may be debited the
 * process owns it, so that money never leaves an account for a transfer that was cancelled meanwhile.
 */
import { Aggregate, Decider } from "@facta/core"
import { Effect, Schema } from "effect"
import * as Money from "./Money.ts"

const AccountId = Schema.NonEmptyString
const Actor = Schema.NonEmptyString
const Text = Schema.String

// Events

/**
 * A transfer was requested. `requiresApproval` is `amount > approvalThreshold`.
 */
export const TransferInitiated = Schema.TaggedStruct("TransferInitiated", {
  from: AccountId,
  to: AccountId,
  amount: Money.PositiveAmount,
  currency: Money.Currency,
  reference: Text,
  initiatedBy: Actor,
  approvalThreshold: Money.Amount,
  requiresApproval: Schema.Boolean
})

/**
 * A second person approved the transfer.
 */
export const TransferApproved = Schema.TaggedStruct("TransferApproved", { by: Actor })

/**
 * The transfer was turned down before any money moved.
 */
export const TransferRejected = Schema.TaggedStruct("TransferRejected", { by: Actor, reason: Text })

/**
 * Nobody approved the transfer in time.
 */
export const TransferExpired = Schema.TaggedStruct("TransferExpired", { reason: Text })

/**
 * The source account was debited.
 */
export const TransferDebited = Schema.TaggedStruct("TransferDebited", {})

/**
 * The source account refused the debit; nothing was taken and the transfer failed.
 */
export const TransferDebitFailed = Schema.TaggedStruct("TransferDebitFailed", { reason: Text })

/**
 * The target account was credited: the transfer is complete.
 */
export const TransferCompleted = Schema.TaggedStruct("TransferCompleted", {})

/**
 * The target account refused the credit; the debit has to be reversed.
 */
export const TransferCreditFailed = Schema.TaggedStruct("TransferCreditFailed", { reason: Text })

/**
 * The debit was given back to the source account: the transfer failed with no money moved.
 */
export const TransferCompensated = Schema.TaggedStruct("TransferCompensated", {})

/**
 * Every event of a transfer.
 */
export const TransferEvent = Schema.Union([
  TransferInitiated,
  TransferApproved,
  TransferRejected,
  TransferExpired,
  TransferDebited,
  TransferDebitFailed,
  TransferCompleted,
  TransferCreditFailed,
  TransferCompensated
])

export type TransferEvent = typeof TransferEvent.Type

// Commands

/**
 * Requests a transfer of `amount` from account `from` to account `to`. Above `approvalThreshold` it waits for an
 * approval by someone other than `initiatedBy`.
 */
export const Initiate = Schema.TaggedStruct("Initiate", {
  from: AccountId,
  to: AccountId,
  amount: Money.PositiveAmount,
  currency: Money.Currency,
  reference: Text,
  initiatedBy: Actor,
  approvalThreshold: Money.Amount
})

/**
 * Approves a transfer awaiting approval.
 */
export const Approve = Schema.TaggedStruct("Approve", { by: Actor })

/**
 * Turns down a transfer awaiting approval.
 */
export const Reject = Schema.TaggedStruct("Reject", { by: Actor, reason: Text })

/**
 * Expires a transfer nobody approved in time.
 */
export const Expire = Schema.TaggedStruct("Expire", { reason: Text })

/**
 * Process step: the source account was debited.
 */
export const MarkDebited = Schema.TaggedStruct("MarkDebited", {})

/**
 * Process step: the source account refused the debit.
 */
export const MarkDebitFailed = Schema.TaggedStruct("MarkDebitFailed", { reason: Text })

/**
 * Process step: the target account was credited.
 */
export const MarkCredited = Schema.TaggedStruct("MarkCredited", {})

/**
 * Process step: the target account refused the credit.
 */
export const MarkCreditFailed = Schema.TaggedStruct("MarkCreditFailed", { reason: Text })

/**
 * Process step: the debit was reversed.
 */
export const MarkCompensated = Schema.TaggedStruct("MarkCompensated", {})

/**
 * Every command of a transfer.
 */
export const TransferCommand = Schema.Union([
  Initiate,
  Approve,
  Reject,
  Expire,
  MarkDebited,
  MarkDebitFailed,
  MarkCredited,
  MarkCreditFailed,
  MarkCompensated
])

export type TransferCommand = typeof TransferCommand.Type

// State

/**
 * Where a transfer stands.
 */
export const TransferStatus = Schema.Literals([
  "Initiated",
  "AwaitingApproval",
  "Approved",
  "Rejected",
  "Expired",
  "Debited",
  "Compensating",
  "Completed",
  "Failed"
])

export type TransferStatus = typeof TransferStatus.Type

/**
 * A transfer that has not been initiated.
 */
export const NotInitiated = Schema.TaggedStruct("NotInitiated", {})

/**
 * An initiated transfer. `debited` says whether money left the source account at some point (a failed transfer
 * with `debited: true` had its debit reversed); `approvedBy` and `failure` are `null` until they happen.
 */
export const TransferInfo = Schema.TaggedStruct("Transfer", {
  status: TransferStatus,
  from: AccountId,
  to: AccountId,
  amount: Money.PositiveAmount,
  currency: Money.Currency,
  reference: Text,
  initiatedBy: Actor,
  approvalThreshold: Money.Amount,
  approvedBy: Schema.NullOr(Actor),
  debited: Schema.Boolean,
  failure: Schema.NullOr(Text)
})

export type TransferInfo = typeof TransferInfo.Type

/**
 * The state of a transfer; also its snapshot schema.
 */
export const TransferState = Schema.Union([NotInitiated, TransferInfo])

export type TransferState = typeof TransferState.Type

/**
 * The state of a transfer no event has touched.
 */
export const initialState: TransferState = NotInitiated.make({})

/**
 * Whether the process may debit the source account: an initiated transfer that needs no approval, or an approved
 * one.
 */
export const isReadyToDebit = (state: TransferState): state is TransferInfo =>
  state._tag === "Transfer" && (state.status === "Initiated" || state.status === "Approved")

/**
 * Whether the transfer has reached an end: completed, failed, rejected or expired.
 */
export const isFinished = (state: TransferState): boolean =>
  state._tag === "Transfer" &&
  (state.status === "Completed" ||
    state.status === "Failed" ||
    state.status === "Rejected" ||
    state.status === "Expired")

// Domain errors

/**
 * A command other than `Initiate` for a transfer that was never initiated.
 */
export class TransferNotInitiated extends Schema.TaggedError<TransferNotInitiated>()("TransferNotInitiated", {
  command: Schema.String
}) {
  override get message() {
    return `Cannot ${this.command}: the transfer has not been initiated`
  }
}

/**
 * `Initiate` for a transfer id that is already in use.
 */
export class TransferAlreadyInitiated extends Schema.TaggedError<TransferAlreadyInitiated>()(
  "TransferAlreadyInitiated",
  { status: Schema.String }
) {
  override get message() {
    return `The transfer was already initiated (it is ${this.status})`
  }
}

/**
 * A transfer from an account to itself.
 */
export class SameAccount extends Schema.TaggedError<SameAccount>()("SameAccount", { account: Schema.String }) {
  override get message() {
    return `Cannot transfer from account ${this.account} to itself`
  }
}

/**
 * An amount that is not a positive safe integer of minor units, or a threshold that is not a non-negative one.
 */
export class InvalidTransferAmount extends Schema.TaggedError<InvalidTransferAmount>()("InvalidTransferAmount", {
  field: Schema.String,
  value: Schema.Number
}) {
  override get message() {
    return `${this.field} ${this.value} is not a valid amount of minor units`
  }
}

/**
 * The initiator approving their own transfer.
 */
export class SelfApprovalForbidden extends Schema.TaggedError<SelfApprovalForbidden>()("SelfApprovalForbidden", {
  actor: Schema.String
}) {
  override get message() {
    return `${this.actor} initiated the transfer and cannot approve it: approval needs a second person`
  }
}

/**
 * `Approve` for a transfer at or below its approval threshold.
 */
export class ApprovalNotRequired extends Schema.TaggedError<ApprovalNotRequired>()("ApprovalNotRequired", {
  amount: Schema.Int,
  approvalThreshold: Schema.Int
}) {
  override get message() {
    return `The transfer of ${this.amount} is within the approval threshold of ${this.approvalThreshold} and needs no approval`
  }
}

/**
 * A command the transfer's status does not allow.
 */
export class InvalidTransferState extends Schema.TaggedError<InvalidTransferState>()("InvalidTransferState", {
  command: Schema.String,
  status: Schema.String
}) {
  override get message() {
    return `Cannot ${this.command}: the transfer is ${this.status}`
  }
}

/**
 * Every domain error of a transfer.
 */
export type TransferError =
  | TransferNotInitiated
  | TransferAlreadyInitiated
  | SameAccount
  | InvalidTransferAmount
  | SelfApprovalForbidden
  | ApprovalNotRequired
  | InvalidTransferState

// Decider

type Decision = Effect.Effect<ReadonlyArray<TransferEvent>, TransferError>

const accept = (event: TransferEvent): Decision => Effect.succeed([event])
const nothing: Decision = Effect.succeed([])
const refuse = (command: TransferCommand, state: TransferInfo): Decision =>
  Effect.fail(new InvalidTransferState({ command: command._tag, status: state.status }))

/**
 * A process step: `from` are the statuses it moves on from, `done` those at or past it (where it does nothing).
 */
const step = (
  command: TransferCommand,
  state: TransferInfo,
  from: ReadonlyArray<TransferStatus>,
  done: ReadonlyArray<TransferStatus>,
  event: TransferEvent
): Decision =>
  from.includes(state.status) ? accept(event) : done.includes(state.status) ? nothing : refuse(command, state)

const decideInitiated = (command: TransferCommand, state: TransferInfo): Decision => {
  switch (command._tag) {
    case "Initiate":
      return Effect.fail(new TransferAlreadyInitiated({ status: state.status }))
    case "Approve": {
      if (state.status === "Initiated") {
        return Effect.fail(
          new ApprovalNotRequired({ amount: state.amount, approvalThreshold: state.approvalThreshold })
        )
      }
      if (command.by === state.initiatedBy) return Effect.fail(new SelfApprovalForbidden({ actor: command.by }))
      if (state.status === "Approved" && state.approvedBy === command.by) return nothing
      return state.status === "AwaitingApproval"
        ? accept(TransferApproved.make({ by: command.by }))
        : refuse(command, state)
    }
    case "Reject":
      return state.status === "AwaitingApproval"
        ? accept(TransferRejected.make({ by: command.by, reason: command.reason }))
        : refuse(command, state)
    case "Expire":
      return state.status === "AwaitingApproval"
        ? accept(TransferExpired.make({ reason: command.reason }))
        : refuse(command, state)
    case "MarkDebited":
      return state.status === "Failed" && !state.debited
        ? refuse(command, state)
        : step(
            command,
            state,
            ["Initiated", "Approved"],
            ["Debited", "Completed", "Compensating", "Failed"],
            TransferDebited.make({})
          )
    case "MarkDebitFailed":
      return state.status === "Failed" && state.debited
        ? refuse(command, state)
        : step(
            command,
            state,
            ["Initiated", "Approved"],
            ["Failed"],
            TransferDebitFailed.make({ reason: command.reason })
          )
    case "MarkCredited":
      return step(command, state, ["Debited"], ["Completed"], TransferCompleted.make({}))
    case "MarkCreditFailed":
      return state.status === "Failed" && !state.debited
        ? refuse(command, state)
        : step(
            command,
            state,
            ["Debited"],
            ["Compensating", "Failed"],
            TransferCreditFailed.make({ reason: command.reason })
          )
    case "MarkCompensated":
      return state.status === "Failed" && !state.debited
        ? refuse(command, state)
        : step(command, state, ["Compensating"], ["Failed"], TransferCompensated.make({}))
  }
}

/**
 * Decides a command against a transfer's state.
 */
export const decide = (command: TransferCommand, state: TransferState): Decision => {
  if (state._tag === "Transfer") return decideInitiated(command, state)
  if (command._tag !== "Initiate") return Effect.fail(new TransferNotInitiated({ command: command._tag }))
  if (!Money.isPositiveAmount(command.amount)) {
    return Effect.fail(new InvalidTransferAmount({ field: "amount", value: command.amount }))
  }
  if (!Money.isAmount(command.approvalThreshold)) {
    return Effect.fail(new InvalidTransferAmount({ field: "approvalThreshold", value: command.approvalThreshold }))
  }
  if (command.from === command.to) return Effect.fail(new SameAccount({ account: command.from }))
  return accept(
    TransferInitiated.make({
      from: command.from,
      to: command.to,
      amount: command.amount,
      currency: command.currency,
      reference: command.reference,
      initiatedBy: command.initiatedBy,
      approvalThreshold: command.approvalThreshold,
      requiresApproval: command.amount > command.approvalThreshold
    })
  )
}

/**
 * The transfer's status state machine: the status each event leaves a transfer in. `evolve` and the transfers read
 * model both use it, so the two can never disagree.
 */
export const statusAfter = (event: TransferEvent): TransferStatus => {
  switch (event._tag) {
    case "TransferInitiated":
      return event.requiresApproval ? "AwaitingApproval" : "Initiated"
    case "TransferApproved":
      return "Approved"
    case "TransferRejected":
      return "Rejected"
    case "TransferExpired":
      return "Expired"
    case "TransferDebited":
      return "Debited"
    case "TransferDebitFailed":
    case "TransferCompensated":
      return "Failed"
    case "TransferCompleted":
      return "Completed"
    case "TransferCreditFailed":
      return "Compensating"
  }
}

/**
 * Folds one event into a transfer's state.
 */
export const evolve = (state: TransferState, event: TransferEvent): TransferState => {
  if (event._tag === "TransferInitiated") {
    return TransferInfo.make({
      status: statusAfter(event),
      from: event.from,
      to: event.to,
      amount: event.amount,
      currency: event.currency,
      reference: event.reference,
      initiatedBy: event.initiatedBy,
      approvalThreshold: event.approvalThreshold,
      approvedBy: null,
      debited: false,
      failure: null
    })
  }
  if (state._tag === "NotInitiated") return state
  const status = statusAfter(event)
  switch (event._tag) {
    case "TransferApproved":
      return { ...state, status, approvedBy: event.by }
    case "TransferRejected":
    case "TransferExpired":
    case "TransferDebitFailed":
    case "TransferCreditFailed":
      return { ...state, status, failure: event.reason }
    case "TransferDebited":
      return { ...state, status, debited: true }
    case "TransferCompleted":
    case "TransferCompensated":
      return { ...state, status }
  }
}

/**
 * The transfer's decider. Finished transfers are terminal.
 */
export const decider = Decider.make({ initialState, decide, evolve, isTerminal: isFinished })

/**
 * The Transfer aggregate: stream `Transfer-<id>`, snapshotted every 100 events (a transfer seldom has ten, but a
 * finished one is snapshotted at once, being terminal).
 */
export const Transfer = Aggregate.make({
  category: "Transfer",
  events: TransferEvent,
  decider,
  snapshot: { schema: TransferState, version: 1, every: 100 }
})
