/**
 * The broker-neutral relay and inbox on the in-memory stores, with a publisher that records what it is given: the
 * checkpoint moves only after acknowledgements, a publisher that fails makes no progress, events of one stream are
 * never handed over together, mapping failures and oversized messages are parked with their reasons; and the relay
 * conformance suite (the cases NATS and Redis pass too) on an in-memory broker.
 */
import { assert, describe, it } from "@effect/vitest"
import { CheckpointStore, Event, EventStore, Inbox, IntegrationEvent, Position, Relay, StorageError } from "@facta/core"
import { RelayConformance } from "@facta/testing"
import { Cause, Effect, Exit, Fiber, Layer, Option, Ref, Schema } from "effect"

// fresh stores for every test (layers are memoized across provides otherwise)
const stores = () =>
  Layer.fresh(Layer.mergeAll(Layer.fresh(EventStore.layerMemory), Layer.fresh(CheckpointStore.layerMemory)))

const append = (streamId: string, type: string, data: Schema.Json) =>
  EventStore.EventStore.use((store) =>
    store.append(streamId, [{ eventId: Event.makeEventIdUnsafe(), type, schemaVersion: 1, data }])
  )

/** A publisher that records every call, failing (retryably) while `down` is set. */
const recording = Effect.gen(function* () {
  const calls = yield* Ref.make<ReadonlyArray<ReadonlyArray<IntegrationEvent.IntegrationEvent>>>([])
  const down = yield* Ref.make(false)
  const publisher: Relay.Publisher = {
    broker: "memory",
    publish: (events) =>
      Effect.flatMap(Ref.get(down), (isDown) =>
        isDown
          ? Effect.fail(new IntegrationEvent.PublishError({ broker: "memory", retryable: true, cause: "down" }))
          : Ref.update(calls, (all) => [...all, events])
      )
  }
  return { calls, down, publisher }
})

/**
 * A broker in memory for the conformance suite: it holds what it acknowledged, refuses (retryably) the categories it
 * is told to, and refuses a message over 64 KiB of JSON with MessageTooLarge before holding anything of the call.
 */
const memoryDestination = Effect.sync((): RelayConformance.Destination => {
  const held: Array<IntegrationEvent.IntegrationEvent> = []
  const refused = new Set<string>()
  const limit = 64 * 1024
  const publisher: Relay.Publisher = {
    broker: "memory",
    // suspended: the relay retries the effect a call returns, so the broker's answer is decided when it runs
    publish: (events) =>
      Effect.suspend((): Effect.Effect<void, IntegrationEvent.PublishError | IntegrationEvent.MessageTooLarge> => {
        const large = events.find((event) => Buffer.byteLength(JSON.stringify(event)) > limit)
        if (large !== undefined) {
          const size = Buffer.byteLength(JSON.stringify(large))
          return Effect.fail(
            new IntegrationEvent.MessageTooLarge({ broker: "memory", messageId: large.eventId, size, limit })
          )
        }
        return events.some((event) => refused.has(event.category))
          ? Effect.fail(new IntegrationEvent.PublishError({ broker: "memory", retryable: true, cause: "refused" }))
          : Effect.sync(() => void held.push(...events))
      })
  }
  return {
    publisher,
    received: Effect.sync(() => [...held]),
    refuse: (categories) =>
      Effect.sync(() => {
        for (const category of categories) refused.add(category)
        return Effect.sync(() => refused.clear())
      }),
    refusal: "refused",
    maxMessageBytes: limit
  }
})

RelayConformance.run("memory", Layer.mergeAll(EventStore.layerMemory, CheckpointStore.layerMemory), {
  broker: "memory",
  destination: memoryDestination
})

describe("Relay (memory)", () => {
  it.live("publishes every event once, in order per stream, never two of a stream in one call", () =>
    Effect.gen(function* () {
      const { calls, publisher } = yield* recording
      for (let i = 0; i < 5; i++) {
        yield* append("Account-1", "Deposited", { amount: i })
        yield* append("Account-2", "Deposited", { amount: i })
      }
      yield* append("Order-1", "Placed", {})
      const relay = Relay.make({ name: "out", categories: ["Account"], publisher })
      yield* Relay.run(relay, { untilCaughtUp: true })
      const all = yield* Ref.get(calls)
      for (const call of all) assert.strictEqual(new Set(call.map((e) => e.streamId)).size, call.length)
      const flat = all.flat()
      assert.strictEqual(flat.length, 10)
      assert.deepStrictEqual(
        flat.filter((e) => e.streamId === "Account-1").map((e) => e.version),
        [1, 2, 3, 4, 5]
      )
      const status = yield* Relay.status(relay)
      assert.isTrue(Option.isSome(status))
      assert.strictEqual(Option.getOrThrow(status).eventsBehind, 0)
    }).pipe(Effect.provide(stores()))
  )

  it.live("moves no checkpoint while the broker fails, and catches up once it answers", () =>
    Effect.gen(function* () {
      const { calls, down, publisher } = yield* recording
      yield* Ref.set(down, true)
      yield* append("Account-1", "Deposited", { amount: 1 })
      const relay = Relay.make({ name: "out", publisher })
      const fiber = yield* Effect.forkChild(Relay.run(relay, { pollInterval: "20 millis" }))
      yield* Effect.sleep("400 millis")
      const stuck = Option.getOrThrow(yield* Relay.status(relay))
      assert.deepStrictEqual(stuck.checkpoint, Position.start)
      assert.include(
        Option.getOrElse(stuck.error, () => ""),
        "retrying after"
      )
      assert.strictEqual((yield* Ref.get(calls)).length, 0)
      yield* Ref.set(down, false)
      yield* Effect.sleep("1 second")
      const moved = Option.getOrThrow(yield* Relay.status(relay))
      assert.strictEqual(moved.eventsBehind, 0)
      assert.isTrue(Option.isNone(moved.error))
      assert.strictEqual((yield* Ref.get(calls)).flat().length, 1)
      yield* Fiber.interrupt(fiber)
    }).pipe(Effect.provide(stores()))
  )

  it.live("a checkpoint commit that fails for good ends the run at once, though the log is idle", () =>
    Effect.gen(function* () {
      const { calls, publisher } = yield* recording
      const real = yield* CheckpointStore.CheckpointStore
      const refused = new StorageError.StorageError({
        store: "CheckpointStore",
        operation: "commit",
        retryable: false,
        cause: "checkpoint table dropped"
      })
      const failing = CheckpointStore.CheckpointStore.of({ ...real, commit: () => Effect.fail(refused) })
      yield* append("Account-1", "Deposited", { amount: 1 })
      const relay = Relay.make({ name: "out", publisher })
      // tailing an idle log: no page after this one would ever notice a failure held back for the next
      const exit = yield* Relay.run(relay, { pollInterval: "20 millis" }).pipe(
        Effect.provideService(CheckpointStore.CheckpointStore, failing),
        Effect.timeout("2 seconds"),
        Effect.exit
      )
      assert.strictEqual((yield* Ref.get(calls)).flat().length, 1)
      assert.isTrue(Exit.isFailure(exit))
      if (Exit.isFailure(exit)) assert.deepStrictEqual(Cause.findErrorOption(exit.cause), Option.some(refused))
      const status = Option.getOrThrow(yield* Relay.status(relay))
      assert.strictEqual(status.state, "failed")
    }).pipe(Effect.provide(stores()))
  )

  it.live("stops at once when interrupted while the broker is down, its checkpoint where it was", () =>
    Effect.gen(function* () {
      const { down, publisher } = yield* recording
      yield* Ref.set(down, true)
      yield* append("Account-1", "Deposited", { amount: 1 })
      const relay = Relay.make({ name: "out", publisher })
      const fiber = yield* Effect.forkChild(Relay.run(relay, { pollInterval: "20 millis" }))
      yield* Effect.sleep("300 millis")
      const started = Date.now()
      yield* Fiber.interrupt(fiber)
      assert.isBelow(Date.now() - started, 1000)
      const status = Option.getOrThrow(yield* Relay.status(relay))
      assert.deepStrictEqual(status.checkpoint, Position.start)
      assert.strictEqual(status.state, "stopped")
    }).pipe(Effect.provide(stores()))
  )

  it.live("runs one holder per name: a second instance stands by, and takes over when the first stops", () =>
    Effect.gen(function* () {
      const first = yield* recording
      const second = yield* recording
      yield* append("Account-1", "Deposited", { amount: 1 })
      const a = yield* Effect.forkChild(
        Relay.run(Relay.make({ name: "shared", publisher: first.publisher }), {
          pollInterval: "20 millis",
          leaseTtl: "300 millis"
        })
      )
      yield* Effect.sleep("200 millis")
      const b = yield* Effect.forkChild(
        Relay.run(Relay.make({ name: "shared", publisher: second.publisher }), {
          pollInterval: "20 millis",
          leaseTtl: "300 millis"
        })
      )
      yield* append("Account-1", "Deposited", { amount: 2 })
      yield* Effect.sleep("300 millis")
      assert.strictEqual((yield* Ref.get(first.calls)).flat().length, 2)
      assert.strictEqual((yield* Ref.get(second.calls)).flat().length, 0)
      yield* Fiber.interrupt(a)
      yield* append("Account-1", "Deposited", { amount: 3 })
      yield* Effect.sleep("800 millis")
      assert.deepStrictEqual(
        (yield* Ref.get(second.calls)).flat().map((e) => e.version),
        [3]
      )
      yield* Fiber.interrupt(b)
    }).pipe(Effect.provide(stores()))
  )

  it.live("maps to a public schema and parks an event it cannot encode, with the reason", () =>
    Effect.gen(function* () {
      const { calls, publisher } = yield* recording
      const Public = Schema.TaggedStruct("MoneyIn", { cents: Schema.Int.check(Schema.isGreaterThan(0)) })
      yield* append("Account-1", "Deposited", { amount: 5 })
      yield* append("Account-1", "Deposited", { amount: -1 })
      yield* append("Account-1", "Renamed", { name: "x" })
      const relay = Relay.make({
        name: "public",
        publisher,
        map: Relay.mapTo(Public, (event) =>
          event.type === "Deposited"
            ? Public.make({ cents: (event.data as { amount: number }).amount }, { disableChecks: true })
            : undefined
        )
      })
      yield* Relay.run(relay, { untilCaughtUp: true })
      const sent = (yield* Ref.get(calls)).flat()
      assert.deepStrictEqual(
        sent.map((e) => [e.type, e.data]),
        [["MoneyIn", { _tag: "MoneyIn", cents: 5 }]]
      )
      const parked = yield* Relay.parked(relay)
      assert.strictEqual(parked.length, 1)
      assert.strictEqual(parked[0]!.event.version, 2)
      assert.include(parked[0]!.error, "greater than 0")
      // after a fix (a public schema that takes refunds), the parked event is published and unparked
      const Fixed = Schema.TaggedStruct("MoneyIn", { cents: Schema.Int })
      const fixed = Relay.make({
        name: "public",
        publisher,
        map: Relay.mapTo(Fixed, (event) =>
          event.type === "Deposited" ? Fixed.make({ cents: (event.data as { amount: number }).amount }) : undefined
        )
      })
      const replay = yield* Relay.replayParked(fixed)
      assert.deepStrictEqual(replay, { replayed: [parked[0]!.event.eventId], stillFailing: [] })
      assert.deepStrictEqual(
        (yield* Ref.get(calls)).flat().map((e) => e.data),
        [
          { _tag: "MoneyIn", cents: 5 },
          { _tag: "MoneyIn", cents: -1 }
        ]
      )
      assert.strictEqual((yield* Relay.parked(relay)).length, 0)
    }).pipe(Effect.provide(stores()))
  )

  it.live("parks a message too large for the broker, naming both sizes, and publishes the rest", () =>
    Effect.gen(function* () {
      const { calls } = yield* recording
      const limited: Relay.Publisher = {
        broker: "memory",
        publish: (events) => {
          const big = events.find((e) => JSON.stringify(e).length > 400)
          return big === undefined
            ? Ref.update(calls, (all) => [...all, events])
            : Effect.fail(
                new IntegrationEvent.MessageTooLarge({
                  broker: "memory",
                  messageId: big.eventId,
                  size: JSON.stringify(big).length,
                  limit: 400
                })
              )
        }
      }
      yield* append("Account-1", "Deposited", { amount: 1 })
      yield* append("Account-2", "Deposited", { note: "x".repeat(500) })
      yield* append("Account-3", "Deposited", { amount: 3 })
      const relay = Relay.make({ name: "limited", publisher: limited })
      yield* Relay.run(relay, { untilCaughtUp: true })
      assert.deepStrictEqual(
        (yield* Ref.get(calls))
          .flat()
          .map((e) => e.streamId)
          .sort(),
        ["Account-1", "Account-3"]
      )
      const parked = yield* Relay.parked(relay)
      assert.strictEqual(parked.length, 1)
      assert.match(parked[0]!.error, /is \d+ bytes, more than the broker's limit of 400 bytes/)
    }).pipe(Effect.provide(stores()))
  )
})

describe("Inbox (memory)", () => {
  it.live("applies a message once, parks what does not decode or keeps failing", () =>
    Effect.gen(function* () {
      const applied = yield* Ref.make(0)
      const inbox = Inbox.make({
        name: "audit",
        handle: (event) => (event.type === "Bad" ? Effect.fail("handler refuses") : Ref.update(applied, (n) => n + 1))
      })
      const message = (type: string): Inbox.Delivery => {
        const event = IntegrationEvent.fromRecorded({
          eventId: Event.makeEventIdUnsafe(),
          streamId: "Account-1" as never,
          version: 1,
          position: Position.start,
          type,
          schemaVersion: 1,
          data: {},
          metadata: {},
          recordedAt: { epochMilliseconds: 0 } as never
        })
        return { id: event.eventId, subject: "s", headers: {}, body: new TextEncoder().encode(JSON.stringify(event)) }
      }
      const good = message("Good")
      assert.strictEqual(yield* Inbox.receive(inbox, good), "applied")
      assert.strictEqual(yield* Inbox.receive(inbox, good), "duplicate")
      assert.strictEqual(yield* Ref.get(applied), 1)
      assert.strictEqual(yield* Inbox.receive(inbox, message("Bad")), "parked")
      const junk: Inbox.Delivery = { id: "junk", subject: "s", headers: {}, body: new TextEncoder().encode("{") }
      assert.strictEqual(yield* Inbox.receive(inbox, junk), "parked")
      const parked = yield* Inbox.InboxStore.use((store) => store.parked("audit"))
      assert.deepStrictEqual(
        parked.map((p) => p.error.slice(0, p.error.startsWith("undecodable") ? 13 : 15)),
        ["handler refuses", "undecodable: "]
      )
    }).pipe(Effect.provide(Layer.fresh(Inbox.layerMemory)))
  )
})
