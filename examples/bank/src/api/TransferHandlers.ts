/**
 * The handlers of the transfer endpoints.
 */
import { randomUUID } from "node:crypto"
import { Effect, Option } from "effect"
import { HttpApiBuilder, HttpApiSchema } from "effect/http-api"
import { Accounts, Transfers } from "../app/Aggregates.ts"
import * as Transfer from "../domain/Transfer.ts"
import { ReadModels, type TransferSummary } from "../readmodels/ReadModels.ts"
import { Api } from "./Api.ts"
import { type Actor, CurrentActor, requireOperate, requireReview } from "./Auth.ts"
import { approvalThresholdIn, type CommandHeaders, etag, makeRunCommand, parsePositive, Settings } from "./Commands.ts"
import { Forbidden, FourEyesViolation, mapErrors, type Problem, Unprocessable } from "./Problems.ts"
import { type LoadedTransfer, loadAccount, loadTransfer, transferSummary } from "./Stores.ts"

/**
 * The transfer handlers, on the accounts, transfers, read models, idempotency keys, settings and deadlines in context.
 */
export const TransferHandlers = HttpApiBuilder.group(
  Api,
  "transfers",
  Effect.fn(function* (handlers) {
    const accounts = yield* Accounts
    const transfers = yield* Transfers
    const readModels = yield* ReadModels
    const settings = yield* Settings
    const runCommand = yield* makeRunCommand

    const fresh = (transferId: string) => readModels.transfer(transferId)

    /** The ids of the accounts a customer owns. */
    const ownAccounts = (actor: Actor) =>
      Effect.map(readModels.accounts(actor.name), (accounts) => new Set(accounts.map((a) => a.accountId)))

    /** 403 unless the actor may see the transfer: any role but customer, or a customer owning one of its sides. */
    const requireSee = (actor: Actor, transfer: { readonly from: string; readonly to: string }) =>
      Effect.gen(function* () {
        if (actor.role !== "customer") return
        // an account that is gone counts as not owned; any other failure (storage) is the answer
        const account = (id: string) =>
          loadAccount(accounts, id).pipe(
            Effect.map(Option.some),
            Effect.catchTag("NotFound", () => Effect.succeed(Option.none()))
          )
        const from = yield* account(transfer.from)
        const to = yield* account(transfer.to)
        const owns = (account: typeof from) => Option.isSome(account) && account.value.state.owner === actor.name
        if (!owns(from) && !owns(to)) {
          return yield* new Forbidden({ code: "Forbidden", detail: `${actor.name} is not a party to this transfer` })
        }
      })

    /** Runs a transfer command (approve, reject) as an approver or admin. */
    const review = (options: {
      readonly id: string
      readonly route: string
      readonly request: unknown
      readonly headers: CommandHeaders
      readonly details?: { readonly reason?: string | undefined }
      readonly command: (actor: Actor, transfer: LoadedTransfer) => Effect.Effect<Transfer.TransferCommand, Problem>
    }) =>
      Effect.gen(function* () {
        const actor = yield* CurrentActor
        yield* requireReview(actor, "transfers")
        const transfer = yield* loadTransfer(transfers, options.id)
        const command = yield* options.command(actor, transfer)
        const what = `transfer ${options.id}`
        return yield* runCommand({
          actor,
          route: options.route,
          request: options.request,
          headers: options.headers,
          status: 200,
          details: options.details,
          execute: ({ metadata, expectedVersion }) =>
            Effect.gen(function* () {
              const result = yield* transfers.handle(options.id, command, { metadata, expectedVersion })
              if (result.state._tag !== "Transfer") return yield* Effect.die(new Error("transfer vanished"))
              const body = yield* transferSummary(transfers, options.id, result.state, result.version)
              return { version: result.version, positions: result.positions, body }
            }).pipe(mapErrors({ what, ifMatch: expectedVersion !== undefined })),
          fresh: fresh(options.id)
        })
      })

    return handlers.handleAll({
      initiate: ({ payload, headers }) =>
        Effect.gen(function* () {
          const actor = yield* CurrentActor
          const from = yield* loadAccount(accounts, payload.from)
          yield* requireOperate(actor, from.state.owner, "initiate transfers")
          const to = yield* loadAccount(accounts, payload.to)
          if (to.state.currency !== from.state.currency) {
            return yield* new Unprocessable({
              code: "CurrencyMismatch",
              detail: `Account ${payload.from} holds ${from.state.currency} but account ${payload.to} holds ${to.state.currency}`
            })
          }
          const currency = from.state.currency
          const amount = yield* parsePositive(payload.amount, currency, "amount")
          // a fresh id: nobody wrote to this transfer yet
          const transferId = randomUUID()
          const reference = payload.reference ?? ""
          const command = Transfer.Initiate.make({
            from: payload.from,
            to: payload.to,
            amount,
            currency,
            reference,
            initiatedBy: actor.name,
            approvalThreshold: approvalThresholdIn(settings, currency)
          })
          return yield* runCommand({
            actor,
            route: "POST /transfers",
            request: payload,
            headers: { ...headers, "if-match": undefined },
            status: 201,
            details: { reference },
            execute: ({ metadata }) =>
              Effect.gen(function* () {
                const result = yield* transfers.handle(transferId, command, { metadata, assumeEmpty: true })
                if (result.state._tag !== "Transfer") return yield* Effect.die(new Error("transfer not initiated"))
                const body = yield* transferSummary(transfers, transferId, result.state, result.version)
                return { version: result.version, positions: result.positions, body }
              }).pipe(mapErrors({ what: `transfer ${transferId}` })),
            fresh: fresh(transferId)
          })
        }),

      approve: ({ params, headers }) =>
        review({
          id: params.id,
          route: "POST /transfers/:id/approve",
          request: { params },
          headers,
          command: (actor) => Effect.succeed(Transfer.Approve.make({ by: actor.name }))
        }),

      reject: ({ params, payload, headers }) =>
        review({
          id: params.id,
          route: "POST /transfers/:id/reject",
          request: { params, payload },
          headers,
          details: { reason: payload.reason },
          command: (actor, transfer) =>
            transfer.state.initiatedBy === actor.name
              ? Effect.fail(
                  new FourEyesViolation({
                    code: "SelfReviewForbidden",
                    detail: `Four-eyes rule: ${actor.name} initiated the transfer and cannot review it; a second person must`
                  })
                )
              : Effect.succeed(Transfer.Reject.make({ by: actor.name, reason: payload.reason ?? "" }))
        }),

      list: ({ query }) =>
        Effect.gen(function* () {
          const actor = yield* CurrentActor
          const options = { status: query.status, account: query.account, limit: query.limit }
          if (actor.role !== "customer") return yield* readModels.transfers(options)
          const own = yield* ownAccounts(actor)
          if (query.account !== undefined && !own.has(query.account)) {
            return yield* new Forbidden({ code: "Forbidden", detail: `${actor.name} does not own this account` })
          }
          const accounts = query.account === undefined ? [...own] : [query.account]
          const pages = yield* Effect.forEach(accounts, (account) => readModels.transfers({ ...options, account }))
          const byId = new Map<string, TransferSummary>()
          for (const page of pages) for (const transfer of page) byId.set(transfer.transferId, transfer)
          return [...byId.values()]
            .sort((a, b) => (a.initiatedAt < b.initiatedAt ? 1 : a.initiatedAt > b.initiatedAt ? -1 : 0))
            .slice(0, query.limit ?? 50)
        }).pipe(mapErrors({ what: "transfers" })),

      get: ({ params }) =>
        Effect.gen(function* () {
          const actor = yield* CurrentActor
          const transfer = yield* loadTransfer(transfers, params.id)
          yield* requireSee(actor, transfer.state)
          const summary = yield* readModels.transfer(params.id).pipe(
            Effect.map(Option.filter((s) => s.version >= transfer.version)),
            Effect.flatMap(
              Option.match({
                onSome: Effect.succeed,
                onNone: () => transferSummary(transfers, params.id, transfer.state, transfer.version)
              })
            )
          )
          return HttpApiSchema.withHeaders({ body: summary, headers: { etag: etag(summary.version) } })
        }).pipe(mapErrors({ what: `transfer ${params.id}` }))
    })
  })
)
