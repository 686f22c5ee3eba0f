/**
 * How a relay runs while it holds its lease: pages of the log read one ahead, mapped, published in waves (or, to an
 * `ordered` publisher, in order) and committed behind the publishes by a committer fed through a short queue.
 */
import { Array as Arr, Cause, DateTime, Duration, Effect, Exit, Option, Queue, Schedule, Stream } from "effect"
import type { Key, Lease } from "../CheckpointStore.ts"
import { CheckpointStore } from "../CheckpointStore.ts"
import type { RecordedEvent } from "../Event.ts"
import { EventStore } from "../EventStore.ts"
import * as IntegrationEvent from "../IntegrationEvent.ts"
import * as Position from "../Position.ts"
import type { Relay, RunOptions } from "../Relay.ts"
import * as StorageError from "../StorageError.ts"
import * as Subscription from "../Subscription.ts"
import { describe } from "./cause.ts"

/** The relay's one checkpoint. */
export const keyOf = (relay: { readonly name: string }): Key => ({ name: relay.name, version: 1, partition: 0 })

/** From 100 ms, doubling, at most 5 seconds, for as long as the failures last. */
export const backoff: Schedule.Schedule<unknown, unknown> = Schedule.exponential("100 millis").pipe(
  Schedule.modifyDelay(({ duration }) => Effect.succeed(Duration.min(duration, Duration.seconds(5))))
)

export const isRetryablePublish = (u: unknown): u is IntegrationEvent.PublishError =>
  IntegrationEvent.isPublishError(u) && u.retryable

/**
 * The waves of a batch: the first event of every stream, then the second..., each at most `size` events, so that
 * an event is published only after the one before it in its stream was acknowledged.
 */
const waves = <A extends { readonly streamId: string }>(
  events: ReadonlyArray<A>,
  size: number
): ReadonlyArray<ReadonlyArray<A>> => {
  const rank = new Map<string, number>()
  const byRank: Array<Array<A>> = []
  for (const event of events) {
    const r = rank.get(event.streamId) ?? 0
    rank.set(event.streamId, r + 1)
    const wave = byRank[r]
    if (wave === undefined) byRank[r] = [event]
    else wave.push(event)
  }
  return byRank.flatMap((wave) => Arr.chunksOf(wave, size))
}

interface Published {
  readonly position: Position.Position
  readonly parks: ReadonlyArray<{ readonly event: RecordedEvent; readonly reason: string }>
}

export const runLeased = Effect.fnUntraced(function* (relay: Relay, lease: Lease, options: RunOptions) {
  const store = yield* CheckpointStore
  const events = yield* EventStore
  const annotations = { relay: relay.name, owner: lease.owner, broker: relay.publisher.broker }
  const maxInFlight = Math.max(1, Math.floor(options.maxInFlight ?? 1000))
  let checkpoint = lease.checkpoint
  let retrying = false
  yield* store.setState(lease, "running")

  const retryStorage = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    effect.pipe(
      Effect.tapError((error) =>
        StorageError.isRetryable(error)
          ? Effect.logWarning("relay storage failed; retrying").pipe(
              Effect.annotateLogs({ ...annotations, error: error.message })
            )
          : Effect.void
      ),
      Effect.retry({ schedule: backoff, while: StorageError.isRetryable })
    )

  // what was published and awaits its commit: a page's position and the events parked on the way. A few pages may
  // wait (a full queue holds the publishing back), and the committer takes all that waits in one commit
  const acknowledged = yield* Queue.bounded<Published, Cause.Done>(4)

  /** Commits what was published, one commit at a time, until the publishing ends and everything is committed. */
  const committer = Effect.gen(function* () {
    while (true) {
      const taken = yield* Effect.catchTag(Queue.takeAll(acknowledged), "Done", () => Effect.succeed(undefined))
      if (taken === undefined) return
      const to = taken[taken.length - 1]!.position
      const parks = taken.flatMap((p) => p.parks)
      const parking = Effect.forEach(parks, (p) => store.park(lease.key, p.event, p.reason), { discard: true })
      // a started commit finishes before an interruption stops the run; publishes are interruptible (what they sent
      // is published again by the next holder, and the broker drops what it stored already)
      yield* retryStorage(
        Effect.uninterruptible(
          Effect.suspend(() =>
            Effect.tap(
              store.commit(lease, checkpoint, to, parking),
              Effect.sync(() => {
                checkpoint = to
              })
            )
          )
        )
      )
      for (const p of parks) {
        yield* Effect.logWarning("relay parked an event").pipe(
          Effect.annotateLogs({ ...annotations, eventId: p.event.eventId, error: p.reason })
        )
      }
    }
  })

  /** Publishes a wave, waiting out retryable broker failures; an event too large is parked instead. */
  const publish = (
    wave: ReadonlyArray<{ readonly event: RecordedEvent; readonly message: IntegrationEvent.IntegrationEvent }>,
    parks: Array<{ readonly event: RecordedEvent; readonly reason: string }>
  ): Effect.Effect<void, IntegrationEvent.PublishError, never> =>
    Effect.gen(function* () {
      let pending = wave
      while (pending.length > 0) {
        const exit = yield* Effect.exit(
          relay.publisher.publish(pending.map((p) => p.message)).pipe(
            Effect.tapError((error) =>
              isRetryablePublish(error)
                ? Effect.andThen(
                    Effect.logWarning("relay publish failed; retrying").pipe(
                      Effect.annotateLogs({ ...annotations, error: error.message })
                    ),
                    retrying
                      ? Effect.void
                      : Effect.andThen(
                          Effect.sync(() => {
                            retrying = true
                          }),
                          Effect.ignore(store.setState(lease, "running", `retrying after: ${error.message}`))
                        )
                  )
                : Effect.void
            ),
            Effect.retry({ schedule: backoff, while: isRetryablePublish })
          )
        )
        if (Exit.isSuccess(exit)) {
          if (retrying) {
            retrying = false
            yield* Effect.ignore(store.setState(lease, "running"))
          }
          return
        }
        const error = Cause.findErrorOption(exit.cause)
        if (
          Option.isSome(error) &&
          (IntegrationEvent.isMessageTooLarge(error.value) || IntegrationEvent.isMessageUnsendable(error.value))
        ) {
          const unsendable = error.value
          const found = pending.find((p) => p.message.eventId === unsendable.messageId)
          if (found !== undefined) {
            parks.push({ event: found.event, reason: unsendable.message })
            pending = pending.filter((p) => p !== found)
            continue
          }
        }
        return yield* Effect.failCause(exit.cause as Cause.Cause<IntegrationEvent.PublishError>)
      }
    })

  const process = Effect.fnUntraced(function* (page: Subscription.Page) {
    const parks: Array<{ readonly event: RecordedEvent; readonly reason: string }> = []
    const outgoing: Array<{
      readonly event: RecordedEvent
      readonly message: IntegrationEvent.IntegrationEvent
      readonly streamId: string
    }> = []
    for (const event of page.events) {
      const mapped = yield* Effect.exit(Effect.suspend(() => relay.map(event)))
      if (Exit.isFailure(mapped)) {
        const error = Cause.findErrorOption(mapped.cause)
        parks.push({ event, reason: describe(Option.isSome(error) ? error.value : Cause.squash(mapped.cause)) })
      } else if (mapped.value !== undefined) {
        outgoing.push({ event, message: mapped.value, streamId: event.streamId })
      }
    }
    const calls = relay.publisher.ordered === true ? Arr.chunksOf(outgoing, maxInFlight) : waves(outgoing, maxInFlight)
    for (const call of calls) yield* publish(call, parks)
    if (page.corrupted !== undefined) {
      const unreadable = page.corrupted
      parks.push({
        event: {
          eventId: (unreadable.eventId ?? "") as RecordedEvent["eventId"],
          streamId: unreadable.streamId as RecordedEvent["streamId"],
          version: unreadable.version,
          position: page.checkpoint,
          type: "(unreadable)",
          schemaVersion: 0,
          data: null,
          metadata: {},
          recordedAt: DateTime.makeUnsafe(0)
        },
        reason: unreadable.message
      })
    }
    // the checkpoint is committed behind the publishes, so that a slow commit does not hold the next pages back
    yield* Queue.offer(acknowledged, { position: page.checkpoint, parks })
  })

  const target = options.untilCaughtUp === true ? yield* events.lastCommitted : Position.start
  const pages = Subscription.pages({
    after: checkpoint,
    categories: relay.categories,
    types: relay.types,
    batchSize: options.batchSize ?? 1000,
    pollInterval: options.pollInterval
  }).pipe(
    // the next page is read while this one is published
    Stream.buffer({ capacity: 1 }),
    options.untilCaughtUp === true
      ? Stream.takeUntil((page: Subscription.Page) => page.caughtUp && !Position.isBefore(page.checkpoint, target))
      : (s) => s
  )
  const publishing = Effect.andThen(Stream.runForEach(pages, process), Queue.end(acknowledged))
  // the first to fail stops the other (a commit under way finishes first); the run ends when both did
  yield* Effect.all([publishing, committer], { concurrency: 2, discard: true })
})
