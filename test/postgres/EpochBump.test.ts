import { assert, layer } from "@effect/vitest"
import { Event, EventStore, Position, Projection, Subscription } from "@facta/core"
import { PgEventStore } from "@facta/postgres"
import { Deferred, Effect, Fiber, Schedule, Stream } from "effect"
import { SqlClient } from "effect/sql"
import * as Database from "../support/database.ts"
import * as Locks from "../support/locks.ts"
import { Counted, codec, randomInt } from "../support/projection.ts"

// The epoch leads every position, and a reader that has seen the store's new epoch reads only below the horizon from
// there on: an event that still commits in the old epoch after that is behind it for good. So an append must write
// under the epoch that is current when it commits. Appends that wait for a stream's writer lock while the epoch is
// bumped (what a restore into a new cluster does, docs/operating-postgres.md) are the race; live readers (a readAll
// tailer, a subscription, a projection) must each see every acknowledged append.

const schema = Database.uniqueSchema("epoch_bump")
const category = "Epoch"

/** Live readers' view: positions (Position.format) each of them has seen. */
interface Seen {
  readonly tailer: Set<string>
  readonly subscription: Set<string>
  readonly projection: Set<string>
}

/** Follows the log with `readAll` from `after`, as a live reader does: always from the last position it saw. */
const tail = (after: Position.Position, seen: Set<string>) =>
  Effect.gen(function* () {
    const store = yield* EventStore.EventStore
    let cursor = after
    while (true) {
      const events = yield* Stream.runCollect(store.readAll({ after: cursor, batchSize: 100 }))
      for (const event of events) seen.add(Position.format(event.position))
      cursor = events.at(-1)?.position ?? cursor
      if (events.length === 0) yield* Effect.sleep("5 millis")
    }
  })

/** Waits up to `millis` for `check`; says whether it held. */
const within = (millis: number, check: () => boolean) =>
  Effect.gen(function* () {
    const started = Date.now()
    while (!check()) {
      if (Date.now() - started > millis) return false
      yield* Effect.sleep("5 millis")
    }
    return true
  })

const counted = () => [Counted.make({ n: randomInt(1, 1000) })]

/** One event as the store takes it. */
const eventData = Effect.map(
  codec.encode(Counted.make({ n: randomInt(1, 1000) })),
  (encoded): Event.EventData => ({ eventId: Event.makeEventIdUnsafe(), ...encoded })
)

const appendOne = (streamId: string) =>
  Effect.map(EventStore.appendEvents(codec, streamId, counted()), (result) => result.positions.map(Position.format))

/** A multi-stream append (the `append_batch` function), through `store`. */
const appendTwo = (store: EventStore.EventStore["Service"], streams: readonly [string, string]) =>
  Effect.gen(function* () {
    const requests = yield* Effect.forEach(streams, (streamId) =>
      Effect.map(eventData, (event) => ({ streamId, events: [event] }))
    )
    const results = yield* store.appendMany(requests)
    return results.flatMap((result) => result.positions.map(Position.format))
  })

/** An append through `append`, the function of the first migration that clients of earlier versions still call. */
const legacyAppend = (streamId: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const event = yield* eventData
    const [row] = yield* sql<{ status: number; epoch: number; tx_id: string; positions: ReadonlyArray<bigint> }>`
      SELECT status, epoch, tx_id::text AS tx_id, positions FROM ${sql(schema)}.append(${streamId}, ${category},
        0::smallint, 0::integer, ${[event.eventId]}::uuid[], ${[event.type]}::text[], ${[event.schemaVersion]}::smallint[],
        ${[JSON.stringify(event.data)]}::jsonb[], ${["{}"]}::jsonb[], true)`
    assert.strictEqual(row!.status, 0)
    return row!.positions.map((p) => Position.format(Position.make(row!.epoch, BigInt(row!.tx_id), p)))
  })

/**
 * A transaction that holds `streamId`'s writer lock until `release`: one that appended to the stream (the usual way
 * appends come to wait), or one that took the lock alone (it then holds no transaction id, so the horizon does not
 * wait for it and readers see later events at once).
 */
const holdLock = (streamId: string, appended: boolean) =>
  Effect.gen(function* () {
    if (!appended) return yield* Locks.otherTransaction(streamId, Effect.succeed<ReadonlyArray<string>>([]))
    const sql = yield* SqlClient.SqlClient
    const holding = yield* Deferred.make<number>()
    const go = yield* Deferred.make<void>()
    const fiber = yield* Effect.forkChild(
      sql
        .withTransaction(
          Effect.gen(function* () {
            const positions = yield* appendOne(streamId)
            const [row] = yield* sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`
            yield* Deferred.succeed(holding, row!.pid)
            yield* Deferred.await(go)
            return positions
          })
        )
        .pipe(Effect.exit)
    )
    const pid = yield* Deferred.await(holding)
    return { pid, go: Deferred.succeed(go, undefined), done: Fiber.join(fiber) }
  })

/**
 * One round: appends wait for a held stream lock, the epoch is bumped in another connection and committed, another
 * stream is appended to under the new epoch (and, time permitting, read by the live tailer), then the lock goes.
 * Returns every position acknowledged in the round.
 */
const round = (i: number, seen: Seen, unbatched: EventStore.EventStore["Service"]) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const locked = `${category}-locked${i}`
    const holder = yield* holdLock(locked, i % 2 === 0)
    // through each append function: two single appends (as many as the store runs at once, so none waits in its
    // batcher), one multi-stream append, and one through the first migration's function
    const waiting = yield* Effect.forkChild(
      Effect.all(
        [
          appendOne(locked),
          appendOne(locked),
          appendTwo(unbatched, [locked, `${category}-pair${i}`]),
          legacyAppend(locked)
        ],
        { concurrency: "unbounded" }
      )
    )
    yield* Locks.someoneWaitsFor(holder.pid)
    yield* Effect.sleep(randomInt(0, 10))
    // the bump as the operating notes give it; it may wait for the holder (and the appends it lets through)
    const bump = yield* Effect.forkChild(sql`UPDATE ${sql(schema)}.store SET epoch = epoch + 1`)
    yield* Effect.sleep(randomInt(0, 20))
    const other = yield* Effect.map(unbatched.append(`${category}-other${i}`, [yield* eventData]), (result) =>
      result.positions.map(Position.format)
    )
    // let the live reader move past the other stream's event when it can see it (it cannot while the holder's
    // transaction id holds the horizon back, and must not need to)
    if (Math.random() < 0.8) yield* within(300, () => other.every((p) => seen.tailer.has(p)))
    yield* holder.go
    const held = yield* holder.done
    assert.isTrue(held._tag === "Success", `the lock holder's transaction commits: ${String(held)}`)
    const appended = yield* Fiber.join(waiting)
    yield* Fiber.join(bump)
    return [...(held._tag === "Success" ? held.value : []), ...appended.flat(), ...other]
  })

layer(Database.projectionStoresIn(schema, { maxConnections: 12 }), { timeout: 120_000, excludeTestServices: true })(
  "PgEventStore epochs",
  (it) => {
    it.effect("appends that wait for a stream lock while the epoch is bumped are seen by every live reader", () =>
      Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        // a second store on the same pool whose appends never wait in a batcher behind the ones a lock holds
        const { store: unbatched } = yield* PgEventStore.make({ schema, migrate: false, batching: false })
        yield* appendOne(`${category}-seed`)
        const start = yield* store.head
        const seen: Seen = { tailer: new Set(), subscription: new Set(), projection: new Set() }
        yield* Effect.forkScoped(tail(start, seen.tailer))
        yield* Subscription.subscribe({ after: start, categories: [category], pollInterval: "20 millis" }).pipe(
          Stream.runForEach((event) => Effect.sync(() => seen.subscription.add(Position.format(event.position)))),
          Effect.forkScoped
        )
        const live = Projection.make({
          name: "epoch_live",
          events: codec,
          categories: [category],
          handle: (event) => Effect.sync(() => seen.projection.add(Position.format(event.position)))
        })
        yield* Effect.forkScoped(Projection.run(live, { pollInterval: "20 millis" }))

        const acknowledged: Array<string> = []
        const started = Date.now()
        for (let i = 0; i < 16 && Date.now() - started < 40_000; i++) {
          acknowledged.push(...(yield* round(i, seen, unbatched)))
        }
        // a transaction of another test file may hold the horizon back for a while: readers stall, never skip
        const all = () => Object.values(seen).every((set: Set<string>) => acknowledged.every((p) => set.has(p)))
        yield* within(20_000, all)
        const missing = Object.fromEntries(
          Object.entries(seen).map(([reader, set]: [string, Set<string>]) => [
            reader,
            acknowledged.filter((p) => !set.has(p))
          ])
        )
        // a reader that starts afresh finds them all: the events are stored, only live readers skipped them
        const reread = new Set(
          (yield* Stream.runCollect(store.readAll({ after: start }))).map((e) => Position.format(e.position))
        )
        assert.deepStrictEqual(
          acknowledged.filter((p) => !reread.has(p)),
          [],
          "a fresh read sees every acknowledged append"
        )
        assert.deepStrictEqual(
          missing,
          { tailer: [], subscription: [], projection: [] },
          `live readers missed acknowledged appends (of ${acknowledged.length})`
        )
      }).pipe(Effect.scoped)
    )
  }
)

const corrupted = Database.uniqueSchema("future_tx")

layer(Database.projectionStoresIn(corrupted), { timeout: 60_000, excludeTestServices: true })(
  "PgEventStore with a transaction id from the future",
  (it) => {
    it.effect("a projection run until caught up ends, and the horizon does not count the row as held back", () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const store = yield* EventStore.EventStore
        const { horizon } = yield* PgEventStore.PgEventStore
        for (let i = 0; i < 5; i++) yield* appendOne(`${category}-${i}`)
        const [last] = yield* sql<{ position: bigint }>`SELECT max(global_position) AS position
          FROM ${sql(corrupted)}.events`
        // a hand edit: no transaction has had this id yet, so the row is never below the horizon
        yield* sql`UPDATE ${sql(corrupted)}.events SET tx_id = '99999999999'::xid8
          WHERE global_position = ${last!.position}`

        const handled: Array<string> = []
        const projection = Projection.make({
          name: "future_tx",
          events: codec,
          categories: [category],
          handle: (event) => Effect.sync(() => handled.push(event.streamId))
        })
        const ended = yield* Projection.run(projection, { untilCaughtUp: true, pollInterval: "20 millis" }).pipe(
          Effect.as(true),
          Effect.timeoutOrElse({ duration: "10 seconds", orElse: () => Effect.succeed(false) })
        )
        assert.isTrue(ended, "the run until caught up ends")
        assert.deepStrictEqual(
          handled,
          [0, 1, 2, 3].map((i) => `${category}-${i}`)
        )
        const committed = yield* store.lastCommitted
        assert.isTrue(committed.sequence < last!.position, "lastCommitted leaves out the unreachable row")
        const held = yield* horizon.pipe(
          Effect.repeat({ schedule: Schedule.spaced("100 millis"), until: (h) => h.heldBackEvents === 0, times: 100 })
        )
        assert.strictEqual(held.heldBackEvents, 0)
        assert.strictEqual(held.unreachableEvents, 1, "horizon reports the unreachable row")
      })
    )
  }
)
