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
 *
 * @since 0.1.0
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
 *
 * @since 0.1.0
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
 *
 * @since 0.1.0
 */
export const TransferApproved = Schema.TaggedStruct("TransferApproved", { by: Actor })

/**
 * The transfer was turned down before any money moved.
 *
 * @since 0.1.0
 */
export const TransferRejected = Schema.TaggedStruct("TransferRejected", { by: Actor, reason: Text })

/**
 * Nobody approved the transfer in time.
 *
 * @since 0.1.0
 */
export const TransferExpired = Schema.TaggedStruct("TransferExpired", { reason: Text })

/**
 * The source account was debited.
 *
 * @since 0.1.0
 */
export const TransferDebited = Schema.TaggedStruct("TransferDebited", {})

/**
 * The source account refused the debit; nothing was taken and the transfer failed.
 *
 * @since 0.1.0
 */
export const TransferDebitFailed = Schema.TaggedStruct("TransferDebitFailed", { reason: Text })

/**
 * The target account was credited: the transfer is complete.
 *
 * @since 0.1.0
 */
export const TransferCompleted = Schema.TaggedStruct("TransferCompleted", {})

/**
 * The target account refused the credit; the debit has to be reversed.
 *
 * @since 0.1.0
 */
export const TransferCreditFailed = Schema.TaggedStruct("TransferCreditFailed", { reason: Text })

/**
 * The debit was given back to the source account: the transfer failed with no money moved.
 *
 * @since 0.1.0
 */
export const TransferCompensated = Schema.TaggedStruct("TransferCompensated", {})

/**
 * Every event of a transfer.
 *
 * @since 0.1.0
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

/**
 * @since 0.1.0
 */
export type TransferEvent = typeof TransferEvent.Type

// Commands

/**
 * Requests a transfer of `amount` from account `from` to account `to`. Above `approvalThreshold` it waits for an
 * approval by someone other than `initiatedBy`.
 *
 * @since 0.1.0
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
 *
 * @since 0.1.0
 */
export const Approve = Schema.TaggedStruct("Approve", { by: Actor })

/**
 * Turns down a transfer awaiting approval.
 *
 * @since 0.1.0
 */
export const Reject = Schema.TaggedStruct("Reject", { by: Actor, reason: Text })

/**
 * Expires a transfer nobody approved in time.
 *
 * @since 0.1.0
 */
export const Expire = Schema.TaggedStruct("Expire", { reason: Text })

/**
 * Process step: the source account was debited.
 *
 * @since 0.1.0
 */
export const MarkDebited = Schema.TaggedStruct("MarkDebited", {})

/**
 * Process step: the source account refused the debit.
 *
 * @since 0.1.0
 */
export const MarkDebitFailed = Schema.TaggedStruct("MarkDebitFailed", { reason: Text })

/**
 * Process step: the target account was credited.
 *
 * @since 0.1.0
 */
export const MarkCredited = Schema.TaggedStruct("MarkCredited", {})

/**
 * Process step: the target account refused the credit.
 *
 * @since 0.1.0
 */
export const MarkCreditFailed = Schema.TaggedStruct("MarkCreditFailed", { reason: Text })

/**
 * Process step: the debit was reversed.
 *
 * @since 0.1.0
 */
export const MarkCompensated = Schema.TaggedStruct("MarkCompensated", {})

/**
 * Every command of a transfer.
 *
 * @since 0.1.0
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

/**
 * @since 0.1.0
 */
export type TransferCommand = typeof TransferCommand.Type

// State

/**
 * Where a transfer stands.
 *
 * @since 0.1.0
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

/**
 * @since 0.1.0
 */
export type TransferStatus = typeof TransferStatus.Type

/**
 * A transfer that has not been initiated.
 *
 * @since 0.1.0
 */
export const NotInitiated = Schema.TaggedStruct("NotInitiated", {})

/**
 * An initiated transfer. `debited` says whether money left the source account at some point (a failed transfer
 * with `debited: true` had its debit reversed); `approvedBy` and `failure` are `null` until they happen.
 *
 * @since 0.1.0
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

/**
 * @since 0.1.0
 */
export type TransferInfo = typeof TransferInfo.Type

/**
 * The state of a transfer; also its snapshot schema.
 *
 * @since 0.1.0
 */
export const TransferState = Schema.Union([NotInitiated, TransferInfo])

/**
 * @since 0.1.0
 */
export type TransferState = typeof TransferState.Type

/**
 * The state of a transfer no event has touched.
 *
 * @since 0.1.0
 */
export const initialState: TransferState = NotInitiated.make({})

/**
 * Whether the process may debit the source account: an initiated transfer that needs no approval, or an approved
 * one.
 *
 * @since 0.1.0
 */
export const isReadyToDebit = (state: TransferState): state is TransferInfo =>
  state._tag === "Transfer" && (state.status === "Initiated" || state.status === "Approved")

/**
 * Whether the transfer has reached an end: completed, failed, rejected or expired.
 *
 * @since 0.1.0
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
 *
 * @since 0.1.0
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
 *
 * @since 0.1.0
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
 *
 * @since 0.1.0
 */
export class SameAccount extends Schema.TaggedError<SameAccount>()("SameAccount", { account: Schema.String }) {
  override get message() {
    return `Cannot transfer from account ${this.account} to itself`
  }
}

/**
 * An amount that is not a positive safe integer of minor units, or a threshold that is not a non-negative one.
 *
 * @since 0.1.0
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
 *
 * @since 0.1.0
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
 *
 * @since 0.1.0
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
 *
 * @since 0.1.0
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
 *
 * @since 0.1.0
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
 *
 * @since 0.1.0
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
 * Folds one event into a transfer's state.
 *
 * @since 0.1.0
 */
export const evolve = (state: TransferState, event: TransferEvent): TransferState => {
  if (event._tag === "TransferInitiated") {
    return TransferInfo.make({
      status: event.requiresApproval ? "AwaitingApproval" : "Initiated",
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
  switch (event._tag) {
    case "TransferApproved":
      return { ...state, status: "Approved", approvedBy: event.by }
    case "TransferRejected":
      return { ...state, status: "Rejected", failure: event.reason }
    case "TransferExpired":
      return { ...state, status: "Expired", failure: event.reason }
    case "TransferDebited":
      return { ...state, status: "Debited", debited: true }
    case "TransferDebitFailed":
      return { ...state, status: "Failed", failure: event.reason }
    case "TransferCompleted":
      return { ...state, status: "Completed" }
    case "TransferCreditFailed":
      return { ...state, status: "Compensating", failure: event.reason }
    case "TransferCompensated":
      return { ...state, status: "Failed" }
  }
}

/**
 * The transfer's decider. Finished transfers are terminal.
 *
 * @since 0.1.0
 */
export const decider = Decider.make({ initialState, decide, evolve, isTerminal: isFinished })

/**
 * The Transfer aggregate: stream `Transfer-<id>`, snapshotted every 100 events (a transfer seldom has ten, but a
 * finished one is snapshotted at once, being terminal).
 *
 * @since 0.1.0
 */
export const Transfer = Aggregate.make({
  category: "Transfer",
  events: TransferEvent,
  decider,
  snapshot: { schema: TransferState, version: 1, every: 100 }
})
