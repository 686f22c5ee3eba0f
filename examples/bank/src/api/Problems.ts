/**
 * The API's errors: RFC 9457 problems (`application/problem+json`), one class per status, each with a readable
 * `detail` and a machine-readable `code` (the domain error's tag, or a short name), and the mapping of every typed
 * error of the domain and the store to one of them.
 *
 * | status | when                                                                                              |
 * | ------ | ------------------------------------------------------------------------------------------------- |
 * | 400    | the request does not decode (the field is named), an amount the currency cannot hold, bad If-Match |
 * | 401    | no bearer token, or an unknown one                                                                |
 * | 403    | the actor's role or ownership does not allow it; the deposit rule (`deposits-by-tellers-only`:    |
 * |        | money enters an account only through a teller or an admin, never a customer's own deposit)        |
 * | 404    | unknown account or transfer (and, from the server's edge, an unknown route or a malformed path)   |
 * | 405    | from the server's edge: a known path with a method it does not have (`Allow` lists them)          |
 * | 409    | the state refuses it: frozen, closed, insufficient funds, balance not zero, wrong transfer status |
 * | 412    | `If-Match` names another version than the stream's                                                |
 * | 413    | from the server's edge: a body over 64 KiB (refused while it is read)                             |
 * | 415    | from the server's edge: a body that is not `application/json`                                     |
 * | 422    | a well-formed but invalid request: same account, currency mismatch, key reuse; the four-eyes rule  |
 * |        | (`four-eyes`: a requester reviewing their own outflow) and the deposit limit (`deposit-limit`)    |
 * |        | (and an expected version no stream can be at, an event over the store's size limit)               |
 * | 503    | the storage failed or missed its deadline, or the request did (retry after `Retry-After` seconds)  |
 * | 500    | a fault on our side (an event that no longer decodes, SQL the database refuses); never the client's |
 *
 * A 503 always carries `Retry-After` (see `Server.ts`); a `StorageError` is a 503 when it is retryable and a 500
 * when trying again cannot help.
 */
import type { CommandHandler, EventStoreError, StorageError, StreamId } from "@facta/core"
import { PgStorage } from "@facta/postgres"
import { Effect, Schema } from "effect"
import { HttpApiError } from "effect/http-api"
import type { SqlError } from "effect/sql"
import type * as Account from "../domain/Account.ts"
import type * as Money from "../domain/Money.ts"
import type * as Transfer from "../domain/Transfer.ts"

const base = "https://facta.dev/problems"

const common = { detail: Schema.String, code: Schema.String }

/**
 * 400: the request is malformed. `field` names the offending field (`amount`, `query.limit`, `If-Match`); `errors`
 * lists every decoding issue with its path.
 */
export class BadRequest extends HttpApiError.Problem<BadRequest>()(
  "BadRequest",
  { type: `${base}/bad-request`, status: 400, title: "Bad Request" },
  {
    ...common,
    field: Schema.optionalKey(Schema.String),
    errors: Schema.optionalKey(Schema.Array(HttpApiError.ProblemIssue))
  }
) {}

/**
 * 401: no valid bearer token.
 */
export class Unauthorized extends HttpApiError.Problem<Unauthorized>()(
  "Unauthorized",
  { type: `${base}/unauthorized`, status: 401, title: "Unauthorized" },
  common
) {}

/**
 * 403: the actor may not do this.
 */
export class Forbidden extends HttpApiError.Problem<Forbidden>()(
  "Forbidden",
  { type: `${base}/forbidden`, status: 403, title: "Forbidden" },
  common
) {}

/**
 * 403 under the deposit rule: money enters an account only through a teller or an admin (a deposit, or an opening
 * deposit); a customer cannot credit an account, not even their own. `code` is `DepositsByTellersOnly`.
 */
export class DepositsByTellersOnly extends HttpApiError.Problem<DepositsByTellersOnly>()(
  "DepositsByTellersOnly",
  { type: `${base}/deposits-by-tellers-only`, status: 403, title: "Deposits By Tellers Only" },
  common
) {}

/**
 * 404: no such account or transfer.
 */
export class NotFound extends HttpApiError.Problem<NotFound>()(
  "NotFound",
  { type: `${base}/not-found`, status: 404, title: "Not Found" },
  common
) {}

/**
 * 405: the path exists, the method does not (`Allow` lists the methods it has). Answered by the server's edge, not by
 * an endpoint.
 */
export class MethodNotAllowed extends HttpApiError.Problem<MethodNotAllowed>()(
  "MethodNotAllowed",
  { type: `${base}/method-not-allowed`, status: 405, title: "Method Not Allowed" },
  common
) {}

/**
 * 413: the request body is over the server's limit. Answered by the server's edge, not by an endpoint.
 */
export class ContentTooLarge extends HttpApiError.Problem<ContentTooLarge>()(
  "ContentTooLarge",
  { type: `${base}/content-too-large`, status: 413, title: "Content Too Large" },
  { ...common, limit: Schema.Int }
) {}

/**
 * 409: the current state refuses the command.
 */
export class Conflict extends HttpApiError.Problem<Conflict>()(
  "Conflict",
  { type: `${base}/conflict`, status: 409, title: "Conflict" },
  common
) {}

/**
 * 412: `If-Match` does not match the stream's version. `currentVersion` is the version to retry with.
 */
export class PreconditionFailed extends HttpApiError.Problem<PreconditionFailed>()(
  "PreconditionFailed",
  { type: `${base}/precondition-failed`, status: 412, title: "Precondition Failed" },
  { ...common, currentVersion: Schema.Int }
) {}

/**
 * 422: the request is well formed but cannot be carried out as asked.
 */
export class Unprocessable extends HttpApiError.Problem<Unprocessable>()(
  "Unprocessable",
  { type: `${base}/unprocessable`, status: 422, title: "Unprocessable Content" },
  common
) {}

/**
 * 422 under the four-eyes rule: a large outflow (transfer, withdrawal, fee) needs a second person, and the actor is
 * the one who asked for it. `code` is the domain's tag (`FourEyesRequired`, `SelfApprovalForbidden`).
 */
export class FourEyesViolation extends HttpApiError.Problem<FourEyesViolation>()(
  "FourEyesViolation",
  { type: `${base}/four-eyes`, status: 422, title: "Four-Eyes Rule" },
  common
) {}

/**
 * 422 under the deposit limit: a single deposit (or opening deposit) above the per-deposit limit of the teller or
 * admin who books it, in the account's currency.
 */
export class DepositLimitExceeded extends HttpApiError.Problem<DepositLimitExceeded>()(
  "DepositLimitExceeded",
  { type: `${base}/deposit-limit`, status: 422, title: "Deposit Limit Exceeded" },
  common
) {}

/**
 * 500: a fault on the server's side.
 */
export class InternalError extends HttpApiError.Problem<InternalError>()(
  "InternalError",
  { type: `${base}/internal`, status: 500, title: "Internal Server Error" },
  common
) {}

/**
 * 503: the storage is unavailable, or the request missed its deadline; the request may be retried (with the same
 * `Idempotency-Key`) after `Retry-After` seconds.
 */
export class ServiceUnavailable extends HttpApiError.Problem<ServiceUnavailable>()(
  "ServiceUnavailable",
  { type: `${base}/unavailable`, status: 503, title: "Service Unavailable" },
  common
) {}

/**
 * Every problem an endpoint may answer with (401 comes from the authentication middleware).
 */
export const endpointErrors = [
  BadRequest,
  Forbidden,
  DepositsByTellersOnly,
  NotFound,
  Conflict,
  PreconditionFailed,
  Unprocessable,
  FourEyesViolation,
  DepositLimitExceeded,
  InternalError,
  ServiceUnavailable
] as const

export type Problem =
  | BadRequest
  | Forbidden
  | DepositsByTellersOnly
  | NotFound
  | Conflict
  | PreconditionFailed
  | Unprocessable
  | FourEyesViolation
  | DepositLimitExceeded
  | InternalError
  | ServiceUnavailable

/**
 * Every typed error a handler meets.
 */
export type ApiError =
  | Account.AccountError
  | Transfer.TransferError
  | CommandHandler.HandleError
  | EventStoreError.ReadError
  | StreamId.InvalidStreamId
  | Money.ParseError
  | StorageError.StorageError
  | SqlError.SqlError

const conflict = (error: { readonly _tag: string; readonly message: string }) =>
  new Conflict({ code: error._tag, detail: error.message })
const unprocessable = (error: { readonly _tag: string; readonly message: string }) =>
  new Unprocessable({ code: error._tag, detail: error.message })

/**
 * The problem for a typed error. `what` names the resource for 404s ("account 42"); `ifMatch` says whether the
 * request carried `If-Match` (a version conflict is then a 412, otherwise a 409 after the retries ran out); `field`
 * names the request field an amount came from.
 */
export const fromError = (
  error: ApiError,
  context: { readonly what: string; readonly ifMatch?: boolean | undefined; readonly field?: string | undefined }
): Problem => {
  switch (error._tag) {
    // money parsing: the client's input
    case "InvalidMoneyFormat":
    case "TooManyDecimals":
    case "AmountTooLarge":
      return new BadRequest({
        code: error._tag,
        detail: `${context.field ?? "amount"}: ${error.message}`,
        field: context.field ?? "amount"
      })
    // unknown resources
    case "AccountNotOpened":
    case "TransferNotInitiated":
    case "StreamNotFound":
    case "StreamDeleted":
    case "InvalidStreamId":
      return new NotFound({ code: "NotFound", detail: `No ${context.what}` })
    // state conflicts
    case "AccountAlreadyOpened":
    case "AccountIsClosed":
    case "AccountIsFrozen":
    case "InsufficientFunds":
    case "BalanceLimitExceeded":
    case "BalanceNotZero":
    case "TransfersInFlight":
    case "TransferStepConflict":
    case "NoTransferDebit":
    case "TransferAlreadyInitiated":
    case "ApprovalNotRequired":
    case "OutflowNotPending":
    case "OutflowAlreadyRequested":
    case "OutflowsPending":
    case "InvalidTransferState":
    case "StreamArchived":
    case "IdempotencyConflict":
      return conflict(error)
    // invalid requests
    case "CurrencyMismatch":
    case "InvalidAmount":
    case "SameAccount":
    case "InvalidTransferAmount":
    // an expected version no stream can be at (an If-Match the parser let through), an event over the store's limit
    case "InvalidExpectedVersion":
    case "EventTooLarge":
      return unprocessable(error)
    case "FourEyesRequired":
    case "SelfApprovalForbidden":
      return new FourEyesViolation({ code: error._tag, detail: error.message })
    case "DepositLimitExceeded":
      return new DepositLimitExceeded({ code: error._tag, detail: error.message })
    case "WrongExpectedVersion":
      return context.ifMatch === true
        ? new PreconditionFailed({
            code: error._tag,
            detail: `If-Match does not match: ${context.what} is at version ${error.actual}`,
            currentVersion: error.actual
          })
        : new Conflict({
            code: error._tag,
            detail: `${context.what} was changed concurrently too many times; retry the request`
          })
    case "StorageError":
    case "SqlError":
      return (error._tag === "StorageError" ? error.retryable : PgStorage.isRetryable(error))
        ? new ServiceUnavailable({ code: error._tag, detail: "The storage is unavailable; retry later" })
        : new InternalError({ code: error._tag, detail: "The storage refused the request" })
    case "EventDecodeError":
    case "EventEncodeError":
    case "InvalidEvent":
      return new InternalError({ code: error._tag, detail: "The server could not process its own data" })
    default:
      // an error of the stores this mapping does not name yet: a fault on our side, never the client's
      return new InternalError({
        code: (error as { readonly _tag: string })._tag,
        detail: "The server could not process the request"
      })
  }
}

/**
 * Whether a value is already one of the API's problems.
 */
export const isProblem = (u: unknown): u is Problem =>
  u instanceof BadRequest ||
  u instanceof Forbidden ||
  u instanceof DepositsByTellersOnly ||
  u instanceof NotFound ||
  u instanceof Conflict ||
  u instanceof PreconditionFailed ||
  u instanceof Unprocessable ||
  u instanceof FourEyesViolation ||
  u instanceof DepositLimitExceeded ||
  u instanceof InternalError ||
  u instanceof ServiceUnavailable

/**
 * Maps every typed error of an effect to its problem (problems pass through).
 */
export const mapErrors =
  (context: { readonly what: string; readonly ifMatch?: boolean | undefined; readonly field?: string | undefined }) =>
  <A, E extends ApiError | Problem, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, Problem, R> =>
    Effect.mapError(self, (error) => (isProblem(error) ? error : fromError(error as ApiError, context)))
