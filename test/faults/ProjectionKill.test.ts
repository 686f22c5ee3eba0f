import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, References } from "effect"
import { SqlClient } from "effect/sql"
import { assertExactlyOnce } from "../support/assertions.ts"
import * as Database from "../support/database.ts"
import {
  type Child,
  checkpoints,
  killNow,
  reached,
  spawnNode,
  spread,
  startWriters,
  type WritersReport
} from "../support/faults.ts"
import { createReadModel, eventually, type ReadModel, randomInt, readModelRows } from "../support/projection.ts"

// Two child processes run the same projection under the SAME configured owner name, as two replicas of one
// deployment would: one must hold the lease and the other stand by. The holder is killed with SIGKILL 20 times at
// random points (a new child replaces it each time) while a writer appends. Each failover (kill to the first batch
// another process commits) is measured; at the end the read model must equal a fold of the log, every event handled
// once and in log order, and the handlers must have taken turns only at the kills.

const schema = Database.uniqueSchema("projkill")
const name = "killed"
const category = "Killed"
const owner = "replica"
const kills = 20
const model: ReadModel = { schema, prefix: "killed" }
const workerScript = fileURLToPath(new URL("./fixtures/projectionWorker.ts", import.meta.url))
const quiet = Effect.provideService(References.MinimumLogLevel, "Error")

/** The newest row of the read model: who committed last, and its place in the handling order. */
const newest = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  Effect.map(
    sql<{ handled_by: string; seq: bigint }>`SELECT handled_by, seq FROM ${sql(schema)}.${sql(`${model.prefix}_seen`)}
      ORDER BY seq DESC LIMIT 1`,
    ([row]) => row
  )
)

/** Whether a child's pool has connected (its projection is running: holding the lease or standing by). */
const connected = (tag: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.map(
      sql<{ n: bigint }>`SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = ${tag}`,
      ([row]) => row!.n > 0n
    )
  )

/** What the lease, the children and their sessions looked like: printed when a round times out. */
const diagnose = (children: ReadonlyMap<string, Child>, writer: WritersReport) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const status = yield* checkpoints(name)
    const sessions = yield* sql<{ application_name: string; state: string; wait_event: string | null; query: string }>`
      SELECT application_name, state, wait_event, left(query, 120) AS query FROM pg_stat_activity
      WHERE application_name LIKE 'replica-%' ORDER BY application_name`
    const [clock] = yield* sql<{ now: Date }>`SELECT now() AS now`
    console.log(
      JSON.stringify(
        {
          now: clock?.now,
          writer: {
            appends: writer.appends,
            lastAckMillisAgo: Date.now() - (writer.ackTimes.at(-1) ?? 0),
            failures: writer.failures.slice(-5)
          },
          status,
          sessions,
          children: [...children].map(([tag, { child, output }]) => ({
            tag,
            exit: child.exitCode ?? child.signalCode,
            output: output.join("").slice(-3000)
          }))
        },
        null,
        2
      )
    )
  })

describe("Faults: projection processes killed", () => {
  it.live(
    "two processes with one owner name are holder and standby; 20 kills of the holder, every event counted once",
    () =>
      Effect.gen(function* () {
        const admin = yield* Layer.build(Database.projectionStoresIn(schema, { maxConnections: 4 }))
        yield* Effect.gen(function* () {
          yield* createReadModel(model)
          // a writer that retries a retryable failure (a deadline on the loaded machine) instead of dying quietly
          const writer = yield* startWriters({ category, writers: 1, streams: 5, manyEvery: 0, pauseMillis: 10 })
          const children = new Map<string, Child>()
          const killed = new Set<string>()
          let spawned = 0
          const spawnChild = Effect.gen(function* () {
            const tag = `replica-${spawned++}`
            children.set(
              tag,
              yield* spawnNode(workerScript, {
                FACTA_WORKER_URL: Database.databaseUrl(),
                FACTA_WORKER_SCHEMA: schema,
                FACTA_WORKER_PREFIX: model.prefix,
                FACTA_WORKER_NAME: name,
                FACTA_WORKER_CATEGORY: category,
                FACTA_WORKER_OWNER: owner,
                FACTA_WORKER_TAG: tag
              })
            )
            return tag
          })
          const stillRunning = (tag: string) => {
            const child = children.get(tag)!
            assert.isTrue(
              child.child.exitCode === null && child.child.signalCode === null,
              `${tag} is still running: ${child.output.join("")}`
            )
          }

          yield* spawnChild
          yield* spawnChild
          yield* eventually(
            "a first batch",
            Effect.map(newest, (row) => row !== undefined),
            20_000
          )

          const failovers: Array<number> = []
          const takers: Array<string> = []
          for (let round = 0; round < kills; round++) {
            // both live children running: the holder committing, the other standing by
            const live = [...children.keys()].filter((tag) => {
              const { child } = children.get(tag)!
              return child.exitCode === null && child.signalCode === null
            })
            assert.strictEqual(live.length, 2, `round ${round}: two processes run`)
            for (const tag of live) yield* eventually(`${tag} to connect`, connected(tag), 20_000)
            yield* Effect.sleep(randomInt(0, 400))
            const last = (yield* newest)!
            const holder = last.handled_by
            assert.include(live, holder, `round ${round}: the holder is a live process`)
            const killedAt = Date.now()
            killed.add(holder)
            const exit = yield* Effect.promise(() => killNow(children.get(holder)!.child))
            assert.deepStrictEqual(exit, { code: null, signal: "SIGKILL" }, `${holder} was running when killed`)
            yield* spawnChild
            // the first batch another process commits: the failover
            let taker = ""
            yield* eventually(
              `round ${round}: another process to commit after ${holder} was killed`,
              Effect.map(
                Effect.flatMap(
                  SqlClient.SqlClient,
                  (sql) =>
                    sql<{ handled_by: string }>`SELECT handled_by FROM ${sql(schema)}.${sql(`${model.prefix}_seen`)}
                    WHERE seq > ${last.seq} AND handled_by <> ${holder} ORDER BY seq LIMIT 1`
                ),
                ([row]) => {
                  taker = row?.handled_by ?? ""
                  return row !== undefined
                }
              ),
              20_000
            ).pipe(Effect.onError(() => Effect.ignore(diagnose(children, writer.report()))))
            failovers.push(Date.now() - killedAt)
            takers.push(taker)
          }

          const report = yield* writer.stop
          assert.deepStrictEqual(report.unexpected, [], "the writer met no defect and no other error")
          const caughtUp = yield* eventually(
            "the holder to pass the writer's last append",
            reached(name, report.last),
            30_000
          )
          // no process died but those killed
          for (const tag of children.keys()) if (!killed.has(tag)) stillRunning(tag)

          const counted = yield* assertExactlyOnce(model, category, { projection: name })
          const { seen } = yield* readModelRows(model)
          // holder and standby: the handler changes only at a kill, and a killed process never comes back, so each
          // process handled one unbroken run of events
          const turns: Array<string> = []
          for (const row of seen) if (turns.at(-1) !== row.handled_by) turns.push(row.handled_by)
          assert.strictEqual(new Set(turns).size, turns.length, `turns were taken only at kills: ${turns.join(" ")}`)
          assert.isAtMost(turns.length, kills + 1)
          const [status] = yield* checkpoints(name)

          const { min, median, max } = spread(failovers)
          console.log(
            `ProjectionKill: ${kills} kills of the lease holder (lease 1 s), failover min ${min} / median ${median} / ` +
              `max ${max} ms; taken over by the standby ${takers.filter((t, i) => t !== `replica-${i + 2}`).length} ` +
              `times, by the replacement ${takers.filter((t, i) => t === `replica-${i + 2}`).length}; ` +
              `${counted} events, each counted once; ${turns.length} holders in turn; caught up ${caughtUp} ms ` +
              `after the writer stopped; holder now ${status?.owner._tag === "Some" ? status.owner.value : "none"}`
          )
        }).pipe(Effect.provideContext(admin))
      }).pipe(quiet),
    150_000
  )
})
