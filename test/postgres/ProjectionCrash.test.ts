import { type ChildProcess, spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { assert, layer } from "@effect/vitest"
import { CheckpointStore, Position, Projection } from "@facta/core"
import { Cause, Effect, Exit, Fiber, References, Schedule } from "effect"
import { SqlClient } from "effect/sql"
import { assertExactlyOnce } from "../support/assertions.ts"
import * as Database from "../support/database.ts"
import {
  compareWithLog,
  countingProjection,
  createReadModel,
  eventually,
  holds,
  type ReadModel,
  randomInt,
  readModelRows,
  startWriter,
  unheld
} from "../support/projection.ts"

// A SQL read model fed by a projection whose process dies at random points while a writer appends: interrupted
// fibers in this process, then child processes killed with SIGKILL. Whatever the timing, the read model must end
// equal to a fold of the log from scratch: every event counted exactly once.

const schema = Database.uniqueSchema("projcrash")
const Live = Database.projectionStoresIn(schema, { maxConnections: 8 })
const quiet = Effect.provideService(References.MinimumLogLevel, "Warn")

/** Runs the projection to the end of the log with a fresh owner (after the dead holder's lease expired). */
/**
 * Runs the projection to the end of the log until it has passed `last`, the writer's last acknowledged position (the
 * log's end can hide the writer's last events for a moment behind another test file's open transaction).
 */
const catchUp = (model: ReadModel, name: string, category: string, last: Position.Position) =>
  Projection.run(countingProjection({ model, name, category, handledBy: "final" }), {
    owner: "final",
    leaseTtl: "1 second",
    untilCaughtUp: true
  }).pipe(
    Effect.andThen(CheckpointStore.CheckpointStore.use((store) => store.status(name))),
    Effect.repeat({
      until: (rows) => rows.length > 0 && rows.every((row) => !Position.isBefore(row.checkpoint, last)),
      schedule: Schedule.spaced("100 millis")
    }),
    Effect.timeout("20 seconds")
  )

const workerScript = fileURLToPath(new URL("./fixtures/projectionWorker.ts", import.meta.url))

/** A projection child process; killed (SIGKILL) when the test's scope closes, if still alive. */
const spawnWorker = (env: Record<string, string>) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const child = spawn(process.execPath, ["--conditions=@facta/source", workerScript], {
        env: { PATH: process.env.PATH ?? "", ...env },
        stdio: ["ignore", "ignore", "pipe"]
      })
      const stderr: Array<string> = []
      child.stderr?.on("data", (chunk: Buffer) => stderr.push(chunk.toString()))
      return { child, stderr }
    }),
    ({ child }) => Effect.promise(() => killNow(child))
  )

const killNow = (child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> =>
  new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve({ code: child.exitCode, signal: child.signalCode })
      return
    }
    child.once("exit", (code, signal) => resolve({ code, signal }))
    child.kill("SIGKILL")
  })

layer(Live, { timeout: 60_000, excludeTestServices: true })("Projection crash safety on PostgreSQL", (it) => {
  it.effect(
    "a projection fiber interrupted at random points and restarted counts every event exactly once",
    () =>
      Effect.gen(function* () {
        const model: ReadModel = { schema, prefix: "interrupted" }
        const name = "interrupted"
        const category = "Interrupted"
        yield* createReadModel(model)
        const appending = yield* startWriter(category, { pauseMillis: 5 })
        yield* Effect.sleep("100 millis")

        // Every third round is interrupted at once (while it takes its lease or starts reading: an interruption
        // during `acquire` may leave the lease taken until it expires); the others once they hold the lease, after
        // a random delay, in the middle of the stream of batches.
        const rounds = 12
        const handledPerRound: Array<number> = []
        for (let round = 0; round < rounds; round++) {
          const owner = `round-${round}`
          const projection = countingProjection({ model, name, category, handledBy: owner })
          const fiber = yield* Effect.forkChild(
            Projection.run(projection, {
              owner,
              leaseTtl: "1 second",
              batchSize: 10,
              batchWindow: "5 millis",
              pollInterval: "50 millis"
            })
          )
          if (round % 3 === 0) {
            yield* Effect.sleep(randomInt(0, 5))
          } else {
            yield* eventually(`${owner} to take the lease`, holds(name, owner), 5_000)
            yield* Effect.sleep(randomInt(0, 250))
          }
          yield* Fiber.interrupt(fiber)
          const exit = yield* Fiber.await(fiber)
          assert.isTrue(Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause), `round ${round} only interrupted`)
          const { seen } = yield* readModelRows(model)
          handledPerRound.push(seen.filter((row) => row.handled_by === owner).length)
        }
        const last = yield* appending.stop

        const midStream = handledPerRound.filter((_, round) => round % 3 !== 0)
        assert.isAtLeast(
          midStream.filter((n) => n > 0).length,
          2,
          `rounds were interrupted after doing work (handled per round: ${handledPerRound.join(", ")})`
        )
        const before = yield* compareWithLog(model, category)
        assert.isBelow(before.seenSize, before.logSize, "the interrupted rounds left work to catch up on")
        assert.deepStrictEqual(before.duplicates, [], "no event handled twice so far")
        // no interrupted instance keeps renewing a lease in the background
        yield* eventually("the last interrupted round's lease to be gone", unheld(name), 1_500)

        yield* catchUp(model, name, category, last)
        yield* assertExactlyOnce(model, category)
      }).pipe(quiet),
    30_000
  )

  it.effect(
    "child processes killed with SIGKILL at random points, each replaced by a new one, count every event once",
    () =>
      Effect.gen(function* () {
        const model: ReadModel = { schema, prefix: "killed" }
        const name = "killed"
        const category = "Killed"
        yield* createReadModel(model)
        const sql = yield* SqlClient.SqlClient
        const appending = yield* startWriter(category, { pauseMillis: 5 })
        const worker = (owner: string, slowMillis: number) =>
          spawnWorker({
            FACTA_WORKER_URL: Database.databaseUrl(),
            FACTA_WORKER_SCHEMA: schema,
            FACTA_WORKER_PREFIX: model.prefix,
            FACTA_WORKER_NAME: name,
            FACTA_WORKER_CATEGORY: category,
            FACTA_WORKER_OWNER: owner,
            FACTA_WORKER_SLOW_MS: String(slowMillis)
          })
        const kill = Effect.fnUntraced(function* (
          owner: string,
          spawned: { readonly child: ChildProcess; readonly stderr: ReadonlyArray<string> }
        ) {
          const exit = yield* Effect.promise(() => killNow(spawned.child))
          assert.deepStrictEqual(
            exit,
            { code: null, signal: "SIGKILL" },
            `${owner} was still running when killed: ${spawned.stderr.join("")}`
          )
        })

        // Round 0, deterministic: the child is killed inside a batch's transaction, after its handler wrote the
        // batch's rows (it sleeps 1.5 s in pg_sleep before the commit). Those rows must never commit.
        const first = yield* worker("child-0", 1500)
        yield* eventually("child-0 to take the lease", holds(name, "child-0"), 10_000)
        yield* eventually(
          "child-0 to sleep inside a batch's transaction",
          Effect.map(
            sql<{ n: bigint }>`SELECT count(*) AS n FROM pg_stat_activity
              WHERE application_name = 'child-0' AND state = 'active' AND query LIKE '%pg_sleep%'`,
            ([row]) => row!.n > 0n
          ),
          10_000
        )
        yield* kill("child-0", first)

        // Rounds 1..4: killed at random points while batches stream through; in odd rounds at any point once the
        // child holds the lease (maybe before its first commit), in even rounds once it has committed a batch
        const randomRounds = 4
        for (let round = 1; round <= randomRounds; round++) {
          const owner = `child-${round}`
          const spawned = yield* worker(owner, 10)
          yield* eventually(`${owner} to take the lease`, holds(name, owner), 10_000)
          if (round % 2 === 0) {
            yield* eventually(
              `${owner} to commit a batch`,
              Effect.map(readModelRows(model), ({ seen }) => seen.some((row) => row.handled_by === owner)),
              10_000
            )
            yield* Effect.sleep(randomInt(0, 300))
          } else {
            yield* Effect.sleep(randomInt(30, 600))
          }
          yield* kill(owner, spawned)
        }
        const last = yield* appending.stop

        const { seen: beforeCatchUp } = yield* readModelRows(model)
        assert.strictEqual(
          beforeCatchUp.filter((row) => row.handled_by === "child-0").length,
          0,
          "the batch child-0 was killed in the middle of left nothing behind"
        )
        const workersThatHandled = new Set(beforeCatchUp.map((row) => row.handled_by))
        assert.isTrue(workersThatHandled.has("child-2") && workersThatHandled.has("child-4"), "killed while working")

        yield* catchUp(model, name, category, last)
        yield* assertExactlyOnce(model, category)
      }).pipe(quiet),
    30_000
  )
})
