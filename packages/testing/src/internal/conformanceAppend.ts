import { assert, describe } from "@effect/vitest"
import type { Event } from "@facta/core"
import { EventStore, ExpectedVersion, Position } from "@facta/core"
import { Effect, Option } from "effect"
import type { It } from "./conformanceHelpers.ts"
import {
  assertIncreasing,
  assertNoStream,
  assertVersion,
  event,
  events,
  expectFailure,
  idsOf,
  readStream,
  uniqueCategory,
  uniqueStream
} from "./conformanceHelpers.ts"

/** Appending, versions and optimistic concurrency. */
export const register = (it: It): void => {
  describe("append and expected version", () => {
    it.effect("appends to a new stream with versions 1..n and increasing positions", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const streamId = uniqueStream()
        const batch = events(3)
        const result = yield* store.append(streamId, batch)
        assert.strictEqual(result.streamId, streamId)
        assert.strictEqual(result.nextExpectedVersion, 3)
        assert.strictEqual(result.positions.length, 3)
        assertIncreasing(result.positions)
        const read = yield* readStream(streamId)
        assert.deepStrictEqual(
          read.map((e) => e.version),
          [1, 2, 3]
        )
        assert.deepStrictEqual(idsOf(read), idsOf(batch))
      })
    )

    it.effect("continues versions and positions across appends", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const streamId = uniqueStream()
        const first = yield* store.append(streamId, events(2))
        const second = yield* store.append(streamId, events(3))
        assert.strictEqual(first.nextExpectedVersion, 2)
        assert.strictEqual(second.nextExpectedVersion, 5)
        assertIncreasing([...first.positions, ...second.positions])
        yield* assertVersion(streamId, 5)
      })
    )

    it.effect("counts versions per stream, whatever is appended to other streams in between", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const category = uniqueCategory()
        const a = `${category}-a`
        const b = `${category}-b`
        yield* store.append(a, [event()])
        yield* store.append(b, events(2))
        yield* store.append(a, [event()])
        const last = yield* store.append(b, [event()])
        assert.strictEqual(last.nextExpectedVersion, 3)
        yield* assertVersion(a, 2)
        yield* assertVersion(b, 3)
      })
    )

    it.effect("noStream creates a missing stream", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const streamId = uniqueStream()
        const result = yield* store.append(streamId, events(2), { expectedVersion: ExpectedVersion.noStream })
        assert.strictEqual(result.nextExpectedVersion, 2)
        yield* assertVersion(streamId, 2)
      })
    )

    it.effect("noStream on an existing stream fails with the stream's real version and writes nothing", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const streamId = uniqueStream()
        yield* store.append(streamId, events(2))
        const error = yield* expectFailure(
          store.append(streamId, [event()], { expectedVersion: ExpectedVersion.noStream }),
          "WrongExpectedVersion"
        )
        assert.strictEqual(error.streamId, streamId)
        assert.deepStrictEqual(error.expected, ExpectedVersion.noStream)
        assert.strictEqual(error.actual, 2)
        yield* assertVersion(streamId, 2)
      })
    )

    it.effect("streamExists on a missing stream fails with actual 0 and creates nothing", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const streamId = uniqueStream()
        const error = yield* expectFailure(
          store.append(streamId, [event()], { expectedVersion: ExpectedVersion.streamExists }),
          "WrongExpectedVersion"
        )
        assert.strictEqual(error.streamId, streamId)
        assert.deepStrictEqual(error.expected, ExpectedVersion.streamExists)
        assert.strictEqual(error.actual, 0)
        yield* assertNoStream(streamId)
      })
    )

    it.effect("streamExists appends to an existing stream", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const streamId = uniqueStream()
        yield* store.append(streamId, [event()])
        const result = yield* store.append(streamId, events(2), { expectedVersion: ExpectedVersion.streamExists })
        assert.strictEqual(result.nextExpectedVersion, 3)
        yield* assertVersion(streamId, 3)
      })
    )

    it.effect("exact(n) appends when the stream is at version n", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const streamId = uniqueStream()
        yield* store.append(streamId, events(3))
        const result = yield* store.append(streamId, [event()], { expectedVersion: ExpectedVersion.exact(3) })
        assert.strictEqual(result.nextExpectedVersion, 4)
        const next = yield* store.append(streamId, [event()], { expectedVersion: ExpectedVersion.exact(4) })
        assert.strictEqual(next.nextExpectedVersion, 5)
        yield* assertVersion(streamId, 5)
      })
    )

    it.effect("exact(0) appends to a missing stream and fails on an existing one", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const streamId = uniqueStream()
        const result = yield* store.append(streamId, [event()], { expectedVersion: ExpectedVersion.exact(0) })
        assert.strictEqual(result.nextExpectedVersion, 1)
        const error = yield* expectFailure(
          store.append(streamId, [event()], { expectedVersion: ExpectedVersion.exact(0) }),
          "WrongExpectedVersion"
        )
        assert.strictEqual(error.actual, 1)
        assert.deepStrictEqual(error.expected, ExpectedVersion.exact(0))
        yield* assertVersion(streamId, 1)
      })
    )

    it.effect("exact(n) with a stale or a future version fails with the real version and writes nothing", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const streamId = uniqueStream()
        yield* store.append(streamId, events(3))
        for (const expected of [1, 2, 4, 10]) {
          const error = yield* expectFailure(
            store.append(streamId, events(2), { expectedVersion: ExpectedVersion.exact(expected) }),
            "WrongExpectedVersion"
          )
          assert.strictEqual(error.streamId, streamId)
          assert.deepStrictEqual(error.expected, ExpectedVersion.exact(expected))
          assert.strictEqual(error.actual, 3)
        }
        yield* assertVersion(streamId, 3)
      })
    )

    it.effect("exact(n > 0) on a missing stream fails with actual 0 and creates nothing", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const streamId = uniqueStream()
        const error = yield* expectFailure(
          store.append(streamId, [event()], { expectedVersion: ExpectedVersion.exact(1) }),
          "WrongExpectedVersion"
        )
        assert.strictEqual(error.actual, 0)
        yield* assertNoStream(streamId)
      })
    )

    it.effect("any, the default, appends to missing and existing streams", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const streamId = uniqueStream()
        const first = yield* store.append(streamId, [event()], { expectedVersion: ExpectedVersion.any })
        const second = yield* store.append(streamId, events(2))
        const third = yield* store.append(streamId, [event()], { expectedVersion: ExpectedVersion.any })
        assert.deepStrictEqual(
          [first.nextExpectedVersion, second.nextExpectedVersion, third.nextExpectedVersion],
          [1, 3, 4]
        )
        yield* assertVersion(streamId, 4)
      })
    )

    it.effect("an empty append to a missing stream returns version 0 and creates nothing", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const streamId = uniqueStream()
        for (const expectedVersion of [ExpectedVersion.any, ExpectedVersion.noStream, ExpectedVersion.exact(0)]) {
          const result = yield* store.append(streamId, [], { expectedVersion })
          assert.strictEqual(result.streamId, streamId)
          assert.strictEqual(result.nextExpectedVersion, 0)
          assert.deepStrictEqual(result.positions, [])
        }
        yield* assertNoStream(streamId)
      })
    )

    it.effect("an empty append still checks the expected version and returns the current version", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const streamId = uniqueStream()
        const missing = uniqueStream()
        const written = yield* store.append(streamId, events(2))
        const exact = yield* store.append(streamId, [], { expectedVersion: ExpectedVersion.exact(2) })
        assert.strictEqual(exact.nextExpectedVersion, 2)
        assert.deepStrictEqual(exact.positions, [])
        const exists = yield* store.append(streamId, [], { expectedVersion: ExpectedVersion.streamExists })
        assert.strictEqual(exists.nextExpectedVersion, 2)
        const stale = yield* expectFailure(
          store.append(streamId, [], { expectedVersion: ExpectedVersion.exact(1) }),
          "WrongExpectedVersion"
        )
        assert.strictEqual(stale.actual, 2)
        const noStream = yield* expectFailure(
          store.append(streamId, [], { expectedVersion: ExpectedVersion.noStream }),
          "WrongExpectedVersion"
        )
        assert.strictEqual(noStream.actual, 2)
        const notThere = yield* expectFailure(
          store.append(missing, [], { expectedVersion: ExpectedVersion.streamExists }),
          "WrongExpectedVersion"
        )
        assert.strictEqual(notThere.actual, 0)
        yield* assertVersion(streamId, 2)
        yield* assertNoStream(missing)
        const info = yield* store.streamInfo(streamId)
        assert.isTrue(Option.isSome(info))
        const read = yield* readStream(streamId)
        assert.isTrue(Position.equals(read[1]!.position, written.positions[1]!))
      })
    )

    it.effect("merges the append's metadata with each event's own, the event's fields and attributes winning", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const streamId = uniqueStream()
        const plain = event("Plain")
        const own = event("Own", { n: 2 }, { actor: "bob", traceId: "t-2", attributes: { x: 2, y: [1, "two"] } })
        yield* store.append(streamId, [plain, own], {
          metadata: { correlationId: "c-1", actor: "ann", attributes: { tenant: "acme", x: 1 } }
        })
        const bare = uniqueStream()
        yield* store.append(bare, [event("Bare")])
        const read = yield* readStream(streamId)
        assert.deepStrictEqual(read[0]!.metadata, {
          correlationId: "c-1",
          actor: "ann",
          attributes: { tenant: "acme", x: 1 }
        })
        assert.deepStrictEqual(read[1]!.metadata, {
          correlationId: "c-1",
          actor: "bob",
          traceId: "t-2",
          attributes: { tenant: "acme", x: 2, y: [1, "two"] }
        })
        const [bareRead] = yield* readStream(bare)
        assert.deepStrictEqual(bareRead!.metadata, {})
      })
    )

    it.effect("an event metadata field left undefined does not erase the append's value", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const streamId = uniqueStream()
        // what JavaScript callers (or code without exactOptionalPropertyTypes) can send
        const unset = { actor: undefined, attributes: undefined } as unknown as Event.EventMetadata
        yield* store.append(streamId, [event("Unset", { n: 1 }, unset)], {
          metadata: { actor: "ann", attributes: { tenant: "acme" } }
        })
        const [read] = yield* readStream(streamId)
        assert.deepStrictEqual(read!.metadata, { actor: "ann", attributes: { tenant: "acme" } })
      })
    )
  })
}
