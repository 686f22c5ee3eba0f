import type { Vitest } from "@effect/vitest"
import { assert } from "@effect/vitest"
import type { ProjectionError, StorageError } from "@facta/core"
import { CheckpointStore, Event, EventCodec, EventStore, Position, Projection } from "@facta/core"
import type { Duration } from "effect"
import { Effect, Option, References, Schedule, Schema } from "effect"
import { uniqueCategory } from "./conformanceHelpers.ts"

/** The test helpers of a projection conformance block: every case gets the stores under test. */
export type It = Vitest.MethodsNonLive<EventStore.EventStore | CheckpointStore.CheckpointStore>

/** The events of the suite: counters (summed by the read models) and notes (to tell types apart). */
export const Counted = Schema.TaggedStruct("Counted", { n: Schema.Int })
export const Noted = Schema.TaggedStruct("Noted", { text: Schema.String })
export const codec = EventCodec.make(Schema.Union([Counted, Noted]))
export type Ev = typeof Counted.Type | typeof Noted.Type

export { uniqueCategory }

/** A projection name no other case, and no other run against the same database, uses. */
export const uniqueName = (prefix = "proj"): string => `${prefix}-${Event.makeEventIdUnsafe()}`

/** Runs a case with info logs (catching up, leases taken) left out: only warnings and errors show. */
export const quiet = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.provideService(self, References.MinimumLogLevel, "Warn")

/** One appended event, as the case knows it. */
export interface Appended {
  readonly eventId: string
  readonly streamId: string
  readonly version: number
  readonly position: Position.Position
  readonly event: Ev
}

/** Appends events to a stream and returns them with their ids, versions and positions. */
export const append = Effect.fnUntraced(function* (streamId: string, events: ReadonlyArray<Ev>) {
  const store = yield* EventStore.EventStore
  const data = yield* Effect.forEach(events, (event) => EventCodec.toEventData(codec, event))
  const result = yield* store.append(streamId, data)
  return data.map(
    (d, i): Appended => ({
      eventId: d.eventId,
      streamId,
      version: result.nextExpectedVersion - data.length + i + 1,
      position: result.positions[i]!,
      event: events[i]!
    })
  )
})

/** `n` counters numbered from `from`. */
export const counters = (n: number, from = 1): Array<Ev> =>
  Array.from({ length: n }, (_, i) => Counted.make({ n: from + i }))

/** Appends `perStream` counters to each of `streams` streams of `category`, round-robin (one event per append). */
export const appendRoundRobin = Effect.fnUntraced(function* (category: string, streams: number, perStream: number) {
  const appended: Array<Appended> = []
  for (let round = 0; round < perStream; round++) {
    for (let s = 1; s <= streams; s++) {
      appended.push(...(yield* append(`${category}-${s}`, [Counted.make({ n: round * streams + s })])))
    }
  }
  return appended
})

/**
 * An in-memory read model that records every handler call: how many times each event was handled (a count above 1
 * is a duplicate), the order of the calls, and the sum of the counters per stream.
 */
export interface Model {
  readonly counts: Map<string, number>
  readonly calls: Array<Event.RecordedEvent<Ev>>
  readonly sums: Map<string, number>
  resets: number
}

export const makeModel = (): Model => ({ counts: new Map(), calls: [], sums: new Map(), resets: 0 })

const record = (model: Model, event: Event.RecordedEvent<Ev>) => {
  model.counts.set(event.eventId, (model.counts.get(event.eventId) ?? 0) + 1)
  model.calls.push(event)
  if (event.data._tag === "Counted") {
    model.sums.set(event.streamId, (model.sums.get(event.streamId) ?? 0) + event.data.n)
  }
}

/** The error a poisoned event's handler fails with. */
export const poisonMessage = (eventId: string) => `poisoned event ${eventId}`

/** A projection of `category` into `model`; the handler fails on the events in `failOn`. */
export const counter = (
  model: Model,
  options: {
    readonly name: string
    readonly category: string
    readonly version?: number
    readonly onFailure?: "stop" | "park"
    readonly failOn?: ReadonlySet<string>
  }
) =>
  Projection.make({
    name: options.name,
    version: options.version ?? 1,
    events: codec,
    categories: [options.category],
    onFailure: options.onFailure ?? "stop",
    retry: Schedule.recurs(1),
    handle: (event) =>
      Effect.suspend(() => {
        if (options.failOn?.has(event.eventId) === true) return Effect.fail(new Error(poisonMessage(event.eventId)))
        record(model, event)
        return Effect.void
      }),
    reset: Effect.sync(() => {
      model.counts.clear()
      model.calls.length = 0
      model.sums.clear()
      model.resets += 1
    })
  })

/** Options that keep runs quick: short batch windows and lease intervals. */
export const quick = { batchWindow: "10 millis", leaseTtl: "1 second" } as const

/** The sum of the counters per stream, as a plain object: what a read model built from `events` holds. */
export const fold = (events: ReadonlyArray<Appended>): Record<string, number> => {
  const sums: Record<string, number> = {}
  for (const { event, streamId } of events) {
    if (event._tag === "Counted") sums[streamId] = (sums[streamId] ?? 0) + event.n
  }
  return sums
}

export const sumsOf = (model: Model): Record<string, number> => Object.fromEntries(model.sums)

/** Asserts that every event in `expected` was handled exactly once, and nothing else was handled. */
export const assertExactlyOnce = (model: Model, expected: ReadonlyArray<Appended>, what = "handled events"): void => {
  const duplicates = [...model.counts].filter(([, count]) => count > 1)
  assert.deepStrictEqual(duplicates, [], `${what}: events handled more than once`)
  assert.deepStrictEqual(
    [...model.counts.keys()].sort(),
    expected.map((e) => e.eventId).sort(),
    `${what}: the events handled differ from the events appended`
  )
}

/** Runs a projection until it has caught up, failing (instead of hanging) after `timeout`. */
export const runCaughtUp = <E extends { readonly _tag: string }, R>(
  projection: Projection.Projection<E, R>,
  options?: Projection.RunOptions & { readonly timeout?: Duration.Input },
  what = "the run with untilCaughtUp"
): Effect.Effect<
  void,
  ProjectionError.ProjectionFailed | StorageError.StorageError,
  R | EventStore.EventStore | CheckpointStore.CheckpointStore
> =>
  Projection.run(projection, { ...quick, ...options, untilCaughtUp: true }).pipe(
    Effect.timeoutOrElse({
      duration: options?.timeout ?? "5 seconds",
      orElse: () =>
        Effect.sync(() => assert.fail(`${what} did not return within ${String(options?.timeout ?? "5 seconds")}`))
    })
  )

/** The checkpoint rows of a projection. */
export const statusOf = (name: string) => CheckpointStore.CheckpointStore.use((store) => store.status(name))

/** The checkpoint of one row (version 1, partition 0 unless told), failing when there is none. */
export const checkpointOf = Effect.fnUntraced(function* (name: string, version = 1, partition = 0) {
  const rows = yield* statusOf(name)
  const row = rows.find((r) => r.key.version === version && r.key.partition === partition)
  if (row === undefined) return assert.fail(`no checkpoint row for ${name}@${version}#${partition}`)
  return row
})

/** Asserts that `actual` is at or after `position`. */
export const assertReached = (actual: Position.Position, position: Position.Position, what: string): void =>
  assert.isFalse(
    Position.isBefore(actual, position),
    `${what}: ${Position.format(actual)} should be at or after ${Position.format(position)}`
  )

/** Polls `condition` every 5 ms until it holds, failing after `timeout`. */
export const eventually = <E, R>(
  condition: Effect.Effect<boolean, E, R>,
  what: string,
  timeout: Duration.Input = "3 seconds"
): Effect.Effect<void, E, R> =>
  condition.pipe(
    Effect.repeat({ schedule: Schedule.spaced("5 millis"), until: (done) => done }),
    Effect.timeoutOrElse({
      duration: timeout,
      orElse: () => Effect.sync(() => assert.fail(`timed out waiting: ${what}`))
    }),
    Effect.asVoid
  )

export const ownerOf = (row: CheckpointStore.Status): string | undefined =>
  Option.getOrUndefined(
    Option.map(row.owner, (holder) => (holder.includes("/") ? holder.slice(0, holder.lastIndexOf("/")) : holder))
  )
