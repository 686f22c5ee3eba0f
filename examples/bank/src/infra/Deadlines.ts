/**
 * How long the bank waits for its database, and how long a request may take: a stalled database (or a network that
 * drops packets without a reset) answers 503 problems within these deadlines, never a hanging request.
 *
 * | setting                          | default    | what it bounds                                                    |
 * | -------------------------------- | ---------- | ----------------------------------------------------------------- |
 * | `BANK_REQUEST_TIMEOUT`           | 10 seconds | a whole HTTP request: past it the answer is a 503 problem         |
 * | `BANK_STORAGE_TIMEOUT`           | 3 seconds  | a storage call (event store, checkpoints, snapshots, read models) |
 * | `BANK_PROJECTION_COMMIT_TIMEOUT` | 30 seconds | a projection batch (its handler's work and its checkpoint)        |
 *
 * A request makes one storage call after another, so the storage deadline sits well below the request deadline: the
 * first call the stall meets fails with a retryable `StorageError` (a 503) long before the request deadline, which
 * stays as the last line of defence. An idempotent command's transaction (several calls) gets twice the storage
 * deadline.
 */
import { Config, Context, Data, Duration, Effect, Fiber, Layer, type Scope } from "effect"

/**
 * The deadlines in effect.
 */
export interface Values {
  /** A whole HTTP request. */
  readonly request: Duration.Duration
  /** One storage call. */
  readonly storage: Duration.Duration
  /** One projection batch. */
  readonly commit: Duration.Duration
}

/**
 * The defaults: requests 10 seconds, storage calls 3 seconds, projection batches 30 seconds.
 */
export const defaults: Values = {
  request: Duration.seconds(10),
  storage: Duration.seconds(3),
  commit: Duration.seconds(30)
}

/**
 * The deadlines the stores, the read models, the idempotency keys and the routes use ({@link defaults} unless a layer
 * sets them).
 */
export const Deadlines = Context.Reference<Values>("@facta/example-bank/Deadlines", { defaultValue: () => defaults })

/**
 * The configured deadlines do not fit: one is not positive, or the storage deadline is not shorter than the request
 * deadline.
 */
export class InvalidDeadlines extends Data.TaggedError("InvalidDeadlines")<{ readonly message: string }> {}

/**
 * Resolves deadlines (the rest from {@link defaults}); throws {@link InvalidDeadlines} unless each is positive and
 * the storage deadline is shorter than the request deadline.
 */
export const make = (values: Partial<Record<keyof Values, Duration.Input>>): Values => {
  const resolved: Values = {
    request: Duration.fromInputUnsafe(values.request ?? defaults.request),
    storage: Duration.fromInputUnsafe(values.storage ?? defaults.storage),
    commit: Duration.fromInputUnsafe(values.commit ?? defaults.commit)
  }
  for (const [name, value] of Object.entries(resolved)) {
    if (Duration.toMillis(value) <= 0) throw new InvalidDeadlines({ message: `the ${name} deadline must be positive` })
  }
  if (Duration.toMillis(resolved.storage) >= Duration.toMillis(resolved.request)) {
    throw new InvalidDeadlines({
      message: `the storage deadline (${Duration.format(resolved.storage)}) must be shorter than the request deadline (${Duration.format(resolved.request)})`
    })
  }
  return resolved
}

/**
 * Given deadlines (the rest from {@link defaults}).
 */
export const layer = (values: Partial<Record<keyof Values, Duration.Input>>): Layer.Layer<never> =>
  Layer.succeed(Deadlines, make(values))

/**
 * `BANK_REQUEST_TIMEOUT`, `BANK_STORAGE_TIMEOUT` and `BANK_PROJECTION_COMMIT_TIMEOUT` (such as `"5 seconds"`), each
 * defaulting to {@link defaults}; fails with {@link InvalidDeadlines} when they do not fit.
 */
export const layerConfig: Layer.Layer<never, Config.ConfigError | InvalidDeadlines> = Layer.effect(
  Deadlines,
  Effect.gen(function* () {
    const request = yield* Config.Duration("BANK_REQUEST_TIMEOUT").pipe(Config.withDefault(defaults.request))
    const storage = yield* Config.Duration("BANK_STORAGE_TIMEOUT").pipe(Config.withDefault(defaults.storage))
    const commit = yield* Config.Duration("BANK_PROJECTION_COMMIT_TIMEOUT").pipe(Config.withDefault(defaults.commit))
    return yield* Effect.try({
      try: () => make({ request, storage, commit }),
      catch: (error) => (error instanceof InvalidDeadlines ? error : new InvalidDeadlines({ message: String(error) }))
    })
  })
)

/**
 * Runs `effect` under a deadline: it runs in a fiber of `scope` and the caller waits for it at most `duration`. Past
 * that the caller fails at once with `onMissed()`, while the effect is interrupted in the background (a connection
 * to a stalled server can take longer than the deadline to give up, and a transaction's rollback waits for the
 * server). The caller's own interruption interrupts the effect.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Deadlines } from "@facta/example-bank/infra/Deadlines"
 *
 * const program = Effect.scoped(
 *   Effect.flatMap(Effect.scope, (scope) =>
 *     Effect.never.pipe(Deadlines.within(scope, "1 second", () => new Error("no answer")))
 *   )
 * )
 * ```
 */
export const within =
  <E2>(scope: Scope.Scope, duration: Duration.Input, onMissed: () => E2) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | E2, R> =>
    Effect.flatMap(Effect.forkIn(effect, scope, { startImmediately: true }), (fiber) =>
      Fiber.join(fiber).pipe(
        Effect.timeoutOrElse({
          duration,
          orElse: () => Effect.andThen(Effect.forkIn(Fiber.interrupt(fiber), scope), Effect.fail(onMissed()))
        }),
        Effect.onInterrupt(() => Fiber.interrupt(fiber))
      )
    )
