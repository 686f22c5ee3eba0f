/**
 * The relay and the inbox on the real Redis server (127.0.0.1:6379, or REDIS_URL), each test under a key prefix of
 * its own (its keys deleted afterwards). Without a server the file is skipped with one line (under CI=true it fails).
 *
 * - the relay conformance suite (@facta/testing's RelayConformance, the cases every broker passes) on PostgreSQL
 *   stores: every event once under 8 concurrent writers, in order per stream and as stored, nothing again after a
 *   restart; filters; a mapping to a public schema, an unencodable event parked; an entry over the publisher's
 *   default limit (1 MiB) a typed MessageTooLarge naming both sizes, and parked; no checkpoint progress while Redis
 *   refuses the XADDs (the key holds a string: WRONGTYPE), then catching up;
 * - what is Redis's own: the stream per category and the entry's fields (of the mapped type too), a configured
 *   entry limit, the live PUBLISH notifications, the retention;
 * - the inbox applies every entry exactly once although every first commit "loses" its acknowledgement (the entry
 *   stays pending and is read again), and after its consumer is stopped and started again; a poison entry is parked;
 * - a consumer killed between its commit and its XACK: another consumer of the group claims the entry and it is
 *   applied once.
 */
import { assert, describe, it } from "@effect/vitest"
import { CheckpointStore, Event, EventStore, Inbox, type IntegrationEvent, Relay } from "@facta/core"
import { PgInboxStore } from "@facta/postgres"
import { RedisClient, RedisInbox, RedisPublisher } from "@facta/redis"
import { RelayConformance } from "@facta/testing"
import { Deferred, Effect, Fiber, Layer, Schema } from "effect"
import { SqlClient } from "effect/sql"
import * as Database from "../support/database.ts"
import { appliedOnceAfterRestart, lossyRecordingInbox } from "./support/inbox.ts"
import { append, eventually } from "./support/log.ts"
import * as Redis from "./support/redis.ts"

const available = await Redis.redisAvailable()

const memoryStores = () => Layer.mergeAll(Layer.fresh(EventStore.layerMemory), Layer.fresh(CheckpointStore.layerMemory))

const redisCall = <A>(f: (connection: RedisClient.Connection) => Promise<A>) =>
  RedisClient.RedisClient.use((redis) => Effect.promise(() => f(redis.connection)))

if (available) {
  RelayConformance.run(
    "Redis Streams",
    Layer.mergeAll(Redis.client(), Database.projectionStoresIn(Database.uniqueSchema("redisconf"))),
    { broker: "redis", destination: Redis.destination }
  )
}

describe.skipIf(!available)("Relay and inbox on Redis Streams", () => {
  it.live(
    "appends to a stream per category, the envelope in the entry's fields (the mapped type for a mapped event)",
    () => {
      const prefix = Redis.unique("layout")
      return Effect.gen(function* () {
        const deposited = yield* append(
          "Account-1",
          "Deposited",
          { amount: 5 },
          { correlationId: "c-1", causationId: "k-1" }
        )
        const withdrawn = yield* append("Account-1", "Withdrawn", { amount: 3 })
        const placed = yield* append("Order-1", "Placed", {})
        const publisher = yield* RedisPublisher.make({ key: RedisPublisher.streamKey(prefix) })
        yield* Relay.run(Relay.make({ name: "layout", publisher }), { untilCaughtUp: true })
        const accounts = yield* Redis.readStream(`${prefix}:Account`)
        assert.deepStrictEqual(
          accounts.map((e) => [e.fields.eventId, e.fields.type]),
          [
            [deposited, "Deposited"],
            [withdrawn, "Withdrawn"]
          ]
        )
        const orders = yield* Redis.readStream(`${prefix}:Order`)
        assert.deepStrictEqual(
          orders.map((e) => [e.fields.eventId, e.fields.type]),
          [[placed, "Placed"]]
        )
        for (const e of [...accounts, ...orders]) {
          assert.strictEqual(e.fields.category, e.body.streamId.split("-")[0])
          assert.strictEqual(e.fields.schemaVersion, "1")
          assert.match(e.fields.position!, /^\d+\.\d+\.\d+$/)
          assert.isString(e.fields.recordedAt)
          const traced = e.body.eventId === deposited
          assert.strictEqual(e.fields.correlationId, traced ? "c-1" : undefined)
          assert.strictEqual(e.fields.causationId, traced ? "k-1" : undefined)
        }
        // a mapped relay of one category: its entries carry the public type; the other category's stream stays empty
        const MoneyIn = Schema.TaggedStruct("MoneyIn", { cents: Schema.Int })
        const mapped = Relay.make({
          name: "public",
          categories: ["Account"],
          types: ["Deposited"],
          publisher: yield* RedisPublisher.make({ key: RedisPublisher.streamKey(`${prefix}:public`) }),
          map: Relay.mapTo(MoneyIn, (event) => MoneyIn.make({ cents: (event.data as { amount: number }).amount }))
        })
        yield* Relay.run(mapped, { untilCaughtUp: true })
        const public_ = yield* Redis.readStream(`${prefix}:public:Account`)
        assert.deepStrictEqual(
          public_.map((e) => [e.fields.eventId, e.fields.type, e.body.data]),
          [[deposited, "MoneyIn", { _tag: "MoneyIn", cents: 5 }]]
        )
        assert.strictEqual(yield* Redis.length(`${prefix}:public:Order`), 0)
      }).pipe(Effect.provide(Layer.mergeAll(Redis.clientWithPrefix(prefix), memoryStores())))
    }
  )

  it.live("announces every entry with PUBLISH when asked: a live listener hears each event", () => {
    const prefix = Redis.unique("notify")
    const key = `${prefix}:Account`
    return Effect.gen(function* () {
      const notified: Array<string> = []
      const listener = yield* Effect.acquireRelease(
        redisCall(async (connection) => {
          const sub = connection.duplicate()
          sub.on("error", () => undefined)
          await sub.connect()
          await sub.subscribe(key, (message) => void notified.push(JSON.parse(message).eventId))
          return sub
        }),
        (sub) => Effect.sync(() => sub.destroy())
      )
      assert.isTrue(listener.isOpen)
      const publisher = yield* RedisPublisher.make({ key: RedisPublisher.streamKey(prefix), notify: true })
      const relay = Relay.make({ name: "notify", publisher })
      const fiber = yield* Effect.forkChild(Relay.run(relay, { pollInterval: "50 millis" }))
      yield* Effect.forEach(
        Array.from({ length: 4 }, (_, w) => w),
        (w) =>
          Effect.forEach(
            Array.from({ length: 25 }, (_, i) => i),
            (i) => append(`Account-w${w}s${i % 3}`, "Deposited", { writer: w, i }),
            { discard: true }
          ),
        { concurrency: 4, discard: true }
      )
      yield* eventually(Effect.map(Redis.length(key), (n) => n >= 100))
      yield* Fiber.interrupt(fiber)
      const ids = (yield* Redis.readStream(key)).map((e) => e.fields.eventId!)
      assert.strictEqual(ids.length, 100)
      // best effort, but on one machine every one arrives
      yield* eventually(
        Effect.sync(() => notified.length >= ids.length),
        "5 seconds"
      )
      assert.deepStrictEqual([...new Set(notified)].sort(), [...ids].sort())
    }).pipe(Effect.scoped, Effect.provide(Layer.mergeAll(Redis.clientWithPrefix(prefix), memoryStores())))
  })

  it.live(
    "a configured entry limit: a larger entry is a MessageTooLarge naming both sizes, and the relay parks it",
    () => {
      const prefix = Redis.unique("limit")
      return Effect.gen(function* () {
        const limit = 16 * 1024
        const publisher = yield* RedisPublisher.make({ key: RedisPublisher.streamKey(prefix), maxEntryBytes: limit })
        const relay = Relay.make({ name: "limited", publisher })
        const small = yield* append("Account-1", "Deposited", { amount: 1 })
        const big = yield* append("Account-2", "Deposited", { note: "x".repeat(limit + 10) })
        yield* Relay.run(relay, { untilCaughtUp: true })
        assert.deepStrictEqual(
          (yield* Redis.readStream(`${prefix}:Account`)).map((e) => e.fields.eventId),
          [small]
        )
        const parked = yield* Relay.parked(relay)
        assert.deepStrictEqual(
          parked.map((p) => p.event.eventId),
          [big]
        )
        assert.match(
          parked[0]!.error,
          new RegExp(`redis message ${big} is \\d+ bytes, more than the broker's limit of ${limit} bytes`)
        )
      }).pipe(Effect.provide(Layer.mergeAll(Redis.clientWithPrefix(prefix), memoryStores())))
    }
  )

  it.live("trims each stream by its retention: MAXLEN ~ or MINID ~ by age", () => {
    const prefix = Redis.unique("keep")
    return Effect.gen(function* () {
      const byLength = yield* RedisPublisher.make({
        key: (event) => `${prefix}:len:${event.category}`,
        retention: { maxLen: 50 }
      })
      const byAge = yield* RedisPublisher.make({
        key: (event) => `${prefix}:age:${event.category}`,
        retention: { maxAge: "1 hour" }
      })
      const event = (i: number): IntegrationEvent.IntegrationEvent => ({
        eventId: Event.makeEventIdUnsafe(),
        streamId: `Account-${i}`,
        category: "Account",
        version: 1,
        position: `0.${i + 1}.${i + 1}`,
        type: "Deposited",
        schemaVersion: 1,
        data: { i },
        recordedAt: new Date(0).toISOString()
      })
      // entries older than an hour (ids of 2001), then new ones: the old ones go with the next XADD
      yield* redisCall(async (connection) => {
        for (let i = 0; i < 300; i++)
          await connection.xAdd(`${prefix}:age:Account`, `1000000000000-${i + 1}`, { i: "old" })
      })
      for (let i = 0; i < 10; i++) {
        const batch = Array.from({ length: 50 }, (_, j) => event(i * 50 + j))
        yield* byLength.publish(batch)
        yield* byAge.publish(batch)
      }
      const kept = yield* Redis.length(`${prefix}:len:Account`)
      // approximate trimming removes whole nodes (100 entries by default): at least 50 kept, far fewer than 500
      assert.isAtLeast(kept, 50)
      assert.isAtMost(kept, 200)
      const young = yield* Redis.length(`${prefix}:age:Account`)
      assert.isAtLeast(young, 500)
      assert.isBelow(young, 800)
    }).pipe(Effect.provide(Redis.clientWithPrefix(prefix)))
  })

  it.live(
    "the inbox applies each entry exactly once when acknowledgements are lost, and parks a poison entry",
    () => {
      const prefix = Redis.unique("inbox")
      const key = `${prefix}:Transfer`
      const schema = Database.uniqueSchema("redisinbox")
      return Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const { store: lossy, inbox, failedOnce } = yield* lossyRecordingInbox(schema)
        const consume = RedisInbox.run(inbox, {
          key,
          group: "risk",
          consumer: "risk-1",
          block: "200 millis",
          retryDelay: "20 millis"
        }).pipe(Effect.provideService(Inbox.InboxStore, lossy))
        const consumer = yield* Effect.forkChild(consume)

        const publisher = yield* RedisPublisher.make({ key: RedisPublisher.streamKey(prefix) })
        const relay = Relay.make({ name: "to-risk", publisher })
        for (let i = 0; i < 40; i++) yield* append(`Transfer-${i % 4}`, "Sent", { i })
        yield* Relay.run(relay, { untilCaughtUp: true })
        yield* redisCall((connection) =>
          connection.xAdd(key, "*", { eventId: "poison-1", streamId: "Junk-1", data: "{not json" })
        )
        const count = sql<{ n: number }>`SELECT count(*)::int AS n FROM ${sql(schema)}.applied`.pipe(
          Effect.map((rows) => rows[0]!.n)
        )
        yield* eventually(Effect.map(count, (n) => n >= 40 && failedOnce.size >= 40))
        yield* eventually(Effect.map(lossy.parked("risk"), (p) => p.length === 1))
        const pendingCount = redisCall((connection) => connection.xPending(key, "risk")).pipe(
          Effect.map((p) => p.pending)
        )
        yield* eventually(
          Effect.map(pendingCount, (n) => n === 0),
          "5 seconds"
        )
        // stop the consumer and start it again: nothing is applied twice
        const poison = yield* appliedOnceAfterRestart({
          schema,
          store: lossy,
          consumer,
          consume,
          total: 40,
          streams: 4
        })
        assert.strictEqual(poison.subject, key)
        assert.strictEqual(yield* pendingCount, 0)
      }).pipe(Effect.provide(Layer.mergeAll(Redis.clientWithPrefix(prefix), Database.projectionStoresIn(schema))))
    },
    60_000
  )

  it.live(
    "a consumer killed between its commit and its XACK: another consumer claims the entry, applied once",
    () => {
      const prefix = Redis.unique("kill")
      const key = `${prefix}:Transfer`
      const schema = Database.uniqueSchema("rediskill")
      return Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        yield* sql`CREATE TABLE ${sql(schema)}.applied (n serial PRIMARY KEY, event_id text NOT NULL)`
        const real = yield* PgInboxStore.make({ schema })
        const committed = yield* Deferred.make<string>()
        // the first commit (of one message or of a batch) goes through, then the process hangs before its XACK,
        // and is killed there
        const hanging = Inbox.InboxStore.of({
          ...real,
          apply: (inbox, id, work) =>
            Effect.flatMap(real.apply(inbox, id, work), () =>
              Effect.andThen(Deferred.succeed(committed, id), Effect.never)
            ),
          applyAll: (inbox, messages) =>
            Effect.flatMap(real.applyAll(inbox, messages), () =>
              Effect.andThen(Deferred.succeed(committed, messages[0]!.messageId), Effect.never)
            )
        })
        const inbox = Inbox.make({
          name: "risk",
          handle: (event) =>
            sql`INSERT INTO ${sql(schema)}.applied (event_id) VALUES (${event.eventId})`.pipe(Effect.asVoid)
        })
        const options = { key, group: "risk", block: "100 millis", claimIdle: "300 millis" } as const
        const publisher = yield* RedisPublisher.make({ key: RedisPublisher.streamKey(prefix) })
        for (let i = 0; i < 10; i++) yield* append(`Transfer-${i}`, "Sent", { i })
        yield* Relay.run(Relay.make({ name: "to-risk", publisher }), { untilCaughtUp: true })

        const first = yield* Effect.forkChild(
          RedisInbox.run(inbox, { ...options, consumer: "a" }).pipe(Effect.provideService(Inbox.InboxStore, hanging))
        )
        const killedAt = yield* Deferred.await(committed)
        yield* Fiber.interrupt(first)
        const pending = yield* redisCall((connection) => connection.xPending(key, "risk"))
        assert.strictEqual(pending.pending, 10) // consumer a read all ten, acknowledged none
        const second = yield* Effect.forkChild(
          RedisInbox.run(inbox, { ...options, consumer: "b" }).pipe(Effect.provideService(Inbox.InboxStore, real))
        )
        yield* eventually(
          Effect.map(
            redisCall((connection) => connection.xPending(key, "risk")),
            (p) => p.pending === 0
          ),
          "10 seconds"
        )
        yield* Fiber.interrupt(second)
        const rows = yield* sql<{ event_id: string }>`SELECT event_id FROM ${sql(schema)}.applied ORDER BY n`
        assert.strictEqual(rows.length, 10)
        assert.strictEqual(new Set(rows.map((r) => r.event_id)).size, 10)
        assert.strictEqual(rows[0]!.event_id, killedAt)
      }).pipe(Effect.provide(Layer.mergeAll(Redis.clientWithPrefix(prefix), Database.projectionStoresIn(schema))))
    },
    60_000
  )
})
