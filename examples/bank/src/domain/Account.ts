/**
 * The Account aggregate (stream category `Account`): a single-currency account holding exact money, with no
 * overdraft.
 *
 * Rules:
 *
 * - `Open` once, in one currency, with an optional initial deposit; every later money command must name the same
 *   currency (`CurrencyMismatch` otherwise).
 * - Debits (`Withdraw`, `ChargeFee`, `DebitForTransfer`) never take the balance below zero (`InsufficientFunds`).
 * - Four eyes: a `Withdraw` or `ChargeFee` above its `approvalThreshold` moves no money; it is recorded as requested
 *   and waits until someone other than its requester approves it (`ApproveOutflow`, which moves the money after the
 *   same checks as any debit) or rejects it (`RejectOutflow`); see `Outflow.ts`. `Close` waits until none is left.
 * - A `Deposit` (and an initial deposit) may not exceed the `depositLimit` it carries: the limit of the teller or admin
 *   who books it. Money enters an account only through a teller or an admin: the API refuses a customer's deposit,
 *   and a customer's opening deposit, before any command (`Auth.requireDeposit`), and would give any other role a
 *   limit of 0, so that nobody can credit themselves money.
 * - A frozen account refuses every debit with `AccountFrozen` but still accepts credits (`Deposit`,
 *   `CreditForTransfer`, `ReverseDebit`): a hold stops money leaving, and refusing incoming money or the return of a
 *   reversed transfer would only strand it elsewhere. `SettleDebit` (bookkeeping, no money moves) is accepted too.
 * - A closed account refuses everything with `AccountClosed`; `Close` needs a zero balance, an unfrozen account and
 *   no transfer debit still in flight (one that could yet be reversed into it).
 * - The transfer steps are idempotent per transfer id: the account remembers each transfer it took part in, so
 *   `DebitForTransfer`, `CreditForTransfer`, `ReverseDebit` and `SettleDebit` for a transfer whose step is already
 *   done decide no events. The transfer process relies on this to be safe to run again after a crash. The record
 *   (one small entry per transfer, kept in the state and its snapshots) grows with the account's transfers; an
 *   account with very many would prune entries of transfers settled longer ago than any replay can reach.
 *
 * Every event that moves money carries its `amount`; the balance is the signed sum of those amounts (see
 * {@link signedAmount}).
 */
import { Aggregate, Decider } from "@facta/core"
import { Effect, Schema } from "effect"
import {
  AccountAlreadyOpened,
  type AccountError,
  AccountIsClosed,
  AccountIsFrozen,
  AccountNotOpened,
  BalanceLimitExceeded,
  BalanceNotZero,
  CurrencyMismatch,
  DepositLimitExceeded,
  FourEyesRequired,
  InsufficientFunds,
  InvalidAmount,
  NoTransferDebit,
  OutflowAlreadyRequested,
  OutflowNotPending,
  OutflowsPending,
  TransferStepConflict,
  TransfersInFlight
} from "./AccountErrors.ts"
import * as Money from "./Money.ts"
import {
  ApproveOutflow,
  OutflowApproved,
  OutflowRejected,
  OutflowRequested,
  PendingOutflow,
  RejectOutflow
} from "./Outflow.ts"

export * from "./AccountErrors.ts"
export { ApproveOutflow, OutflowApproved, OutflowRejected, OutflowRequested, RejectOutflow } from "./Outflow.ts"

const Text = Schema.String
const TransferId = Schema.NonEmptyString

// Events

/**
 * The account was opened, in `currency`, with `initialDeposit` minor units (possibly 0).
 */
export const AccountOpened = Schema.TaggedStruct("AccountOpened", {
  owner: Schema.NonEmptyString,
  currency: Money.Currency,
  initialDeposit: Money.Amount
})

/**
 * Money paid in.
 */
export const MoneyDeposited = Schema.TaggedStruct("MoneyDeposited", {
  amount: Money.PositiveAmount,
  reference: Text
})

/**
 * Money paid out.
 */
export const MoneyWithdrawn = Schema.TaggedStruct("MoneyWithdrawn", {
  amount: Money.PositiveAmount,
  reference: Text,
  /** The approved request it carries out, when it was above the approval threshold. */
  requestId: Schema.optionalKey(Schema.NonEmptyString)
})

/**
 * A fee taken by the bank.
 */
export const FeeCharged = Schema.TaggedStruct("FeeCharged", {
  amount: Money.PositiveAmount,
  reason: Text,
  /** The approved request it carries out, when it was above the approval threshold. */
  requestId: Schema.optionalKey(Schema.NonEmptyString)
})

/**
 * The source side of a transfer: money left the account for transfer `transferId`.
 */
export const AccountDebitedForTransfer = Schema.TaggedStruct("AccountDebitedForTransfer", {
  transferId: TransferId,
  amount: Money.PositiveAmount,
  reference: Text
})

/**
 * The target side of a transfer: money arrived for transfer `transferId`.
 */
export const AccountCreditedForTransfer = Schema.TaggedStruct("AccountCreditedForTransfer", {
  transferId: TransferId,
  amount: Money.PositiveAmount,
  reference: Text
})

/**
 * Compensation: the debit of transfer `transferId` was given back because the transfer could not be credited.
 */
export const TransferDebitReversed = Schema.TaggedStruct("TransferDebitReversed", {
  transferId: TransferId,
  amount: Money.PositiveAmount,
  reason: Text
})

/**
 * The transfer `transferId` completed: its debit can no longer be reversed. Moves no money.
 */
export const TransferDebitSettled = Schema.TaggedStruct("TransferDebitSettled", { transferId: TransferId })

/**
 * Debits are refused until the account is unfrozen.
 */
export const AccountFrozen = Schema.TaggedStruct("AccountFrozen", { reason: Text })

/**
 * Debits are accepted again.
 */
export const AccountUnfrozen = Schema.TaggedStruct("AccountUnfrozen", { reason: Text })

/**
 * The account is closed for good.
 */
export const AccountClosed = Schema.TaggedStruct("AccountClosed", { reason: Text })

/**
 * Every event of an account.
 */
export const AccountEvent = Schema.Union([
  AccountOpened,
  MoneyDeposited,
  MoneyWithdrawn,
  FeeCharged,
  AccountDebitedForTransfer,
  AccountCreditedForTransfer,
  TransferDebitReversed,
  TransferDebitSettled,
  AccountFrozen,
  AccountUnfrozen,
  AccountClosed,
  OutflowRequested,
  OutflowApproved,
  OutflowRejected
])

export type AccountEvent = typeof AccountEvent.Type

/**
 * The money an event moved into (positive) or out of (negative) the account; 0 for events that move none. The
 * balance is always the sum of this over the account's events.
 */
export const signedAmount = (event: AccountEvent): number => {
  switch (event._tag) {
    case "AccountOpened":
      return event.initialDeposit
    case "MoneyDeposited":
    case "AccountCreditedForTransfer":
    case "TransferDebitReversed":
      return event.amount
    case "MoneyWithdrawn":
    case "FeeCharged":
    case "AccountDebitedForTransfer":
      return -event.amount
    case "TransferDebitSettled":
    case "AccountFrozen":
    case "AccountUnfrozen":
    case "AccountClosed":
    case "OutflowRequested":
    case "OutflowApproved":
    case "OutflowRejected":
      return 0
  }
}

// Commands

/**
 * Opens the account.
 */
export const Open = Schema.TaggedStruct("Open", {
  owner: Schema.NonEmptyString,
  currency: Money.Currency,
  initialDeposit: Schema.optionalKey(Money.Amount),
  /**
   * The largest initial deposit whoever opens may book: a teller's or an admin's limit, 0 for anyone else (none: the
   * bank's own opening, with no limit).
   */
  depositLimit: Schema.optionalKey(Money.Amount)
})

/**
 * Pays money in: at most `depositLimit` (the per-deposit limit of the teller or admin who books it).
 */
export const Deposit = Schema.TaggedStruct("Deposit", {
  amount: Money.PositiveAmount,
  currency: Money.Currency,
  reference: Text,
  depositLimit: Money.Amount
})

/**
 * What a withdrawal or a fee names besides its money: who asks, the threshold above which a second person must
 * approve, and the id the request waits under when it must.
 */
const outflowFields = {
  requestId: Schema.NonEmptyString,
  requestedBy: Schema.NonEmptyString,
  approvalThreshold: Money.Amount
}

/**
 * Pays money out; above `approvalThreshold` it waits for a second person's approval.
 */
export const Withdraw = Schema.TaggedStruct("Withdraw", {
  amount: Money.PositiveAmount,
  currency: Money.Currency,
  reference: Text,
  ...outflowFields
})

/**
 * Takes a fee; above `approvalThreshold` it waits for a second person's approval.
 */
export const ChargeFee = Schema.TaggedStruct("ChargeFee", {
  amount: Money.PositiveAmount,
  currency: Money.Currency,
  reason: Text,
  ...outflowFields
})

/**
 * Stops debits.
 */
export const Freeze = Schema.TaggedStruct("Freeze", { reason: Text })

/**
 * Allows debits again.
 */
export const Unfreeze = Schema.TaggedStruct("Unfreeze", { reason: Text })

/**
 * Closes the account; only at a zero balance.
 */
export const Close = Schema.TaggedStruct("Close", { reason: Text })

/**
 * The first step of a transfer out: takes the amount from this (the source) account.
 */
export const DebitForTransfer = Schema.TaggedStruct("DebitForTransfer", {
  transferId: TransferId,
  amount: Money.PositiveAmount,
  currency: Money.Currency,
  reference: Text
})

/**
 * The second step of a transfer: pays the amount into this (the target) account.
 */
export const CreditForTransfer = Schema.TaggedStruct("CreditForTransfer", {
  transferId: TransferId,
  amount: Money.PositiveAmount,
  currency: Money.Currency,
  reference: Text
})

/**
 * Compensation of a transfer that could not be credited: gives its debit back to this (the source) account.
 */
export const ReverseDebit = Schema.TaggedStruct("ReverseDebit", {
  transferId: TransferId,
  reason: Text
})

/**
 * Marks the debit of a completed transfer as final, so that it no longer keeps the account from closing.
 */
export const SettleDebit = Schema.TaggedStruct("SettleDebit", { transferId: TransferId })

/**
 * Every command of an account.
 */
export const AccountCommand = Schema.Union([
  Open,
  Deposit,
  Withdraw,
  ChargeFee,
  Freeze,
  Unfreeze,
  Close,
  DebitForTransfer,
  CreditForTransfer,
  ReverseDebit,
  SettleDebit,
  ApproveOutflow,
  RejectOutflow
])

export type AccountCommand = typeof AccountCommand.Type

// State

/**
 * What the account remembers of one transfer it took part in: as the source, `Debited` until the transfer settles
 * (`Settled`) or is compensated (`Reversed`); as the target, `Credited`.
 */
export const TransferStep = Schema.Struct({
  step: Schema.Literals(["Debited", "Settled", "Reversed", "Credited"]),
  amount: Money.Amount
})

export type TransferStep = typeof TransferStep.Type

/**
 * An account that has not been opened.
 */
export const Unopened = Schema.TaggedStruct("Unopened", {})

/**
 * An opened account: `Active`, `Frozen` or `Closed`, with its balance and the transfers it took part in (by id).
 */
export const Opened = Schema.TaggedStruct("Opened", {
  status: Schema.Literals(["Active", "Frozen", "Closed"]),
  owner: Schema.NonEmptyString,
  currency: Money.Currency,
  balance: Money.Amount,
  transfers: Schema.Record(Schema.String, TransferStep),
  /** Withdrawals and fees waiting for a second person, by request id. */
  pendingOutflows: Schema.Record(Schema.String, PendingOutflow)
})

export type Opened = typeof Opened.Type

/**
 * The state of an account; also its snapshot schema.
 */
export const AccountState = Schema.Union([Unopened, Opened])

export type AccountState = typeof AccountState.Type

/**
 * The state of an account no event has touched.
 */
export const initialState: AccountState = Unopened.make({})

// Decider

type Decision = Effect.Effect<ReadonlyArray<AccountEvent>, AccountError>

const accept = (...events: ReadonlyArray<AccountEvent>): Decision => Effect.succeed(events)
const nothing: Decision = Effect.succeed([])

const checkCurrency = (state: Opened, currency: Money.Currency): CurrencyMismatch | undefined =>
  currency === state.currency ? undefined : new CurrencyMismatch({ account: state.currency, requested: currency })

/** Checks a credit: amount, currency and the balance limit. */
const checkCredit = (state: Opened, amount: number, currency: Money.Currency): AccountError | undefined => {
  if (!Money.isPositiveAmount(amount)) return new InvalidAmount({ amount })
  const mismatch = checkCurrency(state, currency)
  if (mismatch !== undefined) return mismatch
  if (Money.add(state.balance, amount) === undefined) {
    return new BalanceLimitExceeded({ balance: state.balance, amount })
  }
  return undefined
}

/** Checks a debit: frozen, amount, currency and funds. */
const checkDebit = (
  state: Opened,
  command: string,
  amount: number,
  currency: Money.Currency
): AccountError | undefined => {
  if (state.status === "Frozen") return new AccountIsFrozen({ command })
  if (!Money.isPositiveAmount(amount)) return new InvalidAmount({ amount })
  const mismatch = checkCurrency(state, currency)
  if (mismatch !== undefined) return mismatch
  if (amount > state.balance) {
    return new InsufficientFunds({ currency: state.currency, balance: state.balance, requested: amount })
  }
  return undefined
}

/** Checks a deposit against the credit rules and the depositor's limit. */
const checkDeposit = (state: Opened, amount: number, currency: Money.Currency, limit: number) => {
  const error = checkCredit(state, amount, currency)
  if (error !== undefined) return error
  return amount > limit ? new DepositLimitExceeded({ currency: state.currency, amount, limit }) : undefined
}

const either = (error: AccountError | undefined, events: () => ReadonlyArray<AccountEvent>): Decision =>
  error === undefined ? Effect.succeed(events()) : Effect.fail(error)

const conflict = (transferId: string, command: string, recorded: TransferStep) =>
  Effect.fail(
    new TransferStepConflict({ transferId, command, recorded: recorded.step, recordedAmount: recorded.amount })
  )

/** The event that moves the money of an outflow (at once, or once approved). */
const executeOutflow = (
  kind: PendingOutflow["kind"],
  amount: Money.Amount,
  text: string,
  requestId?: string
): AccountEvent => {
  const approved = requestId === undefined ? {} : { requestId }
  return kind === "Withdrawal"
    ? MoneyWithdrawn.make({ amount, reference: text, ...approved })
    : FeeCharged.make({ amount, reason: text, ...approved })
}

/**
 * A withdrawal or fee: refused as any debit would be (so that a request the account cannot pay now never waits),
 * then executed at or below the threshold, or recorded as waiting for a second person above it.
 */
const decideOutflow = (command: typeof Withdraw.Type | typeof ChargeFee.Type, state: Opened): Decision => {
  const refusal = checkDebit(state, command._tag, command.amount, command.currency)
  if (refusal !== undefined) return Effect.fail(refusal)
  if (!Money.isAmount(command.approvalThreshold)) {
    return Effect.fail(new InvalidAmount({ amount: command.approvalThreshold }))
  }
  const kind = command._tag === "Withdraw" ? "Withdrawal" : "Fee"
  const text = command._tag === "Withdraw" ? command.reference : command.reason
  if (command.amount <= command.approvalThreshold) return accept(executeOutflow(kind, command.amount, text))
  if (state.pendingOutflows[command.requestId] !== undefined) {
    return Effect.fail(new OutflowAlreadyRequested({ requestId: command.requestId }))
  }
  return accept(
    OutflowRequested.make({
      requestId: command.requestId,
      kind,
      amount: command.amount,
      text,
      requestedBy: command.requestedBy,
      approvalThreshold: command.approvalThreshold
    })
  )
}

/**
 * Approving or rejecting a waiting outflow: only by a second person; an approval moves the money, after the checks
 * of any debit at that moment (the balance may have changed since the request).
 */
const decideReview = (command: typeof ApproveOutflow.Type | typeof RejectOutflow.Type, state: Opened): Decision => {
  const pending = state.pendingOutflows[command.requestId]
  if (pending === undefined) {
    return Effect.fail(new OutflowNotPending({ requestId: command.requestId, command: command._tag }))
  }
  if (command.by === pending.requestedBy) {
    return Effect.fail(new FourEyesRequired({ requestId: command.requestId, actor: command.by }))
  }
  if (command._tag === "RejectOutflow") {
    return accept(OutflowRejected.make({ requestId: command.requestId, by: command.by, reason: command.reason }))
  }
  return either(checkDebit(state, command._tag, pending.amount, state.currency), () => [
    OutflowApproved.make({ requestId: command.requestId, by: command.by }),
    executeOutflow(pending.kind, pending.amount, pending.text, command.requestId)
  ])
}

const decideOpened = (command: AccountCommand, state: Opened): Decision => {
  switch (command._tag) {
    case "Open":
      return Effect.fail(new AccountAlreadyOpened({ owner: state.owner }))
    case "Deposit":
      return either(checkDeposit(state, command.amount, command.currency, command.depositLimit), () => [
        MoneyDeposited.make({ amount: command.amount, reference: command.reference })
      ])
    case "Withdraw":
    case "ChargeFee":
      return decideOutflow(command, state)
    case "ApproveOutflow":
    case "RejectOutflow":
      return decideReview(command, state)
    case "Freeze":
      return state.status === "Frozen" ? nothing : accept(AccountFrozen.make({ reason: command.reason }))
    case "Unfreeze":
      return state.status === "Active" ? nothing : accept(AccountUnfrozen.make({ reason: command.reason }))
    case "Close": {
      if (state.status === "Frozen") return Effect.fail(new AccountIsFrozen({ command: command._tag }))
      if (state.balance !== 0) {
        return Effect.fail(new BalanceNotZero({ currency: state.currency, balance: state.balance }))
      }
      const inFlight = Object.keys(state.transfers).filter((id) => state.transfers[id]?.step === "Debited")
      if (inFlight.length > 0) return Effect.fail(new TransfersInFlight({ transferIds: inFlight }))
      const waiting = Object.keys(state.pendingOutflows)
      if (waiting.length > 0) return Effect.fail(new OutflowsPending({ requestIds: waiting }))
      return accept(AccountClosed.make({ reason: command.reason }))
    }
    case "DebitForTransfer": {
      const recorded = state.transfers[command.transferId]
      if (recorded !== undefined) {
        // the step was done already (a retry): nothing to do, unless the id was used for something else
        return recorded.step !== "Credited" && recorded.amount === command.amount
          ? nothing
          : conflict(command.transferId, command._tag, recorded)
      }
      return either(checkDebit(state, command._tag, command.amount, command.currency), () => [
        AccountDebitedForTransfer.make({
          transferId: command.transferId,
          amount: command.amount,
          reference: command.reference
        })
      ])
    }
    case "CreditForTransfer": {
      const recorded = state.transfers[command.transferId]
      if (recorded !== undefined) {
        return recorded.step === "Credited" && recorded.amount === command.amount
          ? nothing
          : conflict(command.transferId, command._tag, recorded)
      }
      return either(checkCredit(state, command.amount, command.currency), () => [
        AccountCreditedForTransfer.make({
          transferId: command.transferId,
          amount: command.amount,
          reference: command.reference
        })
      ])
    }
    case "ReverseDebit": {
      const recorded = state.transfers[command.transferId]
      if (recorded === undefined || recorded.step === "Credited") {
        return Effect.fail(new NoTransferDebit({ transferId: command.transferId, command: command._tag }))
      }
      if (recorded.step === "Reversed") return nothing
      if (recorded.step === "Settled") return conflict(command.transferId, command._tag, recorded)
      return either(checkCredit(state, recorded.amount, state.currency), () => [
        TransferDebitReversed.make({
          transferId: command.transferId,
          amount: recorded.amount,
          reason: command.reason
        })
      ])
    }
    case "SettleDebit": {
      const recorded = state.transfers[command.transferId]
      if (recorded === undefined || recorded.step === "Credited") {
        return Effect.fail(new NoTransferDebit({ transferId: command.transferId, command: command._tag }))
      }
      if (recorded.step === "Settled") return nothing
      if (recorded.step === "Reversed") return conflict(command.transferId, command._tag, recorded)
      return accept(TransferDebitSettled.make({ transferId: command.transferId }))
    }
  }
}

/**
 * Decides a command against an account's state.
 */
export const decide = (command: AccountCommand, state: AccountState): Decision => {
  if (state._tag === "Unopened") {
    if (command._tag !== "Open") return Effect.fail(new AccountNotOpened({ command: command._tag }))
    const initialDeposit = command.initialDeposit ?? Money.zero
    if (!Money.isAmount(initialDeposit)) return Effect.fail(new InvalidAmount({ amount: initialDeposit }))
    if (command.depositLimit !== undefined && initialDeposit > command.depositLimit) {
      return Effect.fail(
        new DepositLimitExceeded({ currency: command.currency, amount: initialDeposit, limit: command.depositLimit })
      )
    }
    return accept(AccountOpened.make({ owner: command.owner, currency: command.currency, initialDeposit }))
  }
  if (state.status === "Closed") return Effect.fail(new AccountIsClosed({ command: command._tag }))
  return decideOpened(command, state)
}

const record = (state: Opened, transferId: string, step: TransferStep): Opened => ({
  ...state,
  transfers: { ...state.transfers, [transferId]: step }
})

const move = (state: Opened, event: AccountEvent): Opened => ({
  ...state,
  balance: (state.balance + signedAmount(event)) as Money.Amount
})

/**
 * Folds one event into an account's state.
 */
export const evolve = (state: AccountState, event: AccountEvent): AccountState => {
  if (event._tag === "AccountOpened") {
    return Opened.make({
      status: "Active",
      owner: event.owner,
      currency: event.currency,
      balance: event.initialDeposit,
      transfers: {},
      pendingOutflows: {}
    })
  }
  if (state._tag === "Unopened") return state
  switch (event._tag) {
    case "MoneyDeposited":
    case "MoneyWithdrawn":
    case "FeeCharged":
      return move(state, event)
    case "AccountDebitedForTransfer":
      return record(move(state, event), event.transferId, { step: "Debited", amount: event.amount })
    case "AccountCreditedForTransfer":
      return record(move(state, event), event.transferId, { step: "Credited", amount: event.amount })
    case "TransferDebitReversed":
      return record(move(state, event), event.transferId, { step: "Reversed", amount: event.amount })
    case "TransferDebitSettled": {
      const recorded = state.transfers[event.transferId]
      return recorded === undefined ? state : record(state, event.transferId, { ...recorded, step: "Settled" })
    }
    case "AccountFrozen":
      return { ...state, status: "Frozen" }
    case "AccountUnfrozen":
      return { ...state, status: "Active" }
    case "AccountClosed":
      return { ...state, status: "Closed" }
    case "OutflowRequested": {
      const { _tag, requestId, ...pending } = event
      return { ...state, pendingOutflows: { ...state.pendingOutflows, [requestId]: pending } }
    }
    case "OutflowApproved":
    case "OutflowRejected": {
      const { [event.requestId]: _decided, ...rest } = state.pendingOutflows
      return { ...state, pendingOutflows: rest }
    }
  }
}

/**
 * Whether the account is closed: no command can succeed any more.
 */
export const isClosed = (state: AccountState): boolean => state._tag === "Opened" && state.status === "Closed"

/**
 * The account's decider.
 */
export const decider = Decider.make({ initialState, decide, evolve, isTerminal: isClosed })

/**
 * The Account aggregate: stream `Account-<id>`, snapshotted every 100 events.
 *
 * @example
 * ```ts
 * import { CommandHandler } from "@facta/core"
 * import { Account, Money } from "@facta/example-bank"
 *
 * const opened = CommandHandler.handle(Account.Account, "Account-alice", {
 *   _tag: "Open",
 *   owner: "Alice",
 *   currency: Money.Currency.make("USD"),
 *   initialDeposit: Money.Amount.make(10_000)
 * })
 * ```
 */
export const Account = Aggregate.make({
  category: "Account",
  events: AccountEvent,
  decider,
  // version 2: the state holds the outflows waiting for approval; version 1 snapshots are folded from events again
  snapshot: { schema: AccountState, version: 2, every: 100 }
})
