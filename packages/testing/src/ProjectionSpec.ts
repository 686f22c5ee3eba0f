/**
 * Given/when/then for projections: given the events some streams hold, when (optionally) more events arrive, then
 * the read model holds this value, or the projection stops on this event.
 *
 * A scenario appends its events (encoded with the projection's own codec) to the `EventStore` in context and runs the
 * projection until it has caught up with them (`Projection.run(projection, { untilCaughtUp: true })`) against the
 * `CheckpointStore` in context; then a check reads the read model with an effect of your own and compares. Since it
 * only uses the services in context, the same scenario runs on the in-memory stores and on PostgreSQL.
 *
 * A mismatch is a defect carrying an `AssertionError` (from `@effect/vitest`'s `assert`) whose message names the
 * projection and the events, so the checks work inside `it.effect` and `it.live` alike.
 *
 * @since 0.1.0
 */
import { assert } from "@effect/vitest"
import type { CheckpointStore, EventStore, ProjectionError, StorageError } from "@facta/core"
import { Event, EventCodec, Projection, EventStore as Store } from "@facta/core"
import type { Duration } from "effect"
import { Cause, Clock, Effect, Exit, Option } from "effect"
import { show } from "./internal/show.ts"

/**
 * The events of one stream, in order: `[streamId, events]`.
 *
 * @example
 * ```ts
 * import type { ProjectionSpec } from "@facta/testing"
 *
 * type Deposited = { readonly _tag: "Deposited"; readonly amount: number }
 * const account: ProjectionSpec.StreamEvents<Deposited> = ["Account-1", [{ _tag: "Deposited", amount: 5 }]]
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type StreamEvents<E> = readonly [streamId: string, events: ReadonlyArray<E>]

/**
 * How a scenario runs its projection: any of `Projection.run`'s options except `untilCaughtUp` (always on) and
 * `rebuild`, plus `timeout`, how long each run may take to catch up before the check fails (default 10 seconds).
 *
 * @example
 * ```ts
 * import type { ProjectionSpec } from "@facta/testing"
 *
 * const options: ProjectionSpec.Options = { partitions: 4, batchSize: 2, timeout: "2 seconds" }
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type Options = Omit<Projection.RunOptions, "untilCaughtUp" | "rebuild"> & {
  readonly timeout?: Duration.Input | undefined
}

/**
 * What a scenario needs in context: the event store its events go to and the checkpoint store its projection keeps
 * its place in.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { CheckpointStore, EventStore } from "@facta/core"
 * import type { ProjectionSpec } from "@facta/testing"
 *
 * const stores: Layer.Layer<ProjectionSpec.Stores> = Layer.mergeAll(EventStore.layerMemory, CheckpointStore.layerMemory)
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type Stores = EventStore.EventStore | CheckpointStore.CheckpointStore

/**
 * What `expectFailure` can check of the `ProjectionFailed` error: some of its fields (compared with `===`), or a
 * predicate.
 *
 * @example
 * ```ts
 * import type { ProjectionSpec } from "@facta/testing"
 *
 * const onSecondEvent: ProjectionSpec.ExpectedFailure = { streamId: "Account-1", streamVersion: 2 }
 * const anyFailure: ProjectionSpec.ExpectedFailure = () => true
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type ExpectedFailure =
  | Partial<Pick<ProjectionError.ProjectionFailed, "eventId" | "streamId" | "streamVersion" | "partition" | "position">>
  | ((error: ProjectionError.ProjectionFailed) => boolean)

/**
 * A projection and the events a scenario feeds it, step by step: `given`'s events, then each `when`'s. After each step
 * is appended, the projection runs until it has caught up with it.
 *
 * Each check runs the whole scenario. Running it again is harmless: every event keeps the id it was given when the
 * scenario was built, so appending it again is an idempotent retry, and the projection resumes from its checkpoint.
 * The checks are not named `then` on purpose: an object with a `then` method is a thenable.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import type { Projection } from "@facta/core"
 * import { ProjectionSpec } from "@facta/testing"
 *
 * type Deposited = { readonly _tag: "Deposited"; readonly amount: number }
 * declare const Balances: Projection.Projection<Deposited>
 * declare const balance: (account: string) => Effect.Effect<number>
 *
 * const check = ProjectionSpec.given(Balances, [["Account-1", [{ _tag: "Deposited", amount: 5 }]]])
 *   .when([["Account-1", [{ _tag: "Deposited", amount: 3 }]]])
 *   .expect(balance("Account-1"), 8)
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Scenario<E extends { readonly _tag: string }, R> {
  readonly projection: Projection.Projection<E, R>
  /** The events of each step, `given`'s first. */
  readonly steps: ReadonlyArray<ReadonlyArray<StreamEvents<E>>>
  /**
   * Adds a step: these events arrive after the projection caught up with the earlier ones, so the projection runs
   * again and resumes from its checkpoint.
   */
  readonly when: (events: ReadonlyArray<StreamEvents<E>>) => Scenario<E, R>
  /**
   * Appends every step's events and runs the projection to caught-up after each step. Fails with the projection's
   * error; dies when an append is refused or a run does not catch up within the timeout.
   */
  readonly run: Effect.Effect<void, ProjectionError.ProjectionFailed | StorageError.StorageError, R | Stores>
  /** Runs the scenario, then reads the read model with `read` and checks that it equals `expected` (deep, strict). */
  readonly expect: <A, E2, R2>(
    read: Effect.Effect<A, E2, R2>,
    expected: NoInfer<A>
  ) => Effect.Effect<void, never, R | R2 | Stores>
  /**
   * Runs the scenario, then reads the read model with `read` and hands it to `check`, which asserts what it wants
   * (with `assert`, or by returning `false`).
   */
  readonly expectThat: <A, E2, R2>(
    read: Effect.Effect<A, E2, R2>,
    check: (value: A) => unknown
  ) => Effect.Effect<void, never, R | R2 | Stores>
  /** Runs the scenario and checks that the projection stops with `ProjectionFailed` (on the given event, if told). */
  readonly expectFailure: (expected?: ExpectedFailure) => Effect.Effect<void, never, R | Stores>
}

/**
 * Starts a scenario from the events some streams hold, appended in the order given (stream by stream).
 *
 * @example
 * ```ts
 * import { assert, it, layer } from "@effect/vitest"
 * import { CheckpointStore, EventCodec, EventStore, Projection } from "@facta/core"
 * import { ProjectionSpec } from "@facta/testing"
 * import { Effect, Layer, Schema } from "effect"
 *
 * const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Int })
 * const Withdrawn = Schema.TaggedStruct("Withdrawn", { amount: Schema.Int })
 * const balances = new Map<string, number>()
 * const Balances = Projection.make({
 *   name: "balances",
 *   events: EventCodec.make(Schema.Union([Deposited, Withdrawn])),
 *   handle: (event) =>
 *     Effect.sync(() => {
 *       const delta = event.data._tag === "Deposited" ? event.data.amount : -event.data.amount
 *       balances.set(event.streamId, (balances.get(event.streamId) ?? 0) + delta)
 *     }),
 *   reset: Effect.sync(() => balances.clear())
 * })
 * const read = Effect.sync(() => Object.fromEntries(balances))
 *
 * layer(Layer.mergeAll(EventStore.layerMemory, CheckpointStore.layerMemory))((it) => {
 *   it.effect("sums each account", () =>
 *     ProjectionSpec.given(Balances, [
 *       ["Account-1", [Deposited.make({ amount: 10 }), Withdrawn.make({ amount: 4 })]],
 *       ["Account-2", [Deposited.make({ amount: 7 })]]
 *     ]).expect(read, { "Account-1": 6, "Account-2": 7 }))
 * })
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const given = <E extends { readonly _tag: string }, R>(
  projection: Projection.Projection<E, R>,
  events: ReadonlyArray<StreamEvents<NoInfer<E>>> = [],
  options?: Options
): Scenario<E, R> => makeScenario(projection, [withIds(events)], options ?? {})

/**
 * Binds {@link given} to one projection (and its run options), for a test file about it.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import type { Projection } from "@facta/core"
 * import { ProjectionSpec } from "@facta/testing"
 *
 * type Deposited = { readonly _tag: "Deposited"; readonly amount: number }
 * declare const Balances: Projection.Projection<Deposited>
 * declare const balance: (account: string) => Effect.Effect<number>
 *
 * const spec = ProjectionSpec.make(Balances, { partitions: 2 })
 * const check = spec.given([["Account-1", [{ _tag: "Deposited", amount: 5 }]]]).expect(balance("Account-1"), 5)
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = <E extends { readonly _tag: string }, R>(
  projection: Projection.Projection<E, R>,
  options?: Options
): { readonly given: (events?: ReadonlyArray<StreamEvents<E>>) => Scenario<E, R> } => ({
  given: (events) => given(projection, events ?? [], options)
})

/** A step's events, each with the id it keeps for every run of the scenario. */
type Step<E> = ReadonlyArray<{
  readonly streamId: string
  readonly events: ReadonlyArray<{ readonly event: E; readonly eventId: Event.EventId }>
}>

const withIds = <E>(streams: ReadonlyArray<StreamEvents<E>>): Step<E> =>
  streams.map(([streamId, events]) => ({
    streamId,
    events: events.map((event) => ({ event, eventId: Event.makeEventIdUnsafe() }))
  }))

/** Runs `self` on the live clock when a `TestClock` is in place: a projection batches and leases on real time. */
const onLiveClock = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Clock.clockWith((clock) => {
    const withLive = (clock as { readonly withLive?: unknown }).withLive
    return typeof withLive === "function"
      ? (withLive as (effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>).call(clock, self)
      : self
  })

const fail = (message: string): Effect.Effect<never> => Effect.sync(() => assert.fail(message))

const makeScenario = <E extends { readonly _tag: string }, R>(
  projection: Projection.Projection<E, R>,
  steps: ReadonlyArray<Step<E>>,
  options: Options
): Scenario<E, R> => {
  const { timeout, ...runOptions } = options
  const limit = timeout ?? "10 seconds"
  const describeStep = (step: Step<E>) =>
    step.length === 0 ? "no events" : step.map((s) => `${s.streamId}: ${show(s.events.map((e) => e.event))}`).join(", ")
  const header = [
    `ProjectionSpec: projection ${projection.name} v${projection.version},`,
    `given ${describeStep(steps[0] ?? [])}`,
    ...steps.slice(1).map((step) => `when ${describeStep(step)}`)
  ].join("\n")

  const append = (step: Step<E>) =>
    Effect.forEach(
      step,
      ({ events, streamId }) =>
        Effect.flatMap(
          Effect.forEach(events, ({ event, eventId }) => EventCodec.toEventData(projection.events, event, { eventId })),
          (data) => Store.EventStore.use((store) => store.append(streamId, data))
        ).pipe(Effect.catch((error) => fail(`${header}\nappending to ${streamId} failed: ${show(error)}`))),
      { discard: true }
    )

  const runOnce = onLiveClock(
    Projection.run(projection, { ...runOptions, untilCaughtUp: true }).pipe(
      Effect.timeoutOrElse({
        duration: limit,
        orElse: () =>
          fail(`${header}\nthe projection did not catch up within ${typeof limit === "string" ? limit : show(limit)}`)
      })
    )
  )

  const run = Effect.forEach(steps, (step) => Effect.andThen(append(step), runOnce), { discard: true })

  /** Runs the scenario; a projection failure is a failed check. */
  const runChecked = Effect.catchTag(run, "ProjectionFailed", (error) =>
    fail(`${header}\nthe projection failed: ${error.message}`)
  ).pipe(Effect.catch((error) => fail(`${header}\nthe projection failed: ${show(error)}`)))

  const read = <A, E2, R2>(self: Effect.Effect<A, E2, R2>) =>
    Effect.catchCause(self, (cause) =>
      Cause.hasInterruptsOnly(cause)
        ? Effect.failCause(cause as Cause.Cause<never>)
        : fail(`${header}\nreading the read model failed:\n${Cause.pretty(cause)}`)
    )

  const expect = <A, E2, R2>(self: Effect.Effect<A, E2, R2>, expected: A) =>
    Effect.andThen(runChecked, read(self)).pipe(
      Effect.flatMap((actual) =>
        Effect.sync(() =>
          assert.deepStrictEqual(actual, expected, `${header}\nthe read model differs from the expected one`)
        )
      )
    )

  const expectThat = <A, E2, R2>(self: Effect.Effect<A, E2, R2>, check: (value: A) => unknown) =>
    Effect.andThen(runChecked, read(self)).pipe(
      Effect.flatMap((actual) =>
        Effect.sync(() => {
          if (check(actual) === false) assert.fail(`${header}\nthe read model ${show(actual)} fails the check`)
        })
      )
    )

  const expectFailure = (expected?: ExpectedFailure) =>
    Effect.flatMap(Effect.exit(run), (exit) => {
      if (Exit.isSuccess(exit)) return fail(`${header}\nexpected the projection to fail, but it caught up`)
      const error = Cause.findErrorOption(exit.cause)
      if (Option.isNone(error) || error.value._tag !== "ProjectionFailed") {
        return fail(`${header}\nexpected ProjectionFailed, but the run ended with:\n${Cause.pretty(exit.cause)}`)
      }
      const failed = error.value
      if (expected === undefined) return Effect.void
      if (typeof expected === "function") {
        return expected(failed) ? Effect.void : fail(`${header}\n${show(failed)} fails the check`)
      }
      return Effect.sync(() => {
        const picked = Object.fromEntries(
          Object.keys(expected).map((key) => [key, failed[key as keyof typeof expected]])
        )
        assert.deepStrictEqual(
          picked,
          { ...expected },
          `${header}\nthe projection failed on another event: ${failed.message}`
        )
      })
    })

  return {
    projection,
    steps: steps.map((step) => step.map((s): StreamEvents<E> => [s.streamId, s.events.map((e) => e.event)])),
    when: (events) => makeScenario(projection, [...steps, withIds(events)], options),
    run,
    expect,
    expectThat,
    expectFailure
  }
}
