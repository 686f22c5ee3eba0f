/**
 * What the bank runs in the background: the transfer process, the two read-model projections and the transfer expiry
 * sweep, each on its own and each outliving storage outages. A retryable storage failure (a stalled or restarting
 * database, a lost connection, a missed deadline) that ends one of them is logged and the work starts again after a
 * backoff (from 100 ms, doubling, at most 5 seconds), for as long as the outage lasts: once the database answers
 * again the read models catch up and transfers move on, with no restart. Any other failure (an event a projection
 * cannot handle) stops that one for an operator, logged as an error, and leaves the others running.
 */
import { Projection, StorageError } from "@facta/core"
import { Cause, Duration, Effect, Option, Schedule } from "effect"
import * as ReadModels from "../readmodels/ReadModels.ts"
import * as TransferExpiry from "./TransferExpiry.ts"
import * as TransferProcess from "./TransferProcess.ts"

/**
 * Whether a failure is the storage's and may pass: a retryable `StorageError`.
 */
export const isTransient = (error: unknown): boolean => StorageError.isRetryable(error)

/**
 * The wait between restarts: from 100 ms, doubling, at most 5 seconds.
 */
export const backoff: Schedule.Schedule<unknown, unknown> = Schedule.exponential("100 millis").pipe(
  Schedule.modifyDelay(({ duration }) => Effect.succeed(Duration.min(duration, Duration.seconds(5))))
)

/**
 * Runs `work` for as long as it runs, starting it again after {@link backoff} whenever it fails with a transient
 * failure (see {@link isTransient}); logs every failure. Ends (without failing) when the failure is of another kind.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Background } from "@facta/example-bank/app/Background"
 *
 * const poller = Background.supervise("poller", Effect.never)
 * ```
 */
export const supervise = <A, E, R>(name: string, work: Effect.Effect<A, E, R>): Effect.Effect<void, never, R> =>
  work.pipe(
    Effect.tapCause((cause) => {
      const error = Cause.findErrorOption(cause)
      return Option.isSome(error) && isTransient(error.value)
        ? Effect.logWarning(`${name} stopped on a storage failure; starting again`, cause)
        : Effect.void
    }),
    Effect.retry({ schedule: backoff, while: isTransient }),
    Effect.asVoid,
    Effect.catchCause((cause) =>
      Cause.hasInterruptsOnly(cause) ? Effect.interrupt : Effect.logError(`${name} stopped`, cause)
    ),
    Effect.annotateLogs({ background: name })
  )

/**
 * Options of {@link run}.
 */
export interface Options {
  /** How the projections run (`owner`, `pollInterval`, `batchWindow`, ...). */
  readonly projections?: Projection.RunOptions | undefined
  /** How often the expiry sweep runs (default a minute). */
  readonly expiryEvery?: Duration.Input | undefined
}

/**
 * The transfer process, the read-model projections and the expiry sweep, each {@link supervise}d, until interrupted.
 */
export const run = (options?: Options) =>
  Effect.all(
    [
      supervise("transfer process", Projection.run(TransferProcess.TransferProcess, options?.projections)),
      supervise("accounts projection", Projection.run(ReadModels.projections.accounts, options?.projections)),
      supervise("transfers projection", Projection.run(ReadModels.projections.transfers, options?.projections)),
      supervise("transfer expiry", TransferExpiry.run(options?.expiryEvery))
    ],
    { concurrency: "unbounded", discard: true }
  )
