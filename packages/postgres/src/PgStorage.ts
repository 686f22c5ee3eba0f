/**
 * effect/sql's failures as Facta's one `StorageError`, and the deadline every store call runs under: what the
 * PostgreSQL stores use, public so that an application's own read models and queries on the same client fail the
 * same way (a projection then retries their retryable failures instead of blaming an event).
 *
 * @since 0.1.0
 */
import { StorageError } from "@facta/core"
import { Cause, Duration, Effect, Fiber, Option, type Scope } from "effect"
import { type SqlClient, SqlError } from "effect/sql"

// SQLSTATEs after which the same call may succeed: the server shutting down or starting, too many connections,
// out of memory or disk for now, a query cancelled (by a deadline), and the classes effect/sql marks retryable
const retryableStates = new Set(["57P01", "57P02", "57P03", "53000", "53100", "53200", "53300", "53400", "57014"])

const sqlState = (error: SqlError.SqlError): string | undefined => {
  const code = (error.reason.cause as { readonly code?: unknown } | undefined)?.code
  return typeof code === "string" ? code : undefined
}

/**
 * Whether the same call may succeed if made again: effect/sql's retryable reasons (a lost connection, a deadlock, a
 * serialization failure, a lock or statement timeout) and the SQLSTATEs of a server going away, starting or out of
 * connections, memory or disk. A statement the database refuses (bad SQL, a constraint) is not.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { SqlClient } from "effect/sql"
 * import { PgStorage } from "@facta/postgres"
 *
 * const count = SqlClient.SqlClient.use((sql) => sql`SELECT count(*) FROM accounts`).pipe(
 *   Effect.tapError((error) => Effect.logWarning(PgStorage.isRetryable(error) ? "try again" : "a bug"))
 * )
 * ```
 *
 * @category guards
 * @since 0.1.0
 */
export const isRetryable = (error: SqlError.SqlError): boolean => {
  if (error.isRetryable) return true
  const code = sqlState(error)
  return code !== undefined && (code.startsWith("08") || retryableStates.has(code))
}

/**
 * A `SqlError` as a `StorageError` of `store`, retryable as {@link isRetryable} says.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { SqlClient } from "effect/sql"
 * import { PgStorage } from "@facta/postgres"
 *
 * const count = SqlClient.SqlClient.use((sql) => sql`SELECT count(*) FROM accounts`).pipe(
 *   Effect.mapError((error) => PgStorage.fromSqlError("ReadModels", "count", error))
 * )
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const fromSqlError = (store: string, operation: string, error: SqlError.SqlError): StorageError.StorageError =>
  new StorageError.StorageError({ store, operation, retryable: isRetryable(error), cause: error })

/** A `SqlError` the cause carries as a defect: effect/sql dies when the rollback of a failed transaction fails. */
const sqlDefect = (cause: Cause.Cause<unknown>): SqlError.SqlError | undefined => {
  for (const reason of cause.reasons) {
    if (Cause.isDieReason(reason) && SqlError.isSqlError(reason.defect)) return reason.defect
  }
  return undefined
}

/**
 * Every `SqlError` of `effect`, failed or raised as a defect (effect/sql dies when the rollback of a failed
 * transaction finds its connection dead), as a `StorageError` of `store`. `only: "retryable"` maps only the
 * retryable ones and leaves the others as they are: a read model's own SQL that the database refuses is its
 * handler's failure, a lost connection under it is not.
 *
 * @example
 * ```ts
 * import { SqlClient } from "effect/sql"
 * import { PgStorage } from "@facta/postgres"
 *
 * const balances = SqlClient.SqlClient.use((sql) =>
 *   sql.withTransaction(sql`SELECT account_id, balance FROM accounts`)
 * ).pipe(PgStorage.mapErrors("ReadModels", "balances"))
 * ```
 *
 * @category combinators
 * @since 0.1.0
 */
export const mapErrors =
  (store: string, operation: string, only?: "retryable") =>
  <A, E, R>(
    effect: Effect.Effect<A, E, R>
  ): Effect.Effect<A, Exclude<E, SqlError.SqlError> | StorageError.StorageError, R> =>
    Effect.catchCause(
      effect,
      (cause): Effect.Effect<never, Exclude<E, SqlError.SqlError> | StorageError.StorageError> => {
        const failure = Cause.findErrorOption(cause)
        if (Option.isSome(failure)) {
          const error = failure.value
          return SqlError.isSqlError(error) && (only === undefined || isRetryable(error))
            ? Effect.fail(fromSqlError(store, operation, error))
            : (Effect.failCause(cause) as Effect.Effect<never, Exclude<E, SqlError.SqlError>>)
        }
        const defect = sqlDefect(cause)
        if (defect !== undefined) {
          // the rollback found the connection dead: the transaction is gone, whatever failed inside it
          return Effect.fail(new StorageError.StorageError({ store, operation, retryable: true, cause: defect }))
        }
        return Effect.failCause(cause as Cause.Cause<never>)
      }
    )

/**
 * How long a store call may take before it fails with a retryable `StorageError`, per kind of call. A stalled server
 * (or a network that drops packets without a reset) otherwise leaves a call waiting forever.
 *
 * @category models
 * @since 0.1.0
 */
export interface Deadlines {
  /** Stream reads, folds, log pages, heads, stream info (default 10 seconds). */
  readonly read?: Duration.Input | undefined
  /** Appends, archives and deletes (default 10 seconds). */
  readonly append?: Duration.Input | undefined
  /** Lease, state and status calls of the checkpoint store, snapshot loads and saves (default 5 seconds). */
  readonly control?: Duration.Input | undefined
  /** A projection batch: its handler's work and its checkpoint in one transaction (default 60 seconds). */
  readonly commit?: Duration.Input | undefined
}

/**
 * {@link Deadlines} with every default filled in.
 *
 * @category models
 * @since 0.1.0
 */
export interface ResolvedDeadlines {
  readonly read: Duration.Duration
  readonly append: Duration.Duration
  readonly control: Duration.Duration
  readonly commit: Duration.Duration
}

/**
 * Fills in the defaults of {@link Deadlines}.
 *
 * @example
 * ```ts
 * import { Duration } from "effect"
 * import { PgStorage } from "@facta/postgres"
 *
 * Duration.toMillis(PgStorage.resolveDeadlines({ read: "2 seconds" }).append) // 10000
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const resolveDeadlines = (deadlines: Deadlines | undefined): ResolvedDeadlines => ({
  read: Duration.fromInputUnsafe(deadlines?.read ?? "10 seconds"),
  append: Duration.fromInputUnsafe(deadlines?.append ?? "10 seconds"),
  control: Duration.fromInputUnsafe(deadlines?.control ?? "5 seconds"),
  commit: Duration.fromInputUnsafe(deadlines?.commit ?? "60 seconds")
})

/**
 * Runs calls under a deadline, as a store does: `deadline(scope, sql, store)(operation, duration)` wraps a call.
 * The call runs in a fiber of `scope` and the caller waits for it at most `duration`: past that the caller fails at
 * once with a retryable `StorageError`, while the call is interrupted in the background (the driver drains or
 * retires its connection, which a stalled server makes take longer than the deadline). The wait ends on time even in
 * an uninterruptible region (a timer, not a race), and a caller's own interruption interrupts the call as it would
 * without a deadline. Inside the caller's transaction the call is interrupted before the caller goes on, since the
 * caller will use the same connection next.
 *
 * @example
 * ```ts
 * import { Duration, Effect } from "effect"
 * import { SqlClient } from "effect/sql"
 * import { PgStorage } from "@facta/postgres"
 *
 * const program = Effect.gen(function*() {
 *   const sql = yield* SqlClient.SqlClient
 *   const within = PgStorage.deadline(yield* Effect.scope, sql, "ReadModels")
 *   return yield* sql`SELECT count(*) FROM accounts`.pipe(
 *     PgStorage.mapErrors("ReadModels", "count"),
 *     within("count", Duration.seconds(2))
 *   )
 * })
 * ```
 *
 * @category combinators
 * @since 0.1.0
 */
export const deadline =
  (scope: Scope.Scope, sql: SqlClient.SqlClient, store: string) =>
  (operation: string, duration: Duration.Duration) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | StorageError.StorageError, R> => {
    const missed = () =>
      new StorageError.StorageError({
        store,
        operation,
        retryable: true,
        cause: `no answer within ${Duration.format(duration)}`
      })
    const millis = Duration.toMillis(duration)
    return Effect.flatMap(Effect.serviceOption(sql.transactionService), (outer) =>
      Option.isSome(outer)
        ? Effect.timeoutOrElse(effect, { duration, orElse: () => Effect.fail(missed()) })
        : Effect.flatMap(Effect.forkIn(effect, scope, { startImmediately: true }), (fiber) =>
            Effect.callback<A, E | StorageError.StorageError>((resume) => {
              const timer = setTimeout(() => {
                stopObserving()
                fiber.interruptUnsafe()
                resume(Effect.fail(missed()))
              }, millis)
              const stopObserving = fiber.addObserver((exit) => {
                clearTimeout(timer)
                resume(exit)
              })
              return Effect.suspend(() => {
                clearTimeout(timer)
                stopObserving()
                return Fiber.interrupt(fiber)
              })
            })
          )
    )
  }
