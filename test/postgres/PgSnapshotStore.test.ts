import { assert, layer } from "@effect/vitest"
import { Aggregate, CommandHandler, Decider, EventStore, Snapshot } from "@facta/core"
import { PgSnapshotStore } from "@facta/postgres"
import { DateTime, Effect, Layer, Option, Schema } from "effect"
import * as Database from "../support/database.ts"

const schema = Database.uniqueSchema("snapshots")
const Live = PgSnapshotStore.layer({ schema }).pipe(Layer.provideMerge(Database.eventStoreIn(schema)))

const Added = Schema.TaggedStruct("Added", { n: Schema.Int })
const Tally = Schema.Struct({ total: Schema.Int, count: Schema.Int })
const Counter = Aggregate.make({
  category: "Counter",
  events: Added,
  decider: Decider.make({
    initialState: { total: 0, count: 0 } as typeof Tally.Type,
    decide: (n: number) => Effect.succeed([Added.make({ n })]),
    evolve: (s: typeof Tally.Type, e: typeof Added.Type) => ({ total: s.total + e.n, count: s.count + 1 })
  }),
  snapshot: { schema: Tally, version: 1, every: 10 }
})

const at = (streamId: string, version: number, stateVersion = 1): Snapshot.Snapshot => ({
  streamId,
  version,
  stateVersion,
  state: { version },
  takenAt: DateTime.makeUnsafe("2026-01-01T00:00:00Z")
})

layer(Live, { excludeTestServices: true })("PgSnapshotStore", (it) => {
  it.effect("keeps the newest snapshot within a state version and takes any other state version", () =>
    Effect.gen(function* () {
      const store = yield* Snapshot.SnapshotStore
      assert.isTrue(Option.isNone(yield* store.load("Counter-a")))
      yield* store.save(at("Counter-a", 10))
      yield* store.save(at("Counter-a", 5))
      const kept = Option.getOrThrow(yield* store.load("Counter-a"))
      assert.deepStrictEqual([kept.version, kept.stateVersion, kept.state], [10, 1, { version: 10 }])
      assert.strictEqual(DateTime.formatIso(kept.takenAt), "2026-01-01T00:00:00.000Z")
      yield* store.save(at("Counter-a", 3, 2))
      assert.deepStrictEqual(Option.getOrThrow(yield* store.load("Counter-a")).stateVersion, 2)
    })
  )

  it.effect("command handling saves snapshots in PostgreSQL and loads fold only what follows them", () =>
    Effect.gen(function* () {
      for (let i = 1; i <= 25; i++) yield* CommandHandler.handle(Counter, "Counter-b", i)
      const snapshot = Option.getOrThrow(yield* Snapshot.SnapshotStore.use((s) => s.load("Counter-b")))
      assert.strictEqual(snapshot.version, 20)
      const loaded = yield* CommandHandler.load(Counter, "Counter-b")
      assert.deepStrictEqual(loaded, { state: { total: 325, count: 25 }, version: 25, folded: 5 })
    })
  )

  it.effect("deleting a stream deletes its snapshot, and no snapshot is saved for a tombstone", () =>
    Effect.gen(function* () {
      for (let i = 1; i <= 10; i++) yield* CommandHandler.handle(Counter, "Counter-c", i)
      const snapshots = yield* Snapshot.SnapshotStore
      assert.isTrue(Option.isSome(yield* snapshots.load("Counter-c")))
      yield* EventStore.EventStore.use((store) => store.delete("Counter-c"))
      assert.isTrue(Option.isNone(yield* snapshots.load("Counter-c")), "deleted with the stream")
      yield* snapshots.save(at("Counter-c", 10))
      assert.isTrue(Option.isNone(yield* snapshots.load("Counter-c")), "never saved for a tombstone")
      const refused = yield* Effect.flip(CommandHandler.handle(Counter, "Counter-c", 1))
      assert.strictEqual(refused._tag, "StreamDeleted")
    })
  )
})
