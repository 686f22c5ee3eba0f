import { assert, describe, it } from "@effect/vitest"
import { CheckpointStore, EventCodec, EventStore, Position, Projection } from "@facta/core"
import { Effect, Fiber, Layer, Option, Schema } from "effect"

const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Int })
const codec = EventCodec.make(Deposited)
const live = Layer.mergeAll(EventStore.layerMemory, CheckpointStore.layerMemory)

const deposit = (streamId: string, amount: number) =>
  EventStore.appendEvents(codec, streamId, [Deposited.make({ amount })])

describe("Projection on memory", () => {
  it.live("catches up, then tails live, and waitFor sees the append", () =>
    Effect.gen(function* () {
      const totals = new Map<string, number>()
      const Totals = Projection.make({
        name: "totals",
        events: codec,
        handle: (event) =>
          Effect.sync(() => totals.set(event.streamId, (totals.get(event.streamId) ?? 0) + event.data.amount))
      })
      yield* deposit("Account-1", 5)
      yield* deposit("Account-2", 7)
      const fiber = yield* Effect.forkChild(Projection.run(Totals, { pollInterval: "5 seconds" }))
      const appended = yield* deposit("Account-1", 10)
      yield* Projection.waitFor(Totals, appended.positions[0]!, { timeout: "2 seconds" })
      assert.deepStrictEqual(Object.fromEntries(totals), { "Account-1": 15, "Account-2": 7 })
      yield* Fiber.interrupt(fiber)
      const [status] = yield* CheckpointStore.CheckpointStore.use((s) => s.status("totals"))
      assert.strictEqual(status?.state, "stopped")
      assert.isTrue(Option.isNone(status!.owner))
      assert.isTrue(Position.equals(status!.checkpoint, appended.positions[0]!))
    }).pipe(Effect.provide(live))
  )
})
