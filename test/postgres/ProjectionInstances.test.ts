import { assert, layer } from "@effect/vitest"
import { CheckpointStore, Position, Projection } from "@facta/core"
import { Cause, Effect, Exit, Fiber, Option, References } from "effect"
import { SqlClient } from "effect/sql"
import * as Database from "../support/database.ts"
import {
  type CrashSwitch,
  compareWithLog,
  countingProjection,
  createReadModel,
  currentOwner,
  eventually,
  instanceLayer,
  outOfOrder,
  type ReadModel,
  readModelRows,
  startWriter
} from "../support/projection.ts"

// Several instances of one projection, each with an owner and a connection pool of its own (as separate processes
// would have), race for its lease: one writes at a time, a standby takes over when the holder stops or dies, and the
// read model never sees an event twice. Then the fencing itself: a zombie holder's commit after a takeover.

const schema = Database.uniqueSchema("projinst")
const Live = Database.projectionStoresIn(schema, { maxConnections: 8 })
const quiet = Effect.provideService(References.MinimumLogLevel, "Warn")
const leaseTtlMillis = 1000

interface Instance {
  readonly owner: string
  readonly fiber: Fiber.Fiber<void, unknown>
  readonly crash: CrashSwitch
}

/** Starts an instance of the projection on a pool of its own. */
const start = (model: ReadModel, name: string, category: string, owner: string) =>
  Effect.gen(function* () {
    const crash: CrashSwitch = { crashed: false }
    const projection = countingProjection({ model, name, category, handledBy: owner })
    const fiber = yield* Effect.forkChild(
      Projection.run(projection, {
        owner,
        leaseTtl: `${leaseTtlMillis} millis`,
        batchSize: 20,
        batchWindow: "5 millis",
        pollInterval: "50 millis"
      }).pipe(Effect.provide(instanceLayer(Database.databaseUrl(), schema, { crash, maxConnections: 3 })))
    )
    return { owner, fiber, crash } satisfies Instance
  })

/** Collapses a sequence into its runs: `[a, a, b, a]` → `[a, b, a]`. */
const runs = (values: ReadonlyArray<string>): ReadonlyArray<string> =>
  values.filter((value, i) => i === 0 || values[i - 1] !== value)

/**
 * Starts `count` instances together while a writer appends, then stops the holder once per entry of `kills`
 * ("graceful": interrupted, it releases its lease; "crash": interrupted without releasing, like a dead process, so
 * the lease has to expire), and checks the takeovers, the owners over time and the read model.
 */
const scenario = (label: string, count: number, kills: ReadonlyArray<"graceful" | "crash">) =>
  Effect.gen(function* () {
    const prefix = `inst_${label}`
    const model: ReadModel = { schema, prefix }
    const name = `instances-${label}`
    const category = `Instances${label}`
    yield* createReadModel(model)

    // sample the lease's owner every 10 ms for the whole test
    const samples: Array<{ readonly at: number; readonly owners: ReadonlyArray<string> }> = []
    const sampler = yield* Effect.forkChild(
      Effect.forever(
        Effect.gen(function* () {
          // stamped before the query: a sample stamped after a stop was read after it
          const at = Date.now()
          const owners = (yield* currentOwner(name)).flatMap((owner) => Option.toArray(owner))
          samples.push({ at, owners })
          yield* Effect.sleep("10 millis")
        })
      )
    )
    const appending = yield* startWriter(category, { pauseMillis: 5 })
    const instances = yield* Effect.forEach(
      Array.from({ length: count }, (_, i) => `${prefix}-owner-${i}`),
      // forked one after the other in this fiber (a fork inside a concurrent forEach would die with its worker)
      (owner) => start(model, name, category, owner)
    )
    const alive = new Map(instances.map((instance) => [instance.owner, instance]))
    const holder = Effect.map(currentOwner(name), (owners) =>
      owners.flatMap((owner) => Option.toArray(owner)).find((owner) => alive.has(owner))
    )

    yield* eventually(
      "an instance to take the lease",
      Effect.map(holder, (h) => h !== undefined),
      5_000
    )
    yield* Effect.sleep("600 millis")
    const killedAt = new Map<string, number>()
    const takeovers: Array<{ readonly mode: string; readonly from: string; readonly to: string; readonly ms: number }> =
      []
    for (const mode of kills) {
      const active = (yield* holder)!
      const instance = alive.get(active)!
      alive.delete(active)
      instance.crash.crashed = mode === "crash"
      yield* Fiber.interrupt(instance.fiber)
      const stoppedAt = Date.now()
      killedAt.set(active, stoppedAt)
      const exit = yield* Fiber.await(instance.fiber)
      assert.isTrue(Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause), `${active} stopped by interruption`)
      const waited = yield* eventually(
        `a standby to take over from ${active}`,
        Effect.map(holder, (h) => h !== undefined),
        leaseTtlMillis + 5_000
      )
      takeovers.push({ mode, from: active, to: (yield* holder)!, ms: waited })
      // a released lease is taken at the standby's next try (every third of the ttl); a dead holder's when it expires.
      // The margins allow for a loaded machine: the point is that a standby takes over, around the lease's time
      assert.isAtMost(waited, leaseTtlMillis + 3_000, `${mode} takeover from ${active} within the lease ttl + 3 s`)
      if (mode === "graceful") assert.isAtMost(waited, 2 * leaseTtlMillis, "a released lease is taken before expiry")
      yield* Effect.sleep("600 millis")
    }

    const last = yield* appending.stop
    yield* Projection.waitFor({ name, version: 1 }, last, { timeout: "10 seconds" })
    yield* Fiber.interrupt(sampler)

    // at most one owner at any time, and never a stopped one after it released its lease
    for (const sample of samples) assert.isAtMost(sample.owners.length, 1, "at most one owner at a time")
    for (const [owner, at] of killedAt) {
      const mode = takeovers.find((t) => t.from === owner)!.mode
      if (mode === "graceful") {
        assert.isFalse(
          samples.some((sample) => sample.at > at && sample.owners.includes(owner)),
          `${owner} no longer owns anything once stopped`
        )
      }
    }
    const ownerRuns = runs(samples.flatMap((sample) => sample.owners))
    assert.deepStrictEqual(
      ownerRuns,
      [takeovers[0]?.from ?? ownerRuns[0]!, ...takeovers.map((t) => t.to)],
      "the lease changed hands exactly at the stops"
    )

    // the read model: every event exactly once, in log order, and written only by the holder of the time
    const diff = yield* compareWithLog(model, category)
    assert.isAbove(diff.logSize, 0)
    assert.deepStrictEqual(diff.duplicates, [], "no event handled twice")
    assert.deepStrictEqual(diff.missing, [], "no event missed")
    assert.deepStrictEqual(diff.unexpected, [])
    assert.deepStrictEqual(diff.countMismatches, [])
    const { seen } = yield* readModelRows(model)
    assert.deepStrictEqual(outOfOrder(seen), [], "events handled in log order across the takeovers")
    assert.deepStrictEqual(
      runs(seen.map((row) => row.handled_by)),
      ownerRuns,
      "the events were handled by the lease holders, one after the other, never interleaved"
    )

    yield* Effect.forEach([...alive.values()], (instance) => Fiber.interrupt(instance.fiber), { discard: true })
    return takeovers
  }).pipe(quiet)

layer(Live, { timeout: 60_000, excludeTestServices: true })("Projection instances on PostgreSQL", (it) => {
  it.effect(
    "two instances: one holds the lease; when it stops the other takes over",
    () => scenario("a", 2, ["graceful"]),
    30_000
  )

  it.effect(
    "three instances: one holds the lease; a crashed holder's lease expires and a standby takes over, twice",
    () => scenario("b", 3, ["crash", "graceful"]),
    30_000
  )

  it.effect(
    "two instances: the standby takes over from a crashed holder once its lease expires",
    () => scenario("c", 2, ["crash"]),
    30_000
  )

  it.effect("a zombie holder cannot commit after its lease expired or was taken; its SQL is rolled back", () =>
    Effect.gen(function* () {
      const store = yield* CheckpointStore.CheckpointStore
      const sql = yield* SqlClient.SqlClient
      const notes = sql`${sql(schema)}.zombie_notes`
      yield* sql`CREATE TABLE ${notes} (note text PRIMARY KEY)`
      const note = (text: string) => sql`INSERT INTO ${notes} (note) VALUES (${text})`
      const noteList = Effect.map(sql<{ note: string }>`SELECT note FROM ${notes} ORDER BY note`, (rows) =>
        rows.map((row) => row.note)
      )
      const isLeaseLost = <A, E>(exit: Exit.Exit<A, E>) =>
        Exit.isFailure(exit) &&
        Option.match(Exit.findErrorOption(exit), {
          onNone: () => false,
          onSome: (error) => (error as { _tag?: string })._tag === "LeaseLost"
        })
      const key: CheckpointStore.Key = { name: "zombie", version: 1, partition: 0 }
      const p1 = Position.make(1, 100n, 1n)
      const p2 = Position.make(1, 101n, 2n)
      const p3 = Position.make(1, 102n, 3n)

      const zombie = Option.getOrThrow(yield* store.acquire(key, "zombie", "300 millis"))
      yield* store.commit(zombie, zombie.checkpoint, p1, note("zombie-while-valid"))
      assert.isTrue(Option.isNone(yield* store.acquire(key, "usurper", "10 seconds")), "a held lease is not taken")

      yield* Effect.sleep("500 millis")
      // expired but not taken yet: the zombie still cannot commit
      const expired = yield* Effect.exit(store.commit(zombie, p1, p2, note("zombie-after-expiry")))
      assert.isTrue(isLeaseLost(expired), "commit after expiry fails with LeaseLost")

      const usurper = Option.getOrThrow(yield* store.acquire(key, "usurper", "10 seconds"))
      assert.isAbove(usurper.fence, zombie.fence, "the fence grew with the takeover")
      assert.isTrue(Position.equals(usurper.checkpoint, p1), "the new owner resumes from the last commit")

      const late = yield* Effect.exit(store.commit(zombie, p1, p2, note("zombie-after-takeover")))
      assert.isTrue(isLeaseLost(late), "the zombie's commit with its old lease fails with LeaseLost")
      assert.isTrue(isLeaseLost(yield* Effect.exit(store.renew(zombie, "10 seconds"))), "renew fails too")
      assert.isTrue(isLeaseLost(yield* Effect.exit(store.setState(zombie, "running"))), "setState fails too")
      yield* store.release(zombie, "stopped")
      assert.isTrue(Option.isNone(yield* store.acquire(key, "zombie", "10 seconds")), "the zombie cannot take it back")

      yield* store.commit(usurper, p1, p2, note("usurper"))
      assert.deepStrictEqual(yield* noteList, ["usurper", "zombie-while-valid"], "the zombie's late SQL rolled back")
      const [status] = yield* store.status("zombie")
      assert.isTrue(Position.equals(status!.checkpoint, p2))
      assert.deepStrictEqual(status!.owner, Option.some("usurper"))

      // a failing handler rolls back its SQL and leaves the checkpoint where it was
      const failed = yield* Effect.exit(
        store.commit(usurper, p2, p3, Effect.andThen(note("failed"), Effect.fail("boom")))
      )
      assert.isTrue(Exit.isFailure(failed))
      assert.deepStrictEqual(yield* noteList, ["usurper", "zombie-while-valid"], "the failed batch's SQL rolled back")
      assert.isTrue(Position.equals((yield* store.status("zombie"))[0]!.checkpoint, p2), "the checkpoint stayed")
      // and a stale `from` (another commit moved the checkpoint) is refused like a lost lease
      assert.isTrue(isLeaseLost(yield* Effect.exit(store.commit(usurper, p1, p3, note("stale-from")))))
      assert.deepStrictEqual(yield* noteList, ["usurper", "zombie-while-valid"])
    })
  )

  it.effect("a commit in flight when its lease expires holds off the takeover, which resumes after it", () =>
    Effect.gen(function* () {
      const store = yield* CheckpointStore.CheckpointStore
      const sql = yield* SqlClient.SqlClient
      const notes = sql`${sql(schema)}.inflight_notes`
      yield* sql`CREATE TABLE ${notes} (note text PRIMARY KEY)`
      const key: CheckpointStore.Key = { name: "inflight", version: 1, partition: 0 }
      const p1 = Position.make(1, 200n, 1n)

      const zombie = Option.getOrThrow(yield* store.acquire(key, "slow", "300 millis"))
      // the commit's compare-and-set runs while the lease is valid, then the work outlives the lease
      const slow = yield* Effect.forkChild(
        store.commit(
          zombie,
          zombie.checkpoint,
          p1,
          Effect.andThen(sql`INSERT INTO ${notes} (note) VALUES ('slow')`, sql`SELECT pg_sleep(0.9)`)
        )
      )
      yield* Effect.sleep("500 millis")
      const [before] = yield* store.status("inflight")
      assert.isTrue(Option.isNone(before!.owner), "the lease expired while the commit runs")
      const taken = yield* Effect.forkChild(store.acquire(key, "next", "10 seconds"))
      // the commit holds its row until about 900 ms: the takeover is still waiting for it, not done beside it
      yield* Effect.sleep("200 millis")
      assert.isUndefined(slow.pollUnsafe(), "the commit is still in flight")
      assert.isUndefined(taken.pollUnsafe(), "the takeover waits for the commit in flight")
      yield* Fiber.join(slow)
      const next = Option.getOrThrow(yield* Fiber.join(taken))
      assert.isTrue(Position.equals(next.checkpoint, p1), "the new owner resumes after the committed batch")
      const rows = yield* sql<{ note: string }>`SELECT note FROM ${notes}`
      assert.deepStrictEqual(
        rows.map((row) => row.note),
        ["slow"]
      )
    })
  )
})
