/**
 * The bank's fintech controls, end to end: ISO 4217 currencies with the runtime's minor units, approval thresholds per
 * currency, four eyes on every large outflow, deposits by tellers only (within their per-deposit limit), one read rule
 * for every read route, and the client's correlation id through the transfer process. Every refusal names its rule and
 * writes nothing.
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
        // one deposit limit, the teller's: customers book no deposits
        assert.strictEqual(byCode.get("JPY").tellerDepositLimit, 7_500_000)
        assert.notProperty(byCode.get("USD"), "customerDepositLimit")

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
    "deposits by tellers only: a customer's deposit, even into their own account, is a 403 and writes nothing",
    () =>
      Effect.gen(function* () {
        const alice = yield* open("alice", { currency: "USD", initialDeposit: "10.00" })
        const before = yield* account(alice.accountId)
        const events = yield* auditTypes(alice.accountId)
        // small or large, once or repeated: a customer never credits an account
        for (const amount of ["1.00", "4999.99", "5000.01"]) {
          const own = yield* call("POST", `/accounts/${alice.accountId}/deposits`, { as: "alice", body: { amount } })
          refused(own, {
            status: 403,
            type: "deposits-by-tellers-only",
            title: "Deposits By Tellers Only",
            code: "DepositsByTellersOnly"
          })
          assert.include(own.body.detail, "Deposit rule")
          assert.include(own.body.detail, "teller")
        }
        // an Idempotency-Key changes nothing: the refusal comes before the command
        const keyed = yield* call("POST", `/accounts/${alice.accountId}/deposits`, {
          as: "alice",
          body: { amount: "1.00" },
          headers: { "idempotency-key": "alice-self-credit" }
        })
        refused(keyed, { status: 403, type: "deposits-by-tellers-only", code: "DepositsByTellersOnly" })
        // another customer, and staff who do not book money, are refused by the same rule
        for (const who of ["bob", "carol", "dave"]) {
          refused(yield* call("POST", `/accounts/${alice.accountId}/deposits`, { as: who, body: { amount: "1" } }), {
            status: 403,
            type: "deposits-by-tellers-only",
            code: "DepositsByTellersOnly"
          })
        }
        assert.deepStrictEqual(yield* account(alice.accountId), before, "nothing was written")
        assert.deepStrictEqual(yield* auditTypes(alice.accountId), events, "no event was appended")
        assert.deepStrictEqual(events, ["AccountOpened"])
      }),
    slow
  )

  it.effect(
    "a customer opens with no money: a non-zero initial deposit is a 403 and opens nothing; zero or none is fine",
    () =>
      Effect.gen(function* () {
        const start = new Date().toISOString()
        const since = () =>
          Effect.map(call("GET", "/accounts", { as: "bob" }), (reply) =>
            (reply.body as ReadonlyArray<Body>).filter((a) => a.openedAt >= start)
          )
        for (const initialDeposit of ["0.01", "10.00", "9999"]) {
          const rich = yield* call("POST", "/accounts", { as: "bob", body: { currency: "USD", initialDeposit } })
          refused(rich, {
            status: 403,
            type: "deposits-by-tellers-only",
            title: "Deposits By Tellers Only",
            code: "DepositsByTellersOnly"
          })
          assert.include(rich.body.detail, "initial deposit")
        }
        const zero = yield* call("POST", "/accounts", { as: "bob", body: { currency: "USD", initialDeposit: "0.00" } })
        assert.strictEqual(zero.status, 201, zero.text)
        assert.strictEqual(zero.body.balance, 0)
        const none = yield* call("POST", "/accounts", { as: "bob", body: { currency: "EUR" } })
        assert.strictEqual(none.status, 201, none.text)
        assert.strictEqual(none.body.balance, 0)
        // the read models show accounts in the order they were opened: once the last one shows, any refused one would
        // show before it; none does
        const opened = yield* eventually(since(), (accounts) =>
          accounts.some((a) => a.accountId === none.body.accountId)
        )
        assert.sameMembers(
          opened.map((a) => a.accountId),
          [zero.body.accountId, none.body.accountId],
          "only the two empty accounts were opened"
        )
        assert.isTrue(
          opened.every((a) => a.balance === 0),
          JSON.stringify(opened)
        )
      }),
    slow
  )

  it.effect(
    "a teller (or an admin) books deposits and opening deposits within the per-deposit limit",
    () =>
      Effect.gen(function* () {
        const opened = yield* call("POST", "/accounts", {
          as: "tina",
          body: { currency: "USD", owner: "alice", initialDeposit: "50000.00" }
        })
        assert.strictEqual(opened.status, 201, opened.text)
        assert.strictEqual(opened.body.owner, "alice")
        assert.strictEqual(opened.body.balance, 5_000_000)
        const id = opened.body.accountId as string
        const teller = yield* call("POST", `/accounts/${id}/deposits`, {
          as: "tina",
          body: { amount: "20000.00", reference: "cash at the counter" }
        })
        assert.strictEqual(teller.status, 200, teller.text)
        assert.strictEqual(teller.body.balance, 7_000_000)
        const admin = yield* call("POST", `/accounts/${id}/deposits`, { as: "admin", body: { amount: "50000.00" } })
        assert.strictEqual(admin.status, 200, admin.text)
        assert.strictEqual(admin.body.balance, 12_000_000)
        assert.deepStrictEqual(yield* auditTypes(id), ["AccountOpened", "MoneyDeposited", "MoneyDeposited"])
        const audit = (yield* call("GET", `/accounts/${id}/audit`, { as: "dave" })).body.events as ReadonlyArray<Body>
        assert.deepStrictEqual(
          audit.map((event) => event.metadata.actor),
          ["tina", "tina", "admin"]
        )
        // the owner sees the money the teller booked
        assert.strictEqual((yield* call("GET", `/accounts/${id}`, { as: "alice" })).body.balance, 12_000_000)
      }),
    slow
  )

  it.effect(
    "a teller's deposit or opening deposit above the per-deposit limit is a 422 deposit-limit and writes nothing",
    () =>
      Effect.gen(function* () {
        const alice = yield* open("alice", { currency: "USD", initialDeposit: "10.00" })
        const before = yield* account(alice.accountId)
        const events = yield* auditTypes(alice.accountId)
        for (const who of ["tina", "admin"]) {
          const tooMuch = yield* call("POST", `/accounts/${alice.accountId}/deposits`, {
            as: who,
            body: { amount: "50000.01" }
          })
          refused(tooMuch, {
            status: 422,
            type: "deposit-limit",
            title: "Deposit Limit Exceeded",
            code: "DepositLimitExceeded"
          })
          assert.include(tooMuch.body.detail, "50000.00 USD")
        }
        // converted into the account's currency: the limit of a JPY account is 7,500,000 JPY
        const yen = yield* open("alice", { currency: "JPY", initialDeposit: "7500000" })
        assert.strictEqual(yen.balance, 7_500_000)
        refused(
          yield* call("POST", `/accounts/${yen.accountId}/deposits`, { as: "tina", body: { amount: "7500001" } }),
          { status: 422, type: "deposit-limit", code: "DepositLimitExceeded" }
        )
        assert.deepStrictEqual(yield* account(alice.accountId), before, "nothing was written")
        assert.deepStrictEqual(yield* auditTypes(alice.accountId), events, "no event was appended")
        assert.deepStrictEqual(yield* auditTypes(yen.accountId), ["AccountOpened"])

        const owned = () =>
          Effect.map(call("GET", "/accounts", { as: "admin" }), (reply) =>
            (reply.body as ReadonlyArray<Body>).filter((a) => a.owner === "trudy")
          )
        const rich = yield* call("POST", "/accounts", {
          as: "tina",
          body: { currency: "USD", owner: "trudy", initialDeposit: "50000.01" }
        })
        refused(rich, { status: 422, type: "deposit-limit", code: "DepositLimitExceeded" })
        // the read models show accounts in order: once a later one shows, a refused one would have shown before it
        yield* call("POST", "/accounts", { as: "tina", body: { currency: "USD", owner: "trudy" } })
        const trudys = yield* eventually(owned(), (accounts) => accounts.length >= 1)
        assert.strictEqual(trudys.length, 1, "only the empty account was opened")
        assert.strictEqual(trudys[0].balance, 0)
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
