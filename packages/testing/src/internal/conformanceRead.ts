import { assert, describe } from "@effect/vitest"
import { EventStore, ExpectedVersion, Position } from "@facta/core"
import { DateTime, Effect, Option } from "effect"
import type { It } from "./conformanceHelpers.ts"
import {
  assertSamePositions,
  event,
  events,
  expectFailure,
  expectStreamFailure,
  idsOf,
  readStream,
  uniqueStream
} from "./conformanceHelpers.ts"

const versionsOf = (list: ReadonlyArray<{ readonly version: number }>): Array<number> => list.map((e) => e.version)

const assertUtc = (value: unknown, what: string): DateTime.Utc => {
  assert.isTrue(DateTime.isDateTime(value), `${what} should be a DateTime`)
  assert.isTrue(DateTime.isUtc(value as DateTime.DateTime), `${what} should be a DateTime.Utc`)
  return value as DateTime.Utc
}

/** A stream of five events, numbered 1 to 5 in their data. */
const fiveEvents = Effect.gen(function* () {
  const store = yield* EventStore.EventStore
  const streamId = uniqueStream()
  yield* store.append(streamId, events(5))
  return streamId
})

/** Reading one stream, and what the store knows of it. */
export const register = (it: It): void => {
  describe("read", () => {
    it.effect("reads a stream forward with every recorded field", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const streamId = uniqueStream()
        const batch = [
          event("Opened", { owner: "ann", limits: [1, 2] }, { actor: "ann" }),
          { ...event("Renamed", { name: "bob" }), schemaVersion: 3 }
        ]
        const result = yield* store.append(streamId, batch, { metadata: { correlationId: "c-9" } })
        const read = yield* readStream(streamId)
        assert.strictEqual(read.length, 2)
        for (let i = 0; i < read.length; i++) {
          const recorded = read[i]!
          assert.strictEqual(recorded.eventId, batch[i]!.eventId)
          assert.strictEqual(recorded.streamId, streamId)
          assert.strictEqual(recorded.version, i + 1)
          assert.isTrue(Position.equals(recorded.position, result.positions[i]!), "position as returned by append")
          assert.strictEqual(recorded.type, batch[i]!.type)
          assert.strictEqual(recorded.schemaVersion, batch[i]!.schemaVersion)
          assert.deepStrictEqual(recorded.data, batch[i]!.data)
          assertUtc(recorded.recordedAt, "recordedAt")
        }
        assert.deepStrictEqual(read[0]!.metadata, { correlationId: "c-9", actor: "ann" })
        assert.deepStrictEqual(read[1]!.metadata, { correlationId: "c-9" })
      })
    )

    it.effect("reads the versions from..to, both inclusive", () =>
      Effect.gen(function* () {
        const streamId = yield* fiveEvents
        assert.deepStrictEqual(versionsOf(yield* readStream(streamId, { from: 2, to: 4 })), [2, 3, 4])
        assert.deepStrictEqual(versionsOf(yield* readStream(streamId, { from: 3 })), [3, 4, 5])
        assert.deepStrictEqual(versionsOf(yield* readStream(streamId, { to: 2 })), [1, 2])
        assert.deepStrictEqual(versionsOf(yield* readStream(streamId, { from: 5, to: 5 })), [5])
        assert.deepStrictEqual(versionsOf(yield* readStream(streamId, { from: 4, to: 99 })), [4, 5])
        const data = (yield* readStream(streamId, { from: 2, to: 3 })).map((e) => e.data)
        assert.deepStrictEqual(data, [{ n: 2 }, { n: 3 }])
      })
    )

    it.effect("reads backward in descending version order, over a range too", () =>
      Effect.gen(function* () {
        const streamId = yield* fiveEvents
        const backward = yield* readStream(streamId, { direction: "backward" })
        assert.deepStrictEqual(versionsOf(backward), [5, 4, 3, 2, 1])
        assert.deepStrictEqual(
          backward.map((e) => e.data),
          [{ n: 5 }, { n: 4 }, { n: 3 }, { n: 2 }, { n: 1 }]
        )
        assert.deepStrictEqual(
          versionsOf(yield* readStream(streamId, { direction: "backward", from: 2, to: 4 })),
          [4, 3, 2]
        )
        assert.deepStrictEqual(versionsOf(yield* readStream(streamId, { direction: "forward" })), [1, 2, 3, 4, 5])
      })
    )

    it.effect("limit counts from the start of the chosen order", () =>
      Effect.gen(function* () {
        const streamId = yield* fiveEvents
        assert.deepStrictEqual(versionsOf(yield* readStream(streamId, { limit: 2 })), [1, 2])
        assert.deepStrictEqual(versionsOf(yield* readStream(streamId, { direction: "backward", limit: 2 })), [5, 4])
        assert.deepStrictEqual(versionsOf(yield* readStream(streamId, { from: 2, limit: 2 })), [2, 3])
        assert.deepStrictEqual(
          versionsOf(yield* readStream(streamId, { direction: "backward", to: 3, limit: 2 })),
          [3, 2]
        )
        assert.deepStrictEqual(versionsOf(yield* readStream(streamId, { limit: 50 })), [1, 2, 3, 4, 5])
      })
    )

    it.effect("backward with limit 1 reads the last event", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const streamId = yield* fiveEvents
        const [last] = yield* readStream(streamId, { direction: "backward", limit: 1 })
        assert.strictEqual(last!.version, 5)
        const newest = event("Newest")
        yield* store.append(streamId, [newest])
        const after = yield* readStream(streamId, { direction: "backward", limit: 1 })
        assert.deepStrictEqual(idsOf(after), [newest.eventId])
        assert.strictEqual(after[0]!.version, 6)
      })
    )

    it.effect("a range beyond the stream's end reads nothing", () =>
      Effect.gen(function* () {
        const streamId = yield* fiveEvents
        assert.deepStrictEqual(yield* readStream(streamId, { from: 6 }), [])
        assert.deepStrictEqual(yield* readStream(streamId, { from: 10, to: 20 }), [])
        assert.deepStrictEqual(yield* readStream(streamId, { from: 6, direction: "backward" }), [])
        assert.deepStrictEqual(yield* readStream(streamId, { from: 4, to: 3 }), [])
      })
    )

    it.effect("reading a missing stream fails with StreamNotFound", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const streamId = uniqueStream()
        const error = yield* expectStreamFailure(store.read(streamId), "StreamNotFound")
        assert.strictEqual(error.streamId, streamId)
        const backward = yield* expectStreamFailure(
          store.read(streamId, { direction: "backward", limit: 1 }),
          "StreamNotFound"
        )
        assert.strictEqual(backward.streamId, streamId)
      })
    )

    it.effect("the batch size does not change what is read", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const streamId = uniqueStream()
        const batch = events(7)
        const result = yield* store.append(streamId, batch)
        for (const batchSize of [1, 2, 3, 1000]) {
          const forward = yield* readStream(streamId, { batchSize })
          assert.deepStrictEqual(idsOf(forward), idsOf(batch), `forward, batch size ${batchSize}`)
          assertSamePositions(
            forward.map((e) => e.position),
            result.positions
          )
          const backward = yield* readStream(streamId, { batchSize, direction: "backward" })
          assert.deepStrictEqual(idsOf(backward), idsOf(batch).reverse(), `backward, batch size ${batchSize}`)
          const ranged = yield* readStream(streamId, { batchSize, from: 2, to: 6, limit: 4 })
          assert.deepStrictEqual(versionsOf(ranged), [2, 3, 4, 5], `range, batch size ${batchSize}`)
        }
      })
    )
  })

  describe("streamInfo", () => {
    it.effect("is None for a missing stream", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const info = yield* store.streamInfo(uniqueStream())
        assert.isTrue(Option.isNone(info))
      })
    )

    it.effect("reports the stream id, category, last version and UTC timestamps", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const streamId = uniqueStream()
        yield* store.append(streamId, events(3))
        const info = yield* store.streamInfo(streamId)
        if (Option.isNone(info)) return assert.fail("the stream should exist")
        assert.strictEqual(info.value.streamId, streamId)
        assert.strictEqual(info.value.category, streamId.slice(0, streamId.indexOf("-")))
        assert.strictEqual(info.value.version, 3)
        const createdAt = assertUtc(info.value.createdAt, "createdAt")
        const updatedAt = assertUtc(info.value.updatedAt, "updatedAt")
        assert.isTrue(DateTime.isLessThanOrEqualTo(createdAt, updatedAt), "createdAt <= updatedAt")
      })
    )

    it.effect("follows appends: the version grows, createdAt stays and updatedAt never goes back", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const streamId = uniqueStream()
        yield* store.append(streamId, [event()])
        const before = Option.getOrThrow(yield* store.streamInfo(streamId))
        yield* store.append(streamId, events(2))
        const after = Option.getOrThrow(yield* store.streamInfo(streamId))
        assert.strictEqual(before.version, 1)
        assert.strictEqual(after.version, 3)
        assert.strictEqual(DateTime.toEpochMillis(after.createdAt), DateTime.toEpochMillis(before.createdAt))
        assert.isTrue(DateTime.isGreaterThanOrEqualTo(after.updatedAt, before.updatedAt))
        yield* expectFailure(
          store.append(streamId, [event()], { expectedVersion: ExpectedVersion.noStream }),
          "WrongExpectedVersion"
        )
        const unchanged = Option.getOrThrow(yield* store.streamInfo(streamId))
        assert.strictEqual(unchanged.version, 3)
        assert.strictEqual(DateTime.toEpochMillis(unchanged.updatedAt), DateTime.toEpochMillis(after.updatedAt))
      })
    )
  })
}
