/**
 * The bank on a stalled database: a PostgreSQL server of this test's own (never the run's shared one) is stopped with
 * SIGSTOP for longer than the bank's deadlines. Every route of the API, listed from the API definition so that none is
 * forgotten, must answer a 503 problem with `Retry-After` within the request deadline (plus a second of slack), and
 * the routes that need no database must answer as usual. After SIGCONT every route must answer normally again within
 * a bounded time, with no restart, and the background work must resume: a deposit shows in the read models and a
 * transfer completes (the transfer process and both projections run again).
 *
 * Besides, without a database: the route deadline (the last line of defence) answers a 503 problem even for work
 * that cannot be interrupted, every 503 carries `Retry-After`, and a `StorageError` is a 503 only when retryable.
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { PgClient } from "@effect/sql-pg"
import { assert, describe, it } from "@effect/vitest"
import { StorageError } from "@facta/core"
import { EmbeddedPostgres } from "@facta/embedded-postgres"
import { Duration, Effect, Layer, Redacted, References } from "effect"
import { HttpRouter, HttpServer, HttpServerResponse } from "effect/http"
import { HttpApi } from "effect/http-api"
import { Api } from "../../src/api/Api.ts"
import { demoActors, type IssuedToken, makeToken, Tokens } from "../../src/api/Auth.ts"
import * as Problems from "../../src/api/Problems.ts"
import * as Server from "../../src/api/Server.ts"
import * as Background from "../../src/app/Background.ts"
import * as Database from "../../src/infra/Database.ts"
import * as Deadlines from "../../src/infra/Deadlines.ts"

const deadlines = { request: "3 seconds", storage: "1 second", commit: "5 seconds" } as const
const requestDeadline = Duration.toMillis(Duration.fromInputUnsafe(deadlines.request))
/** How long the database stays stopped: past every deadline, and past a projection batch's. */
const stallFor = 6_500
/** How long every route has, after SIGCONT, to answer normally again. */
const recoveryBound = 20_000

const issued: ReadonlyArray<IssuedToken> = demoActors.map((actor) => ({ token: makeToken(), actor }))
const tokenOf = (name: string) => issued.find((entry) => entry.actor.name === name)!.token

/** The bank on the server at `url`: stores, read models, HTTP server on a free port, background work. */
const bank = (url: string) =>
  Layer.mergeAll(
    Server.layer({
      port: 0,
      host: "127.0.0.1",
      settings: { approvalThreshold: "1000.00", readYourWritesTimeout: "2 seconds" }
    }),
    Layer.effectDiscard(
      Effect.forkScoped(
        Background.run({ projections: { batchWindow: "1 millis", pollInterval: "50 millis" }, expiryEvery: "1 second" })
      )
    )
  ).pipe(
    Layer.provideMerge(Layer.mergeAll(Database.layerStores(), Tokens.layer(issued))),
    Layer.provideMerge(PgClient.layer({ url: Redacted.make(url), maxConnections: 20 })),
    Layer.provideMerge(Layer.mergeAll(Deadlines.layer(deadlines), Layer.succeed(References.MinimumLogLevel, "Error")))
  )

/** The postmaster of a server and its children, stopped and continued with signals. */
const stall = (dataDir: string) => {
  const postmaster = Number(fs.readFileSync(path.join(dataDir, "data", "postmaster.pid"), "utf8").split("\n")[0])
  const children = () => {
    try {
      return execFileSync("pgrep", ["-P", String(postmaster)], { encoding: "utf8" })
        .split("\n")
        .filter((line) => line.trim() !== "")
        .map(Number)
    } catch {
      return [] // pgrep exits with 1 when there are none
    }
  }
  const stopped = new Set<number>()
  const signal = (pid: number, name: NodeJS.Signals) => {
    try {
      process.kill(pid, name)
    } catch {
      // the process is gone
    }
  }
  return {
    postmaster,
    stop: () => {
      // the postmaster first, so that it forks no new backend meanwhile
      for (const pid of [postmaster, ...children()]) {
        signal(pid, "SIGSTOP")
        stopped.add(pid)
      }
      return stopped.size
    },
    resume: () => {
      for (const pid of [...stopped, ...children()]) signal(pid, "SIGCONT")
      stopped.clear()
    }
  }
}

interface Reply {
  readonly status: number
  readonly contentType: string
  readonly retryAfter: string | null
  // biome-ignore lint/suspicious/noExplicitAny: bodies are checked field by field
  readonly body: any
  readonly text: string
  readonly ms: number
}

/** One request, never waiting more than 15 seconds (a hanging route fails the test instead of hanging it). */
const request = (
  base: string,
  method: string,
  path: string,
  as: string | undefined,
  body?: unknown,
  extraHeaders?: Record<string, string>
) =>
  Effect.promise(async (): Promise<Reply> => {
    const headers: Record<string, string> = { ...extraHeaders }
    if (as !== undefined) headers.authorization = `Bearer ${tokenOf(as)}`
    if (body !== undefined) headers["content-type"] = "application/json"
    const started = performance.now()
    try {
      const response = await fetch(`${base}${path}`, {
        method,
        headers,
        signal: AbortSignal.timeout(15_000),
        ...(body === undefined ? {} : { body: JSON.stringify(body) })
      })
      const text = await response.text()
      let parsed: unknown = null
      try {
        parsed = JSON.parse(text)
      } catch {
        parsed = null
      }
      return {
        status: response.status,
        contentType: response.headers.get("content-type") ?? "",
        retryAfter: response.headers.get("retry-after"),
        body: parsed,
        text: text.slice(0, 300),
        ms: Math.round(performance.now() - started)
      }
    } catch (error) {
      return { status: 0, contentType: "", retryAfter: null, body: null, text: String(error), ms: 15_000 }
    }
  })

/** Every endpoint of the API as `group.name` with its method, from its definition. */
const endpointsOfApi = (): Record<string, string> => {
  const methods: Record<string, string> = {}
  HttpApi.reflect(Api, {
    onGroup: () => {},
    onEndpoint: ({ group, endpoint }) => {
      methods[`${group.identifier}.${endpoint.identifier}`] = endpoint.method
    }
  })
  return methods
}

interface Route {
  readonly method: "GET" | "POST"
  readonly path: string
  readonly as: string
  readonly body?: unknown
  readonly headers?: Record<string, string>
  /** The status of a normal answer. */
  readonly ok: number
  /** The route reads no database (it answers as usual during the stall). */
  readonly needsNoDatabase?: boolean
}

describe("the bank on a stalled database", () => {
  it.live(
    "answers 503 problems within its deadline on every route, and recovers by itself",
    () =>
      Effect.gen(function* () {
        // a server of our own: the shared one must never be stalled; continued before it stops, whatever happens
        const server = yield* Effect.acquireRelease(
          Effect.promise(() => EmbeddedPostgres.startAsync()),
          (started) => Effect.promise(() => started.stop())
        )
        const signals = stall(server.dataDir)
        const context = yield* Layer.build(bank(server.url))
        // runs first (finalizers run in reverse): the bank and the server stop on a running database
        yield* Effect.addFinalizer(() => Effect.sync(signals.resume))
        const address = yield* HttpServer.HttpServer.use((http) => Effect.succeed(http.address)).pipe(
          Effect.provide(context)
        )
        if (!("port" in address)) return assert.fail("expected a TCP address")
        const base = `http://127.0.0.1:${address.port}`
        const call = (method: string, path: string, as?: string, body?: unknown, headers?: Record<string, string>) =>
          request(base, method, path, as, body, headers)

        // seed: alice's account and two empty ones to close, bob's, and four transfers awaiting approval
        // the teller (tina) opens them and books the opening deposits: customers do not credit themselves
        const open = (owner: string, initialDeposit: string) =>
          Effect.map(call("POST", "/accounts", "tina", { currency: "USD", owner, initialDeposit }), (reply) => {
            assert.strictEqual(reply.status, 201, reply.text)
            return reply.body.accountId as string
          })
        const alice = yield* open("alice", "5000.00")
        const spare = yield* open("alice", "0.00")
        const spareAfterStall = yield* open("alice", "0.00")
        const bob = yield* open("bob", "10.00")
        const pending = (reference: string) =>
          Effect.map(
            call("POST", "/transfers", "alice", { from: alice, to: bob, amount: "1500.00", reference }),
            (r) => {
              assert.strictEqual(r.status, 201, r.text)
              assert.strictEqual(r.body.status, "AwaitingApproval", r.text)
              return r.body.transferId as string
            }
          )
        // four withdrawals above the approval threshold, each waiting for a second person (an outflow)
        const payer = yield* open("alice", "5000.00")
        const outflow = (amount: string) =>
          Effect.map(call("POST", `/accounts/${payer}/withdrawals`, "alice", { amount }), (r) => {
            assert.strictEqual(r.status, 202, r.text)
            return r.body.requestId as string
          })
        const [outflowToApprove, outflowToReject, outflowToApproveLater, outflowToRejectLater] = yield* Effect.all([
          outflow("1001.00"),
          outflow("1002.00"),
          outflow("1003.00"),
          outflow("1004.00")
        ])
        const [toApprove, toReject, toApproveLater, toRejectLater] = yield* Effect.all([
          pending("one"),
          pending("two"),
          pending("three"),
          pending("four")
        ])

        // every endpoint of the API, in an order whose commands succeed one after the other
        const routes = (
          approve: string,
          reject: string,
          close: string,
          outflows: { readonly approve: string; readonly reject: string }
        ): Record<string, Route> => ({
          "accounts.list": { method: "GET", path: "/accounts", as: "alice", ok: 200 },
          "accounts.get": { method: "GET", path: `/accounts/${alice}`, as: "alice", ok: 200 },
          "accounts.history": { method: "GET", path: `/accounts/${alice}/history`, as: "alice", ok: 200 },
          "accounts.explain": { method: "GET", path: `/accounts/${alice}/explain`, as: "alice", ok: 200 },
          "accounts.asOf": { method: "GET", path: `/accounts/${alice}/as-of?version=1`, as: "dave", ok: 200 },
          "accounts.audit": { method: "GET", path: `/accounts/${alice}/audit`, as: "dave", ok: 200 },
          "transfers.list": { method: "GET", path: "/transfers", as: "carol", ok: 200 },
          "transfers.get": { method: "GET", path: `/transfers/${approve}`, as: "carol", ok: 200 },
          "accounts.currencies": { method: "GET", path: "/currencies", as: "alice", ok: 200, needsNoDatabase: true },
          "accounts.outflows": { method: "GET", path: `/accounts/${payer}/outflows`, as: "carol", ok: 200 },
          "accounts.approveOutflow": {
            method: "POST",
            path: `/accounts/${payer}/outflows/${outflows.approve}/approve`,
            as: "carol",
            ok: 200
          },
          "accounts.rejectOutflow": {
            method: "POST",
            path: `/accounts/${payer}/outflows/${outflows.reject}/reject`,
            as: "carol",
            body: { reason: "no" },
            ok: 200
          },
          "console.transferStory": { method: "GET", path: `/transfers/${approve}/story`, as: "dave", ok: 200 },
          "console.projections": { method: "GET", path: "/projections", as: "admin", ok: 200 },
          // the background run holds the projection's lease: a rebuild is refused, naming the holder
          "console.rebuildProjection": {
            method: "POST",
            path: "/projections/bank-accounts/rebuild",
            as: "admin",
            ok: 409
          },
          // no risk watch runs beside this bank: a 503 problem (RiskWatchOff) with Retry-After, stalled or not
          "risk.alerts": { method: "GET", path: "/risk/alerts", as: "dave", ok: 503 },
          // with an Idempotency-Key: its transaction has a deadline too, and the same key is retried after the stall
          "accounts.open": {
            method: "POST",
            path: "/accounts",
            as: "bob",
            body: { currency: "USD" },
            headers: { "idempotency-key": "open-during-the-stall" },
            ok: 201
          },
          "accounts.deposit": {
            method: "POST",
            path: `/accounts/${alice}/deposits`,
            as: "tina",
            body: { amount: "1.25", reference: "after the stall" },
            ok: 200
          },
          "accounts.withdraw": {
            method: "POST",
            path: `/accounts/${alice}/withdrawals`,
            as: "alice",
            body: { amount: "0.25" },
            ok: 200
          },
          "accounts.chargeFee": {
            method: "POST",
            path: `/accounts/${alice}/fees`,
            as: "admin",
            body: { amount: "0.10", reason: "statement" },
            ok: 200
          },
          "accounts.freeze": { method: "POST", path: `/accounts/${bob}/freeze`, as: "admin", body: {}, ok: 200 },
          "accounts.unfreeze": { method: "POST", path: `/accounts/${bob}/unfreeze`, as: "admin", body: {}, ok: 200 },
          "accounts.close": { method: "POST", path: `/accounts/${close}/close`, as: "alice", body: {}, ok: 200 },
          "transfers.initiate": {
            method: "POST",
            path: "/transfers",
            as: "alice",
            body: { from: alice, to: bob, amount: "2.00", reference: "small" },
            ok: 201
          },
          "transfers.approve": { method: "POST", path: `/transfers/${approve}/approve`, as: "carol", ok: 200 },
          "transfers.reject": {
            method: "POST",
            path: `/transfers/${reject}/reject`,
            as: "carol",
            body: { reason: "no" },
            ok: 200
          }
        })
        const duringStall = routes(toApprove, toReject, spare, { approve: outflowToApprove, reject: outflowToReject })
        assert.deepStrictEqual(
          Object.fromEntries(Object.entries(duringStall).map(([name, route]) => [name, route.method])),
          endpointsOfApi(),
          "every endpoint of the API is tried, with its method"
        )
        // the routes outside the API, which need no database
        const static_ = [
          { path: "/", as: undefined },
          { path: "/openapi.json", as: undefined },
          { path: "/docs", as: undefined }
        ]

        // stall the database, longer than every deadline
        const stalledAt = performance.now()
        const processes = signals.stop()
        const stalled = yield* Effect.all(
          [
            ...Object.entries(duringStall).map(([name, route]) =>
              Effect.map(call(route.method, route.path, route.as, route.body, route.headers), (reply) => ({
                name,
                reply
              }))
            ),
            ...static_.map((route) =>
              Effect.map(call("GET", route.path), (reply) => ({ name: `GET ${route.path}`, reply }))
            )
          ],
          { concurrency: "unbounded" }
        )
        const remaining = stallFor - (performance.now() - stalledAt)
        if (remaining > 0) yield* Effect.sleep(Duration.millis(remaining))
        signals.resume()
        const resumedAt = performance.now()
        const stalledMs = Math.round(resumedAt - stalledAt)

        // then every route again, each until it answers normally
        const afterStall = routes(toApproveLater, toRejectLater, spareAfterStall, {
          approve: outflowToApproveLater,
          reject: outflowToRejectLater
        })
        const recovered: Array<{ name: string; reply: Reply; sinceResume: number; tries: number }> = []
        for (const [name, route] of Object.entries(afterStall)) {
          let tries = 0
          let reply: Reply
          do {
            if (tries > 0) yield* Effect.sleep("200 millis")
            tries++
            reply = yield* call(route.method, route.path, route.as, route.body, route.headers)
          } while (reply.status !== route.ok && performance.now() - resumedAt < recoveryBound)
          recovered.push({ name, reply, sinceResume: Math.round(performance.now() - resumedAt), tries })
        }

        // the background work resumed: the deposit is in the read model, the small transfer completes
        const deposited = recovered.find((r) => r.name === "accounts.deposit")!.reply
        const initiated = recovered.find((r) => r.name === "transfers.initiate")!.reply
        const poll = (path: string, as: string, check: (body: Reply["body"]) => boolean) =>
          Effect.gen(function* () {
            while (performance.now() - resumedAt < recoveryBound) {
              const reply = yield* call("GET", path, as)
              if (reply.status === 200 && check(reply.body)) return Math.round(performance.now() - resumedAt)
              yield* Effect.sleep("200 millis")
            }
            return -1
          })
        const historyAt = yield* poll(`/accounts/${alice}/history?limit=500`, "alice", (body) =>
          body.entries.some(
            (entry: { type: string; reference: string | null }) =>
              entry.type === "MoneyDeposited" && entry.reference === "after the stall"
          )
        )
        const completedAt = yield* poll(
          "/transfers?status=Completed&limit=500",
          "carol",
          (body) =>
            initiated.status === 201 &&
            body.some((t: { transferId: string }) => t.transferId === initiated.body.transferId)
        )

        console.log(
          [
            `stalled ${processes} PostgreSQL processes (postmaster ${signals.postmaster}) for ${stalledMs} ms;` +
              ` deadlines: request ${deadlines.request}, storage ${deadlines.storage}`,
            "during the stall (status, ms):",
            ...stalled.map(
              ({ name, reply }) =>
                `  ${name.padEnd(22)} ${reply.status} ${String(reply.ms).padStart(5)} ms  ${reply.body?.code ?? ""}`
            ),
            "after SIGCONT (status, ms since SIGCONT, tries):",
            ...recovered.map(
              ({ name, reply, sinceResume, tries }) =>
                `  ${name.padEnd(22)} ${reply.status} ${String(sinceResume).padStart(5)} ms  ${tries}`
            ),
            `deposit in the read model ${historyAt} ms after SIGCONT; transfer completed ${completedAt} ms after SIGCONT`
          ].join("\n")
        )

        // during the stall: a 503 problem with Retry-After within the deadline on every API route, the rest as usual
        for (const { name, reply } of stalled) {
          assert.isAtMost(reply.ms, requestDeadline + 1_000, `${name} answered within the deadline`)
          if (name.startsWith("GET /") || duringStall[name]?.needsNoDatabase === true) {
            assert.strictEqual(reply.status, 200, `${name}: ${reply.text}`)
            continue
          }
          assert.strictEqual(reply.status, 503, `${name}: ${reply.text}`)
          assert.match(reply.contentType, /^application\/problem\+json/, name)
          assert.strictEqual(reply.body.status, 503, name)
          assert.strictEqual(reply.body.title, "Service Unavailable", name)
          assert.isString(reply.body.code, name)
          assert.isString(reply.body.detail, name)
          assert.match(reply.retryAfter ?? "", /^\d+$/, `${name} carries Retry-After`)
        }
        // afterwards: every route answers normally, and the background work runs again
        for (const { name, reply, sinceResume } of recovered) {
          assert.strictEqual(reply.status, afterStall[name]!.ok, `${name} after the stall: ${reply.text}`)
          assert.isAtMost(sinceResume, recoveryBound, name)
        }
        assert.strictEqual(deposited.status, 200, deposited.text)
        assert.isAtLeast(historyAt, 0, "the deposit reached the read model: the accounts projection resumed")
        assert.isAtLeast(
          completedAt,
          0,
          "the transfer completed: the transfer process and transfers projection resumed"
        )
      }),
    90_000
  )
})

describe("the last line of defence", () => {
  it.live(
    "a request past the request deadline is a 503 problem with Retry-After, even when its work cannot be interrupted",
    () =>
      Effect.gen(function* () {
        const app = Layer.mergeAll(
          HttpRouter.add("GET", "/slow", Effect.as(Effect.never, HttpServerResponse.empty())),
          // work that cannot be interrupted (a rollback on a stalled connection) and ends long after the deadline
          HttpRouter.add(
            "GET",
            "/stuck",
            Effect.as(Effect.uninterruptible(Effect.sleep("4 seconds")), HttpServerResponse.empty())
          ),
          HttpRouter.add("GET", "/fast", Effect.succeed(HttpServerResponse.text("ok"))),
          HttpRouter.add("GET", "/unavailable", Effect.succeed(HttpServerResponse.jsonUnsafe({}, { status: 503 }))),
          Server.DeadlineMiddleware.pipe(
            Layer.provide(Deadlines.layer({ request: "2 seconds", storage: "1500 millis" }))
          ),
          Layer.succeed(References.MinimumLogLevel, "Error")
        )
        const { handler, dispose } = HttpRouter.toWebHandler(app, { disableLogger: true })
        yield* Effect.addFinalizer(() => Effect.promise(dispose))
        const get = (path: string) =>
          Effect.promise(async () => {
            const started = performance.now()
            const response = await handler(new Request(`http://localhost${path}`))
            const text = await response.text()
            return { response, text, ms: performance.now() - started }
          })
        for (const path of ["/slow", "/stuck"]) {
          const { response, text, ms } = yield* get(path)
          assert.strictEqual(response.status, 503, text)
          assert.match(response.headers.get("content-type") ?? "", /^application\/problem\+json/)
          assert.strictEqual(JSON.parse(text).code, "RequestTimeout")
          assert.strictEqual(response.headers.get("retry-after"), "2", "the storage deadline, rounded up")
          assert.isAtLeast(ms, 1_900, path)
          assert.isAtMost(ms, 3_000, path)
        }
        const fast = yield* get("/fast")
        assert.strictEqual(fast.response.status, 200)
        assert.isNull(fast.response.headers.get("retry-after"))
        const unavailable = yield* get("/unavailable")
        assert.strictEqual(unavailable.response.status, 503)
        assert.strictEqual(unavailable.response.headers.get("retry-after"), "2", "every 503 carries Retry-After")
      }),
    20_000
  )

  it("a retryable StorageError is a 503, a non-retryable one a 500", () => {
    const error = (retryable: boolean) =>
      new StorageError.StorageError({ store: "ReadModels", operation: "accounts", retryable, cause: "x" })
    const retryable = Problems.fromError(error(true), { what: "accounts" })
    const permanent = Problems.fromError(error(false), { what: "accounts" })
    assert.instanceOf(retryable, Problems.ServiceUnavailable)
    assert.instanceOf(permanent, Problems.InternalError)
    assert.strictEqual(permanent.code, "StorageError")
  })

  it("the storage deadline must be shorter than the request deadline", () => {
    assert.throws(() => Deadlines.make({ request: "1 second", storage: "1 second" }), /shorter/)
    assert.throws(() => Deadlines.make({ request: "1 second", storage: "0 millis" }), /positive/)
    assert.deepStrictEqual(Deadlines.make({}), Deadlines.defaults)
  })
})
