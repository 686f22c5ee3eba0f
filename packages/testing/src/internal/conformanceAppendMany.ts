import { assert, describe } from "@effect/vitest"
import { EventStore, ExpectedVersion, Position } from "@facta/core"
import { Effect, Stream } from "effect"
import type { It } from "./conformanceHelpers.ts"
import {
  assertIncreasing,
  assertNoStream,
  assertSamePositions,
  assertVersion,
  event,
  events,
  expectFailure,
  idsOf,
  readCategories,
  readStream,
  uniqueCategory
} from "./conformanceHelpers.ts"

/** Asserts that a category holds exactly the given event ids, in log order. */
const assertCategory = Effect.fnUntraced(function* (category: string, ids: ReadonlyArray<string>) {
  const logged = yield* readCategories([category])
  assert.deepStrictEqual(idsOf(logged), ids, `category ${category}`)
})

/** Appending to several streams in one transaction. */
export const register = (it: It): void => {
  describe("appendMany", () => {
    it.effect("appends to several streams and returns the results in request order", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const category = uniqueCategory()
        yield* store.append(`${category}-b`, events(2))
        const forA = events(2)
        const forB = events(1)
        const forC = events(3)
        const results = yield* store.appendMany([
          { streamId: `${category}-a`, events: forA, expectedVersion: ExpectedVersion.noStream },
          { streamId: `${category}-b`, events: forB, expectedVersion: ExpectedVersion.exact(2) },
          { streamId: `${category}-c`, events: forC }
        ])
        assert.deepStrictEqual(
          results.map((r) => [r.streamId, r.nextExpectedVersion, r.positions.length]),
          [
            [`${category}-a`, 2, 2],
            [`${category}-b`, 3, 1],
            [`${category}-c`, 3, 3]
          ]
        )
        assertIncreasing(results.flatMap((r) => r.positions))
        yield* assertVersion(`${category}-a`, 2)
        yield* assertVersion(`${category}-b`, 3)
        yield* assertVersion(`${category}-c`, 3)
        const b = yield* readStream(`${category}-b`, { from: 3 })
        assert.deepStrictEqual(idsOf(b), idsOf(forB))
        assertSamePositions(
          b.map((e) => e.position),
          results[1]!.positions
        )
      })
    )

    it.effect("one wrong expected version writes nothing from any request", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const category = uniqueCategory()
        const existing = yield* store.append(`${category}-b`, [event()])
        const error = yield* expectFailure(
          store.appendMany([
            { streamId: `${category}-a`, events: events(2) },
            { streamId: `${category}-b`, events: [event()], expectedVersion: ExpectedVersion.exact(5) },
            { streamId: `${category}-c`, events: [event()] }
          ]),
          "WrongExpectedVersion"
        )
        assert.strictEqual(error.streamId, `${category}-b`)
        assert.strictEqual(error.actual, 1)
        assert.deepStrictEqual(error.expected, ExpectedVersion.exact(5))
        yield* assertNoStream(`${category}-a`)
        yield* assertNoStream(`${category}-c`)
        yield* assertVersion(`${category}-b`, 1)
        const logged = yield* readCategories([category])
        assertSamePositions(
          logged.map((e) => e.position),
          existing.positions
        )
      })
    )

    it.effect("one invalid event writes nothing from any request", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const category = uniqueCategory()
        const error = yield* expectFailure(
          store.appendMany([
            { streamId: `${category}-a`, events: events(2) },
            { streamId: `${category}-b`, events: [event(), event("Bad", { x: Number.NaN })] }
          ]),
          "InvalidEvent"
        )
        assert.strictEqual(error.streamId, `${category}-b`)
        yield* assertNoStream(`${category}-a`)
        yield* assertNoStream(`${category}-b`)
        yield* assertCategory(category, [])
      })
    )

    it.effect("one invalid stream id writes nothing from any request", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const category = uniqueCategory()
        const error = yield* expectFailure(
          store.appendMany([
            { streamId: `${category}-a`, events: events(2) },
            { streamId: `${category}`, events: [event()] }
          ]),
          "InvalidStreamId"
        )
        assert.strictEqual(error.streamId, category)
        yield* assertNoStream(`${category}-a`)
        yield* assertCategory(category, [])
      })
    )

    it.effect("one idempotency conflict writes nothing from any request", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const category = uniqueCategory()
        const stored = event()
        yield* store.append(`${category}-x`, [stored])
        const error = yield* expectFailure(
          store.appendMany([
            { streamId: `${category}-a`, events: events(2) },
            { streamId: `${category}-b`, events: [event(), stored] }
          ]),
          "IdempotencyConflict"
        )
        assert.strictEqual(error.streamId, `${category}-b`)
        assert.include(error.eventIds, stored.eventId)
        yield* assertNoStream(`${category}-a`)
        yield* assertNoStream(`${category}-b`)
        yield* assertCategory(category, [stored.eventId])
      })
    )

    it.effect("the same event id in two requests is an IdempotencyConflict and writes nothing", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const category = uniqueCategory()
        const shared = event()
        const error = yield* expectFailure(
          store.appendMany([
            { streamId: `${category}-a`, events: [shared] },
            { streamId: `${category}-b`, events: [event(), shared] }
          ]),
          "IdempotencyConflict"
        )
        assert.include(error.eventIds, shared.eventId)
        yield* assertNoStream(`${category}-a`)
        yield* assertNoStream(`${category}-b`)
      })
    )

    it.effect("the same stream twice applies in order, the second request seeing the first's events", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const category = uniqueCategory()
        const first = events(1)
        const second = events(2)
        const results = yield* store.appendMany([
          { streamId: `${category}-1`, events: first, expectedVersion: ExpectedVersion.noStream },
          { streamId: `${category}-1`, events: second, expectedVersion: ExpectedVersion.exact(1) }
        ])
        assert.deepStrictEqual(
          results.map((r) => r.nextExpectedVersion),
          [1, 3]
        )
        assertIncreasing([...results[0]!.positions, ...results[1]!.positions])
        assert.deepStrictEqual(idsOf(yield* readStream(`${category}-1`)), idsOf([...first, ...second]))

        const conflict = yield* expectFailure(
          store.appendMany([
            { streamId: `${category}-2`, events: [event()], expectedVersion: ExpectedVersion.noStream },
            { streamId: `${category}-2`, events: [event()], expectedVersion: ExpectedVersion.noStream }
          ]),
          "WrongExpectedVersion"
        )
        assert.strictEqual(conflict.streamId, `${category}-2`)
        assert.strictEqual(conflict.actual, 1)
        yield* assertNoStream(`${category}-2`)
      })
    )

    it.effect("requests without events check their expected version and create nothing", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const category = uniqueCategory()
        yield* store.append(`${category}-existing`, events(2))
        const results = yield* store.appendMany([
          { streamId: `${category}-empty`, events: [], expectedVersion: ExpectedVersion.noStream },
          { streamId: `${category}-existing`, events: [], expectedVersion: ExpectedVersion.exact(2) },
          { streamId: `${category}-new`, events: [event()] }
        ])
        assert.deepStrictEqual(
          results.map((r) => [r.nextExpectedVersion, r.positions.length]),
          [
            [0, 0],
            [2, 0],
            [1, 1]
          ]
        )
        yield* assertNoStream(`${category}-empty`)
        yield* expectFailure(
          store.appendMany([
            { streamId: `${category}-existing`, events: [], expectedVersion: ExpectedVersion.noStream },
            { streamId: `${category}-other`, events: [event()] }
          ]),
          "WrongExpectedVersion"
        )
        yield* assertNoStream(`${category}-other`)
        yield* assertVersion(`${category}-existing`, 2)
      })
    )

    it.effect("its positions come after every earlier event and increase in request order", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const category = uniqueCategory()
        const before = yield* store.append(`${category}-z`, events(2))
        const results = yield* store.appendMany([
          { streamId: `${category}-y`, events: events(2) },
          { streamId: `${category}-z`, events: events(1) },
          { streamId: `${category}-x`, events: events(2) }
        ])
        const positions = results.flatMap((r) => r.positions)
        assertIncreasing([...before.positions, ...positions])
        const logged = yield* Stream.runCollect(store.readAll({ after: before.positions[1]!, categories: [category] }))
        assertSamePositions(
          logged.map((e) => e.position),
          positions
        )
        assert.deepStrictEqual(
          logged.map((e) => e.streamId),
          [`${category}-y`, `${category}-y`, `${category}-z`, `${category}-x`, `${category}-x`]
        )
        for (const p of positions) assert.isTrue(Position.isBefore(before.positions[1]!, p))
      })
    )

    it.effect("retrying an appendMany returns the original results and writes nothing", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const category = uniqueCategory()
        const requests = [
          { streamId: `${category}-a`, events: events(2), expectedVersion: ExpectedVersion.noStream },
          { streamId: `${category}-b`, events: events(1), expectedVersion: ExpectedVersion.noStream }
        ]
        const original = yield* store.appendMany(requests)
        const retry = yield* store.appendMany(requests)
        assert.deepStrictEqual(
          retry.map((r) => [r.streamId, r.nextExpectedVersion]),
          original.map((r) => [r.streamId, r.nextExpectedVersion])
        )
        for (let i = 0; i < original.length; i++) assertSamePositions(retry[i]!.positions, original[i]!.positions)
        yield* assertVersion(`${category}-a`, 2)
        yield* assertVersion(`${category}-b`, 1)
        yield* assertCategory(category, idsOf([...requests[0]!.events, ...requests[1]!.events]))
      })
    )
  })
}
