/**
 * The packaging test: Facta installs and runs in a project outside this repository, as `docs/getting-started.md`
 * says, from the tarballs a release would publish.
 *
 * It builds every package in a copy of the workspace and packs it with `pnpm pack` (all in the system's temporary
 * directory, so the checkout is left as it is), creates a project there with the guide's own `package.json` and
 * `tsconfig.json`, installs the tarballs
 * and Effect from the npm registry with the guide's own install command, then runs the guide's programs with plain
 * `node`, type-checks them with `tsc` under `moduleResolution` `nodenext` and `bundler`, runs the guide's test with
 * vitest and its PostgreSQL step on the embedded server. Every file it writes is a block of the guide that carries a
 * `<!-- packaging: name -->` marker, taken from the Markdown as it is. It also checks that the project holds exactly
 * one copy of `effect`.
 *
 * The broker packages (`@facta/nats`, `@facta/redis`) are packed and installed in the same project, their manifests
 * checked as an outside installation needs them (no `workspace:` ranges, Effect a peer, the `exports` files there),
 * and a program of the test's own (`brokers.ts`) that builds a relay's publisher on each is type-checked with the
 * guide's programs and run with plain `node`: against the machine's NATS and Redis when they answer (it relays two
 * events to each and counts what the broker holds), without a broker otherwise (it builds the publishers' layers).
 *
 * Without the registry (no network) it skips, with one line saying so; under `CI=true` it fails instead.
 */
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { assert, it } from "@effect/vitest"

const root = fileURLToPath(new URL("../..", import.meta.url))
const guideFile = path.join(root, "docs", "getting-started.md")
const run = promisify(execFile)

/** The blocks of the guide that follow a `<!-- packaging: name -->` marker, by name, as the guide writes them. */
const markedBlocks = (markdown: string): ReadonlyMap<string, string> => {
  const blocks = new Map<string, string>()
  const marked = /<!-- packaging: ([\w.-]+) -->\s*\n```[^\n]*\n([\s\S]*?)\n```/g
  for (const match of markdown.matchAll(marked)) {
    if (blocks.has(match[1]!)) throw new Error(`docs/getting-started.md: two blocks marked ${match[1]}`)
    blocks.set(match[1]!, `${match[2]!}\n`)
  }
  return blocks
}

/** What a program's comments say it prints: the `// …` after each `console.log(…)`, in order. */
const expectedOutput = (source: string): ReadonlyArray<string> =>
  [...source.matchAll(/console\.log\(.*\)\)? \/\/ (.*)$/gm)].map((m) => m[1]!.trim())

/** The environment of the project's commands: this run's own settings (vitest's, pnpm's, the database) left out. */
const cleanEnv = (): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = {}
  for (const [key, value] of Object.entries(process.env)) {
    // the registry and npm's cache are the machine's; pnpm's script settings (`npm_*`) are this repository's
    const machine = /^npm_config_(registry|cache|userconfig|@[\w-]+:registry)$/i.test(key)
    if (!machine && /^(npm_|pnpm_|VITEST|NODE_OPTIONS$|NODE_ENV$|DATABASE_URL$|TEST$|INIT_CWD$)/i.test(key)) continue
    env[key] = value
  }
  return { ...env, npm_config_audit: "false", npm_config_fund: "false", npm_config_update_notifier: "false" }
}

/** The published packages, each after those it depends on. */
const packages = ["core", "postgres", "testing", "embedded-postgres", "nats", "redis"] as const

/** Whether something listens at `host:port`. */
const listening = (host: string, port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = net.connect({ host, port })
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(1000, () => done(false))
    socket.once("connect", () => done(true))
    socket.once("error", () => done(false))
  })

const natsUrl = process.env.NATS_URL ?? "127.0.0.1:4222"
const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379"

/**
 * An application's use of the broker packages: a relay's publisher on each, as layers over their clients. With a
 * broker answering it relays two events and prints how many messages the broker holds; without one it only builds the
 * layers (connecting happens when a relay runs).
 */
const brokersProgram = `import * as net from "node:net"
import { CheckpointStore, Event, EventStore, Relay } from "@facta/core"
import { NatsClient, NatsPublisher, NatsStream } from "@facta/nats"
import { RedisClient, RedisPublisher } from "@facta/redis"
import { Effect, Layer, References } from "effect"

const natsUrl = process.env.NATS_URL ?? "127.0.0.1:4222"
const redisUrl = new URL(process.env.REDIS_URL ?? "redis://127.0.0.1:6379")
const prefix = \`shop\${Date.now().toString(36)}\${Math.random().toString(36).slice(2, 6)}\`

const listening = (host: string, port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = net.connect({ host, port })
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(1000, () => done(false))
    socket.once("connect", () => done(true))
    socket.once("error", () => done(false))
  })

const Nats = NatsPublisher.layer({ subject: NatsPublisher.subject(prefix) }).pipe(
  Layer.provideMerge(NatsClient.layer({ servers: natsUrl, name: "shop" }))
)
const Redis = RedisPublisher.layer({ key: RedisPublisher.streamKey(prefix), retention: { maxLen: 1000 } }).pipe(
  Layer.provideMerge(RedisClient.layer({ url: redisUrl.href, name: "shop" }))
)
const Stores = Layer.mergeAll(EventStore.layerMemory, CheckpointStore.layerMemory)

const appended = EventStore.EventStore.use((store) =>
  store.append("Cart-1", [
    { eventId: Event.makeEventIdUnsafe(), type: "ItemAdded", schemaVersion: 1, data: { sku: "a" } },
    { eventId: Event.makeEventIdUnsafe(), type: "ItemAdded", schemaVersion: 1, data: { sku: "b" } }
  ])
)

const toNats = Effect.gen(function* () {
  const client = yield* NatsClient.NatsClient
  yield* NatsStream.ensure({ name: prefix, subjects: [\`\${prefix}.>\`], memory: true })
  const publisher = yield* NatsPublisher.NatsPublisher
  yield* Relay.run(Relay.make({ name: "to-nats", publisher }), { untilCaughtUp: true })
  const info = yield* Effect.promise(() => client.manager.streams.info(prefix))
  yield* Effect.promise(() => client.manager.streams.delete(prefix))
  return info.state.messages
}).pipe(Effect.provide(Nats))

const toRedis = Effect.gen(function* () {
  const client = yield* RedisClient.RedisClient
  const publisher = yield* RedisPublisher.RedisPublisher
  yield* Relay.run(Relay.make({ name: "to-redis", publisher }), { untilCaughtUp: true })
  const entries = yield* Effect.promise(() => client.connection.xLen(\`\${prefix}:Cart\`))
  yield* Effect.promise(() => client.connection.del(\`\${prefix}:Cart\`))
  return entries
}).pipe(Effect.provide(Redis))

const [natsHost, natsPort] = natsUrl.replace(/^nats:\\/\\//, "").split(":")
const natsUp = await listening(natsHost ?? "127.0.0.1", Number(natsPort ?? 4222))
const redisUp = await listening(redisUrl.hostname, Number(redisUrl.port || 6379))

const program = Effect.gen(function* () {
  yield* appended
  console.log(natsUp ? \`nats: \${yield* toNats} messages\` : "nats: no broker")
  console.log(redisUp ? \`redis: \${yield* toRedis} entries\` : "redis: no broker")
})

// the relay's info logs (a lease taken) left out: the output is what the test compares
await Effect.runPromise(
  program.pipe(Effect.provide(Stores), Effect.provideService(References.MinimumLogLevel, "Warn"))
)
`

/**
 * A copy of the workspace that builds and packs the packages as the checkout does: the root's manifests and
 * settings, the build script, and each package's manifest, build settings, README and sources. Each package's
 * `node_modules` is copied as the symbolic links it holds, whose relative targets then reach the copy's packages
 * (`@facta/core`) and, through a link to the checkout's `node_modules`, everything installed.
 */
const stageWorkspace = (workspace: string) => {
  for (const file of [
    "package.json",
    "pnpm-workspace.yaml",
    "tsconfig.base.json",
    "LICENSE",
    "scripts/build-package.ts"
  ]) {
    fs.cpSync(path.join(root, file), path.join(workspace, file))
  }
  fs.symlinkSync(path.join(root, "node_modules"), path.join(workspace, "node_modules"), "dir")
  for (const name of packages) {
    const from = path.join(root, "packages", name)
    const to = path.join(workspace, "packages", name)
    for (const entry of ["package.json", "tsconfig.build.json", "README.md", "src", "node_modules"]) {
      if (fs.existsSync(path.join(from, entry))) {
        fs.cpSync(path.join(from, entry), path.join(to, entry), { recursive: true, verbatimSymlinks: true })
      }
    }
  }
}

/** Whether the npm registry answers (the test needs it to install Effect). */
const registryAnswers = async (): Promise<boolean> => {
  try {
    const { stdout } = await run("npm", ["config", "get", "registry"], { env: cleanEnv(), timeout: 20_000 })
    const response = await fetch(new URL("effect", stdout.trim().replace(/\/?$/, "/")), {
      method: "HEAD",
      signal: AbortSignal.timeout(10_000)
    })
    return response.ok
  } catch {
    return false
  }
}

const online = await registryAnswers()
const inCi = process.env.CI === "true"
if (!online && !inCi) console.log("packaging: skipped (the npm registry does not answer; under CI=true this fails)")

it.skipIf(!online && !inCi)(
  "the getting-started guide, followed in a fresh project outside the repository with the packed packages, works",
  { timeout: 300_000 },
  async () => {
    assert.isTrue(online, "the npm registry answers (CI needs it to install Effect)")
    const timings: Array<string> = []
    const step = async <A>(name: string, f: () => Promise<A>): Promise<A> => {
      const started = performance.now()
      const result = await f()
      timings.push(`${name} ${((performance.now() - started) / 1000).toFixed(1)} s`)
      return result
    }
    /** Runs a command, failing with everything it printed when it fails. */
    const sh = async (file: string, args: ReadonlyArray<string>, options: { cwd: string; timeout: number }) => {
      try {
        return await run(file, args, { ...options, env: cleanEnv(), maxBuffer: 64 * 1024 * 1024 })
      } catch (error) {
        const e = error as { message: string; stdout?: string; stderr?: string }
        throw new Error(`${[file, ...args].join(" ")} failed: ${e.message}\n${e.stdout ?? ""}\n${e.stderr ?? ""}`)
      }
    }

    const guide = markedBlocks(fs.readFileSync(guideFile, "utf8"))
    const block = (name: string) => {
      const code = guide.get(name)
      if (code === undefined) throw new Error(`docs/getting-started.md has no block marked <!-- packaging: ${name} -->`)
      return code
    }
    const temp = fs.mkdtempSync(path.join(os.tmpdir(), "facta-packaging-"))
    try {
      // the embedded server runs as an unprivileged user when this runs as root: it must reach the project
      fs.chmodSync(temp, 0o755)
      const packs = path.join(temp, "packs")
      const project = path.join(temp, "shop")
      fs.mkdirSync(packs)
      fs.mkdirSync(project)

      // build and pack a copy of the workspace, so that nothing in the checkout changes (its dist/ folders)
      const workspace = path.join(temp, "workspace")
      stageWorkspace(workspace)
      await step("build", async () => {
        for (const name of packages) {
          await sh(process.execPath, ["../../scripts/build-package.ts"], {
            cwd: path.join(workspace, "packages", name),
            timeout: 120_000
          })
        }
      })
      await step("pack", async () => {
        for (const name of packages) {
          await sh("pnpm", ["pack", "--pack-destination", packs], {
            cwd: path.join(workspace, "packages", name),
            timeout: 60_000
          })
        }
      })
      assert.strictEqual(fs.readdirSync(packs).filter((f) => f.endsWith(".tgz")).length, 6, "six tarballs")

      for (const name of [
        "package.json",
        "tsconfig.json",
        "tsconfig.bundler.json",
        "Cart.ts",
        "main.ts",
        "Cart.test.ts",
        "production.ts",
        "local.ts"
      ]) {
        fs.writeFileSync(path.join(project, name), block(name))
      }
      assert.strictEqual(JSON.parse(block("package.json")).type, "module")

      // the guide's install command, with the tarballs where this run packed them
      const install = block("install.sh").replaceAll("../facta/dist-packages/", `${packs}/`)
      await step("npm install", async () => {
        await sh("sh", ["-ec", install], { cwd: project, timeout: 180_000 })
        // an application's own Effect platform beside Facta's peers must not bring a second Effect
        await sh("npm", ["install", "@effect/platform-node@^4.1.0"], { cwd: project, timeout: 120_000 })
        // the broker packages beside them, with their clients from the registry
        await sh("sh", ["-ec", `npm install ${packs}/facta-nats-*.tgz ${packs}/facta-redis-*.tgz`], {
          cwd: project,
          timeout: 180_000
        })
      })
      for (const name of ["nats", "redis"]) {
        const dir = path.join(project, "node_modules", "@facta", name)
        const manifest = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"))
        const ranges = JSON.stringify([manifest.dependencies, manifest.peerDependencies])
        assert.notInclude(ranges, "workspace:", `@facta/${name}: no workspace ranges in ${ranges}`)
        assert.strictEqual(
          manifest.dependencies["@facta/core"],
          `^${manifest.version}`,
          `@facta/${name} on @facta/core`
        )
        assert.isDefined(manifest.peerDependencies?.effect, `@facta/${name}: effect is a peer`)
        assert.isUndefined(manifest.dependencies.effect, `@facta/${name}: effect is not a dependency`)
        for (const file of [manifest.exports["."].types, manifest.exports["."].default]) {
          assert.isTrue(fs.existsSync(path.join(dir, file)), `@facta/${name} holds ${file}`)
        }
      }
      fs.writeFileSync(path.join(project, "brokers.ts"), brokersProgram)

      const installed = await sh("npm", ["ls", "effect", "--all", "--parseable"], { cwd: project, timeout: 60_000 })
      const copies = new Set(installed.stdout.split("\n").filter((line) => line.trim() !== ""))
      assert.strictEqual(copies.size, 1, `exactly one copy of effect is installed: ${[...copies].join(", ")}`)

      const main = await step("node main.ts", () =>
        sh(process.execPath, ["main.ts"], { cwd: project, timeout: 60_000 })
      )
      assert.deepStrictEqual(main.stdout.trim().split("\n"), expectedOutput(block("main.ts")))

      await step("tsc nodenext", () =>
        sh(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.json"], {
          cwd: project,
          timeout: 120_000
        })
      )
      await step("tsc bundler", () =>
        sh(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.bundler.json"], {
          cwd: project,
          timeout: 120_000
        })
      )

      const test = await step("vitest", () =>
        sh(process.execPath, ["node_modules/vitest/vitest.mjs", "run"], { cwd: project, timeout: 120_000 })
      )
      assert.match(test.stdout, /Tests\s+.*2 passed/)

      const local = await step("node local.ts (embedded PostgreSQL)", () =>
        sh(process.execPath, ["local.ts"], { cwd: project, timeout: 120_000 })
      )
      assert.deepStrictEqual(local.stdout.trim().split("\n"), expectedOutput(block("local.ts")))

      // the broker packages run: against the machine's brokers when they answer
      const [natsHost, natsPort] = natsUrl.replace(/^nats:\/\//, "").split(":")
      const natsUp = await listening(natsHost ?? "127.0.0.1", Number(natsPort ?? 4222))
      const redisUp = await listening(new URL(redisUrl).hostname, Number(new URL(redisUrl).port || 6379))
      const brokers = await step("node brokers.ts", () =>
        sh(process.execPath, ["brokers.ts"], { cwd: project, timeout: 60_000 })
      )
      assert.deepStrictEqual(brokers.stdout.trim().split("\n"), [
        natsUp ? "nats: 2 messages" : "nats: no broker",
        redisUp ? "redis: 2 entries" : "redis: no broker"
      ])

      console.log(`packaging: ok (${timings.join(", ")})`)
    } finally {
      fs.rmSync(temp, { recursive: true, force: true })
    }
  }
)
