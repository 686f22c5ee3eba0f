import { assert, describe } from "@effect/vitest"
import { EventStore } from "@facta/core"
import { Cause, Effect, Exit, Option, Result } from "effect"
import type { ConformanceOptions, It } from "./conformanceHelpers.ts"
import { event, events, expectFailure, readStream, uniqueStream } from "./conformanceHelpers.ts"

/** Every event a fold hands to its step, in order. */
const collect = (streamId: string, options?: EventStore.FoldOptions) =>
  EventStore.EventStore.use((store) =>
    store.fold(streamId, [] as ReadonlyArray<EventStore.FoldEvent>, (seen, e) => Result.succeed([...seen, e]), options)
  )

/** What `read` returns, cut down to what a fold sees. */
const readAsFold = (streamId: string, options?: EventStore.ReadOptions) =>
  Effect.map(readStream(streamId, options), (read) =>
    read.map((e) => ({ version: e.version, type: e.type, schemaVersion: e.schemaVersion, data: e.data }))
  )

/** Folding one stream: the fast path of aggregate loads, held to the laws of `read`. */
export const register = (it: It, options: ConformanceOptions): void => {
  describe("fold", () => {
    it.effect("folds the same events as read, in version order, over any range and page size", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const streamId = uniqueStream()
        yield* store.append(streamId, [
          event("Opened", { owner: "ann", tags: ["a", "b"] }),
          { ...event("Renamed", { name: "bob" }), schemaVersion: 3 },
          ...events(5, "Deposited"),
          event("Closed", {})
        ])
        const ranges: ReadonlyArray<EventStore.FoldOptions> = [
          {},
          { from: 1, to: 8 },
          { from: 2, to: 4 },
          { from: 3 },
          { to: 2 },
          { from: 8, to: 8 },
          { from: 6, to: 99 },
          { from: 0 },
          { from: 9 },
          { from: 5, to: 4 }
        ]
        for (const range of ranges) {
          const expected = yield* readAsFold(streamId, range)
          for (const batchSize of [undefined, 1, 3, 100]) {
            const folded = yield* collect(streamId, { ...range, batchSize })
            assert.deepStrictEqual(folded, expected, `fold ${JSON.stringify({ ...range, batchSize })}`)
          }
        }
      })
    )

    it.effect("gives the initial state for a range past the end", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const streamId = uniqueStream()
        yield* store.append(streamId, events(3))
        const initial = { untouched: true }
        const folded = yield* store.fold(streamId, initial, () => Result.fail("stepped" as const), { from: 4 })
        assert.strictEqual(folded, initial)
      })
    )

    it.effect("ends with the failure step returns, and steps no further", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const streamId = uniqueStream()
        yield* store.append(streamId, events(6))
        const stepped: Array<number> = []
        const exit = yield* Effect.exit(
          store.fold(
            streamId,
            0,
            (sum, e) => {
              stepped.push(e.version)
              return e.version === 3 ? Result.fail({ _tag: "Stop", at: e.version } as const) : Result.succeed(sum + 1)
            },
            { batchSize: 2 }
          )
        )
        assert.deepStrictEqual(exit, Exit.fail({ _tag: "Stop", at: 3 } as const))
        assert.deepStrictEqual(stepped, [1, 2, 3])
      })
    )

    it.effect("refuses as read does: unknown, invalid, archived (unless asked) and deleted streams", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const count = (streamId: string, options?: EventStore.FoldOptions) =>
          store.fold(streamId, 0, (n) => Result.succeed(n + 1), options)

        const missing = uniqueStream()
        assert.strictEqual((yield* expectFailure(count(missing), "StreamNotFound")).streamId, missing)
        yield* expectFailure(count("no category separator"), "InvalidStreamId")

        const archived = uniqueStream()
        yield* store.append(archived, events(4))
        yield* store.archive(archived)
        const refused = yield* expectFailure(count(archived), "StreamArchived")
        assert.strictEqual(refused.version, 4)
        assert.strictEqual(yield* count(archived, { includeArchived: true }), 4)

        const deleted = uniqueStream()
        yield* store.append(deleted, events(2))
        yield* store.delete(deleted)
        assert.strictEqual((yield* expectFailure(count(deleted), "StreamDeleted")).version, 2)
        yield* expectFailure(count(deleted, { includeArchived: true }), "StreamDeleted")
      })
    )

    it.effect("a stream deleted while it is folded fails the fold, never gives part of it", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        for (let round = 0; round < options.raceFibers; round++) {
          const streamId = uniqueStream()
          yield* store.append(streamId, events(40))
          const [folded] = yield* Effect.all(
            [
              Effect.exit(store.fold(streamId, 0, (n) => Result.succeed(n + 1), { batchSize: 1 })),
              Effect.andThen(Effect.yieldNow, store.delete(streamId))
            ],
            { concurrency: 2 }
          )
          if (Exit.isSuccess(folded)) assert.strictEqual(folded.value, 40, "a fold that succeeds saw every event")
          else {
            const error = Cause.findErrorOption(folded.cause)
            assert.strictEqual(Option.getOrUndefined(error)?._tag, "StreamDeleted", Cause.pretty(folded.cause))
          }
        }
      })
    )
  })
}
