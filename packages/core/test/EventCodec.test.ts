import { assert, describe, it } from "@effect/vitest"
import { Event, EventCodec, EventStore, ExpectedVersion, Position, StreamId } from "@facta/core"
import { DateTime, Effect, Schema, Stream } from "effect"

// A real shape change, as it happens in payments code. v1 stored dollars as a decimal string; v2 moved to integer
// cents; v3 (current) made the currency explicit.
const DepositedV1 = Schema.Struct({ amount: Schema.String })
const DepositedV2 = Schema.Struct({ amountCents: Schema.Int })
const Deposited = Schema.TaggedStruct("Deposited", {
  amount: Schema.Struct({ minor: Schema.Int, currency: Schema.String })
})
const Withdrawn = Schema.TaggedStruct("Withdrawn", { amountCents: Schema.Int.check(Schema.isGreaterThan(0)) })
const AccountEvent = Schema.Union([Deposited, Withdrawn])

const codec = EventCodec.make(AccountEvent, {
  upcasters: {
    Deposited: [
      EventCodec.upcast(DepositedV1, (v1) => ({ amountCents: Math.round(Number(v1.amount) * 100) })),
      EventCodec.upcast(DepositedV2, (v2) => ({ amount: { minor: v2.amountCents, currency: "USD" } }))
    ]
  }
})

const recorded = (type: string, schemaVersion: number, data: Schema.Json): Event.RecordedEvent => ({
  eventId: Event.makeEventIdUnsafe(),
  streamId: StreamId.makeUnsafe("Account-1"),
  version: 7,
  position: Position.make(1, 1n, 1n),
  type,
  schemaVersion,
  data,
  metadata: {},
  recordedAt: DateTime.makeUnsafe(0)
})

describe("EventCodec", () => {
  it.effect("writes the current schema version and leaves the tag out of the data", () =>
    Effect.gen(function* () {
      const encoded = yield* codec.encode(Deposited.make({ amount: { minor: 1250, currency: "EUR" } }))
      assert.deepStrictEqual(encoded, {
        type: "Deposited",
        schemaVersion: 3,
        data: { amount: { minor: 1250, currency: "EUR" } }
      })
      assert.strictEqual(codec.currentVersion("Withdrawn"), 1)
    })
  )

  it.effect("upcasts v1 and v2 events to the current shape on read", () =>
    Effect.gen(function* () {
      const v1 = yield* codec.decode(recorded("Deposited", 1, { amount: "12.50" }))
      const v2 = yield* codec.decode(recorded("Deposited", 2, { amountCents: 990 }))
      assert.deepStrictEqual(v1.data, Deposited.make({ amount: { minor: 1250, currency: "USD" } }))
      assert.deepStrictEqual(v2.data, Deposited.make({ amount: { minor: 990, currency: "USD" } }))
      assert.strictEqual(v1.schemaVersion, 1, "the stored schema version is reported as stored")
    })
  )

  it.effect("stored old versions keep their version in the store and still read as current", () =>
    Effect.gen(function* () {
      const store = yield* EventStore.EventStore
      yield* store.append("Account-9", [
        { eventId: Event.makeEventIdUnsafe(), type: "Deposited", schemaVersion: 1, data: { amount: "1.05" } }
      ])
      yield* EventStore.appendEvents(codec, "Account-9", [Deposited.make({ amount: { minor: 5, currency: "USD" } })])
      const raw = yield* Stream.runCollect(store.read("Account-9"))
      assert.deepStrictEqual(
        raw.map((e) => e.schemaVersion),
        [1, 3]
      )
      const typed = yield* Stream.runCollect(EventStore.readEvents(codec, "Account-9"))
      assert.deepStrictEqual(
        typed.map((e) => (e.data._tag === "Deposited" ? e.data.amount.minor : -1)),
        [105, 5]
      )
    }).pipe(Effect.provide(EventStore.layerMemory))
  )

  it.effect("validates on write: an event that breaks its schema is an EventEncodeError", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(codec.encode({ _tag: "Withdrawn", amountCents: -5 }))
      assert.strictEqual(error._tag, "EventEncodeError")
      assert.strictEqual(error.type, "Withdrawn")
      assert.match(error.issue, /greater than 0/)
    })
  )

  it.effect("decode failures name the stream, version, type and the schema issue", () =>
    Effect.gen(function* () {
      const wrongShape = yield* Effect.flip(codec.decode(recorded("Withdrawn", 1, { amountCents: "ten" })))
      assert.strictEqual(wrongShape.streamId, "Account-1")
      assert.strictEqual(wrongShape.version, 7)
      assert.strictEqual(wrongShape.type, "Withdrawn")
      assert.match(wrongShape.issue, /amountCents/)
      const unknown = yield* Effect.flip(codec.decode(recorded("Frozen", 1, {})))
      assert.strictEqual(unknown.issue, "unknown event type")
      const newer = yield* Effect.flip(codec.decode(recorded("Deposited", 4, {})))
      assert.match(newer.issue, /newer schema/)
      const badOld = yield* Effect.flip(codec.decode(recorded("Deposited", 1, { amount: 12 })))
      assert.match(badOld.issue, /upcasting v1 -> v2/)
      const notObject = yield* Effect.flip(codec.decode(recorded("Withdrawn", 1, [1, 2])))
      assert.match(notObject.issue, /JSON object/)
      const zero = yield* Effect.flip(codec.decode(recorded("Withdrawn", 0, { amountCents: 1 })))
      assert.match(zero.issue, /start at 1/)
    })
  )

  it.effect.prop("encode then decode is the identity for every event", [AccountEvent], ([event]) =>
    Effect.gen(function* () {
      const encoded = yield* codec.encode(event)
      const decoded = yield* codec.decode(recorded(encoded.type, encoded.schemaVersion, encoded.data))
      assert.deepStrictEqual(decoded.data, event)
    })
  )

  it("refuses a union member that is not a tagged struct", () => {
    assert.throws(() => EventCodec.make(Schema.Union([Deposited, Schema.Struct({ x: Schema.Int })]) as never))
  })

  it.effect("appendEvents refuses invalid events before anything is stored", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        EventStore.appendEvents(codec, "Account-2", [{ _tag: "Withdrawn", amountCents: 0 }], {
          expectedVersion: ExpectedVersion.noStream
        })
      )
      assert.strictEqual(error._tag, "EventEncodeError")
      const info = yield* EventStore.EventStore.use((store) => store.streamInfo("Account-2"))
      assert.strictEqual(info._tag, "None")
    }).pipe(Effect.provide(EventStore.layerMemory))
  )
})
