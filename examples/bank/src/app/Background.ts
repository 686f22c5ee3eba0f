/**
 * What the bank runs in the background: the transfer process, the two read-model projections and the transfer expiry
 * sweep, each on its own and each outliving storage outages. A retryable storage failure (a stalled or restarting
 * database, a lost connection, a missed deadline) that ends one of them is logged and the work starts again after a
 * backoff (from 100 ms, doubling, at most 5 seconds), for as long as the outage lasts: once the database answers
 * again the read models catch up and transfers move on, with no restart. Any other failure (an event a projection
 * cannot handle) stops that one for an operator, logged as an error, and leaves the others running.
 *
 * The read-model projections run under a {@link ProjectionControl}, so that the running app can rebuild its own read
 * models (the console's `POST /projections/:name/rebuild`): the projection's run is interrupted (its lease released),
 * the read model reset and the log replayed under this process's leases, and the projection tails the log again.
 */
import { Projection, StorageError } from "@facta/core"
import {
  Cause,
  Context,
  Data,
  Duration,
  Effect,
  Fiber,
  FiberMap,
  Layer,
  Option,
  Ref,
  Schedule,
  Semaphore
} from "effect"
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
  Effect.asVoid(superviseUntilDone(name, work))

/** {@link supervise}, telling whether `work` ended by itself (`true`) or stopped on a failure that is not transient. */
const superviseUntilDone = <A, E, R>(name: string, work: Effect.Effect<A, E, R>): Effect.Effect<boolean, never, R> =>
  work.pipe(
    Effect.tapCause((cause) => {
      const error = Cause.findErrorOption(cause)
      return Option.isSome(error) && isTransient(error.value)
        ? Effect.logWarning(`${name} stopped on a storage failure; starting again`, cause)
        : Effect.void
    }),
    Effect.retry({ schedule: backoff, while: isTransient }),
    Effect.as(true),
    Effect.catchCause((cause) =>
      Cause.hasInterruptsOnly(cause) ? Effect.interrupt : Effect.as(Effect.logError(`${name} stopped`, cause), false)
    ),
    Effect.annotateLogs({ background: name })
  )

/**
 * The read-model projections, the ones a {@link ProjectionControl} rebuilds. The transfer process is not among them:
 * it sends commands, and replaying the log through it would send them again.
 */
export const readModels = [
  {
    name: ReadModels.projections.accounts.name,
    label: "accounts projection",
    run: (options?: Projection.RunOptions) => Projection.run(ReadModels.projections.accounts, options),
    rebuild: (options?: Projection.RunOptions) => Projection.rebuild(ReadModels.projections.accounts, options)
  },
  {
    name: ReadModels.projections.transfers.name,
    label: "transfers projection",
    run: (options?: Projection.RunOptions) => Projection.run(ReadModels.projections.transfers, options),
    rebuild: (options?: Projection.RunOptions) => Projection.rebuild(ReadModels.projections.transfers, options)
  }
] as const

/** What running the read models needs. */
type ReadModelServices = Effect.Services<ReturnType<(typeof readModels)[number]["run"]>>

/**
 * A rebuild asked of a {@link ProjectionControl} for a projection it does not run: not a read model (the transfer
 * process), or not one of this process's.
 */
export class NotRunningHere extends Data.TaggedError("NotRunningHere")<{ readonly projection: string }> {
  override get message() {
    return `${this.projection} is not a read model this process runs`
  }
}

/**
 * The read-model projections this process runs, and their rebuild while the app runs.
 *
 * `rebuild(name)` interrupts the projection's run (which releases its lease), then resets the read model and replays
 * the log under this process's own leases (`Projection.rebuild`: the reset is in the transaction of the checkpoint's
 * move back to the start) and, once caught up, tails the log again as before; each phase is supervised the way
 * {@link supervise} says. `isRebuilding(name)` is `true` from the request until the replay has caught up. A rebuild
 * asked while one runs restarts it: the replay starts over from a fresh reset (safe, since every reset and batch
 * commits with the checkpoint). The replay and the tailing are two runs on purpose: a run started with `rebuild: true`
 * resets again whenever it takes its lease again (after a storage outage), which a tailing run must never do.
 */
export class ProjectionControl extends Context.Service<
  ProjectionControl,
  {
    /** The owner this process's projections take leases as (leases and status show `<owner>/<run id>`). */
    readonly owner: string
    /** The names of the projections it rebuilds (the read models). */
    readonly names: ReadonlyArray<string>
    readonly rebuild: (name: string) => Effect.Effect<void, NotRunningHere>
    readonly isRebuilding: (name: string) => Effect.Effect<boolean>
  }
>()("@facta/example-bank/app/Background/ProjectionControl") {}

/**
 * The transfer process and the read-model projections, each {@link supervise}d, until the layer is released, under
 * the {@link ProjectionControl} it provides. Their leases are taken as `<owner>@<instance>` (`owner` from the options,
 * default `projection`, and an id of this process's own), so that the control tells its own leases from another
 * process's configured with the same owner.
 */
export const layerProjections = (options?: Projection.RunOptions) =>
  Layer.effect(
    ProjectionControl,
    Effect.gen(function* () {
      const owner = `${options?.owner ?? "projection"}@${crypto.randomUUID().slice(0, 8)}`
      const runOptions: Projection.RunOptions = { ...options, owner }
      const context = yield* Effect.context<ReadModelServices>()
      const fibers = yield* FiberMap.make<string>()
      const rebuilding = yield* Ref.make<ReadonlySet<string>>(new Set())
      const oneAtATime = yield* Semaphore.make(1)
      yield* Effect.forkScoped(
        supervise("transfer process", Projection.run(TransferProcess.TransferProcess, runOptions))
      )
      const tail = (model: (typeof readModels)[number]) => supervise(model.label, model.run(runOptions))
      const replayThenTail = (model: (typeof readModels)[number]) =>
        superviseUntilDone(`${model.label} rebuild`, model.rebuild(runOptions)).pipe(
          Effect.ensuring(Ref.update(rebuilding, (names) => new Set([...names].filter((name) => name !== model.name)))),
          Effect.tap((done) => (done ? Effect.logInfo(`${model.label} rebuilt; tailing the log`) : Effect.void)),
          Effect.flatMap((done) => (done ? tail(model) : Effect.void))
        )
      for (const model of readModels) {
        yield* FiberMap.run(fibers, model.name, tail(model).pipe(Effect.provideContext(context)))
      }
      const rebuild = (name: string) =>
        Effect.gen(function* () {
          const model = readModels.find((candidate) => candidate.name === name)
          if (model === undefined) return yield* new NotRunningHere({ projection: name })
          const marked = Ref.update(rebuilding, (names) => new Set([...names, name]))
          yield* marked
          // the run stops (its lease released) before the rebuild takes the lease; a rebuild it interrupts unmarks the
          // name as it ends, hence the mark again
          const running = FiberMap.getUnsafe(fibers, name)
          if (Option.isSome(running)) yield* Fiber.interrupt(running.value)
          yield* marked
          yield* FiberMap.run(fibers, name, replayThenTail(model).pipe(Effect.provideContext(context)))
          yield* Effect.logInfo(`${model.label}: rebuilding`)
        }).pipe(oneAtATime.withPermits(1))
      return ProjectionControl.of({
        owner,
        names: readModels.map((model) => model.name),
        rebuild,
        isRebuilding: (name) => Effect.map(Ref.get(rebuilding), (names) => names.has(name))
      })
    })
  )

/**
 * Options of {@link layer} and {@link run}.
 */
export interface Options {
  /** How the projections run (`owner`, `pollInterval`, `batchWindow`, ...). */
  readonly projections?: Projection.RunOptions | undefined
  /** How often the expiry sweep runs (default a minute). */
  readonly expiryEvery?: Duration.Input | undefined
}

/**
 * The transfer process, the read-model projections (under the {@link ProjectionControl} it provides) and the expiry
 * sweep, each {@link supervise}d, until the layer is released.
 */
export const layer = (options?: Options) =>
  Layer.merge(
    layerProjections(options?.projections),
    Layer.effectDiscard(Effect.forkScoped(supervise("transfer expiry", TransferExpiry.run(options?.expiryEvery))))
  )

/**
 * The transfer process, the read-model projections and the expiry sweep, each {@link supervise}d, until interrupted
 * ({@link layer} without handing out its control).
 */
export const run = (options?: Options) => Layer.launch(layer(options))
