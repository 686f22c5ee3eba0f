import { assert, describe, it } from "@effect/vitest"
import * as Plan from "../src/seed/Plan.ts"

// The seed's plan is a pure function of its seed number: tested without a database.

describe("Seed plan", () => {
  it("is a pure function of the seed number and the number of transfers", () => {
    assert.deepStrictEqual(Plan.plan({ seed: 7, transfers: 50 }), Plan.plan({ seed: 7, transfers: 50 }))
    assert.notDeepEqual(Plan.plan({ seed: 7, transfers: 50 }), Plan.plan({ seed: 8, transfers: 50 }))
  })

  it("opens every account first, closes the closed one, then sends transfers between open accounts of one currency", () => {
    const ops = Plan.plan({ seed: 42, transfers: 2_000 })
    const opened = ops.slice(0, Plan.accounts.length)
    assert.deepStrictEqual(
      opened.map((op) => (op._tag === "Open" ? op.account.id : op._tag)),
      Plan.accounts.map((account) => account.id)
    )
    assert.deepStrictEqual(ops[Plan.accounts.length], {
      _tag: "Close",
      account: Plan.closedAccount,
      reason: "customer moved abroad"
    })
    const currency = new Map(Plan.accounts.map((account) => [account.id, account.currency]))
    const transfers = ops.flatMap((op) => (op._tag === "Transfer" ? [op] : []))
    assert.strictEqual(transfers.length, 2_000)
    assert.strictEqual(new Set(transfers.map((t) => t.transferId)).size, 2_000, "transfer ids are unique")
    for (const t of transfers) {
      assert.notStrictEqual(t.from, t.to)
      assert.strictEqual(currency.get(t.from), t.currency, `${t.transferId} is in its sender's currency`)
      assert.strictEqual(currency.get(t.to), t.currency, `${t.transferId} is in its receiver's currency`)
      assert.isAbove(t.amount, 0)
      assert.strictEqual(
        t.review !== undefined,
        t.amount > Plan.approvalThresholdIn(t.currency),
        "large transfers, and only those, are reviewed"
      )
    }
    assert.strictEqual(
      transfers.filter((t) => t.to === Plan.closedAccount).length,
      1,
      "one transfer to the closed account"
    )
    assert.strictEqual(transfers.filter((t) => t.review === "leave").length, 2, "two large transfers left for the demo")
  })

  it("groups operations into rounds that touch no account twice", () => {
    const ops = Plan.plan({ seed: 3, transfers: 500 })
    for (let start = 0; start < ops.length; ) {
      const round = Plan.roundFrom(ops, start)
      assert.isAbove(round.length, 0)
      const touched = round.flatMap((i) => Plan.accountsOf(ops[i]!))
      assert.strictEqual(new Set(touched).size, touched.length, `round at ${start} touches each account once`)
      start = round.at(-1)! + 1
    }
  })
})
