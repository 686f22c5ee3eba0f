import { assert, describe } from "@effect/vitest"
import type { Event } from "@facta/core"
import { EventStore, ExpectedVersion } from "@facta/core"
import { Effect, Option, Result, Stream } from "effect"
import type { ConformanceOptions, It } from "./conformanceHelpers.ts"
import {
  assertSamePositions,
  event,
  events,
  expectFailure,
  expectStreamFailure,
  idsOf,
  readCategories,
  readStream,
  uniqueCategory,
  uniqueStream
} from "./conformanceHelpers.ts"

/** Every way of asking to append, each of which a closed stream must refuse. */
const everyExpectation = (version: number): ReadonlyArray<ExpectedVersion.ExpectedVersion> => [
  ExpectedVersion.any,
  ExpectedVersion.noStream,
  ExpectedVersion.streamExists,
  ExpectedVersion.exact(version),
  ExpectedVersion.exact(version + 1)
]

/** A stream of three events; returns its id, the events and the append's result. */
const threeEvents = Effect.gen(function* () {
  const store = yield* EventStore.EventStore
  const streamId = uniqueStream()
  const appended = events(3)
  const result = yield* store.append(streamId, appended)
  return { streamId, appended, result }
})

const info = (streamId: string) =>
  Effect.map(
    EventStore.EventStore.use((store) => store.streamInfo(streamId)),
    (found) => Option.getOrElse(found, () => assert.fail(`stream ${streamId} should have info`))
  )

/** Archiving and deleting streams. */
export const register = (it: It, options: ConformanceOptions): void => {
  describe("archive", () => {
    it.effect("hides the stream from read, shows it with includeArchived, and keeps its version", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const { appended, result, streamId } = yield* threeEvents
        yield* store.archive(streamId)
        const refused = yield* expectStreamFailure(store.read(streamId), "StreamArchived")
        assert.strictEqual(refused.streamId, streamId)
        assert.strictEqual(refused.version, 3)
        const audit = yield* readStream(streamId, { includeArchived: true })
        assert.deepStrictEqual(idsOf(audit), idsOf(appended))
        assertSamePositions(
          audit.map((e) => e.position),
          result.positions
        )
        const backward = yield* readStream(streamId, { includeArchived: true, direction: "backward", limit: 1 })
        assert.deepStrictEqual(
          backward.map((e) => e.version),
          [3]
        )
        const archived = yield* info(streamId)
        assert.strictEqual(archived.version, 3)
        assert.isTrue(Option.isSome(archived.archivedAt), "archivedAt is set")
        assert.isTrue(Option.isNone(archived.deletedAt), "not deleted")
      })
    )

    it.effect("refuses every append to an archived stream with StreamArchived and writes nothing", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const { appended, streamId } = yield* threeEvents
        yield* store.archive(streamId)
        for (const expectedVersion of everyExpectation(3)) {
          const refused = yield* expectFailure(store.append(streamId, [event()], { expectedVersion }), "StreamArchived")
          assert.strictEqual(refused.version, 3, ExpectedVersion.format(expectedVersion))
        }
        yield* expectFailure(store.append(streamId, []), "StreamArchived")
        yield* expectFailure(
          store.appendMany([
            { streamId: uniqueStream(), events: [event()] },
            { streamId, events: [event()] }
          ]),
          "StreamArchived"
        )
        assert.deepStrictEqual(idsOf(yield* readStream(streamId, { includeArchived: true })), idsOf(appended))
        assert.strictEqual((yield* info(streamId)).version, 3)
      })
    )

    it.effect("still answers a retry of an append that landed before it with the original result", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const { appended, result, streamId } = yield* threeEvents
        yield* store.archive(streamId)
        const retried = yield* store.append(streamId, appended, { expectedVersion: ExpectedVersion.noStream })
        assert.strictEqual(retried.nextExpectedVersion, 3)
        assertSamePositions(retried.positions, result.positions)
      })
    )

    it.effect("keeps the stream's events in the global log: history is not rewritten", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const category = uniqueCategory()
        const kept = events(2)
        yield* store.append(`${category}-1`, kept)
        yield* store.archive(`${category}-1`)
        assert.deepStrictEqual(idsOf(yield* readCategories([category])), idsOf(kept))
      })
    )

    it.effect("again does nothing, and checks the expected version first", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const { streamId } = yield* threeEvents
        const wrong = yield* expectFailure(
          store.archive(streamId, { expectedVersion: ExpectedVersion.exact(2) }),
          "WrongExpectedVersion"
        )
        assert.strictEqual(wrong.actual, 3)
        assert.isTrue(Option.isNone((yield* info(streamId)).archivedAt), "a refused archive archives nothing")
        yield* store.archive(streamId, { expectedVersion: ExpectedVersion.exact(3) })
        const first = yield* info(streamId)
        yield* store.archive(streamId)
        yield* store.archive(streamId, { expectedVersion: ExpectedVersion.streamExists })
        assert.deepStrictEqual((yield* info(streamId)).archivedAt, first.archivedAt, "archived once")
      })
    )
  })

  describe("delete", () => {
    it.effect("removes the stream's events from every read and leaves a tombstone with its version", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const category = uniqueCategory()
        const streamId = `${category}-1`
        const neighbour = events(2)
        yield* store.append(streamId, events(3))
        yield* store.append(`${category}-2`, neighbour)
        yield* store.delete(streamId)
        const refused = yield* expectStreamFailure(store.read(streamId), "StreamDeleted")
        assert.strictEqual(refused.version, 3)
        yield* expectStreamFailure(store.read(streamId, { includeArchived: true }), "StreamDeleted")
        assert.deepStrictEqual(idsOf(yield* readCategories([category])), idsOf(neighbour), "only the neighbour is left")
        const tombstone = yield* info(streamId)
        assert.strictEqual(tombstone.version, 3)
        assert.isTrue(Option.isSome(tombstone.deletedAt), "deletedAt is set")
      })
    )

    it.effect("refuses every later append with StreamDeleted, a replay of its old events included", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const { appended, streamId } = yield* threeEvents
        yield* store.delete(streamId)
        for (const expectedVersion of [...everyExpectation(3), ExpectedVersion.exact(0)]) {
          const refused = yield* expectFailure(store.append(streamId, [event()], { expectedVersion }), "StreamDeleted")
          assert.strictEqual(refused.version, 3, ExpectedVersion.format(expectedVersion))
        }
        yield* expectFailure(
          store.append(streamId, appended, { expectedVersion: ExpectedVersion.noStream }),
          "StreamDeleted"
        )
        yield* expectFailure(store.append(streamId, []), "StreamDeleted")
        assert.strictEqual((yield* info(streamId)).version, 3, "the tombstone did not move")
      })
    )

    it.effect("again does nothing; it checks the expected version, and takes archived streams too", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const { streamId } = yield* threeEvents
        const wrong = yield* expectFailure(
          store.delete(streamId, { expectedVersion: ExpectedVersion.exact(4) }),
          "WrongExpectedVersion"
        )
        assert.strictEqual(wrong.actual, 3)
        assert.strictEqual((yield* readStream(streamId)).length, 3, "a refused delete deletes nothing")
        yield* store.archive(streamId)
        yield* store.delete(streamId, { expectedVersion: ExpectedVersion.exact(3) })
        const first = yield* info(streamId)
        yield* store.delete(streamId)
        assert.deepStrictEqual((yield* info(streamId)).deletedAt, first.deletedAt, "deleted once")
        const archiveRefused = yield* expectFailure(store.archive(streamId), "StreamDeleted")
        assert.strictEqual(archiveRefused.version, 3)
      })
    )

    it.effect("while the global log is being read does not make the reader skip other streams' events", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const category = uniqueCategory()
        const first = events(3)
        const rest = events(4)
        yield* store.append(`${category}-a`, first)
        yield* store.append(`${category}-b`, rest.slice(0, 2))
        yield* store.append(`${category}-c`, rest.slice(2))
        // the reader deletes the stream it has just read, between two pages
        const seen = yield* store.readAll({ categories: [category], batchSize: 1 }).pipe(
          Stream.tap((e) => (e.eventId === first[2]!.eventId ? store.delete(`${category}-a`) : Effect.void)),
          Stream.runCollect
        )
        assert.deepStrictEqual(idsOf(seen), [...idsOf(first), ...idsOf(rest)])
      })
    )
  })

  describe("lifecycle of streams that do not exist", () => {
    it.effect("archive and delete fail with StreamNotFound and create nothing", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const streamId = uniqueStream()
        const archive = yield* expectFailure(store.archive(streamId), "StreamNotFound")
        assert.strictEqual(archive.streamId, streamId)
        yield* expectFailure(store.delete(streamId, { expectedVersion: ExpectedVersion.noStream }), "StreamNotFound")
        assert.isTrue(Option.isNone(yield* store.streamInfo(streamId)))
        const created = yield* store.append(streamId, [event()], { expectedVersion: ExpectedVersion.noStream })
        assert.strictEqual(created.nextExpectedVersion, 1)
      })
    )
  })

  describe("lifecycle races", () => {
    it.effect(`a delete racing ${options.raceFibers} appenders: every acknowledged event was deleted with it`, () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const category = uniqueCategory()
        const streamId = `${category}-1`
        yield* store.append(streamId, [event()])
        const batches = Array.from({ length: options.raceFibers }, () => events(2))
        const [outcomes] = yield* Effect.all(
          [
            Effect.forEach(batches, (batch) => Effect.result(store.append(streamId, batch)), {
              concurrency: "unbounded"
            }),
            Effect.andThen(Effect.yieldNow, store.delete(streamId))
          ],
          { concurrency: "unbounded" }
        )
        const acknowledged = outcomes.filter(Result.isSuccess).length
        for (const outcome of outcomes) {
          if (Result.isFailure(outcome)) assert.strictEqual(outcome.failure._tag, "StreamDeleted", `${outcome.failure}`)
        }
        assert.strictEqual((yield* info(streamId)).version, 1 + 2 * acknowledged, "the tombstone counts every ack")
        assert.deepStrictEqual(idsOf(yield* readCategories([category])), [], "nothing of the stream is left")
        const late = yield* Effect.result(store.append(streamId, [event()]))
        assert.isTrue(Result.isFailure(late) && late.failure._tag === "StreamDeleted")
      })
    )

    it.effect(`an archive racing ${options.raceFibers} appenders: what was acknowledged is exactly what is kept`, () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const streamId = uniqueStream()
        yield* store.append(streamId, [event()])
        const batches = Array.from({ length: options.raceFibers }, () => events(2))
        const [outcomes] = yield* Effect.all(
          [
            Effect.forEach(batches, (batch) => Effect.result(store.append(streamId, batch)), {
              concurrency: "unbounded"
            }),
            Effect.andThen(Effect.yieldNow, store.archive(streamId))
          ],
          { concurrency: "unbounded" }
        )
        const acked: Array<Event.EventData> = batches.flatMap((batch, i) => {
          const outcome = outcomes[i]!
          if (Result.isFailure(outcome)) {
            assert.strictEqual(outcome.failure._tag, "StreamArchived", `${outcome.failure}`)
            return []
          }
          return batch
        })
        const kept = (yield* readStream(streamId, { includeArchived: true })).slice(1)
        assert.deepStrictEqual([...idsOf(kept)].sort(), [...idsOf(acked)].sort())
        assert.strictEqual((yield* info(streamId)).version, 1 + acked.length)
      })
    )
  })
}
