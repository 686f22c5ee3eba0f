/**
 * The broker restarts mid-stream: a redis-server of the test's own (never the shared one; append-only file, fsync on
 * every write) is killed (SIGKILL) while writers append, the relay publishes and an inbox consumes, and started again
 * on the same port and directory. The relay and the inbox wait the outage out and nothing is lost: the stream ends up
 * with every event of the log (at least once: Redis does not de-duplicate), and the inbox applies each exactly once.
 * Skipped with one line when `/usr/bin/redis-server` is missing (under CI=true it fails).
 */
import { assert, describe, it } from "@effect/vitest"
import { CheckpointStore, EventStore, Inbox, Relay } from "@facta/core"
import { PgInboxStore } from "@facta/postgres"
import { RedisClient, RedisInbox, RedisPublisher } from "@facta/redis"
import { Effect, Fiber, Layer, Schedule } from "effect"
import { SqlClient } from "effect/sql"
import * as Database from "../support/database.ts"
import * as BrokerProcess from "./support/brokerProcess.ts"
import * as Redis from "./support/redis.ts"

const redis: BrokerProcess.Server = {
  name: "redis-server",
  binary: process.env.REDIS_SERVER_BIN ?? "/usr/bin/redis-server",
  args: (port, dir) => [
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--dir",
    dir,
    "--appendonly",
    "yes",
    "--appendfsync",
    "always",
    "--save",
    "",
    "--protected-mode",
    "no"
  ],
  hello: "PING\r\n",
  ready: (greeting) => greeting.startsWith("+PONG")
}
const installed = BrokerProcess.installed(redis.binary, "the broker restart test")

describe.skipIf(!installed)("Relay and inbox across a Redis restart", () => {
  it.live(
    "lose nothing when the broker is killed and started again mid-stream",
    () =>
      Effect.gen(function* () {
        const server = yield* BrokerProcess.own(redis)
        const schema = Database.uniqueSchema("redisrestart")
        const key = "facta:Account"
        const run = Effect.gen(function* () {
          const sql = yield* SqlClient.SqlClient
          yield* sql`CREATE TABLE ${sql(schema)}.applied (n serial PRIMARY KEY, event_id text NOT NULL)`
          const inbox = Inbox.make({
            name: "restart",
            handle: (event) =>
              sql`INSERT INTO ${sql(schema)}.applied (event_id) VALUES (${event.eventId})`.pipe(Effect.asVoid)
          })
          const consuming = yield* Effect.forkChild(
            RedisInbox.run(inbox, { key, group: "restart", consumer: "c1", block: "100 millis" }).pipe(
              Effect.provide(PgInboxStore.layer({ schema }))
            )
          )
          const publisher = yield* RedisPublisher.make()
          const relay = Relay.make({ name: "restart", publisher })
          const relaying = yield* Effect.forkChild(Relay.run(relay, { pollInterval: "50 millis" }))
          const logged = yield* BrokerProcess.appendAcrossRestart(server)
          assert.strictEqual(logged.length, 200)
          const count = sql<{ n: number }>`SELECT count(*)::int AS n FROM ${sql(schema)}.applied`.pipe(
            Effect.map((rows) => rows[0]!.n)
          )
          yield* count.pipe(
            Effect.repeat({ schedule: Schedule.spaced("100 millis"), until: (n) => n >= logged.length }),
            Effect.timeout("30 seconds")
          )
          const entries = yield* Redis.readStream(key)
          // at least once: every event of the log is in the stream
          assert.deepStrictEqual([...new Set(entries.map((e) => e.fields.eventId))].sort(), [...logged].sort())
          // exactly once in the inbox
          const rows = yield* sql<{ event_id: string }>`SELECT event_id FROM ${sql(schema)}.applied`
          assert.strictEqual(rows.length, logged.length)
          assert.deepStrictEqual(rows.map((r) => r.event_id).sort(), [...logged].sort())
          yield* Fiber.interrupt(relaying)
          yield* Fiber.interrupt(consuming)
        })
        yield* run.pipe(
          Effect.provide(
            Layer.mergeAll(
              RedisClient.layer({ url: `redis://127.0.0.1:${server.port}`, name: "facta-restart-test" }),
              Layer.fresh(EventStore.layerMemory),
              Layer.fresh(CheckpointStore.layerMemory),
              Layer.mergeAll(
                Layer.effectDiscard(
                  SqlClient.SqlClient.use((sql) => sql.unsafe(`CREATE SCHEMA IF NOT EXISTS ${schema}`))
                ),
                Database.dropSchemaOnRelease(schema)
              ).pipe(Layer.provideMerge(Database.client()))
            )
          )
        )
      }),
    60_000
  )
})
