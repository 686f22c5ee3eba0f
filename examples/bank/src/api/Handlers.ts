/**
 * Every handler of the API, with the middlewares: authentication and request validation (400 problems naming the
 * field). The account and transfer handlers live in `AccountHandlers.ts` and `TransferHandlers.ts`; what all
 * commands share (metadata, If-Match, Idempotency-Key, read your writes) in `Commands.ts`.
 */
import { Effect, Layer, SchemaIssue } from "effect"
import { HttpApiMiddleware } from "effect/http-api"
import { AccountHandlers } from "./AccountHandlers.ts"
import { RequestValidation } from "./Api.ts"
import { layerAuthentication } from "./Auth.ts"
import { ConsoleHandlers } from "./ConsoleHandlers.ts"
import { BadRequest, InternalError } from "./Problems.ts"
import { RiskHandlers } from "./RiskHandlers.ts"
import { TransferHandlers } from "./TransferHandlers.ts"

export { AccountHandlers } from "./AccountHandlers.ts"
export { ConsoleHandlers } from "./ConsoleHandlers.ts"
export { RiskHandlers } from "./RiskHandlers.ts"
export { TransferHandlers } from "./TransferHandlers.ts"

const formatIssues = SchemaIssue.makeFormatterStandardSchemaV1()

const segment = (s: PropertyKey | { readonly key: PropertyKey }): string | number => {
  const key = typeof s === "object" ? s.key : s
  return typeof key === "number" ? key : String(key)
}

/**
 * Request decoding failures as 400 problems: `field` is the first offending field (`amount`, `query.limit`,
 * `header.idempotency-key`), `detail` says what is wrong with it, `errors` lists every issue. A response that fails
 * to encode is our bug: a 500.
 */
export const layerRequestValidation: Layer.Layer<RequestValidation> = HttpApiMiddleware.layerSchemaErrorTransform(
  RequestValidation,
  (error) => {
    if (error.kind === "Body" || error.kind === "ResponseHeaders") {
      return Effect.logError("a response failed to encode", error.cause).pipe(
        Effect.andThen(Effect.fail(new InternalError({ code: "ResponseEncoding", detail: "The response failed" })))
      )
    }
    const slot = error.kind === "Payload" ? undefined : error.kind === "Headers" ? "header" : error.kind.toLowerCase()
    const issues = formatIssues(error.cause.issue).issues.map((issue) => {
      const path = (issue.path ?? []).map(segment)
      return { path: slot === undefined ? path : [slot, ...path], message: issue.message }
    })
    const first = issues[0]
    const field = first === undefined || first.path.length === 0 ? (slot ?? "body") : first.path.join(".")
    const detail =
      first === undefined ? "The request is invalid" : issues.map((i) => `${i.path.join(".") || field}: ${i.message}`)
    return Effect.fail(
      new BadRequest({
        code: "InvalidRequest",
        detail: typeof detail === "string" ? detail : detail.join("; "),
        field,
        errors: issues
      })
    )
  }
)

/**
 * The handlers and middlewares; needs the accounts, the transfers, the read models, the idempotency keys, the settings
 * and the tokens.
 */
export const layer = Layer.mergeAll(AccountHandlers, TransferHandlers, ConsoleHandlers, RiskHandlers).pipe(
  // the routes resolve the middlewares where the groups are built
  Layer.provideMerge(Layer.mergeAll(layerAuthentication, layerRequestValidation))
)
