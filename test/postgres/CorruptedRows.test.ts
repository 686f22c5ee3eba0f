import { assert, layer } from "@effect/vitest"
import { Aggregate, CheckpointStore, CommandHandler, Decider, EventStore, Projection } from "@facta/core"
import { Cause, Effect, Exit, Option, Result, Stream } from "effect"
import { SqlClient } from "effect/sql"
import * as Database from "../support/database.ts"
import { Counted, codec, compareWithLog, countingProjection, createReadModel } from "../support/projection.ts"

// Rows changed by hand (a timestamp no append writes, a version removed from a stream) are typed errors for every
// reader, never a crash; a projection stops on such a row naming it, or parks it and goes on; a run until caught up
// ends.

const schema = Database.uniqueSchema("corrupted")
const Live = Database.projectionStoresIn(schema)

const appendCounted = (streamId: string, count: number) =>
  EventStore.appendEvents(
    codec,
    streamId,
    Array.from({ length: count }, (_, n) => Counted.make({ n: n + 1 }))
  )

const Tally = Aggregate.make({
  category: "Holes",
  events: Counted,
  decider: Decider.make({
    initialState: 0,
    decide: (_: never, _state: number) => Effect.succeed([]),
    evolve: (total: number, event: typeof Counted.Type) => total + event.n
  })
})

/** A failure's typed error, asserting that the cause holds no defect. */
const typedError = <A, E>(exit: Exit.Exit<A, E>) => {
  assert.isTrue(Exit.isFailure(exit), "it fails")
  if (Exit.isSuccess(exit)) return undefined
  assert.isFalse(Cause.hasDies(exit.cause), `no defect: ${Cause.pretty(exit.cause)}`)
  return Option.getOrUndefined(Exit.findErrorOption(exit))
}

layer(Live, { timeout: 60_000, excludeTestServices: true })("Corrupted rows on PostgreSQL", (it) => {
  it.effect("an infinite recorded_at is a CorruptedEvent for readers; a projection parks it or stops on it", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const store = yield* EventStore.EventStore
      yield* appendCounted("Infinite-1", 3)
      yield* appendCounted("Infinite-2", 2)
      const [bad] = yield* sql<{ event_id: string }>`UPDATE ${sql(schema)}.events SET recorded_at = 'infinity'
        WHERE stream_id = 'Infinite-1' AND version = 2 RETURNING event_id::text AS event_id`

      const read = typedError(yield* Effect.exit(Stream.runCollect(store.read("Infinite-1"))))
      assert.strictEqual(read?._tag, "CorruptedEvent")

      const before: Array<number> = []
      const all = typedError(
        yield* Effect.exit(
          Stream.runForEach(store.readAll({ categories: ["Infinite"] }), (event) =>
            Effect.sync(() => before.push(event.version))
          )
        )
      )
      assert.strictEqual(all?._tag, "CorruptedEvent")
      assert.deepStrictEqual(before, [1], "the events before it are delivered first")

      // park: the rest is handled, the unreadable event is parked under its id
      const parkModel = { schema, prefix: "infinite_park" }
      yield* createReadModel(parkModel)
      yield* Projection.run(
        countingProjection({ model: parkModel, name: "infinite-park", category: "Infinite", onFailure: "park" }),
        { untilCaughtUp: true }
      ).pipe(Effect.timeout("20 seconds"))
      const parked = yield* CheckpointStore.CheckpointStore.use((checkpoints) => checkpoints.parked("infinite-park"))
      assert.deepStrictEqual(
        parked.map((p) => p.event.eventId),
        [bad!.event_id]
      )
      assert.include(parked[0]!.error, "recorded_at")
      const diff = yield* compareWithLog(parkModel, "Infinite").pipe(
        Effect.catchTag("CorruptedEvent", () => Effect.succeed(undefined))
      )
      assert.isUndefined(diff, "the log itself still holds the unreadable row")
      const { seen } = yield* Effect.map(
        sql<{ n: bigint }>`SELECT count(*) AS n FROM ${sql(schema)}.infinite_park_seen`,
        ([row]) => ({ seen: Number(row!.n) })
      )
      assert.strictEqual(seen, 4, "every readable event handled once")

      // stop: the run fails naming the event
      const stopModel = { schema, prefix: "infinite_stop" }
      yield* createReadModel(stopModel)
      const stopped = typedError(
        yield* Effect.exit(
          Projection.run(
            countingProjection({ model: stopModel, name: "infinite-stop", category: "Infinite", onFailure: "stop" }),
            { untilCaughtUp: true }
          ).pipe(Effect.timeout("20 seconds"))
        )
      )
      assert.strictEqual(stopped?._tag, "ProjectionFailed")
      assert.strictEqual(stopped?._tag === "ProjectionFailed" ? stopped.eventId : undefined, bad!.event_id)
    })
  )

  it.effect("a version removed from a stream is a CorruptedEvent for reads and loads, never a repeat", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const store = yield* EventStore.EventStore
      yield* appendCounted("Holes-1", 3)
      yield* appendCounted("Holes-2", 3)
      yield* sql`DELETE FROM ${sql(schema)}.events WHERE stream_id = 'Holes-1' AND version = 2`
      yield* sql`DELETE FROM ${sql(schema)}.events WHERE stream_id = 'Holes-2' AND version = 3`

      for (const batchSize of [1, 2, 1000]) {
        const versions: Array<number> = []
        const exit = yield* Effect.exit(
          Stream.runForEach(store.read("Holes-1", { batchSize }), (event) =>
            Effect.sync(() => versions.push(event.version))
          )
        )
        const error = typedError(exit)
        assert.strictEqual(error?._tag, "CorruptedEvent", `batchSize ${batchSize}`)
        assert.strictEqual(error?._tag === "CorruptedEvent" ? error.version : undefined, 2)
        assert.deepStrictEqual(versions, batchSize === 1 ? [1] : [], `no version twice (batchSize ${batchSize})`)
      }
      const backward = typedError(
        yield* Effect.exit(Stream.runCollect(store.read("Holes-1", { direction: "backward", batchSize: 1 })))
      )
      assert.strictEqual(backward?._tag, "CorruptedEvent")

      const trailing = typedError(yield* Effect.exit(Stream.runCollect(store.read("Holes-2", { batchSize: 1 }))))
      assert.strictEqual(trailing?._tag, "CorruptedEvent", "a missing last version, not a deleted stream")

      for (const streamId of ["Holes-1", "Holes-2"]) {
        const loaded = typedError(yield* Effect.exit(CommandHandler.load(Tally, streamId)))
        assert.strictEqual(loaded?._tag, "CorruptedEvent", `${streamId} does not load as a deleted stream`)
      }

      // a fold pages by version range and counts rows: the hole is named whether its page is the first, a full one
      // or the last, and nothing after it is folded
      yield* appendCounted("Holes-3", 7)
      yield* sql`DELETE FROM ${sql(schema)}.events WHERE stream_id = 'Holes-3' AND version = 5`
      for (const [streamId, batchSize, missing] of [
        ["Holes-1", 1, 2],
        ["Holes-1", 1000, 2],
        ["Holes-2", 2, 3],
        ["Holes-3", 2, 5],
        ["Holes-3", 3, 5],
        ["Holes-3", 1000, 5]
      ] as const) {
        const folded: Array<number> = []
        const error = typedError(
          yield* Effect.exit(
            store.fold(
              streamId,
              0,
              (n, event) => {
                folded.push(event.version)
                return Result.succeed(n + 1)
              },
              { batchSize }
            )
          )
        )
        assert.strictEqual(error?._tag, "CorruptedEvent", `${streamId} folded in pages of ${batchSize}`)
        assert.strictEqual(error?._tag === "CorruptedEvent" ? error.version : undefined, missing)
        assert.isTrue(
          folded.every((version) => version < missing),
          `nothing at or after the hole is folded (${streamId}, pages of ${batchSize})`
        )
      }
    })
  )
})
