/**
 * The bank's transfer facts, relayed to a broker: the `Transfer` events of the log mapped to the public schema of
 * `integration/TransferFacts.ts` (`Relay.mapTo`) and published to NATS JetStream (or Redis Streams), at least once
 * and in order per transfer; JetStream drops a republished event by its id, and a consumer's inbox applies each once.
 *
 * The relay is a projection whose effect is a publish: its checkpoint (`bank-transfer-facts`, beside the read
 * models') moves only after the broker acknowledged. It runs in the bank's background only when a broker is
 * configured (`integration/Broker.ts`); {@link TransferRelay} says where it stands (the admin's risk panel and
 * `GET /health` show it). A broker that does not answer at start, or goes away, is waited for with backoff: the bank
 * works on meanwhile and the relay catches up once the broker is back.
 */
import { type CheckpointStore, type Event, type EventStore, Relay, type StorageError, StreamId } from "@facta/core"
import { NatsClient, NatsPublisher, NatsStream } from "@facta/nats"
import { RedisClient, RedisPublisher } from "@facta/redis"
import { Context, type Duration, Effect, Layer, Option, Result } from "effect"
import * as Money from "../domain/Money.ts"
import * as Transfer from "../domain/Transfer.ts"
import * as Broker from "../integration/Broker.ts"
import * as TransferFacts from "../integration/TransferFacts.ts"
import { backoff, supervise } from "./Background.ts"

/** The relay's name: its lease, checkpoint and parked events go by it. */
export const relayName = "bank-transfer-facts"

const decimal = (amount: Money.Amount, currency: Money.Currency) => Money.toDecimalString(amount, currency)

/**
 * The public fact of a stored transfer event, `undefined` for the process's internal steps. Throws (and the relay
 * parks the event with the reason) when the stored event does not decode.
 */
export const toFact = (event: Event.RecordedEvent): TransferFacts.TransferFact | undefined => {
  const decoded = Transfer.Transfer.events.decodeStored(event.type, event.schemaVersion, event.data)
  if (Result.isFailure(decoded)) throw new Error(`${event.type} v${event.schemaVersion}: ${decoded.failure}`)
  const transferId = StreamId.entityId(event.streamId as StreamId.StreamId)
  const data = decoded.success
  switch (data._tag) {
    case "TransferInitiated":
      return TransferFacts.TransferRequested.make({
        transferId,
        fromAccount: data.from,
        toAccount: data.to,
        amount: decimal(data.amount, data.currency),
        currency: data.currency,
        reference: data.reference,
        requestedBy: data.initiatedBy,
        requiresApproval: data.requiresApproval,
        approvalThreshold: decimal(data.approvalThreshold, data.currency),
        requestedAt: new Date(event.recordedAt.epochMilliseconds).toISOString()
      })
    case "TransferApproved":
      return TransferFacts.TransferApproved.make({ transferId, approvedBy: data.by })
    case "TransferRejected":
      return TransferFacts.TransferRejected.make({ transferId, rejectedBy: data.by, reason: data.reason })
    case "TransferExpired":
      return TransferFacts.TransferRejected.make({ transferId, rejectedBy: null, reason: data.reason })
    case "TransferCompleted":
      return TransferFacts.TransferCompleted.make({ transferId })
    case "TransferDebitFailed":
      return TransferFacts.TransferFailed.make({ transferId, reason: data.reason, reversed: false })
    case "TransferCompensated":
      return TransferFacts.TransferFailed.make({
        transferId,
        reason: "the receiving account refused the credit; the debit was given back",
        reversed: true
      })
    case "TransferDebited":
    case "TransferCreditFailed":
      return undefined
  }
}

/**
 * The relay of the transfer facts through `publisher`: `Transfer` events only, mapped by {@link toFact}.
 */
export const make = (publisher: Relay.Publisher): Relay.Relay =>
  Relay.make({
    name: relayName,
    categories: ["Transfer"],
    map: Relay.mapTo(TransferFacts.TransferFact, toFact, { schemaVersion: TransferFacts.schemaVersion }),
    publisher
  })

/**
 * Where the relay stands, as the console shows it.
 */
export interface Status {
  readonly relay: string
  readonly broker: string
  /** `never run`, `running`, `standby`, `stopped`, ... (the checkpoint's state). */
  readonly state: string
  readonly owner: string | null
  readonly checkpoint: string | null
  /** Positions of the log not published yet (an upper bound). */
  readonly eventsBehind: number | null
  /** The failure it is retrying after, if any. */
  readonly error: string | null
}

/**
 * The relay this process runs, when a broker is configured.
 */
export class TransferRelay extends Context.Service<
  TransferRelay,
  {
    readonly broker: Broker.Broker
    readonly status: Effect.Effect<Status, StorageError.StorageError>
  }
>()("@facta/example-bank/app/TransferRelay") {}

/** Where the relay stands; before its first run, `never run`. */
const statusOf = (relay: Relay.Relay, broker: Broker.Broker) =>
  Effect.map(
    Relay.status(relay),
    Option.match({
      onNone: (): Status => ({
        relay: relayName,
        broker: Broker.describe(broker),
        state: "never run",
        owner: null,
        checkpoint: null,
        eventsBehind: null,
        error: null
      }),
      onSome: (row): Status => ({
        relay: relayName,
        broker: Broker.describe(broker),
        state: row.state,
        owner: Option.getOrNull(row.owner),
        checkpoint: `${row.checkpoint.epoch}.${row.checkpoint.commit}.${row.checkpoint.sequence}`,
        eventsBehind: row.eventsBehind,
        error: Option.getOrNull(row.error)
      })
    })
  )

/** The publisher on `broker`, connected for the scope (the NATS stream created or updated first). */
const publisherOn = (broker: Broker.Broker) =>
  broker._tag === "Nats"
    ? Effect.gen(function* () {
        const client = yield* NatsClient.make({ servers: broker.servers, name: "bank-relay" })
        yield* NatsStream.ensure({ name: broker.stream, subjects: [`${broker.prefix}.>`] }).pipe(
          Effect.provideService(NatsClient.NatsClient, client)
        )
        return yield* NatsPublisher.make({ subject: NatsPublisher.subject(broker.prefix) }).pipe(
          Effect.provideService(NatsClient.NatsClient, client)
        )
      })
    : Effect.gen(function* () {
        const client = yield* RedisClient.make({ url: broker.url, name: "bank-relay" })
        return yield* RedisPublisher.make({ key: RedisPublisher.streamKey(broker.prefix) }).pipe(
          Effect.provideService(RedisClient.RedisClient, client)
        )
      })

/** A broker failure outside a publish (connecting, creating the stream): waited out like a storage outage. */
const isBrokerError = (error: unknown): boolean => NatsClient.isNatsError(error) || RedisClient.isRedisError(error)

/**
 * Options of {@link layer}.
 */
export interface Options {
  /** The owner the relay's lease is taken as (default `bank-relay`). */
  readonly owner?: string | undefined
  readonly pollInterval?: Duration.Input | undefined
}

/**
 * Runs the relay on `broker` in the background until the layer is released, and provides its {@link TransferRelay}.
 * Connecting waits for the broker (with backoff, logged) rather than failing the layer: the bank starts and works
 * without it, and publishes once it answers.
 */
export const layer = (broker: Broker.Broker, options?: Options) =>
  Layer.effect(
    TransferRelay,
    Effect.gen(function* () {
      const context = yield* Effect.context<EventStore.EventStore | CheckpointStore.CheckpointStore>()
      // the relay value is the same whatever the publisher: its status reads only its name
      const named = make({ broker: broker._tag.toLowerCase(), publish: () => Effect.void })
      const connectAndRun = Effect.scoped(
        Effect.gen(function* () {
          const publisher = yield* publisherOn(broker)
          yield* Effect.logInfo("transfer relay: publishing").pipe(
            Effect.annotateLogs({ broker: Broker.describe(broker) })
          )
          return yield* Relay.run(make(publisher), {
            owner: options?.owner ?? "bank-relay",
            pollInterval: options?.pollInterval
          })
        })
      ).pipe(
        Effect.tapError((error) =>
          isBrokerError(error)
            ? Effect.logWarning("transfer relay: the broker does not answer; trying again").pipe(
                Effect.annotateLogs({ broker: Broker.describe(broker), error: String(error) })
              )
            : Effect.void
        ),
        Effect.retry({ schedule: backoff, while: isBrokerError })
      )
      yield* Effect.forkScoped(supervise("transfer relay", connectAndRun))
      return TransferRelay.of({
        broker,
        status: statusOf(named, broker).pipe(Effect.provideContext(context))
      })
    })
  )
