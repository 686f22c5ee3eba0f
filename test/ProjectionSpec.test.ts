import { assert, describe, it } from "@effect/vitest"
import { CheckpointStore, EventCodec, EventStore, Projection } from "@facta/core"
import { ProjectionSpec } from "@facta/testing"
import { Cause, Context, Effect, Exit, Layer, Option, Ref, Schedule, Schema } from "effect"

// A small balances projection: its read model is a service, so each test gets a fresh one with fresh stores.
const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Int })
const Withdrawn = Schema.TaggedStruct("Withdrawn", { amount: Schema.Int })
const AccountEvent = Schema.Union([Deposited, Withdrawn])

class BalanceModel extends Context.Service<BalanceModel, Ref.Ref<ReadonlyMap<string, number>>>()("test/Balances") {
  static readonly layer = Layer.effect(BalanceModel, Ref.make<ReadonlyMap<string, number>>(new Map()))
}

const balances = BalanceModel.use((ref) => Effect.map(Ref.get(ref), Object.fromEntries))
const balance = (account: string) =>
  BalanceModel.use((ref) => Effect.map(Ref.get(ref), (map) => Option.fromUndefinedOr(map.get(account))))

const Balances = Projection.make({
  name: "balances",
  events: EventCodec.make(AccountEvent),
  retry: Schedule.recurs(0),
  handle: (event) =>
    BalanceModel.use((ref) =>
      Effect.flatMap(Ref.get(ref), (map) => {
        // a rule that depends on the event alone: a failed batch may have applied some of its events already
        if (event.data.amount <= 0) return Effect.fail(new Error(`amounts must be positive, got ${event.data.amount}`))
        const current = map.get(event.streamId) ?? 0
        const next = event.data._tag === "Deposited" ? current + event.data.amount : current - event.data.amount
        return Ref.set(ref, new Map(map).set(event.streamId, next))
      })
    ),
  reset: BalanceModel.use((ref) => Ref.set(ref, new Map()))
})

const Live = Layer.mergeAll(EventStore.layerMemory, CheckpointStore.layerMemory, BalanceModel.layer)
const fresh = <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.provide(self, Live, { local: true })

describe("ProjectionSpec on a balances projection", () => {
  it.effect("given events per stream, the read model holds their fold", () =>
    ProjectionSpec.given(Balances, [
      ["Account-1", [Deposited.make({ amount: 10 }), Withdrawn.make({ amount: 4 })]],
      ["Account-2", [Deposited.make({ amount: 7 })]]
    ])
      .expect(balances, { "Account-1": 6, "Account-2": 7 })
      .pipe(fresh)
  )

  it.effect("when more events arrive, the projection resumes from its checkpoint", () =>
    ProjectionSpec.given(Balances, [["Account-1", [Deposited.make({ amount: 10 })]]])
      .when([["Account-1", [Withdrawn.make({ amount: 3 })]]])
      .when([["Account-2", [Deposited.make({ amount: 1 })]]])
      .expect(balances, { "Account-1": 7, "Account-2": 1 })
      .pipe(fresh)
  )

  it.effect("expectThat hands the read model to a check of your own", () =>
    ProjectionSpec.given(Balances, [["Account-1", [Deposited.make({ amount: 5 })]]])
      .expectThat(balance("Account-1"), (found) => assert.deepStrictEqual(found, Option.some(5)))
      .pipe(fresh)
  )

  it.effect("expectFailure checks that the projection stops on an event", () =>
    ProjectionSpec.given(Balances, [
      ["Account-1", [Deposited.make({ amount: 5 }), Withdrawn.make({ amount: 0 }), Deposited.make({ amount: 1 })]]
    ])
      .expectFailure({ streamId: "Account-1", streamVersion: 2 })
      .pipe(fresh)
  )

  it.effect("make binds the projection and its run options", () =>
    Effect.gen(function* () {
      const spec = ProjectionSpec.make(Balances, { partitions: 3, batchSize: 2 })
      const scenario = spec.given([
        ["Account-1", [Deposited.make({ amount: 1 }), Deposited.make({ amount: 2 })]],
        ["Account-2", [Deposited.make({ amount: 3 })]],
        ["Account-3", [Deposited.make({ amount: 4 }), Withdrawn.make({ amount: 4 })]]
      ])
      assert.deepStrictEqual(
        scenario.steps.map((step) => step.map(([streamId]) => streamId)),
        [["Account-1", "Account-2", "Account-3"]]
      )
      yield* scenario.expect(balances, { "Account-1": 3, "Account-2": 3, "Account-3": 0 })
      const rows = yield* CheckpointStore.CheckpointStore.use((store) => store.status("balances"))
      assert.strictEqual(rows.length, 3, "one checkpoint per partition")
    }).pipe(fresh)
  )

  it.effect("a mismatch dies with an AssertionError naming the projection and the events", () =>
    Effect.gen(function* () {
      const exit = yield* Effect.exit(
        ProjectionSpec.given(Balances, [["Account-1", [Deposited.make({ amount: 2 })]]]).expect(balances, {
          "Account-1": 3
        })
      )
      assert.isTrue(Exit.isFailure(exit))
      if (Exit.isSuccess(exit)) return
      const defect = Cause.squash(exit.cause)
      assert.instanceOf(defect, Error)
      assert.include((defect as Error).message, "ProjectionSpec: projection balances v1")
      assert.include((defect as Error).message, "Account-1")
      assert.include((defect as Error).message, "the read model differs")
    }).pipe(fresh)
  )

  it.effect("a projection failure fails expect with the event it stopped on", () =>
    Effect.gen(function* () {
      const exit = yield* Effect.exit(
        ProjectionSpec.given(Balances, [["Account-1", [Withdrawn.make({ amount: -1 })]]]).expect(balances, {})
      )
      assert.isTrue(Exit.isFailure(exit))
      if (Exit.isSuccess(exit)) return
      assert.include((Cause.squash(exit.cause) as Error).message, "the projection failed")
      assert.include((Cause.squash(exit.cause) as Error).message, "amounts must be positive")
    }).pipe(fresh)
  )
})
