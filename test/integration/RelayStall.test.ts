/**
 * The database stalls under a running relay: a PostgreSQL server of the test's own stops answering (SIGSTOP to the
 * postmaster and its processes, no socket closed) for longer than the stores' deadlines, while the relay publishes to
 * NATS. The relay's reads and checkpoint commits fail retryably once their deadlines pass; it waits the stall out and
 * resumes by itself once the server runs again (SIGCONT): the broker ends up with every event of the log, once.
 * Needs the broker (skipped with one line without it; under CI=true it fails).
 */
import { assert, describe, it } from "@effect/vitest"
import { Event, EventStore, Relay } from "@facta/core"
import { NatsPublisher } from "@facta/nats"
import { Effect, Fiber, Layer, Option, References, Schedule, Stream } from "effect"
import { ownServer, storesOn } from "../support/faults.ts"
import * as Nats from "./support/nats.ts"

const available = await Nats.natsAvailable()

describe.skipIf(!available)("Relay under a database stall", () => {
  it.live(
    "waits a 3 s stall out and resumes by itself: every event published once",
    () => {
      const name = Nats.unique("STALL")
      const prefix = Nats.unique("t")
      return Effect.gen(function* () {
        const server = yield* ownServer
        const deadlines = { read: 1_000, append: 1_000, control: 1_000, commit: 1_000 }
        const run = Effect.gen(function* () {
          const store = yield* EventStore.EventStore
          const write = (n: number, from: number) =>
            Effect.forEach(
              Array.from({ length: n }, (_, i) => from + i),
              (i) =>
                Effect.suspend(() =>
                  store.append(`Account-${i % 4}`, [
                    { eventId: Event.makeEventIdUnsafe(), type: "Deposited", schemaVersion: 1, data: { i } }
                  ])
                ),
              { discard: true }
            )
          const publisher = yield* NatsPublisher.make({ subject: NatsPublisher.subject(prefix) })
          const relay = Relay.make({ name: "stalled", publisher })
          const relaying = yield* Effect.forkChild(
            Relay.run(relay, { pollInterval: "50 millis", leaseTtl: "10 seconds" }).pipe(
              Effect.provideService(References.MinimumLogLevel, "Error")
            )
          )
          yield* write(20, 0)
          yield* Nats.messageCount(name).pipe(
            Effect.repeat({ schedule: Schedule.spaced("50 millis"), until: (n) => n >= 20 }),
            Effect.timeout("15 seconds")
          )
          yield* server.stall
          yield* Effect.sleep("3 seconds")
          yield* server.resume
          const resumed = Date.now()
          yield* write(20, 20)
          yield* Nats.messageCount(name).pipe(
            Effect.repeat({ schedule: Schedule.spaced("50 millis"), until: (n) => n >= 40 }),
            Effect.timeout("20 seconds")
          )
          const caughtUp = Date.now() - resumed
          const messages = yield* Nats.readStream(name)
          const log = Array.from(yield* Stream.runCollect(store.readAll()))
          assert.strictEqual(log.length, 40)
          assert.strictEqual(messages.length, 40)
          assert.deepStrictEqual(messages.map((m) => m.body.eventId).sort(), log.map((e) => e.eventId as string).sort())
          yield* Relay.status(relay).pipe(
            Effect.repeat({
              schedule: Schedule.spaced("50 millis"),
              until: (s) => Option.isSome(s) && s.value.eventsBehind === 0
            }),
            Effect.timeout("10 seconds")
          )
          console.log(`relay stall: 3 s stall, the 20 events appended after it published within ${caughtUp} ms`)
          yield* Fiber.interrupt(relaying)
        })
        yield* run.pipe(Effect.provide(storesOn(server.url, "relaystall", { deadlines, maxConnections: 4 })))
      }).pipe(Effect.provide(Nats.stream(name, prefix).pipe(Layer.provideMerge(Nats.client()))))
    },
    90_000
  )
})
