/**
 * Subscriptions: the global log as an endless `Stream` that catches up from a checkpoint, then tails live.
 *
 * A subscription reads the log in pages with `readAll`. When it has caught up it waits for the store's wake-up
 * signal (`NOTIFY` on PostgreSQL, a `PubSub` in memory) or for its poll interval, whichever comes first, and reads
 * again. Polling is the source of truth: a lost wake-up, or a dropped listen connection, only delays events by up
 * to one poll interval. Because `readAll` never skips an event, neither does a subscription.
 *
 * @since 0.1.0
 */
import { Duration, Effect, Option, Queue, Stream } from "effect"
import type { RecordedEvent } from "./Event.ts"
import { EventStore } from "./EventStore.ts"
import type { CorruptedEvent } from "./EventStoreError.ts"
import * as Position from "./Position.ts"
import type { StorageError } from "./StorageError.ts"

/**
 * Where a subscription starts and what it reads: events after `after` (default: the start of the log), of the given
 * categories and types when set, `batchSize` at a time (default 500), polling every `pollInterval` when idle
 * (default 1 second).
 *
 * @category models
 * @since 0.1.0
 */
export interface Options {
  readonly after?: Position.Position | undefined
  readonly categories?: ReadonlyArray<string> | undefined
  readonly types?: ReadonlyArray<string> | undefined
  readonly batchSize?: number | undefined
  readonly pollInterval?: Duration.Input | undefined
}

/**
 * One read of the log: its events, in order, and the checkpoint to resume after.
 *
 * `checkpoint` is the last event's position, or, once the reader has caught up, the log's head even when the filters
 * left nothing to deliver, so that a filtered reader's checkpoint keeps up with the log (and `waitFor` on any
 * position resolves).
 *
 * @category models
 * @since 0.1.0
 */
export interface Page {
  readonly events: ReadonlyArray<RecordedEvent>
  readonly checkpoint: Position.Position
  /** Whether this read reached the end of the log as it was then. */
  readonly caughtUp: boolean
  /**
   * A stored event that cannot be read, right after `events`: `checkpoint` is its position, so a reader that has
   * dealt with it (stopped, or parked it) goes on after it.
   */
  readonly corrupted?: CorruptedEvent | undefined
}

/**
 * The log as pages, catching up then tailing forever. A page is emitted whenever there are events or the checkpoint
 * moved, and once (even empty) when a read first reaches the end of the log; an idle subscription emits nothing more.
 *
 * @example
 * ```ts
 * import { Stream } from "effect"
 * import { Subscription } from "@facta/core"
 *
 * const checkpoints = Subscription.pages({ categories: ["Account"] }).pipe(Stream.map((page) => page.checkpoint))
 * ```
 *
 * @category streams
 * @since 0.1.0
 */
export const pages = (options?: Options): Stream.Stream<Page, StorageError, EventStore> =>
  Stream.unwrap(
    Effect.gen(function* () {
      const store = yield* EventStore
      const batchSize = Math.max(1, Math.floor(options?.batchSize ?? 500))
      const pollInterval = options?.pollInterval ?? "1 second"
      const wake = yield* Queue.sliding<void>(1)
      // wake-ups are hints: if the signal fails, polling carries on alone
      yield* store.wakeups.pipe(
        Stream.runForEach(() => Queue.offer(wake, undefined)),
        Effect.ignore,
        Effect.forkScoped
      )
      // true when woken, false when the poll interval passed
      const idle = Effect.raceFirst(Effect.as(Queue.take(wake), true), Effect.as(Effect.sleep(pollInterval), false))
      const pollMillis = Duration.toMillis(Duration.fromInputUnsafe(pollInterval))
      // the events up to a corrupted one, and that one (which ends the read)
      const read = (after: Position.Position, size: number) => {
        const events: Array<RecordedEvent> = []
        return store.readAll({ after, categories: options?.categories, types: options?.types, batchSize: size }).pipe(
          Stream.take(size),
          Stream.runForEachArray((chunk) =>
            Effect.sync(() => {
              for (const event of chunk) events.push(event)
            })
          ),
          Effect.as({ events, corrupted: undefined as CorruptedEvent | undefined }),
          Effect.catchTag("CorruptedEvent", (corrupted) => Effect.succeed({ events, corrupted }))
        )
      }
      interface Read {
        readonly events: ReadonlyArray<RecordedEvent>
        readonly corrupted: CorruptedEvent | undefined
        /** Taken before the read; absent only when the read came back full */
        readonly head: Position.Position | undefined
      }
      // the head is taken before the read: a read that then reaches the end has seen everything up to it
      const readBehindHead = Effect.fnUntraced(function* (after: Position.Position) {
        const head = yield* store.head
        const page: Read = { ...(yield* read(after, batchSize)), head }
        return page
      })
      // Behind a full page the log most likely goes on: read first, and take the head only when the read comes back
      // short, then read what committed meanwhile (one round trip a page while catching up, three at its end)
      const readAhead = Effect.fnUntraced(function* (after: Position.Position) {
        const first = yield* read(after, batchSize)
        const full: Read = { ...first, head: undefined }
        if (first.corrupted !== undefined || first.events.length === batchSize) return full
        const head = yield* store.head
        const rest = yield* read(first.events.at(-1)?.position ?? after, batchSize - first.events.length)
        const page: Read = { events: [...first.events, ...rest.events], corrupted: rest.corrupted, head }
        return page
      })
      return Stream.paginate(
        { after: options?.after ?? Position.start, waiting: false, reported: false, held: 0, full: true },
        Effect.fnUntraced(function* (state) {
          const woken = !state.waiting
            ? false
            : state.held > 0
              ? yield* Effect.as(Effect.sleep(Math.min(pollMillis, 10 * 2 ** state.held)), true)
              : yield* idle
          const { events, corrupted, head } = state.full
            ? yield* readAhead(state.after)
            : yield* readBehindHead(state.after)
          if (corrupted !== undefined) {
            // a store's readAll names where a corrupted event stands; one that does not is broken itself
            if (corrupted.position === undefined) return yield* Effect.die(corrupted)
            const page: Page = { events, checkpoint: corrupted.position, caughtUp: false, corrupted }
            return [
              [page],
              Option.some({ after: corrupted.position, waiting: false, reported: state.reported, held: 0, full: true })
            ] as const
          }
          // a read that came back short took the head first (only a full one may come without)
          const caughtUp = events.length < batchSize && head !== undefined
          const last = events.at(-1)?.position ?? state.after
          const checkpoint = caughtUp ? Position.max(last, head) : last
          const moved = events.length > 0 || Position.isBefore(state.after, checkpoint)
          // the first read that reaches the end is emitted even when empty, so that a reader learns it caught up
          const emit = moved || (caughtUp && !state.reported)
          // woken for nothing: a commit may stand behind the horizon (an older transaction is still open); it is
          // readable as soon as that one ends, so look again soon, backing off, rather than a poll interval later
          const held =
            woken && caughtUp && !moved && Position.isBefore(head, yield* store.lastCommitted)
              ? Math.min(state.held + 1, 16)
              : 0
          return [
            emit ? [{ events, checkpoint, caughtUp }] : [],
            Option.some({
              after: checkpoint,
              waiting: caughtUp,
              reported: caughtUp && (state.reported || emit),
              held,
              full: !caughtUp
            })
          ] as const
        })
      )
    })
  )

/**
 * The log as events, catching up from `after` then tailing forever.
 *
 * @example
 * ```ts
 * import { Effect, Stream } from "effect"
 * import { EventStore, Subscription } from "@facta/core"
 *
 * const firstTen = Subscription.subscribe({ categories: ["Order"] }).pipe(
 *   Stream.take(10),
 *   Stream.runCollect,
 *   Effect.provide(EventStore.layerMemory)
 * )
 * ```
 *
 * @see {@link Projection.run} which reads the log through it
 * @category streams
 * @since 0.1.0
 */
export const subscribe = (options?: Options): Stream.Stream<RecordedEvent, StorageError | CorruptedEvent, EventStore> =>
  Stream.flatMap(pages(options), (page) =>
    page.corrupted === undefined
      ? Stream.fromIterable(page.events)
      : Stream.concat(Stream.fromIterable(page.events), Stream.fail(page.corrupted))
  )
