import { assert, describe, it } from "@effect/vitest"
import { CheckpointStore, Projection } from "@facta/core"
import { Cause, Effect, Exit, Fiber, Layer, References } from "effect"
import { SqlClient } from "effect/sql"
import * as Database from "../support/database.ts"
import {
  checkpoints,
  compareAcknowledged,
  logIds,
  perEventProjection,
  reached,
  startWriters,
  type WritersReport
} from "../support/faults.ts"
import {
  compareWithLog,
  countingProjection,
  createReadModel,
  eventually,
  instanceLayer,
  type ReadModel,
  randomInt
} from "../support/projection.ts"

// Connection churn on the run's shared server: the test's own backends (and only those: its pool has an
// application_name of its own) are terminated at random while 8 writers append and two projections (a per-event
// handler and a batch handler) feed SQL read models. Every failure must be a retryable StorageError, every
// acknowledged append must be stored exactly once, and both read models must count every event exactly once.

const schema = Database.uniqueSchema("churn")
const applicationName = `facta_${schema}`
const category = "Churn"
const churnMillis = 30_000
const maxTerminations = 600
const quiet = Effect.provideService(References.MinimumLogLevel, "Error")

/** What a terminated backend was doing, from its last statement. */
const kindOf = (query: string): "reader" | "projection" | "writer" | "other" =>
  query.includes("read_log") || query.includes("global_position")
    ? "reader"
    : query.includes("checkpoints") || query.includes("_seen") || query.includes("_counts")
      ? "projection"
      : query.includes("append")
        ? "writer"
        : "other"

/**
 * Terminates the pool's backends at random until the time or the count is up: every other time one that is busy
 * (running a statement or inside a transaction), so that statements and commits are cut, not only idle sessions.
 * Returns how many it terminated, by what they were doing.
 */
const churn = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const started = Date.now()
  const terminated = { reader: 0, projection: 0, writer: 0, other: 0 }
  let total = 0
  while (Date.now() - started < churnMillis && total < maxTerminations) {
    yield* Effect.sleep(randomInt(20, 200))
    const backends = yield* sql<{ pid: number; busy: boolean }>`SELECT pid, state <> 'idle' AS busy
      FROM pg_stat_activity WHERE application_name = ${applicationName} AND datname = current_database()`
    if (backends.length === 0) continue
    const busy = backends.filter((backend) => backend.busy)
    const pool = busy.length > 0 && randomInt(0, 1) === 0 ? busy : backends
    // most often one backend, now and then several at once
    const victims = randomInt(1, 6) === 1 ? pool.slice(0, randomInt(2, 4)) : [pool[randomInt(0, pool.length - 1)]!]
    for (const { pid } of victims) {
      const [row] = yield* sql<{ ok: boolean; query: string }>`
        SELECT pg_terminate_backend(pid) AS ok, query FROM pg_stat_activity
        WHERE pid = ${pid} AND application_name = ${applicationName}`
      if (row?.ok === true) {
        total++
        terminated[kindOf(row.query)]++
      }
    }
  }
  return { total, ...terminated }
})

const summarizeFailures = (report: WritersReport) => {
  const byOperation = new Map<string, number>()
  for (const failure of report.failures) {
    const key = `${failure.tag}/${failure.operation ?? "?"}`
    byOperation.set(key, (byOperation.get(key) ?? 0) + 1)
  }
  return [...byOperation].map(([key, n]) => `${key} ${n}`).join(", ")
}

describe("Faults: connection churn", () => {
  it.live(
    "backends terminated at random: acknowledged appends stored once, read models exact, nothing parked",
    () =>
      Effect.gen(function* () {
        // the admin pool (migrations, the killer, the checks) is never churned; the application's pool is
        const admin = yield* Layer.build(Database.projectionStoresIn(schema, { maxConnections: 4 }))
        const app = yield* Layer.build(
          instanceLayer(Database.databaseUrl(), schema, { maxConnections: 16, applicationName })
        )
        const batchModel: ReadModel = { schema, prefix: "batch" }
        const eventModel: ReadModel = { schema, prefix: "per_event" }
        yield* Effect.all([createReadModel(batchModel), createReadModel(eventModel)]).pipe(Effect.provideContext(admin))

        const batch = countingProjection({
          model: batchModel,
          name: "churn-batch",
          category,
          handledBy: "batch",
          onFailure: "park"
        })
        const perEvent = perEventProjection({
          model: eventModel,
          name: "churn-event",
          category,
          handledBy: "per-event",
          onFailure: "park"
        })
        const runOptions = { leaseTtl: "3 seconds", batchSize: 50, pollInterval: "200 millis" } as const
        const projections = [
          yield* Effect.forkChild(
            Projection.run(batch, { ...runOptions, owner: batch.name }).pipe(Effect.provideContext(app))
          ),
          yield* Effect.forkChild(
            Projection.run(perEvent, { ...runOptions, owner: perEvent.name }).pipe(Effect.provideContext(app))
          )
        ]
        const writers = yield* startWriters({ category, writers: 8, streams: 20, pauseMillis: 40 }).pipe(
          Effect.provideContext(app)
        )

        const terminations = yield* churn.pipe(Effect.provideContext(admin))
        const report = yield* writers.stop

        // both projections catch up by themselves, on the churned pool that is now left alone
        const caughtUp = yield* eventually(
          "both projections to pass the last acknowledged append",
          Effect.map(
            Effect.all([reached(batch.name, report.last), reached(perEvent.name, report.last)]),
            ([a, b]) => a && b
          ),
          30_000
        ).pipe(Effect.provideContext(admin))
        for (const fiber of projections) {
          assert.isUndefined(fiber.pollUnsafe(), "the projection is still running (it did not fail)")
        }
        yield* Effect.forEach(projections, Fiber.interrupt)
        for (const fiber of projections) {
          const exit = yield* Fiber.await(fiber)
          assert.isTrue(
            Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause),
            "the projection was only interrupted"
          )
        }

        yield* Effect.gen(function* () {
          // writers: every failure a typed, retryable StorageError; nothing given up
          assert.deepStrictEqual(report.unexpected, [], "no defect, no other error, no write given up")
          assert.deepStrictEqual(report.abandoned, [])
          for (const failure of report.failures) {
            assert.strictEqual(failure.tag, "StorageError", failure.message)
            assert.isTrue(failure.retryable, failure.message)
          }
          // the log against what was acknowledged
          const log = yield* logIds(category)
          const acknowledged = compareAcknowledged(report, log)
          assert.deepStrictEqual(acknowledged.missing, [], "every acknowledged event is in the log")
          assert.deepStrictEqual(acknowledged.doubled, [], "no event stored twice")
          assert.deepStrictEqual(acknowledged.ackedTwice, [])
          assert.deepStrictEqual(acknowledged.notAcknowledged, [], "the log holds nothing but acknowledged appends")
          assert.deepStrictEqual(acknowledged.retriedMissing, [], "every retried append is stored exactly once")
          // the read models against a fold of the log
          const rows: Array<number> = []
          for (const model of [batchModel, eventModel]) {
            const diff = yield* compareWithLog(model, category)
            assert.deepStrictEqual(diff.duplicates, [], `${model.prefix}: no event counted twice`)
            assert.deepStrictEqual(diff.missing, [], `${model.prefix}: no event missed`)
            assert.deepStrictEqual(diff.unexpected, [], `${model.prefix}: nothing counted that is not in the log`)
            assert.deepStrictEqual(diff.countMismatches, [], `${model.prefix}: per-stream counts equal the fold`)
            assert.strictEqual(diff.seenSize, diff.logSize)
            rows.push(diff.seenSize)
          }
          const store = yield* CheckpointStore.CheckpointStore
          for (const name of [batch.name, perEvent.name]) {
            assert.deepStrictEqual(yield* store.parked(name), [], `${name}: nothing parked`)
            const states = (yield* checkpoints(name)).map((row) => row.state)
            assert.notInclude(states, "failed", `${name} never failed`)
          }
          // the churn did hit the application: if nothing failed, this test proved nothing
          assert.isAtLeast(terminations.total, 20, "backends were terminated")
          assert.isAbove(report.retries, 0, "writers met terminated connections")
          assert.isAbove(terminations.reader + terminations.projection, 0, "the projections' sessions were cut too")

          console.log(
            `ConnectionChurn: ${report.appends} appends acknowledged (${report.acknowledged.size} events), ` +
              `${report.retriedAppends} acknowledged after a retry (${report.retries} retried attempts), ` +
              `${terminations.total} backends terminated in ${churnMillis / 1000} s (log readers ${terminations.reader}, ` +
              `projection commits ${terminations.projection}, appends ${terminations.writer}, other ` +
              `${terminations.other}), read-model rows batch ${rows[0]} / ` +
              `per-event ${rows[1]} (log ${log.size}), caught up ${caughtUp} ms after the writers stopped, ` +
              `writer failures: ${summarizeFailures(report) || "none"}`
          )
        }).pipe(Effect.provideContext(admin))
      }).pipe(quiet),
    120_000
  )
})
