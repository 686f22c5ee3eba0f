/**
 * Transfers that wait for approval do not wait forever: a sweeper expires those older than the approval window
 * (`BANK_APPROVAL_WINDOW`, default 24 hours). Expiring takes nothing from anyone: only a transfer still awaiting
 * approval can expire, and no money has moved for it yet.
 */
import { Clock, Config, Duration, Effect, Schedule } from "effect"
import * as Transfer from "../domain/Transfer.ts"
import { ReadModels } from "../readmodels/ReadModels.ts"
import { Transfers } from "./Aggregates.ts"

/**
 * The actor recorded on expiries.
 */
export const actor = "transfer-expiry"

/**
 * Expires every transfer that has awaited approval for longer than `window`; returns the ids it expired. A transfer
 * approved or rejected meanwhile is left alone (the domain refuses to expire it).
 *
 * @example
 * ```ts
 * import { TransferExpiry } from "@facta/example-bank/app/TransferExpiry"
 *
 * const expired = TransferExpiry.sweep("24 hours")
 * ```
 */
export const sweep = Effect.fn("TransferExpiry.sweep")(function* (window: Duration.Input) {
  const models = yield* ReadModels
  const transfers = yield* Transfers
  const now = yield* Clock.currentTimeMillis
  const cutoff = now - Duration.toMillis(window)
  const waiting = yield* models.transfers({ status: "AwaitingApproval", limit: 500 })
  const expired: Array<string> = []
  for (const transfer of waiting) {
    if (Date.parse(transfer.initiatedAt) > cutoff) continue
    const result = yield* transfers
      .handle(
        transfer.transferId,
        Transfer.Expire.make({ reason: `no approval within ${Duration.format(Duration.fromInputUnsafe(window))}` }),
        { metadata: { actor, correlationId: transfer.transferId } }
      )
      .pipe(
        Effect.map(() => true),
        // approved, rejected or expired since the read model saw it: nothing to do
        Effect.catchTag("InvalidTransferState", () => Effect.succeed(false))
      )
    if (result) expired.push(transfer.transferId)
  }
  return expired
})

/**
 * Sweeps every `every` (default a minute) for as long as it runs, with the window from `BANK_APPROVAL_WINDOW`.
 */
export const run = (every: Duration.Input = "1 minute") =>
  Effect.gen(function* () {
    const window = yield* Config.Duration("BANK_APPROVAL_WINDOW").pipe(Config.withDefault(Duration.hours(24)))
    yield* sweep(window).pipe(
      Effect.tap((ids) => (ids.length > 0 ? Effect.logInfo("expired transfers", { ids }) : Effect.void)),
      Effect.catchCause((cause) => Effect.logWarning("transfer expiry sweep failed", cause)),
      Effect.repeat(Schedule.spaced(every))
    )
  })
