import { assert, describe, it } from "@effect/vitest"
import { CheckpointStore, EventCodec, EventStore, StorageError } from "@facta/core"
import { Cause, Context, Effect, Exit, Fiber, Layer, Option, References, Stream } from "effect"
import { assertExactlyOnce } from "../support/assertions.ts"
import {
  compareAcknowledged,
  logIds,
  ownServer,
  projectionUnderLoad,
  reached,
  storesOn,
  timed
} from "../support/faults.ts"
import { Counted, codec, createReadModel, eventually, instanceLayer, type ReadModel } from "../support/projection.ts"

// A server that stops answering without closing a socket (SIGSTOP to the postmaster and all its processes), for
// longer than the stores' deadlines. Calls must fail with a retryable StorageError once their deadline passes, not
// hang; once the server runs again (SIGCONT) the same calls must succeed, and a projection that ran all along must
// catch up by itself, its read model equal to a fold of the log.

const schema = "stall"
const category = "Stall"
const deadlineMillis = 2_000
const stallMillis = 5_000
const deadlines = {
  read: deadlineMillis,
  append: deadlineMillis,
  control: deadlineMillis,
  commit: deadlineMillis
}
const quiet = Effect.provideService(References.MinimumLogLevel, "Error")

const probe = (n: number) => EventCodec.toEventData(codec, Counted.make({ n }))

/** Retries `call` while it fails with a retryable StorageError, for at most `timeoutMillis`; how long it took. */
const untilSuccess = <A, E, R>(call: Effect.Effect<A, E, R>, since: number, timeoutMillis: number) =>
  Effect.gen(function* () {
    let attempts = 0
    while (true) {
      attempts++
      const exit = yield* Effect.exit(call)
      if (Exit.isSuccess(exit)) return { millis: Date.now() - since, attempts }
      const error = Cause.findErrorOption(exit.cause)
      if (!(Option.isSome(error) && StorageError.isRetryable(error.value)) || Date.now() - since > timeoutMillis) {
        return { millis: Date.now() - since, attempts, failed: Cause.pretty(exit.cause) }
      }
      yield* Effect.sleep("100 millis")
    }
  })

describe("Faults: a stalled server", () => {
  it.live(
    "calls fail with a retryable StorageError within their deadline, succeed after SIGCONT, a projection catches up",
    () =>
      Effect.gen(function* () {
        const server = yield* ownServer
        const app = yield* Layer.build(storesOn(server.url, schema, { maxConnections: 10, deadlines }))
        // a second pool for the checks, with the stores' default deadlines; not used during the stall
        const check = yield* Layer.build(instanceLayer(server.url, schema, { maxConnections: 2 }))
        const model: ReadModel = { schema, prefix: "stall" }
        yield* createReadModel(model).pipe(Effect.provideContext(check))

        const store = Context.get(app, EventStore.EventStore)
        const checkpointStore = Context.get(app, CheckpointStore.CheckpointStore)
        yield* store.append("Probe-1", [yield* probe(1)])
        const { projection, running, writers } = yield* projectionUnderLoad({
          model,
          name: "stall",
          leaseTtl: "3 seconds",
          writers: { category, writers: 2, streams: 5, pauseMillis: 20 }
        }).pipe(Effect.provideContext(app))
        yield* Effect.sleep("500 millis")

        // the same calls during the stall and after it; the appends carry the same event ids both times, so that
        // one the server runs after all (it was buffered in the socket) is recognised as the same append
        const two = yield* probe(2)
        const three = yield* probe(3)
        const four = yield* probe(4)
        const calls: ReadonlyArray<readonly [string, Effect.Effect<unknown, unknown>]> = [
          ["append", store.append("Probe-2", [two])],
          [
            "appendMany",
            store.appendMany([
              { streamId: "Probe-3", events: [three] },
              { streamId: "Probe-4", events: [four] }
            ])
          ],
          ["read", Stream.runCollect(store.read("Probe-1"))],
          ["readAll", Stream.runCollect(store.readAll({ categories: ["Probe"] }))],
          ["head", store.head],
          ["streamInfo", store.streamInfo("Probe-1")],
          ["checkpoints.status", checkpointStore.status(projection.name)],
          ["checkpoints.parked", checkpointStore.parked(projection.name)]
        ]

        const stopped = yield* server.stall
        const stalledAt = Date.now()
        yield* Effect.sleep("200 millis")
        const during = yield* Effect.forEach(
          calls,
          ([name, call]) => Effect.map(timed(call), (r) => ({ name, ...r })),
          {
            concurrency: "unbounded"
          }
        )
        yield* Effect.sleep(Math.max(0, stalledAt + stallMillis - Date.now()))
        const stalledFor = Date.now() - stalledAt
        yield* server.resume
        const resumedAt = Date.now()
        const after = yield* Effect.forEach(
          calls,
          ([name, call]) => Effect.map(untilSuccess(call, resumedAt, 10_000), (r) => ({ name, ...r })),
          { concurrency: "unbounded" }
        )

        // the projection catches up by itself: the writers go on a little, then stop
        yield* Effect.sleep("1500 millis")
        const report = yield* writers.stop
        const caughtUp = yield* eventually(
          "the projection to pass the last acknowledged append",
          reached(projection.name, report.last),
          20_000
        ).pipe(Effect.provideContext(check))
        const caughtUpAfterResume = Date.now() - resumedAt
        assert.isUndefined(running.pollUnsafe(), "the projection never stopped (no restart)")
        yield* Fiber.interrupt(running)
        const exit = yield* Fiber.await(running)
        assert.isTrue(
          Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause),
          "the projection was only interrupted"
        )

        console.log(
          `ServerStall: ${stopped.length} processes stopped for ${stalledFor} ms, deadline ${deadlineMillis} ms; ` +
            `during the stall: ${during.map((r) => `${r.name} ${Exit.isFailure(r.exit) ? "failed" : "succeeded"} in ${r.millis} ms`).join(", ")}; ` +
            `after SIGCONT: ${after.map((r) => `${r.name} ok ${r.millis} ms (${r.attempts} attempt${r.attempts === 1 ? "" : "s"})`).join(", ")}; ` +
            `projection caught up ${caughtUpAfterResume} ms after SIGCONT (${caughtUp} ms after the writers stopped); ` +
            `writers: ${report.appends} appends, ${report.retriedAppends} after a retry`
        )

        assert.isAtLeast(stopped.length, 3, "the postmaster and its processes were stopped")
        for (const { name, exit: callExit, millis } of during) {
          assert.isTrue(Exit.isFailure(callExit), `${name} fails while the server is stalled`)
          if (Exit.isFailure(callExit)) {
            const error = Cause.findErrorOption(callExit.cause)
            assert.isTrue(
              Option.isSome(error) && StorageError.isStorageError(error.value) && error.value.retryable,
              `${name} fails with a retryable StorageError: ${Cause.pretty(callExit.cause)}`
            )
          }
          assert.isAtMost(millis, deadlineMillis + 1_000, `${name} fails within its deadline + 1 s`)
        }
        for (const result of after) {
          assert.isUndefined("failed" in result ? result.failed : undefined, `${result.name} succeeds after SIGCONT`)
          assert.isAtMost(result.millis, 10_000, `${result.name} succeeds within 10 s of SIGCONT`)
        }

        yield* Effect.gen(function* () {
          // the probes written during and after the stall are there once
          for (const [streamId, event] of [
            ["Probe-2", two],
            ["Probe-3", three],
            ["Probe-4", four]
          ] as const) {
            const events = yield* Stream.runCollect((yield* EventStore.EventStore).read(streamId))
            assert.deepStrictEqual(
              events.map((e) => e.eventId),
              [event.eventId],
              `${streamId} holds its append once`
            )
          }
          assert.deepStrictEqual(report.unexpected, [], "writers met no defect and no other error")
          for (const failure of report.failures) {
            assert.strictEqual(failure.tag, "StorageError", failure.message)
            assert.isTrue(failure.retryable, failure.message)
          }
          const acknowledged = compareAcknowledged(report, yield* logIds(category))
          assert.deepStrictEqual(acknowledged.missing, [], "every acknowledged event is in the log")
          assert.deepStrictEqual(acknowledged.doubled, [])
          assert.deepStrictEqual(acknowledged.notAcknowledged, [])
          yield* assertExactlyOnce(model, category, { projection: projection.name })
        }).pipe(Effect.provideContext(check))
      }).pipe(quiet),
    90_000
  )
})
