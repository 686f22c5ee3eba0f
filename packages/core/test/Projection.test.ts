import { assert, describe, it } from "@effect/vitest"
import { CheckpointStore, EventCodec, EventStore, Position, Projection, StorageError } from "@facta/core"
import { Deferred, Effect, Fiber, Layer, Logger, Option, References, Schedule, Schema, Stream } from "effect"
import { TestClock } from "effect/testing"

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

describe("Projection batches", () => {
  // the test clock stands still: a run that waited for a batch window to close would never handle the event
  it.effect("handle a live page at once when no batch window is set", () =>
    Effect.gen(function* () {
      const handled = yield* Deferred.make<number>()
      const Once = Projection.make({
        name: "once",
        events: codec,
        handle: (event) => Deferred.succeed(handled, event.data.amount)
      })
      yield* deposit("Account-1", 42)
      const fiber = yield* Effect.forkChild(Projection.run(Once))
      assert.strictEqual(yield* Deferred.await(handled), 42)
      yield* Fiber.interrupt(fiber)
    }).pipe(Effect.provide(live))
  )

  it.live("wait for the batch window when one is set", () =>
    Effect.gen(function* () {
      const handled = yield* Deferred.make<number>()
      const Windowed = Projection.make({
        name: "windowed",
        events: codec,
        handle: (event) => Deferred.succeed(handled, event.data.amount)
      })
      yield* deposit("Account-1", 7)
      const fiber = yield* Effect.forkChild(Projection.run(Windowed, { batchWindow: "1 second" }))
      // without the window the event is handled within milliseconds
      yield* Effect.sleep("300 millis")
      assert.isFalse(yield* Deferred.isDone(handled), "handled before the window closed")
      assert.strictEqual(yield* Deferred.await(handled), 7)
      yield* Fiber.interrupt(fiber)
    }).pipe(Effect.provide(live))
  )
})

describe("Projection.replayParked and Projection.status", () => {
  it.live("replays parked events once the handler is fixed; status shows checkpoint, lag and state", () =>
    Effect.gen(function* () {
      let broken = true
      const handled: Array<number> = []
      const Fragile = Projection.make({
        name: "fragile",
        events: codec,
        onFailure: "park",
        retry: Schedule.recurs(0),
        handle: (event) =>
          broken && event.data.amount === 13
            ? Effect.fail(new Error("unlucky"))
            : Effect.sync(() => handled.push(event.data.amount))
      })
      yield* deposit("Account-1", 1)
      yield* deposit("Account-1", 13)
      const last = yield* deposit("Account-1", 2)
      yield* Projection.run(Fragile, { untilCaughtUp: true, batchWindow: "1 millis" })
      assert.deepStrictEqual(handled, [1, 2])
      const checkpoints = yield* CheckpointStore.CheckpointStore
      const parked = yield* checkpoints.parked("fragile")
      assert.deepStrictEqual(
        parked.map((p) => [p.event.data, p.error]),
        [[{ amount: 13 }, "unlucky"]]
      )

      const [status] = yield* Projection.status(Fragile)
      assert.strictEqual(status?.state, "stopped")
      assert.isTrue(Position.equals(status!.checkpoint, last.positions[0]!))
      assert.deepStrictEqual([status!.eventsBehind, status!.secondsBehind], [0, 0])
      yield* deposit("Account-2", 5)
      const [behind] = yield* Projection.status(Fragile)
      assert.strictEqual(behind?.eventsBehind, 1)

      const stillBroken = yield* Projection.replayParked(Fragile)
      assert.deepStrictEqual([stillBroken.replayed.length, stillBroken.stillFailing.length], [0, 1])
      broken = false
      const fixed = yield* Projection.replayParked(Fragile)
      assert.deepStrictEqual([fixed.replayed.length, fixed.stillFailing.length], [1, 0])
      assert.deepStrictEqual(handled, [1, 2, 13])
      assert.deepStrictEqual(yield* checkpoints.parked("fragile"), [])
    }).pipe(Effect.provide(live))
  )
})

describe("Projection.once", () => {
  it.live("runs an effect once per key across replays and rebuilds, and again after it failed", () =>
    Effect.gen(function* () {
      const sent: Array<string> = []
      let failNext = true
      const Receipts = Projection.make({
        name: "receipts",
        events: codec,
        retry: Schedule.recurs(2),
        handle: (event) =>
          Projection.once(
            "receipts",
            `${event.eventId}:receipt`,
            Effect.suspend(() => {
              if (failNext) {
                failNext = false
                return Effect.fail(new Error("mail server down"))
              }
              sent.push(event.streamId)
              return Effect.void
            })
          )
      })
      yield* deposit("Account-1", 1)
      yield* deposit("Account-2", 2)
      yield* Projection.run(Receipts, { untilCaughtUp: true, batchWindow: "1 millis" })
      assert.deepStrictEqual(sent, ["Account-1", "Account-2"], "the failed attempt was retried")
      yield* Projection.rebuild(Receipts, { batchWindow: "1 millis" })
      assert.deepStrictEqual(sent, ["Account-1", "Account-2"], "a rebuild sends nothing twice")
    }).pipe(Effect.provide(live))
  )
})

describe("Projection.waitFor with filters", () => {
  it.live("resolves for the position of an event the projection does not handle (its checkpoint follows the log)", () =>
    Effect.gen(function* () {
      const Accounts = Projection.make({
        name: "accounts-only",
        events: codec,
        categories: ["Account"],
        handle: () => Effect.void
      })
      yield* deposit("Account-1", 1)
      const fiber = yield* Effect.forkChild(Projection.run(Accounts, { pollInterval: "5 seconds" }))
      const other = yield* deposit("Other-1", 2)
      yield* Projection.waitFor(Accounts, other.positions[0]!, { timeout: "2 seconds" })
      yield* Fiber.interrupt(fiber)
    }).pipe(Effect.provide(live))
  )
})

describe("Projection progress", () => {
  // the test clock moves only when the projection says so: 10 s to reset the read model, 10 ms per event handled
  it.effect("reports its first rate over handling time only, with behind and an ETA", () =>
    Effect.gen(function* () {
      const lines: Array<Record<string, unknown>> = []
      const capture = Logger.make(({ fiber, message }) => {
        const text = Array.isArray(message) ? message.join(" ") : String(message)
        if (text === "projection catching up") lines.push({ ...fiber.getRef(References.CurrentLogAnnotations) })
      })
      for (let i = 0; i < 300; i++) yield* deposit(`Account-${i % 7}`, i)
      const Slow = Projection.make({
        name: "slow",
        events: codec,
        handle: () => TestClock.adjust("10 millis"),
        reset: TestClock.adjust("10 seconds")
      })
      yield* Projection.rebuild(Slow, { batchSize: 10 }).pipe(Effect.provide(Logger.layer([capture])))
      assert.isAbove(lines.length, 0)
      const [first] = lines
      assert.strictEqual(first?.eventsPerSecond, 100, "10 ms per event, the 10 s of the reset left out")
      const behind = Number(first?.behind)
      assert.isAbove(behind, 0)
      assert.strictEqual(first?.etaSeconds, Math.ceil(behind / 100))
    }).pipe(Effect.provide(live))
  )
})

describe("Projection rebuilds", () => {
  it.live("a rebuild resets once: a storage failure that makes it take its lease again resumes the replay", () =>
    Effect.gen(function* () {
      const store = yield* EventStore.EventStore
      for (let i = 1; i <= 30; i++) yield* deposit(`Account-${i % 3}`, i)
      // the third page read fails once, retryably: the run ends its hold on the lease and takes it again
      let reads = 0
      const flaky = EventStore.EventStore.of({
        ...store,
        readAll: (options) =>
          Stream.unwrap(
            Effect.sync(() => {
              reads++
              return reads === 3
                ? Stream.fail(
                    new StorageError.StorageError({
                      store: "EventStore",
                      operation: "readAll",
                      retryable: true,
                      cause: new Error("connection lost")
                    })
                  )
                : store.readAll(options)
            })
          )
      })
      let resets = 0
      let total = 0
      const Totals = Projection.make({
        name: "rebuilt-totals",
        events: codec,
        handle: (event) =>
          Effect.sync(() => {
            total += event.data.amount
          }),
        reset: Effect.sync(() => {
          resets++
          total = 0
        })
      })
      yield* Projection.rebuild(Totals, { batchSize: 5, batchWindow: "1 millis" }).pipe(
        Effect.provideService(EventStore.EventStore, flaky)
      )
      assert.isAtLeast(reads, 4, "the failing read was retried")
      assert.strictEqual(resets, 1, "the read model was reset once")
      assert.strictEqual(total, (30 * 31) / 2, "every event counted once")
      const [status] = yield* CheckpointStore.CheckpointStore.use((s) => s.status("rebuilt-totals"))
      assert.notStrictEqual(status?.state, "rebuilding")
    }).pipe(Effect.provide(live), Effect.provideService(References.MinimumLogLevel, "Error"))
  )
})
