/**
 * Pieces of the fault suite (test/faults): an embedded server a test can stall, kill and restart; writers that retry
 * a retryable `StorageError` with the same event ids and keep account of every acknowledged append and every failure
 * they saw; a per-event variant of the counting projection; projection child processes; timings.
 *
 * Only a test's own embedded servers are ever stopped, stalled or killed here; the run's shared server never is.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { PgClient } from "@effect/sql-pg"
import { CheckpointStore, type Event, EventCodec, EventStore, Position, Projection, StorageError } from "@facta/core"
import { EmbeddedPostgres } from "@facta/embedded-postgres"
import { PgCheckpointStore, PgEventStore } from "@facta/postgres"
import { Cause, type Duration, Effect, Exit, Fiber, Layer, Option, Redacted, Stream } from "effect"
import { SqlClient } from "effect/sql"
import {
  Counted,
  codec,
  countingProjection,
  eventually,
  type ReadModel,
  randomInt,
  readModelRows
} from "./projection.ts"

// ---------------------------------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------------------------------

/** Whether a process exists (a zombie counts; a process of another user too). */
export const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
}

/** The direct children of a process (`pgrep -P`). */
export const childrenOf = (pid: number): ReadonlyArray<number> => {
  try {
    return execFileSync("pgrep", ["-P", String(pid)], { encoding: "utf8" })
      .split("\n")
      .filter((line) => line.trim() !== "")
      .map((line) => Number.parseInt(line, 10))
  } catch {
    // pgrep exits with 1 when there is none
    return []
  }
}

const signal = (pid: number, name: NodeJS.Signals): void => {
  try {
    process.kill(pid, name)
  } catch {
    // gone already
  }
}

/** Waits (bounded) until none of the processes exists; returns those still there. */
const waitGone = async (pids: ReadonlyArray<number>, timeoutMillis: number): Promise<ReadonlyArray<number>> => {
  const started = Date.now()
  while (Date.now() - started < timeoutMillis) {
    if (pids.every((pid) => !alive(pid))) return []
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  return pids.filter(alive)
}

// ---------------------------------------------------------------------------------------------------------------------
// A server the test owns
// ---------------------------------------------------------------------------------------------------------------------

/** An embedded server on a data directory of the test's own, which the test can stall, kill and start again. */
export interface OwnServer {
  readonly url: string
  readonly port: number
  readonly dataDir: string
  /** The running postmaster's pid (first line of `data/postmaster.pid`). */
  readonly postmasterPid: () => number
  /**
   * SIGSTOP to the postmaster, then to every child of it (its backends and background processes): the server stops
   * answering without closing a socket. Returns the processes stopped.
   */
  readonly stall: Effect.Effect<ReadonlyArray<number>>
  /** SIGCONT to every process `stall` stopped. */
  readonly resume: Effect.Effect<void>
  /**
   * SIGKILL to the postmaster (its backends notice and exit; any still there after 5 s are killed too). Returns how
   * many backends and background processes were running under it.
   */
  readonly crash: Effect.Effect<number>
  /** Starts the server again on the same data directory and port; resolves once it accepts connections. */
  readonly restart: Effect.Effect<void>
}

/**
 * Starts an embedded server in a fresh temporary data directory kept for restarts. When the scope closes, stopped
 * processes are continued, the server is stopped and the directory removed, whatever state the test left it in.
 */
export const ownServer = Effect.acquireRelease(
  Effect.promise(async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "facta-faults-"))
    try {
      return { dataDir, running: await EmbeddedPostgres.startAsync({ dataDir }) }
    } catch (error) {
      fs.rmSync(dataDir, { recursive: true, force: true })
      throw error
    }
  }),
  (state: { readonly dataDir: string; running: EmbeddedPostgres.StartedAsync | undefined; stopped?: Array<number> }) =>
    Effect.promise(async () => {
      for (const pid of state.stopped ?? []) signal(pid, "SIGCONT")
      await state.running?.stop()
      fs.rmSync(state.dataDir, { recursive: true, force: true })
    })
).pipe(
  Effect.map((state): OwnServer => {
    const port = state.running!.port
    const postmasterPid = () =>
      Number.parseInt(fs.readFileSync(path.join(state.dataDir, "data", "postmaster.pid"), "utf8").split("\n")[0]!, 10)
    return {
      url: state.running!.url,
      port,
      dataDir: state.dataDir,
      postmasterPid,
      stall: Effect.sync(() => {
        const postmaster = postmasterPid()
        // the postmaster first, so that it forks no new backend behind the list of its children
        signal(postmaster, "SIGSTOP")
        const stopped = [postmaster, ...childrenOf(postmaster)]
        for (const pid of stopped.slice(1)) signal(pid, "SIGSTOP")
        state.stopped = stopped
        return stopped
      }),
      resume: Effect.sync(() => {
        for (const pid of [...(state.stopped ?? [])].reverse()) signal(pid, "SIGCONT")
        state.stopped = []
      }),
      crash: Effect.promise(async () => {
        const postmaster = postmasterPid()
        const children = childrenOf(postmaster)
        signal(postmaster, "SIGKILL")
        // the library's handle notices the exit; its stop() then only tidies up
        await state.running?.stop()
        state.running = undefined
        const left = await waitGone(children, 5_000)
        for (const pid of left) signal(pid, "SIGKILL")
        const still = await waitGone(left, 5_000)
        if (still.length > 0) throw new Error(`processes of the killed server still run: ${still.join(", ")}`)
        return children.length
      }),
      restart: Effect.promise(async () => {
        state.running = await EmbeddedPostgres.startAsync({ dataDir: state.dataDir, port })
      })
    }
  })
)

/**
 * The event store and checkpoint store of `schema` on a pool of their own on `url`, migrated, with the given
 * deadlines (the stores' defaults otherwise).
 */
export const storesOn = (
  url: string,
  schema: string,
  options?: {
    readonly maxConnections?: number | undefined
    readonly applicationName?: string | undefined
    readonly deadlines?: PgEventStore.Options["deadlines"]
  }
) =>
  PgCheckpointStore.layer({ schema, deadlines: options?.deadlines }).pipe(
    Layer.provideMerge(PgEventStore.layer({ schema, deadlines: options?.deadlines })),
    Layer.provideMerge(
      PgClient.layer({
        url: Redacted.make(url),
        maxConnections: options?.maxConnections ?? 10,
        ...(options?.applicationName === undefined ? {} : { applicationName: options.applicationName })
      })
    )
  )

// ---------------------------------------------------------------------------------------------------------------------
// Writers that retry with the same event ids
// ---------------------------------------------------------------------------------------------------------------------

/** A failed attempt, as a writer saw it. */
export interface SeenFailure {
  readonly tag: string
  readonly retryable: boolean | undefined
  readonly operation: string | undefined
  readonly message: string
}

/** What writers did, once stopped. */
export interface WritersReport {
  /** Append calls acknowledged (an `appendMany` counts once). */
  readonly appends: number
  /** Of them, those acknowledged only after one or more retries. */
  readonly retriedAppends: number
  /** Attempts that failed and were retried. */
  readonly retries: number
  /** The event ids of every acknowledged append, with how many times each was acknowledged. */
  readonly acknowledged: ReadonlyMap<string, number>
  /** The event ids of appends acknowledged after a retry. */
  readonly retriedIds: ReadonlySet<string>
  /** Every failure an attempt met (each should be a retryable StorageError). */
  readonly failures: ReadonlyArray<SeenFailure>
  /** Failures that were not a retryable StorageError (a defect, another error): the write was given up. */
  readonly unexpected: ReadonlyArray<string>
  /** Event ids of writes given up (after `unexpected`, or too many attempts). */
  readonly abandoned: ReadonlyArray<string>
  /** The last acknowledged position. */
  readonly last: Position.Position
  /** When (Date.now()) each acknowledgement came back, in order. */
  readonly ackTimes: ReadonlyArray<number>
}

export interface WritersOptions {
  readonly category: string
  readonly writers: number
  readonly streams?: number | undefined
  /** Every n-th write of a writer is an `appendMany` over two streams (default 3; 0 for none). */
  readonly manyEvery?: number | undefined
  readonly pauseMillis?: number | undefined
  /** A write is given up after this many attempts (default 400). */
  readonly maxAttempts?: number | undefined
}

/** How an attempt failed, from its cause. */
const classify = (cause: Cause.Cause<unknown>): { readonly retry: boolean; readonly seen: SeenFailure } => {
  const error = Cause.findErrorOption(cause)
  if (Option.isSome(error)) {
    const e = error.value as { readonly _tag?: unknown; readonly message?: unknown }
    if (StorageError.isStorageError(e)) {
      return {
        retry: e.retryable,
        seen: { tag: e._tag, retryable: e.retryable, operation: e.operation, message: e.message }
      }
    }
    return {
      retry: false,
      seen: {
        tag: String(e._tag ?? "untagged"),
        retryable: undefined,
        operation: undefined,
        message: String(e.message)
      }
    }
  }
  return {
    retry: false,
    seen: { tag: "defect", retryable: undefined, operation: undefined, message: Cause.pretty(cause) }
  }
}

const newEvent = (n: number): Effect.Effect<Event.EventData, EventCodec.EventEncodeError> =>
  EventCodec.toEventData(codec, Counted.make({ n }))

/**
 * Starts `writers` fibers appending 1-3 `Counted` events to random streams of the category (and every `manyEvery`-th
 * write to two streams at once with `appendMany`), with `expectedVersion: any`. An attempt that fails with a
 * retryable `StorageError` is made again with the very same request (the same event ids), after a short backoff, so
 * that the retry of an ambiguous commit is idempotent. `stop` ends the writers after the write in hand.
 */
export const startWriters = (options: WritersOptions) =>
  Effect.gen(function* () {
    const store = yield* EventStore.EventStore
    const acknowledged = new Map<string, number>()
    const retriedIds = new Set<string>()
    const failures: Array<SeenFailure> = []
    const unexpected: Array<string> = []
    const abandoned: Array<string> = []
    const ackTimes: Array<number> = []
    let appends = 0
    let retriedAppends = 0
    let retries = 0
    let last = Position.start
    let stopped = false
    const streams = options.streams ?? 10
    const manyEvery = options.manyEvery ?? 3
    const maxAttempts = options.maxAttempts ?? 400
    const stream = () => `${options.category}-${randomInt(1, streams)}`
    const events = () => Effect.forEach(Array.from({ length: randomInt(1, 3) }), () => newEvent(randomInt(1, 1000)))

    const write = Effect.fnUntraced(function* (many: boolean) {
      const requests: Array<EventStore.AppendRequest> = []
      const first = stream()
      requests.push({ streamId: first, events: yield* events() })
      if (many) {
        let second = stream()
        while (second === first && streams > 1) second = stream()
        if (second !== first) requests.push({ streamId: second, events: yield* events() })
      }
      const ids = requests.flatMap((request) => request.events.map((event) => event.eventId as string))
      const call =
        requests.length === 1
          ? Effect.map(store.append(requests[0]!.streamId, requests[0]!.events), (result) => [result])
          : store.appendMany(requests)
      for (let attempt = 1; attempt <= maxAttempts; attempt++) {
        const exit = yield* Effect.exit(call)
        if (Exit.isSuccess(exit)) {
          appends++
          ackTimes.push(Date.now())
          for (const id of ids) acknowledged.set(id, (acknowledged.get(id) ?? 0) + 1)
          if (attempt > 1) {
            retriedAppends++
            for (const id of ids) retriedIds.add(id)
          }
          for (const result of exit.value) last = Position.max(last, result.positions.at(-1) ?? last)
          return
        }
        if (Cause.hasInterruptsOnly(exit.cause)) return yield* Effect.failCause(exit.cause)
        const { retry, seen } = classify(exit.cause)
        failures.push(seen)
        if (!retry) {
          unexpected.push(`${seen.tag}${seen.retryable === false ? " (not retryable)" : ""}: ${seen.message}`)
          abandoned.push(...ids)
          return
        }
        retries++
        yield* Effect.sleep(Math.min(500, 20 * 2 ** Math.min(attempt, 5)) + randomInt(0, 30))
      }
      unexpected.push(`a write was given up after ${maxAttempts} attempts`)
      abandoned.push(...ids)
    })

    const fibers = yield* Effect.forEach(Array.from({ length: options.writers }), () =>
      Effect.forkChild(
        Effect.gen(function* () {
          let count = 0
          while (!stopped) {
            count++
            yield* write(manyEvery > 0 && count % manyEvery === 0)
            yield* Effect.sleep(randomInt(0, options.pauseMillis ?? 10))
          }
        })
      )
    )
    const report = (): WritersReport => ({
      appends,
      retriedAppends,
      retries,
      acknowledged,
      retriedIds,
      failures,
      unexpected,
      abandoned,
      last,
      ackTimes
    })
    return {
      /** The figures so far. */
      report,
      /** Stops the writers after the writes in hand and reports. */
      stop: Effect.suspend(() => {
        stopped = true
        return Effect.map(Fiber.joinAll(fibers), report)
      })
    }
  })

/**
 * A counting projection of `model` (owner and name `name`) running on the stores in context, and retrying writers:
 * given back once the projection has committed its first batch, so that a fault which follows hits both at work.
 */
export const projectionUnderLoad = (options: {
  readonly model: ReadModel
  readonly name: string
  readonly leaseTtl: Duration.Input
  readonly writers: WritersOptions
}) =>
  Effect.gen(function* () {
    const { model, name } = options
    const projection = countingProjection({
      model,
      name,
      category: options.writers.category,
      handledBy: name,
      onFailure: "park"
    })
    const running = yield* Effect.forkChild(
      Projection.run(projection, { owner: name, leaseTtl: options.leaseTtl, batchSize: 50, pollInterval: "200 millis" })
    )
    const writers = yield* startWriters(options.writers)
    yield* eventually(
      "the projection to commit a batch",
      Effect.map(readModelRows(model), ({ seen }) => seen.length > 0),
      10_000
    )
    return { projection, running, writers }
  })

/** The ids of a category's events in the log, with how many times each occurs. */
export const logIds = (category: string) =>
  Effect.flatMap(EventStore.EventStore, (store) =>
    Effect.map(Stream.runCollect(store.readAll({ categories: [category] })), (events) => {
      const ids = new Map<string, number>()
      for (const event of events) ids.set(event.eventId, (ids.get(event.eventId) ?? 0) + 1)
      return ids
    })
  )

/**
 * The acknowledged appends against the log: lists that are empty when every acknowledged event is stored exactly
 * once and the log holds nothing else.
 */
export const compareAcknowledged = (report: WritersReport, log: ReadonlyMap<string, number>) => ({
  missing: [...report.acknowledged.keys()].filter((id) => !log.has(id)),
  doubled: [...log].filter(([, times]) => times !== 1).map(([id, times]) => `${id} x${times}`),
  ackedTwice: [...report.acknowledged].filter(([, times]) => times !== 1).map(([id]) => id),
  notAcknowledged: [...log.keys()].filter((id) => !report.acknowledged.has(id)),
  retriedMissing: [...report.retriedIds].filter((id) => log.get(id) !== 1)
})

// ---------------------------------------------------------------------------------------------------------------------
// Projections
// ---------------------------------------------------------------------------------------------------------------------

/** Counts one event into the read model of `createReadModel` (the same SQL as `countingProjection`'s). */
export const countEvent = (model: ReadModel, event: Event.RecordedEvent<typeof Counted.Type>, handledBy: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const s = sql(model.schema)
    yield* sql`INSERT INTO ${s}.${sql(`${model.prefix}_seen`)} AS t (event_id, stream_id, position, handled_by)
      VALUES (${event.eventId}::uuid, ${event.streamId}, ${Position.format(event.position)}, ${handledBy})
      ON CONFLICT (event_id) DO UPDATE SET times = t.times + 1`
    yield* sql`INSERT INTO ${s}.${sql(`${model.prefix}_counts`)} AS c (stream_id, events, total)
      VALUES (${event.streamId}, 1, ${event.data.n})
      ON CONFLICT (stream_id) DO UPDATE SET events = c.events + 1, total = c.total + excluded.total`
  })

/** The counting projection with a per-event `handle` (the runner calls it for each event of a batch, in one tx). */
export const perEventProjection = (options: {
  readonly model: ReadModel
  readonly name: string
  readonly category: string
  readonly handledBy: string
  readonly onFailure?: "stop" | "park" | undefined
}) =>
  Projection.make({
    name: options.name,
    events: codec,
    categories: [options.category],
    onFailure: options.onFailure,
    handle: (event) => countEvent(options.model, event, options.handledBy)
  })

/** The checkpoints of a projection, retried while the store's failures are retryable (bounded). */
export const checkpoints = (name: string) =>
  CheckpointStore.CheckpointStore.use((store) => store.status(name)).pipe(
    Effect.retry({ while: StorageError.isRetryable, times: 50 })
  )

/** Whether every checkpoint of the projection has reached `last`. */
export const reached = (name: string, last: Position.Position) =>
  Effect.map(
    checkpoints(name),
    (rows) => rows.length > 0 && rows.every((row) => !Position.isBefore(row.checkpoint, last))
  )

// ---------------------------------------------------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------------------------------------------------

export interface Child {
  readonly child: ChildProcess
  /** What it wrote to stdout and stderr (its logs). */
  readonly output: Array<string>
}

/** A Node child process running `script`; killed (SIGKILL) when the scope closes, if still alive. */
export const spawnNode = (script: string, env: Record<string, string>) =>
  Effect.acquireRelease(
    Effect.sync((): Child => {
      const child = spawn(process.execPath, ["--conditions=@facta/source", script], {
        env: { PATH: process.env.PATH ?? "", ...env },
        stdio: ["ignore", "pipe", "pipe"]
      })
      const output: Array<string> = []
      child.stdout?.on("data", (chunk: Buffer) => output.push(chunk.toString()))
      child.stderr?.on("data", (chunk: Buffer) => output.push(chunk.toString()))
      return { child, output }
    }),
    ({ child }) => Effect.promise(() => killNow(child))
  )

/** SIGKILL, resolved once the process has exited (at once when it had). */
export const killNow = (child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> =>
  new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve({ code: child.exitCode, signal: child.signalCode })
      return
    }
    child.once("exit", (code, signal) => resolve({ code, signal }))
    child.kill("SIGKILL")
  })

// ---------------------------------------------------------------------------------------------------------------------
// Figures
// ---------------------------------------------------------------------------------------------------------------------

/** Runs `effect` and gives its exit with the milliseconds it took. */
export const timed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.suspend(() => {
    const started = Date.now()
    return Effect.map(Effect.exit(effect), (exit) => ({ exit, millis: Date.now() - started }))
  })

/** min, median and max of some figures. */
export const spread = (values: ReadonlyArray<number>) => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  const median =
    sorted.length === 0
      ? Number.NaN
      : sorted.length % 2 === 1
        ? sorted[middle]!
        : (sorted[middle - 1]! + sorted[middle]!) / 2
  return { min: sorted[0] ?? Number.NaN, median, max: sorted.at(-1) ?? Number.NaN }
}
