/**
 * What every command endpoint does around its command: metadata (actor, correlation id, reason and reference),
 * `If-Match`, `Idempotency-Key`, read-your-writes and the response.
 */
import { randomUUID } from "node:crypto"
import type { Event, Position } from "@facta/core"
import { Config, Context, Duration, Effect, Layer, Option } from "effect"
import { HttpServerResponse } from "effect/http"
import * as Limits from "../domain/Limits.ts"
import * as Money from "../domain/Money.ts"
import { Deadlines } from "../infra/Deadlines.ts"
import { ReadModels } from "../readmodels/ReadModels.ts"
import type { Actor, Role } from "./Auth.ts"
import { hashRequest, Idempotency, type StoredResponse } from "./Idempotency.ts"
import { BadRequest, mapErrors, type Problem } from "./Problems.ts"

/**
 * Settings of the API. The money limits are stated in `referenceCurrency` and converted into each account's currency
 * with `exchangeRates` (see `domain/Limits.ts`).
 */
export class Settings extends Context.Service<
  Settings,
  Limits.LimitSettings & {
    /** Outflows (transfers, withdrawals, fees) above this amount, in the reference currency, wait for an approval. */
    readonly approvalThreshold: string
    /**
     * The largest single deposit (or opening deposit) a teller or an admin may book, in the reference currency.
     * Customers book none: money enters an account only through a teller or an admin (`Auth.requireDeposit`).
     */
    readonly tellerDepositLimit: string
    /**
     * How long a command waits for the read models before answering with its own result (at most half the request
     * deadline of `Deadlines`).
     */
    readonly readYourWritesTimeout: Duration.Input
  }
>()("@facta/example-bank/api/Settings") {
  /** The settings when nothing is configured. */
  static readonly defaults: Settings["Service"] = {
    approvalThreshold: "1000.00",
    tellerDepositLimit: "50000.00",
    referenceCurrency: "USD",
    exchangeRates: Limits.defaultRates,
    readYourWritesTimeout: "5 seconds"
  }

  /**
   * `BANK_APPROVAL_THRESHOLD` (default `1000.00`) and `BANK_TELLER_DEPOSIT_LIMIT` (default `50000.00`), both in
   * `BANK_REFERENCE_CURRENCY` (default `USD`);
   * `BANK_EXCHANGE_RATES` (`"JPY=150,KWD=0.307"`, merged over {@link Limits.defaultRates}) and
   * `BANK_READ_YOUR_WRITES_TIMEOUT` (default `5 seconds`).
   */
  static readonly layerConfig: Layer.Layer<Settings, Config.ConfigError> = Layer.effect(
    Settings,
    Effect.gen(function* () {
      const text = (name: string, fallback: string) => Config.String(name).pipe(Config.withDefault(fallback))
      const defaults = Settings.defaults
      const approvalThreshold = yield* text("BANK_APPROVAL_THRESHOLD", defaults.approvalThreshold)
      const tellerDepositLimit = yield* text("BANK_TELLER_DEPOSIT_LIMIT", defaults.tellerDepositLimit)
      const referenceCurrency = yield* text("BANK_REFERENCE_CURRENCY", defaults.referenceCurrency)
      const rates = yield* text("BANK_EXCHANGE_RATES", "")
      const readYourWritesTimeout = yield* Config.Duration("BANK_READ_YOUR_WRITES_TIMEOUT").pipe(
        Config.withDefault(Duration.seconds(5))
      )
      return Settings.of({
        approvalThreshold,
        tellerDepositLimit,
        referenceCurrency,
        exchangeRates: { ...Limits.defaultRates, ...Limits.parseRates(rates) },
        readYourWritesTimeout
      })
    })
  )

  static readonly layer = (settings: Partial<Settings["Service"]>): Layer.Layer<Settings> =>
    Layer.succeed(Settings, Settings.of({ ...Settings.defaults, ...settings }))
}

/**
 * The approval threshold in minor units of `currency` (see `Limits.inCurrency`): 1000.00 USD is 150000 JPY with the
 * default rates. A currency without a rate has a threshold of 0: every outflow then needs an approval.
 */
export const approvalThresholdIn = (settings: Settings["Service"], currency: Money.Currency): Money.Amount =>
  Limits.inCurrency(settings.approvalThreshold, currency, settings)

/**
 * The largest single deposit `role` may book, in minor units of `currency`: the teller limit for tellers and admins;
 * 0 for every other role, who book no deposits at all (the API refuses them before any command with
 * `Auth.requireDeposit`; a limit of 0 keeps the domain on the safe side should a command get through anyway).
 */
export const depositLimitIn = (settings: Settings["Service"], role: Role, currency: Money.Currency): Money.Amount =>
  role === "teller" || role === "admin"
    ? Limits.inCurrency(settings.tellerDepositLimit, currency, settings)
    : Money.zero

/**
 * The command headers as the endpoints decode them.
 */
export interface CommandHeaders {
  readonly "if-match"?: string | undefined
  readonly "idempotency-key"?: string | undefined
  readonly "x-correlation-id"?: string | undefined
}

const ifMatchPattern = /^\s*(?:W\/)?"?(\d{1,15})"?\s*$/

/**
 * The version an `If-Match` names (`"3"`, `W/"3"` or `3`); `undefined` without one or for `*`.
 */
export const parseIfMatch = (header: string | undefined): Effect.Effect<number | undefined, BadRequest> => {
  if (header === undefined || header.trim() === "*") return Effect.succeed(undefined)
  const match = ifMatchPattern.exec(header)
  return match === null
    ? Effect.fail(
        new BadRequest({
          code: "InvalidIfMatch",
          detail: 'If-Match: expected the ETag of a version, such as "3"',
          field: "If-Match"
        })
      )
    : Effect.succeed(Number(match[1]))
}

/**
 * Parses a positive amount of `currency` from the request field `field`.
 */
export const parsePositive = (
  input: string,
  currency: Money.Currency,
  field: string
): Effect.Effect<Money.Amount, Problem> =>
  Money.parse(input, currency).pipe(
    mapErrors({ what: field, field }),
    Effect.filterOrFail(
      (amount) => amount > 0,
      () => new BadRequest({ code: "AmountNotPositive", detail: `${field}: must be greater than zero`, field })
    )
  )

/**
 * The `ETag` of a stream version.
 */
export const etag = (version: number): string => `"${version}"`

/**
 * What a command did, for its response.
 */
export interface Executed {
  /** The stream's version after the command. */
  readonly version: number
  /** The positions of the appended events (none when the command changed nothing). */
  readonly positions: ReadonlyArray<Position.Position>
  /** The response body from the command's own result, used when the read models are late. */
  readonly body: unknown
}

const staleWarning = '199 facta "The read models have not caught up yet: this is the command\'s own result"'

/**
 * The options of one command endpoint's run (see {@link makeRunCommand}).
 */
export interface CommandOptions<R> {
  readonly actor: Actor
  readonly route: string
  readonly request: unknown
  readonly headers: CommandHeaders
  readonly status: number
  readonly details?: { readonly reason?: string | undefined; readonly reference?: string | undefined } | undefined
  readonly execute: (context: {
    readonly metadata: Event.EventMetadata
    readonly expectedVersion: number | undefined
  }) => Effect.Effect<Executed, Problem, R>
  readonly fresh: Effect.Effect<Option.Option<unknown>, unknown>
}

/**
 * Takes the idempotency keys, read models, settings and deadlines of the context once, and gives the function that
 * runs a command endpoint: builds the metadata, reads `If-Match`, runs `execute` under the `Idempotency-Key`, waits
 * for the read models to reach the appended events (at most the configured timeout, and at most half the request
 * deadline; a late read model only adds a `Warning` header) and answers with the read model's view (`fresh`), or the
 * command's own result. The function needs nothing more than its `execute` does.
 */
export const makeRunCommand = Effect.gen(function* () {
  const idempotency = yield* Idempotency
  const settings = yield* Settings
  const readModels = yield* ReadModels
  const deadlines = yield* Deadlines
  return <R>(options: CommandOptions<R>): Effect.Effect<HttpServerResponse.HttpServerResponse, Problem, R> =>
    Effect.gen(function* () {
      const expectedVersion = yield* parseIfMatch(options.headers["if-match"])
      const correlationId = options.headers["x-correlation-id"] ?? randomUUID()
      const attributes: Record<string, string> = {}
      if (options.details?.reason !== undefined) attributes.reason = options.details.reason
      if (options.details?.reference !== undefined) attributes.reference = options.details.reference
      const metadata: Event.EventMetadata = {
        actor: options.actor.name,
        correlationId,
        ...(Object.keys(attributes).length > 0 ? { attributes } : {})
      }
      const baseHeaders = { "x-correlation-id": correlationId }
      const toResponse = (executed: Executed): StoredResponse => ({
        status: options.status,
        body: executed.body,
        headers: { etag: etag(executed.version) }
      })
      const execute = options.execute({ metadata, expectedVersion })
      const key = options.headers["idempotency-key"]
      const keyed =
        key === undefined
          ? undefined
          : {
              actor: options.actor.name,
              key,
              hash: hashRequest({ route: options.route, request: options.request, ifMatch: expectedVersion ?? null })
            }
      const outcome =
        keyed === undefined
          ? yield* Effect.map(execute, (value) => ({ _tag: "Executed", value, response: toResponse(value) }) as const)
          : yield* idempotency.run(keyed, execute, toResponse).pipe(mapErrors({ what: "the idempotency key" }))
      if (outcome._tag === "Replayed") {
        return HttpServerResponse.jsonUnsafe(outcome.response.body, {
          status: outcome.response.status,
          headers: { ...outcome.response.headers, ...baseHeaders, "idempotent-replayed": "true" }
        })
      }

      // read your writes, for at most half the request deadline: a late read model must not turn a done command
      // into a 503
      const wait = Duration.min(
        Duration.fromInputUnsafe(settings.readYourWritesTimeout),
        Duration.millis(Duration.toMillis(deadlines.request) / 2)
      )
      const last = outcome.value.positions.at(-1)
      const caughtUp =
        last === undefined
          ? true
          : yield* readModels.waitFor(last, wait).pipe(
              Effect.as(true),
              Effect.catchCause((cause) =>
                Effect.logWarning("read models are late; answering with the command's result", cause).pipe(
                  Effect.as(false)
                )
              )
            )
      const fresh = caughtUp
        ? yield* options.fresh.pipe(Effect.catchCause(() => Effect.succeed(Option.none<unknown>())))
        : Option.none<unknown>()
      const response: StoredResponse = Option.match(fresh, {
        onNone: () => ({
          ...outcome.response,
          headers: caughtUp ? outcome.response.headers : { ...outcome.response.headers, warning: staleWarning }
        }),
        onSome: (body) => ({ ...outcome.response, body })
      })
      if (keyed !== undefined && Option.isSome(fresh)) {
        yield* idempotency.update(keyed, response).pipe(Effect.ignore({ log: true }))
      }
      return HttpServerResponse.jsonUnsafe(response.body, {
        status: response.status,
        headers: { ...response.headers, ...baseHeaders }
      })
    })
})
