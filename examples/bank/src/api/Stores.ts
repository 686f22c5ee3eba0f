/**
 * Loading accounts and transfers from the store for the handlers: existence (404), ownership (403) and the
 * command-side views used when a read model is late.
 */
import { Aggregate, CommandHandler, EventStore, Snapshot, type StreamId } from "@facta/core"
import { DateTime, Effect, Option } from "effect"
import * as Account from "../domain/Account.ts"
import * as Transfer from "../domain/Transfer.ts"
import type { AccountSummary, TransferSummary } from "../readmodels/ReadModels.ts"
import { mapErrors, NotFound, type Problem } from "./Problems.ts"

/**
 * Takes the event and snapshot stores of the handlers' context, and gives a function that provides them to an effect
 * run later in a handler.
 */
export const withStores = Effect.gen(function* () {
  const store = yield* EventStore.EventStore
  const snapshots = yield* Snapshot.SnapshotStore
  return <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    effect.pipe(
      Effect.provideService(EventStore.EventStore, store),
      Effect.provideService(Snapshot.SnapshotStore, snapshots)
    )
})

/**
 * An opened account with its stream id and version.
 */
export interface LoadedAccount {
  readonly accountId: string
  readonly streamId: StreamId.StreamId
  readonly state: Account.Opened
  readonly version: number
}

/**
 * The stream id of account `id`; 404 when `id` cannot name a stream.
 */
export const accountStream = (id: string) =>
  Aggregate.streamId(Account.Account, id).pipe(mapErrors({ what: `account ${id}` }))

/**
 * The stream id of transfer `id`; 404 when `id` cannot name a stream.
 */
export const transferStream = (id: string) =>
  Aggregate.streamId(Transfer.Transfer, id).pipe(mapErrors({ what: `transfer ${id}` }))

/**
 * Account `id` as it is now, archived or not; 404 when it was never opened.
 */
export const loadAccount = (id: string): Effect.Effect<LoadedAccount, Problem, EventStore.EventStore> =>
  Effect.gen(function* () {
    const streamId = yield* accountStream(id)
    const loaded = yield* CommandHandler.loadAsOf(Account.Account, streamId, { version: Number.MAX_SAFE_INTEGER })
    if (loaded.state._tag !== "Opened") return yield* new NotFound({ code: "NotFound", detail: `No account ${id}` })
    return { accountId: id, streamId, state: loaded.state, version: loaded.version }
  }).pipe(mapErrors({ what: `account ${id}` }))

/**
 * An initiated transfer with its stream id and version.
 */
export interface LoadedTransfer {
  readonly transferId: string
  readonly streamId: StreamId.StreamId
  readonly state: Transfer.TransferInfo
  readonly version: number
}

/**
 * Transfer `id` as it is now; 404 when it was never initiated.
 */
export const loadTransfer = (id: string): Effect.Effect<LoadedTransfer, Problem, EventStore.EventStore> =>
  Effect.gen(function* () {
    const streamId = yield* transferStream(id)
    const loaded = yield* CommandHandler.loadAsOf(Transfer.Transfer, streamId, { version: Number.MAX_SAFE_INTEGER })
    if (loaded.state._tag !== "Transfer") {
      return yield* new NotFound({ code: "NotFound", detail: `No transfer ${id}` })
    }
    return { transferId: id, streamId, state: loaded.state, version: loaded.version }
  }).pipe(mapErrors({ what: `transfer ${id}` }))

const timestamps = (streamId: string) =>
  EventStore.EventStore.use((store) => store.streamInfo(streamId)).pipe(
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
  accountId: string,
  streamId: string,
  state: Account.AccountState,
  version: number
): Effect.Effect<AccountSummary, never, EventStore.EventStore> =>
  Effect.map(timestamps(streamId), (at) => ({
    accountId,
    owner: state._tag === "Opened" ? state.owner : "",
    currency: state._tag === "Opened" ? state.currency : "",
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
  transferId: string,
  streamId: string,
  state: Transfer.TransferInfo,
  version: number
): Effect.Effect<TransferSummary, never, EventStore.EventStore> =>
  Effect.map(timestamps(streamId), (at) => ({
    transferId,
    from: state.from,
    to: state.to,
    amount: state.amount,
    currency: state.currency,
    reference: state.reference,
    status: state.status,
    initiatedBy: state.initiatedBy,
    approvedBy: state.approvedBy,
    failure: state.failure,
    version,
    initiatedAt: at.created,
    updatedAt: at.updated
  }))
