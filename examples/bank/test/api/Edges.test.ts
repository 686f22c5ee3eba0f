/**
 * The HTTP edges (`infra/HttpEdges.ts`, `api/Demo.ts`): problems for every error, whichever part of the server
 * answers; the body limit, enforced while the body is read; unknown body fields refused as the OpenAPI document
 * says; the security headers on every response (and the page and the docs working under the Content-Security-Policy,
 * in a headless Chromium when there is one); one access-log line per request; `/health` and the demo's users.
 */
import { existsSync } from "node:fs"
import * as Http from "node:http"
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Layer, Logger, References } from "effect"
import { chromium } from "playwright-core"
import * as Database from "../../../../test/support/database.ts"
import * as Server from "../../src/api/Server.ts"
import * as HttpEdges from "../../src/infra/HttpEdges.ts"
import { app, type Body, baseUrl, call, issued, projections, type Reply, stores } from "./harness.ts"

const isProblem = (reply: Reply, status: number, code?: string) => {
  assert.strictEqual(reply.status, status, reply.text)
  assert.match(reply.headers.get("content-type") ?? "", /^application\/problem\+json/)
  assert.strictEqual(reply.body.status, status)
  assert.isString(reply.body.type)
  assert.isString(reply.body.title)
  assert.isString(reply.body.detail)
  if (code !== undefined) assert.strictEqual(reply.body.code, code, reply.text)
}

const hasSecurityHeaders = (reply: Reply) => {
  const csp = reply.headers.get("content-security-policy") ?? ""
  assert.include(csp, "default-src 'none'", reply.text.slice(0, 200))
  assert.include(csp, "frame-ancestors 'none'")
  assert.notInclude(csp.split(";").find((d) => d.trim().startsWith("script-src")) ?? "", "'unsafe-inline'")
  assert.strictEqual(reply.headers.get("x-frame-options"), "DENY")
  assert.strictEqual(reply.headers.get("x-content-type-options"), "nosniff")
  assert.strictEqual(reply.headers.get("referrer-policy"), "no-referrer")
  assert.isString(reply.headers.get("x-request-id"))
}

/** A request with `fetch` and headers of our own (the harness always sends JSON). */
const raw = (
  method: string,
  path: string,
  init?: { readonly headers?: Record<string, string>; readonly body?: string }
) =>
  Effect.gen(function* () {
    const base = yield* baseUrl
    return yield* Effect.promise(async (): Promise<Reply> => {
      const response = await fetch(`${base}${path}`, {
        method,
        headers: init?.headers ?? {},
        ...(init?.body === undefined ? {} : { body: init.body })
      })
      const text = await response.text()
      let body: Body = null
      try {
        body = JSON.parse(text)
      } catch {}
      return { status: response.status, headers: response.headers, body, text }
    })
  })

/**
 * Sends `total` bytes of JSON-looking body in chunks (no Content-Length: chunked), stopping as soon as the answer
 * comes; resolves with the answer and how many bytes were written by then.
 */
const sendChunked = (base: string, path: string, token: string, total: number) =>
  new Promise<{ status: number; body: string; written: number }>((resolve, reject) => {
    const chunk = Buffer.alloc(16 * 1024, 0x20)
    let written = 0
    let answered = false
    const request = Http.request(`${base}${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json", "transfer-encoding": "chunked" }
    })
    request.on("response", (response) => {
      answered = true
      let body = ""
      response.setEncoding("utf8")
      response.on("data", (data) => (body += data))
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body, written }))
      response.on("error", reject)
    })
    // the server closes the connection after its 413: a write after that fails, which is the point
    request.on("error", (error) => (answered ? undefined : reject(error)))
    const pump = () => {
      while (!answered && written < total) {
        written += chunk.length
        if (!request.write(chunk)) return void request.once("drain", pump)
      }
      if (!answered) request.end()
    }
    request.write("{")
    pump()
  })

const longId = (length: number) => "a".repeat(length)

layer(app("edges", { demo: true }), { excludeTestServices: true, timeout: 60_000 })("the HTTP edges", (it) => {
  it.effect("unknown routes, malformed paths, wrong methods, non-JSON bodies, missing tokens: problems", () =>
    Effect.gen(function* () {
      const unknown = yield* call("GET", "/no/such/route", { as: "alice" })
      isProblem(unknown, 404, "RouteNotFound")
      hasSecurityHeaders(unknown)
      isProblem(yield* call("GET", "/accounts/%E0%A4%A/history", { as: "alice" }), 404)
      // a long unknown path is not echoed back whole
      const long = yield* call("GET", `/no/${longId(50_000)}`, { as: "alice" })
      isProblem(long, 404, "RouteNotFound")
      assert.isBelow(long.body.detail.length, 300)

      const wrongMethod = yield* call("DELETE", "/accounts", { as: "alice" })
      isProblem(wrongMethod, 405, "MethodNotAllowed")
      assert.strictEqual(wrongMethod.headers.get("allow"), "GET, HEAD, POST")
      const onAnId = yield* call("PUT", "/transfers/t-1", { as: "alice", body: {} })
      isProblem(onAnId, 405)
      assert.strictEqual(onAnId.headers.get("allow"), "GET, HEAD")

      const text = yield* raw("POST", "/accounts", {
        headers: { authorization: `Bearer ${issued[0]?.token}`, "content-type": "text/plain" },
        body: "currency=USD"
      })
      isProblem(text, 415)
      hasSecurityHeaders(text)
      const notJson = yield* call("POST", "/accounts", { as: "alice", rawBody: "{currency" })
      isProblem(notJson, 400, "InvalidRequest")

      for (const reply of [yield* call("GET", "/accounts"), yield* call("GET", "/accounts", { token: "nope" })]) {
        isProblem(reply, 401)
        assert.match(reply.headers.get("www-authenticate") ?? "", /^Bearer\b/)
        hasSecurityHeaders(reply)
      }
    })
  )

  it.effect("an id over the limit is the same 400 at any length; past Node's header limit a 431 problem", () =>
    Effect.gen(function* () {
      const replies = []
      for (const length of [201, 1_000, 10_000, 100_000]) {
        const reply = yield* call("GET", `/accounts/${longId(length)}`, { as: "alice" })
        isProblem(reply, 400, "InvalidRequest")
        assert.strictEqual(reply.body.field, "params.id")
        replies.push(reply.body)
      }
      for (const body of replies) assert.deepStrictEqual(body, replies[0])
      // an id of the longest valid length is merely unknown
      isProblem(yield* call("GET", `/accounts/${longId(200)}`, { as: "alice" }), 404, "NotFound")

      const tooLong = yield* call("GET", `/accounts/${longId(HttpEdges.maxHeaderBytes + 1)}`, { as: "alice" })
      isProblem(tooLong, 431)
      hasSecurityHeaders(tooLong)
    })
  )

  it.effect("a body over 64 KiB is a 413 problem, refused while it is read (chunked) or at once (Content-Length)", () =>
    Effect.gen(function* () {
      const base = yield* baseUrl
      const token = issued[0]?.token ?? ""
      const total = 32 * 1024 * 1024
      const chunked = yield* Effect.promise(() => sendChunked(base, "/accounts", token, total))
      assert.strictEqual(chunked.status, 413, chunked.body)
      const problem = JSON.parse(chunked.body)
      assert.strictEqual(problem.code, "BodyTooLarge")
      assert.strictEqual(problem.limit, HttpEdges.maxBodyBytes)
      // the answer came long before the client was done: the server stopped reading at the limit
      assert.isBelow(chunked.written, total / 4)

      const declared = yield* call("POST", "/transfers", {
        as: "alice",
        body: { from: "a", to: "b", amount: "1.00", reference: "x".repeat(HttpEdges.maxBodyBytes) }
      })
      isProblem(declared, 413, "BodyTooLarge")
      assert.strictEqual(declared.headers.get("connection"), "close")
      hasSecurityHeaders(declared)

      // a body just under the limit is read and judged by the API (here: its reference is too long)
      const under = yield* call("POST", "/transfers", {
        as: "alice",
        body: { from: "a", to: "b", amount: "1.00", reference: "x".repeat(60_000) }
      })
      isProblem(under, 400, "InvalidRequest")
    })
  )

  it.effect("unknown body fields are a 400 naming the field, as the OpenAPI document declares", () =>
    Effect.gen(function* () {
      const extra = yield* call("POST", "/accounts", { as: "alice", body: { currency: "USD", colour: "blue" } })
      isProblem(extra, 400, "InvalidRequest")
      assert.strictEqual(extra.body.field, "colour")
      const nested = yield* call("POST", "/transfers", {
        as: "alice",
        body: { from: "a", to: "b", amount: "1.00", memo: "lunch" }
      })
      isProblem(nested, 400)
      assert.strictEqual(nested.body.field, "memo")

      const openapi = yield* call("GET", "/openapi.json")
      hasSecurityHeaders(openapi)
      const operations = Object.values(openapi.body.paths as Record<string, Record<string, Body>>).flatMap((path) =>
        Object.entries(path).filter(([method]) => method === "post")
      )
      assert.isAbove(operations.length, 0)
      for (const [, operation] of operations) {
        const schema = operation.requestBody?.content?.["application/json"]?.schema
        if (schema === undefined) continue
        const resolved =
          schema.$ref === undefined ? schema : openapi.body.components.schemas[schema.$ref.split("/").pop()]
        assert.strictEqual(
          resolved.additionalProperties,
          false,
          `${operation.operationId}: ${JSON.stringify(resolved)}`
        )
      }

      // If-Match is offered where a stream's version can be matched, not on creations
      const headerNames = (path: string) =>
        (openapi.body.paths[path].post.parameters as ReadonlyArray<Body>)
          .filter((parameter) => parameter.in === "header")
          .map((parameter) => parameter.name)
      assert.notInclude(headerNames("/accounts"), "if-match")
      assert.notInclude(headerNames("/transfers"), "if-match")
      assert.include(headerNames("/accounts/{id}/deposits"), "if-match")
      assert.include(headerNames("/accounts"), "idempotency-key")
    })
  )

  it.effect("security headers on every response: the page, the docs, the API, its errors", () =>
    Effect.gen(function* () {
      const page = yield* call("GET", "/")
      assert.strictEqual(page.status, 200)
      hasSecurityHeaders(page)
      const docs = yield* call("GET", "/docs")
      assert.strictEqual(docs.status, 200)
      hasSecurityHeaders(docs)
      // the docs run inline scripts: each is allowed by its hash, and nothing else inline is
      const docsCsp = docs.headers.get("content-security-policy") ?? ""
      for (const hash of HttpEdges.inlineScriptHashes(docs.text)) assert.include(docsCsp, hash)
      const list = yield* call("GET", "/accounts", { as: "alice" })
      assert.strictEqual(list.status, 200)
      hasSecurityHeaders(list)
      // the caller's request id comes back; a strange one is replaced
      const tagged = yield* call("GET", "/accounts", { as: "alice", headers: { "x-request-id": "req-42" } })
      assert.strictEqual(tagged.headers.get("x-request-id"), "req-42")
      const strange = yield* call("GET", "/accounts", { as: "alice", headers: { "x-request-id": "a b<c>" } })
      assert.notStrictEqual(strange.headers.get("x-request-id"), "a b<c>")
    })
  )

  it.effect("GET /health says whether the read models caught up; GET /demo/users lists the demo tokens", () =>
    Effect.gen(function* () {
      const opened = yield* call("POST", "/accounts", { as: "alice", body: { currency: "USD" } })
      assert.strictEqual(opened.status, 201, opened.text)
      const health = yield* call("GET", "/health")
      assert.strictEqual(health.status, 200, health.text)
      assert.strictEqual(health.body.status, "ok")
      assert.isBoolean(health.body.readModels.caughtUp)
      assert.isNumber(health.body.readModels.eventsBehind)
      hasSecurityHeaders(health)

      const users = yield* call("GET", "/demo/users")
      assert.strictEqual(users.status, 200, users.text)
      assert.strictEqual(users.headers.get("cache-control"), "no-store")
      assert.deepStrictEqual(
        users.body,
        issued.map(({ actor, token }) => ({ name: actor.name, role: actor.role, token }))
      )
    })
  )
})

// Without demo mode there is no /demo/users (and the page cannot hand out tokens)
layer(app("edges_nodemo", { projections: false }), { excludeTestServices: true, timeout: 60_000 })(
  "outside demo mode",
  (it) => {
    it.effect("GET /demo/users is a 404 problem", () =>
      Effect.gen(function* () {
        isProblem(yield* call("GET", "/demo/users"), 404, "RouteNotFound")
      })
    )
  }
)

// The access log, on a server whose log lines are captured
const logged: Array<{
  readonly message: unknown
  readonly level: string
  readonly annotations: Record<string, unknown>
}> = []
const capture = Logger.map(Logger.formatStructured, (entry) => void logged.push(entry))

const loggedApp = () => {
  const schemas = { store: Database.uniqueSchema("edges_log_store"), bank: Database.uniqueSchema("edges_log_bank") }
  return Layer.merge(
    Server.layer({ port: 0, host: "127.0.0.1", idempotencySchema: schemas.bank }).pipe(
      Layer.provide(Layer.mergeAll(Logger.layer([capture]), Layer.succeed(References.MinimumLogLevel, "Info")))
    ),
    projections
  ).pipe(Layer.provideMerge(stores(schemas)))
}

layer(loggedApp(), { excludeTestServices: true, timeout: 60_000 })("the access log", (it) => {
  it.effect("exactly one line per request: method, path, status, duration, request id", () =>
    Effect.gen(function* () {
      const requests = [
        ["GET", "/accounts", "alice", 200],
        ["GET", "/accounts", undefined, 401],
        ["DELETE", "/accounts", "alice", 405],
        ["GET", "/nowhere", "alice", 404],
        ["GET", "/openapi.json", undefined, 200]
      ] as const
      for (const [method, path, as, status] of requests) {
        logged.length = 0
        const reply = yield* call(method, `${path}?q=1`, { as, headers: { "x-request-id": `log-${status}` } })
        assert.strictEqual(reply.status, status, reply.text)
        // the line is written as the response leaves; give the logger a moment
        yield* Effect.sleep("20 millis")
        const lines = logged.filter((entry) => entry.annotations.requestId === `log-${status}`)
        assert.strictEqual(lines.length, 1, JSON.stringify(logged))
        const line = lines[0]
        assert.strictEqual(line?.message, "http")
        assert.strictEqual(line?.level, "INFO")
        assert.strictEqual(line?.annotations.method, method)
        assert.strictEqual(line?.annotations.path, path)
        assert.strictEqual(line?.annotations.status, status)
        assert.isNumber(line?.annotations.durationMs)
      }

      // a request Node refuses itself (its request line is over the limit) has its line too
      logged.length = 0
      const refused = yield* call("GET", `/accounts/${longId(HttpEdges.maxHeaderBytes + 1)}`, { as: "alice" })
      assert.strictEqual(refused.status, 431)
      yield* Effect.sleep("20 millis")
      const lines = logged.filter((entry) => entry.message === "http")
      assert.strictEqual(lines.length, 1, JSON.stringify(logged))
      assert.strictEqual(lines[0]?.annotations.status, 431)
      assert.strictEqual(lines[0]?.annotations.requestId, refused.headers.get("x-request-id"))
    })
  )
})

// The page and the docs under the Content-Security-Policy, in a real browser
const executablePath = "/usr/bin/chromium"
const browserAvailable = existsSync(executablePath)
if (!browserAvailable) console.warn(`Edges.test.ts: CSP check skipped, no Chromium at ${executablePath}`)

describe.skipIf(!browserAvailable)("the Content-Security-Policy in Chromium", () => {
  layer(app("edges_csp", { projections: false }), { excludeTestServices: true, timeout: 120_000 })("", (it) => {
    it.effect(
      "the page and the docs render with no CSP violation",
      () =>
        Effect.gen(function* () {
          const base = yield* baseUrl
          const result = yield* Effect.acquireUseRelease(
            Effect.promise(() => chromium.launch({ executablePath, args: ["--no-sandbox"] })),
            (browser) =>
              Effect.promise(async () => {
                const visit = async (path: string, ready: string) => {
                  const page = await browser.newPage()
                  const violations: Array<string> = []
                  page.on("console", (message) => {
                    if (/Content Security Policy|Refused to/i.test(message.text())) violations.push(message.text())
                  })
                  page.on("pageerror", (error) => violations.push(`page error: ${error.message}`))
                  await page.goto(`${base}${path}`, { waitUntil: "domcontentloaded", timeout: 60_000 })
                  await page.locator(ready).first().waitFor({ timeout: 60_000 })
                  const text = (await page.locator("body").textContent()) ?? ""
                  await page.close()
                  return { violations, text }
                }
                return {
                  page: await visit("/", "body *"),
                  docs: await visit("/docs", "text=/accounts")
                }
              }),
            (browser) => Effect.promise(() => browser.close())
          )
          assert.deepStrictEqual(result.page.violations, [])
          assert.deepStrictEqual(result.docs.violations, [])
          assert.include(result.docs.text, "Accounts")
        }),
      120_000
    )
  })
})
