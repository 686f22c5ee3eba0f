/**
 * Demo data, written through the real command side (the `Accounts` and `Transfers` services): customers with
 * accounts in USD and EUR, deposits (booked by a teller, within the teller's limit), withdrawals, fees and a few
 * thousand transfers, among them transfers above the approval threshold of their currency (approved by carol, a few
 * rejected, the last ones left for the demo to approve), a withdrawal above it (waiting, then approved by carol),
 * transfers that fail for insufficient funds, and one to a closed account whose debit is compensated.
 *
 * **Deterministic.** The plan of operations comes from a seeded random generator, and the seed drives each transfer
 * to its end with the transfer process' own handler (`TransferProcess.handle`) before the next operation, so a given
 * seed number always gives the same balances and outcomes. The transfer process projection, started later, finds
 * nothing left to do (its steps are idempotent).
 *
 * **Idempotent.** Progress is recorded in the stream `Seed-bank` (`SeedProgress` every 200 operations, then
 * `SeedCompleted`). A completed seed is not run again, whatever its options; an interrupted one resumes after its
 * last recorded progress, skipping operations already stored (transfers by their deterministic id, other operations
 * by the correlation id `seed-<n>` their events carry).
 */
import { type Event, EventCodec, EventStore, ExpectedVersion } from "@facta/core"
import { Effect, Layer, Schema, Stream } from "effect"
import * as Aggregates from "../app/Aggregates.ts"
import * as TransferProcess from "../app/TransferProcess.ts"
import * as Account from "../domain/Account.ts"
import * as Money from "../domain/Money.ts"
import * as Transfer from "../domain/Transfer.ts"
import * as Plan from "./Plan.ts"
import * as Progress from "./Progress.ts"

/**
 * The stream recording the seed's progress.
 */
export const markerStream = "Seed-bank"

const SeedProgress = Schema.TaggedStruct("SeedProgress", {
  seed: Schema.Int,
  transfers: Schema.Int,
  done: Schema.Int
})
const SeedCompleted = Schema.TaggedStruct("SeedCompleted", {
  seed: Schema.Int,
  transfers: Schema.Int,
  operations: Schema.Int,
  events: Schema.Int
})
const SeedEvent = Schema.Union([SeedProgress, SeedCompleted])
type SeedEvent = typeof SeedEvent.Type
const seedCodec = EventCodec.make(SeedEvent)

/**
 * How the seeded transfers ended.
 */
export interface Outcomes {
  readonly completed: number
  readonly failed: number
  readonly compensated: number
  readonly rejected: number
  readonly awaitingApproval: number
}

/**
 * What {@link run} did: `Seeded` with what it wrote, or `AlreadySeeded` with what the earlier seed recorded.
 */
export type Result =
  | {
      readonly _tag: "Seeded"
      readonly seed: number
      readonly operations: number
      readonly transfers: number
      readonly events: number
      readonly millis: number
      readonly outcomes: Outcomes
      readonly resumedAt: number
    }
  | {
      readonly _tag: "AlreadySeeded"
      readonly seed: number
      readonly operations: number
      readonly transfers: number
      readonly events: number
    }

/**
 * How to seed.
 */
export interface Options {
  /** The random seed (default 42). */
  readonly seed?: number | undefined
  /** How many transfers (default 2000). */
  readonly transfers?: number | undefined
  /** Show progress on stderr (default true). */
  readonly progress?: boolean | undefined
  /** Force the terminal (or the log) rendering of the progress (default: whether stderr is a terminal). */
  readonly tty?: boolean | undefined
}

const readMarker = EventStore.EventStore.use((store) =>
  store.read(markerStream).pipe(
    Stream.mapEffect(seedCodec.decode),
    Stream.runCollect,
    Effect.map((events) => Array.from(events, (e) => e.data)),
    Effect.catchTag("StreamNotFound", () => Effect.succeed<ReadonlyArray<SeedEvent>>([]))
  )
)

/**
 * Whether the database was seeded already (a `SeedCompleted` is recorded).
 */
export const isSeeded = Effect.map(readMarker, (events) => events.some((e) => e._tag === "SeedCompleted"))

/** Wraps the store so that every appended event is counted. */
const counting = (store: EventStore.EventStore["Service"], counter: { n: number }): EventStore.EventStore["Service"] =>
  EventStore.EventStore.of({
    ...store,
    append: (streamId, events, options) =>
      Effect.tap(
        store.append(streamId, events, options),
        Effect.sync(() => {
          counter.n += events.length
        })
      ),
    appendMany: (requests) =>
      Effect.tap(
        store.appendMany(requests),
        Effect.sync(() => {
          for (const request of requests) counter.n += request.events.length
        })
      )
  })

/**
 * Drives a transfer to its end with the transfer process' handler: hands it each process event of the transfer's
 * stream after `after`, until its steps add no more.
 */
const settle = Effect.fnUntraced(function* (transferId: string) {
  const transfers = yield* Aggregates.Transfers
  const types: ReadonlySet<string> = new Set(TransferProcess.TransferProcess.events.types)
  let after = 0
  for (;;) {
    const events = yield* Stream.runCollect(transfers.events(transferId, { from: after + 1 }))
    const list = Array.from(events)
    if (list.length === 0) return
    for (const event of list) {
      after = event.version
      if (!types.has(event.type)) continue
      const decoded = yield* TransferProcess.TransferProcess.events.decode(event)
      yield* TransferProcess.handle(decoded)
    }
  }
})

const ignoreIf =
  (tags: ReadonlyArray<string>) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A | undefined, E, R> =>
    Effect.catchIf(
      effect,
      (e): e is E => typeof e === "object" && e !== null && "_tag" in e && tags.includes(String(e._tag)),
      () => Effect.succeed(undefined)
    )

/**
 * Seeds the demo data (see the module documentation). Needs an event store and a snapshot store: it builds its own
 * `Accounts` and `Transfers` on them, once, with a store that counts the events they append.
 */
export const run = Effect.fn("Seed.run")(function* (options?: Options) {
  const seed = options?.seed ?? 42
  const transfers = options?.transfers ?? 2000
  const marker = yield* readMarker
  let completed: typeof SeedCompleted.Type | undefined
  let last: typeof SeedProgress.Type | undefined
  for (const event of marker) {
    if (event._tag === "SeedCompleted") completed = event
    else last = event
  }
  if (completed !== undefined) {
    return {
      _tag: "AlreadySeeded",
      seed: completed.seed,
      operations: completed.operations,
      transfers: completed.transfers,
      events: completed.events
    } satisfies Result as Result
  }
  // an interrupted seed resumes with its own options, whatever this run asked for
  const effectiveSeed = last?.seed ?? seed
  const effectiveTransfers = last?.transfers ?? transfers
  const resumedAt = last?.done ?? 0
  const ops = Plan.plan({ seed: effectiveSeed, transfers: effectiveTransfers })

  const store = yield* EventStore.EventStore
  const counter = { n: 0 }
  const counted = counting(store, counter)
  // the command side of the seed, on the counting store: built once for the whole seed (fresh: not the services the
  // context may have built already on the plain store)
  const countedStore = Layer.succeed(EventStore.EventStore, counted)
  const services = Layer.fresh(Aggregates.layer).pipe(Layer.provideMerge(countedStore))
  const started = Date.now()
  const progress = Progress.make("seed", ops.length, { tty: options?.tty })
  const showProgress = options?.progress ?? true
  const batch = 200
  // only the operations after the last progress mark of an interrupted seed may be stored already
  let checkStored = resumedAt > 0

  // after a resume, the operations past the last progress mark may be stored already: their events carry
  // correlation id seed-<n>
  const storedCorrelations = new Map<string, ReadonlySet<string>>()
  const isStored = Effect.fnUntraced(function* (account: string, correlationId: string) {
    const accounts = yield* Aggregates.Accounts
    let ids = storedCorrelations.get(account)
    if (ids === undefined) {
      const recent = yield* Stream.runCollect(accounts.events(account, { direction: "backward", limit: 5_000 })).pipe(
        Effect.catchTag("StreamNotFound", () => Effect.succeed([] as Array<Event.RecordedEvent>))
      )
      ids = new Set(Array.from(recent).flatMap((e) => (e.metadata.correlationId ? [e.metadata.correlationId] : [])))
      storedCorrelations.set(account, ids)
    }
    return ids.has(correlationId)
  })

  const apply = Effect.fnUntraced(function* (op: Plan.Operation, index: number) {
    const accounts = yield* Aggregates.Accounts
    const transfers = yield* Aggregates.Transfers
    const correlationId = `seed-${index}`
    switch (op._tag) {
      case "Open": {
        yield* accounts
          .handle(
            op.account.id,
            Account.Open.make({
              owner: op.account.owner,
              currency: op.account.currency,
              initialDeposit: Money.Amount.make(op.account.initialDeposit),
              // booked by the teller: within the teller's limit, as every deposit
              depositLimit: Plan.depositLimitIn(op.account.currency)
            }),
            { metadata: { actor: "teller", correlationId } }
          )
          .pipe(ignoreIf(["AccountAlreadyOpened"]))
        return
      }
      case "Close": {
        yield* accounts
          .handle(op.account, Account.Close.make({ reason: op.reason }), {
            metadata: { actor: "admin", correlationId }
          })
          .pipe(ignoreIf(["AccountIsClosed"]))
        return
      }
      case "Deposit":
      case "Withdraw":
      case "Fee": {
        const amount = Money.Amount.make(op.amount)
        const actor = op._tag === "Fee" ? "bank" : "teller"
        // the request id of an outflow above the threshold: the approval below names it
        const outflow = {
          requestId: correlationId,
          requestedBy: actor,
          approvalThreshold: Plan.approvalThresholdIn(op.currency)
        }
        // a large outflow waits for a second person: the seed's approver approves it (also after a resume that
        // finds the request stored but not yet approved)
        const approveLarge =
          op._tag !== "Deposit" && amount > outflow.approvalThreshold
            ? accounts
                .handle(op.account, Account.ApproveOutflow.make({ requestId: correlationId, by: Plan.approver }), {
                  metadata: { actor: Plan.approver, correlationId }
                })
                .pipe(ignoreIf(["OutflowNotPending", "InsufficientFunds"]))
            : Effect.void
        if (checkStored && (yield* isStored(op.account, correlationId))) {
          yield* approveLarge
          return
        }
        const command =
          op._tag === "Deposit"
            ? Account.Deposit.make({
                amount,
                currency: op.currency,
                reference: op.reference,
                depositLimit: Plan.depositLimitIn(op.currency)
              })
            : op._tag === "Withdraw"
              ? Account.Withdraw.make({ amount, currency: op.currency, reference: op.reference, ...outflow })
              : Account.ChargeFee.make({ amount, currency: op.currency, reason: op.reference, ...outflow })
        // a withdrawal or a fee the balance cannot cover is refused, as it would be at the counter
        yield* accounts
          .handle(op.account, command, { metadata: { actor, correlationId } })
          .pipe(ignoreIf(["InsufficientFunds"]))
        yield* approveLarge
        return
      }
      case "Transfer": {
        yield* transfers
          .handle(
            op.transferId,
            Transfer.Initiate.make({
              from: op.from,
              to: op.to,
              amount: Money.Amount.make(op.amount),
              currency: op.currency,
              reference: op.reference,
              initiatedBy: op.initiatedBy,
              approvalThreshold: Plan.approvalThresholdIn(op.currency)
            }),
            { metadata: { actor: op.initiatedBy, correlationId } }
          )
          .pipe(ignoreIf(["TransferAlreadyInitiated"]))
        if (op.review === "approve" || op.review === "reject") {
          const review =
            op.review === "approve"
              ? Transfer.Approve.make({ by: Plan.approver })
              : Transfer.Reject.make({ by: Plan.approver, reason: "amount not justified" })
          yield* transfers
            .handle(op.transferId, review, { metadata: { actor: Plan.approver, correlationId } })
            .pipe(ignoreIf(["InvalidTransferState"]))
        }
        yield* settle(op.transferId)
        return
      }
    }
  })

  const recordProgress = (done: number) =>
    EventStore.appendEvents(seedCodec, markerStream, [
      SeedProgress.make({ seed: effectiveSeed, transfers: effectiveTransfers, done })
    ])

  if (resumedAt > 0) {
    yield* Effect.logInfo(`seed: resuming an interrupted seed at operation ${resumedAt} of ${ops.length}`)
  } else {
    yield* recordProgress(0)
  }
  const outcomes = yield* Effect.gen(function* () {
    let index = resumedAt
    let nextMark = (Math.floor(resumedAt / batch) + 1) * batch
    while (index < ops.length) {
      // operations on disjoint accounts run side by side: the result is the same as one after the other
      const round = Plan.roundFrom(ops, index)
      yield* Effect.forEach(round, (i) => apply(ops[i]!, i), { concurrency: "unbounded", discard: true })
      index += round.length
      if (index >= nextMark || index === ops.length) {
        yield* recordProgress(index)
        checkStored = false
        nextMark = (Math.floor(index / batch) + 1) * batch
      }
      if (showProgress) yield* progress.update(index, counter.n)
    }
    return yield* countOutcomes(ops)
  }).pipe(Effect.provide(services))

  const events = counter.n
  const millis = Date.now() - started
  yield* EventStore.appendEvents(
    seedCodec,
    markerStream,
    [SeedCompleted.make({ seed: effectiveSeed, transfers: effectiveTransfers, operations: ops.length, events })],
    { expectedVersion: ExpectedVersion.any }
  )
  if (showProgress) {
    yield* progress.finish(
      `${ops.length} operations, ${events} events in ${(millis / 1000).toFixed(1)} s (${Math.round((events * 1000) / Math.max(1, millis))} events/s)`
    )
  }
  return {
    _tag: "Seeded",
    seed: effectiveSeed,
    operations: ops.length,
    transfers: effectiveTransfers,
    events,
    millis,
    outcomes,
    resumedAt
  } satisfies Result as Result
})

/** How the plan's transfers ended, from their streams. */
const countOutcomes = Effect.fnUntraced(function* (ops: ReadonlyArray<Plan.Operation>) {
  const transfers = yield* Aggregates.Transfers
  const counts = { completed: 0, failed: 0, compensated: 0, rejected: 0, awaitingApproval: 0 }
  for (const op of ops) {
    if (op._tag !== "Transfer") continue
    const { state } = yield* transfers.load(op.transferId)
    if (state._tag !== "Transfer") continue
    if (state.status === "Completed") counts.completed++
    else if (state.status === "Rejected") counts.rejected++
    else if (state.status === "AwaitingApproval") counts.awaitingApproval++
    else if (state.status === "Failed" && state.debited) counts.compensated++
    else if (state.status === "Failed") counts.failed++
  }
  return counts satisfies Outcomes
})

/**
 * A one-line description of a result, for people.
 */
export const describe = (result: Result): string =>
  result._tag === "AlreadySeeded"
    ? `already seeded (seed ${result.seed}, ${result.transfers} transfers, ${result.events} events): nothing to do`
    : `seeded ${result.operations} operations (${result.transfers} transfers: ${result.outcomes.completed} completed, ` +
      `${result.outcomes.failed} failed, ${result.outcomes.compensated} compensated, ${result.outcomes.rejected} rejected, ` +
      `${result.outcomes.awaitingApproval} awaiting approval), ${result.events} events in ${(result.millis / 1000).toFixed(1)} s`
