import { assert, describe, it } from "@effect/vitest"
import { Position } from "@facta/core"
import { Cause, Effect, Exit, Fiber, Layer, References } from "effect"
import { assertExactlyOnce } from "../support/assertions.ts"
import {
  checkpoints,
  compareAcknowledged,
  logIds,
  ownServer,
  projectionUnderLoad,
  reached,
  storesOn
} from "../support/faults.ts"
import { createReadModel, eventually, instanceLayer, type ReadModel } from "../support/projection.ts"

// The server dies (SIGKILL to the postmaster) while writers append and a projection runs, and starts again on the
// same data directory and port after crash recovery. The writers' pool and the projection's `Projection.run` fiber
// are the ones from before the crash: they must reconnect by themselves. Every acknowledged append must survive, and
// the read model must end equal to a fold of the log.

const schema = "restart"
const category = "Restart"
const downMillis = 1_000
const quiet = Effect.provideService(References.MinimumLogLevel, "Error")

describe("Faults: a server killed and restarted", () => {
  it.live(
    "acknowledged appends survive kill -9 of the postmaster; the running projection resumes by itself",
    () =>
      Effect.gen(function* () {
        const server = yield* ownServer
        const app = yield* Layer.build(
          storesOn(server.url, schema, {
            maxConnections: 10,
            deadlines: { read: "3 seconds", append: "3 seconds", control: "3 seconds", commit: "5 seconds" }
          })
        )
        const model: ReadModel = { schema, prefix: "restart" }
        yield* createReadModel(model).pipe(Effect.provideContext(app))
        const { projection, running, writers } = yield* projectionUnderLoad({
          model,
          name: "restart",
          leaseTtl: "2 seconds",
          writers: { category, writers: 4, streams: 10, pauseMillis: 10 }
        }).pipe(Effect.provideContext(app))
        yield* Effect.sleep("1500 millis")

        const before = writers.report()
        const ackedBeforeKill = before.appends
        const killedAt = Date.now()
        const processes = yield* server.crash
        const deadAt = Date.now()
        yield* Effect.sleep(downMillis)
        yield* server.restart
        const readyAt = Date.now()

        // checks through a fresh pool on the restarted server
        const check = yield* Layer.build(instanceLayer(server.url, schema, { maxConnections: 2 }))
        const [atRestart] = yield* checkpoints(projection.name).pipe(Effect.provideContext(check))
        const resumed = yield* eventually(
          "the projection to commit after the restart",
          Effect.map(checkpoints(projection.name), ([row]) =>
            Position.isBefore(atRestart!.checkpoint, row!.checkpoint)
          ),
          30_000
        ).pipe(Effect.provideContext(check))
        const projectionResumedAt = Date.now()
        // replies the old server sent before it died may still arrive after the kill: only an acknowledgement after
        // the restart is one of the new server's
        yield* eventually(
          "a writer to be acknowledged after the restart",
          Effect.sync(() => writers.report().ackTimes.some((at) => at > readyAt)),
          30_000
        )
        const firstAckAfter = writers.report().ackTimes.find((at) => at > readyAt)!

        yield* Effect.sleep("1500 millis")
        const report = yield* writers.stop
        const caughtUp = yield* eventually(
          "the projection to pass the last acknowledged append",
          reached(projection.name, report.last),
          30_000
        ).pipe(Effect.provideContext(check))
        assert.isUndefined(running.pollUnsafe(), "the same Projection.run fiber is still running (no restart)")
        yield* Fiber.interrupt(running)
        const exit = yield* Fiber.await(running)
        assert.isTrue(
          Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause),
          "the projection was only interrupted"
        )

        console.log(
          `ServerRestart: postmaster killed with ${processes} processes under it, all its processes gone ${deadAt - killedAt} ms after the kill; ` +
            `restarted on the same port ${server.port} after ${downMillis} ms down, ready ${readyAt - killedAt} ms ` +
            `after the kill; first append acknowledged ${firstAckAfter - killedAt} ms after the kill ` +
            `(${firstAckAfter - readyAt} ms after ready); the projection committed again ` +
            `${projectionResumedAt - killedAt} ms after the kill (${resumed} ms after ready), caught up ` +
            `${caughtUp} ms after the writers stopped; ${ackedBeforeKill} appends acknowledged before the kill, ` +
            `${report.appends} in all, ${report.retriedAppends} after a retry (${report.retries} retried attempts)`
        )

        yield* Effect.gen(function* () {
          assert.deepStrictEqual(report.unexpected, [], "writers met no defect and no other error")
          assert.deepStrictEqual(report.abandoned, [])
          for (const failure of report.failures) {
            assert.strictEqual(failure.tag, "StorageError", failure.message)
            assert.isTrue(failure.retryable, failure.message)
          }
          const acknowledged = compareAcknowledged(report, yield* logIds(category))
          assert.deepStrictEqual(acknowledged.missing, [], "every acknowledged event survived the crash")
          assert.deepStrictEqual(acknowledged.doubled, [], "no event stored twice")
          assert.deepStrictEqual(acknowledged.notAcknowledged, [], "the log holds nothing but acknowledged appends")
          assert.deepStrictEqual(acknowledged.retriedMissing, [], "every retried append is stored exactly once")
          yield* assertExactlyOnce(model, category, { projection: projection.name })
          assert.isAbove(report.retries, 0, "writers met the crash")
        }).pipe(Effect.provideContext(check))
      }).pipe(quiet),
    90_000
  )
})
