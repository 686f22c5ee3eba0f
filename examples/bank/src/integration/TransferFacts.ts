/**
 * The bank's public contract for transfers: the integration events other services (the risk watch) receive, and
 * where they travel. It is separate from the bank's internal events (`domain/Transfer.ts`) on purpose: the bank's
 * relay maps its internal events to these (`app/TransferRelay.ts`), so the internal ones can change (a new step, a
 * renamed field, a new schema version) without breaking a consumer, as long as the mapping still produces these.
 *
 * This module imports nothing of the bank's domain: a consumer depends on it alone.
 *
 * | public event          | from the internal event(s)                                   |
 * | --------------------- | ------------------------------------------------------------ |
 * | `TransferRequested`   | `TransferInitiated`                                          |
 * | `TransferApproved`    | `TransferApproved`                                           |
 * | `TransferRejected`    | `TransferRejected` (by a person) and `TransferExpired` (`rejectedBy: null`) |
 * | `TransferCompleted`   | `TransferCompleted`                                          |
 * | `TransferFailed`      | `TransferDebitFailed` (nothing taken) and `TransferCompensated` (debit reversed) |
 *
 * The process's own steps (`TransferDebited`, `TransferCreditFailed`) are not published. Amounts are decimal strings
 * in the currency's major unit (`"1500.00"`), never floats or internal minor units. Every message carries the Facta
 * envelope too (event id, stream, version, position, recorded time, correlation and causation ids): the body is
 * `{ ...envelope, type, schemaVersion: 1, data: <one of these> }`.
 */
import { IntegrationEvent } from "@facta/core"
import { Schema } from "effect"

/** The schema version of the facts below; a breaking change publishes version 2 beside them. */
export const schemaVersion = 1

/** A decimal amount in the currency's major unit: digits, and a fraction when the currency has minor units. */
export const DecimalAmount = Schema.String.check(
  Schema.isPattern(/^\d{1,16}(\.\d{1,4})?$/, { message: 'a decimal amount such as "1500.00"' })
)

/** An ISO 4217 currency code. */
export const CurrencyCode = Schema.String.check(Schema.isPattern(/^[A-Z]{3}$/, { message: "an ISO 4217 code" }))

const Id = Schema.NonEmptyString

/**
 * A transfer was requested: who moves how much from which account to which. `requiresApproval` says whether it waits
 * for a second person (its amount is above `approvalThreshold`, in the same currency).
 */
export const TransferRequested = Schema.TaggedStruct("TransferRequested", {
  transferId: Id,
  fromAccount: Id,
  toAccount: Id,
  amount: DecimalAmount,
  currency: CurrencyCode,
  reference: Schema.String,
  requestedBy: Id,
  requiresApproval: Schema.Boolean,
  approvalThreshold: DecimalAmount,
  /** When the bank recorded the request (ISO 8601). */
  requestedAt: Schema.String
})

/** A second person approved the transfer. */
export const TransferApproved = Schema.TaggedStruct("TransferApproved", { transferId: Id, approvedBy: Id })

/** The transfer was turned down before any money moved: by a person, or (`rejectedBy: null`) nobody approved it. */
export const TransferRejected = Schema.TaggedStruct("TransferRejected", {
  transferId: Id,
  rejectedBy: Schema.NullOr(Id),
  reason: Schema.String
})

/** The money arrived. */
export const TransferCompleted = Schema.TaggedStruct("TransferCompleted", { transferId: Id })

/** The transfer failed with no money moved: `reversed` says whether a debit was given back. */
export const TransferFailed = Schema.TaggedStruct("TransferFailed", {
  transferId: Id,
  reason: Schema.String,
  reversed: Schema.Boolean
})

/**
 * Every public transfer fact.
 */
export const TransferFact = Schema.Union([
  TransferRequested,
  TransferApproved,
  TransferRejected,
  TransferCompleted,
  TransferFailed
])

export type TransferFact = typeof TransferFact.Type

/**
 * A message as a consumer decodes it: the relay's envelope with a transfer fact as its data, at
 * {@link schemaVersion} (a message of another version does not decode, and an inbox parks it rather than misread it).
 */
export const TransferMessage = Schema.Struct({
  ...IntegrationEvent.IntegrationEvent.fields,
  schemaVersion: Schema.Literal(schemaVersion),
  data: TransferFact
})

export type TransferMessage = typeof TransferMessage.Type

/**
 * Where the facts travel: on NATS, subjects `bank.Transfer.<type>` in the JetStream stream `BANK_TRANSFERS`; on
 * Redis, the stream key `bank:Transfer`.
 */
export const channels = {
  subjectPrefix: "bank",
  natsStream: "BANK_TRANSFERS",
  redisKey: "bank:Transfer"
} as const
