/**
 * A PgBouncer in transaction mode in front of the run's PostgreSQL server, for the tests of Facta behind a
 * transaction pooler: a process of its own on a free port of 127.0.0.1, its configuration in a temporary directory,
 * a small server pool (so that server connections really are shared between clients), stopped and cleaned up by
 * `stop`.
 *
 * PgBouncer refuses to run as root: as root it runs as the `postgres` user (`-u postgres`), and its directory is
 * handed to that user.
 *
 * No vitest import here, so that a plain Node script can start one too.
 */
import * as ChildProcess from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { EmbeddedPostgres } from "@facta/embedded-postgres"
import pg from "pg"

/** Where the binary is looked for: `PGBOUNCER` when set, else the Debian package's path, else `PATH`. */
const candidates = (): ReadonlyArray<string> => {
  const configured = process.env.PGBOUNCER
  if (configured !== undefined && configured !== "") return [configured]
  const onPath = (process.env.PATH ?? "").split(path.delimiter).filter((dir) => dir !== "")
  return ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer", ...onPath.map((dir) => path.join(dir, "pgbouncer"))]
}

const isExecutable = (file: string): boolean => {
  try {
    fs.accessSync(file, fs.constants.X_OK)
    return fs.statSync(file).isFile()
  } catch {
    return false
  }
}

/** The PgBouncer binary of this machine, if any. */
export const binary = (): string | undefined => candidates().find(isExecutable)

/**
 * Why PgBouncer cannot run here, or `undefined` when it can: a test file skips on a reason (and fails under
 * `CI=true`, where CI installs it).
 */
export const unavailable = (): string | undefined => {
  const found = binary()
  if (found === undefined) return `pgbouncer not found (looked in ${candidates().join(", ")}; set PGBOUNCER)`
  if (isRoot() && postgresUser() === undefined)
    return "running as root and there is no `postgres` user to run pgbouncer"
  return undefined
}

/** Whether PgBouncer can run here. */
export const isAvailable = (): boolean => unavailable() === undefined

const isRoot = (): boolean => process.getuid?.() === 0

/** The `postgres` user's uid and gid, from /etc/passwd. */
const postgresUser = (): { readonly uid: number; readonly gid: number } | undefined => {
  try {
    for (const line of fs.readFileSync("/etc/passwd", "utf8").split("\n")) {
      const [name, , uid, gid] = line.split(":")
      if (name === "postgres" && uid !== undefined && gid !== undefined) return { uid: Number(uid), gid: Number(gid) }
    }
  } catch {
    return undefined
  }
  return undefined
}

/** A running PgBouncer. */
export interface PgBouncer {
  /** `postgres://<user>@127.0.0.1:<port>/<database>`: the pooled database, under the server's own name. */
  readonly url: string
  readonly port: number
  /**
   * The server connections PgBouncer holds now (its admin console's `SHOW SERVERS`): each one's backend pid, and the
   * port of PgBouncer's end, which the server sees as the backend's `client_port`.
   */
  readonly servers: () => Promise<ReadonlyArray<ServerConnection>>
  /** Stops it (SIGTERM, then SIGKILL) and removes its directory. */
  readonly stop: () => Promise<void>
}

/** One of PgBouncer's connections to the server. */
export interface ServerConnection {
  readonly pid: number
  readonly clientPort: number
}

export interface Options {
  /** Server connections per database and user pair (default 4). */
  readonly poolSize?: number
  /** How long `start` waits for it to accept connections (default 10 s). */
  readonly startTimeoutMillis?: number
}

// a value of the [databases] connection string, quoted as PgBouncer's parser takes it
const connValue = (value: string) => `'${value.replace(/'/g, "''")}'`

/** Whether a TCP connection to the port is accepted. */
const accepts = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port })
    socket.once("connect", () => {
      socket.destroy()
      resolve(true)
    })
    socket.once("error", () => {
      socket.destroy()
      resolve(false)
    })
  })

const sleep = (millis: number) => new Promise((resolve) => setTimeout(resolve, millis))

/**
 * Starts PgBouncer in transaction mode in front of the server `serverUrl` names (a `postgres://` URL with host, port,
 * user, optional password and database). Its clients need no password: the server's credentials are in its
 * configuration.
 */
export const start = async (serverUrl: string, options?: Options): Promise<PgBouncer> => {
  const executable = binary()
  if (executable === undefined) throw new Error(unavailable())
  const server = new URL(serverUrl)
  const user = decodeURIComponent(server.username || "postgres")
  const password = server.password === "" ? undefined : decodeURIComponent(server.password)
  const database = decodeURIComponent(server.pathname.replace(/^\//, "")) || user
  const host = server.hostname === "localhost" || server.hostname === "" ? "127.0.0.1" : server.hostname
  const serverPort = server.port === "" ? 5432 : Number(server.port)
  const port = await EmbeddedPostgres.freePort()

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "facta-pgbouncer-"))
  const config = path.join(dir, "pgbouncer.ini")
  const connection = [
    `host=${connValue(host)}`,
    `port=${serverPort}`,
    `dbname=${connValue(database)}`,
    `user=${connValue(user)}`,
    ...(password === undefined ? [] : [`password=${connValue(password)}`])
  ].join(" ")
  fs.writeFileSync(
    config,
    [
      "[databases]",
      `${database} = ${connection}`,
      "",
      "[pgbouncer]",
      "listen_addr = 127.0.0.1",
      `listen_port = ${port}`,
      // no Unix socket: it would take /tmp/.s.PGSQL.<port>, which another pgbouncer or server may want
      "unix_socket_dir =",
      "pool_mode = transaction",
      // clients log in without a password (the server's user and password are in [databases]); the admin console
      // accepts any user, which serverPids uses
      "auth_type = any",
      "max_client_conn = 500",
      `default_pool_size = ${options?.poolSize ?? 4}`,
      "min_pool_size = 0",
      "reserve_pool_size = 0",
      // startup parameters PgBouncer does not track itself and would refuse a client for (@effect/sql-pg sends
      // only user, database, application_name and client_encoding, which it tracks; other drivers send these)
      "ignore_startup_parameters = extra_float_digits,options,search_path",
      // after a failed login to the server, try again in 1 s (default 15 s)
      "server_login_retry = 1",
      `logfile = ${path.join(dir, "pgbouncer.log")}`,
      `pidfile = ${path.join(dir, "pgbouncer.pid")}`,
      ""
    ].join("\n")
  )
  const args = [config]
  if (isRoot()) {
    const owner = postgresUser()
    if (owner === undefined) throw new Error(unavailable())
    for (const file of [dir, config]) fs.chownSync(file, owner.uid, owner.gid)
    args.unshift("-u", "postgres")
  }
  fs.chmodSync(config, 0o600)

  const output: Array<string> = []
  const child = ChildProcess.spawn(executable, args, { stdio: ["ignore", "pipe", "pipe"], detached: false })
  child.stdout.on("data", (chunk: Buffer) => output.push(chunk.toString()))
  child.stderr.on("data", (chunk: Buffer) => output.push(chunk.toString()))
  let exited: string | undefined
  const exit = new Promise<void>((resolve) =>
    child.once("exit", (code, signal) => {
      exited = `exited with ${signal ?? code}`
      resolve()
    })
  )
  const log = () => {
    let file = ""
    try {
      file = fs.readFileSync(path.join(dir, "pgbouncer.log"), "utf8")
    } catch {
      file = ""
    }
    return `${output.join("")}${file}`.trim().split("\n").slice(-20).join("\n")
  }

  const stop = async () => {
    if (exited === undefined) {
      child.kill("SIGTERM")
      const killed = await Promise.race([exit.then(() => false), sleep(3000).then(() => true)])
      if (killed && exited === undefined) {
        child.kill("SIGKILL")
        await exit
      }
    }
    fs.rmSync(dir, { recursive: true, force: true })
  }

  const deadline = Date.now() + (options?.startTimeoutMillis ?? 10_000)
  while (!(await accepts(port))) {
    if (exited !== undefined || Date.now() > deadline) {
      const why = exited ?? "did not accept connections in time"
      const lines = log()
      await stop()
      throw new Error(`pgbouncer ${why} (port ${port}):\n${lines}`)
    }
    await sleep(25)
  }

  const auth = `${encodeURIComponent(user)}@127.0.0.1:${port}`
  const servers = async (): Promise<ReadonlyArray<ServerConnection>> => {
    // the admin console speaks the simple query protocol only, which node-postgres uses for a query without params
    const admin = new pg.Client({ connectionString: `postgres://${auth}/pgbouncer` })
    await admin.connect()
    try {
      const result = await admin.query<{ remote_pid: string | number; local_port: string | number }>("SHOW SERVERS")
      return result.rows
        .map((row) => ({ pid: Number(row.remote_pid), clientPort: Number(row.local_port) }))
        .filter((server) => server.pid > 0)
    } finally {
      await admin.end()
    }
  }

  return { url: `postgres://${auth}/${encodeURIComponent(database)}`, port, servers, stop }
}
