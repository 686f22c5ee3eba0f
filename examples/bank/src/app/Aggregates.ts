/**
 * The command side of the bank: one service per aggregate, `Accounts` and `Transfers`, each built once from
 * `CommandHandler.make` when its layer is built. Their methods take entity ids (`"alice-checking"`, a transfer id),
 * never stream ids: the bound handler derives the stream from the aggregate's category, and so do `info` and
 * `events`, which the API needs for timestamps and the audit trail. No method needs anything from the context.
 */
import {
  Aggregate,
  CommandHandler,
  type Event,
  EventStore,
  type EventStoreError,
  type StorageError,
  type StreamId
} from "@facta/core"
import { Context, Effect, Layer, type Option, Stream } from "effect"
import * as Account from "../domain/Account.ts"
import * as Transfer from "../domain/Transfer.ts"

/**
 * The operations of one aggregate's service, on entity ids.
 */
export interface Service<Command, Event extends { readonly _tag: string }, State, Error> {
  /** Handles a command for the entity `id` (see `CommandHandler.HandleOptions`). */
  readonly handle: CommandHandler.CommandHandler<Command, Event, State, Error>["handle"]
  /** Loads the entity `id`: now, or as of a version or an instant (see `CommandHandler.LoadOptions`). */
  readonly load: CommandHandler.CommandHandler<Command, Event, State, Error>["load"]
  /** The entity's stream info (created, updated, archived); none when nothing was ever written for it. */
  readonly info: (
    id: string
  ) => Effect.Effect<Option.Option<EventStore.StreamInfo>, StorageError.StorageError | StreamId.InvalidStreamId>
  /** The entity's recorded events, as stored (see `EventStore.ReadOptions`). */
  readonly events: (
    id: string,
    options?: EventStore.ReadOptions
  ) => Stream.Stream<Event.RecordedEvent, EventStoreError.ReadError | StreamId.InvalidStreamId>
}

/**
 * Builds the service of `aggregate` on the stores of the context, once.
 */
const make = <Command, E extends { readonly _tag: string }, State, Error>(
  aggregate: Aggregate.WithSnapshots<Command, E, State, Error>
) =>
  Effect.gen(function* () {
    const handler = yield* CommandHandler.make(aggregate)
    const store = yield* EventStore.EventStore
    const service: Service<Command, E, State, Error> = {
      handle: handler.handle,
      load: handler.load,
      info: (id) => Effect.flatMap(Aggregate.streamId(aggregate, id), store.streamInfo),
      events: (id, options) =>
        Stream.unwrap(Effect.map(Aggregate.streamId(aggregate, id), (streamId) => store.read(streamId, options)))
    }
    return service
  })

/**
 * The accounts: `Account-<id>` streams, through the `Account` aggregate.
 */
export class Accounts extends Context.Service<
  Accounts,
  Service<Account.AccountCommand, Account.AccountEvent, Account.AccountState, Account.AccountError>
>()("@facta/example-bank/Accounts") {
  /** Needs an `EventStore` and a `SnapshotStore`. */
  static readonly layer = Layer.effect(Accounts, make(Account.Account))
}

/**
 * The transfers: `Transfer-<id>` streams, through the `Transfer` aggregate.
 */
export class Transfers extends Context.Service<
  Transfers,
  Service<Transfer.TransferCommand, Transfer.TransferEvent, Transfer.TransferState, Transfer.TransferError>
>()("@facta/example-bank/Transfers") {
  /** Needs an `EventStore` and a `SnapshotStore`. */
  static readonly layer = Layer.effect(Transfers, make(Transfer.Transfer))
}

/**
 * Both services; needs an `EventStore` and a `SnapshotStore`.
 */
export const layer = Layer.mergeAll(Accounts.layer, Transfers.layer)
