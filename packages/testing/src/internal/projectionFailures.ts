import { assert, describe } from "@effect/vitest"
import { CheckpointStore, Position } from "@facta/core"
import { Effect, Option } from "effect"
import { expectFailure } from "./conformanceHelpers.ts"
import type { It } from "./projectionHelpers.ts"
import {
  append,
  assertReached,
  checkpointOf,
  counter,
  counters,
  makeModel,
  poisonMessage,
  quiet,
  runCaughtUp,
  uniqueCategory,
  uniqueName
} from "./projectionHelpers.ts"

const sorted = (ids: Iterable<string>) => [...ids].sort()

/**
 * Poison events: a handler that keeps failing on an event. Only which events were handled is checked, not how often:
 * a failed batch may have handled some of its events before failing, and an in-memory read model cannot undo that.
 */
export const register = (it: It): void => {
  describe("poison events", () => {
    it.effect("with onFailure stop: fails with ProjectionFailed naming the event, before handling what follows", () =>
      quiet(
        Effect.gen(function* () {
          const category = uniqueCategory("Stop")
          const model = makeModel()
          const streamId = `${category}-1`
          const appended = yield* append(streamId, counters(5))
          const poison = appended[2]!
          const projection = counter(model, {
            name: uniqueName(),
            category,
            onFailure: "stop",
            failOn: new Set([poison.eventId])
          })
          const failed = yield* expectFailure(runCaughtUp(projection), "ProjectionFailed")
          assert.strictEqual(failed.name, projection.name)
          assert.strictEqual(failed.version, 1)
          assert.strictEqual(failed.partition, 0)
          assert.strictEqual(failed.eventId, poison.eventId, "the error names the poison event")
          assert.strictEqual(failed.streamId, streamId)
          assert.strictEqual(failed.streamVersion, 3)
          assert.strictEqual(failed.position, Position.format(poison.position))
          assert.include(failed.message, poisonMessage(poison.eventId), "the message carries the handler's error")
          assert.deepStrictEqual(
            sorted(model.counts.keys()),
            sorted(appended.slice(0, 2).map((e) => e.eventId)),
            "the events before the poison one were handled, none after it"
          )
          const row = yield* checkpointOf(projection.name)
          assertReached(row.checkpoint, appended[1]!.position, "the checkpoint")
          assert.isTrue(
            Position.isBefore(row.checkpoint, poison.position),
            `the checkpoint ${Position.format(row.checkpoint)} stays before the poison event`
          )
          assert.strictEqual(row.state, "failed")
          assert.isTrue(Option.isNone(row.owner), "a failed run gives its lease up")

          const again = yield* expectFailure(runCaughtUp(projection), "ProjectionFailed")
          assert.strictEqual(again.eventId, poison.eventId, "a restart stops on the same event")
          assert.isFalse(model.counts.has(appended[3]!.eventId), "nothing after the poison event is handled")
          assert.isFalse(model.counts.has(appended[4]!.eventId), "nothing after the poison event is handled")
        })
      )
    )

    it.effect("with onFailure park: parks the event with its error, handles every other one, and moves past it", () =>
      quiet(
        Effect.gen(function* () {
          const category = uniqueCategory("Park")
          const model = makeModel()
          const first = yield* append(`${category}-1`, counters(4))
          const second = yield* append(`${category}-2`, counters(2, 5))
          const poison = first[2]!
          const projection = counter(model, {
            name: uniqueName(),
            category,
            onFailure: "park",
            failOn: new Set([poison.eventId])
          })
          yield* runCaughtUp(projection)
          const healthy = [...first, ...second].filter((e) => e.eventId !== poison.eventId)
          assert.deepStrictEqual(
            sorted(model.counts.keys()),
            sorted(healthy.map((e) => e.eventId)),
            "every other event was handled"
          )
          const parked = yield* CheckpointStore.CheckpointStore.use((store) => store.parked(projection.name))
          assert.deepStrictEqual(
            parked.map((p) => p.event.eventId),
            [poison.eventId],
            "the poison event is parked"
          )
          const [entry] = parked
          assert.deepStrictEqual(entry!.key, { name: projection.name, version: 1, partition: 0 })
          assert.strictEqual(entry!.event.streamId, poison.streamId)
          assert.strictEqual(entry!.event.version, poison.version)
          assert.include(entry!.error, poisonMessage(poison.eventId), "the parked entry keeps the error text")
          const row = yield* checkpointOf(projection.name)
          assertReached(row.checkpoint, second.at(-1)!.position, "the checkpoint passes the parked event")
          assert.strictEqual(row.state, "stopped")
        })
      )
    )
  })
}
