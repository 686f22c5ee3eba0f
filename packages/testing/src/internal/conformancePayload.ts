import { assert, describe } from "@effect/vitest"
import { EventCodec, EventStore } from "@facta/core"
import { Effect, Schema, Stream } from "effect"
import type { It } from "./conformanceHelpers.ts"
import { event, expectFailure, readCategories, readStream, uniqueCategory, uniqueStream } from "./conformanceHelpers.ts"

const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Int })
const Renamed = Schema.TaggedStruct("Renamed", { name: Schema.String, by: Schema.String })
const RenamedV1 = Schema.Struct({ newName: Schema.String })
const codec = EventCodec.make(Schema.Union([Deposited, Renamed]), {
  upcasters: { Renamed: [EventCodec.upcast(RenamedV1, (v1) => ({ name: v1.newName, by: "unknown" }))] }
})

/** Appends one raw event after a valid `Deposited`, then asserts that decoding the stream fails at it. */
const assertDecodeError = Effect.fnUntraced(function* (type: string, schemaVersion: number, data: Schema.Json) {
  const store = yield* EventStore.EventStore
  const streamId = uniqueStream()
  const bad = { ...event(type, data), schemaVersion }
  yield* store.append(streamId, [event("Deposited", { amount: 1 }), bad])
  const error = yield* expectFailure(Stream.runCollect(EventStore.readEvents(codec, streamId)), "EventDecodeError")
  assert.strictEqual(error.streamId, streamId)
  assert.strictEqual(error.version, 2)
  assert.strictEqual(error.type, type)
  assert.strictEqual(error.eventId, bad.eventId)
  assert.strictEqual(error.schemaVersion, schemaVersion)
  assert.isTrue(error.issue.length > 0)
  const first = yield* Stream.runCollect(EventStore.readEvents(codec, streamId, { to: 1 }))
  assert.deepStrictEqual(
    first.map((e) => e.data),
    [Deposited.make({ amount: 1 })]
  )
})

/** Asserts that `data` is stored and read back exactly, through the stream and through the log. */
const assertRoundTrip = Effect.fnUntraced(function* (datas: ReadonlyArray<Schema.Json>, type = "Payload") {
  const store = yield* EventStore.EventStore
  const category = uniqueCategory()
  const streamId = `${category}-1`
  yield* store.append(
    streamId,
    datas.map((data) => event(type, data))
  )
  const read = yield* readStream(streamId)
  const logged = yield* readCategories([category])
  assert.strictEqual(read.length, datas.length)
  assert.strictEqual(logged.length, datas.length)
  for (let i = 0; i < datas.length; i++) {
    assert.deepStrictEqual(read[i]!.data, datas[i], `event ${i + 1} read from its stream`)
    assert.deepStrictEqual(logged[i]!.data, datas[i], `event ${i + 1} read from the log`)
    assert.strictEqual(read[i]!.type, type)
  }
})

const nested = (depth: number): Schema.Json => {
  let value: Schema.Json = { leaf: "bottom", list: [1, "two", null] }
  for (let i = depth; i > 0; i--) value = i % 2 === 0 ? { level: i, child: value } : [i, value]
  return value
}

/** What the store keeps, byte for byte, and how stored data meets a codec. */
export const register = (it: It): void => {
  describe("payloads", () => {
    it.effect("a ~1 MB string payload round-trips exactly", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const streamId = uniqueStream()
        const chunk = 'The quick brown fox 0123456789 é 中文 🎉 "quoted" \\ / \n'
        const big = chunk.repeat(Math.ceil(1_000_000 / chunk.length))
        yield* store.append(streamId, [event("Big", { big, after: "end" })])
        const [stored] = yield* readStream(streamId)
        const data = stored!.data as { readonly big: string; readonly after: string }
        assert.strictEqual(data.big.length, big.length)
        assert.isTrue(data.big === big, "the 1 MB string should come back unchanged")
        assert.strictEqual(data.after, "end")
      })
    )

    it.effect("a deeply nested, a wide and a long document round-trip exactly", () =>
      Effect.gen(function* () {
        const wide: Record<string, Schema.Json> = {}
        for (let i = 0; i < 2000; i++) wide[`key${i}`] = i % 3 === 0 ? `v${i}` : i
        const long = Array.from({ length: 10_000 }, (_, i) => (i % 2 === 0 ? i : { i }))
        yield* assertRoundTrip([nested(100), wide, { long }])
      })
    )

    it.effect("unicode in data, keys, metadata, types and stream ids round-trips exactly", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const category = uniqueCategory()
        const streamId = `${category}-ünïcødé-🎉`
        const data = {
          emoji: "👩‍👩‍👧‍👦 🎉 🇫🇷 ❤️",
          rtl: "مرحبا بالعالم — שלום עולם",
          combining: "e\u0301 a\u0308 \u1100\u1161\u11a8",
          separators: "line\u2028paragraph\u2029end",
          astral: "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𠜎",
          bom: "\ufeffstart",
          "ключ 🔑": "значение",
          中文键: ["列表", "项目"]
        }
        const metadata = { actor: "Zoë 🧑‍💻", attributes: { città: "Zürich", note: "a\u2028b" } }
        const type = "Événement🎉Créé"
        yield* store.append(streamId, [event(type, data, metadata)])
        const [stored] = yield* readStream(streamId)
        assert.deepStrictEqual(stored!.data, data)
        assert.deepStrictEqual(stored!.metadata, metadata)
        assert.strictEqual(stored!.type, type)
        assert.strictEqual(stored!.streamId, streamId)
        const [logged] = yield* readCategories([category], { types: [type] })
        assert.deepStrictEqual(logged!.data, data)
      })
    )

    it.effect("JSON values of every kind round-trip as data", () =>
      Effect.gen(function* () {
        yield* assertRoundTrip([
          {},
          [],
          null,
          0,
          -17.25,
          "",
          "text",
          true,
          false,
          [null, [], {}, [[]]],
          {
            max: Number.MAX_SAFE_INTEGER,
            min: Number.MIN_SAFE_INTEGER,
            small: 1e-7,
            big: 1e21,
            tenth: 0.1,
            third: 1 / 3,
            nothing: null,
            empty: ""
          }
        ])
      })
    )

    it.effect("control characters other than NUL round-trip in data", () =>
      Effect.gen(function* () {
        yield* assertRoundTrip([
          { text: "tab\tnewline\ncr\rbell\u0007escape\u001bdel\u007f\u0001\u001f" },
          { "key\twith\ncontrols\u0001": "value" },
          { quotes: "\"'`", backslashes: "\\\\n \\t \\" }
        ])
      })
    )
  })

  describe("decoding stored events", () => {
    it.effect("readEvents decodes stored events with their codec, upcasting old schema versions", () =>
      Effect.gen(function* () {
        const streamId = uniqueStream()
        yield* EventStore.appendEvents(codec, streamId, [
          Deposited.make({ amount: 5 }),
          Renamed.make({ name: "new", by: "ann" })
        ])
        const store = yield* EventStore.EventStore
        yield* store.append(streamId, [{ ...event("Renamed", { newName: "old style" }), schemaVersion: 1 }])
        const raw = yield* readStream(streamId)
        assert.deepStrictEqual(
          raw.map((e) => [e.type, e.schemaVersion, e.data]),
          [
            ["Deposited", 1, { amount: 5 }],
            ["Renamed", 2, { name: "new", by: "ann" }],
            ["Renamed", 1, { newName: "old style" }]
          ]
        )
        const decoded = yield* Stream.runCollect(EventStore.readEvents(codec, streamId))
        assert.deepStrictEqual(
          decoded.map((e) => e.data),
          [
            Deposited.make({ amount: 5 }),
            Renamed.make({ name: "new", by: "ann" }),
            Renamed.make({ name: "old style", by: "unknown" })
          ]
        )
        assert.deepStrictEqual(
          decoded.map((e) => e.version),
          [1, 2, 3]
        )
      })
    )

    it.effect("data that does not fit the schema is an EventDecodeError naming the event", () =>
      assertDecodeError("Deposited", 1, { amount: "five" })
    )

    it.effect("an unknown event type is an EventDecodeError naming the event", () =>
      assertDecodeError("Refunded", 1, { amount: 5 })
    )

    it.effect("a schema version newer than the codec knows is an EventDecodeError naming the event", () =>
      assertDecodeError("Deposited", 2, { amount: 5 })
    )
  })
}
