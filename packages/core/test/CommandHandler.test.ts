import { assert, describe, it } from "@effect/vitest"
import { Aggregate, CommandHandler, Decider, Event, EventStore, ExpectedVersion, Snapshot } from "@facta/core"
import { DateTime, Effect, Layer, Option, Ref, Schedule, Schema, Stream } from "effect"
import { TestClock } from "effect/testing"

const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Int })
const Withdrawn = Schema.TaggedStruct("Withdrawn", { amount: Schema.Int })
type WalletEvent = typeof Deposited.Type | typeof Withdrawn.Type
type Command =
  | { readonly _tag: "Deposit"; readonly amount: number }
  | { readonly _tag: "Withdraw"; readonly amount: number }

class InsufficientFunds extends Schema.TaggedError<InsufficientFunds>()("InsufficientFunds", {
  balance: Schema.Int,
  requested: Schema.Int
}) {}

const State = Schema.Struct({ balance: Schema.Int, operations: Schema.Int })
type State = typeof State.Type

const makeWallet = (options?: { readonly every?: number; readonly stateVersion?: number; decided?: Ref.Ref<number> }) =>
  Aggregate.make({
    category: "Wallet",
    events: Schema.Union([Deposited, Withdrawn]),
    decider: Decider.make({
      initialState: { balance: 0, operations: 0 } as State,
      decide: (command: Command, state: State) =>
        Effect.gen(function* () {
          if (options?.decided) yield* Ref.update(options.decided, (n) => n + 1)
          if (command._tag === "Deposit") {
            return command.amount === 0 ? [] : [Deposited.make({ amount: command.amount })]
          }
          if (command.amount > state.balance) {
            return yield* new InsufficientFunds({ balance: state.balance, requested: command.amount })
          }
          return [Withdrawn.make({ amount: command.amount })]
        }),
      evolve: (state: State, event: WalletEvent): State => ({
        balance: state.balance + (event._tag === "Deposited" ? event.amount : -event.amount),
        operations: state.operations + 1
      })
    }),
    snapshot:
      options?.every === undefined
        ? undefined
        : { schema: State, version: options.stateVersion ?? 1, every: options.every }
  })

const Wallet = makeWallet()
const deposit = (amount: number): Command => ({ _tag: "Deposit", amount })
const withdraw = (amount: number): Command => ({ _tag: "Withdraw", amount })
const live = Layer.merge(EventStore.layerMemory, Snapshot.layerMemory)

/** A store where another writer always gets in first: every append is preceded by an intruding one. */
const contendedStore = (appends: Ref.Ref<number>) =>
  Layer.effect(
    EventStore.EventStore,
    Effect.gen(function* () {
      const inner = yield* EventStore.EventStore
      return EventStore.EventStore.of({
        ...inner,
        append: (streamId, events, options) =>
          Ref.update(appends, (n) => n + 1).pipe(
            Effect.andThen(
              inner.append(streamId, [
                { eventId: Event.makeEventIdUnsafe(), type: "Deposited", schemaVersion: 1, data: { amount: 1 } }
              ])
            ),
            Effect.andThen(inner.append(streamId, events, options))
          )
      })
    })
  ).pipe(Layer.provide(EventStore.layerMemory))

describe("CommandHandler.handle", () => {
  it.effect("loads, decides, appends with the loaded version and returns state, events and positions", () =>
    Effect.gen(function* () {
      const first = yield* CommandHandler.handle(Wallet, "Wallet-1", deposit(100))
      const second = yield* CommandHandler.handle(Wallet, "Wallet-1", withdraw(30))
      assert.deepStrictEqual(second.state, { balance: 70, operations: 2 })
      assert.deepStrictEqual(second.events, [Withdrawn.make({ amount: 30 })])
      assert.strictEqual(first.version, 1)
      assert.strictEqual(second.version, 2)
      const stored = yield* Stream.runCollect(
        EventStore.EventStore.use((s) => Effect.succeed(s.read("Wallet-1"))).pipe(Stream.unwrap)
      )
      assert.deepStrictEqual(
        stored.map((e) => e.position),
        [...first.positions, ...second.positions]
      )
    }).pipe(Effect.provide(live))
  )

  it.effect("passes domain errors through untouched, appends nothing and does not retry them", () =>
    Effect.gen(function* () {
      const decided = yield* Ref.make(0)
      const wallet = makeWallet({ decided })
      yield* CommandHandler.handle(wallet, "Wallet-2", deposit(10))
      const error = yield* Effect.flip(CommandHandler.handle(wallet, "Wallet-2", withdraw(11)))
      assert.instanceOf(error, InsufficientFunds)
      assert.deepStrictEqual({ balance: error.balance, requested: error.requested }, { balance: 10, requested: 11 })
      assert.strictEqual(yield* Ref.get(decided), 2)
      const info = yield* EventStore.EventStore.use((s) => s.streamInfo("Wallet-2"))
      assert.strictEqual(Option.getOrThrow(info).version, 1)
    }).pipe(Effect.provide(live))
  )

  it.effect("a command that decides nothing appends nothing", () =>
    Effect.gen(function* () {
      yield* CommandHandler.handle(Wallet, "Wallet-3", deposit(5))
      const result = yield* CommandHandler.handle(Wallet, "Wallet-3", deposit(0))
      assert.strictEqual(result.version, 1)
      assert.deepStrictEqual(result.positions, [])
    }).pipe(Effect.provide(live))
  )

  it.effect("metadata and the current trace flow into every appended event", () =>
    Effect.gen(function* () {
      yield* CommandHandler.handle(Wallet, "Wallet-4", deposit(5), {
        metadata: { actor: "user-7", correlationId: "req-1", causationId: "cmd-1", attributes: { ip: "10.0.0.1" } }
      }).pipe(Effect.withSpan("request"))
      const [event] = yield* Stream.runCollect(Stream.unwrap(EventStore.EventStore.useSync((s) => s.read("Wallet-4"))))
      assert.strictEqual(event!.metadata.actor, "user-7")
      assert.strictEqual(event!.metadata.correlationId, "req-1")
      assert.strictEqual(event!.metadata.causationId, "cmd-1")
      assert.deepStrictEqual(event!.metadata.attributes, { ip: "10.0.0.1" })
      assert.isString(event!.metadata.traceId)
      assert.isString(event!.metadata.spanId)
    }).pipe(Effect.provide(live))
  )

  it.effect("concurrent commands on one stream all land: conflicts reload and decide again", () =>
    Effect.gen(function* () {
      const retry = Schedule.recurs(100)
      yield* Effect.forEach(
        Array.from({ length: 40 }, (_, i) => i + 1),
        (amount) => CommandHandler.handle(Wallet, "Wallet-5", deposit(amount), { retry }),
        { concurrency: "unbounded" }
      )
      const loaded = yield* CommandHandler.load(Wallet, "Wallet-5")
      assert.deepStrictEqual(loaded.state, { balance: (40 * 41) / 2, operations: 40 })
      assert.strictEqual(loaded.version, 40)
    }).pipe(Effect.provide(live))
  )

  it.effect("two withdrawals racing for the same money: one wins, the other is re-decided and refused", () =>
    Effect.gen(function* () {
      yield* CommandHandler.handle(Wallet, "Wallet-6", deposit(100))
      const results = yield* Effect.forEach(
        [withdraw(80), withdraw(80)],
        (command) => Effect.result(CommandHandler.handle(Wallet, "Wallet-6", command, { retry: Schedule.recurs(5) })),
        { concurrency: "unbounded" }
      )
      assert.deepStrictEqual(results.map((r) => (r._tag === "Success" ? "ok" : r.failure._tag)).sort(), [
        "InsufficientFunds",
        "ok"
      ])
      assert.strictEqual((yield* CommandHandler.load(Wallet, "Wallet-6")).state.balance, 20)
    }).pipe(Effect.provide(live))
  )

  it.effect("gives up with WrongExpectedVersion once the retry schedule is exhausted", () =>
    Effect.gen(function* () {
      const appends = yield* Ref.make(0)
      const error = yield* Effect.flip(
        CommandHandler.handle(Wallet, "Wallet-7", deposit(5), { retry: Schedule.recurs(3) }).pipe(
          Effect.provide(contendedStore(appends))
        )
      )
      assert.strictEqual(error._tag, "WrongExpectedVersion")
      assert.strictEqual(yield* Ref.get(appends), 4)
    })
  )

  it.live("by default retries a conflict 5 times on a jittered backoff, then gives up", () =>
    Effect.gen(function* () {
      const appends = yield* Ref.make(0)
      const error = yield* Effect.flip(
        CommandHandler.handle(Wallet, "Wallet-7", deposit(5)).pipe(Effect.provide(contendedStore(appends)))
      )
      assert.strictEqual(error._tag, "WrongExpectedVersion")
      assert.strictEqual(yield* Ref.get(appends), 6)
    })
  )
})

describe("snapshots", () => {
  it.effect("are saved every N events and loads fold only what came after", () =>
    Effect.gen(function* () {
      const wallet = makeWallet({ every: 3 })
      for (let i = 1; i <= 7; i++) yield* CommandHandler.handle(wallet, "Wallet-8", deposit(i))
      const snapshot = Option.getOrThrow(yield* Snapshot.SnapshotStore.use((s) => s.load("Wallet-8")))
      assert.strictEqual(snapshot.version, 6)
      assert.deepStrictEqual(snapshot.state, { balance: 21, operations: 6 })
      const loaded = yield* CommandHandler.load(wallet, "Wallet-8")
      assert.deepStrictEqual(loaded, { state: { balance: 28, operations: 7 }, version: 7, folded: 1 })
    }).pipe(Effect.provide(live))
  )

  it.effect("a snapshot of another state version is ignored and the state is folded from events", () =>
    Effect.gen(function* () {
      for (let i = 1; i <= 4; i++) yield* CommandHandler.handle(makeWallet({ every: 2 }), "Wallet-9", deposit(i))
      const upgraded = makeWallet({ every: 100, stateVersion: 2 })
      const loaded = yield* CommandHandler.load(upgraded, "Wallet-9")
      assert.deepStrictEqual(loaded, { state: { balance: 10, operations: 4 }, version: 4, folded: 4 })
    }).pipe(Effect.provide(live))
  )

  it.effect("a snapshot that no longer decodes is ignored", () =>
    Effect.gen(function* () {
      yield* CommandHandler.handle(Wallet, "Wallet-10", deposit(3))
      yield* Snapshot.SnapshotStore.use((s) =>
        s.save({
          streamId: "Wallet-10",
          version: 1,
          stateVersion: 1,
          state: { nope: true },
          takenAt: DateTime.makeUnsafe(0)
        })
      )
      const loaded = yield* CommandHandler.load(makeWallet({ every: 10 }), "Wallet-10")
      assert.deepStrictEqual(loaded.state, { balance: 3, operations: 1 })
      assert.strictEqual(loaded.folded, 1)
    }).pipe(Effect.provide(live))
  )

  it.effect("a terminal state is snapshotted at once", () =>
    Effect.gen(function* () {
      const base = makeWallet({ every: 1000 })
      const terminal = Aggregate.make({
        ...base,
        decider: { ...base.decider, isTerminal: (s: State) => s.balance === 0 && s.operations > 0 }
      })
      yield* CommandHandler.handle(terminal, "Wallet-11", deposit(5))
      const result = yield* CommandHandler.handle(terminal, "Wallet-11", withdraw(5))
      assert.isTrue(result.terminal)
      const snapshot = yield* Snapshot.SnapshotStore.use((s) => s.load("Wallet-11"))
      assert.strictEqual(Option.getOrThrow(snapshot).version, 2)
    }).pipe(Effect.provide(live))
  )

  it.effect("the store never moves a snapshot backwards within a state version", () =>
    Effect.gen(function* () {
      const store = yield* Snapshot.SnapshotStore
      const at = (version: number, stateVersion = 1) => ({
        streamId: "Wallet-12",
        version,
        stateVersion,
        state: { v: version },
        takenAt: DateTime.makeUnsafe(0)
      })
      yield* store.save(at(10))
      yield* store.save(at(4))
      assert.strictEqual(Option.getOrThrow(yield* store.load("Wallet-12")).version, 10)
      yield* store.save(at(4, 2))
      assert.deepStrictEqual(Option.getOrThrow(yield* store.load("Wallet-12")).stateVersion, 2)
    }).pipe(Effect.provide(Snapshot.layerMemory))
  )
})

describe("closed streams", () => {
  it.effect("a command on an archived or deleted stream fails with its typed error; history stays readable", () =>
    Effect.gen(function* () {
      const store = yield* EventStore.EventStore
      yield* CommandHandler.handle(Wallet, "Wallet-archived", deposit(5))
      yield* store.archive("Wallet-archived")
      const archived = yield* Effect.flip(CommandHandler.handle(Wallet, "Wallet-archived", deposit(1)))
      assert.strictEqual(archived._tag, "StreamArchived")
      const past = yield* CommandHandler.loadAsOf(Wallet, "Wallet-archived", { version: 1 })
      assert.deepStrictEqual(past.state, { balance: 5, operations: 1 })
      const now = yield* CommandHandler.loadAsOf(Wallet, "Wallet-archived", { at: DateTime.makeUnsafe(Date.now()) })
      assert.strictEqual(now.state.balance, 5)

      yield* CommandHandler.handle(Wallet, "Wallet-deleted", deposit(5))
      yield* store.delete("Wallet-deleted")
      const deleted = yield* Effect.flip(CommandHandler.handle(Wallet, "Wallet-deleted", deposit(1)))
      assert.strictEqual(deleted._tag, "StreamDeleted")
    }).pipe(Effect.provide(live))
  )
})

describe("temporal reads", () => {
  it.effect("state as of a version and as of an instant", () =>
    Effect.gen(function* () {
      const wallet = makeWallet({ every: 2 })
      yield* TestClock.setTime(Date.parse("2026-01-01T10:00:00Z"))
      yield* CommandHandler.handle(wallet, "Wallet-13", deposit(100))
      yield* TestClock.setTime(Date.parse("2026-01-02T10:00:00Z"))
      yield* CommandHandler.handle(wallet, "Wallet-13", withdraw(40))
      yield* TestClock.setTime(Date.parse("2026-01-03T10:00:00Z"))
      yield* CommandHandler.handle(wallet, "Wallet-13", deposit(5))

      const v1 = yield* CommandHandler.loadAsOf(wallet, "Wallet-13", { version: 1 })
      assert.deepStrictEqual([v1.state.balance, v1.version], [100, 1])
      const v3 = yield* CommandHandler.loadAsOf(wallet, "Wallet-13", { version: 3 })
      assert.deepStrictEqual([v3.state.balance, v3.version], [65, 3])
      const at = (iso: string) => CommandHandler.loadAsOf(wallet, "Wallet-13", { at: DateTime.makeUnsafe(iso) })
      assert.strictEqual((yield* at("2026-01-01T09:59:59Z")).version, 0)
      assert.strictEqual((yield* at("2026-01-01T10:00:00Z")).state.balance, 100)
      assert.strictEqual((yield* at("2026-01-02T23:00:00Z")).state.balance, 60)
      assert.strictEqual((yield* at("2027-01-01T00:00:00Z")).state.balance, 65)
      const none = yield* CommandHandler.loadAsOf(wallet, "Wallet-404", { version: 5 })
      assert.deepStrictEqual(none, { state: { balance: 0, operations: 0 }, version: 0, folded: 0 })
    }).pipe(Effect.provide(live))
  )
})

describe("expected versions through the handler", () => {
  it.effect("appends with the exact loaded version", () =>
    Effect.gen(function* () {
      yield* CommandHandler.handle(Wallet, "Wallet-14", deposit(1))
      const store = yield* EventStore.EventStore
      const stale = yield* Effect.flip(
        store.append(
          "Wallet-14",
          [{ eventId: Event.makeEventIdUnsafe(), type: "Deposited", schemaVersion: 1, data: { amount: 1 } }],
          { expectedVersion: ExpectedVersion.exact(0) }
        )
      )
      assert.strictEqual(stale._tag, "WrongExpectedVersion")
      assert.strictEqual(stale._tag === "WrongExpectedVersion" ? stale.actual : -1, 1)
    }).pipe(Effect.provide(live))
  )
})

describe("CommandHandler.handle with an expected version", () => {
  it.effect("decides only on that version, and does not retry a conflict", () =>
    Effect.gen(function* () {
      yield* CommandHandler.handle(Wallet, "Wallet-if-match", deposit(5))
      const stale = yield* Effect.flip(
        CommandHandler.handle(Wallet, "Wallet-if-match", deposit(1), { expectedVersion: 0 })
      )
      assert.strictEqual(stale._tag, "WrongExpectedVersion")
      if (stale._tag === "WrongExpectedVersion") assert.strictEqual(stale.actual, 1)
      const ok = yield* CommandHandler.handle(Wallet, "Wallet-if-match", deposit(2), { expectedVersion: 1 })
      assert.strictEqual(ok.version, 2)
      const appends = yield* Ref.make(0)
      const raced = yield* Effect.flip(
        CommandHandler.handle(Wallet, "Wallet-raced", deposit(3), { expectedVersion: 0 }).pipe(
          Effect.provide(contendedStore(appends))
        )
      )
      assert.strictEqual(raced._tag, "WrongExpectedVersion")
      assert.strictEqual(yield* Ref.get(appends), 1, "one attempt, no retry")
    }).pipe(Effect.provide(live))
  )
  it.effect("a number that is not a version fails typed with InvalidExpectedVersion, before deciding or loading", () =>
    Effect.gen(function* () {
      const decided = yield* Ref.make(0)
      const wallet = makeWallet({ decided })
      const store = yield* EventStore.EventStore
      for (const streamId of ["Wallet-bad-version", "Wallet-bad-version-new"]) {
        if (streamId === "Wallet-bad-version") yield* CommandHandler.handle(wallet, streamId, deposit(5))
        const before = yield* Ref.get(decided)
        for (const version of [-1, -0.5, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, 2 ** 31]) {
          const error = yield* Effect.flip(
            CommandHandler.handle(wallet, streamId, deposit(1), { expectedVersion: version })
          )
          assert.strictEqual(error._tag, "InvalidExpectedVersion")
          if (error._tag !== "InvalidExpectedVersion") return
          assert.strictEqual(error.streamId, streamId)
          assert.isTrue(Object.is(error.version, version), `names ${version}`)
        }
        assert.strictEqual(yield* Ref.get(decided), before, "nothing was decided")
      }
      const info = yield* store.streamInfo("Wallet-bad-version")
      assert.strictEqual(Option.getOrThrow(info).version, 1, "nothing was appended")
      assert.isTrue(Option.isNone(yield* store.streamInfo("Wallet-bad-version-new")))
      // the largest version is a valid expectation: a conflict here, not a refusal
      const conflict = yield* Effect.flip(
        CommandHandler.handle(wallet, "Wallet-bad-version", deposit(1), { expectedVersion: ExpectedVersion.maxVersion })
      )
      assert.strictEqual(conflict._tag, "WrongExpectedVersion")
    }).pipe(Effect.provide(live))
  )
})

/** The memory store with every fold's `from` recorded, and one intruding append before its `intrudeOn`th append. */
const countingStore = (folds: Ref.Ref<ReadonlyArray<number>>, intrudeOn?: number) =>
  Layer.effect(
    EventStore.EventStore,
    Effect.gen(function* () {
      const inner = yield* EventStore.EventStore
      let appends = 0
      return EventStore.EventStore.of({
        ...inner,
        fold: (streamId, initial, step, options) =>
          Ref.update(folds, (all) => [...all, options?.from ?? 1]).pipe(
            Effect.andThen(inner.fold(streamId, initial, step, options))
          ),
        append: (streamId, events, options) =>
          Effect.suspend(() => {
            if (++appends !== intrudeOn) return inner.append(streamId, events, options)
            return inner
              .append(streamId, [
                { eventId: Event.makeEventIdUnsafe(), type: "Deposited", schemaVersion: 1, data: { amount: 1 } }
              ])
              .pipe(Effect.andThen(inner.append(streamId, events, options)))
          })
      })
    })
  ).pipe(Layer.provide(EventStore.layerMemory))

// a decider whose events carry the state: deciding again on a moved stream gives other data
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

const SnapshottedWallet = Aggregate.make({
  category: "Wallet",
  events: Wallet.events,
  decider: Wallet.decider,
  snapshot: { schema: State, version: 1, every: 2 }
})

describe("CommandHandler.make", () => {
  it.effect("handle and load take the entity id: the stream is Category-id, whatever the id looks like", () =>
    Effect.gen(function* () {
      const store = yield* EventStore.EventStore
      const wallets = yield* CommandHandler.make(Wallet)
      // the methods need nothing from the context: their requirements are `never`
      const handled: Effect.Effect<CommandHandler.CommandResult<State, WalletEvent>, unknown, never> = wallets.handle(
        "b1",
        deposit(10)
      )
      const result = yield* handled
      assert.strictEqual(result.version, 1)
      assert.strictEqual(Option.getOrThrow(yield* store.streamInfo("Wallet-b1")).version, 1)
      // another category's stream id is only an entity id of this one: it can never reach Account-1
      yield* wallets.handle("Account-1", deposit(5))
      assert.isTrue(Option.isSome(yield* store.streamInfo("Wallet-Account-1")))
      assert.isTrue(Option.isNone(yield* store.streamInfo("Account-1")))
      const loaded: Effect.Effect<CommandHandler.Loaded<State>, CommandHandler.LoadError, never> = wallets.load("b1")
      assert.deepStrictEqual((yield* loaded).state, { balance: 10, operations: 1 })
      const invalid = yield* Effect.flip(wallets.handle("", deposit(1)))
      assert.strictEqual(invalid._tag, "InvalidStreamId")
    }).pipe(Effect.provide(EventStore.layerMemory))
  )

  it.effect("load: includeArchived reads an archived stream, asOf a past version or instant", () =>
    Effect.gen(function* () {
      const store = yield* EventStore.EventStore
      const wallets = yield* CommandHandler.make(Wallet)
      yield* TestClock.setTime(Date.parse("2026-01-01T10:00:00Z"))
      yield* wallets.handle("b2", deposit(100))
      yield* TestClock.setTime(Date.parse("2026-01-02T10:00:00Z"))
      yield* wallets.handle("b2", withdraw(40))
      yield* store.archive("Wallet-b2")
      assert.strictEqual((yield* Effect.flip(wallets.load("b2")))._tag, "StreamArchived")
      const now = yield* wallets.load("b2", { includeArchived: true })
      assert.deepStrictEqual([now.state.balance, now.version], [60, 2])
      const v1 = yield* wallets.load("b2", { includeArchived: true, asOf: { version: 1 } })
      assert.deepStrictEqual([v1.state.balance, v1.version], [100, 1])
      const day1 = yield* wallets.load("b2", {
        includeArchived: true,
        asOf: { at: DateTime.makeUnsafe("2026-01-01T12:00:00Z") }
      })
      assert.deepStrictEqual([day1.state.balance, day1.version], [100, 1])
    }).pipe(Effect.provide(EventStore.layerMemory))
  )

  it.effect("causedBy: a redelivered event appends nothing and gets the original result back", () =>
    Effect.gen(function* () {
      const store = yield* EventStore.EventStore
      const wallets = yield* CommandHandler.make(Wallet)
      const cause = Event.makeEventIdUnsafe()
      const first = yield* wallets.handle("r1", deposit(30), { causedBy: cause })
      const again = yield* wallets.handle("r1", deposit(30), { causedBy: cause })
      assert.deepStrictEqual(again, first)
      assert.strictEqual(Option.getOrThrow(yield* store.streamInfo("Wallet-r1")).version, 1)
      const [event] = yield* Stream.runCollect(store.read("Wallet-r1"))
      assert.strictEqual(event?.eventId, yield* Event.deriveEventId(cause, "Wallet-r1/0"))
      assert.strictEqual(event?.metadata.causationId, cause)
    }).pipe(Effect.provide(EventStore.layerMemory))
  )

  it.effect("causedBy: a redelivery after the stream moved on still gets the original result, appending nothing", () =>
    Effect.gen(function* () {
      const store = yield* EventStore.EventStore
      const wallets = yield* CommandHandler.make(Wallet)
      const tallies = yield* CommandHandler.make(Tally)
      const version = (streamId: string) => Effect.map(store.streamInfo(streamId), (i) => Option.getOrThrow(i).version)

      // the same decision on the moved stream: appended with a stale-looking version, taken as a retry by its ids
      const credit = Event.makeEventIdUnsafe()
      const credited = yield* wallets.handle("m1", deposit(30), { causedBy: credit })
      yield* wallets.handle("m1", deposit(7))
      assert.deepStrictEqual(yield* wallets.handle("m1", deposit(30), { causedBy: credit }), credited)
      assert.strictEqual(yield* version("Wallet-m1"), 2)

      // `decide` now refuses (the money is gone): the original debit is found and returned, not the refusal
      const debit = Event.makeEventIdUnsafe()
      yield* wallets.handle("m2", deposit(100))
      const debited = yield* wallets.handle("m2", withdraw(80), { causedBy: debit })
      yield* wallets.handle("m2", deposit(5))
      const redelivered = yield* wallets.handle("m2", withdraw(80), { causedBy: debit })
      assert.deepStrictEqual(redelivered, debited)
      assert.deepStrictEqual(redelivered.state, { balance: 20, operations: 2 })
      assert.strictEqual(yield* version("Wallet-m2"), 3)
      // a refusal of a command whose cause appended nothing stays a refusal
      const refused = yield* Effect.flip(wallets.handle("m2", withdraw(500), { causedBy: Event.makeEventIdUnsafe() }))
      assert.strictEqual(refused._tag, "InsufficientFunds")

      // `decide` now gives other data (the ids are stored with other content): the original is returned
      const count = Event.makeEventIdUnsafe()
      const counted = yield* tallies.handle("m3", 2, { causedBy: count })
      yield* tallies.handle("m3", 3)
      assert.deepStrictEqual(yield* tallies.handle("m3", 2, { causedBy: count }), counted)
      assert.strictEqual(yield* version("Tally-m3"), 2)
      assert.strictEqual((yield* tallies.load("m3")).state, 5)
    }).pipe(Effect.provide(EventStore.layerMemory))
  )

  it.effect("causedBy through a conflict: the retry keeps the derived ids and lands once", () =>
    Effect.gen(function* () {
      const folds = yield* Ref.make<ReadonlyArray<number>>([])
      const cause = Event.makeEventIdUnsafe()
      const program = Effect.gen(function* () {
        const wallets = yield* CommandHandler.make(Wallet)
        const first = yield* wallets.handle("c1", deposit(10), { causedBy: cause, retry: Schedule.recurs(1) })
        const again = yield* wallets.handle("c1", deposit(10), { causedBy: cause })
        return { first, again }
      })
      const { first, again } = yield* program.pipe(Effect.provide(countingStore(folds, 1)))
      // the intruder's deposit of 1 landed first; ours on top of it
      assert.deepStrictEqual([first.version, first.state.balance], [2, 11])
      assert.deepStrictEqual(again, first)
    })
  )

  it.effect("a conflict resumes from the state in hand plus the events appended since, not a full reload", () =>
    Effect.gen(function* () {
      const folds = yield* Ref.make<ReadonlyArray<number>>([])
      const result = yield* Effect.gen(function* () {
        const wallets = yield* CommandHandler.make(Wallet)
        const store = yield* EventStore.EventStore
        for (const amount of [1, 2, 3]) {
          yield* store.append("Wallet-k1", [
            { eventId: Event.makeEventIdUnsafe(), type: "Deposited", schemaVersion: 1, data: { amount } }
          ])
        }
        return yield* wallets.handle("k1", deposit(10), { retry: Schedule.recurs(1) })
      }).pipe(Effect.provide(countingStore(folds, 4)))
      // one load from the start, then a fold of the intruder's event only
      assert.deepStrictEqual(yield* Ref.get(folds), [1, 4])
      assert.deepStrictEqual([result.version, result.state], [5, { balance: 17, operations: 5 }])
    })
  )

  it.effect("assumeEmpty: no load, an append with noStream; an existing stream is a conflict", () =>
    Effect.gen(function* () {
      const folds = yield* Ref.make<ReadonlyArray<number>>([])
      yield* Effect.gen(function* () {
        const wallets = yield* CommandHandler.make(Wallet)
        const created = yield* wallets.handle("e1", deposit(10), { assumeEmpty: true })
        assert.deepStrictEqual([created.version, created.state.balance], [1, 10])
        assert.deepStrictEqual(yield* Ref.get(folds), [], "nothing was loaded")

        const refused = yield* Effect.flip(
          wallets.handle("e1", deposit(5), { assumeEmpty: true, retry: Schedule.recurs(0) })
        )
        assert.strictEqual(refused._tag, "WrongExpectedVersion")
        if (refused._tag === "WrongExpectedVersion") {
          assert.deepStrictEqual([refused.expected._tag, refused.actual], ["NoStream", 1])
        }
        // with retries, the conflict is resolved like any other: catch up from the start, decide again
        const retried = yield* wallets.handle("e1", deposit(5), { assumeEmpty: true, retry: Schedule.recurs(1) })
        assert.deepStrictEqual([retried.version, retried.state.balance], [2, 15])
      }).pipe(Effect.provide(countingStore(folds)))
    })
  )

  it.effect("a snapshotting aggregate's handler needs a SnapshotStore; Snapshot.layerNone keeps none", () =>
    Effect.gen(function* () {
      // @ts-expect-error: a handler of an aggregate with snapshots cannot be built without a SnapshotStore
      const _missing: Effect.Effect<unknown, never, EventStore.EventStore> = CommandHandler.make(SnapshottedWallet)
      const _plain: Effect.Effect<unknown, never, EventStore.EventStore> = CommandHandler.make(Wallet)
      assert.isDefined([_missing, _plain])

      const none = yield* Effect.gen(function* () {
        const wallets = yield* CommandHandler.make(SnapshottedWallet)
        for (const amount of [1, 2, 3, 4]) yield* wallets.handle("s1", deposit(amount))
        const loaded = yield* wallets.load("s1")
        const saved = yield* Snapshot.SnapshotStore.use((store) => store.load("Wallet-s1"))
        return { loaded, saved }
      }).pipe(Effect.provide(Layer.merge(EventStore.layerMemory, Snapshot.layerNone)))
      assert.deepStrictEqual([none.loaded.state.balance, none.loaded.folded], [10, 4])
      assert.isTrue(Option.isNone(none.saved))

      const kept = yield* Effect.gen(function* () {
        const wallets = yield* CommandHandler.make(SnapshottedWallet)
        for (const amount of [1, 2, 3, 4]) yield* wallets.handle("s1", deposit(amount))
        return yield* wallets.load("s1")
      }).pipe(Effect.provide(live))
      assert.deepStrictEqual([kept.state.balance, kept.folded], [10, 0])
    })
  )
})
