import { Cause, Clock, Duration, Effect, Exit, Option, Schedule } from "effect"
import type { Key, Lease } from "../CheckpointStore.ts"
import { CheckpointStore, isLeaseLost } from "../CheckpointStore.ts"
import * as StorageError from "../StorageError.ts"
import * as Uuid from "./uuid.ts"

/** The identity of one run in leases and status: the configured owner name and an id of this run's own. */
export const holderId = (name: string) => Effect.map(Clock.currentTimeMillis, (now) => `${name}/${Uuid.v7(now)}`)

/**
 * Renews the lease every third of its life; fails with LeaseLost when it is gone. A renewal that fails for a
 * retryable storage reason is tried again at once, twice, before the failure ends the holder's run.
 */
const heartbeat = (lease: Lease, ttl: Duration.Input, interval: number) =>
  CheckpointStore.use((store) =>
    Effect.forever(
      Effect.andThen(
        Effect.sleep(interval),
        Effect.retry(store.renew(lease, ttl), {
          times: 2,
          schedule: Schedule.spaced(Math.max(10, Math.floor(interval / 4))),
          while: StorageError.isRetryable
        })
      ),
      { disableYield: true }
    )
  )

/**
 * Runs `work` while holding the lease of `key`, for as long as it takes: stands by while another owner holds it,
 * renews it while `work` runs, releases it when `work` ends (with the state `stopped` or `failed`). A retryable
 * storage failure (taking the lease, a read, a renewal, a state write) keeps the lease and takes it again after a
 * backoff that grows while the failures last; a lost lease stands by. Ends when `work` succeeds, fails with what
 * else `work` fails with. Projections and relays hold their leases this way (`kind` names them in logs).
 */
export const holdLease = Effect.fnUntraced(function* <E, R>(options: {
  readonly kind: string
  readonly key: Key
  readonly owner: string
  readonly ttl: Duration.Input
  readonly annotations: Record<string, unknown>
  readonly work: (lease: Lease) => Effect.Effect<void, E, R>
}): Effect.fn.Return<void, E, R | CheckpointStore> {
  const store = yield* CheckpointStore
  const { annotations, key, kind, owner, ttl } = options
  const interval = Math.max(10, Math.floor(Duration.toMillis(ttl) / 3))
  const leased = (lease: Lease) =>
    Effect.andThen(
      Effect.logInfo(`${kind} lease taken`).pipe(Effect.annotateLogs({ ...annotations, fence: lease.fence })),
      Effect.raceFirst(options.work(lease), heartbeat(lease, ttl, interval))
    )
  /** How a holder's run ended: the lease is released (unless lost) and the outcome passed on. */
  const settle = (lease: Lease, exit: Exit.Exit<void, unknown>) => {
    if (Exit.isSuccess(exit)) return Effect.as(Effect.ignore(store.release(lease, "stopped")), "done" as const)
    const error = Cause.findErrorOption(exit.cause)
    if (Option.isSome(error) && isLeaseLost(error.value)) {
      return Effect.as(
        Effect.logWarning(`${kind} lease lost; standing by`).pipe(Effect.annotateLogs(annotations)),
        "lost" as const
      )
    }
    if (Option.isSome(error) && StorageError.isRetryable(error.value)) {
      const message = error.value.message
      return Effect.logWarning(`${kind} storage failed; retrying`).pipe(
        Effect.annotateLogs({ ...annotations, error: message }),
        // visible in status whenever the checkpoint store itself still answers
        Effect.andThen(Effect.ignore(store.setState(lease, "running", `retrying after: ${message}`))),
        Effect.as("retry" as const)
      )
    }
    const state = Option.isNone(error) && Cause.hasInterrupts(exit.cause) ? "stopped" : "failed"
    return Effect.andThen(
      Effect.ignore(store.release(lease, state, state === "failed" ? Cause.pretty(exit.cause) : undefined)),
      Effect.failCause(exit.cause as Cause.Cause<E>)
    )
  }
  // the backoff after retryable storage failures grows while they last and starts over after a good run
  let failures = 0
  while (true) {
    // taking the lease and arranging its release cannot be split by an interruption
    const ended = yield* Effect.uninterruptibleMask((restore) =>
      store.acquire(key, owner, ttl).pipe(
        Effect.flatMap((acquired) =>
          Option.isNone(acquired)
            ? Effect.succeed("standby" as const)
            : Effect.flatMap(Effect.exit(restore(leased(acquired.value))), (exit) => settle(acquired.value, exit))
        ),
        Effect.catchIf(StorageError.isRetryable, (error) =>
          Effect.as(
            Effect.logWarning(`${kind} storage failed; retrying`).pipe(
              Effect.annotateLogs({ ...annotations, error: error.message })
            ),
            "retry" as const
          )
        )
      )
    )
    if (ended === "done") return
    if (ended === "retry") {
      yield* Effect.sleep(Math.min(5000, 100 * 2 ** Math.min(failures++, 6)))
      continue
    }
    failures = 0
    if (ended === "standby") yield* Effect.sleep(interval)
  }
})
