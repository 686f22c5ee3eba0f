/**
 * Two relay processes of one name (fixtures/relayProcess.ts, real Node processes) on one PostgreSQL log and
 * checkpoint store (PgEventStore, PgCheckpointStore), publishing to NATS JetStream while a writer appends. Each
 * process publishes under a subject prefix of its own, so the stream tells which process published what.
 *
 * - only the lease holder publishes: for seconds the lease stays with one process, the other runs and stands by, and
 *   every message of the stream up to the kill is the holder's;
 * - SIGKILL the holder: the standby takes the lease once it expired (not before: at least two thirds of the TTL
 *   after the kill, when the last renewal was at most a third of it earlier) and within the TTL plus one standby
 *   poll (a third of it) and a margin for the processes;
 * - the consumer sees every appended event (compared with the log), and the first delivery of each event comes in
 *   per-stream order; after the kill only the standby's messages follow.
 *
 * Needs the broker (skipped with one line without it; under CI=true it fails).
 */
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import { EventStore, Relay } from "@facta/core"
import { Effect, Fiber, Layer, Option, Schedule, Stream } from "effect"
import * as Database from "../support/database.ts"
import { killNow, spawnNode } from "../support/faults.ts"
import { appendForever } from "./support/log.ts"
import * as Nats from "./support/nats.ts"

const available = await Nats.natsAvailable()
const script = fileURLToPath(new URL("./fixtures/relayProcess.ts", import.meta.url))
const ttl = 2000
const relayName = "pair"

describe.skipIf(!available)("Two relay processes of one name on PostgreSQL and NATS", () => {
  it.live(
    "only the lease holder publishes; SIGKILLed, the standby takes over within the lease TTL, and no event is lost",
    () => {
      const schema = Database.uniqueSchema("relaytwo")
      const name = Nats.unique("TWO")
      const prefix = Nats.unique("t")
      return Effect.gen(function* () {
        const store = yield* EventStore.EventStore
        const writing = yield* Effect.forkChild(appendForever("10 millis"))
        const spawn = (tag: string) =>
          spawnNode(script, {
            FACTA_RELAY_URL: Database.databaseUrl(),
            FACTA_RELAY_SCHEMA: schema,
            FACTA_RELAY_NATS: Nats.natsUrl,
            FACTA_RELAY_PREFIX: `${prefix}.${tag}`,
            FACTA_RELAY_NAME: relayName,
            FACTA_RELAY_LEASE_TTL: `${ttl} millis`
          })
        const processes = { a: yield* spawn("a"), b: yield* spawn("b") }
        const relay = { name: relayName } as Relay.Relay
        /** Which process the lease names now ("a", "b"), if any. */
        const leaseHolder = Effect.map(Relay.status(relay), (status) => {
          if (Option.isNone(status) || Option.isNone(status.value.owner)) return undefined
          const pid = Number(/^relay-(\d+)\//.exec(status.value.owner.value)?.[1])
          return pid === processes.a.child.pid ? "a" : pid === processes.b.child.pid ? "b" : "another"
        })
        const first = yield* leaseHolder.pipe(
          Effect.repeat({ schedule: Schedule.spaced("20 millis"), until: (holder) => holder !== undefined }),
          Effect.timeout("20 seconds")
        )
        assert.oneOf(first, ["a", "b"])
        const standbyTag = first === "a" ? "b" : "a"
        const holder = processes[first as "a" | "b"]
        const standby = processes[standbyTag]

        // 4 seconds (both processes are up within them): the lease stays with the first holder
        const holders = new Set<string | undefined>()
        yield* leaseHolder.pipe(
          Effect.tap((h) => Effect.sync(() => holders.add(h))),
          Effect.repeat({ schedule: Schedule.spaced("50 millis"), times: 80 })
        )
        assert.deepStrictEqual([...holders], [first], "the lease holders seen before the kill")
        assert.isNull(standby.child.exitCode, `the standby is running: ${standby.output.join("")}`)
        const beforeKill = yield* Nats.readStream(name)
        assert.isAbove(beforeKill.length, 0, "the holder published before the kill")
        for (const m of beforeKill) assert.isTrue(m.subject.startsWith(`${prefix}.${first}.`), m.subject)

        yield* Effect.promise(() => killNow(holder.child))
        const killedAt = Date.now()
        yield* leaseHolder.pipe(
          Effect.repeat({ schedule: Schedule.spaced("10 millis"), until: (h) => h === standbyTag }),
          Effect.timeout("15 seconds")
        )
        const takeover = Date.now() - killedAt
        assert.isAtLeast(takeover, (2 * ttl) / 3 - 200, "the standby waited for the lease to expire")
        assert.isAtMost(takeover, ttl + ttl / 3 + 1000, "the standby took over within the TTL and one poll")

        yield* Effect.sleep("2 seconds")
        yield* Fiber.interrupt(writing)
        const log = Array.from(yield* Stream.runCollect(store.readAll()))
        const distinct = Effect.map(Nats.readStream(name), (messages) => new Set(messages.map((m) => m.body.eventId)))
        yield* distinct.pipe(
          Effect.repeat({ schedule: Schedule.spaced("200 millis"), until: (ids) => ids.size >= log.length }),
          Effect.timeout("20 seconds")
        )
        const messages = yield* Nats.readStream(name)
        assert.deepStrictEqual(
          [...new Set(messages.map((m) => m.body.eventId))].sort(),
          log.map((e) => e.eventId as string).sort(),
          "the stream holds every appended event"
        )
        // the first delivery of each event, in the stream's order, comes in per-stream order
        const seen = new Set<string>()
        const versions = new Map<string, Array<number>>()
        for (const m of messages) {
          if (seen.has(m.body.eventId)) continue
          seen.add(m.body.eventId)
          versions.set(m.body.streamId, [...(versions.get(m.body.streamId) ?? []), m.body.version])
        }
        for (const [streamId, list] of versions)
          assert.deepStrictEqual(
            list,
            list.map((_, i) => i + 1),
            streamId
          )
        // one publisher at a time: the killed holder's messages, then only the standby's
        const lastOfHolder = messages.findLastIndex((m) => m.subject.startsWith(`${prefix}.${first}.`))
        const firstOfStandby = messages.findIndex((m) => m.subject.startsWith(`${prefix}.${standbyTag}.`))
        assert.isAtLeast(firstOfStandby, 0, "the standby published after the kill")
        assert.isAbove(firstOfStandby, lastOfHolder, "no message of the standby before the holder's last")
        console.log(
          `relay pair: takeover ${takeover} ms after the kill (lease TTL ${ttl} ms); ${log.length} events appended, ` +
            `${lastOfHolder + 1} published by the first holder, ${messages.length - lastOfHolder - 1} by the standby, ` +
            `${messages.length - seen.size} duplicates past the broker's de-duplication`
        )
      }).pipe(
        Effect.provide(
          Layer.mergeAll(
            Nats.stream(name, prefix).pipe(Layer.provideMerge(Nats.client())),
            Database.projectionStoresIn(schema)
          )
        )
      )
    },
    60_000
  )
})
