/**
 * The transfer process: a reactor (a Facta projection whose "read model" is commands to other aggregates) that
 * moves the money of a transfer once it may move, and compensates when it cannot arrive.
 *
 * | transfer event                                   | when the transfer is | command(s)                                                                  |
 * | ------------------------------------------------ | -------------------- | --------------------------------------------------------------------------- |
 * | `TransferInitiated` (no approval needed), `TransferApproved` | `Initiated`/`Approved` | `DebitForTransfer` on the source, then `MarkDebited`, or `MarkDebitFailed` if refused |
 * | `TransferDebited`                                | `Debited`            | `CreditForTransfer` on the target, then `MarkCredited`, or `MarkCreditFailed` if refused |
 * | `TransferCreditFailed`                           | `Compensating`       | `ReverseDebit` on the source, then `MarkCompensated`                        |
 * | `TransferCompleted`                              | `Completed`          | `SettleDebit` on the source (the debit can no longer be reversed)           |
 *
 * The process reads only transfer events: it learns whether an account accepted a step from the result of the
 * command itself (an account refusal is a typed error), so it needs no account events.
 *
 * **Idempotency.** Projections deliver at least once: after a crash between a command and the checkpoint, an event
 * is handled again, and any prefix of its commands may already be stored. Three things make that harmless:
 *
 * 1. every command is handled with `causedBy` the id of the event that caused it (one command per stream and
 *    event): the ids of the events it appends are derived from that id, so a command handled again for the same
 *    event appends nothing and gets its first result back, even when the stream moved on meanwhile;
 * 2. every command it issues is idempotent in its decider too: the account remembers each transfer id it debited,
 *    credited, reversed or settled, and decides no events for a step already done (whoever did it); the transfer
 *    decides no events for a `Mark*` step it is already at or past;
 * 3. it acts on the transfer's *current* state, loaded afresh for every event, not on the event alone: an event whose
 *    step the transfer has moved past (for instance a `TransferApproved` handled again after the debit was refused
 *    and marked failed, when the money has arrived since) does nothing, so a refusal is never turned into a late
 *    debit.
 *
 * Together: handling any event any number of times, in any crash pattern, appends each step's events once.
 *
 * Every command carries metadata: actor `transfer-process`; the correlation id of the request that initiated the
 * transfer (the client's `X-Correlation-Id`, or the transfer id when it had none), so that one id follows the
 * transfer through every event the process appends; attributes `onBehalfOf` (who initiated the transfer) and
 * `approvedBy` (who approved it, when it needed an approval), so that an account's audit trail shows for whom the
 * process moved its money; and causation id the id of the event that caused it (set by `causedBy`).
 *
 * Account refusals (any `AccountError`) are outcomes of the process and are recorded on the transfer; other failures
 * (storage, concurrency beyond the retries, a refused compensation) fail the handler, so that the projection retries
 * and then stops (or parks the event) for an operator.
 */
import type { Event } from "@facta/core"
import { EventCodec, Projection, StreamId } from "@facta/core"
import { Effect, Schema, Stream } from "effect"
import * as Account from "../domain/Account.ts"
import * as Transfer from "../domain/Transfer.ts"
import { Accounts, Transfers } from "./Aggregates.ts"

/**
 * The transfer events the process reacts to.
 */
export const ProcessEvent = Schema.Union([
  Transfer.TransferInitiated,
  Transfer.TransferApproved,
  Transfer.TransferDebited,
  Transfer.TransferCreditFailed,
  Transfer.TransferCompleted
])

export type ProcessEvent = typeof ProcessEvent.Type

/**
 * The actor recorded on every event the process causes.
 */
export const actor = "transfer-process"

const accountErrorTags: ReadonlySet<string> = new Set<Account.AccountError["_tag"]>([
  "AccountNotOpened",
  "AccountAlreadyOpened",
  "AccountIsClosed",
  "AccountIsFrozen",
  "InsufficientFunds",
  "CurrencyMismatch",
  "InvalidAmount",
  "BalanceLimitExceeded",
  "BalanceNotZero",
  "TransfersInFlight",
  "TransferStepConflict",
  "NoTransferDebit",
  "DepositLimitExceeded",
  "FourEyesRequired",
  "OutflowNotPending",
  "OutflowAlreadyRequested",
  "OutflowsPending"
])

/**
 * Whether a failure is an account's domain error (a refusal), as opposed to an infrastructure failure.
 */
export const isAccountError = (u: unknown): u is Account.AccountError =>
  typeof u === "object" && u !== null && "_tag" in u && accountErrorTags.has(String(u._tag))

/**
 * The metadata of the commands the process issues for `transfer` (the id of the event that caused them becomes their
 * causation id through `causedBy`): the transfer's correlation id, and on whose behalf the process acts.
 */
export const metadataFor = (transfer: Transfer.TransferInfo, correlationId: string): Event.EventMetadata => ({
  actor,
  correlationId,
  attributes: {
    onBehalfOf: transfer.initiatedBy,
    ...(transfer.approvedBy === null ? {} : { approvedBy: transfer.approvedBy })
  }
})

/**
 * The correlation id of the request that initiated the transfer. The initiation and the events the process appends
 * carry it already; an approval carries the approver's own request's, so for it the initiation is read back.
 */
const originCorrelation = Effect.fnUntraced(function* (event: Event.RecordedEvent<ProcessEvent>, transferId: string) {
  if (event.data._tag !== "TransferApproved") return event.metadata.correlationId ?? transferId
  const transfers = yield* Transfers
  const [initiated] = yield* Stream.runCollect(transfers.events(transferId, { limit: 1 }))
  return initiated?.metadata.correlationId ?? transferId
})

/**
 * Handles one transfer event (see the module documentation).
 */
export const handle = Effect.fn("TransferProcess.handle")(function* (event: Event.RecordedEvent<ProcessEvent>) {
  const accounts = yield* Accounts
  const transfers = yield* Transfers
  const transferId = StreamId.entityId(event.streamId)
  const { state } = yield* transfers.load(transferId)
  if (state._tag !== "Transfer") return
  // one command per stream for this event: the transfer's, and one account's
  const options = {
    metadata: metadataFor(state, yield* originCorrelation(event, transferId)),
    causedBy: event.eventId
  }

  const onTransfer = (command: Transfer.TransferCommand) => transfers.handle(transferId, command, options)
  const onAccount = (accountId: string, command: Account.AccountCommand) => accounts.handle(accountId, command, options)
  const details = { transferId, amount: state.amount, currency: state.currency, reference: state.reference }

  switch (event.data._tag) {
    case "TransferInitiated":
    case "TransferApproved": {
      if (event.data._tag === "TransferInitiated" && event.data.requiresApproval) return
      if (!Transfer.isReadyToDebit(state)) return
      yield* onAccount(state.from, Account.DebitForTransfer.make(details)).pipe(
        Effect.andThen(onTransfer(Transfer.MarkDebited.make({}))),
        Effect.catchIf(isAccountError, (refusal) =>
          onTransfer(Transfer.MarkDebitFailed.make({ reason: refusal.message }))
        )
      )
      return
    }
    case "TransferDebited": {
      if (state.status !== "Debited") return
      yield* onAccount(state.to, Account.CreditForTransfer.make(details)).pipe(
        Effect.andThen(onTransfer(Transfer.MarkCredited.make({}))),
        Effect.catchIf(isAccountError, (refusal) =>
          onTransfer(Transfer.MarkCreditFailed.make({ reason: refusal.message }))
        )
      )
      return
    }
    case "TransferCreditFailed": {
      if (state.status !== "Compensating") return
      yield* onAccount(
        state.from,
        Account.ReverseDebit.make({ transferId, reason: state.failure ?? "the credit was refused" })
      )
      yield* onTransfer(Transfer.MarkCompensated.make({}))
      return
    }
    case "TransferCompleted": {
      if (state.status !== "Completed") return
      yield* onAccount(state.from, Account.SettleDebit.make({ transferId }))
      return
    }
  }
})

/**
 * The transfer process as a projection named `transfer-process`, reading the `Transfer` category. Run it with
 * `Projection.run` next to the command side; it needs the `Accounts` and `Transfers` services, an `EventStore` and a
 * `CheckpointStore`.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { CheckpointStore, EventStore, Projection, Snapshot } from "@facta/core"
 * import { TransferProcess } from "@facta/example-bank"
 * import * as Aggregates from "@facta/example-bank/app/Aggregates"
 *
 * const stores = Layer.mergeAll(EventStore.layerMemory, Snapshot.layerMemory, CheckpointStore.layerMemory)
 * const running = Projection.run(TransferProcess.TransferProcess).pipe(
 *   Effect.provide(Aggregates.layer.pipe(Layer.provideMerge(stores)))
 * )
 * ```
 */
export const TransferProcess = Projection.make({
  name: "transfer-process",
  events: EventCodec.make(ProcessEvent),
  categories: ["Transfer"],
  handle
})
