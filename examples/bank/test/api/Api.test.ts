import { assert, layer } from "@effect/vitest"
import { ProjectionError } from "@facta/core"
import { Effect, Layer, Option, Schedule } from "effect"
import { ReadModels } from "../../src/readmodels/ReadModels.ts"
import { app, type Body, call, type Reply } from "./harness.ts"

const problemJson = (reply: Reply, status: number) => {
  assert.strictEqual(reply.status, status, reply.text)
  assert.match(reply.headers.get("content-type") ?? "", /^application\/problem\+json/)
  assert.strictEqual(reply.body.status, status)
  assert.isString(reply.body.detail)
  assert.isString(reply.body.code)
}

/**
 * Opens an account for `owner`: in their own name when it starts empty; through the teller (tina, who books the
 * opening deposit) when it starts with money, since money enters an account only through a teller or an admin.
 */
const open = (owner: string, body: Record<string, unknown>) =>
  Effect.gen(function* () {
    const reply = yield* call(
      "POST",
      "/accounts",
      body.initialDeposit === undefined ? { as: owner, body } : { as: "tina", body: { ...body, owner } }
    )
    assert.strictEqual(reply.status, 201, reply.text)
    return reply.body as { accountId: string; version: number; balance: number; owner: string }
  })

/** Polls until `check` holds (the transfer process runs in the background). */
const eventually = <A, R>(effect: Effect.Effect<A, never, R>, check: (a: A) => boolean) =>
  effect.pipe(
    Effect.repeat({ schedule: Schedule.spaced("50 millis"), until: check }),
    Effect.timeout("10 seconds"),
    Effect.orDie
  )

layer(app("api"), { excludeTestServices: true, timeout: 60_000 })("Bank API (end to end on PostgreSQL)", (it) => {
  it.effect("401 without a token or with an unknown one, as problem+json", () =>
    Effect.gen(function* () {
      problemJson(yield* call("GET", "/accounts"), 401)
      problemJson(yield* call("GET", "/accounts", { token: "not-a-token" }), 401)
      problemJson(yield* call("POST", "/accounts", { token: "", body: { currency: "USD" } }), 401)
    })
  )

  it.effect("opens an account: 201, ETag = stream version, read your writes", () =>
    Effect.gen(function* () {
      // a teller opens it for alice and books the opening deposit (a customer opens with no money)
      const reply = yield* call("POST", "/accounts", {
        as: "tina",
        body: { currency: "USD", owner: "alice", initialDeposit: "100.00" }
      })
      assert.strictEqual(reply.status, 201, reply.text)
      assert.strictEqual(reply.headers.get("etag"), '"1"')
      assert.isNull(reply.headers.get("warning"))
      assert.strictEqual(reply.body.owner, "alice")
      assert.strictEqual(reply.body.balance, 10_000)
      assert.strictEqual(reply.body.version, 1)
      const got = yield* call("GET", `/accounts/${reply.body.accountId}`, { as: "alice" })
      assert.strictEqual(got.status, 200)
      assert.strictEqual(got.headers.get("etag"), `"${got.body.version}"`)
      assert.deepStrictEqual(got.body, reply.body)
    })
  )

  it.effect("403 per role", () =>
    Effect.gen(function* () {
      const alice = yield* open("alice", { currency: "USD", initialDeposit: "50.00" })
      const deposit = { amount: "1.00" }
      problemJson(yield* call("POST", "/accounts", { as: "carol", body: { currency: "USD" } }), 403)
      problemJson(yield* call("POST", "/accounts", { as: "dave", body: { currency: "USD" } }), 403)
      problemJson(yield* call("POST", "/accounts", { as: "alice", body: { currency: "USD", owner: "bob" } }), 403)
      problemJson(yield* call("GET", `/accounts/${alice.accountId}`, { as: "bob" }), 403)
      // deposits by tellers only: not even the owner credits the account
      const own = yield* call("POST", `/accounts/${alice.accountId}/deposits`, { as: "alice", body: deposit })
      problemJson(own, 403)
      assert.strictEqual(own.body.code, "DepositsByTellersOnly")
      problemJson(
        yield* call("POST", "/accounts", { as: "alice", body: { currency: "USD", initialDeposit: "1" } }),
        403
      )
      problemJson(yield* call("POST", `/accounts/${alice.accountId}/deposits`, { as: "bob", body: deposit }), 403)
      problemJson(yield* call("POST", `/accounts/${alice.accountId}/deposits`, { as: "dave", body: deposit }), 403)
      problemJson(yield* call("POST", `/accounts/${alice.accountId}/deposits`, { as: "carol", body: deposit }), 403)
      problemJson(
        yield* call("POST", `/accounts/${alice.accountId}/fees`, { as: "alice", body: { ...deposit, reason: "x" } }),
        403
      )
      problemJson(yield* call("POST", `/accounts/${alice.accountId}/freeze`, { as: "alice", body: {} }), 403)
      // one read rule for every read route: the owner or staff (Controls.test.ts covers each route)
      problemJson(yield* call("GET", `/accounts/${alice.accountId}/audit`, { as: "bob" }), 403)
      problemJson(yield* call("GET", `/accounts/${alice.accountId}/explain`, { as: "bob" }), 403)
      // allowed
      assert.strictEqual((yield* call("GET", `/accounts/${alice.accountId}`, { as: "carol" })).status, 200)
      assert.strictEqual((yield* call("GET", `/accounts/${alice.accountId}/audit`, { as: "dave" })).status, 200)
      assert.strictEqual((yield* call("GET", `/accounts/${alice.accountId}/audit`, { as: "alice" })).status, 200)
      assert.strictEqual((yield* call("GET", `/accounts/${alice.accountId}/explain`, { as: "carol" })).status, 200)
      assert.strictEqual((yield* call("GET", `/accounts/${alice.accountId}/explain`, { as: "alice" })).status, 200)
      assert.strictEqual((yield* call("GET", `/accounts/${alice.accountId}/explain`, { as: "dave" })).status, 200)
      const fee = yield* call("POST", `/accounts/${alice.accountId}/fees`, {
        as: "admin",
        body: { amount: "0.50", reason: "monthly" }
      })
      assert.strictEqual(fee.status, 200, fee.text)
      assert.strictEqual(fee.body.balance, 4_950)
    })
  )

  it.effect("lists: customers see their own accounts, auditors every one", () =>
    Effect.gen(function* () {
      const bob = yield* open("bob", { currency: "EUR" })
      const alices = yield* call("GET", "/accounts", { as: "alice" })
      assert.isTrue(alices.body.length > 0)
      assert.isTrue(alices.body.every((a: { owner: string }) => a.owner === "alice"))
      const all = yield* call("GET", "/accounts", { as: "dave" })
      assert.isTrue(all.body.some((a: { accountId: string }) => a.accountId === bob.accountId))
      assert.isTrue(all.body.some((a: { owner: string }) => a.owner === "alice"))
    })
  )

  it.effect("400 naming the field", () =>
    Effect.gen(function* () {
      const alice = yield* open("alice", { currency: "USD" })
      const path = `/accounts/${alice.accountId}/deposits`
      const precise = yield* call("POST", path, { as: "tina", body: { amount: "12.345" } })
      problemJson(precise, 400)
      assert.strictEqual(precise.body.field, "amount")
      assert.match(precise.body.detail, /amount/)
      const missing = yield* call("POST", path, { as: "tina", body: { reference: "x" } })
      problemJson(missing, 400)
      assert.strictEqual(missing.body.field, "amount")
      const wrongType = yield* call("POST", path, { as: "tina", body: { amount: 12 } })
      problemJson(wrongType, 400)
      assert.strictEqual(wrongType.body.field, "amount")
      const zero = yield* call("POST", path, { as: "tina", body: { amount: "0.00" } })
      problemJson(zero, 400)
      assert.strictEqual(zero.body.field, "amount")
      const currency = yield* call("POST", "/accounts", { as: "alice", body: { currency: "usd" } })
      problemJson(currency, 400)
      assert.strictEqual(currency.body.field, "currency")
      const initial = yield* call("POST", "/accounts", {
        as: "alice",
        body: { currency: "JPY", initialDeposit: "1.5" }
      })
      problemJson(initial, 400)
      assert.strictEqual(initial.body.field, "initialDeposit")
      const limit = yield* call("GET", `/accounts/${alice.accountId}/history?limit=0`, { as: "alice" })
      problemJson(limit, 400)
      assert.strictEqual(limit.body.field, "query.limit")
      const ifMatch = yield* call("POST", path, { as: "tina", body: { amount: "1" }, headers: { "if-match": "nope" } })
      problemJson(ifMatch, 400)
      assert.strictEqual(ifMatch.body.field, "If-Match")
      const asOf = yield* call("GET", `/accounts/${alice.accountId}/as-of`, { as: "alice" })
      problemJson(asOf, 400)
      const badJson = yield* call("POST", path, { as: "tina", rawBody: "{ not json" })
      assert.isTrue(badJson.status >= 400 && badJson.status < 500, `malformed JSON answered ${badJson.status}`)
    })
  )

  it.effect("404 for unknown accounts and transfers", () =>
    Effect.gen(function* () {
      problemJson(yield* call("GET", "/accounts/does-not-exist", { as: "dave" }), 404)
      problemJson(yield* call("POST", "/accounts/does-not-exist/deposits", { as: "admin", body: { amount: "1" } }), 404)
      problemJson(yield* call("GET", "/accounts/does-not-exist/as-of?version=1", { as: "dave" }), 404)
      problemJson(yield* call("GET", `/accounts/${"x".repeat(150)}`, { as: "dave" }), 404)
      const tooLong = yield* call("GET", `/accounts/${"x".repeat(300)}`, { as: "dave" })
      problemJson(tooLong, 400)
      assert.strictEqual(tooLong.body.field, "params.id")
      problemJson(yield* call("GET", "/transfers/does-not-exist", { as: "dave" }), 404)
      problemJson(yield* call("POST", "/transfers/does-not-exist/approve", { as: "carol" }), 404)
      problemJson(
        yield* call("POST", "/transfers", { as: "admin", body: { from: "nope", to: "nada", amount: "1" } }),
        404
      )
    })
  )

  it.effect("409 on insufficient funds and frozen accounts", () =>
    Effect.gen(function* () {
      const alice = yield* open("alice", { currency: "USD", initialDeposit: "10.00" })
      const withdraw = (as: string) =>
        call("POST", `/accounts/${alice.accountId}/withdrawals`, { as, body: { amount: "10.01" } })
      const poor = yield* withdraw("alice")
      problemJson(poor, 409)
      assert.strictEqual(poor.body.code, "InsufficientFunds")
      assert.match(poor.body.detail, /10\.00 USD/)
      assert.strictEqual(
        (yield* call("POST", `/accounts/${alice.accountId}/freeze`, { as: "admin", body: { reason: "kyc" } })).status,
        200
      )
      const frozen = yield* call("POST", `/accounts/${alice.accountId}/withdrawals`, {
        as: "alice",
        body: { amount: "1" }
      })
      problemJson(frozen, 409)
      assert.strictEqual(frozen.body.code, "AccountIsFrozen")
      const mismatch = yield* call("POST", `/accounts/${alice.accountId}/deposits`, {
        as: "tina",
        body: { amount: "1", currency: "EUR" }
      })
      problemJson(mismatch, 422)
      assert.strictEqual(mismatch.body.code, "CurrencyMismatch")
    })
  )

  it.effect("412 on a stale If-Match, 200 on the current one", () =>
    Effect.gen(function* () {
      const alice = yield* open("alice", { currency: "USD" })
      const path = `/accounts/${alice.accountId}/deposits`
      const first = yield* call("POST", path, { as: "tina", body: { amount: "5" }, headers: { "if-match": '"1"' } })
      assert.strictEqual(first.status, 200, first.text)
      assert.strictEqual(first.headers.get("etag"), '"2"')
      const stale = yield* call("POST", path, { as: "tina", body: { amount: "5" }, headers: { "if-match": '"1"' } })
      problemJson(stale, 412)
      assert.strictEqual(stale.body.currentVersion, 2)
      const fresh = yield* call("POST", path, {
        as: "tina",
        body: { amount: "5" },
        headers: { "if-match": first.headers.get("etag")! }
      })
      assert.strictEqual(fresh.status, 200)
      assert.strictEqual(fresh.body.balance, 1_000)
    })
  )

  it.effect("Idempotency-Key: the same request answers the same body and appends once; another body is 422", () =>
    Effect.gen(function* () {
      const alice = yield* open("alice", { currency: "USD" })
      const path = `/accounts/${alice.accountId}/deposits`
      const key = crypto.randomUUID()
      const request = {
        as: "tina",
        body: { amount: "7.25", reference: "salary" },
        headers: { "idempotency-key": key }
      }
      const first = yield* call("POST", path, request)
      const again = yield* call("POST", path, request)
      assert.strictEqual(first.status, 200, first.text)
      assert.strictEqual(again.status, 200, again.text)
      assert.deepStrictEqual(again.body, first.body)
      assert.strictEqual(again.headers.get("etag"), first.headers.get("etag"))
      assert.strictEqual(again.headers.get("idempotent-replayed"), "true")
      // concurrent twins too
      const [a, b] = yield* Effect.all([call("POST", path, request), call("POST", path, request)], { concurrency: 2 })
      assert.deepStrictEqual([a.body, b.body], [first.body, first.body])
      const audit = yield* call("GET", `/accounts/${alice.accountId}/audit?types=MoneyDeposited`, { as: "dave" })
      assert.strictEqual(audit.body.events.length, 1)
      assert.strictEqual(audit.body.events[0].metadata.actor, "tina")
      const other = yield* call("POST", path, { ...request, body: { amount: "8.00", reference: "salary" } })
      problemJson(other, 422)
      assert.strictEqual(other.body.code, "IdempotencyKeyReused")
      // a key that failed is free again: nothing was recorded
      const failKey = crypto.randomUUID()
      const tooMuch = { as: "alice", body: { amount: "1000" }, headers: { "idempotency-key": failKey } }
      problemJson(yield* call("POST", `/accounts/${alice.accountId}/withdrawals`, tooMuch), 409)
      problemJson(yield* call("POST", `/accounts/${alice.accountId}/withdrawals`, tooMuch), 409)
    })
  )

  it.effect("metadata: actor, correlation id and reference land on the events; as-of and audit read the store", () =>
    Effect.gen(function* () {
      const alice = yield* open("alice", { currency: "USD", initialDeposit: "1.00" })
      const deposit = yield* call("POST", `/accounts/${alice.accountId}/deposits`, {
        as: "tina",
        body: { amount: "2.00", reference: "gift" },
        headers: { "x-correlation-id": "corr-42" }
      })
      assert.strictEqual(deposit.headers.get("x-correlation-id"), "corr-42")
      const audit = yield* call("GET", `/accounts/${alice.accountId}/audit`, { as: "dave" })
      assert.deepStrictEqual(
        audit.body.events.map((e: Body) => e.type),
        ["AccountOpened", "MoneyDeposited"]
      )
      const meta = audit.body.events[1].metadata
      assert.deepStrictEqual([meta.actor, meta.correlationId, meta.attributes.reference], ["tina", "corr-42", "gift"])
      const v1 = yield* call("GET", `/accounts/${alice.accountId}/as-of?version=1`, { as: "dave" })
      assert.deepStrictEqual([v1.body.version, v1.body.balance, v1.body.opened], [1, 100, true])
      const before = yield* call("GET", `/accounts/${alice.accountId}/as-of?at=2000-01-01T00:00:00Z`, { as: "alice" })
      assert.deepStrictEqual([before.body.version, before.body.opened, before.body.balance], [0, false, null])
      const later = new Date(Date.now() + 60_000).toISOString()
      const filtered = yield* call(
        "GET",
        `/accounts/${alice.accountId}/audit?from=2000-01-01T00:00:00Z&to=${later}&types=AccountOpened`,
        { as: "admin" }
      )
      assert.strictEqual(filtered.body.events.length, 1)
      const explain = yield* call("GET", `/accounts/${alice.accountId}/explain`, { as: "alice" })
      assert.deepStrictEqual(
        explain.body.entries.map((e: Body) => e.balanceAfter),
        [100, 300]
      )
      assert.isTrue(explain.body.consistent)
      const history = yield* call("GET", `/accounts/${alice.accountId}/history?after=1&limit=10`, { as: "alice" })
      assert.deepStrictEqual(
        history.body.entries.map((e: Body) => e.version),
        [2]
      )
    })
  )

  it.effect("transfers: threshold, 422 self approval, approval moves the money, customers see their own", () =>
    Effect.gen(function* () {
      const alice = yield* open("alice", { currency: "USD", initialDeposit: "5000.00" })
      const bob = yield* open("bob", { currency: "USD" })
      const small = yield* call("POST", "/transfers", {
        as: "alice",
        body: { from: alice.accountId, to: bob.accountId, amount: "10.00", reference: "lunch" }
      })
      assert.strictEqual(small.status, 201, small.text)
      assert.strictEqual(small.headers.get("etag"), '"1"')
      assert.strictEqual(small.body.initiatedBy, "alice")
      problemJson(
        yield* call("POST", "/transfers", {
          as: "bob",
          body: { from: alice.accountId, to: bob.accountId, amount: "1" }
        }),
        403
      )
      const same = yield* call("POST", "/transfers", {
        as: "alice",
        body: { from: alice.accountId, to: alice.accountId, amount: "1" }
      })
      problemJson(same, 422)
      assert.strictEqual(same.body.code, "SameAccount")

      // an admin's own large transfer: needs someone else's approval
      const big = yield* call("POST", "/transfers", {
        as: "admin",
        body: { from: alice.accountId, to: bob.accountId, amount: "2000.00" }
      })
      assert.strictEqual(big.status, 201, big.text)
      assert.strictEqual(big.body.status, "AwaitingApproval")
      const self = yield* call("POST", `/transfers/${big.body.transferId}/approve`, { as: "admin" })
      problemJson(self, 422)
      assert.strictEqual(self.body.code, "SelfApprovalForbidden")
      problemJson(yield* call("POST", `/transfers/${big.body.transferId}/reject`, { as: "admin", body: {} }), 422)
      problemJson(yield* call("POST", `/transfers/${big.body.transferId}/approve`, { as: "alice" }), 403)
      problemJson(yield* call("POST", `/transfers/${small.body.transferId}/approve`, { as: "carol" }), 409)
      const approved = yield* call("POST", `/transfers/${big.body.transferId}/approve`, { as: "carol" })
      assert.strictEqual(approved.status, 200, approved.text)
      assert.strictEqual(approved.body.approvedBy, "carol")

      const done = yield* eventually(
        call("GET", `/transfers/${big.body.transferId}`, { as: "alice" }).pipe(Effect.map((r) => r.body.status)),
        (status) => status === "Completed"
      )
      assert.strictEqual(done, "Completed")
      const bobs = yield* eventually(
        call("GET", `/accounts/${bob.accountId}`, { as: "bob" }).pipe(Effect.map((r) => r.body.balance)),
        (balance) => balance === 201_000
      )
      assert.strictEqual(bobs, 201_000)
      const mine = yield* call("GET", "/transfers", { as: "bob" })
      assert.isTrue(mine.body.length >= 2)
      problemJson(yield* call("GET", `/transfers?account=${alice.accountId}`, { as: "bob" }), 403)
      const awaiting = yield* call("GET", "/transfers?status=Completed", { as: "dave" })
      assert.isTrue(awaiting.body.every((t: Body) => t.status === "Completed"))
      problemJson(yield* call("GET", "/transfers?status=Bogus", { as: "dave" }), 400)
    })
  )

  it.effect("serves the OpenAPI document, the docs and the page", () =>
    Effect.gen(function* () {
      const spec = yield* call("GET", "/openapi.json")
      assert.strictEqual(spec.status, 200)
      assert.strictEqual(spec.body.info.title, "Facta Bank")
      assert.property(spec.body.paths, "/accounts/{id}/deposits")
      // the deposit rule is documented where a client reads about the routes
      assert.include(spec.body.paths["/accounts/{id}/deposits"].post.description, "DepositsByTellersOnly")
      assert.include(spec.body.paths["/accounts"].post.description, "DepositsByTellersOnly")
      const docs = yield* call("GET", "/docs")
      assert.strictEqual(docs.status, 200)
      const page = yield* call("GET", "/")
      assert.strictEqual(page.status, 200)
      assert.match(page.text, /Facta Bank/)
    })
  )
})

// Read models that never catch up: commands still succeed, with their own result and a Warning
const lagging = Layer.succeed(
  ReadModels,
  ReadModels.of({
    accounts: () => Effect.succeed([]),
    account: () => Effect.succeed(Option.none()),
    history: () => Effect.succeed({ entries: [], nextAfter: null }),
    explain: () => Effect.succeed(Option.none()),
    transfers: () => Effect.succeed([]),
    transfer: () => Effect.succeed(Option.none()),
    waitFor: (position) =>
      Effect.fail(new ProjectionError.ProjectionLagging({ name: "accounts", version: 1, position: String(position) }))
  })
)

layer(app("apilag", { readModels: lagging, projections: false }), { excludeTestServices: true, timeout: 60_000 })(
  "Bank API with late read models",
  (it) => {
    it.effect("answers the command's own result with a Warning header", () =>
      Effect.gen(function* () {
        const opened = yield* call("POST", "/accounts", {
          as: "tina",
          body: { currency: "USD", owner: "bob", initialDeposit: "3.00" }
        })
        assert.strictEqual(opened.status, 201, opened.text)
        assert.match(opened.headers.get("warning") ?? "", /^199 /)
        assert.deepStrictEqual([opened.body.owner, opened.body.balance, opened.body.version], ["bob", 300, 1])
        const got = yield* call("GET", `/accounts/${opened.body.accountId}`, { as: "bob" })
        assert.strictEqual(got.status, 200)
        assert.strictEqual(got.body.balance, 300)
        assert.strictEqual(got.headers.get("etag"), '"1"')
      })
    )
  }
)
