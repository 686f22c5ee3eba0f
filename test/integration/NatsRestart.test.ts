/**
 * The broker restarts mid-stream: a nats-server of the test's own (never the shared one) is killed (SIGKILL) while
 * writers append and the relay publishes, and started again on the same port and store. The relay waits the outage
 * out and nothing is lost: the stream ends up with every event of the log, once. Skipped with one line when
 * `/usr/sbin/nats-server` is missing (under CI=true it fails).
 */
import { assert, describe, it } from "@effect/vitest"
import { CheckpointStore, EventStore, Relay } from "@facta/core"
import { NatsClient, NatsPublisher, NatsStream } from "@facta/nats"
import { Effect, Fiber, Layer, Option, Schedule } from "effect"
import * as BrokerProcess from "./support/brokerProcess.ts"
import * as Nats from "./support/nats.ts"

const nats: BrokerProcess.Server = {
  name: "nats-server",
  binary: process.env.NATS_SERVER_BIN ?? "/usr/sbin/nats-server",
  args: (port, dir) => ["-js", "-a", "127.0.0.1", "-p", String(port), "-sd", dir],
  ready: (greeting) => greeting.startsWith("INFO")
}
const installed = BrokerProcess.installed(nats.binary, "the broker restart test")

describe.skipIf(!installed)("Relay across a broker restart", () => {
  it.live(
    "loses nothing when the broker is killed and started again mid-stream",
    () =>
      Effect.gen(function* () {
        const server = yield* BrokerProcess.own(nats)
        const servers = `127.0.0.1:${server.port}`
        const run = Effect.gen(function* () {
          yield* NatsStream.ensure({ name: "RESTART", subjects: ["facta.>"] })
          const publisher = yield* NatsPublisher.make()
          const relay = Relay.make({ name: "restart", publisher })
          const relaying = yield* Effect.forkChild(Relay.run(relay, { pollInterval: "50 millis" }))
          const total = (yield* BrokerProcess.appendAcrossRestart(server)).length
          assert.strictEqual(total, 200)
          const nats = yield* NatsClient.NatsClient
          // the server answers JetStream requests a moment after it accepts connections: a failed request is retried
          yield* Effect.tryPromise(() => nats.manager.streams.info("RESTART")).pipe(
            Effect.map((info) => info.state.messages),
            Effect.retry(Schedule.spaced("100 millis")),
            Effect.repeat({ schedule: Schedule.spaced("100 millis"), until: (n) => n >= total }),
            Effect.timeout("30 seconds")
          )
          const messages = yield* Nats.readStream("RESTART")
          assert.strictEqual(messages.length, total)
          assert.strictEqual(new Set(messages.map((m) => m.body.eventId)).size, total)
          const status = yield* Relay.status(relay)
          assert.isTrue(Option.isSome(status))
          yield* Fiber.interrupt(relaying)
        })
        yield* run.pipe(
          Effect.provide(
            Layer.mergeAll(
              Nats.client(servers),
              Layer.fresh(EventStore.layerMemory),
              Layer.fresh(CheckpointStore.layerMemory)
            )
          )
        )
      }),
    60_000
  )
})
