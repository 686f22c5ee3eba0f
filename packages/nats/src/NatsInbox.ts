/**
 * The inbox's consumer for NATS JetStream: reads a durable pull consumer, hands what has arrived to
 * `Inbox.receiveAll` (the handlers' writes and the messages' records in one commit), and acknowledges after that
 * commit; a parked message is terminated (JetStream never delivers it again), and a message whose commit failed is
 * negatively acknowledged, for JetStream to deliver again after a delay. A redelivered message whose record
 * committed already (the acknowledgement was lost) is acknowledged without being applied again.
 *
 * @since 0.1.0
 */
import { Inbox } from "@facta/core"
import { AckPolicy, DeliverPolicy, type JsMsg } from "@nats-io/jetstream"
import { nanos } from "@nats-io/transport-node"
import { Cause, Duration, Effect, Exit, Queue, Stream } from "effect"
import { NatsClient, NatsError } from "./NatsClient.ts"

const errorText = (error: unknown): string => (error instanceof Error ? error.message : String(error))

/**
 * Where and how to consume: the stream, the durable consumer's name (created when missing), the subjects it takes
 * (default all of the stream's), how long JetStream waits for an acknowledgement before it delivers again (default
 * 30 seconds), and how long after a failed commit (default 1 second).
 *
 * @category models
 * @since 0.1.0
 */
export interface Options {
  readonly stream: string
  readonly durable: string
  readonly filterSubjects?: ReadonlyArray<string> | undefined
  readonly ackWait?: Duration.Input | undefined
  readonly retryDelay?: Duration.Input | undefined
  /** Messages fetched ahead of the handler (default 100). */
  readonly prefetch?: number | undefined
  /** Messages applied in one commit at most (default 100): those that arrived while the previous batch committed. */
  readonly batchSize?: number | undefined
}

/**
 * The message id of a delivery (`Nats-Msg-Id`, the event id the relay set; else the stream and its sequence) and
 * its headers.
 *
 * @example
 * ```ts
 * import { NatsInbox } from "@facta/nats"
 *
 * declare const message: Parameters<typeof NatsInbox.toDelivery>[0]
 * const delivery = NatsInbox.toDelivery(message) // { id, subject, headers, body }
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const toDelivery = (message: JsMsg): Inbox.Delivery => {
  const headers: Record<string, string> = {}
  if (message.headers !== undefined) {
    for (const [key, values] of message.headers) if (values[0] !== undefined) headers[key] = values[0]
  }
  return {
    id: headers["Nats-Msg-Id"] ?? `${message.info.stream}:${message.seq}`,
    subject: message.subject,
    headers,
    body: message.data
  }
}

/**
 * Creates the durable consumer when missing (explicit acknowledgements, from the stream's first message).
 *
 * @example
 * ```ts
 * import { NatsInbox } from "@facta/nats"
 *
 * const ready = NatsInbox.ensureConsumer({ stream: "FACTA", durable: "risk", filterSubjects: ["facta.Transfer.>"] })
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const ensureConsumer = Effect.fn("NatsInbox.ensureConsumer")(function* (options: Options) {
  const client = yield* NatsClient
  const filters = options.filterSubjects ?? []
  yield* Effect.tryPromise({
    try: () =>
      client.manager.consumers.add(options.stream, {
        durable_name: options.durable,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        ack_wait: nanos(Duration.toMillis(options.ackWait ?? "30 seconds")),
        ...(filters.length === 1 ? { filter_subject: filters[0]! } : {}),
        ...(filters.length > 1 ? { filter_subjects: [...filters] } : {})
      }),
    catch: (cause) => new NatsError({ operation: `ensure consumer ${options.durable}`, cause })
  })
})

/**
 * Runs an inbox on a durable consumer until interrupted: the messages that arrived are received together by
 * `Inbox.receiveAll` (one commit), then each is acknowledged (applied, or applied before), terminated (parked) or
 * negatively acknowledged with the rest of its batch (the commit failed for a retryable reason, or the process was
 * stopped in the middle). Messages are handled in the stream's order. When it stops, the messages it had fetched and
 * not handled are negatively acknowledged too, so that another consumer has them at once rather than after
 * `ackWait` (all but those still on their way to it).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Inbox } from "@facta/core"
 * import { NatsInbox } from "@facta/nats"
 *
 * const audit = Inbox.make({ name: "audit", handle: (event) => Effect.log(event.type) })
 * const program = NatsInbox.run(audit, { stream: "FACTA", durable: "audit" })
 * ```
 *
 * @category running
 * @since 0.1.0
 */
export const run = Effect.fn("NatsInbox.run")(function* <A, R>(
  inbox: Inbox.Inbox<A, R>,
  options: Options
): Effect.fn.Return<void, NatsError, NatsClient | Inbox.InboxStore | R> {
  const client = yield* NatsClient
  yield* ensureConsumer(options)
  const retryDelay = Duration.toMillis(options.retryDelay ?? "1 second")
  const prefetch = Math.max(1, options.prefetch ?? 100)
  const batchSize = Math.max(1, options.batchSize ?? 100)
  const consumed = Effect.acquireRelease(
    Effect.tryPromise({
      try: async () => {
        const consumer = await client.jetstream.consumers.get(options.stream, options.durable)
        return consumer.consume({ max_messages: prefetch })
      },
      catch: (cause) => new NatsError({ operation: `consume ${options.durable}`, cause })
    }),
    (consumed) => Effect.promise(() => consumed.close().catch(() => undefined))
  )
  /** Receives a batch (one commit), then acknowledges each message as it ended, or asks for them all again. */
  const handle = (batch: ReadonlyArray<JsMsg>) =>
    Effect.uninterruptibleMask((restore) =>
      Effect.flatMap(Effect.exit(restore(Inbox.receiveAll(inbox, batch.map(toDelivery)))), (exit) =>
        Effect.sync(() => {
          if (Exit.isSuccess(exit)) {
            exit.value.forEach((outcome, i) => {
              if (outcome === "parked") batch[i]!.term("parked by the inbox")
              else batch[i]!.ack()
            })
            return
          }
          for (const message of batch) message.nak(retryDelay)
        }).pipe(
          Effect.andThen(
            Exit.isFailure(exit) && !Cause.hasInterruptsOnly(exit.cause)
              ? Effect.logWarning("inbox could not commit a batch; it will be delivered again").pipe(
                  Effect.annotateLogs({
                    inbox: inbox.name,
                    messages: batch.length,
                    error: errorText(Cause.squash(exit.cause))
                  })
                )
              : Effect.void
          )
        )
      )
    )
  yield* Effect.scoped(
    Effect.gen(function* () {
      const messages = yield* consumed
      // whatever has arrived while a batch committed is the next batch: one message alone when traffic is light
      const arrived = yield* Queue.bounded<JsMsg, NatsError | Cause.Done>(prefetch)
      yield* Effect.forkScoped(
        Stream.runIntoQueue(
          Stream.fromAsyncIterable(messages, (cause) => new NatsError({ operation: "consume", cause })),
          arrived
        )
      )
      // on stop, what was fetched and not handled goes back at once (for another consumer), not after `ackWait`:
      // the consumer stops pulling, and its iterator hands over what it holds before it ends
      yield* Effect.addFinalizer(() =>
        Effect.gen(function* () {
          // not awaited: it settles once the iterator handed over the rest, which the loop below takes
          messages.close().catch(() => undefined)
          while (true) {
            const left = yield* Queue.takeAll(arrived)
            for (const message of left) message.nak()
          }
        }).pipe(Effect.timeout("2 seconds"), Effect.ignore)
      )
      while (true) {
        const batch = yield* Queue.takeBetween(arrived, 1, batchSize).pipe(
          Effect.catchTag("Done", () => Effect.fail(new NatsError({ operation: "consume", cause: "consumer closed" })))
        )
        yield* handle(batch)
      }
    })
  )
})
