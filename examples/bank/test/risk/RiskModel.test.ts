/**
 * The risk watch's rules and read model, without a broker: the rules on their own, and the read model on PostgreSQL
 * fed the same facts in two different orders (the broker does not keep the order across transfers), giving the same
 * flags.
 */
import { assert, describe, it, layer } from "@effect/vitest"
import { Duration, Effect } from "effect"
import { SqlClient } from "effect/sql"
import * as Database from "../../../../test/support/database.ts"
import type * as TransferFacts from "../../src/integration/TransferFacts.ts"
import * as RiskModel from "../../src/risk/RiskModel.ts"
import * as Rules from "../../src/risk/Rules.ts"

const request = (overrides: Partial<Rules.Request> = {}): Rules.Request => ({
  fromAccount: "a",
  amount: "100.00",
  currency: "USD",
  requiresApproval: false,
  approvalThreshold: "1000.00",
  ...overrides
})

describe("Risk rules", () => {
  it("compares decimal amounts exactly, in any currency's decimals", () => {
    assert.strictEqual(Rules.units("1500.5"), 15_005_000n)
    assert.strictEqual(Rules.units("400000"), 4_000_000_000n)
    assert.isUndefined(Rules.units("-1"))
    assert.isUndefined(Rules.units("1e3"))
  })

  it("flags large amounts at or above the currency's threshold, and leaves currencies without one alone", () => {
    assert.isUndefined(Rules.large(Rules.defaults, request({ amount: "2499.99" })))
    assert.match(Rules.large(Rules.defaults, request({ amount: "2500.00" })) ?? "", /at or above .* 2500\.00 USD/)
    assert.isDefined(Rules.large(Rules.defaults, request({ amount: "400000", currency: "JPY" })))
    assert.isUndefined(Rules.large(Rules.defaults, request({ amount: "99999999.00", currency: "SEK" })))
  })

  it("calls near-threshold a transfer of at least 80% of its approval threshold that needs no approval", () => {
    assert.isTrue(Rules.isNearThreshold(Rules.defaults, request({ amount: "800.00" })))
    assert.isFalse(Rules.isNearThreshold(Rules.defaults, request({ amount: "799.99" })))
    assert.isFalse(Rules.isNearThreshold(Rules.defaults, request({ amount: "1200.00", requiresApproval: true })))
  })

  it("reads RISK_LARGE_THRESHOLDS, refusing a malformed list", () => {
    assert.deepStrictEqual(Rules.parseThresholds("USD=3000.00, EUR=2000"), { USD: "3000.00", EUR: "2000" })
    assert.isUndefined(Rules.parseThresholds("USD=lots"))
    assert.isUndefined(Rules.parseThresholds("usd=1.00"))
  })
})

const t0 = Date.parse("2026-03-01T08:00:00.000Z")
const hours = (n: number) => new Date(t0 + Duration.toMillis(Duration.hours(n))).toISOString()

let sequence = 0
/** A TransferRequested message as the relay sends it. */
const requested = (
  transferId: string,
  at: string,
  amount: string,
  options?: { readonly from?: string; readonly currency?: string; readonly requiresApproval?: boolean }
): TransferFacts.TransferMessage => {
  sequence++
  return {
    eventId: `e-${transferId}`,
    streamId: `Transfer-${transferId}`,
    category: "Transfer",
    version: 1,
    position: `1.${sequence}.${sequence}`,
    type: "TransferRequested",
    schemaVersion: 1,
    recordedAt: at,
    data: {
      _tag: "TransferRequested",
      transferId,
      fromAccount: options?.from ?? "acct-1",
      toAccount: "acct-2",
      amount,
      currency: options?.currency ?? "USD",
      reference: "",
      requestedBy: "alice",
      requiresApproval: options?.requiresApproval ?? false,
      approvalThreshold: options?.currency === "JPY" ? "150000" : "1000.00",
      requestedAt: at
    }
  }
}

const facts: ReadonlyArray<TransferFacts.TransferMessage> = [
  requested("n1", hours(0), "900.00"),
  requested("n2", hours(1), "950.00"),
  requested("small", hours(1.5), "20.00"),
  requested("n3", hours(2), "800.00"),
  requested("other", hours(2.5), "900.00", { from: "acct-9" }),
  requested("n4", hours(30), "990.00"),
  requested("n5", hours(30.5), "850.00"),
  requested("big", hours(31), "2600.00", { requiresApproval: true }),
  requested("n6", hours(31), "870.00"),
  requested("yen", hours(40), "500000", { currency: "JPY", requiresApproval: true })
]

/** A read model in a schema of its own, fed `messages` in that order, one transaction each; its flags. */
const flagsAfter = (messages: ReadonlyArray<TransferFacts.TransferMessage>) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const schema = Database.uniqueSchema("riskmodel")
    const model = yield* RiskModel.make({ schema })
    for (const message of messages) yield* sql.withTransaction(model.apply(message))
    const result = yield* model.flags(100)
    yield* sql`DROP SCHEMA ${sql(schema)} CASCADE`
    return result
  })

layer(Database.client(), { timeout: 60_000 })("Risk read model", (it) => {
  it.effect("flags the same transfers whatever order the facts arrive in", () =>
    Effect.gen(function* () {
      const inOrder = yield* flagsAfter(facts)
      const reversed = yield* flagsAfter([...facts].reverse())
      const shuffled = yield* flagsAfter([4, 9, 7, 0, 5, 2, 8, 1, 6, 3].map((i) => facts[i]!))
      const keys = (flags: typeof inOrder) => flags.flags.map((flag) => `${flag.transferId}/${flag.rule}`).sort()
      assert.deepStrictEqual(keys(inOrder), ["big/large", "n3/near-threshold", "n6/near-threshold", "yen/large"])
      assert.deepStrictEqual(keys(reversed), keys(inOrder))
      assert.deepStrictEqual(keys(shuffled), keys(inOrder))
      assert.deepStrictEqual(inOrder.totals, { large: 2, nearThreshold: 2, transfersSeen: 10 })
      const n3 = inOrder.flags.find((flag) => flag.transferId === "n3")
      assert.match(
        n3?.reason ?? "",
        /^3 transfers from acct-1 within 24 hours, each at least 80% of the approval threshold/
      )
    })
  )

  it.effect("a fact applied twice shows in the transfer's fact count (the inbox is what keeps it at one)", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const schema = Database.uniqueSchema("riskmodel")
      const model = yield* RiskModel.make({ schema })
      const message = requested("twice", hours(0), "3000.00")
      yield* model.apply(message)
      yield* model.apply(message)
      assert.strictEqual(yield* model.factsOf("twice"), 2)
      assert.strictEqual((yield* model.flags(10)).totals.large, 1, "a flag is still raised once")
      yield* sql`DROP SCHEMA ${sql(schema)} CASCADE`
    })
  )
})
