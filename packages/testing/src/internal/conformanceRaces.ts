import { assert, describe } from "@effect/vitest"
import type { Event } from "@facta/core"
import { EventStore, ExpectedVersion, Position } from "@facta/core"
import { Effect, Fiber, Ref, Result } from "effect"
import type { ConformanceOptions, It } from "./conformanceHelpers.ts"
import {
  assertIncreasing,
  assertSamePositions,
  assertVersion,
  event,
  events,
  idsOf,
  readCategories,
  readStream,
  uniqueCategory,
  uniqueStream
} from "./conformanceHelpers.ts"

const range = (n: number): Array<number> => Array.from({ length: n }, (_, i) => i)

const unbounded = { concurrency: "unbounded" } as const

/** Asserts that a list holds no id twice and exactly the expected ones, in any order. */
const assertSameIds = (actual: ReadonlyArray<string>, expected: ReadonlyArray<string>, what: string): void => {
  assert.strictEqual(new Set(actual).size, actual.length, `${what}: no event twice`)
  assert.deepStrictEqual([...actual].sort(), [...expected].sort(), `${what}: every event once`)
}

/** Concurrent writers (and readers) on the same streams. */
export const register = (it: It, options: ConformanceOptions): void => {
  const fibers = options.raceFibers

  describe("races", () => {
    it.effect(`${fibers} fibers appending at the same exact version: one winner per version`, () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const streamId = uniqueStream()
        const rounds = 3
        const winners: Array<string> = []
        for (let round = 0; round < rounds; round++) {
          const candidates = range(fibers).map(() => event("Raced", { round }))
          const outcomes = yield* Effect.forEach(
            candidates,
            (candidate) =>
              Effect.result(store.append(streamId, [candidate], { expectedVersion: ExpectedVersion.exact(round) })),
            unbounded
          )
          const won = outcomes.flatMap((outcome, i) => (Result.isSuccess(outcome) ? [i] : []))
          assert.strictEqual(won.length, 1, `round ${round}: exactly one winner`)
          const winner = outcomes[won[0]!]!
          if (Result.isSuccess(winner)) assert.strictEqual(winner.success.nextExpectedVersion, round + 1)
          winners.push(candidates[won[0]!]!.eventId)
          for (const outcome of outcomes) {
            if (Result.isSuccess(outcome)) continue
            assert.strictEqual(outcome.failure._tag, "WrongExpectedVersion", `round ${round}: ${outcome.failure}`)
            if (outcome.failure._tag === "WrongExpectedVersion") assert.strictEqual(outcome.failure.actual, round + 1)
          }
        }
        yield* assertVersion(streamId, rounds)
        assert.deepStrictEqual(idsOf(yield* readStream(streamId)), winners)
      })
    )

    it.effect(`${fibers} fibers retrying on conflict each land exactly once, versions contiguous`, () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const streamId = uniqueStream()
        const planned = range(fibers).map((i) => event("Retried", { fiber: i }))
        const conflicts = yield* Ref.make(0)
        const appendWithRetry = Effect.fnUntraced(function* (candidate: Event.EventData) {
          let expected = 0
          for (let attempt = 0; attempt <= fibers + 1; attempt++) {
            const outcome = yield* Effect.result(
              store.append(streamId, [candidate], { expectedVersion: ExpectedVersion.exact(expected) })
            )
            if (Result.isSuccess(outcome)) return outcome.success
            const error = outcome.failure
            if (error._tag !== "WrongExpectedVersion") return assert.fail(`unexpected failure: ${error}`)
            assert.isTrue(error.actual > expected, "a conflict reports a version beyond the expected one")
            yield* Ref.update(conflicts, (n) => n + 1)
            expected = error.actual
          }
          return assert.fail("too many conflicts for one append")
        })
        const results = yield* Effect.forEach(planned, appendWithRetry, unbounded)
        assertSameIds(
          results.map((r) => String(r.nextExpectedVersion)),
          range(fibers).map((i) => String(i + 1)),
          "versions won"
        )
        yield* assertVersion(streamId, fibers)
        assertSameIds(idsOf(yield* readStream(streamId)), idsOf(planned), "stream")
      })
    )

    it.effect(`${fibers} fibers appending with any all succeed, each append whole and contiguous`, () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const streamId = uniqueStream()
        const planned = range(fibers).map((i) => [event("Any", { fiber: i, n: 1 }), event("Any", { fiber: i, n: 2 })])
        const results = yield* Effect.forEach(planned, (batch) => store.append(streamId, batch), unbounded)
        assertSameIds(
          results.map((r) => String(r.nextExpectedVersion)),
          range(fibers).map((i) => String(2 * (i + 1))),
          "versions returned"
        )
        yield* assertVersion(streamId, 2 * fibers)
        const read = yield* readStream(streamId)
        assertSameIds(idsOf(read), idsOf(planned.flat()), "stream")
        for (let i = 0; i < planned.length; i++) {
          const [first, second] = planned[i]!
          const v1 = read.find((e) => e.eventId === first!.eventId)!.version
          const v2 = read.find((e) => e.eventId === second!.eventId)!.version
          assert.strictEqual(v2, v1 + 1, `fiber ${i}: its two events are consecutive`)
          assert.strictEqual(results[i]!.nextExpectedVersion, v2)
          assertSamePositions(
            results[i]!.positions,
            read.filter((e) => e.version === v1 || e.version === v2).map((e) => e.position)
          )
        }
      })
    )

    it.effect("under concurrent appends, a stream's positions still increase with its versions", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const category = uniqueCategory()
        const streamId = `${category}-1`
        yield* Effect.forEach(range(fibers), () => store.append(streamId, events(2)), unbounded)
        const read = yield* readStream(streamId)
        assertIncreasing(
          read.map((e) => e.position),
          "positions in version order"
        )
        const logged = yield* readCategories([category])
        assert.deepStrictEqual(
          logged.map((e) => e.version),
          read.map((e) => e.version),
          "the log holds the stream in version order"
        )
      })
    )

    it.effect(`${fibers} fibers creating the same stream with noStream: exactly one succeeds`, () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const streamId = uniqueStream()
        const candidates = range(fibers).map(() => events(2))
        const outcomes = yield* Effect.forEach(
          candidates,
          (batch) => Effect.result(store.append(streamId, batch, { expectedVersion: ExpectedVersion.noStream })),
          unbounded
        )
        const won = outcomes.flatMap((outcome, i) => (Result.isSuccess(outcome) ? [i] : []))
        assert.strictEqual(won.length, 1, "exactly one creator")
        for (const outcome of outcomes) {
          if (Result.isSuccess(outcome)) continue
          assert.strictEqual(outcome.failure._tag, "WrongExpectedVersion", String(outcome.failure))
          if (outcome.failure._tag === "WrongExpectedVersion") assert.strictEqual(outcome.failure.actual, 2)
        }
        yield* assertVersion(streamId, 2)
        assert.deepStrictEqual(idsOf(yield* readStream(streamId)), idsOf(candidates[won[0]!]!))
      })
    )

    it.effect(`${fibers} concurrent retries of one append all get the same result, stored once`, () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const category = uniqueCategory()
        const streamId = `${category}-1`
        const batch = events(2)
        const results = yield* Effect.forEach(
          range(fibers),
          () => store.append(streamId, batch, { expectedVersion: ExpectedVersion.noStream }),
          unbounded
        )
        for (const result of results) {
          assert.strictEqual(result.streamId, streamId)
          assert.strictEqual(result.nextExpectedVersion, 2)
          assertSamePositions(result.positions, results[0]!.positions)
        }
        yield* assertVersion(streamId, 2)
        assert.deepStrictEqual(idsOf(yield* readCategories([category])), idsOf(batch))
      })
    )

    it.effect(`${fibers} fibers racing appendMany on a contended stream: the losers write nowhere`, () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const category = uniqueCategory()
        const planned = range(fibers).map(() => ({ contended: event(), free: event() }))
        const outcomes = yield* Effect.forEach(
          planned,
          ({ contended, free }) =>
            Effect.result(
              store.appendMany([
                { streamId: `${category}-free`, events: [free] },
                { streamId: `${category}-contended`, events: [contended], expectedVersion: ExpectedVersion.exact(0) }
              ])
            ),
          unbounded
        )
        const won = outcomes.flatMap((outcome, i) => (Result.isSuccess(outcome) ? [i] : []))
        assert.strictEqual(won.length, 1, "exactly one transaction commits")
        for (const outcome of outcomes) {
          if (Result.isFailure(outcome)) assert.strictEqual(outcome.failure._tag, "WrongExpectedVersion")
        }
        const winner = planned[won[0]!]!
        assert.deepStrictEqual(idsOf(yield* readStream(`${category}-free`)), [winner.free.eventId])
        assert.deepStrictEqual(idsOf(yield* readStream(`${category}-contended`)), [winner.contended.eventId])
      })
    )

    it.effect(`${fibers} concurrent appendMany transactions each occupy one unbroken stretch of the log`, () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const category = uniqueCategory()
        const planned = range(fibers).map(() => ({ a: event(), b: event() }))
        yield* Effect.forEach(
          planned,
          ({ a, b }) =>
            store.appendMany([
              { streamId: `${category}-a`, events: [a] },
              { streamId: `${category}-b`, events: [b] }
            ]),
          unbounded
        )
        const logged = yield* readCategories([category])
        assert.strictEqual(logged.length, 2 * fibers)
        assertIncreasing(logged.map((e) => e.position))
        for (let i = 0; i < logged.length; i += 2) {
          const pair = planned.find((p) => p.a.eventId === logged[i]!.eventId)
          assert.isDefined(pair, `log entry ${i} should open a transaction`)
          assert.strictEqual(logged[i + 1]!.eventId, pair!.b.eventId, "a transaction's events are adjacent")
          assert.strictEqual(logged[i]!.version, logged[i + 1]!.version, "both streams advanced together")
        }
        yield* assertVersion(`${category}-a`, fibers)
        yield* assertVersion(`${category}-b`, fibers)
      })
    )

    it.effect("a reader following the log while fibers append sees every event once, in order", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const category = uniqueCategory()
        const perFiber = 3
        const planned = range(fibers).map(() => range(perFiber).map(() => event()))
        const done = yield* Ref.make(false)
        const writers = yield* Effect.forEach(
          planned,
          (batches, i) => Effect.forEach(batches, (e) => store.append(`${category}-${i % 4}`, [e]), { discard: true }),
          { ...unbounded, discard: true }
        ).pipe(Effect.ensuring(Ref.set(done, true)), Effect.forkChild)
        const seen: Array<EventStore.AppendResult["positions"][number]> = []
        const seenIds: Array<string> = []
        let after = Position.start
        let finished = false
        while (!finished) {
          finished = yield* Ref.get(done)
          const batch = yield* readCategories([category], { after, batchSize: 2 })
          for (const e of batch) {
            seen.push(e.position)
            seenIds.push(e.eventId)
          }
          if (batch.length > 0) after = batch[batch.length - 1]!.position
          if (!finished) yield* Effect.sleep("1 millis")
        }
        yield* Fiber.join(writers)
        assertIncreasing(seen, "positions seen by the follower")
        assertSameIds(seenIds, idsOf(planned.flat()), "followed log")
      })
    )
  })

  describe("races with failures", () => {
    it.effect("a failed append racing successful ones leaves no trace", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const category = uniqueCategory()
        const streamId = `${category}-1`
        const good = range(fibers).map(() => event())
        const bad = range(fibers).map(() => [event(), event("Bad", { nul: "\u0000" })])
        const outcomes = yield* Effect.forEach(
          range(fibers),
          (i) =>
            Effect.all(
              [Effect.result(store.append(streamId, [good[i]!])), Effect.result(store.append(streamId, bad[i]!))],
              {
                concurrency: "unbounded"
              }
            ),
          unbounded
        )
        for (const [ok, failed] of outcomes) {
          assert.isTrue(Result.isSuccess(ok))
          assert.isTrue(Result.isFailure(failed) && failed.failure._tag === "InvalidEvent")
        }
        yield* assertVersion(streamId, fibers)
        assertSameIds(idsOf(yield* readCategories([category])), idsOf(good), "log")
      })
    )
  })
}
