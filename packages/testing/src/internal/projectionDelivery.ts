import { assert, describe } from "@effect/vitest"
import { Projection } from "@facta/core"
import { Effect, Fiber, Option } from "effect"
import type { Appended, It } from "./projectionHelpers.ts"
import {
  append,
  appendRoundRobin,
  assertExactlyOnce,
  assertReached,
  checkpointOf,
  counter,
  counters,
  fold,
  makeModel,
  quick,
  quiet,
  runCaughtUp,
  sumsOf,
  uniqueCategory,
  uniqueName
} from "./projectionHelpers.ts"

/** Exactly-once delivery into a read model: over restarts, after interruptions, and through a rebuild. */
export const register = (it: It): void => {
  describe("delivery", () => {
    it.effect("counts every event exactly once over restarts: the read model is the fold over all events", () =>
      quiet(
        Effect.gen(function* () {
          const category = uniqueCategory("Once")
          const model = makeModel()
          const projection = counter(model, { name: uniqueName(), category })
          // no run ends on a full page (see the case on full pages below)
          const first = yield* appendRoundRobin(category, 3, 4)
          yield* runCaughtUp(projection, { batchSize: 5 })
          assertExactlyOnce(model, first, "after the first run")
          assert.deepStrictEqual(sumsOf(model), fold(first), "the read model after the first run")
          const more = yield* appendRoundRobin(category, 4, 2)
          yield* runCaughtUp(projection, { batchSize: 5 })
          const all = [...first, ...more]
          assertExactlyOnce(model, all, "after the second run")
          assert.deepStrictEqual(sumsOf(model), fold(all), "the read model after the second run")
          assertReached((yield* checkpointOf(projection.name)).checkpoint, all.at(-1)!.position, "the checkpoint")
        })
      )
    )

    it.effect("resumes from its checkpoint: a second run handles only the new events, in log order", () =>
      quiet(
        Effect.gen(function* () {
          const category = uniqueCategory("Resume")
          const model = makeModel()
          const projection = counter(model, { name: uniqueName(), category })
          const first = yield* appendRoundRobin(category, 2, 3)
          yield* runCaughtUp(projection, { batchSize: 4 })
          assert.strictEqual(model.calls.length, first.length, "handler calls in the first run")
          const calls = model.calls.length
          const more = yield* appendRoundRobin(category, 3, 1)
          yield* runCaughtUp(projection, { batchSize: 4 })
          assert.deepStrictEqual(
            model.calls.slice(calls).map((e) => e.eventId),
            more.map((e) => e.eventId),
            "the second run handles exactly the new events"
          )
        })
      )
    )

    it.effect("with untilCaughtUp, returns when already caught up: a run with nothing new to handle", () =>
      quiet(
        Effect.gen(function* () {
          const category = uniqueCategory("Idle")
          const model = makeModel()
          const projection = counter(model, { name: uniqueName(), category })
          const appended = yield* append(`${category}-1`, counters(2))
          yield* runCaughtUp(projection, {}, "the first run")
          yield* runCaughtUp(projection, { timeout: "3 seconds" }, "a second run with nothing new")
          assertExactlyOnce(model, appended)
          const empty = counter(makeModel(), { name: uniqueName(), category: uniqueCategory("Empty") })
          yield* runCaughtUp(empty, { timeout: "3 seconds" }, "a run over a category without events")
          yield* runCaughtUp(empty, { timeout: "3 seconds" }, "a second run over a category without events")
        })
      )
    )

    it.effect("with untilCaughtUp, returns when the last page it read was exactly full", () =>
      quiet(
        Effect.gen(function* () {
          const category = uniqueCategory("Full")
          const model = makeModel()
          const projection = counter(model, { name: uniqueName(), category })
          const appended = yield* append(`${category}-1`, counters(4))
          yield* runCaughtUp(projection, { batchSize: 2, timeout: "3 seconds" }, "a run over two full pages")
          assertExactlyOnce(model, appended)
        })
      )
    )

    it.effect("stops gracefully when interrupted mid-stream: after restarts, every event is handled exactly once", () =>
      quiet(
        Effect.gen(function* () {
          const category = uniqueCategory("Interrupt")
          const model = makeModel()
          const projection = counter(model, { name: uniqueName(), category })
          // a slow handler, so that interruptions land while a batch is in hand
          const slow: typeof projection = {
            ...projection,
            handle: (events) => Effect.andThen(Effect.sleep(`${events.length} millis`), projection.handle(events))
          }
          const appended: Array<Appended> = []
          const writer = yield* Effect.forkChild(
            Effect.forEach(
              Array.from({ length: 100 }, (_, i) => i),
              (i) =>
                Effect.flatMap(append(`${category}-${(i % 4) + 1}`, counters(2, i * 2 + 1)), (events) =>
                  Effect.sync(() => appended.push(...events))
                ).pipe(Effect.andThen(Effect.sleep("4 millis"))),
              { discard: true }
            )
          )
          for (const pause of [30, 55, 40, 70, 45, 25, 60, 35, 50, 40]) {
            const running = yield* Effect.forkChild(
              Projection.run(slow, { ...quick, batchSize: 5, pollInterval: "20 millis" })
            )
            yield* Effect.sleep(pause)
            yield* Fiber.interrupt(running)
            const row = yield* checkpointOf(projection.name)
            assert.isTrue(Option.isNone(row.owner), "an interrupted run gives its lease up")
            assert.strictEqual(row.state, "stopped", "an interrupted run leaves the projection stopped")
          }
          yield* Fiber.join(writer)
          // the last restart runs until it has reached the last event (not untilCaughtUp, which has its own cases)
          const last = yield* Effect.forkChild(
            Projection.run(slow, { ...quick, batchSize: 5, pollInterval: "20 millis" })
          )
          yield* Projection.waitFor(projection, appended.at(-1)!.position, { timeout: "5 seconds" })
          yield* Fiber.interrupt(last)
          assertExactlyOnce(model, appended, "after interruptions and restarts")
          const scratch = makeModel()
          yield* runCaughtUp(counter(scratch, { name: uniqueName(), category }))
          assert.deepStrictEqual(sumsOf(model), sumsOf(scratch), "the read model equals one built from scratch")
          assert.deepStrictEqual(sumsOf(model), fold(appended))
        })
      )
    )

    it.effect("rebuild resets the read model and replays every event: the result equals the first build", () =>
      quiet(
        Effect.gen(function* () {
          const category = uniqueCategory("Rebuild")
          const model = makeModel()
          const projection = counter(model, { name: uniqueName(), category })
          const appended = yield* appendRoundRobin(category, 3, 3)
          yield* runCaughtUp(projection, { batchSize: 4 })
          const built = sumsOf(model)
          const checkpoint = (yield* checkpointOf(projection.name)).checkpoint
          assert.strictEqual(model.resets, 0)
          yield* Projection.rebuild(projection, { ...quick, batchSize: 4 }).pipe(
            Effect.timeoutOrElse({
              duration: "5 seconds",
              orElse: () => Effect.sync(() => assert.fail("the rebuild did not return within 5 seconds"))
            })
          )
          assert.strictEqual(model.resets, 1, "reset ran once")
          assertExactlyOnce(model, appended, "after the rebuild")
          assert.strictEqual(model.calls.length, appended.length, "the rebuild replayed every event")
          assert.deepStrictEqual(sumsOf(model), built, "the rebuilt read model equals the first build")
          const row = yield* checkpointOf(projection.name)
          assertReached(row.checkpoint, checkpoint, "the checkpoint after the rebuild")
          assert.strictEqual(row.state, "stopped")
        })
      )
    )
  })
}
