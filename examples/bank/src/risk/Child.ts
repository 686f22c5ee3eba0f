/**
 * The risk watch as a child process of the bank's demo (and of the tests that kill it): started with the same Node
 * and `--conditions=@facta/source`, given the database and the broker through its environment, known to be up once
 * it prints its `listening on` line, and stopped with the scope (SIGTERM, then SIGKILL if it lingers). Its output is
 * passed on to the parent's stderr, each line prefixed with `risk | `.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { Effect, Schema, type Scope } from "effect"
import * as Broker from "../integration/Broker.ts"

/** The risk watch's entry point. */
export const mainPath: string = fileURLToPath(new URL("./main.ts", import.meta.url))

/**
 * The risk watch did not say it was listening: it exited first, or did not within the deadline.
 */
export class RiskWatchDidNotStart extends Schema.TaggedError<RiskWatchDidNotStart>()("RiskWatchDidNotStart", {
  reason: Schema.String
}) {
  override get message() {
    return `the risk watch did not start: ${this.reason}`
  }
}

/**
 * A running risk watch: its base URL and the process (to kill it in a test).
 */
export interface Running {
  readonly url: string
  readonly process: ChildProcess
}

/**
 * How to start it.
 */
export interface Options {
  readonly databaseUrl: string
  readonly broker: Broker.Broker
  /** `RISK_PORT` (default 0: a free port, read from its first line). */
  readonly port?: number | undefined
  readonly schema?: string | undefined
  readonly durable?: string | undefined
  /** Whether to pass its output on to stderr (default true). */
  readonly echo?: boolean | undefined
  /** More environment (`RISK_LARGE_THRESHOLDS`, ...). */
  readonly env?: Readonly<Record<string, string>> | undefined
}

const listening = /risk watch: listening on (http:\/\/\S+)/

/**
 * Starts the risk watch and waits (at most 30 seconds) until it serves; stops it when the scope closes.
 */
export const start = Effect.fn("RiskWatch.start")(function* (
  options: Options
): Effect.fn.Return<Running, RiskWatchDidNotStart, Scope.Scope> {
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    ...Broker.toEnv(options.broker),
    DATABASE_URL: options.databaseUrl,
    RISK_PORT: String(options.port ?? 0),
    ...(options.schema === undefined ? {} : { RISK_SCHEMA: options.schema }),
    ...(options.durable === undefined ? {} : { RISK_DURABLE: options.durable }),
    ...options.env
  }
  // the broker is the one of the options, not whichever the parent's environment names first
  if (options.broker._tag === "Redis") delete env.NATS_URL
  let stopping = false
  const child = yield* Effect.acquireRelease(
    Effect.sync(() =>
      spawn(process.execPath, ["--conditions=@facta/source", mainPath], { env, stdio: ["ignore", "pipe", "pipe"] })
    ),
    (child) =>
      Effect.suspend(() => {
        stopping = true
        return stop(child)
      })
  )
  // a watch that ends while it should run is said once: the bank goes on, its risk card says the watch does not answer
  child.once("exit", (code, signal) => {
    if (!stopping && (options.echo ?? true)) process.stderr.write(`risk | the risk watch exited (${signal ?? code})\n`)
  })
  const echo = options.echo ?? true
  const url = yield* Effect.callback<string, RiskWatchDidNotStart>((resume) => {
    let found = false
    let buffered = ""
    // the last lines it wrote, to say why when it exits before it listens
    const last: Array<string> = []
    const onLine = (line: string) => {
      if (line.trim() === "") return
      if (echo) process.stderr.write(`risk | ${line}\n`)
      if (!found) {
        last.push(line)
        if (last.length > 5) last.shift()
      }
      const match = found ? null : listening.exec(line)
      if (match !== null) {
        found = true
        resume(Effect.succeed(match[1]!))
      }
    }
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString("utf8")
      const lines = buffered.split("\n")
      buffered = lines.pop() ?? ""
      for (const line of lines) onLine(line)
    }
    child.stdout?.on("data", onData)
    child.stderr?.on("data", onData)
    child.once("exit", (code, signal) => {
      if (!found)
        resume(Effect.fail(new RiskWatchDidNotStart({ reason: `it exited (${signal ?? code}): ${last.join(" | ")}` })))
    })
  }).pipe(
    Effect.timeoutOrElse({
      duration: "30 seconds",
      orElse: () => Effect.fail(new RiskWatchDidNotStart({ reason: "it did not listen within 30 seconds" }))
    })
  )
  return { url, process: child }
})

/** SIGTERM, then SIGKILL after 5 seconds; done once it exited. */
const stop = (child: ChildProcess) =>
  Effect.callback<void>((resume) => {
    if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
    const timer = setTimeout(() => child.kill("SIGKILL"), 5000)
    child.once("exit", () => {
      clearTimeout(timer)
      resume(Effect.void)
    })
    child.kill("SIGTERM")
  })
