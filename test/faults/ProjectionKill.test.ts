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
import {
  compareAtCheckpoint,
  createReadModel,
  eventually,
  type ReadModel,
  randomInt,
  readModelRows
} from "../support/projection.ts"

// Two child processes run the same projection under the SAME configured owner name, as two replicas of one
// deployment would: one must hold the lease and the other stand by. The holder is killed with SIGKILL again and again
// (a new child replaces it each time) while a writer appends. Each failover (kill to the first batch another process
// commits) is measured; after each kill the read model must hold exactly the events up to the checkpoint (read in
// one snapshot), and at the end it must equal a fold of the log, every event handled once and in log order, and the
// handlers must have taken turns only at the kills.
//
// Two modes, one child fixture (fixtures/projectionWorker.ts, FACTA_WORKER_MODE):
// - per-event: `countingProjection` (one statement per event and table), batches of 25; 20 kills at random points;
// - batch: `batchCountingProjection` (PgBatch load, fold per key, one upsert per table), pages of 200 gathered for
//   200 ms, writes of 1-3 events and every other one an appendMany over two streams; 10 kills aimed in turn between
//   batches (no write transaction of the holder open) and during one (the holder's batch transaction in the 80 ms
//   `pg_sleep` between its two upserts: counts written, seen rows not yet, nothing committed).

const owner = "replica"
const workerScript = fileURLToPath(new URL("./fixtures/projectionWorker.ts", import.meta.url))
const quiet = Effect.provideService(References.MinimumLogLevel, "Error")

/** Where a kill is aimed: at a random point, between two batches, or inside a batch's transaction. */
type Aim = "anywhere" | "between" | "during"

interface Mode {
  readonly mode: "per-event" | "batch"
  readonly title: string
  readonly kills: number
  /** The writer's `appendMany` every n-th write (0: none). */
  readonly manyEvery: number
  readonly aim: (round: number) => Aim
}

const modes: ReadonlyArray<Mode> = [
  {
    mode: "per-event",
    title: "two processes with one owner name are holder and standby; 20 kills of the holder, every event counted once",
    kills: 20,
    manyEvery: 0,
    aim: () => "anywhere"
  },
  {
    mode: "batch",
    title:
      "a PgBatch projection, holder and standby: 10 kills of the holder between and during batches, every event counted once",
    kills: 10,
    manyEvery: 2,
    aim: (round) => (round % 2 === 0 ? "between" : "during")
  }
]

/** The newest row of the read model: who committed last, and its place in the handling order. */
const newest = (model: ReadModel) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.map(
      sql<{ handled_by: string; seq: bigint }>`SELECT handled_by, seq
        FROM ${sql(model.schema)}.${sql(`${model.prefix}_seen`)} ORDER BY seq DESC LIMIT 1`,
      ([row]) => row
    )
  )

/**
 * What a process's sessions are doing: `xids`, the transactions of theirs that wrote (a batch's, from its checkpoint
 * update to its commit, or briefly a lease renewal); `sleeping` when one is in the batch projection's `pg_sleep`
 * between its upserts.
 */
const sessionsOf = (tag: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.map(
      sql<{ xid: string | null; sleeping: boolean }>`SELECT backend_xid::text AS xid,
          state = 'active' AND query LIKE '%pg_sleep%' AS sleeping
        FROM pg_stat_activity WHERE application_name = ${tag}`,
      (rows) => ({
        xids: rows.flatMap((row) => (row.xid === null ? [] : [row.xid])),
        sleeping: rows.some((row) => row.sleeping)
      })
    )
  )

/** How transactions ended (`committed`, `aborted`, `in progress`), by their 32-bit ids (this epoch's). */
const xactStatus = (xids: ReadonlyArray<string>) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.forEach(xids, (xid) =>
      Effect.map(
        sql<{ status: string | null }>`SELECT pg_xact_status(
            (((pg_snapshot_xmax(pg_current_snapshot())::text::bigint >> 32) << 32) | ${xid}::bigint)::text::xid8
          ) AS status`,
        ([row]) => row?.status ?? "unknown"
      )
    )
  )

/** Events per committed batch: the read model's rows grouped by the transaction that wrote them. */
const batchSizes = (model: ReadModel) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.map(
      sql<{ n: bigint }>`SELECT count(*) AS n FROM ${sql(model.schema)}.${sql(`${model.prefix}_seen`)}
        GROUP BY xmin::text`,
      (rows) => rows.map((row) => Number(row.n))
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
const diagnose = (name: string, children: ReadonlyMap<string, Child>, writer: WritersReport) =>
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
        // positions hold bigints
        (_key, value) => (typeof value === "bigint" ? value.toString() : value),
        2
      )
    )
  })

const killTest = ({ mode, kills, manyEvery, aim }: Mode) =>
  Effect.gen(function* () {
    const schema = Database.uniqueSchema(`projkill_${mode.replace("-", "_")}`)
    const name = `killed-${mode}`
    const category = mode === "batch" ? "KilledBatch" : "Killed"
    const model: ReadModel = { schema, prefix: "killed" }
    const admin = yield* Layer.build(Database.projectionStoresIn(schema, { maxConnections: 4 }))
    /** Where the rounds' time went, in ms: children starting, aiming, the killed transactions ending, the checks. */
    const spent = { connect: 0, aim: 0, end: 0, check: 0, rounds: 0 }
    yield* Effect.gen(function* () {
      yield* createReadModel(model)
      // a writer that retries a retryable failure (a deadline on the loaded machine) instead of dying quietly
      const writer = yield* startWriters({ category, writers: 1, streams: 5, manyEvery, pauseMillis: 10 })
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
            FACTA_WORKER_TAG: tag,
            FACTA_WORKER_MODE: mode
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
      /** The read model and the checkpoint, in one snapshot, hold the same events. */
      const consistent = (label: string) =>
        Effect.gen(function* () {
          const diff = yield* compareAtCheckpoint(model, category, name)
          assert.deepStrictEqual(diff.duplicates, [], `${label}: no event counted twice`)
          assert.deepStrictEqual(diff.missing, [], `${label}: every event up to the checkpoint counted`)
          assert.deepStrictEqual(diff.beyondCheckpoint, [], `${label}: nothing counted beyond the checkpoint`)
          assert.deepStrictEqual(
            diff.countMismatches,
            [],
            `${label}: counts equal the fold of the log up to the checkpoint`
          )
          return diff.logSize
        })

      yield* spawnChild
      yield* spawnChild
      yield* eventually(
        "a first batch",
        Effect.map(newest(model), (row) => row !== undefined),
        20_000
      ).pipe(Effect.onError(() => Effect.ignore(diagnose(name, children, writer.report()))))

      const failovers: Array<number> = []
      const takers: Array<string> = []
      /** Per kill: where it was aimed, and how many write transactions of the killed process it aborted. */
      const landed: Array<{ aim: Aim; aborted: number }> = []
      const since = (started: number) => Date.now() - started
      for (let round = 0; round < kills; round++) {
        // both live children running: the holder committing, the other standing by
        const live = [...children.keys()].filter((tag) => {
          const { child } = children.get(tag)!
          return child.exitCode === null && child.signalCode === null
        })
        assert.strictEqual(live.length, 2, `round ${round}: two processes run`)
        const connecting = Date.now()
        for (const tag of live) yield* eventually(`${tag} to connect`, connected(tag), 20_000)
        spent.connect += since(connecting)
        const aiming = Date.now()
        yield* Effect.sleep(randomInt(0, 400))
        const last = (yield* newest(model))!
        const holder = last.handled_by
        assert.include(live, holder, `round ${round}: the holder is a live process`)
        const target = aim(round)
        // the write transactions the holder had open when it was killed (aimed: none between batches; inside one,
        // the batch's, its counts upserted and its seen rows not yet)
        let open: ReadonlyArray<string> = []
        if (target === "anywhere") {
          open = (yield* sessionsOf(holder)).xids
        } else {
          yield* eventually(
            `round ${round}: ${holder} ${target === "between" ? "between batches" : "inside a batch"}`,
            Effect.map(sessionsOf(holder), (s) => {
              open = s.xids
              return target === "between" ? s.xids.length === 0 : s.sleeping && s.xids.length > 0
            }),
            10_000
          ).pipe(Effect.onError(() => Effect.ignore(diagnose(name, children, writer.report()))))
        }
        spent.aim += since(aiming)
        const killedAt = Date.now()
        killed.add(holder)
        const exit = yield* Effect.promise(() => killNow(children.get(holder)!.child))
        assert.deepStrictEqual(exit, { code: null, signal: "SIGKILL" }, `${holder} was running when killed`)
        // and any its backends still show (one that began in the instant between the look and the kill)
        open = [...new Set([...open, ...(yield* sessionsOf(holder)).xids])]
        // a transaction the dead process had open ends (its backend notices the closed socket) without committing
        const ending = Date.now()
        let ended: ReadonlyArray<string> = []
        yield* eventually(
          `round ${round}: the transactions ${holder} had open to end`,
          Effect.map(xactStatus(open), (statuses) => {
            ended = statuses
            return statuses.every((status) => status !== "in progress")
          }),
          10_000
        )
        spent.end += since(ending)
        landed.push({ aim: target, aborted: ended.filter((status) => status === "aborted").length })
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
        ).pipe(Effect.onError(() => Effect.ignore(diagnose(name, children, writer.report()))))
        failovers.push(Date.now() - killedAt)
        takers.push(taker)
        const checking = Date.now()
        yield* consistent(`round ${round}`)
        spent.check += since(checking)
        spent.rounds++
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

      const counted = yield* assertExactlyOnce(model, category, { projection: name, label: mode })
      assert.strictEqual(yield* consistent("at the end"), counted, "the checkpoint covers every event counted")
      const { seen } = yield* readModelRows(model)
      // holder and standby: the handler changes only at a kill, and a killed process never comes back, so each
      // process handled one unbroken run of events
      const turns: Array<string> = []
      for (const row of seen) if (turns.at(-1) !== row.handled_by) turns.push(row.handled_by)
      assert.strictEqual(new Set(turns).size, turns.length, `turns were taken only at kills: ${turns.join(" ")}`)
      assert.isAtMost(turns.length, kills + 1)
      const [status] = yield* checkpoints(name)
      const batches = yield* batchSizes(model)

      const { min, median, max } = spread(failovers)
      const sizes = spread(batches)
      const aimed = (target: Aim) => landed.filter((kill) => kill.aim === target)
      const aborting = (kills: ReadonlyArray<{ readonly aborted: number }>) =>
        kills.filter((kill) => kill.aborted > 0).length
      // kills aimed inside a batch abort it (unless it committed in the milliseconds from the look to the kill: not
      // every time, so no more than one is required)
      if (mode === "batch") assert.isAbove(aborting(aimed("during")), 0, "kills aimed inside a batch aborted it")
      console.log(
        `ProjectionKill (${mode}): ${kills} kills of the lease holder (lease 1 s)` +
          (mode === "batch"
            ? `, ${aimed("between").length} aimed between batches (${aborting(aimed("between"))} of them ` +
              `aborted a transaction all the same) and ${aimed("during").length} inside one ` +
              `(${aborting(aimed("during"))} of them aborted the batch's transaction)`
            : `, at random points (${aborting(landed)} of them aborted a write transaction in flight)`) +
          `; failover min ${min} / median ${median} / max ${max} ms; taken over by the standby ` +
          `${takers.filter((t, i) => t !== `replica-${i + 2}`).length} times, by the replacement ` +
          `${takers.filter((t, i) => t === `replica-${i + 2}`).length}; ${counted} events ` +
          `(${report.appends} appends), each counted once, in ${batches.length} committed batches of median ` +
          `${sizes.median} / max ${sizes.max} events; read model = events up to the checkpoint after every kill ` +
          `(checks ${spent.check} ms in all); rounds' time waiting for the children to connect ${spent.connect} ms, ` +
          `aiming ${spent.aim} ms, for the killed transactions to end ${spent.end} ms; ${turns.length} holders in turn; caught up ${caughtUp} ms after the ` +
          `writer stopped; holder now ${status?.owner._tag === "Some" ? status.owner.value : "none"}`
      )
    }).pipe(
      Effect.provideContext(admin),
      Effect.onInterrupt(() =>
        Effect.sync(() => console.log(`ProjectionKill (${mode}) interrupted: ${JSON.stringify(spent)}`))
      )
    )
  }).pipe(quiet)

describe("Faults: projection processes killed", () => {
  for (const mode of modes) it.live(mode.title, () => killTest(mode), 240_000)
})
