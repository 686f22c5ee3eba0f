import { assert } from "@effect/vitest"
import { PgEventStore } from "@facta/postgres"
import { Deferred, Effect, Fiber } from "effect"
import { SqlClient } from "effect/sql"

/**
 * Another client's transaction: takes `lockedStream`'s writer lock (the advisory lock every append of the stream
 * queues on first), waits for `go`, then runs `then` and commits.
 */
export const otherTransaction = <A, E, R>(lockedStream: string, then: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const { schema } = yield* PgEventStore.PgEventStore
    const holding = yield* Deferred.make<number>()
    const go = yield* Deferred.make<void>()
    const fiber = yield* Effect.forkChild(
      sql
        .withTransaction(
          Effect.gen(function* () {
            const [row] = yield* sql<{ pid: number }>`SELECT pg_backend_pid() AS pid,
            pg_advisory_xact_lock(hashtext(${schema}), hashtext(${lockedStream}))::text AS locked`
            yield* Deferred.succeed(holding, row!.pid)
            yield* Deferred.await(go)
            return yield* then
          })
        )
        .pipe(Effect.exit)
    )
    const pid = yield* Deferred.await(holding)
    return { pid, go: Deferred.succeed(go, undefined), done: Fiber.join(fiber) }
  })

/** Waits until some session waits for a lock that the session `pid` holds. */
export const someoneWaitsFor = (pid: number) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    for (let tries = 0; tries < 200; tries++) {
      const [row] = yield* sql<{ n: bigint }>`SELECT count(*) AS n FROM pg_stat_activity
        WHERE ${pid}::integer = ANY (pg_blocking_pids(pid))`
      if (row!.n > 0n) return
      yield* Effect.sleep("25 millis")
    }
    assert.fail(`nobody waited for session ${pid}`)
  })

/** The two streams in the order of their writer locks' keys, the order in which one statement takes them. */
export const inLockOrder = (a: string, b: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.map(sql<{ before: boolean }>`SELECT hashtext(${a}) < hashtext(${b}) AS before`, ([row]) =>
      row!.before ? ([a, b] as const) : ([b, a] as const)
    )
  )
