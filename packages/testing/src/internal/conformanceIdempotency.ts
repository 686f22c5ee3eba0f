import { assert, describe } from "@effect/vitest"
import { Event, EventStore, ExpectedVersion } from "@facta/core"
import { Effect } from "effect"
import type { It } from "./conformanceHelpers.ts"
import {
  assertNoStream,
  assertSamePositions,
  assertVersion,
  event,
  events,
  expectFailure,
  idsOf,
  readCategories,
  readStream,
  uniqueCategory,
  uniqueStream
} from "./conformanceHelpers.ts"

/** Retries of an append: the same event ids again. */
export const register = (it: It): void => {
  describe("idempotency", () => {
    it.effect("retrying an append returns the original result and writes nothing", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const category = uniqueCategory()
        const streamId = `${category}-1`
        const batch = events(2)
        const original = yield* store.append(streamId, batch)
        const retry = yield* store.append(streamId, batch)
        assert.strictEqual(retry.streamId, streamId)
        assert.strictEqual(retry.nextExpectedVersion, 2)
        assertSamePositions(retry.positions, original.positions)
        yield* assertVersion(streamId, 2)
        const logged = yield* readCategories([category])
        assert.deepStrictEqual(idsOf(logged), idsOf(batch))
      })
    )

    it.effect("a retry is recognised whatever expected version it carries", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const streamId = uniqueStream()
        const batch = events(2)
        const original = yield* store.append(streamId, batch, { expectedVersion: ExpectedVersion.noStream })
        yield* store.append(streamId, events(2))
        for (const expectedVersion of [
          ExpectedVersion.noStream,
          ExpectedVersion.exact(0),
          ExpectedVersion.exact(9),
          ExpectedVersion.streamExists,
          ExpectedVersion.any
        ]) {
          const retry = yield* store.append(streamId, batch, { expectedVersion })
          assert.strictEqual(retry.nextExpectedVersion, 2)
          assertSamePositions(retry.positions, original.positions)
        }
        yield* assertVersion(streamId, 4)
      })
    )

    it.effect("a retry of an earlier append returns that append's version, not the stream's current one", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const streamId = uniqueStream()
        const first = events(2)
        const second = events(3)
        const firstResult = yield* store.append(streamId, first)
        const secondResult = yield* store.append(streamId, second)
        yield* store.append(streamId, [event()])
        const firstRetry = yield* store.append(streamId, first)
        const secondRetry = yield* store.append(streamId, second)
        assert.strictEqual(firstRetry.nextExpectedVersion, 2)
        assertSamePositions(firstRetry.positions, firstResult.positions)
        assert.strictEqual(secondRetry.nextExpectedVersion, 5)
        assertSamePositions(secondRetry.positions, secondResult.positions)
        yield* assertVersion(streamId, 6)
      })
    )

    it.effect("retrying a contiguous part of a stored append returns the version of its last event", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const streamId = uniqueStream()
        const batch = events(3)
        const original = yield* store.append(streamId, batch)
        const tail = yield* store.append(streamId, batch.slice(1))
        assert.strictEqual(tail.nextExpectedVersion, 3)
        assertSamePositions(tail.positions, original.positions.slice(1))
        const head = yield* store.append(streamId, batch.slice(0, 1))
        assert.strictEqual(head.nextExpectedVersion, 1)
        assertSamePositions(head.positions, original.positions.slice(0, 1))
        yield* assertVersion(streamId, 3)
      })
    )

    it.effect("a retry may carry other metadata, and the stored metadata stays the original", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const streamId = uniqueStream()
        const original = event("Traced", { n: 1 }, { traceId: "first", attributes: { attempt: 1 } })
        const result = yield* store.append(streamId, [original], { metadata: { correlationId: "c-1" } })
        const retried = { ...original, metadata: { traceId: "second", attributes: { attempt: 2 } } }
        const retry = yield* store.append(streamId, [retried], { metadata: { correlationId: "c-2" } })
        assert.strictEqual(retry.nextExpectedVersion, 1)
        assertSamePositions(retry.positions, result.positions)
        const [stored] = yield* readStream(streamId)
        assert.deepStrictEqual(stored!.metadata, { correlationId: "c-1", traceId: "first", attributes: { attempt: 1 } })
        yield* assertVersion(streamId, 1)
      })
    )

    it.effect("a retry whose data has its keys in another order is the same append", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const streamId = uniqueStream()
        const original = event("Ordered", { a: 1, b: { c: [1, 2], d: "x" }, e: null })
        const result = yield* store.append(streamId, [original])
        const retry = yield* store.append(streamId, [
          { ...original, data: { e: null, b: { d: "x", c: [1, 2] }, a: 1 } }
        ])
        assertSamePositions(retry.positions, result.positions)
        yield* assertVersion(streamId, 1)
      })
    )

    it.effect("event ids are case-insensitive and stored lowercased", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const streamId = uniqueStream()
        const lower = Event.makeEventIdUnsafe()
        const upper = lower.toUpperCase() as Event.EventId
        const original = { eventId: upper, type: "Cased", schemaVersion: 1, data: { n: 1 } }
        const result = yield* store.append(streamId, [original])
        const [stored] = yield* readStream(streamId)
        assert.strictEqual(stored!.eventId, lower)
        const lowerRetry = yield* store.append(streamId, [{ ...original, eventId: lower }])
        const upperRetry = yield* store.append(streamId, [original])
        assertSamePositions(lowerRetry.positions, result.positions)
        assertSamePositions(upperRetry.positions, result.positions)
        yield* assertVersion(streamId, 1)
      })
    )

    it.effect("a partial overlap with stored ids is an IdempotencyConflict and writes nothing", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const streamId = uniqueStream()
        const [a, b, c] = events(3)
        yield* store.append(streamId, [a!, b!])
        const overlap = yield* expectFailure(store.append(streamId, [b!, c!]), "IdempotencyConflict")
        assert.strictEqual(overlap.streamId, streamId)
        assert.include(overlap.eventIds, b!.eventId)
        const superset = yield* expectFailure(store.append(streamId, [a!, b!, c!]), "IdempotencyConflict")
        assert.include(superset.eventIds, a!.eventId)
        yield* assertVersion(streamId, 2)
        const read = yield* readStream(streamId)
        assert.deepStrictEqual(idsOf(read), [a!.eventId, b!.eventId])
      })
    )

    it.effect("reusing an id with other data is an IdempotencyConflict", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const streamId = uniqueStream()
        const original = event("Deposited", { amount: 5 })
        yield* store.append(streamId, [original])
        const error = yield* expectFailure(
          store.append(streamId, [{ ...original, data: { amount: 6 } }]),
          "IdempotencyConflict"
        )
        assert.strictEqual(error.streamId, streamId)
        assert.deepStrictEqual(error.eventIds, [original.eventId])
        yield* assertVersion(streamId, 1)
        const [stored] = yield* readStream(streamId)
        assert.deepStrictEqual(stored!.data, { amount: 5 })
      })
    )

    it.effect("reusing an id with another type or schema version is an IdempotencyConflict", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const streamId = uniqueStream()
        const original = event("Deposited", { amount: 5 })
        yield* store.append(streamId, [original])
        const type = yield* expectFailure(
          store.append(streamId, [{ ...original, type: "Withdrawn" }]),
          "IdempotencyConflict"
        )
        assert.deepStrictEqual(type.eventIds, [original.eventId])
        const version = yield* expectFailure(
          store.append(streamId, [{ ...original, schemaVersion: 2 }]),
          "IdempotencyConflict"
        )
        assert.deepStrictEqual(version.eventIds, [original.eventId])
        yield* assertVersion(streamId, 1)
      })
    )

    it.effect("reusing an id in another stream is an IdempotencyConflict and creates nothing", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const category = uniqueCategory()
        const original = event()
        yield* store.append(`${category}-a`, [original])
        const error = yield* expectFailure(store.append(`${category}-b`, [original]), "IdempotencyConflict")
        assert.strictEqual(error.streamId, `${category}-b`)
        assert.deepStrictEqual(error.eventIds, [original.eventId])
        yield* assertNoStream(`${category}-b`)
        yield* assertVersion(`${category}-a`, 1)
      })
    )

    it.effect("reusing ids in another order is an IdempotencyConflict", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const streamId = uniqueStream()
        const [a, b] = events(2)
        yield* store.append(streamId, [a!, b!])
        const error = yield* expectFailure(store.append(streamId, [b!, a!]), "IdempotencyConflict")
        assert.strictEqual(error.streamId, streamId)
        yield* assertVersion(streamId, 2)
        assert.deepStrictEqual(idsOf(yield* readStream(streamId)), [a!.eventId, b!.eventId])
      })
    )

    it.effect("the same id twice within one append is an InvalidEvent and writes nothing", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const streamId = uniqueStream()
        const [a, b] = events(2)
        const twice = yield* expectFailure(store.append(streamId, [a!, b!, a!]), "InvalidEvent")
        assert.strictEqual(twice.streamId, streamId)
        assert.strictEqual(twice.eventId?.toLowerCase(), a!.eventId)
        const cased = yield* expectFailure(
          store.append(streamId, [a!, { ...a!, eventId: a!.eventId.toUpperCase() as Event.EventId }]),
          "InvalidEvent"
        )
        assert.strictEqual(cased.eventId?.toLowerCase(), a!.eventId)
        yield* assertNoStream(streamId)
      })
    )
  })
}
