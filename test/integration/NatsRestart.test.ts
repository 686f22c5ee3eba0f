/**
 * The broker restarts mid-stream: a nats-server of the test's own (never the shared one) is killed (SIGKILL) while
 * writers append and the relay publishes, and started again on the same port and store. The relay waits the outage
 * out and nothing is lost: the stream ends up with every event of the log, once. Skipped with one line when
 * `/usr/sbin/nats-server` is missing (under CI=true it fails).
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { CheckpointStore, Event, EventStore, Relay } from "@facta/core"
import { NatsClient, NatsPublisher, NatsStream } from "@facta/nats"
import { Effect, Fiber, Layer, Option, Schedule, Stream } from "effect"
import * as Nats from "./support/nats.ts"

const binary = process.env.NATS_SERVER_BIN ?? "/usr/sbin/nats-server"
const installed = fs.existsSync(binary)
if (!installed) {
  const line = `${binary} is missing: the broker restart test is skipped`
  if (process.env.CI === "true") throw new Error(`${line} (CI=true requires it)`)
  console.log(line)
}

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port
      server.close(() => resolve(port))
    })
  })

/** Starts the server and waits until it accepts connections. */
const start = async (port: number, dir: string): Promise<ChildProcess> => {
  const child = spawn(binary, ["-js", "-a", "127.0.0.1", "-p", String(port), "-sd", dir], { stdio: "ignore" })
  for (let i = 0; i < 100; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host: "127.0.0.1", port })
      socket.once("data", () => {
        socket.destroy()
        resolve(true)
      })
      socket.once("error", () => resolve(false))
    })
    if (up) return child
    await new Promise((r) => setTimeout(r, 50))
  }
  child.kill("SIGKILL")
  throw new Error(`nats-server did not start on ${port}`)
}

const kill = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null) return resolve()
    child.once("exit", () => resolve())
    child.kill("SIGKILL")
  })

describe.skipIf(!installed)("Relay across a broker restart", () => {
  it.live(
    "loses nothing when the broker is killed and started again mid-stream",
    () =>
      Effect.gen(function* () {
        const port = yield* Effect.promise(freePort)
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "facta-nats-"))
        let server: ChildProcess = yield* Effect.promise(() => start(port, dir))
        yield* Effect.addFinalizer(() =>
          Effect.promise(() => kill(server).then(() => fs.rmSync(dir, { recursive: true, force: true })))
        )
        const servers = `127.0.0.1:${port}`
        const run = Effect.gen(function* () {
          yield* NatsStream.ensure({ name: "RESTART", subjects: ["facta.>"] })
          const publisher = yield* NatsPublisher.make()
          const relay = Relay.make({ name: "restart", publisher })
          const relaying = yield* Effect.forkChild(Relay.run(relay, { pollInterval: "50 millis" }))
          const store = yield* EventStore.EventStore
          const write = (n: number) =>
            Effect.forEach(
              Array.from({ length: n }, (_, i) => i),
              (i) =>
                store.append(`Account-${i % 5}`, [
                  { eventId: Event.makeEventIdUnsafe(), type: "Deposited", schemaVersion: 1, data: { i } }
                ]),
              { discard: true }
            )
          const writing = yield* Effect.forkChild(
            Effect.repeat(Effect.andThen(write(5), Effect.sleep("20 millis")), { times: 39 })
          )
          yield* Effect.sleep("300 millis")
          yield* Effect.promise(() => kill(server))
          yield* Effect.sleep("1 second")
          server = yield* Effect.promise(() => start(port, dir))
          yield* Fiber.join(writing)
          const total = Array.from(yield* Stream.runCollect(store.readAll())).length
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
