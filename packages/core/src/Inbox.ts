/**
 * Inboxes: messages from a broker applied exactly once. A broker delivers at least once (a message whose
 * acknowledgement was lost comes again), so an inbox records each message's id in the same transaction as its
 * handler's writes (an {@link InboxStore}: in SQL, one transaction), and the consumer acknowledges only after that
 * commit: a redelivered message finds its id and is acknowledged without being applied again. A message that cannot
 * be decoded, or that the handler keeps failing on, is parked with the reason and acknowledged, so that it never
 * blocks the ones after it; a retryable storage failure is the infrastructure's, and leaves the message
 * unacknowledged for the broker to deliver again.
 *
 * The broker side consumes and acknowledges: `@facta/nats` has a consumer for a JetStream durable consumer.
 *
 * @since 0.1.0
 */
import { Cause, Context, DateTime, Effect, Exit, Layer, Option, Schedule, Schema } from "effect"
import * as IntegrationEvent from "./IntegrationEvent.ts"
import { describe } from "./internal/cause.ts"
import * as StorageError from "./StorageError.ts"

/**
 * One message as a broker delivered it: its id (the de-duplication key: the relay sends the event id), subject,
 * headers and body.
 *
 * @example
 * ```ts
 * import type { Inbox } from "@facta/core"
 *
 * const delivery: Inbox.Delivery = {
 *   id: "0190e9a8-0000-7000-8000-000000000000",
 *   subject: "facta.Account.Opened",
 *   headers: {},
 *   body: new TextEncoder().encode("{}")
 * }
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Delivery {
  readonly id: string
  readonly subject: string
  readonly headers: Readonly<Record<string, string>>
  readonly body: Uint8Array
}

/**
 * A message an inbox parked: the handler kept failing on it, or it could not be decoded.
 *
 * @category models
 * @since 0.1.0
 */
export interface ParkedMessage {
  readonly inbox: string
  readonly messageId: string
  readonly subject: string
  readonly body: string
  readonly error: string
  readonly parkedAt: DateTime.Utc
}

/**
 * Where inboxes record the messages they applied and parked.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Inbox } from "@facta/core"
 *
 * // None: m-1 was applied already, and the work did not run again
 * const again = Inbox.InboxStore.use((store) => store.apply("risk", "m-1", Effect.log("applying m-1")))
 * ```
 *
 * @category services
 * @since 0.1.0
 */
export class InboxStore extends Context.Service<
  InboxStore,
  {
    /** Whether `apply` commits its work and the record together (one SQL transaction). */
    readonly transactional: boolean
    /**
     * Runs `work` and records `messageId` as applied by `inbox`, atomically where the store can; `None` (and `work`
     * not run) when it was applied already.
     */
    readonly apply: <A, E, R>(
      inbox: string,
      messageId: string,
      work: Effect.Effect<A, E, R>
    ) => Effect.Effect<Option.Option<A>, E | StorageError.StorageError, R>
    /**
     * Runs the work of every message not applied yet, in order, and records them all, in one commit where the store
     * can (so that a batch costs one transaction, not one per message): for each message, whether it was applied now
     * (`false`: applied already, or earlier in the same batch, and its work not run). A failing work fails the whole
     * batch and, on SQL, rolls it back.
     */
    readonly applyAll: <E, R>(
      inbox: string,
      messages: ReadonlyArray<{ readonly messageId: string; readonly work: Effect.Effect<unknown, E, R> }>
    ) => Effect.Effect<ReadonlyArray<boolean>, E | StorageError.StorageError, R>
    /** Parks a message with its reason (once: parking it again changes nothing). */
    readonly park: (inbox: string, delivery: Delivery, error: string) => Effect.Effect<void, StorageError.StorageError>
    /** The parked messages of an inbox, oldest first. */
    readonly parked: (inbox: string) => Effect.Effect<ReadonlyArray<ParkedMessage>, StorageError.StorageError>
  }
>()("@facta/core/InboxStore") {}

/**
 * An in-memory inbox store, for tests and prototypes: a message's record and its work are not atomic (a crash
 * between them applies it again).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Inbox } from "@facta/core"
 *
 * const program = Inbox.InboxStore.use((store) => store.apply("risk", "m-1", Effect.succeed(1))).pipe(
 *   Effect.provide(Inbox.layerMemory)
 * )
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export const layerMemory: Layer.Layer<InboxStore> = Layer.sync(InboxStore, () => {
  const applied = new Set<string>()
  const parked = new Map<string, ParkedMessage>()
  const apply = <A, E, R>(inbox: string, messageId: string, work: Effect.Effect<A, E, R>) =>
    Effect.suspend(() => {
      const key = `${inbox}\u0000${messageId}`
      if (applied.has(key)) return Effect.succeedNone
      return Effect.map(work, (a) => {
        applied.add(key)
        return Option.some(a)
      })
    })
  return InboxStore.of({
    transactional: false,
    apply,
    applyAll: (inbox, messages) =>
      Effect.forEach(messages, ({ messageId, work }) => Effect.map(apply(inbox, messageId, work), Option.isSome)),
    park: (inbox, delivery, error) =>
      Effect.flatMap(
        Effect.clockWith((clock) => clock.currentTimeMillis),
        (now) =>
          Effect.sync(() => {
            const key = `${inbox}\u0000${delivery.id}`
            if (parked.has(key)) return
            parked.set(key, {
              inbox,
              messageId: delivery.id,
              subject: delivery.subject,
              body: new TextDecoder().decode(delivery.body),
              error,
              parkedAt: DateTime.makeUnsafe(now)
            })
          })
      ).pipe(Effect.andThen(Effect.void)),
    parked: (inbox) => Effect.sync(() => [...parked.values()].filter((p) => p.inbox === inbox))
  })
})

/**
 * An inbox: its name (the applied and parked records go by it), how a body decodes (JSON, then `schema`), the
 * handler, and how often a failing handler is tried before its message is parked.
 *
 * @category models
 * @since 0.1.0
 */
export interface Inbox<A, R = never> {
  readonly name: string
  readonly decode: (delivery: Delivery) => Effect.Effect<A, Schema.SchemaError>
  readonly handle: (message: A, delivery: Delivery) => Effect.Effect<void, unknown, R>
  readonly retry: Schedule.Schedule<unknown, unknown>
}

/**
 * Makes an inbox. Without `schema` a body decodes as an {@link IntegrationEvent.IntegrationEvent}; with one, as the
 * schema's JSON (a relay's public schema, say). The handler runs inside the inbox store's transaction: on SQL, its
 * writes commit with the message's record.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Inbox } from "@facta/core"
 *
 * const seen: Array<string> = []
 * const audit = Inbox.make({
 *   name: "audit",
 *   handle: (event) => Effect.sync(() => void seen.push(`${event.streamId}@${event.version}`))
 * })
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export function make<R = never>(options: {
  readonly name: string
  readonly schema?: undefined
  readonly handle: (message: IntegrationEvent.IntegrationEvent, delivery: Delivery) => Effect.Effect<void, unknown, R>
  readonly retry?: Schedule.Schedule<unknown, unknown> | undefined
}): Inbox<IntegrationEvent.IntegrationEvent, R>
export function make<A, R = never>(options: {
  readonly name: string
  readonly schema: Schema.Codec<A, unknown>
  readonly handle: (message: A, delivery: Delivery) => Effect.Effect<void, unknown, R>
  readonly retry?: Schedule.Schedule<unknown, unknown> | undefined
}): Inbox<A, R>
export function make<A, R>(options: {
  readonly name: string
  readonly schema?: Schema.Codec<A, unknown> | undefined
  readonly handle: (message: A, delivery: Delivery) => Effect.Effect<void, unknown, R>
  readonly retry?: Schedule.Schedule<unknown, unknown> | undefined
}): Inbox<A, R> {
  const codec = Schema.fromJsonString(
    (options.schema ?? IntegrationEvent.IntegrationEvent) as unknown as Schema.Codec<A, unknown>
  )
  const decodeJson = Schema.decodeUnknownEffect(codec)
  return {
    name: options.name,
    decode: (delivery) => decodeJson(new TextDecoder().decode(delivery.body)) as Effect.Effect<A, Schema.SchemaError>,
    handle: options.handle,
    retry: options.retry ?? Schedule.exponential("50 millis").pipe(Schedule.upTo({ times: 3 }))
  }
}

/**
 * What {@link receive} did with a message: applied it, found it applied already, or parked it. The consumer
 * acknowledges the message in every case.
 *
 * @category models
 * @since 0.1.0
 */
export type Outcome = "applied" | "duplicate" | "parked"

/**
 * Receives one delivered message: decodes it, and runs the handler with the message's record in one commit of the
 * {@link InboxStore} (retrying the handler's failures by the inbox's `retry`), unless it was applied already. A
 * message that does not decode, or that the handler still fails on, is parked with the reason. Fails only with a
 * retryable `StorageError`: the message is then left unacknowledged, for the broker to deliver again.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Inbox } from "@facta/core"
 *
 * declare const audit: Inbox.Inbox<unknown>
 * declare const delivery: Inbox.Delivery
 * const outcome = Inbox.receive(audit, delivery).pipe(Effect.provide(Inbox.layerMemory)) // "applied", then "duplicate"
 * ```
 *
 * @category running
 * @since 0.1.0
 */
export const receive = Effect.fn("Inbox.receive")(function* <A, R>(
  inbox: Inbox<A, R>,
  delivery: Delivery
): Effect.fn.Return<Outcome, StorageError.StorageError, R | InboxStore> {
  const store = yield* InboxStore
  const decoded = yield* Effect.exit(inbox.decode(delivery))
  if (Exit.isFailure(decoded)) return yield* parkUndecodable(store, inbox.name, delivery, decoded.cause)
  return yield* applyOne(store, inbox, delivery, decoded.value)
})

/**
 * Receives a batch of delivered messages, as {@link receive} would one after the other, but with the handlers of all
 * of them and their records in one commit of the {@link InboxStore} (on SQL, one transaction for the batch): the
 * outcome of each message, in order. When a handler fails, the batch is rolled back and its messages are received
 * one by one instead, so that only the failing message is retried and parked: the other messages' handlers then run
 * a second time (their SQL of the first run was rolled back with the batch, but an effect outside the transaction
 * happens twice). Fails only with a retryable `StorageError`: the messages not yet acknowledged are then left for the
 * broker to deliver again.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Inbox } from "@facta/core"
 *
 * declare const audit: Inbox.Inbox<unknown>
 * declare const deliveries: ReadonlyArray<Inbox.Delivery>
 * const outcomes = Inbox.receiveAll(audit, deliveries).pipe(Effect.provide(Inbox.layerMemory))
 * ```
 *
 * @category running
 * @since 0.1.0
 */
export const receiveAll = Effect.fn("Inbox.receiveAll")(function* <A, R>(
  inbox: Inbox<A, R>,
  deliveries: ReadonlyArray<Delivery>
): Effect.fn.Return<ReadonlyArray<Outcome>, StorageError.StorageError, R | InboxStore> {
  const store = yield* InboxStore
  const outcomes: Array<Outcome> = new Array(deliveries.length)
  const decoded: Array<{ readonly index: number; readonly message: A }> = []
  for (let index = 0; index < deliveries.length; index++) {
    const delivery = deliveries[index]!
    const exit = yield* Effect.exit(inbox.decode(delivery))
    if (Exit.isFailure(exit)) outcomes[index] = yield* parkUndecodable(store, inbox.name, delivery, exit.cause)
    else decoded.push({ index, message: exit.value })
  }
  if (decoded.length === 0) return outcomes
  if (decoded.length === 1) {
    // alone, it needs no batch: its failure is retried and parked as is
    const { index, message } = decoded[0]!
    outcomes[index] = yield* applyOne(store, inbox, deliveries[index]!, message)
    return outcomes
  }
  const batch = yield* Effect.exit(
    store.applyAll(
      inbox.name,
      decoded.map(({ index, message }) => ({
        messageId: deliveries[index]!.id,
        work: inbox.handle(message, deliveries[index]!)
      }))
    )
  )
  if (Exit.isSuccess(batch)) {
    batch.value.forEach((applied, i) => {
      outcomes[decoded[i]!.index] = applied ? "applied" : "duplicate"
    })
    return outcomes
  }
  if (Cause.hasInterruptsOnly(batch.cause)) return yield* Effect.failCause(batch.cause as Cause.Cause<never>)
  // nothing of the batch committed: one by one, the failing message alone is retried and parked
  for (const { index, message } of decoded) {
    outcomes[index] = yield* applyOne(store, inbox, deliveries[index]!, message)
  }
  return outcomes
})

const parkUndecodable = Effect.fnUntraced(function* (
  store: InboxStore["Service"],
  name: string,
  delivery: Delivery,
  cause: Cause.Cause<Schema.SchemaError>
) {
  const error = Cause.findErrorOption(cause)
  const reason = `undecodable: ${describe(Option.isSome(error) ? error.value : Cause.squash(cause))}`
  yield* store.park(name, delivery, reason)
  yield* Effect.logWarning("inbox parked a message").pipe(
    Effect.annotateLogs({ inbox: name, messageId: delivery.id, error: reason })
  )
  return "parked" as const
})

const applyOne = Effect.fnUntraced(function* <A, R>(
  store: InboxStore["Service"],
  inbox: Inbox<A, R>,
  delivery: Delivery,
  message: A
): Effect.fn.Return<Outcome, StorageError.StorageError, R> {
  const applied = yield* Effect.exit(
    store
      .apply(inbox.name, delivery.id, inbox.handle(message, delivery))
      .pipe(Effect.retry({ schedule: inbox.retry, while: (e) => !StorageError.isRetryable(e) }))
  )
  if (Exit.isSuccess(applied)) return Option.isSome(applied.value) ? "applied" : "duplicate"
  const error = Cause.findErrorOption(applied.cause)
  if (Option.isSome(error) && StorageError.isRetryable(error.value)) {
    return yield* Effect.fail(error.value)
  }
  if (Option.isNone(error) && !Cause.hasDies(applied.cause))
    return yield* Effect.failCause(applied.cause as Cause.Cause<StorageError.StorageError>)
  const reason = describe(Option.isSome(error) ? error.value : Cause.squash(applied.cause))
  yield* store.park(inbox.name, delivery, reason)
  yield* Effect.logWarning("inbox parked a message").pipe(
    Effect.annotateLogs({ inbox: inbox.name, messageId: delivery.id, error: reason })
  )
  return "parked"
})
