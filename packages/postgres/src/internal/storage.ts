/**
 * effect/sql's failures as the stores' one `StorageError`, and the deadline every store call runs under.
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

/** Whether the same call may succeed if made again. */
export const isRetryable = (error: SqlError.SqlError): boolean => {
  if (error.isRetryable) return true
  const code = sqlState(error)
  return code !== undefined && (code.startsWith("08") || retryableStates.has(code))
}

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
 * Every `SqlError` of `effect`, failed or raised as a defect, as a `StorageError` of `store`. `only: "retryable"`
 * maps only the retryable ones and leaves the others as they are: a read model's own SQL that the database refuses
 * is its handler's failure, a lost connection under it is not.
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

export interface ResolvedDeadlines {
  readonly read: Duration.Duration
  readonly append: Duration.Duration
  readonly control: Duration.Duration
  readonly commit: Duration.Duration
}

export const resolveDeadlines = (deadlines: Deadlines | undefined): ResolvedDeadlines => ({
  read: Duration.fromInputUnsafe(deadlines?.read ?? "10 seconds"),
  append: Duration.fromInputUnsafe(deadlines?.append ?? "10 seconds"),
  control: Duration.fromInputUnsafe(deadlines?.control ?? "5 seconds"),
  commit: Duration.fromInputUnsafe(deadlines?.commit ?? "60 seconds")
})

/**
 * Runs store calls under a deadline. The call runs in a fiber of the store's scope and the caller waits for it at
 * most `duration`: past that the caller fails at once, while the call is interrupted in the background (the driver
 * drains or retires its connection, which a stalled server makes take longer than the deadline). The wait ends on
 * time even in an uninterruptible region (a timer, not a race), and a caller's own interruption interrupts the call
 * as it would without a deadline. Inside the caller's transaction the call is interrupted before the caller goes
 * on, since the caller will use the same connection next.
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
