/**
 * Loading accounts and transfers through their services for the handlers: existence (404), ownership (403) and the
 * command-side views used when a read model is late.
 */
import { DateTime, Effect, Option } from "effect"
import type { Accounts, Transfers } from "../app/Aggregates.ts"
import type * as Account from "../domain/Account.ts"
import * as Money from "../domain/Money.ts"
import type * as Transfer from "../domain/Transfer.ts"
import type { AccountSummary, TransferSummary } from "../readmodels/ReadModels.ts"
import { mapErrors, NotFound, type Problem } from "./Problems.ts"

/**
 * An opened account with its version.
 */
export interface LoadedAccount {
  readonly accountId: string
  readonly state: Account.Opened
  readonly version: number
}

/**
 * Account `id` as it is now, archived or not; 404 when it was never opened (or `id` cannot name an account).
 */
export const loadAccount = (accounts: Accounts["Service"], id: string): Effect.Effect<LoadedAccount, Problem> =>
  Effect.gen(function* () {
    const loaded = yield* accounts.load(id, { includeArchived: true })
    if (loaded.state._tag !== "Opened") return yield* new NotFound({ code: "NotFound", detail: `No account ${id}` })
    return { accountId: id, state: loaded.state, version: loaded.version }
  }).pipe(mapErrors({ what: `account ${id}` }))

/**
 * An initiated transfer with its version.
 */
export interface LoadedTransfer {
  readonly transferId: string
  readonly state: Transfer.TransferInfo
  readonly version: number
}

/**
 * Transfer `id` as it is now; 404 when it was never initiated (or `id` cannot name a transfer).
 */
export const loadTransfer = (transfers: Transfers["Service"], id: string): Effect.Effect<LoadedTransfer, Problem> =>
  Effect.gen(function* () {
    const loaded = yield* transfers.load(id, { includeArchived: true })
    if (loaded.state._tag !== "Transfer") {
      return yield* new NotFound({ code: "NotFound", detail: `No transfer ${id}` })
    }
    return { transferId: id, state: loaded.state, version: loaded.version }
  }).pipe(mapErrors({ what: `transfer ${id}` }))

const timestamps = (service: Accounts["Service"] | Transfers["Service"], id: string) =>
  service.info(id).pipe(
    Effect.map(
      Option.match({
        onNone: () => ({ created: "", updated: "" }),
        onSome: (info) => ({ created: DateTime.formatIso(info.createdAt), updated: DateTime.formatIso(info.updatedAt) })
      })
    ),
    Effect.orElseSucceed(() => ({ created: "", updated: "" }))
  )

/**
 * The summary of an account from the command side (its state and stream info), for when the read model is late.
 */
export const accountSummary = (
  accounts: Accounts["Service"],
  accountId: string,
  state: Account.AccountState,
  version: number
): Effect.Effect<AccountSummary> =>
  Effect.map(timestamps(accounts, accountId), (at) => ({
    accountId,
    owner: state._tag === "Opened" ? state.owner : "",
    currency: state._tag === "Opened" ? state.currency : "",
    decimals: state._tag === "Opened" ? Money.decimals(state.currency) : 2,
    balance: state._tag === "Opened" ? state.balance : 0,
    status: state._tag === "Opened" ? state.status : "Active",
    version,
    openedAt: at.created,
    updatedAt: at.updated
  }))

/**
 * The summary of a transfer from the command side, for when the read model is late.
 */
export const transferSummary = (
  transfers: Transfers["Service"],
  transferId: string,
  state: Transfer.TransferInfo,
  version: number
): Effect.Effect<TransferSummary> =>
  Effect.map(timestamps(transfers, transferId), (at) => ({
    transferId,
    from: state.from,
    to: state.to,
    amount: state.amount,
    currency: state.currency,
    decimals: Money.decimals(state.currency),
    reference: state.reference,
    status: state.status,
    initiatedBy: state.initiatedBy,
    approvedBy: state.approvedBy,
    failure: state.failure,
    version,
    initiatedAt: at.created,
    updatedAt: at.updated
  }))

/**
 * The withdrawals and fees of an account waiting for a second person, from its state (the command side holds them;
 * no read model does).
 */
export const pendingOutflows = (accountId: string, state: Account.Opened) =>
  Object.entries(state.pendingOutflows).map(([requestId, pending]) => ({
    accountId,
    requestId,
    kind: pending.kind,
    amount: pending.amount,
    currency: state.currency,
    decimals: Money.decimals(state.currency),
    text: pending.text,
    requestedBy: pending.requestedBy,
    approvalThreshold: pending.approvalThreshold,
    status: "AwaitingApproval" as const
  }))
