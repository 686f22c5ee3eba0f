/**
 * The domain errors of the Account aggregate: every way `Account.decide` refuses a command. `Account.ts` re-exports
 * them, so `Account.InsufficientFunds` names the same class.
 */
import { Schema } from "effect"
import * as Money from "./Money.ts"

/**
 * A command other than `Open` for an account that was never opened.
 */
export class AccountNotOpened extends Schema.TaggedError<AccountNotOpened>()("AccountNotOpened", {
  command: Schema.String
}) {
  override get message() {
    return `Cannot ${this.command}: the account has not been opened`
  }
}

/**
 * `Open` for an account that is already open.
 */
export class AccountAlreadyOpened extends Schema.TaggedError<AccountAlreadyOpened>()("AccountAlreadyOpened", {
  owner: Schema.String
}) {
  override get message() {
    return `The account is already open (owner ${this.owner})`
  }
}

/**
 * Any command for a closed account.
 */
export class AccountIsClosed extends Schema.TaggedError<AccountIsClosed>()("AccountIsClosed", {
  command: Schema.String
}) {
  override get message() {
    return `Cannot ${this.command}: the account is closed`
  }
}

/**
 * A debit (or closing) of a frozen account.
 */
export class AccountIsFrozen extends Schema.TaggedError<AccountIsFrozen>()("AccountIsFrozen", {
  command: Schema.String
}) {
  override get message() {
    return `Cannot ${this.command}: the account is frozen`
  }
}

/**
 * A debit of more than the balance.
 */
export class InsufficientFunds extends Schema.TaggedError<InsufficientFunds>()("InsufficientFunds", {
  currency: Schema.String,
  balance: Schema.Int,
  requested: Schema.Int
}) {
  override get message() {
    const currency = this.currency as Money.Currency
    return `Insufficient funds: the balance is ${Money.formatWithCode(this.balance as Money.Amount, currency)}, ${Money.formatWithCode(this.requested as Money.Amount, currency)} was requested`
  }
}

/**
 * Money in another currency than the account's.
 */
export class CurrencyMismatch extends Schema.TaggedError<CurrencyMismatch>()("CurrencyMismatch", {
  account: Schema.String,
  requested: Schema.String
}) {
  override get message() {
    return `The account holds ${this.account}, not ${this.requested}`
  }
}

/**
 * An amount that is not a positive safe integer of minor units (an initial deposit that is not a non-negative one).
 */
export class InvalidAmount extends Schema.TaggedError<InvalidAmount>()("InvalidAmount", { amount: Schema.Number }) {
  override get message() {
    return `${this.amount} is not a valid amount of minor units`
  }
}

/**
 * A credit that would take the balance past the largest safe integer.
 */
export class BalanceLimitExceeded extends Schema.TaggedError<BalanceLimitExceeded>()("BalanceLimitExceeded", {
  balance: Schema.Int,
  amount: Schema.Int
}) {
  override get message() {
    return `A credit of ${this.amount} would take the balance of ${this.balance} past the largest amount`
  }
}

/**
 * `Close` while the account still holds money.
 */
export class BalanceNotZero extends Schema.TaggedError<BalanceNotZero>()("BalanceNotZero", {
  currency: Schema.String,
  balance: Schema.Int
}) {
  override get message() {
    return `Cannot close: the balance is ${Money.formatWithCode(this.balance as Money.Amount, this.currency as Money.Currency)}, not zero`
  }
}

/**
 * `Close` while a transfer debited from the account may still be reversed into it.
 */
export class TransfersInFlight extends Schema.TaggedError<TransfersInFlight>()("TransfersInFlight", {
  transferIds: Schema.Array(Schema.String)
}) {
  override get message() {
    return `Cannot close: transfer(s) ${this.transferIds.join(", ")} may still be reversed into the account`
  }
}

/**
 * A transfer step whose transfer id the account already used for another step or another amount.
 */
export class TransferStepConflict extends Schema.TaggedError<TransferStepConflict>()("TransferStepConflict", {
  transferId: Schema.String,
  command: Schema.String,
  recorded: Schema.String,
  recordedAmount: Schema.Int
}) {
  override get message() {
    return `Cannot ${this.command} for transfer ${this.transferId}: the account recorded it as ${this.recorded} of ${this.recordedAmount}`
  }
}

/**
 * `ReverseDebit` or `SettleDebit` for a transfer the account never debited.
 */
export class NoTransferDebit extends Schema.TaggedError<NoTransferDebit>()("NoTransferDebit", {
  transferId: Schema.String,
  command: Schema.String
}) {
  override get message() {
    return `Cannot ${this.command}: the account has no debit for transfer ${this.transferId}`
  }
}

/**
 * A deposit (or an opening deposit) above the per-deposit limit of the teller or admin who books it.
 */
export class DepositLimitExceeded extends Schema.TaggedError<DepositLimitExceeded>()("DepositLimitExceeded", {
  currency: Schema.String,
  amount: Schema.Int,
  limit: Schema.Int
}) {
  override get message() {
    const currency = this.currency as Money.Currency
    return `Deposit limit: a single deposit may be at most ${Money.formatWithCode(this.limit as Money.Amount, currency)}, ${Money.formatWithCode(this.amount as Money.Amount, currency)} was asked`
  }
}

/**
 * The requester of an outflow approving or rejecting it: a large outflow needs a second person.
 */
export class FourEyesRequired extends Schema.TaggedError<FourEyesRequired>()("FourEyesRequired", {
  requestId: Schema.String,
  actor: Schema.String
}) {
  override get message() {
    return `Four-eyes rule: ${this.actor} requested outflow ${this.requestId} and cannot review it; a second person must`
  }
}

/**
 * `ApproveOutflow` or `RejectOutflow` for a request that is not waiting (never made, or already decided).
 */
export class OutflowNotPending extends Schema.TaggedError<OutflowNotPending>()("OutflowNotPending", {
  requestId: Schema.String,
  command: Schema.String
}) {
  override get message() {
    return `Cannot ${this.command}: no outflow ${this.requestId} is waiting for approval on this account`
  }
}

/**
 * A withdrawal or fee whose request id the account already has waiting.
 */
export class OutflowAlreadyRequested extends Schema.TaggedError<OutflowAlreadyRequested>()("OutflowAlreadyRequested", {
  requestId: Schema.String
}) {
  override get message() {
    return `Outflow ${this.requestId} was already requested and is waiting for approval`
  }
}

/**
 * `Close` while outflows wait for approval.
 */
export class OutflowsPending extends Schema.TaggedError<OutflowsPending>()("OutflowsPending", {
  requestIds: Schema.Array(Schema.String)
}) {
  override get message() {
    return `Cannot close: outflow(s) ${this.requestIds.join(", ")} wait for approval; approve or reject them first`
  }
}

/**
 * Every domain error of an account.
 */
export type AccountError =
  | AccountNotOpened
  | AccountAlreadyOpened
  | AccountIsClosed
  | AccountIsFrozen
  | InsufficientFunds
  | CurrencyMismatch
  | InvalidAmount
  | BalanceLimitExceeded
  | BalanceNotZero
  | TransfersInFlight
  | TransferStepConflict
  | NoTransferDebit
  | DepositLimitExceeded
  | FourEyesRequired
  | OutflowNotPending
  | OutflowAlreadyRequested
  | OutflowsPending
