/**
 * A broker server of a test's own (never the machine's shared one), for the tests that kill and restart it: the
 * Debian binary when installed (the test is skipped with one line otherwise, and fails under CI=true), a free port, a
 * data directory, started until it answers, killed with SIGKILL, started again on the same port and directory.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { Event, EventStore } from "@facta/core"
import { Effect, Fiber, Stream } from "effect"

/** Whether `binary` is installed; says why the test is skipped when it is not (and throws under CI=true). */
export const installed = (binary: string, test: string): boolean => {
  if (fs.existsSync(binary)) return true
  const line = `${binary} is missing: ${test} is skipped`
  if (process.env.CI === "true") throw new Error(`${line} (CI=true requires it)`)
  console.log(line)
  return false
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

/** How to run one broker: its binary, its arguments for a port and a directory, and whether a socket's first answer
 * says it is up (`greeting`, after writing `hello` when set). */
export interface Server {
  readonly name: string
  readonly binary: string
  readonly args: (port: number, dir: string) => ReadonlyArray<string>
  readonly hello?: string | undefined
  readonly ready: (greeting: string) => boolean
}

const answers = (server: Server, port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port })
    if (server.hello !== undefined) socket.once("connect", () => socket.write(server.hello!))
    socket.once("data", (data) => {
      socket.destroy()
      resolve(server.ready(data.toString()))
    })
    socket.once("error", () => resolve(false))
  })

const kill = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null) return resolve()
    child.once("exit", () => resolve())
    child.kill("SIGKILL")
  })

/**
 * Starts the server on a free port with a fresh directory (both removed with the scope): its port, `kill` (SIGKILL,
 * once it exited) and `restart` (on the same port and directory, once it answers).
 */
export const own = (server: Server) =>
  Effect.gen(function* () {
    const port = yield* Effect.promise(freePort)
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `facta-${server.name}-`))
    const start = async (): Promise<ChildProcess> => {
      const child = spawn(server.binary, [...server.args(port, dir)], { stdio: "ignore" })
      for (let i = 0; i < 200; i++) {
        if (await answers(server, port)) return child
        await new Promise((r) => setTimeout(r, 50))
      }
      await kill(child)
      throw new Error(`${server.name} did not start on ${port}`)
    }
    let child = yield* Effect.promise(start)
    yield* Effect.addFinalizer(() =>
      Effect.promise(() => kill(child).then(() => fs.rmSync(dir, { recursive: true, force: true })))
    )
    return {
      port,
      kill: Effect.promise(() => kill(child)),
      restart: Effect.promise(async () => {
        child = await start()
      })
    }
  })

/**
 * Appends 200 events (40 bursts of 5 over streams `Account-0` … `Account-4`, 20 ms apart) while the server is killed
 * after 300 ms and restarted a second later: the ids of the log once every burst is in.
 */
export const appendAcrossRestart = (server: {
  readonly kill: Effect.Effect<void>
  readonly restart: Effect.Effect<void>
}) =>
  Effect.gen(function* () {
    const store = yield* EventStore.EventStore
    const burst = Effect.forEach(
      Array.from({ length: 5 }, (_, i) => i),
      (i) =>
        store.append(`Account-${i % 5}`, [
          { eventId: Event.makeEventIdUnsafe(), type: "Deposited", schemaVersion: 1, data: { i } }
        ]),
      { discard: true }
    )
    const writing = yield* Effect.forkChild(
      Effect.repeat(Effect.andThen(burst, Effect.sleep("20 millis")), { times: 39 })
    )
    yield* Effect.sleep("300 millis")
    yield* server.kill
    yield* Effect.sleep("1 second")
    yield* server.restart
    yield* Fiber.join(writing)
    return Array.from(yield* Stream.runCollect(store.readAll())).map((event) => event.eventId as string)
  })
