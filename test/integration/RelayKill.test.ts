/**
 * The relay process is killed with SIGKILL 20 times while a writer appends: three relay processes run at any time
 * (a holder and two standbys); each round waits until a process holds the lease, lets it publish for a random 0-300 ms, kills
 * it (the standby takes over once the lease expires, 500 ms) and starts a new one in its place. Afterwards the broker holds every event of the log (at least once; JetStream's duplicate window drops
 * what a killed holder had published before its checkpoint moved), and an inbox applies each exactly once, in order
 * per stream, compared with the log. Needs the broker (skipped with one line without it; under CI=true it fails).
 */
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import { EventStore, Inbox, Relay } from "@facta/core"
import { NatsInbox } from "@facta/nats"
import { PgInboxStore } from "@facta/postgres"
import { Effect, Fiber, Layer, Option, Schedule, Stream } from "effect"
import { SqlClient } from "effect/sql"
import * as Database from "../support/database.ts"
import { type Child, killNow, spawnNode } from "../support/faults.ts"
import { appendForever } from "./support/log.ts"
import * as Nats from "./support/nats.ts"

const available = await Nats.natsAvailable()
const script = fileURLToPath(new URL("./fixtures/relayProcess.ts", import.meta.url))

describe.skipIf(!available)("Relay process killed with SIGKILL", () => {
  it.live(
    "20 kills while a writer appends: every event reaches the broker, and the inbox applies each exactly once",
    () => {
      const schema = Database.uniqueSchema("relaykill")
      const name = Nats.unique("KILL")
      const prefix = Nats.unique("t")
      return Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const writing = yield* Effect.forkChild(appendForever("5 millis"))
        const spawn = () =>
          spawnNode(script, {
            FACTA_RELAY_URL: Database.databaseUrl(),
            FACTA_RELAY_SCHEMA: schema,
            FACTA_RELAY_NATS: Nats.natsUrl,
            FACTA_RELAY_PREFIX: prefix
          })
        // a holder and two standbys: a standby has started (a second or two for Node) by the time it is needed
        const children: Array<Child> = [yield* spawn(), yield* spawn(), yield* spawn()]
        const relay = { name: "killed" } as Relay.Relay
        /** The child whose lease is live, once there is one. */
        const holder = Effect.map(Relay.status(relay), (status) => {
          if (Option.isNone(status) || Option.isNone(status.value.owner)) return -1
          const pid = Number(/^relay-(\d+)\//.exec(status.value.owner.value)?.[1])
          return children.findIndex(
            (c) => c.child.pid === pid && c.child.exitCode === null && c.child.signalCode === null
          )
        })
        let kills = 0
        let roundStarted = Date.now()
        /** From each kill to the next holder's lease (the first: from the start of the processes). */
        const failovers: Array<number> = []
        while (kills < 20) {
          const victim = yield* holder.pipe(
            Effect.repeat({ schedule: Schedule.spaced("20 millis"), until: (i) => i >= 0 }),
            Effect.timeout("20 seconds")
          )
          failovers.push(Date.now() - roundStarted)
          yield* Effect.sleep(Math.floor(Math.random() * 300))
          yield* Effect.promise(() => killNow(children[victim]!.child))
          roundStarted = Date.now()
          kills++
          children[victim] = yield* spawn()
        }
        yield* Fiber.interrupt(writing)
        const log = Array.from(yield* Stream.runCollect(store.readAll()))
        const published = (n: number) => n >= log.length
        const started = Date.now()
        yield* Nats.messageCount(name).pipe(
          Effect.repeat({ schedule: Schedule.spaced("100 millis"), until: published }),
          Effect.timeout("30 seconds")
        )
        const caughtUp = Date.now() - started
        for (const { child } of children) yield* Effect.promise(() => killNow(child))
        const messages = yield* Nats.readStream(name)
        const ids = messages.map((m) => m.body.eventId)
        assert.deepStrictEqual([...new Set(ids)].sort(), log.map((e) => e.eventId as string).sort())
        console.log(
          `relay kill: ${kills} kills, ${log.length} events appended, ${messages.length} messages in the stream ` +
            `(${messages.length - new Set(ids).size} duplicates past the broker's de-duplication); ` +
            `the relays caught up ${caughtUp} ms after the writer stopped; kill to next holder (ms): ` +
            `median ${[...failovers.slice(1)].sort((a, b) => a - b)[Math.floor((failovers.length - 1) / 2)]}, ` +
            `max ${Math.max(...failovers.slice(1))}`
        )

        // the inbox applies each message once, in order per stream
        const sql = yield* SqlClient.SqlClient
        yield* sql`CREATE TABLE ${sql(schema)}.applied (n serial PRIMARY KEY, event_id text NOT NULL, stream_id text NOT NULL, version int NOT NULL)`
        const inbox = Inbox.make({
          name: "killed",
          handle: (event) =>
            sql`INSERT INTO ${sql(schema)}.applied (event_id, stream_id, version)
                VALUES (${event.eventId}, ${event.streamId}, ${event.version})`.pipe(Effect.asVoid)
        })
        const consumer = yield* Effect.forkChild(
          NatsInbox.run(inbox, { stream: name, durable: "killed" }).pipe(Effect.provide(PgInboxStore.layer({ schema })))
        )
        const count = sql<{ n: number }>`SELECT count(*)::int AS n FROM ${sql(schema)}.applied`.pipe(
          Effect.map((rows) => rows[0]!.n)
        )
        yield* count.pipe(
          Effect.repeat({ schedule: Schedule.spaced("100 millis"), until: (n) => n >= log.length }),
          Effect.timeout("20 seconds")
        )
        yield* Fiber.interrupt(consumer)
        const rows = yield* sql<{ event_id: string; stream_id: string; version: number }>`
          SELECT event_id, stream_id, version FROM ${sql(schema)}.applied ORDER BY n`
        assert.strictEqual(rows.length, log.length)
        assert.strictEqual(new Set(rows.map((r) => r.event_id)).size, log.length)
        for (let s = 0; s < 8; s++) {
          const versions = rows.filter((r) => r.stream_id === `Account-${s}`).map((r) => r.version)
          assert.deepStrictEqual(
            versions,
            versions.map((_, i) => i + 1)
          )
        }
      }).pipe(
        Effect.provide(
          Layer.mergeAll(
            Nats.stream(name, prefix).pipe(Layer.provideMerge(Nats.client())),
            Database.projectionStoresIn(schema)
          )
        )
      )
    },
    90_000
  )
})
