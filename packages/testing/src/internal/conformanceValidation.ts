import { assert, describe } from "@effect/vitest"
import type { Event, EventStoreError, StreamId } from "@facta/core"
import { EventStore, ExpectedVersion } from "@facta/core"
import type { Schema } from "effect"
import { Effect, Option } from "effect"
import type { It } from "./conformanceHelpers.ts"
import {
  assertNoStream,
  assertVersion,
  event,
  expectFailure,
  expectStreamFailure,
  readCategories,
  readStream,
  uniqueCategory,
  uniqueStream
} from "./conformanceHelpers.ts"

/**
 * Asserts that appending a valid event then `bad` to a fresh stream is an `InvalidEvent` naming the stream (and the
 * bad event, unless the append's own metadata is what is invalid), and writes nothing.
 */
const assertInvalid = Effect.fnUntraced(function* (bad: Event.EventData, options?: EventStore.AppendOptions) {
  const store = yield* EventStore.EventStore
  const streamId = uniqueStream()
  const good = event()
  const error = yield* expectFailure(store.append(streamId, [good, bad], options), "InvalidEvent")
  assert.strictEqual(error.streamId, streamId)
  if (options?.metadata !== undefined) {
    assert.include([good.eventId, bad.eventId], error.eventId, "the error names one of the events")
  } else if (typeof bad.eventId === "string") {
    assert.strictEqual(error.eventId?.toLowerCase(), bad.eventId.toLowerCase(), "the error names the bad event")
  }
  assert.isString(error.reason)
  assert.isAbove(error.reason.length, 0)
  yield* assertNoStream(streamId)
})

/** Stream ids every store refuses, built around a fresh category so that a store that wrongly accepts one stays clean. */
const malformedStreamIds = (category: string): ReadonlyArray<string> => [
  "",
  category,
  `-${category}`,
  `${category}-`,
  `${category}-a\u0000b`,
  `${category}-a\nb`,
  `${category}-a\u007fb`,
  `${category}-a\ud800b`,
  `${category}-\udc00`,
  `${category}\t-1`,
  `${category}-${"x".repeat(300)}`,
  `9${category}-1`,
  `_${category}-1`,
  `${category} x-1`,
  `${category}!-1`,
  `${category}é-1`
]

/** Stream ids every store accepts and gives back exactly, whatever they hold after the category. */
const unusualStreamIds = (category: string): ReadonlyArray<string> => [
  `${category}-it's "quoted"`,
  `${category}-a;DROP TABLE events;--`,
  `${category}-'); DELETE FROM streams; --`,
  `${category}-100%_done\\`,
  `${category}-日本語のストリーム`,
  `${category}-مرحبا`,
  `${category}-🎉🚀👩‍👩‍👧‍👦`,
  `${category}-  spaced  out  `,
  `${category}-a-b-c`,
  `${category}-e\u0301\u2028\u2029`,
  `${category}-$1 \${x} {{y}}`
]

/**
 * Exact versions no stream can be at: negative, fractional, not a number, infinite, beyond the largest safe integer,
 * and just above `ExpectedVersion.maxVersion`.
 */
const invalidVersions: ReadonlyArray<number> = [
  -1,
  -0.5,
  1.5,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  2 ** 53,
  Number.MAX_SAFE_INTEGER,
  ExpectedVersion.maxVersion + 1
]

/** Asserts that `self` fails with an `InvalidExpectedVersion` naming the stream and the value given. */
const assertInvalidVersion = Effect.fnUntraced(function* <R>(
  self: Effect.Effect<
    unknown,
    EventStoreError.AppendError | EventStoreError.StreamNotFound | StreamId.InvalidStreamId,
    R
  >,
  streamId: string,
  version: number
) {
  const error = yield* expectFailure(self, "InvalidExpectedVersion")
  assert.strictEqual(error.streamId, streamId)
  assert.isTrue(Object.is(error.version, version), `the error names the version ${version}, not ${error.version}`)
})

/** Events and stream ids the store must refuse. */
export const register = (it: It): void => {
  describe("invalid expected versions", () => {
    it.effect("append refuses an exact version that is not a version, to a new or an existing stream", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const category = uniqueCategory()
        const fresh = `${category}-fresh`
        const existing = `${category}-existing`
        yield* store.append(existing, [event()])
        for (const version of invalidVersions) {
          const expectedVersion = ExpectedVersion.exact(version)
          yield* assertInvalidVersion(store.append(fresh, [event()], { expectedVersion }), fresh, version)
          yield* assertInvalidVersion(store.append(existing, [event()], { expectedVersion }), existing, version)
        }
        yield* assertNoStream(fresh)
        yield* assertVersion(existing, 1)
        assert.strictEqual((yield* readCategories([category])).length, 1)
      })
    )

    it.effect("appendMany refuses one, and writes none of its requests", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const category = uniqueCategory()
        const good = `${category}-good`
        const bad = `${category}-bad`
        for (const version of invalidVersions) {
          const requests = [
            { streamId: good, events: [event()], expectedVersion: ExpectedVersion.any },
            { streamId: bad, events: [event()], expectedVersion: ExpectedVersion.exact(version) }
          ]
          yield* assertInvalidVersion(store.appendMany(requests), bad, version)
        }
        yield* assertNoStream(good)
        yield* assertNoStream(bad)
      })
    )

    it.effect("archive and delete refuse one, whether the stream exists or not, and change nothing", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const category = uniqueCategory()
        const existing = `${category}-existing`
        const missing = `${category}-missing`
        yield* store.append(existing, [event(), event()])
        for (const version of invalidVersions) {
          const expectedVersion = ExpectedVersion.exact(version)
          yield* assertInvalidVersion(store.archive(existing, { expectedVersion }), existing, version)
          yield* assertInvalidVersion(store.delete(existing, { expectedVersion }), existing, version)
          yield* assertInvalidVersion(store.archive(missing, { expectedVersion }), missing, version)
          yield* assertInvalidVersion(store.delete(missing, { expectedVersion }), missing, version)
        }
        yield* assertVersion(existing, 2)
        const info = yield* store.streamInfo(existing)
        if (Option.isNone(info)) return assert.fail("the stream should exist")
        assert.isTrue(Option.isNone(info.value.archivedAt), "the stream should not be archived")
        assert.isTrue(Option.isNone(info.value.deletedAt), "the stream should not be deleted")
        yield* assertNoStream(missing)
      })
    )

    it.effect("the largest version is a valid expectation: a conflict for a stream below it, not a refusal", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const streamId = uniqueStream()
        const expectedVersion = ExpectedVersion.exact(ExpectedVersion.maxVersion)
        const conflict = yield* expectFailure(
          store.append(streamId, [event()], { expectedVersion }),
          "WrongExpectedVersion"
        )
        assert.strictEqual(conflict.actual, 0)
        assert.deepStrictEqual(conflict.expected, expectedVersion)
        yield* store.append(streamId, [event()])
        yield* expectFailure(store.archive(streamId, { expectedVersion }), "WrongExpectedVersion")
        yield* expectFailure(store.delete(streamId, { expectedVersion }), "WrongExpectedVersion")
        yield* assertVersion(streamId, 1)
      })
    )
  })

  describe("invalid events", () => {
    it.effect("an event id that is not a UUID is an InvalidEvent", () =>
      Effect.gen(function* () {
        for (const eventId of [
          "not-a-uuid",
          "",
          "123e4567-e89b-12d3-a456-42661417400",
          "123e4567-e89b-12d3-a456-4266141740000",
          "{123e4567-e89b-12d3-a456-426614174000}",
          "123e4567-e89b-12d3-a456-42661417400g",
          // 36 characters each: a dash out of place, a digit for a dash, a non-hex letter in upper case, a digit
          // outside ASCII, dashes only
          "123e4567e-89b-12d3-a456-426614174000",
          "123e4567-e89b012d3-a456-426614174000",
          "123E4567-E89B-12D3-A456-42661417400G",
          "123e4567-e89b-12d3-a456-42661417400\uff11",
          "-".repeat(36)
        ]) {
          yield* assertInvalid({ ...event(), eventId: eventId as Event.EventId })
        }
      })
    )

    it.effect("an empty event type is an InvalidEvent", () =>
      Effect.gen(function* () {
        yield* assertInvalid({ ...event(), type: "" })
      })
    )

    it.effect("an event type of 255 characters is stored, one of 256 is an InvalidEvent", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const streamId = uniqueStream()
        const longest = `T${"y".repeat(254)}`
        yield* store.append(streamId, [event(longest)])
        const [stored] = yield* readStream(streamId)
        assert.strictEqual(stored!.type, longest)
        yield* assertInvalid({ ...event(), type: `T${"y".repeat(255)}` })
      })
    )

    it.effect("an event type with control characters is an InvalidEvent", () =>
      Effect.gen(function* () {
        for (const type of ["Bad\nType", "Bad\u0000Type", "Bad\u007fType", "\tTabbed", "Bell\u0007"]) {
          yield* assertInvalid({ ...event(), type })
        }
      })
    )

    it.effect("schema versions must be integers from 1 to 32767", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        for (const schemaVersion of [0, -1, 1.5, 32768, Number.NaN, Number.POSITIVE_INFINITY]) {
          yield* assertInvalid({ ...event(), schemaVersion })
        }
        const streamId = uniqueStream()
        yield* store.append(streamId, [
          { ...event(), schemaVersion: 1 },
          { ...event(), schemaVersion: 32767 }
        ])
        const read = yield* readStream(streamId)
        assert.deepStrictEqual(
          read.map((e) => e.schemaVersion),
          [1, 32767]
        )
      })
    )

    it.effect("a NUL character anywhere in the data is an InvalidEvent", () =>
      Effect.gen(function* () {
        const datas: ReadonlyArray<Schema.Json> = [
          { text: "a\u0000b" },
          { text: "backslash then NUL \\\u0000" },
          { "key\u0000": 1 },
          { nested: { deeper: ["ok", "\u0000"] } },
          { nested: [{ "\u0000": null }] },
          "\u0000"
        ]
        for (const data of datas) yield* assertInvalid(event("Nul", data))
      })
    )

    it.effect("a NUL character anywhere in the metadata is an InvalidEvent", () =>
      Effect.gen(function* () {
        yield* assertInvalid(event("Nul", { n: 1 }, { actor: "a\u0000" }))
        yield* assertInvalid(event("Nul", { n: 1 }, { attributes: { "k\u0000": 1 } }))
        yield* assertInvalid(event("Nul", { n: 1 }, { attributes: { deep: { list: ["\u0000"] } } }))
        yield* assertInvalid(event("Nul", { n: 1 }), { metadata: { correlationId: "\u0000" } })
      })
    )

    it.effect("a lone UTF-16 surrogate in a type, data or metadata is an InvalidEvent; a paired one round-trips", () =>
      Effect.gen(function* () {
        yield* assertInvalid(event("Lone\ud800"))
        yield* assertInvalid(event("Lone", { text: "a\ud800b" }))
        yield* assertInvalid(event("Lone", { "\udc00": 1 }))
        yield* assertInvalid(event("Lone", { n: 1 }, { actor: "\udbff" }))
        const store = yield* EventStore.EventStore
        const streamId = uniqueStream()
        yield* store.append(streamId, [event("Paired", { text: "\ud83d\ude00" })])
        const [stored] = yield* readStream(streamId)
        assert.deepStrictEqual(stored!.data, { text: "\ud83d\ude00" })
      })
    )

    it.effect("a backslash followed by u0000 is ordinary text and round-trips", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const streamId = uniqueStream()
        const data = { text: "\\u0000", "\\u0000": "key", escaped: "\\\\u0000", mixed: "a\\\\\\u0000b" }
        const metadata = { actor: "\\u0000", attributes: { path: "C:\\u0000\\dir" } }
        yield* store.append(streamId, [event("Escaped", data, metadata)])
        const [stored] = yield* readStream(streamId)
        assert.deepStrictEqual(stored!.data, data)
        assert.deepStrictEqual(stored!.metadata, metadata)
      })
    )

    it.effect("non-finite numbers in data or metadata are an InvalidEvent", () =>
      Effect.gen(function* () {
        for (const n of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
          yield* assertInvalid(event("Number", { n }))
          yield* assertInvalid(event("Number", { nested: [1, { n }] }))
          yield* assertInvalid(event("Number", { n: 1 }, { attributes: { n } }))
        }
      })
    )

    it.effect("a bigint in data or metadata is an InvalidEvent", () =>
      Effect.gen(function* () {
        yield* assertInvalid(event("Big", { n: 1n } as unknown as Schema.Json))
        yield* assertInvalid(event("Big", { nested: [2n] } as unknown as Schema.Json))
        yield* assertInvalid(event("Big", { n: 1 }, { attributes: { n: 3n } } as unknown as Event.EventMetadata))
      })
    )

    it.effect("a failed append writes none of its events, to a new or an existing stream", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const category = uniqueCategory()
        const fresh = `${category}-fresh`
        const existing = `${category}-existing`
        const bad = event("Bad", { text: "\u0000" })
        yield* expectFailure(store.append(fresh, [event(), event(), bad]), "InvalidEvent")
        yield* assertNoStream(fresh)
        yield* store.append(existing, [event()])
        yield* expectFailure(store.append(existing, [event(), bad, event()]), "InvalidEvent")
        yield* assertVersion(existing, 1)
        const logged = yield* readCategories([category])
        assert.strictEqual(logged.length, 1)
      })
    )
  })

  describe("stream ids", () => {
    it.effect("append refuses malformed stream ids with InvalidStreamId", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const category = uniqueCategory()
        for (const streamId of malformedStreamIds(category)) {
          const error = yield* expectFailure(store.append(streamId, [event()]), "InvalidStreamId")
          assert.strictEqual(error.streamId, streamId)
          assert.isString(error.reason)
        }
        assert.deepStrictEqual(yield* readCategories([category]), [])
      })
    )

    it.effect("read refuses malformed stream ids with InvalidStreamId", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        for (const streamId of malformedStreamIds(uniqueCategory())) {
          const error = yield* expectStreamFailure(store.read(streamId), "InvalidStreamId")
          assert.strictEqual(error.streamId, streamId)
        }
      })
    )

    it.effect("streamInfo refuses malformed stream ids with InvalidStreamId", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        for (const streamId of malformedStreamIds(uniqueCategory())) {
          const error = yield* expectFailure(store.streamInfo(streamId), "InvalidStreamId")
          assert.strictEqual(error.streamId, streamId)
        }
      })
    )

    it.effect("a stream id of 255 characters is accepted, one of 256 is refused", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const category = uniqueCategory()
        const longest = `${category}-${"x".repeat(255 - category.length - 1)}`
        assert.strictEqual(longest.length, 255)
        yield* store.append(longest, [event()])
        const [stored] = yield* readStream(longest)
        assert.strictEqual(stored!.streamId, longest)
        const tooLong = `${longest}x`
        yield* expectFailure(store.append(tooLong, [event()]), "InvalidStreamId")
        yield* expectStreamFailure(store.read(tooLong), "InvalidStreamId")
        yield* expectFailure(store.streamInfo(tooLong), "InvalidStreamId")
      })
    )

    it.effect("stream ids with quotes, semicolons, wildcards, unicode, emoji and spaces round-trip exactly", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const category = uniqueCategory()
        const ids = unusualStreamIds(category)
        for (const streamId of ids) {
          const result = yield* store.append(streamId, [event()])
          assert.strictEqual(result.streamId, streamId)
          const read = yield* readStream(streamId)
          assert.deepStrictEqual(
            read.map((e) => e.streamId),
            [streamId]
          )
          const info = yield* store.streamInfo(streamId)
          if (Option.isNone(info)) return assert.fail(`stream ${streamId} should exist`)
          assert.strictEqual(info.value.streamId, streamId)
          assert.strictEqual(info.value.category, category)
          assert.strictEqual(info.value.version, 1)
        }
        const logged = yield* readCategories([category])
        assert.deepStrictEqual(
          logged.map((e) => e.streamId),
          ids
        )
      })
    )

    it.effect("stream ids are case-sensitive", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const category = uniqueCategory()
        yield* store.append(`${category}-abc`, [event()])
        yield* store.append(`${category}-ABC`, [event(), event()])
        yield* assertVersion(`${category}-abc`, 1)
        yield* assertVersion(`${category}-ABC`, 2)
        yield* assertNoStream(`${category}-Abc`)
      })
    )

    it.effect("the category is the part before the first dash, and may hold letters, digits, _ . and :", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const category = `${uniqueCategory()}_x.y:Z9`
        const streamId = `${category}-a-b`
        yield* store.append(streamId, [event()])
        const info = yield* store.streamInfo(streamId)
        if (Option.isNone(info)) return assert.fail("the stream should exist")
        assert.strictEqual(info.value.category, category)
        const logged = yield* readCategories([category])
        assert.deepStrictEqual(
          logged.map((e) => e.streamId),
          [streamId]
        )
        assert.deepStrictEqual(yield* readCategories([`${category}-a`]), [])
      })
    )
  })
}
