/**
 * The bank's HTTP API, schema first: the endpoints, their payloads, responses and problems. The same definition
 * serves requests (see `Handlers.ts`), generates the OpenAPI document and types the client.
 *
 * Amounts travel as decimal strings in the account's currency (`"237.50"`); responses carry amounts as integer minor
 * units, as the read models hold them. Commands take `If-Match` (the stream version an `ETag` gave), an
 * `Idempotency-Key` and an `X-Correlation-Id`.
 */
import { Schema } from "effect"
import { HttpApi, HttpApiEndpoint, HttpApiGroup, HttpApiMiddleware, HttpApiSchema, OpenApi } from "effect/http-api"
import * as Money from "../domain/Money.ts"
import * as Transfer from "../domain/Transfer.ts"
import { AccountSummary, Explanation, HistoryPage, TransferSummary } from "../readmodels/ReadModels.ts"
import { Authentication } from "./Auth.ts"
import { ConsoleGroup } from "./Console.ts"
import { BadRequest, endpointErrors, InternalError } from "./Problems.ts"
import { RiskGroup } from "./Risk.ts"

/**
 * Answers requests that do not decode with a 400 problem naming the field.
 */
export class RequestValidation extends HttpApiMiddleware.Service<RequestValidation>()(
  "@facta/example-bank/api/RequestValidation",
  { error: [BadRequest, InternalError] }
) {}

/**
 * A decimal amount in the currency's major unit, such as `"237.50"`.
 */
export const DecimalAmount = Schema.String.annotate({
  description: 'A non-negative decimal in the major unit, with at most the currency\'s decimals ("237.50")',
  examples: ["237.50"]
})

const Id = Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(200))
const Text = Schema.String.check(Schema.isMaxLength(1000))

/**
 * The headers every command takes.
 */
export const CommandHeaders = {
  "if-match": Schema.optionalKey(Schema.String).annotate({
    description: "The stream version the command is decided on (an ETag); another version answers 412"
  }),
  "idempotency-key": Schema.optionalKey(Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(255))).annotate({
    description: "Repeating a request with the same key answers the first response and changes nothing"
  }),
  "x-correlation-id": Schema.optionalKey(Schema.String.check(Schema.isMaxLength(200)))
}

/**
 * The headers of a creation (`POST /accounts`, `POST /transfers`): those of {@link CommandHeaders} but `If-Match`,
 * since a new stream has no version to match (the id is new; a repeat is made safe by the `Idempotency-Key`).
 */
export const CreationHeaders = {
  "idempotency-key": CommandHeaders["idempotency-key"],
  "x-correlation-id": CommandHeaders["x-correlation-id"]
}

/**
 * The headers of a response that shows one stream: its version (`"3"`), and a warning when the read models had not
 * caught up yet.
 */
export const VersionHeaders = {
  etag: Schema.String,
  warning: Schema.optionalKey(Schema.String),
  "idempotent-replayed": Schema.optionalKey(Schema.String)
}

/**
 * The body of `POST /accounts`.
 */
export const OpenAccount = Schema.Struct({
  currency: Money.Currency,
  initialDeposit: Schema.optionalKey(
    DecimalAmount.annotate({
      description:
        'The opening deposit in the major unit ("237.50"): booked only by a teller or an admin, up to their per-deposit limit; a customer opens with none or "0" (otherwise 403 DepositsByTellersOnly)'
    })
  ),
  owner: Schema.optionalKey(Schema.NonEmptyString.check(Schema.isMaxLength(200))).annotate({
    description: "Who owns the account: the caller for customers; required of admins opening for someone else"
  })
})

/**
 * The body of deposits and withdrawals.
 */
export const MoveMoney = Schema.Struct({
  amount: DecimalAmount,
  currency: Schema.optionalKey(Money.Currency),
  reference: Schema.optionalKey(Text)
})

/**
 * The body of `POST /accounts/:id/fees`.
 */
export const ChargeFee = Schema.Struct({
  amount: DecimalAmount,
  currency: Schema.optionalKey(Money.Currency),
  reason: Text
})

/**
 * The body of freeze, unfreeze and close.
 */
export const WithReason = Schema.Struct({ reason: Schema.optionalKey(Text) })

/**
 * The body of `POST /transfers`.
 */
export const InitiateTransfer = Schema.Struct({
  from: Id,
  to: Id,
  amount: DecimalAmount,
  reference: Schema.optionalKey(Text)
})

/**
 * The body of `POST /transfers/:id/reject`.
 */
export const RejectTransfer = Schema.Struct({ reason: Schema.optionalKey(Text) })

/**
 * A withdrawal or fee above the approval threshold, waiting for a second person (`202` of a withdrawal or fee, and
 * the items of `GET /accounts/:id/outflows`). `amount` is in minor units; `decimals` says how many the currency has.
 */
export const PendingOutflow = Schema.Struct({
  accountId: Schema.String,
  requestId: Schema.String,
  kind: Schema.Literals(["Withdrawal", "Fee"]),
  amount: Schema.Int,
  currency: Schema.String,
  decimals: Schema.Int,
  text: Schema.String,
  requestedBy: Schema.String,
  approvalThreshold: Schema.Int,
  status: Schema.Literal("AwaitingApproval")
}).annotate({
  description: "An outflow above the approval threshold, waiting for an approver other than its requester"
})

/**
 * The body of `POST /accounts/:id/outflows/:requestId/reject`.
 */
export const RejectOutflow = Schema.Struct({ reason: Schema.optionalKey(Text) })

/**
 * A currency the bank accepts, with its minor units (from the runtime's ISO 4217 data) and its limits in minor units.
 */
export const CurrencyInfo = Schema.Struct({
  code: Schema.String,
  decimals: Schema.Int.annotate({ description: "Decimals of the minor unit: 2 for USD, 0 for JPY, 3 for KWD" }),
  approvalThreshold: Schema.Int.annotate({ description: "Outflows above this many minor units need an approval" }),
  tellerDepositLimit: Schema.Int.annotate({
    description:
      "The largest single deposit (or opening deposit) a teller or an admin may book, in minor units; customers book none"
  })
})

/**
 * An account as it stood at a version or an instant, folded from the store (no read model involved).
 */
export const AccountAsOf = Schema.Struct({
  accountId: Schema.String,
  version: Schema.Int,
  at: Schema.NullOr(Schema.String),
  opened: Schema.Boolean,
  owner: Schema.NullOr(Schema.String),
  currency: Schema.NullOr(Schema.String),
  balance: Schema.NullOr(Schema.Int),
  status: Schema.NullOr(Schema.Literals(["Active", "Frozen", "Closed"]))
})

/**
 * One stored event of an account, as the audit trail shows it.
 */
export const AuditEvent = Schema.Struct({
  eventId: Schema.String,
  version: Schema.Int,
  position: Schema.String,
  type: Schema.String,
  schemaVersion: Schema.Int,
  data: Schema.Json,
  metadata: Schema.Json,
  recordedAt: Schema.String
})

/**
 * An account's full audit trail from the store (archived streams included).
 */
export const AuditTrail = Schema.Struct({
  accountId: Schema.String,
  events: Schema.Array(AuditEvent)
})

const params = { id: Id }
const outflowParams = { id: Id, requestId: Id }
const Versioned = <S extends Schema.Top>(schema: S) => HttpApiSchema.WithHeaders(schema, VersionHeaders)

/**
 * The account endpoints.
 */
export class AccountsGroup extends HttpApiGroup.make("accounts")
  .add(
    HttpApiEndpoint.post("open", "/accounts", {
      payload: OpenAccount,
      headers: CreationHeaders,
      success: Versioned(AccountSummary).pipe(HttpApiSchema.status(201)),
      error: endpointErrors
    }).annotate(
      OpenApi.Description,
      "Opens an account. A customer opens in their own name and with no money: a non-zero initialDeposit from a " +
        "customer is a 403 deposits-by-tellers-only problem (code DepositsByTellersOnly) and nothing is written. A " +
        "teller or an admin opens for the customer named in owner, with an opening deposit up to their per-deposit " +
        "limit (above it, a 422 deposit-limit problem)."
    ),
    HttpApiEndpoint.get("list", "/accounts", { success: Schema.Array(AccountSummary), error: endpointErrors }),
    HttpApiEndpoint.get("get", "/accounts/:id", { params, success: Versioned(AccountSummary), error: endpointErrors }),
    HttpApiEndpoint.get("history", "/accounts/:id/history", {
      params,
      query: {
        after: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))),
        limit: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 500 })))
      },
      success: HistoryPage,
      error: endpointErrors
    }),
    HttpApiEndpoint.get("explain", "/accounts/:id/explain", { params, success: Explanation, error: endpointErrors }),
    HttpApiEndpoint.get("asOf", "/accounts/:id/as-of", {
      params,
      query: {
        at: Schema.optionalKey(Schema.DateTimeUtcFromString),
        version: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)))
      },
      success: AccountAsOf,
      error: endpointErrors
    }),
    HttpApiEndpoint.get("audit", "/accounts/:id/audit", {
      params,
      query: {
        types: Schema.optionalKey(Schema.String),
        from: Schema.optionalKey(Schema.DateTimeUtcFromString),
        to: Schema.optionalKey(Schema.DateTimeUtcFromString)
      },
      success: AuditTrail,
      error: endpointErrors
    }),
    HttpApiEndpoint.post("deposit", "/accounts/:id/deposits", {
      params,
      payload: MoveMoney,
      headers: CommandHeaders,
      success: Versioned(AccountSummary),
      error: endpointErrors
    }).annotate(
      OpenApi.Description,
      "Books a deposit: money enters an account only through a teller or an admin, up to their per-deposit limit in " +
        "the account's currency (above it, a 422 deposit-limit problem, code DepositLimitExceeded). Anyone else, a " +
        "customer into their own account included, gets a 403 deposits-by-tellers-only problem (code " +
        "DepositsByTellersOnly); a refusal writes nothing."
    ),
    HttpApiEndpoint.post("withdraw", "/accounts/:id/withdrawals", {
      params,
      payload: MoveMoney,
      headers: CommandHeaders,
      // 200: paid out; 202: above the approval threshold, waiting for a second person
      success: [Versioned(AccountSummary), Versioned(PendingOutflow).pipe(HttpApiSchema.status(202))],
      error: endpointErrors
    }),
    HttpApiEndpoint.post("chargeFee", "/accounts/:id/fees", {
      params,
      payload: ChargeFee,
      headers: CommandHeaders,
      success: [Versioned(AccountSummary), Versioned(PendingOutflow).pipe(HttpApiSchema.status(202))],
      error: endpointErrors
    }),
    HttpApiEndpoint.get("outflows", "/accounts/:id/outflows", {
      params,
      success: Schema.Array(PendingOutflow),
      error: endpointErrors
    }),
    HttpApiEndpoint.post("approveOutflow", "/accounts/:id/outflows/:requestId/approve", {
      params: outflowParams,
      headers: CommandHeaders,
      success: Versioned(AccountSummary),
      error: endpointErrors
    }),
    HttpApiEndpoint.post("rejectOutflow", "/accounts/:id/outflows/:requestId/reject", {
      params: outflowParams,
      payload: RejectOutflow,
      headers: CommandHeaders,
      success: Versioned(AccountSummary),
      error: endpointErrors
    }),
    HttpApiEndpoint.get("currencies", "/currencies", { success: Schema.Array(CurrencyInfo), error: endpointErrors }),
    HttpApiEndpoint.post("freeze", "/accounts/:id/freeze", {
      params,
      payload: WithReason,
      headers: CommandHeaders,
      success: Versioned(AccountSummary),
      error: endpointErrors
    }),
    HttpApiEndpoint.post("unfreeze", "/accounts/:id/unfreeze", {
      params,
      payload: WithReason,
      headers: CommandHeaders,
      success: Versioned(AccountSummary),
      error: endpointErrors
    }),
    HttpApiEndpoint.post("close", "/accounts/:id/close", {
      params,
      payload: WithReason,
      headers: CommandHeaders,
      success: Versioned(AccountSummary),
      error: endpointErrors
    })
  )
  .annotateMerge(OpenApi.annotations({ title: "Accounts", description: "Open accounts and move money" })) {}

/**
 * The transfer endpoints.
 */
export class TransfersGroup extends HttpApiGroup.make("transfers")
  .add(
    HttpApiEndpoint.post("initiate", "/transfers", {
      payload: InitiateTransfer,
      headers: CreationHeaders,
      success: Versioned(TransferSummary).pipe(HttpApiSchema.status(201)),
      error: endpointErrors
    }),
    HttpApiEndpoint.post("approve", "/transfers/:id/approve", {
      params,
      headers: CommandHeaders,
      success: Versioned(TransferSummary),
      error: endpointErrors
    }),
    HttpApiEndpoint.post("reject", "/transfers/:id/reject", {
      params,
      payload: RejectTransfer,
      headers: CommandHeaders,
      success: Versioned(TransferSummary),
      error: endpointErrors
    }),
    HttpApiEndpoint.get("list", "/transfers", {
      query: {
        status: Schema.optionalKey(Transfer.TransferStatus),
        account: Schema.optionalKey(Id),
        limit: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 500 })))
      },
      success: Schema.Array(TransferSummary),
      error: endpointErrors
    }),
    HttpApiEndpoint.get("get", "/transfers/:id", { params, success: Versioned(TransferSummary), error: endpointErrors })
  )
  .annotateMerge(
    OpenApi.annotations({ title: "Transfers", description: "Move money between accounts, with four-eyes approval" })
  ) {}

/**
 * The whole API: every endpoint needs a bearer token.
 */
export class Api extends HttpApi.make("bank")
  .add(AccountsGroup)
  .add(TransfersGroup)
  .add(ConsoleGroup)
  .add(RiskGroup)
  .middleware(RequestValidation)
  .middleware(Authentication)
  .annotateMerge(
    OpenApi.annotations({
      title: "Facta Bank",
      version: "0.1.0",
      description: "An event-sourced bank on Facta: accounts, transfers with approval, audit trails and as-of reads"
    })
  )
  // a body field the schema does not name is refused (a 400 naming it), as the OpenAPI document says
  // (`additionalProperties: false`); headers keep the default, since every request carries headers no schema names
  .annotate(HttpApi.PayloadParseOptions, { onExcessProperty: "error" }) {}

/**
 * The OpenAPI document of {@link Api}.
 */
export const openApi = (): OpenApi.OpenAPISpec => OpenApi.fromApi(Api)
