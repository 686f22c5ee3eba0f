import { assert, layer } from "@effect/vitest"
import { CheckpointStore, Event, EventStore, Position, Projection } from "@facta/core"
import { Cause, Effect, Exit, Fiber, Option, References } from "effect"
import { SqlClient } from "effect/sql"
import * as Database from "../support/database.ts"
import {
  Counted,
  codec,
  compareWithLog,
  countingProjection,
  createReadModel,
  instanceLayer,
  logOf,
  outOfOrder,
  type ReadModel,
  randomInt,
  readModelRows,
  type SeenRow
} from "../support/projection.ts"

// End to end, the projection never skips an event that commits late, and never sees one that rolls back.
// Writers append concurrently, some inside transactions that stay open for random durations (and so commit after
// appends that took their positions later), some that roll back; a projection on a pool of its own tails the log
// live meanwhile. Then: a handler that keeps failing on one event, with "stop" and with "park".

const schema = Database.uniqueSchema("projgaps")
const Live = Database.projectionStoresIn(schema, { maxConnections: 16 })
const quiet = Effect.provideService(References.MinimumLogLevel, "Error")

interface Acked {
  readonly eventIds: ReadonlyArray<string>
  readonly positions: ReadonlyArray<Position.Position>
  /** When the append's transaction had committed (the writer's clock). */
  readonly committedAt: number
}

const parkedOf = (name: string) => CheckpointStore.CheckpointStore.use((store) => store.parked(name))

const counted = (n: number): Event.EventData => ({
  eventId: Event.makeEventIdUnsafe(),
  type: "Counted",
  schemaVersion: 1,
  data: { n }
})

/** What the live projection handled in the first test, and the log then: the second test checks per-stream order. */
let observed: { readonly seen: ReadonlyArray<SeenRow>; readonly log: ReadonlyArray<Event.RecordedEvent> } | undefined

layer(Live, { timeout: 60_000, excludeTestServices: true })("Projection gap freedom on PostgreSQL", (it) => {
  it.effect(
    "a live projection sees every committed event once, in checkpoint order, with transactions committing late",
    () =>
      Effect.gen(function* () {
        const model: ReadModel = { schema, prefix: "gaps" }
        const name = "gaps"
        const category = "Gaps"
        yield* createReadModel(model)
        const sql = yield* SqlClient.SqlClient
        const store = yield* EventStore.EventStore

        const projection = countingProjection({ model, name, category, handledBy: "tail" })
        const tail = yield* Effect.forkChild(
          Projection.run(projection, {
            owner: "tail",
            batchSize: 50,
            batchWindow: "10 millis",
            pollInterval: "500 millis"
          }).pipe(Effect.provide(instanceLayer(Database.databaseUrl(), schema, { maxConnections: 3 })))
        )

        const acked: Array<Acked> = []
        const rolledBack: Array<string> = []
        const deadline = Date.now() + 3_000
        const stream = () => `${category}-${randomInt(1, 6)}`
        const batch = () => Array.from({ length: randomInt(1, 3) }, () => counted(randomInt(1, 100)))
        const record = (events: ReadonlyArray<Event.EventData>, result: EventStore.AppendResult) =>
          Effect.sync(() => {
            acked.push({ eventIds: events.map((e) => e.eventId), positions: result.positions, committedAt: Date.now() })
          })

        // autocommit appends, back to back
        const fast = Effect.gen(function* () {
          while (Date.now() < deadline) {
            const events = batch()
            yield* record(events, yield* store.append(stream(), events))
            yield* Effect.sleep(randomInt(0, 15))
          }
        })
        // an append inside a transaction that stays open for a while, sleeping in the client or in the server
        const slow = (serverSide: boolean) =>
          Effect.gen(function* () {
            while (Date.now() < deadline) {
              const events = batch()
              const hold = randomInt(20, 300)
              const result = yield* sql.withTransaction(
                Effect.gen(function* () {
                  const result = yield* store.append(stream(), events)
                  if (serverSide) yield* sql`SELECT pg_sleep(${hold / 1000})`
                  else yield* Effect.sleep(hold)
                  return result
                })
              )
              yield* record(events, result)
            }
          })
        // an append whose transaction stays open, then rolls back: its events must never be seen
        const aborted = Effect.gen(function* () {
          while (Date.now() < deadline) {
            const events = batch()
            const exit = yield* Effect.exit(
              sql.withTransaction(
                Effect.gen(function* () {
                  yield* store.append(stream(), events)
                  yield* Effect.sleep(randomInt(20, 200))
                  return yield* Effect.fail("roll back")
                })
              )
            )
            assert.isTrue(Exit.isFailure(exit))
            rolledBack.push(...events.map((e) => e.eventId))
            yield* Effect.sleep(randomInt(0, 100))
          }
        })

        const writers = yield* Effect.forkChild(
          Effect.all([fast, fast, fast, slow(false), slow(false), slow(true), slow(true), aborted], {
            concurrency: "unbounded",
            discard: true
          })
        )
        // the projection keeps up while the writers run
        yield* Effect.sleep("1500 millis")
        const { seen: midway } = yield* readModelRows(model)
        yield* Fiber.join(writers)
        const writtenCount = acked.reduce((n, a) => n + a.eventIds.length, 0)
        assert.isAbove(midway.length, 0, "the projection handled events while the writers ran")
        assert.isBelow(midway.length, writtenCount, "...before the writers were done")

        // the scenario happened: appends committed after appends that took later positions
        const byPosition = [...acked].sort((a, b) => Position.order(a.positions[0]!, b.positions[0]!))
        let lateCommits = 0
        let latestCommit = 0
        for (const append of byPosition) {
          if (append.committedAt < latestCommit) lateCommits++
          latestCommit = Math.max(latestCommit, append.committedAt)
        }
        assert.isAbove(lateCommits, 0, "some appends committed after appends positioned after them")

        const last = byPosition.at(-1)!.positions.at(-1)!
        yield* Projection.waitFor(projection, last, { timeout: "5 seconds" })
        const { seen } = yield* readModelRows(model)
        yield* Fiber.interrupt(tail)

        // exactly once, in checkpoint order, and exactly the committed events
        const diff = yield* compareWithLog(model, category)
        assert.strictEqual(diff.logSize, writtenCount, "the log holds exactly the acknowledged appends")
        assert.deepStrictEqual(diff.duplicates, [], "no event handled twice")
        assert.deepStrictEqual(diff.missing, [], "no committed event skipped")
        assert.deepStrictEqual(diff.unexpected, [], "nothing handled that is not in the log")
        assert.deepStrictEqual(diff.countMismatches, [])
        assert.deepStrictEqual(outOfOrder(seen), [], "positions strictly increase in handling order")
        const handled = new Set(seen.map((row) => row.event_id))
        assert.deepStrictEqual(
          acked.flatMap((a) => a.eventIds).filter((id) => !handled.has(id)),
          [],
          "every acknowledged event was handled"
        )
        assert.isAbove(rolledBack.length, 0)
        assert.deepStrictEqual(
          rolledBack.filter((id) => handled.has(id)),
          [],
          "no rolled-back event was handled"
        )
        // the handling order is the log's order (readAll), event for event
        const log = yield* logOf(category)
        assert.deepStrictEqual(
          seen.map((row) => row.event_id),
          log.map((event) => event.eventId as string)
        )
        assert.isTrue(Position.equals(Position.parse(seen.at(-1)!.position)!, last))
        observed = { seen, log }
      }).pipe(quiet),
    30_000
  )

  it.effect(
    "...and in that run, each stream's events were handled in version order (what a per-stream fold needs)",
    () =>
      Effect.sync(() => {
        assert.isDefined(observed, "the live projection test ran")
        const { seen, log } = observed!
        const versionOf = new Map(log.map((event) => [event.eventId as string, event.version]))
        const lastVersion = new Map<string, number>()
        const outOfVersionOrder: Array<string> = []
        for (const row of seen) {
          const version = versionOf.get(row.event_id)!
          const previous = lastVersion.get(row.stream_id) ?? 0
          if (version !== previous + 1) outOfVersionOrder.push(`${row.stream_id}: version ${version} after ${previous}`)
          lastVersion.set(row.stream_id, version)
        }
        assert.deepStrictEqual(outOfVersionOrder, [], "each stream's events in version order, none skipped")
      })
  )

  const poisonSetup = (label: string) =>
    Effect.gen(function* () {
      const model: ReadModel = { schema, prefix: `poison_${label}` }
      const category = `Poison${label}`
      yield* createReadModel(model)
      const append = (stream: string, ns: ReadonlyArray<number>) =>
        EventStore.appendEvents(
          codec,
          `${category}-${stream}`,
          ns.map((n) => Counted.make({ n }))
        )
      yield* append("a", [1, 2, 3])
      yield* append("b", [4, 5])
      const poisoned = yield* append("a", [-1])
      yield* append("b", [6, 7])
      yield* append("c", [8])
      const log = yield* logOf(category)
      const poison = log.find((event) => Position.equals(event.position, poisoned.positions[0]!))!
      const index = log.indexOf(poison)
      return { model, category, log, poison, before: log.slice(0, index), after: log.slice(index + 1) }
    })

  it.effect(
    "a poison event with onFailure 'stop': ProjectionFailed names it, nothing at or after it is projected",
    () =>
      Effect.gen(function* () {
        const { model, category, poison, before, after } = yield* poisonSetup("stop")
        const name = "poison-stop"
        const projection = countingProjection({ model, name, category, poison: -1, onFailure: "stop" })
        const run = Projection.run(projection, { owner: "p", untilCaughtUp: true }).pipe(Effect.timeout("10 seconds"))

        for (const attempt of [1, 2]) {
          const exit = yield* Effect.exit(run)
          assert.isTrue(Exit.isFailure(exit), `attempt ${attempt} fails`)
          const error = Exit.isFailure(exit) ? Option.getOrUndefined(Cause.findErrorOption(exit.cause)) : undefined
          assert.strictEqual(error?._tag, "ProjectionFailed", `attempt ${attempt}: ${String(error)}`)
          if (error?._tag !== "ProjectionFailed") return
          assert.strictEqual(error.eventId, poison.eventId)
          assert.strictEqual(error.streamId, poison.streamId)
          assert.strictEqual(error.streamVersion, poison.version)
          assert.strictEqual(error.position, Position.format(poison.position))
          assert.include(error.message, poison.eventId)

          const [status] = yield* Projection.status(projection)
          assert.isTrue(Position.isBefore(status!.checkpoint, poison.position), "the checkpoint stays before it")
          assert.isTrue(
            Position.equals(status!.checkpoint, before.at(-1)!.position),
            "...right after the last event before it"
          )
          assert.strictEqual(status!.state, "failed")
          assert.include(
            Option.getOrElse(status!.error, () => ""),
            poison.eventId
          )
          assert.isTrue(Option.isNone(status!.owner), "the failed run released its lease")
          assert.strictEqual(status!.eventsBehind > 0, true)

          const { seen } = yield* readModelRows(model)
          assert.deepStrictEqual(
            seen.map((row) => row.event_id),
            before.map((event) => event.eventId as string),
            "the read model holds exactly the events before it, once each"
          )
          assert.isFalse(
            seen.some((row) => row.event_id === poison.eventId || after.some((e) => e.eventId === row.event_id)),
            "nothing at or after the poison event"
          )
        }
        const { counts } = yield* readModelRows(model)
        assert.deepStrictEqual(
          counts.map((row) => [row.stream_id, row.events, Number(row.total)]),
          [
            [`${category}-a`, 3, 6],
            [`${category}-b`, 2, 9]
          ]
        )
        assert.deepStrictEqual(yield* parkedOf(name), [])
      }).pipe(quiet)
  )

  it.effect("a poison event with onFailure 'park': it is parked with its reason, everything else is projected", () =>
    Effect.gen(function* () {
      const { model, category, log, poison, after } = yield* poisonSetup("park")
      // an event the codec cannot decode is parked the same way
      const undecodable = counted(0)
      const broken = yield* EventStore.EventStore.use((store) =>
        store.append(`${category}-d`, [{ ...undecodable, data: { n: "not a number" } }])
      )
      yield* EventStore.appendEvents(codec, `${category}-d`, [Counted.make({ n: 9 })])
      const name = "poison-park"
      const projection = countingProjection({ model, name, category, poison: -1, onFailure: "park" })
      yield* Projection.run(projection, { owner: "p", untilCaughtUp: true }).pipe(Effect.timeout("10 seconds"))

      const parked = yield* parkedOf(name)
      assert.deepStrictEqual(
        parked.map((p) => p.event.eventId as string).sort(),
        [poison.eventId as string, undecodable.eventId as string].sort()
      )
      const parkedPoison = parked.find((p) => p.event.eventId === poison.eventId)!
      assert.include(parkedPoison.error, `poisoned event ${poison.eventId}`, "parked with the handler's reason")
      assert.isTrue(Position.equals(parkedPoison.event.position, poison.position))
      assert.deepStrictEqual(parkedPoison.event.data, { n: -1 })
      assert.deepStrictEqual(parkedPoison.key, { name, version: 1, partition: 0 })
      const parkedBroken = parked.find((p) => p.event.eventId === undecodable.eventId)!
      assert.isTrue(Position.equals(parkedBroken.event.position, broken.positions[0]!))
      assert.isNotEmpty(parkedBroken.error, "parked with the decoding failure")

      const skip = new Set<string>([poison.eventId, undecodable.eventId])
      const diff = yield* compareWithLog(model, category, skip)
      // the setup's events and the two appended here, but the two parked ones
      assert.strictEqual(diff.logSize, log.length + 2 - 2)
      assert.deepStrictEqual(diff.duplicates, [])
      assert.deepStrictEqual(diff.missing, [], "everything else is projected, including what came after them")
      assert.deepStrictEqual(diff.unexpected, [], "the parked events left nothing in the read model")
      assert.deepStrictEqual(diff.countMismatches, [])
      assert.isTrue(after.length > 0)
      const { seen } = yield* readModelRows(model)
      assert.deepStrictEqual(outOfOrder(seen), [])

      const [status] = yield* Projection.status(projection)
      const head = yield* EventStore.EventStore.use((store) => store.head)
      assert.isFalse(Position.isBefore(status!.checkpoint, head), "the checkpoint went past the parked events")
      assert.strictEqual(status!.state, "stopped")
    }).pipe(quiet)
  )

  it.effect("the reason kept for a parked event names a handler error that has no message of its own", () =>
    Effect.gen(function* () {
      const { model, category, poison } = yield* poisonSetup("bare")
      const name = "poison-bare"
      const projection = countingProjection({ model, name, category, poison: -1, bare: true, onFailure: "park" })
      yield* Projection.run(projection, { owner: "p", untilCaughtUp: true }).pipe(Effect.timeout("10 seconds"))
      const parked = yield* parkedOf(name)
      assert.deepStrictEqual(
        parked.map((p) => p.event.eventId as string),
        [poison.eventId as string]
      )
      // `Schema.TaggedError` without a `message` getter has message "": the reason must still say what failed
      assert.include(parked[0]!.error, "BarePoison", "the parked reason names the error")
    }).pipe(quiet)
  )
})
