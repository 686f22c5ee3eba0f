import { assert, describe } from "@effect/vitest"
import type { Event, EventStoreError, StreamId } from "@facta/core"
import { EventCodec, EventStore, StoreKit } from "@facta/core"
import { Effect, Result, Schema, Stream } from "effect"
import type { It } from "./conformanceHelpers.ts"
import {
  assertNoStream,
  assertVersion,
  event,
  expectFailure,
  readCategories,
  readStream,
  uniqueCategory,
  uniqueStream
} from "./conformanceHelpers.ts"

const unlimited: StoreKit.Limits = {
  maxEventBytes: Number.MAX_SAFE_INTEGER,
  maxAppendBytes: Number.MAX_SAFE_INTEGER
}

/** An event's size as the stores count it: its data and (merged) metadata as PostgreSQL's `jsonb` prints them. */
export const sizeOf = (e: Event.EventData, metadata?: Event.EventMetadata): number => {
  const prepared = StoreKit.prepare({ streamId: "Size-1", events: [e], metadata }, unlimited)
  if (Result.isFailure(prepared)) return assert.fail(`not a valid event: ${prepared.failure.message}`)
  const [valid] = prepared.success.events
  return StoreKit.jsonbBytes(valid!.dataJson) + StoreKit.jsonbBytes(valid!.metadataJson)
}

/** The size of an event as read back: its data and metadata printed again as `jsonb` would. */
const sizeRead = (e: Event.RecordedEvent): number =>
  StoreKit.jsonbBytes(JSON.stringify(e.data)) + StoreKit.jsonbBytes(JSON.stringify(e.metadata))

/**
 * An event of exactly `bytes`: `build(k, m)` grows by a heavy unit per `k` and by one byte per `m` (ASCII padding),
 * so that the heavy units fill most of it and the padding the rest.
 */
export const eventOfSize = (bytes: number, build: (k: number, m: number) => Event.EventData): Event.EventData => {
  const base = sizeOf(build(0, 0))
  const unit = sizeOf(build(1, 0)) - base
  const k = Math.max(0, Math.floor((bytes - base) / unit) - 1)
  const made = build(k, bytes - base - k * unit)
  assert.strictEqual(sizeOf(made), bytes, "the event built has the size asked for")
  return made
}

/** Plain ASCII data of `bytes`. */
const asciiEvent = (bytes: number) => eventOfSize(bytes, (k, m) => event("Sized", { text: "x".repeat(k * 1000 + m) }))

/** Asserts an `EventTooLarge` for `limit`, naming the stream, the event, the limit and the size. */
const assertTooLarge = Effect.fnUntraced(function* <R>(
  self: Effect.Effect<
    unknown,
    EventStoreError.AppendError | EventStoreError.StreamNotFound | StreamId.InvalidStreamId,
    R
  >,
  expected: {
    readonly streamId: string
    readonly eventId: string
    readonly limit: "maxEventBytes" | "maxAppendBytes"
    readonly maxBytes: number
    readonly bytes: number
  }
) {
  const error = yield* expectFailure(self, "EventTooLarge")
  assert.deepStrictEqual(
    {
      streamId: error.streamId,
      eventId: error.eventId,
      limit: error.limit,
      maxBytes: error.maxBytes,
      bytes: error.bytes
    },
    expected
  )
})

/**
 * Asserts that an event of exactly `limits.maxEventBytes` made by `make` is stored and reads back whole (through the
 * stream and the log), and that one of a byte more fails with `EventTooLarge` and writes nothing.
 */
const assertEventLimit = Effect.fnUntraced(function* (maxEventBytes: number, make: (bytes: number) => Event.EventData) {
  const store = yield* EventStore.EventStore
  const category = uniqueCategory()
  const streamId = `${category}-1`
  const fits = make(maxEventBytes)
  yield* store.append(streamId, [fits])
  const [stored] = yield* readStream(streamId)
  assert.deepStrictEqual(stored!.data, fits.data)
  assert.strictEqual(sizeRead(stored!), maxEventBytes, "the stored event reads back at its size")
  const [logged] = yield* readCategories([category])
  assert.strictEqual(logged!.eventId, fits.eventId)
  const over = make(maxEventBytes + 1)
  yield* assertTooLarge(store.append(streamId, [event(), over]), {
    streamId,
    eventId: over.eventId,
    limit: "maxEventBytes",
    maxBytes: maxEventBytes,
    bytes: maxEventBytes + 1
  })
  yield* assertVersion(streamId, 1)
})

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

/** What the store keeps, byte for byte, how large it may be, and how stored data meets a codec. */
export const register = (it: It, limits: StoreKit.Limits = StoreKit.defaultLimits): void => {
  const { maxEventBytes, maxAppendBytes } = limits
  describe("sizes", () => {
    it.effect("an event of exactly maxEventBytes is stored and reads back; a byte more is EventTooLarge", () =>
      assertEventLimit(maxEventBytes, asciiEvent)
    )

    it.effect("control characters count as the six-byte escapes PostgreSQL prints", () =>
      assertEventLimit(maxEventBytes, (bytes) =>
        eventOfSize(bytes, (k, m) => event("Controls", { text: "\u0001\u001f".repeat(k) + "x".repeat(m) }))
      )
    )

    it.effect("multi-byte characters count in UTF-8", () =>
      assertEventLimit(maxEventBytes, (bytes) =>
        eventOfSize(bytes, (k, m) => event("Unicode", { text: "é中🎉".repeat(k) + "x".repeat(m) }))
      )
    )

    it.effect("data and metadata count together", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const streamId = uniqueStream()
        const half = Math.floor(maxEventBytes / 2)
        const data = { text: "d".repeat(half) }
        const withMetadata = (bytes: number) =>
          eventOfSize(bytes, (k, m) => ({ ...event("Both", data), metadata: { actor: "m".repeat(k + m) } }))
        const over = withMetadata(maxEventBytes + 1)
        assert.isBelow(sizeOf(event("Both", data)), maxEventBytes, "the data alone fits")
        yield* assertTooLarge(store.append(streamId, [over]), {
          streamId,
          eventId: over.eventId,
          limit: "maxEventBytes",
          maxBytes: maxEventBytes,
          bytes: maxEventBytes + 1
        })
        yield* assertNoStream(streamId)
        const fits = withMetadata(maxEventBytes)
        yield* store.append(streamId, [fits])
        const [stored] = yield* readStream(streamId)
        assert.strictEqual(sizeRead(stored!), maxEventBytes)
        assert.strictEqual(stored!.metadata.actor, fits.metadata!.actor)
      })
    )

    it.effect("numbers count as PostgreSQL prints them: 1e300 is 301 digits", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const streamId = uniqueStream()
        const count = Math.ceil(maxEventBytes / 302)
        const numbers = event("Numbers", { n: Array.from({ length: count }, () => 1e300) })
        assert.isBelow(JSON.stringify(numbers.data).length * 3, maxEventBytes, "short as JSON text")
        const error = yield* expectFailure(store.append(streamId, [numbers]), "EventTooLarge")
        assert.strictEqual(error.bytes, sizeOf(numbers))
        assert.isAbove(error.bytes, maxEventBytes)
        yield* assertNoStream(streamId)
        yield* store.append(streamId, [event("Numbers", { n: [1e300, 1e-7, -1.5e21] })])
        const [stored] = yield* readStream(streamId)
        assert.deepStrictEqual(stored!.data, { n: [1e300, 1e-7, -1.5e21] })
      })
    )

    it.effect(
      "an append over maxAppendBytes is EventTooLarge naming the event that passed it, and writes nothing",
      () =>
        Effect.gen(function* () {
          const store = yield* EventStore.EventStore
          const category = uniqueCategory()
          const streamId = `${category}-1`
          yield* store.append(streamId, [event()])
          // events of at most maxEventBytes each, one more than maxAppendBytes holds
          const each = Math.min(maxEventBytes, maxAppendBytes)
          const text = "x".repeat(each - sizeOf(event("Part", { text: "" })))
          const count = Math.floor(maxAppendBytes / each) + 1
          const parts = Array.from({ length: count }, () => event("Part", { text }))
          assert.strictEqual(sizeOf(parts[0]!), each)
          const expected = {
            limit: "maxAppendBytes" as const,
            maxBytes: maxAppendBytes,
            bytes: count * each
          }
          yield* assertTooLarge(store.append(streamId, parts), {
            streamId,
            eventId: parts.at(-1)!.eventId,
            ...expected
          })
          const other = `${category}-2`
          const split = Math.ceil(count / 2)
          yield* assertTooLarge(
            store.appendMany([
              { streamId, events: parts.slice(0, split) },
              { streamId: other, events: parts.slice(split) }
            ]),
            { streamId: other, eventId: parts.at(-1)!.eventId, ...expected }
          )
          yield* assertVersion(streamId, 1)
          yield* assertNoStream(other)
        })
    )
  })

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
