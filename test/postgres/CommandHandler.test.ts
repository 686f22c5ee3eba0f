import { assert, layer } from "@effect/vitest"
import { Aggregate, CommandHandler, Decider, Event, EventStore } from "@facta/core"
import { PgSnapshotStore } from "@facta/postgres"
import { Effect, Layer, Option, Schedule, Schema, Stream } from "effect"
import * as Database from "../support/database.ts"

// The bound command handler on PostgreSQL: a reactor's redelivered event appends nothing (the store's idempotency
// by ids wins over the stale expected version), conflicts between real writers resume and all land, and snapshots
// go through PgSnapshotStore.

const schema = Database.uniqueSchema("command_handler")
const Live = PgSnapshotStore.layer({ schema }).pipe(Layer.provideMerge(Database.eventStoreIn(schema)))

const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Int })
const Withdrawn = Schema.TaggedStruct("Withdrawn", { amount: Schema.Int })
type WalletEvent = typeof Deposited.Type | typeof Withdrawn.Type
type Command = { readonly _tag: "Deposit" | "Withdraw"; readonly amount: number }
const State = Schema.Struct({ balance: Schema.Int })
type State = typeof State.Type

class InsufficientFunds extends Schema.TaggedError<InsufficientFunds>()("InsufficientFunds", {
  balance: Schema.Int
}) {}

const decider = Decider.make<Command, WalletEvent, State, InsufficientFunds>({
  initialState: { balance: 0 },
  decide: (command, state) =>
    command._tag === "Deposit"
      ? Effect.succeed([Deposited.make({ amount: command.amount })])
      : command.amount > state.balance
        ? Effect.fail(new InsufficientFunds({ balance: state.balance }))
        : Effect.succeed([Withdrawn.make({ amount: command.amount })]),
  evolve: (state, event) => ({
    balance: state.balance + (event._tag === "Deposited" ? event.amount : -event.amount)
  })
})
const Wallet = Aggregate.make({ category: "Wallet", events: Schema.Union([Deposited, Withdrawn]), decider })
const SnapshottedWallet = Aggregate.make({
  category: "Wallet",
  events: Schema.Union([Deposited, Withdrawn]),
  decider,
  snapshot: { schema: State, version: 1, every: 3 }
})

// events that carry the state: deciding again on a moved stream gives other data
const Counted = Schema.TaggedStruct("Counted", { total: Schema.Int })
const Tally = Aggregate.make({
  category: "Tally",
  events: Counted,
  decider: Decider.make({
    initialState: 0,
    decide: (by: number, total: number) => Effect.succeed([Counted.make({ total: total + by })]),
    evolve: (_total: number, event: typeof Counted.Type) => event.total
  })
})

const deposit = (amount: number): Command => ({ _tag: "Deposit", amount })
const withdraw = (amount: number): Command => ({ _tag: "Withdraw", amount })

const versionOf = (streamId: string) =>
  EventStore.EventStore.use((store) =>
    Effect.map(store.streamInfo(streamId), (info) => Option.getOrThrow(info).version)
  )

layer(Live, { excludeTestServices: true, timeout: 60_000 })("CommandHandler on PostgreSQL", (it) => {
  it.effect("causedBy: a redelivered event appends nothing and returns the original result", () =>
    Effect.gen(function* () {
      const wallets = yield* CommandHandler.make(Wallet)
      const cause = Event.makeEventIdUnsafe()
      const first = yield* wallets.handle("r1", deposit(30), { causedBy: cause })
      assert.deepStrictEqual(yield* wallets.handle("r1", deposit(30), { causedBy: cause }), first)
      assert.strictEqual(yield* versionOf("Wallet-r1"), 1)
      const events = yield* Stream.runCollect(
        EventStore.EventStore.use((store) => Effect.succeed(store.read("Wallet-r1"))).pipe(Stream.unwrap)
      )
      assert.strictEqual(events[0]?.eventId, yield* Event.deriveEventId(cause, "Wallet-r1/0"))
      assert.strictEqual(events[0]?.metadata.causationId, cause)
    })
  )

  it.effect("causedBy: a redelivery after the stream moved on returns the original result, appending nothing", () =>
    Effect.gen(function* () {
      const wallets = yield* CommandHandler.make(Wallet)
      const tallies = yield* CommandHandler.make(Tally)

      // the same decision, appended with the moved stream's version: the stored ids make it a retry
      const credit = Event.makeEventIdUnsafe()
      const credited = yield* wallets.handle("m1", deposit(30), { causedBy: credit })
      yield* wallets.handle("m1", deposit(7))
      assert.deepStrictEqual(yield* wallets.handle("m1", deposit(30), { causedBy: credit }), credited)
      assert.strictEqual(yield* versionOf("Wallet-m1"), 2)

      // decide now refuses: the original debit is returned
      const debit = Event.makeEventIdUnsafe()
      yield* wallets.handle("m2", deposit(100))
      const debited = yield* wallets.handle("m2", withdraw(80), { causedBy: debit })
      yield* wallets.handle("m2", deposit(5))
      const redelivered = yield* wallets.handle("m2", withdraw(80), { causedBy: debit })
      assert.deepStrictEqual(redelivered, debited)
      assert.deepStrictEqual(redelivered.state, { balance: 20 })
      assert.strictEqual(yield* versionOf("Wallet-m2"), 3)

      // decide now gives other data: the original is returned
      const count = Event.makeEventIdUnsafe()
      const counted = yield* tallies.handle("m3", 2, { causedBy: count })
      yield* tallies.handle("m3", 3)
      assert.deepStrictEqual(yield* tallies.handle("m3", 2, { causedBy: count }), counted)
      assert.strictEqual(yield* versionOf("Tally-m3"), 2)
    })
  )

  it.effect("redeliveries racing their first delivery and other writers land once each", () =>
    Effect.gen(function* () {
      const wallets = yield* CommandHandler.make(Wallet)
      const causes = Array.from({ length: 10 }, () => Event.makeEventIdUnsafe())
      const retry = Schedule.recurs(50)
      yield* Effect.forEach(
        [...causes, ...causes, ...causes],
        (cause, i) => wallets.handle("race", deposit((i % 10) + 1), { causedBy: cause, retry }),
        { concurrency: "unbounded" }
      )
      yield* Effect.forEach([1, 2, 3], () => wallets.handle("race", deposit(100), { retry }), {
        concurrency: "unbounded"
      })
      assert.strictEqual(yield* versionOf("Wallet-race"), 13)
      assert.strictEqual((yield* wallets.load("race")).state.balance, 55 + 300)
    })
  )

  it.effect("assumeEmpty appends with noStream, and a stream that exists is a WrongExpectedVersion", () =>
    Effect.gen(function* () {
      const wallets = yield* CommandHandler.make(Wallet)
      assert.strictEqual((yield* wallets.handle("e1", deposit(1), { assumeEmpty: true })).version, 1)
      const refused = yield* Effect.flip(
        wallets.handle("e1", deposit(1), { assumeEmpty: true, retry: Schedule.recurs(0) })
      )
      assert.strictEqual(refused._tag, "WrongExpectedVersion")
    })
  )

  it.effect("a snapshotting aggregate's handler saves and loads through PgSnapshotStore", () =>
    Effect.gen(function* () {
      const wallets = yield* CommandHandler.make(SnapshottedWallet)
      for (const amount of [1, 2, 3, 4]) yield* wallets.handle("s1", deposit(amount))
      const loaded = yield* wallets.load("s1")
      assert.deepStrictEqual([loaded.state.balance, loaded.version, loaded.folded], [10, 4, 1])
    })
  )
})
