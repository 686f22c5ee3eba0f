/**
 * Relays: the global log sent to a message broker, at least once and in order per stream. The log is already a
 * transactional outbox (gap-free, ordered), so a relay is a projection whose effect is a publish: it reads the log
 * after its checkpoint, maps each event to an {@link IntegrationEvent.IntegrationEvent}, publishes, and moves its
 * checkpoint only once the broker acknowledged. Only the holder of the relay's lease publishes (a standby takes over
 * when it expires, and a checkpoint write from a stale holder is refused); a broker or database outage is waited out
 * with backoff, never counted against an event; an event the mapping cannot encode, or the broker could never take
 * (`MessageTooLarge`, `MessageUnsendable`), is parked with its reason and the relay goes on.
 *
 * The broker side is a {@link Publisher}: `@facta/nats` has one for NATS JetStream.
 *
 * @since 0.1.0
 */
import { Cause, type Duration, Effect, Exit, Option, Schema } from "effect"
import type { LeaseLost, Parked, Status } from "./CheckpointStore.ts"
import { CheckpointStore } from "./CheckpointStore.ts"
import type { RecordedEvent } from "./Event.ts"
import { EventStore } from "./EventStore.ts"
import * as IntegrationEvent from "./IntegrationEvent.ts"
import { describe } from "./internal/cause.ts"
import { holderId, holdLease } from "./internal/leaseHolder.ts"
import { backoff, isRetryablePublish, keyOf, runLeased } from "./internal/relayRunner.ts"
import type * as StorageError from "./StorageError.ts"

/**
 * The broker side of a relay: publishes integration events and succeeds once the broker acknowledged every one of
 * them. Unless the publisher is `ordered`, the events of one call may be stored in any order (a relay then never
 * hands two events of one stream to the same call); a failure may have stored some of them, so a publisher should
 * let the broker drop a republished event (by its `eventId`). Fails with a retryable `PublishError` when trying
 * again may help, and with `MessageTooLarge` or `MessageUnsendable` (before publishing anything) when an event could
 * never be sent. The relay runs the effect `publish` returns again to retry it, so the publish must happen when the
 * effect runs, not when `publish` is called.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import type { Relay } from "@facta/core"
 *
 * const sent: Array<string> = []
 * const inMemory: Relay.Publisher = {
 *   broker: "memory",
 *   publish: (events) => Effect.sync(() => void sent.push(...events.map((event) => event.eventId)))
 * }
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Publisher {
  /** The broker's name, for logs and errors. */
  readonly broker: string
  /**
   * Whether the publisher stores the events of one call in the order given, and the events of one call that go to
   * one place (a Redis key) all or none (Redis: one `MULTI`); the relay then hands it several events of one stream
   * at once, instead of waiting for each event's acknowledgement before the next of its stream. It keeps a stream in
   * order as long as a stream's events all go to one place.
   */
  readonly ordered?: boolean | undefined
  readonly publish: (
    events: ReadonlyArray<IntegrationEvent.IntegrationEvent>
  ) => Effect.Effect<
    void,
    IntegrationEvent.PublishError | IntegrationEvent.MessageTooLarge | IntegrationEvent.MessageUnsendable
  >
}

/**
 * Maps a stored event to the integration event to publish: `undefined` publishes nothing for it; a failure parks
 * it with the reason.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { IntegrationEvent, type Relay } from "@facta/core"
 *
 * // only deposits leave the service, as they are stored
 * const depositsOnly: Relay.Mapping = (event) =>
 *   Effect.succeed(event.type === "Deposited" ? IntegrationEvent.fromRecorded(event) : undefined)
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type Mapping = (event: RecordedEvent) => Effect.Effect<IntegrationEvent.IntegrationEvent | undefined, unknown>

/**
 * A relay: its name (its lease, checkpoint and parked events go by it), the events it reads, how it maps them and
 * where it publishes.
 *
 * @category models
 * @since 0.1.0
 */
export interface Relay {
  readonly name: string
  readonly categories: ReadonlyArray<string> | undefined
  readonly types: ReadonlyArray<string> | undefined
  readonly map: Mapping
  readonly publisher: Publisher
}

/**
 * Makes a relay. Without `map`, every event read is published as it is stored
 * ({@link IntegrationEvent.fromRecorded}); `categories` and `types` narrow what it reads.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { CheckpointStore, EventStore, Relay } from "@facta/core"
 *
 * declare const publisher: Relay.Publisher
 * const accounts = Relay.make({ name: "accounts-out", categories: ["Account"], publisher })
 * const program = Relay.run(accounts).pipe(
 *   Effect.provide(Layer.mergeAll(EventStore.layerMemory, CheckpointStore.layerMemory))
 * )
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = (options: {
  readonly name: string
  readonly categories?: ReadonlyArray<string> | undefined
  readonly types?: ReadonlyArray<string> | undefined
  readonly map?: Mapping | undefined
  readonly publisher: Publisher
}): Relay => ({
  name: options.name,
  categories: options.categories,
  types: options.types,
  map: options.map ?? ((event) => Effect.succeed(IntegrationEvent.fromRecorded(event))),
  publisher: options.publisher
})

/**
 * A mapping to a public schema, so that internal events can change without breaking consumers: `from` gives the
 * public value of a stored event (`undefined` to publish nothing for it), which is encoded with `schema` (an event
 * whose value does not encode is parked with the schema's message). The message keeps the stored event's id,
 * stream, version and position; its type is the value's `_tag` (or the stored type) and its schema version
 * `schemaVersion` (default 1).
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Relay } from "@facta/core"
 *
 * const TransferSent = Schema.TaggedStruct("TransferSent", { amount: Schema.Int.check(Schema.isGreaterThan(0)) })
 * const map = Relay.mapTo(TransferSent, (event) =>
 *   event.type === "Withdrawn" ? TransferSent.make({ amount: (event.data as { amount: number }).amount }) : undefined
 * )
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const mapTo =
  <A>(
    schema: Schema.Codec<A, unknown>,
    from: (event: RecordedEvent) => A | undefined,
    options?: { readonly schemaVersion?: number | undefined }
  ): Mapping =>
  (event) =>
    Effect.gen(function* () {
      const value = yield* Effect.try({ try: () => from(event), catch: (cause) => cause })
      if (value === undefined) return undefined
      const data = yield* Schema.encodeUnknownEffect(schema)(value)
      const tag = (value as { readonly _tag?: unknown })._tag
      return {
        ...IntegrationEvent.fromRecorded(event),
        type: typeof tag === "string" ? tag : event.type,
        schemaVersion: options?.schemaVersion ?? 1,
        data: data as Schema.Json
      }
    })

/**
 * How to run a relay.
 *
 * @category models
 * @since 0.1.0
 */
export interface RunOptions {
  /** The name this process runs under (default `relay`), followed by an id of this run's own in leases and status. */
  readonly owner?: string | undefined
  /** How long the lease lasts without a heartbeat (default 10 seconds); a standby takes over after it. */
  readonly leaseTtl?: Duration.Input | undefined
  /** Events read per page (default 1000); the next page is read while one is published. */
  readonly batchSize?: number | undefined
  /** Events handed to the publisher at once, at most (default 1000); one per stream, unless it is `ordered`. */
  readonly maxInFlight?: number | undefined
  readonly pollInterval?: Duration.Input | undefined
  /** Stop once everything appended before the run started was published (default false: tail the log). */
  readonly untilCaughtUp?: boolean | undefined
}

/**
 * Runs a relay until interrupted (or, with `untilCaughtUp`, until everything appended before it started was
 * published): takes the relay's lease (or stands by until it can), reads the log after the checkpoint, publishes a
 * page at a time and moves the checkpoint once the broker acknowledged it (while the next page is published).
 * Events of one stream are published one after the other, each once the previous was acknowledged (or, to an
 * `ordered` publisher, in order in one call); events of different streams up to `maxInFlight` at once.
 * Retryable storage and broker failures are retried with backoff for as long as they last (the status says so);
 * fails with a `PublishError` the broker says retrying cannot fix.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { CheckpointStore, EventStore, Relay } from "@facta/core"
 *
 * declare const publisher: Relay.Publisher
 * const program = Relay.run(Relay.make({ name: "out", publisher }), { untilCaughtUp: true }).pipe(
 *   Effect.provide(Layer.mergeAll(EventStore.layerMemory, CheckpointStore.layerMemory))
 * )
 * ```
 *
 * @category running
 * @since 0.1.0
 */
export const run = Effect.fn("Relay.run")(function* (
  relay: Relay,
  options?: RunOptions
): Effect.fn.Return<void, IntegrationEvent.PublishError | StorageError.StorageError, EventStore | CheckpointStore> {
  const resolved = options ?? {}
  const owner = yield* holderId(resolved.owner ?? "relay")
  return yield* holdLease({
    kind: "relay",
    key: keyOf(relay),
    owner,
    ttl: resolved.leaseTtl ?? "10 seconds",
    annotations: { relay: relay.name, owner },
    work: (lease) => runLeased(relay, lease, resolved)
  }) as Effect.Effect<void, IntegrationEvent.PublishError | StorageError.StorageError, EventStore | CheckpointStore>
})

/**
 * Where a relay stands: its checkpoint's status (state, holder, the error it is retrying after) and how many
 * positions of the log it has not published yet (an upper bound when the database skipped positions).
 *
 * @category models
 * @since 0.1.0
 */
export interface RelayStatus extends Status {
  readonly eventsBehind: number
}

/**
 * The status of a relay: `None` before its first run.
 *
 * @example
 * ```ts
 * import { Relay } from "@facta/core"
 *
 * declare const relay: Relay.Relay
 * const status = Relay.status(relay)
 * ```
 *
 * @category status
 * @since 0.1.0
 */
export const status = Effect.fn("Relay.status")(function* (
  relay: Relay
): Effect.fn.Return<Option.Option<RelayStatus>, StorageError.StorageError, EventStore | CheckpointStore> {
  const rows = yield* CheckpointStore.use((store) => store.status(relay.name))
  const head = yield* EventStore.use((store) => store.head)
  const row = rows.find((r) => r.key.version === 1 && r.key.partition === 0)
  if (row === undefined) return Option.none()
  return Option.some({
    ...row,
    eventsBehind: Number(head.sequence > row.checkpoint.sequence ? head.sequence - row.checkpoint.sequence : 0n)
  })
})

/**
 * The events a relay parked (the mapping failed, or the message was too large for the broker), with the reasons,
 * oldest first.
 *
 * @example
 * ```ts
 * import { Relay } from "@facta/core"
 *
 * declare const relay: Relay.Relay
 * const parked = Relay.parked(relay)
 * ```
 *
 * @category status
 * @since 0.1.0
 */
export const parked = Effect.fn("Relay.parked")(function* (
  relay: Relay
): Effect.fn.Return<ReadonlyArray<Parked>, StorageError.StorageError, CheckpointStore> {
  return yield* CheckpointStore.use((store) => store.parked(relay.name))
})

/**
 * What {@link replayParked} did: the events it published and unparked, and those that still fail (left parked, with
 * the new reason).
 *
 * @category models
 * @since 0.1.0
 */
export interface ReplayResult {
  readonly replayed: ReadonlyArray<string>
  readonly stillFailing: ReadonlyArray<string>
}

/**
 * Publishes a relay's parked events again, after a fix (a mapping that now encodes them, a larger broker limit),
 * each unparked once the broker acknowledged it. A replayed event reaches consumers after the events its stream had
 * meanwhile, so their inbox must not rely on per-stream order for it. Takes the relay's lease for the duration (stop
 * the running relay first, or it waits for it) and fails with `LeaseLost` if it loses it; a retryable broker failure
 * is retried with backoff.
 *
 * @example
 * ```ts
 * import { Relay } from "@facta/core"
 *
 * declare const relay: Relay.Relay
 * const replay = Relay.replayParked(relay, { owner: "admin" })
 * ```
 *
 * @category running
 * @since 0.1.0
 */
export const replayParked = Effect.fn("Relay.replayParked")(function* (
  relay: Relay,
  options?: { readonly owner?: string | undefined; readonly leaseTtl?: Duration.Input | undefined }
): Effect.fn.Return<
  ReplayResult,
  StorageError.StorageError | LeaseLost | IntegrationEvent.PublishError,
  CheckpointStore
> {
  const store = yield* CheckpointStore
  const owner = yield* holderId(options?.owner ?? "replay")
  const ttl = options?.leaseTtl ?? "30 seconds"
  const key = keyOf(relay)
  const parkedEvents = (yield* store.parked(relay.name)).filter((p) => p.key.version === 1 && p.key.partition === 0)
  const replayed: Array<string> = []
  const stillFailing: Array<string> = []
  if (parkedEvents.length === 0) return { replayed, stillFailing }
  let lease = yield* store.acquire(key, owner, ttl)
  while (Option.isNone(lease)) {
    yield* Effect.sleep("200 millis")
    lease = yield* store.acquire(key, owner, ttl)
  }
  const held = lease.value
  for (const { event } of parkedEvents) {
    const sent = yield* Effect.exit(
      Effect.suspend(() => relay.map(event)).pipe(
        Effect.flatMap((message) =>
          message === undefined
            ? Effect.void
            : relay.publisher.publish([message]).pipe(Effect.retry({ schedule: backoff, while: isRetryablePublish }))
        )
      )
    )
    if (Exit.isSuccess(sent)) {
      yield* store.commit(held, held.checkpoint, held.checkpoint, store.unpark(key, event.eventId))
      replayed.push(event.eventId)
      continue
    }
    const error = Cause.findErrorOption(sent.cause)
    if (Option.isSome(error) && IntegrationEvent.isPublishError(error.value) && !error.value.retryable) {
      yield* Effect.ignore(store.release(held, "stopped"))
      return yield* error.value
    }
    stillFailing.push(event.eventId)
    yield* store.commit(
      held,
      held.checkpoint,
      held.checkpoint,
      Effect.andThen(
        store.unpark(key, event.eventId),
        store.park(key, event, describe(Option.isSome(error) ? error.value : Cause.squash(sent.cause)))
      )
    )
  }
  yield* store.release(held, "stopped")
  return { replayed, stillFailing }
})
