import { assert, describe, it } from "@effect/vitest"
import { Decider } from "@facta/core"
import { DeciderSpec, Properties } from "@facta/testing"
import { Arbitrary, Effect, Schema } from "effect"
import { Money, Transfer } from "../src/index.ts"

const spec = DeciderSpec.make(Transfer.decider)

const USD = Money.Currency.make("USD")
const amount = (n: number) => n as Money.Amount

const initiate = (n: number, threshold = 1000, overrides: Partial<typeof Transfer.Initiate.Type> = {}) =>
  Transfer.Initiate.make({
    from: "alice",
    to: "bob",
    amount: amount(n),
    currency: USD,
    reference: "rent",
    initiatedBy: "alice",
    approvalThreshold: amount(threshold),
    ...overrides
  })
const approve = (by = "carol") => Transfer.Approve.make({ by })
const reject = Transfer.Reject.make({ by: "carol", reason: "suspicious" })
const expire = Transfer.Expire.make({ reason: "not approved within 24 hours" })
const markDebited = Transfer.MarkDebited.make({})
const markDebitFailed = Transfer.MarkDebitFailed.make({ reason: "insufficient funds" })
const markCredited = Transfer.MarkCredited.make({})
const markCreditFailed = Transfer.MarkCreditFailed.make({ reason: "account closed" })
const markCompensated = Transfer.MarkCompensated.make({})

const initiated = (n: number, threshold = 1000) =>
  Transfer.TransferInitiated.make({
    from: "alice",
    to: "bob",
    amount: amount(n),
    currency: USD,
    reference: "rent",
    initiatedBy: "alice",
    approvalThreshold: amount(threshold),
    requiresApproval: n > threshold
  })
const approved = (by = "carol") => Transfer.TransferApproved.make({ by })
const rejected = Transfer.TransferRejected.make({ by: "carol", reason: "suspicious" })
const expired = Transfer.TransferExpired.make({ reason: "not approved within 24 hours" })
const debited = Transfer.TransferDebited.make({})
const debitFailed = Transfer.TransferDebitFailed.make({ reason: "insufficient funds" })
const completed = Transfer.TransferCompleted.make({})
const creditFailed = Transfer.TransferCreditFailed.make({ reason: "account closed" })
const compensated = Transfer.TransferCompensated.make({})

/** Histories reaching each status. */
const small = initiated(100) // needs no approval
const big = initiated(5000) // needs approval
const at: Record<Transfer.TransferStatus, ReadonlyArray<Transfer.TransferEvent>> = {
  Initiated: [small],
  AwaitingApproval: [big],
  Approved: [big, approved()],
  Rejected: [big, rejected],
  Expired: [big, expired],
  Debited: [small, debited],
  Compensating: [small, debited, creditFailed],
  Completed: [small, debited, completed],
  Failed: [small, debitFailed]
}
const compensatedHistory = [small, debited, creditFailed, compensated]
const statuses = Object.keys(at) as Array<Transfer.TransferStatus>
const invalid = (command: Transfer.TransferCommand, status: string) =>
  new Transfer.InvalidTransferState({ command: command._tag, status })

describe("Transfer: Initiate", () => {
  it.effect("within the threshold the transfer may be debited at once", () =>
    Effect.gen(function* () {
      yield* spec
        .given()
        .when(initiate(1000))
        .thenEvents([initiated(1000)])
      const { state } = spec.given([initiated(1000)])
      assert.strictEqual(state._tag === "Transfer" && state.status, "Initiated")
      assert.isTrue(Transfer.isReadyToDebit(state))
    })
  )

  it.effect("above the threshold it awaits approval", () =>
    Effect.gen(function* () {
      yield* spec
        .given()
        .when(initiate(1001))
        .thenEvents([initiated(1001)])
      const { state } = spec.given([initiated(1001)])
      assert.strictEqual(state._tag === "Transfer" && state.status, "AwaitingApproval")
      assert.isFalse(Transfer.isReadyToDebit(state))
    })
  )

  it.effect("refuses a transfer to the same account, invalid amounts, and initiating twice", () =>
    Effect.gen(function* () {
      yield* spec
        .given()
        .when(initiate(10, 1000, { to: "alice" }))
        .thenFails(new Transfer.SameAccount({ account: "alice" }))
      yield* spec
        .given()
        .when({ ...initiate(10), amount: amount(0) })
        .thenFails(new Transfer.InvalidTransferAmount({ field: "amount", value: 0 }))
      yield* spec
        .given()
        .when({ ...initiate(10), approvalThreshold: amount(-1) })
        .thenFails(new Transfer.InvalidTransferAmount({ field: "approvalThreshold", value: -1 }))
      yield* spec
        .given([small])
        .when(initiate(10))
        .thenFails(new Transfer.TransferAlreadyInitiated({ status: "Initiated" }))
    })
  )

  it.effect("refuses every other command before it is initiated", () =>
    Effect.forEach(
      [approve(), reject, expire, markDebited, markDebitFailed, markCredited, markCreditFailed, markCompensated],
      (command) =>
        spec
          .given()
          .when(command)
          .thenFails(new Transfer.TransferNotInitiated({ command: command._tag })),
      { discard: true }
    )
  )
})

describe("Transfer: Approve, Reject, Expire", () => {
  it.effect("a second person approves", () =>
    Effect.gen(function* () {
      yield* spec.given([big]).when(approve()).thenEvents([approved()])
      const { state } = spec.given([big, approved()])
      assert.isTrue(Transfer.isReadyToDebit(state))
      assert.strictEqual(state._tag === "Transfer" && state.approvedBy, "carol")
    })
  )

  it.effect("the initiator cannot approve their own transfer", () =>
    spec
      .given([big])
      .when(approve("alice"))
      .thenFails(new Transfer.SelfApprovalForbidden({ actor: "alice" }))
  )

  it.effect("a transfer within the threshold needs no approval", () =>
    spec
      .given([small])
      .when(approve())
      .thenFails(new Transfer.ApprovalNotRequired({ amount: 100, approvalThreshold: 1000 }))
  )

  it.effect("approving again by the same approver changes nothing; by another, or later, is refused", () =>
    Effect.gen(function* () {
      yield* spec.given([big, approved()]).when(approve()).thenEvents([])
      yield* spec
        .given([big, approved()])
        .when(approve("dave"))
        .thenFails(invalid(approve("dave"), "Approved"))
      yield* spec.given([big, rejected]).when(approve()).thenFails(invalid(approve(), "Rejected"))
    })
  )

  it.effect("only a transfer awaiting approval can be rejected or expire", () =>
    Effect.gen(function* () {
      yield* spec.given([big]).when(reject).thenEvents([rejected])
      yield* spec.given([big]).when(expire).thenEvents([expired])
      for (const status of statuses.filter((s) => s !== "AwaitingApproval")) {
        yield* spec.given(at[status]).when(reject).thenFails(invalid(reject, status))
        yield* spec.given(at[status]).when(expire).thenFails(invalid(expire, status))
      }
    })
  )

  it("rejected, expired, completed and failed transfers are finished (terminal)", () => {
    for (const status of statuses) {
      const finished = ["Rejected", "Expired", "Completed", "Failed"].includes(status)
      assert.strictEqual(Decider.isTerminal(Transfer.decider, spec.given(at[status]).state), finished, status)
    }
  })
})

/** Checks a process step against every status: moves on from `from`, does nothing at `done`, refused elsewhere. */
const checkStep = (
  command: Transfer.TransferCommand,
  event: Transfer.TransferEvent,
  from: ReadonlyArray<Transfer.TransferStatus>,
  done: ReadonlyArray<Transfer.TransferStatus>
) =>
  Effect.forEach(
    statuses,
    (status) =>
      from.includes(status)
        ? spec.given(at[status]).when(command).thenEvents([event])
        : done.includes(status)
          ? spec.given(at[status]).when(command).thenEvents([])
          : spec.given(at[status]).when(command).thenFails(invalid(command, status)),
    { discard: true }
  )

describe("Transfer: process steps", () => {
  it.effect("MarkDebited: from Initiated or Approved; idempotent once debited", () =>
    Effect.gen(function* () {
      yield* checkStep(markDebited, debited, ["Initiated", "Approved"], ["Debited", "Compensating", "Completed"])
      yield* spec.given(compensatedHistory).when(markDebited).thenEvents([])
    })
  )

  it.effect("MarkDebitFailed: from Initiated or Approved to Failed with nothing taken; idempotent", () =>
    Effect.gen(function* () {
      yield* checkStep(markDebitFailed, debitFailed, ["Initiated", "Approved"], ["Failed"])
      yield* spec.given(compensatedHistory).when(markDebitFailed).thenFails(invalid(markDebitFailed, "Failed"))
      const { state } = spec.given([small, debitFailed])
      assert.deepStrictEqual(state._tag === "Transfer" && [state.debited, state.failure], [false, "insufficient funds"])
    })
  )

  it.effect("MarkCredited: from Debited to Completed; idempotent", () =>
    checkStep(markCredited, completed, ["Debited"], ["Completed"])
  )

  it.effect("MarkCreditFailed: from Debited to Compensating; idempotent", () =>
    Effect.gen(function* () {
      yield* checkStep(markCreditFailed, creditFailed, ["Debited"], ["Compensating"])
      yield* spec.given(compensatedHistory).when(markCreditFailed).thenEvents([])
    })
  )

  it.effect("MarkCompensated: from Compensating to Failed with the debit reversed; idempotent", () =>
    Effect.gen(function* () {
      yield* checkStep(markCompensated, compensated, ["Compensating"], [])
      yield* spec.given(compensatedHistory).when(markCompensated).thenEvents([])
      const { state } = spec.given(compensatedHistory)
      assert.deepStrictEqual(state._tag === "Transfer" && [state.status, state.debited], ["Failed", true])
    })
  )
})

// Properties

const Actor = Schema.Literals(["alice", "carol"])
const SmallCommand = Schema.Union([
  Schema.TaggedStruct("Initiate", { amount: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 3 })) }),
  Schema.TaggedStruct("Approve", { by: Actor }),
  Schema.TaggedStruct("Reject", {}),
  Schema.TaggedStruct("Expire", {}),
  Schema.TaggedStruct("MarkDebited", {}),
  Schema.TaggedStruct("MarkDebitFailed", {}),
  Schema.TaggedStruct("MarkCredited", {}),
  Schema.TaggedStruct("MarkCreditFailed", {}),
  Schema.TaggedStruct("MarkCompensated", {})
])
const toCommand = (c: typeof SmallCommand.Type): Transfer.TransferCommand => {
  switch (c._tag) {
    case "Initiate":
      return initiate(c.amount, 2)
    case "Approve":
      return approve(c.by)
    case "Reject":
      return reject
    case "Expire":
      return expire
    case "MarkDebited":
      return markDebited
    case "MarkDebitFailed":
      return markDebitFailed
    case "MarkCredited":
      return markCredited
    case "MarkCreditFailed":
      return markCreditFailed
    case "MarkCompensated":
      return markCompensated
  }
}
const commands = Arbitrary.map(Properties.commands(SmallCommand, { maxLength: 30 }), (cs) => cs.map(toCommand))

const statusOf = (state: Transfer.TransferState) => (state._tag === "Transfer" ? state.status : "NotInitiated")

describe("Transfer properties", () => {
  it.effect("no money moves without approval above the threshold, nor by the initiator's approval alone", () =>
    Properties.invariant(
      Transfer.decider,
      commands,
      (state) =>
        state._tag === "NotInitiated" ||
        !state.debited ||
        state.amount <= state.approvalThreshold ||
        (state.approvedBy !== null && state.approvedBy !== state.initiatedBy),
      { runs: 300, size: 30, label: "four eyes" }
    )
  )

  it.effect("a finished transfer stays finished", () =>
    Properties.invariant(
      Transfer.decider,
      commands,
      (_state, history) => {
        const end = history.findIndex((step) => Transfer.isFinished(step.state))
        return end === -1 || history.slice(end).every((step) => statusOf(step.state) === statusOf(history[end]!.state))
      },
      { runs: 300, size: 30, label: "finished stays finished" }
    )
  )
})
