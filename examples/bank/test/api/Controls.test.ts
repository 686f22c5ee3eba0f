/**
 * The bank's fintech controls, end to end: ISO 4217 currencies with the runtime's minor units, approval thresholds per
 * currency, four eyes on every large outflow, deposit limits by role, one read rule for every read route, and the
 * client's correlation id through the transfer process. Every refusal names its rule and writes nothing.
 */
import { assert, layer } from "@effect/vitest"
import { Effect, Schedule } from "effect"
import { app, type Body, call, type Reply } from "./harness.ts"

/** A problem document naming its rule: status, type, title and code. */
const refused = (reply: Reply, rule: { status: number; type?: string; title?: string; code: string }) => {
  assert.strictEqual(reply.status, rule.status, reply.text)
  assert.match(reply.headers.get("content-type") ?? "", /^application\/problem\+json/)
  assert.strictEqual(reply.body.code, rule.code, reply.text)
  if (rule.type !== undefined) assert.strictEqual(reply.body.type, `https://facta.dev/problems/${rule.type}`)
  if (rule.title !== undefined) assert.strictEqual(reply.body.title, rule.title)
  assert.isString(reply.body.detail)
}

const open = (as: string, body: Record<string, unknown>) =>
  Effect.gen(function* () {
    const reply = yield* call("POST", "/accounts", { as, body })
    assert.strictEqual(reply.status, 201, reply.text)
    return reply.body as { accountId: string; version: number; balance: number; decimals: number }
  })

/** The account as the command side has it now (`version` counts every event appended to it). */
const account = (id: string) =>
  Effect.map(call("GET", `/accounts/${id}`, { as: "dave" }), (reply) => {
    assert.strictEqual(reply.status, 200, reply.text)
    return reply.body as { balance: number; version: number; decimals: number }
  })

const auditTypes = (id: string) =>
  Effect.map(call("GET", `/accounts/${id}/audit`, { as: "dave" }), (reply) =>
    (reply.body.events as ReadonlyArray<Body>).map((event) => event.type as string)
  )

/** Polls until `check` holds (the transfer process runs in the background). */
const eventually = <A, R>(effect: Effect.Effect<A, never, R>, check: (a: A) => boolean) =>
  effect.pipe(
    Effect.repeat({ schedule: Schedule.spaced("50 millis"), until: check }),
    Effect.timeout("10 seconds"),
    Effect.orDie
  )

/** Each test makes a few dozen requests, each waiting for the read models: room for a loaded machine. */
const slow = 90_000

layer(app("controls"), { excludeTestServices: true, timeout: 60_000 })("Bank controls (issue 22)", (it) => {
  it.effect(
    "currencies are ISO 4217 only, with the runtime's minor units, served by the API",
    () =>
      Effect.gen(function* () {
        const before = (yield* call("GET", "/accounts", { as: "alice" })).body.length
        const xyz = yield* call("POST", "/accounts", { as: "alice", body: { currency: "XYZ" } })
        refused(xyz, { status: 400, type: "bad-request", code: "InvalidRequest" })
        assert.strictEqual(xyz.body.field, "currency")
        assert.include(xyz.body.detail, "XYZ is not an ISO 4217 currency code")
        assert.strictEqual((yield* call("GET", "/accounts", { as: "alice" })).body.length, before, "nothing opened")

        const currencies = yield* call("GET", "/currencies", { as: "alice" })
        assert.strictEqual(currencies.status, 200, currencies.text)
        const byCode = new Map((currencies.body as ReadonlyArray<Body>).map((c) => [c.code, c]))
        assert.deepStrictEqual(
          ["USD", "JPY", "KWD"].map((code) => byCode.get(code)?.decimals),
          [2, 0, 3]
        )
        assert.isFalse(byCode.has("XYZ"))
        assert.strictEqual(byCode.get("JPY").approvalThreshold, 150_000)
        assert.strictEqual(byCode.get("KWD").approvalThreshold, 307_000)

        // each account and transfer carries the decimals of its currency, so a client keeps no table
        const kwd = yield* open("alice", { currency: "KWD", initialDeposit: "1.250" })
        assert.strictEqual(kwd.decimals, 3)
        assert.strictEqual(kwd.balance, 1_250)
        const spec = (yield* call("GET", "/openapi.json")).body
        assert.property(spec.paths, "/currencies")
        assert.property(spec.paths, "/accounts/{id}/outflows")
        assert.include(JSON.stringify(spec), "How many decimals the currency's minor unit has")
      }),
    slow
  )

  it.effect(
    "approval thresholds per currency: 1,001 JPY moves at once, 999.999 KWD waits for a second person",
    () =>
      Effect.gen(function* () {
        const yen = yield* open("alice", { currency: "JPY", initialDeposit: "5000" })
        const yenTo = yield* open("bob", { currency: "JPY" })
        const dinars = yield* open("alice", { currency: "KWD", initialDeposit: "1500.000" })
        const dinarsTo = yield* open("bob", { currency: "KWD" })
        const yenTransfer = yield* call("POST", "/transfers", {
          as: "alice",
          body: { from: yen.accountId, to: yenTo.accountId, amount: "1001" }
        })
        assert.strictEqual(yenTransfer.status, 201, yenTransfer.text)
        assert.notStrictEqual(yenTransfer.body.status, "AwaitingApproval")
        assert.strictEqual(yenTransfer.body.decimals, 0)
        const dinarTransfer = yield* call("POST", "/transfers", {
          as: "alice",
          body: { from: dinars.accountId, to: dinarsTo.accountId, amount: "999.999" }
        })
        assert.strictEqual(dinarTransfer.status, 201, dinarTransfer.text)
        assert.strictEqual(dinarTransfer.body.status, "AwaitingApproval")

        // the same thresholds hold for withdrawals
        const yenWithdrawal = yield* call("POST", `/accounts/${yen.accountId}/withdrawals`, {
          as: "alice",
          body: { amount: "1001" }
        })
        assert.strictEqual(yenWithdrawal.status, 200, yenWithdrawal.text)
        const dinarWithdrawal = yield* call("POST", `/accounts/${dinars.accountId}/withdrawals`, {
          as: "alice",
          body: { amount: "307.001" }
        })
        assert.strictEqual(dinarWithdrawal.status, 202, dinarWithdrawal.text)
        assert.strictEqual(dinarWithdrawal.body.status, "AwaitingApproval")
        assert.strictEqual(dinarWithdrawal.body.approvalThreshold, 307_000)
      }),
    slow
  )

  it.effect(
    "four eyes on large withdrawals and fees: they wait, a second person approves or rejects",
    () =>
      Effect.gen(function* () {
        const alice = yield* open("alice", { currency: "USD", initialDeposit: "5000.00" })
        const withdrawal = yield* call("POST", `/accounts/${alice.accountId}/withdrawals`, {
          as: "alice",
          body: { amount: "1500.00", reference: "car" }
        })
        assert.strictEqual(withdrawal.status, 202, withdrawal.text)
        assert.strictEqual(withdrawal.body.status, "AwaitingApproval")
        assert.strictEqual(withdrawal.body.requestedBy, "alice")
        const requestId = withdrawal.body.requestId as string
        assert.strictEqual((yield* account(alice.accountId)).balance, 500_000, "no money moved yet")

        // the customer sees the waiting request
        const waiting = yield* call("GET", `/accounts/${alice.accountId}/outflows`, { as: "alice" })
        assert.deepStrictEqual(
          (waiting.body as ReadonlyArray<Body>).map((o) => [o.requestId, o.kind, o.amount]),
          [[requestId, "Withdrawal", 150_000]]
        )

        // an admin's own large fee waits too, and the admin may not approve it: nothing is written
        const fee = yield* call("POST", `/accounts/${alice.accountId}/fees`, {
          as: "admin",
          body: { amount: "1200.00", reason: "wire investigation" }
        })
        assert.strictEqual(fee.status, 202, fee.text)
        const versionBefore = (yield* account(alice.accountId)).version
        const selfApproval = yield* call(
          "POST",
          `/accounts/${alice.accountId}/outflows/${fee.body.requestId}/approve`,
          {
            as: "admin"
          }
        )
        refused(selfApproval, { status: 422, type: "four-eyes", title: "Four-Eyes Rule", code: "FourEyesRequired" })
        const customerApproval = yield* call("POST", `/accounts/${alice.accountId}/outflows/${requestId}/approve`, {
          as: "alice"
        })
        refused(customerApproval, { status: 403, code: "Forbidden" })
        assert.strictEqual((yield* account(alice.accountId)).version, versionBefore, "the refusals wrote nothing")

        // the approver approves the withdrawal (the money moves) and rejects the fee (nothing moves)
        const approved = yield* call("POST", `/accounts/${alice.accountId}/outflows/${requestId}/approve`, {
          as: "carol"
        })
        assert.strictEqual(approved.status, 200, approved.text)
        assert.strictEqual(approved.body.balance, 350_000)
        const rejected = yield* call("POST", `/accounts/${alice.accountId}/outflows/${fee.body.requestId}/reject`, {
          as: "carol",
          body: { reason: "not justified" }
        })
        assert.strictEqual(rejected.status, 200, rejected.text)
        assert.strictEqual(rejected.body.balance, 350_000)
        assert.deepStrictEqual((yield* call("GET", `/accounts/${alice.accountId}/outflows`, { as: "alice" })).body, [])
        const again = yield* call("POST", `/accounts/${alice.accountId}/outflows/${requestId}/approve`, { as: "carol" })
        refused(again, { status: 409, code: "OutflowNotPending" })
        assert.deepStrictEqual(yield* auditTypes(alice.accountId), [
          "AccountOpened",
          "OutflowRequested",
          "OutflowRequested",
          "OutflowApproved",
          "MoneyWithdrawn",
          "OutflowRejected"
        ])
      }),
    slow
  )

  it.effect(
    "deposits: a customer's own are limited, a teller's have a larger limit; each names the rule",
    () =>
      Effect.gen(function* () {
        const alice = yield* open("alice", { currency: "USD", initialDeposit: "10.00" })
        const before = yield* account(alice.accountId)
        const own = yield* call("POST", `/accounts/${alice.accountId}/deposits`, {
          as: "alice",
          body: { amount: "5000.01" }
        })
        refused(own, {
          status: 422,
          type: "deposit-limit",
          title: "Deposit Limit Exceeded",
          code: "DepositLimitExceeded"
        })
        assert.include(own.body.detail, "5000.00 USD")
        assert.deepStrictEqual(yield* account(alice.accountId), before, "nothing was written")
        const accounts = (yield* call("GET", "/accounts", { as: "alice" })).body.length
        const rich = yield* call("POST", "/accounts", {
          as: "alice",
          body: { currency: "USD", initialDeposit: "9999" }
        })
        refused(rich, { status: 422, type: "deposit-limit", code: "DepositLimitExceeded" })
        assert.strictEqual((yield* call("GET", "/accounts", { as: "alice" })).body.length, accounts, "nothing opened")

        const teller = yield* call("POST", `/accounts/${alice.accountId}/deposits`, {
          as: "tina",
          body: { amount: "20000.00", reference: "cash at the counter" }
        })
        assert.strictEqual(teller.status, 200, teller.text)
        assert.strictEqual(teller.body.balance, 2_001_000)
        const tooMuch = yield* call("POST", `/accounts/${alice.accountId}/deposits`, {
          as: "tina",
          body: { amount: "50000.01" }
        })
        refused(tooMuch, { status: 422, type: "deposit-limit", code: "DepositLimitExceeded" })
        // staff who do not book money may not deposit at all
        refused(yield* call("POST", `/accounts/${alice.accountId}/deposits`, { as: "carol", body: { amount: "1" } }), {
          status: 403,
          code: "Forbidden"
        })
      }),
    slow
  )

  it.effect(
    "one read rule on every read route: the owner and staff read, other customers do not",
    () =>
      Effect.gen(function* () {
        const alice = yield* open("alice", { currency: "USD", initialDeposit: "10.00" })
        // the explanation comes from the read models: wait until they have the account
        yield* eventually(
          call("GET", `/accounts/${alice.accountId}/explain`, { as: "alice" }).pipe(Effect.map((r) => r.status)),
          (status) => status === 200
        )
        const routes = ["", "/history", "/explain", "/as-of?version=1", "/audit", "/outflows"]
        for (const route of routes) {
          const path = `/accounts/${alice.accountId}${route}`
          for (const reader of ["alice", "tina", "carol", "dave", "admin"]) {
            const reply = yield* call("GET", path, { as: reader })
            assert.strictEqual(reply.status, 200, `${reader} reads ${path}: ${reply.text}`)
          }
          refused(yield* call("GET", path, { as: "bob" }), {
            status: 403,
            type: "forbidden",
            code: "ReadOwnAccountsOnly"
          })
        }
      }),
    slow
  )

  it.effect(
    "the client's correlation id follows a transfer through the process, which says for whom it acted",
    () =>
      Effect.gen(function* () {
        const alice = yield* open("alice", { currency: "USD", initialDeposit: "5000.00" })
        const bob = yield* open("bob", { currency: "USD" })
        const transfer = yield* call("POST", "/transfers", {
          as: "alice",
          body: { from: alice.accountId, to: bob.accountId, amount: "1500.00" },
          headers: { "x-correlation-id": "client-42" }
        })
        assert.strictEqual(transfer.status, 201, transfer.text)
        assert.strictEqual(transfer.headers.get("x-correlation-id"), "client-42")
        // the approver's request has a correlation id of its own; the process keeps the client's
        const approval = yield* call("POST", `/transfers/${transfer.body.transferId}/approve`, {
          as: "carol",
          headers: { "x-correlation-id": "approver-7" }
        })
        assert.strictEqual(approval.status, 200, approval.text)
        yield* eventually(
          call("GET", `/transfers/${transfer.body.transferId}`, { as: "alice" }).pipe(Effect.map((r) => r.body.status)),
          (status) => status === "Completed"
        )
        const processed = (id: string) =>
          Effect.map(call("GET", `/accounts/${id}/audit`, { as: "dave" }), (reply) =>
            (reply.body.events as ReadonlyArray<Body>).filter((event) => event.metadata.actor === "transfer-process")
          )
        const fromEvents = yield* eventually(processed(alice.accountId), (events) => events.length === 2)
        const toEvents = yield* processed(bob.accountId)
        const all = [...fromEvents, ...toEvents]
        assert.deepStrictEqual(
          all.map((event) => event.type),
          ["AccountDebitedForTransfer", "TransferDebitSettled", "AccountCreditedForTransfer"]
        )
        for (const event of all) {
          assert.strictEqual(event.metadata.correlationId, "client-42", event.type)
          assert.deepStrictEqual(event.metadata.attributes, { onBehalfOf: "alice", approvedBy: "carol" }, event.type)
          assert.isString(event.metadata.causationId)
        }
      }),
    slow
  )
})
