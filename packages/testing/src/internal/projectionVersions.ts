import { assert, describe } from "@effect/vitest"
import { CheckpointStore, Position, Projection } from "@facta/core"
import { Effect, Fiber, Option } from "effect"
import { expectFailure } from "./conformanceHelpers.ts"
import type { It } from "./projectionHelpers.ts"
import {
  append,
  appendRoundRobin,
  checkpointOf,
  counter,
  counters,
  eventually,
  fold,
  makeModel,
  quiet,
  runCaughtUp,
  statusOf,
  sumsOf,
  uniqueCategory,
  uniqueName
} from "./projectionHelpers.ts"

const activeVersion = (name: string) => CheckpointStore.CheckpointStore.use((store) => store.activeVersion(name))

/** `waitFor`, and blue/green versions of a read model. */
export const register = (it: It): void => {
  describe("waitFor and versions", () => {
    it.effect("waitFor resolves once an append is projected, and fails with ProjectionLagging when nothing runs", () =>
      quiet(
        Effect.gen(function* () {
          const category = uniqueCategory("Wait")
          const model = makeModel()
          const projection = counter(model, { name: uniqueName(), category })
          const running = yield* Effect.forkChild(
            Projection.run(projection, { pollInterval: "10 seconds", batchWindow: "10 millis" })
          )
          yield* eventually(
            Effect.map(statusOf(projection.name), (rows) => rows.some((r) => r.state === "running")),
            "the projection starts"
          )
          yield* Effect.sleep("200 millis")
          const appended = yield* append(`${category}-1`, counters(2))
          yield* Projection.waitFor(projection, appended[1]!.position, { timeout: "2 seconds" }).pipe(
            Effect.catchTag("ProjectionLagging", (e) =>
              Effect.sync(() => assert.fail(`${e.message} (poll interval 10 s: a live append must wake it up)`))
            )
          )
          assert.deepStrictEqual(sumsOf(model), fold(appended), "the append is in the read model once waitFor returns")

          yield* Fiber.interrupt(running)
          yield* Projection.waitFor(projection, appended[0]!.position, { timeout: "200 millis" })
          const [later] = yield* append(`${category}-1`, counters(1, 3))
          const lagging = yield* expectFailure(
            Projection.waitFor(projection, later!.position, { timeout: "200 millis" }),
            "ProjectionLagging"
          )
          assert.strictEqual(lagging.name, projection.name)
          assert.strictEqual(lagging.version, 1)
          assert.strictEqual(lagging.position, Position.format(later!.position))
        })
      )
    )

    it.effect("blue/green: version 2 builds beside version 1 and becomes active once caught up", () =>
      quiet(
        Effect.gen(function* () {
          const category = uniqueCategory("Blue")
          const name = uniqueName()
          const blue = makeModel()
          const v1 = counter(blue, { name, category, version: 1 })
          const first = yield* appendRoundRobin(category, 2, 3)
          yield* runCaughtUp(v1)
          assert.deepStrictEqual(yield* activeVersion(name), Option.some(1), "version 1 is active once caught up")
          const v1Row = yield* checkpointOf(name, 1)

          const more = yield* appendRoundRobin(category, 3, 1)
          const green = makeModel()
          const v2 = counter(green, { name, category, version: 2 })
          assert.deepStrictEqual(yield* activeVersion(name), Option.some(1), "version 1 stays active meanwhile")
          yield* runCaughtUp(v2)
          assert.deepStrictEqual(yield* activeVersion(name), Option.some(2), "version 2 is active once caught up")
          assert.deepStrictEqual(sumsOf(green), fold([...first, ...more]), "version 2 built from the whole log")
          assert.deepStrictEqual(sumsOf(blue), fold(first), "version 1's read model is untouched")

          const rows = yield* statusOf(name)
          assert.deepStrictEqual(rows.map((r) => r.key.version).sort(), [1, 2], "both versions keep a checkpoint row")
          assert.isTrue(
            Position.equals((yield* checkpointOf(name, 1)).checkpoint, v1Row.checkpoint),
            "version 1's checkpoint stays where it was"
          )

          yield* runCaughtUp(v1)
          assert.deepStrictEqual(yield* activeVersion(name), Option.some(2), "an older version never takes over again")
        })
      )
    )
  })
}
