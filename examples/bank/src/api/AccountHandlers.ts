/**
 * The handlers of the account endpoints. Every read route applies the same read rule (`Auth.canRead`); money moves
 * under the bank's controls: deposits (and opening deposits) only by a teller or an admin, up to their per-deposit
 * limit (a customer's is a 403 `DepositsByTellersOnly`, before anything is written); withdrawals and fees above the
 * approval threshold waiting for a second person (`202`, then `/outflows/:requestId/approve` or `/reject`).
 */
import { randomUUID } from "node:crypto"
import { Position } from "@facta/core"
import { DateTime, Effect, Option, Stream } from "effect"
import { HttpApiBuilder, HttpApiSchema } from "effect/http-api"
import { Accounts } from "../app/Aggregates.ts"
import * as Account from "../domain/Account.ts"
import * as Money from "../domain/Money.ts"
import { ReadModels } from "../readmodels/ReadModels.ts"
import { Api } from "./Api.ts"
import {
  type Actor,
  CurrentActor,
  requireDeposit,
  requireOperate,
  requireRead,
  requireReview,
  requireRole
} from "./Auth.ts"
import {
  approvalThresholdIn,
  type CommandHeaders,
  depositLimitIn,
  etag,
  makeRunCommand,
  parsePositive,
  Settings
} from "./Commands.ts"
import { BadRequest, Forbidden, mapErrors, NotFound, type Problem } from "./Problems.ts"
import { accountSummary, type LoadedAccount, loadAccount, pendingOutflows } from "./Stores.ts"

/**
 * The account handlers, on the accounts, read models, idempotency keys, settings and deadlines in context.
 */
export const AccountHandlers = HttpApiBuilder.group(
  Api,
  "accounts",
  Effect.fn(function* (handlers) {
    const accounts = yield* Accounts
    const readModels = yield* ReadModels
    const settings = yield* Settings
    const runCommand = yield* makeRunCommand

    /** Reads the account, 404 or 403 unless the actor may read it. */
    const readable = (actor: Actor, id: string) =>
      Effect.gen(function* () {
        const account = yield* loadAccount(accounts, id)
        yield* requireRead(actor, account.state.owner)
        return account
      })

    const fresh = (accountId: string) => readModels.account(accountId)

    /**
     * Runs an account command on an existing account the actor may operate. A withdrawal or fee above the threshold
     * answers `202` with the waiting request (the balance has not moved) instead of the account.
     */
    const accountCommand = (options: {
      readonly id: string
      readonly route: string
      readonly request: unknown
      readonly headers: CommandHeaders
      readonly authorize: (actor: Actor, account: LoadedAccount) => Effect.Effect<void, Problem>
      readonly details?: { readonly reason?: string | undefined; readonly reference?: string | undefined }
      readonly command: (actor: Actor, account: LoadedAccount) => Effect.Effect<Account.AccountCommand, Problem>
    }) =>
      Effect.gen(function* () {
        const actor = yield* CurrentActor
        const account = yield* loadAccount(accounts, options.id)
        yield* options.authorize(actor, account)
        const command = yield* options.command(actor, account)
        // known before deciding: the decider either records exactly this request or refuses the command
        const waits =
          (command._tag === "Withdraw" || command._tag === "ChargeFee") && command.amount > command.approvalThreshold
            ? command.requestId
            : undefined
        const what = `account ${options.id}`
        return yield* runCommand({
          actor,
          route: options.route,
          request: options.request,
          headers: options.headers,
          status: waits === undefined ? 200 : 202,
          details: options.details,
          execute: ({ metadata, expectedVersion }) =>
            Effect.gen(function* () {
              const result = yield* accounts.handle(options.id, command, { metadata, expectedVersion })
              const pending =
                waits === undefined || result.state._tag !== "Opened"
                  ? undefined
                  : pendingOutflows(options.id, result.state).find((outflow) => outflow.requestId === waits)
              const body = pending ?? (yield* accountSummary(accounts, options.id, result.state, result.version))
              return { version: result.version, positions: result.positions, body }
            }).pipe(mapErrors({ what, ifMatch: expectedVersion !== undefined })),
          // a waiting outflow is not in the read models: its answer is the command's own
          fresh: waits === undefined ? fresh(options.id) : Effect.succeed(Option.none())
        }).pipe(mapErrors({ what }))
      })

    /** A withdrawal or a fee: the command names its requester and the threshold of the account's currency. */
    const outflow = (actor: Actor, currency: Money.Currency) => ({
      requestId: randomUUID(),
      requestedBy: actor.name,
      approvalThreshold: approvalThresholdIn(settings, currency)
    })

    const money = (account: LoadedAccount, payload: { readonly amount: string; readonly currency?: string }) =>
      Effect.gen(function* () {
        const currency = (payload.currency ?? account.state.currency) as Money.Currency
        const amount = yield* parsePositive(payload.amount, currency, "amount")
        return { amount, currency }
      })

    return handlers.handleAll({
      open: ({ payload, headers }) =>
        Effect.gen(function* () {
          const actor = yield* CurrentActor
          yield* requireRole(actor, ["customer", "teller", "admin"], "open accounts")
          if (actor.role === "customer" && payload.owner !== undefined && payload.owner !== actor.name) {
            return yield* new Forbidden({ code: "Forbidden", detail: "A customer opens accounts in their own name" })
          }
          if (actor.role === "teller" && payload.owner === undefined) {
            return yield* new BadRequest({
              code: "OwnerRequired",
              detail: "owner: a teller opens accounts for a customer, named in `owner`",
              field: "owner"
            })
          }
          const owner = payload.owner ?? actor.name
          const initialDeposit =
            payload.initialDeposit === undefined
              ? Money.zero
              : yield* Money.parse(payload.initialDeposit, payload.currency).pipe(
                  mapErrors({ what: "initialDeposit", field: "initialDeposit" })
                )
          // the deposit rule: a customer opens with no money; only a teller or an admin books an opening deposit
          if (initialDeposit > 0) yield* requireDeposit(actor, "opening")
          // a fresh id: nobody wrote to this account yet
          const accountId = randomUUID()
          return yield* runCommand({
            actor,
            route: "POST /accounts",
            request: payload,
            headers: { ...headers, "if-match": undefined },
            status: 201,
            execute: ({ metadata }) =>
              Effect.gen(function* () {
                const result = yield* accounts.handle(
                  accountId,
                  Account.Open.make({
                    owner,
                    currency: payload.currency,
                    initialDeposit,
                    depositLimit: depositLimitIn(settings, actor.role, payload.currency)
                  }),
                  { metadata, assumeEmpty: true }
                )
                const body = yield* accountSummary(accounts, accountId, result.state, result.version)
                return { version: result.version, positions: result.positions, body }
              }).pipe(mapErrors({ what: `account ${accountId}` })),
            fresh: fresh(accountId)
          })
        }),

      list: () =>
        Effect.gen(function* () {
          const actor = yield* CurrentActor
          return yield* readModels.accounts(actor.role === "customer" ? actor.name : undefined)
        }).pipe(mapErrors({ what: "accounts" })),

      get: ({ params }) =>
        Effect.gen(function* () {
          const actor = yield* CurrentActor
          const account = yield* readable(actor, params.id)
          const summary = yield* readModels.account(params.id).pipe(
            Effect.map(Option.filter((s) => s.version >= account.version)),
            Effect.flatMap(
              Option.match({
                onSome: Effect.succeed,
                onNone: () => accountSummary(accounts, params.id, account.state, account.version)
              })
            )
          )
          return HttpApiSchema.withHeaders({ body: summary, headers: { etag: etag(summary.version) } })
        }).pipe(mapErrors({ what: `account ${params.id}` })),

      history: ({ params, query }) =>
        Effect.gen(function* () {
          const actor = yield* CurrentActor
          yield* readable(actor, params.id)
          return yield* readModels.history(params.id, { after: query.after, limit: query.limit })
        }).pipe(mapErrors({ what: `account ${params.id}` })),

      explain: ({ params }) =>
        Effect.gen(function* () {
          const actor = yield* CurrentActor
          yield* readable(actor, params.id)
          const explanation = yield* readModels.explain(params.id)
          if (Option.isNone(explanation)) {
            return yield* new NotFound({ code: "NotFound", detail: `No explanation of account ${params.id} yet` })
          }
          return explanation.value
        }).pipe(mapErrors({ what: `account ${params.id}` })),

      asOf: ({ params, query }) =>
        Effect.gen(function* () {
          const actor = yield* CurrentActor
          if ((query.at === undefined) === (query.version === undefined)) {
            return yield* new BadRequest({
              code: "AsOfRequired",
              detail: "Give exactly one of the query parameters `at` (an ISO instant) and `version`",
              field: query.at === undefined ? "at" : "version"
            })
          }
          yield* readable(actor, params.id)
          const loaded = yield* accounts.load(params.id, {
            includeArchived: true,
            asOf: query.at !== undefined ? { at: query.at } : { version: query.version ?? 0 }
          })
          const state = loaded.state
          const opened = state._tag === "Opened"
          return {
            accountId: params.id,
            version: loaded.version,
            at: query.at === undefined ? null : DateTime.formatIso(query.at),
            opened,
            owner: opened ? state.owner : null,
            currency: opened ? state.currency : null,
            balance: opened ? state.balance : null,
            status: opened ? state.status : null
          }
        }).pipe(mapErrors({ what: `account ${params.id}` })),

      audit: ({ params, query }) =>
        Effect.gen(function* () {
          const actor = yield* CurrentActor
          yield* readable(actor, params.id)
          const types =
            query.types === undefined
              ? undefined
              : new Set(
                  query.types
                    .split(",")
                    .map((t) => t.trim())
                    .filter((t) => t !== "")
                )
          const events = yield* accounts.events(params.id, { includeArchived: true }).pipe(
            Stream.filter(
              (event) =>
                (types === undefined || types.has(event.type)) &&
                (query.from === undefined || DateTime.isGreaterThanOrEqualTo(event.recordedAt, query.from)) &&
                (query.to === undefined || DateTime.isLessThanOrEqualTo(event.recordedAt, query.to))
            ),
            Stream.map((event) => ({
              eventId: event.eventId,
              version: event.version,
              position: Position.format(event.position),
              type: event.type,
              schemaVersion: event.schemaVersion,
              data: event.data,
              metadata: event.metadata as typeof event.data,
              recordedAt: DateTime.formatIso(event.recordedAt)
            })),
            Stream.runCollect
          )
          return { accountId: params.id, events }
        }).pipe(mapErrors({ what: `account ${params.id}` })),

      deposit: ({ params, payload, headers }) =>
        accountCommand({
          id: params.id,
          route: "POST /accounts/:id/deposits",
          request: { params, payload },
          headers,
          details: { reference: payload.reference },
          // the deposit rule: only a teller or an admin credits an account, a customer not even their own
          authorize: (actor) => requireDeposit(actor),
          command: (actor, account) =>
            Effect.map(money(account, payload), ({ amount, currency }) =>
              Account.Deposit.make({
                amount,
                currency,
                reference: payload.reference ?? "",
                // the per-deposit limit of the teller or admin who books it
                depositLimit: depositLimitIn(settings, actor.role, account.state.currency)
              })
            )
        }),

      withdraw: ({ params, payload, headers }) =>
        accountCommand({
          id: params.id,
          route: "POST /accounts/:id/withdrawals",
          request: { params, payload },
          headers,
          details: { reference: payload.reference },
          authorize: (actor, account) => requireOperate(actor, account.state.owner, "withdraw"),
          command: (actor, account) =>
            Effect.map(money(account, payload), ({ amount, currency }) =>
              Account.Withdraw.make({
                amount,
                currency,
                reference: payload.reference ?? "",
                ...outflow(actor, account.state.currency)
              })
            )
        }),

      chargeFee: ({ params, payload, headers }) =>
        accountCommand({
          id: params.id,
          route: "POST /accounts/:id/fees",
          request: { params, payload },
          headers,
          details: { reason: payload.reason },
          authorize: (actor) => requireRole(actor, ["admin"], "charge fees"),
          command: (actor, account) =>
            Effect.map(money(account, payload), ({ amount, currency }) =>
              Account.ChargeFee.make({
                amount,
                currency,
                reason: payload.reason,
                ...outflow(actor, account.state.currency)
              })
            )
        }),

      outflows: ({ params }) =>
        Effect.gen(function* () {
          const actor = yield* CurrentActor
          const account = yield* readable(actor, params.id)
          return pendingOutflows(params.id, account.state)
        }).pipe(mapErrors({ what: `account ${params.id}` })),

      approveOutflow: ({ params, headers }) =>
        accountCommand({
          id: params.id,
          route: "POST /accounts/:id/outflows/:requestId/approve",
          request: { params },
          headers,
          authorize: (actor) => requireReview(actor, "withdrawals and fees"),
          command: (actor) =>
            Effect.succeed(Account.ApproveOutflow.make({ requestId: params.requestId, by: actor.name }))
        }),

      rejectOutflow: ({ params, payload, headers }) =>
        accountCommand({
          id: params.id,
          route: "POST /accounts/:id/outflows/:requestId/reject",
          request: { params, payload },
          headers,
          details: { reason: payload.reason },
          authorize: (actor) => requireReview(actor, "withdrawals and fees"),
          command: (actor) =>
            Effect.succeed(
              Account.RejectOutflow.make({ requestId: params.requestId, by: actor.name, reason: payload.reason ?? "" })
            )
        }),

      currencies: () =>
        Effect.succeed(
          Array.from(Money.isoCurrencies)
            .sort()
            .map((code) => {
              const currency = code as Money.Currency
              return {
                code,
                decimals: Money.decimals(currency),
                approvalThreshold: approvalThresholdIn(settings, currency),
                tellerDepositLimit: depositLimitIn(settings, "teller", currency)
              }
            })
        ),

      freeze: ({ params, payload, headers }) =>
        accountCommand({
          id: params.id,
          route: "POST /accounts/:id/freeze",
          request: { params, payload },
          headers,
          details: { reason: payload.reason },
          authorize: (actor) => requireRole(actor, ["admin"], "freeze accounts"),
          command: () => Effect.succeed(Account.Freeze.make({ reason: payload.reason ?? "" }))
        }),

      unfreeze: ({ params, payload, headers }) =>
        accountCommand({
          id: params.id,
          route: "POST /accounts/:id/unfreeze",
          request: { params, payload },
          headers,
          details: { reason: payload.reason },
          authorize: (actor) => requireRole(actor, ["admin"], "unfreeze accounts"),
          command: () => Effect.succeed(Account.Unfreeze.make({ reason: payload.reason ?? "" }))
        }),

      close: ({ params, payload, headers }) =>
        accountCommand({
          id: params.id,
          route: "POST /accounts/:id/close",
          request: { params, payload },
          headers,
          details: { reason: payload.reason },
          authorize: (actor, account) => requireOperate(actor, account.state.owner, "close accounts"),
          command: () => Effect.succeed(Account.Close.make({ reason: payload.reason ?? "" }))
        })
    })
  })
)
