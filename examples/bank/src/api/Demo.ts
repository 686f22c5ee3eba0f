/**
 * Routes around the API, outside its contract (no bearer token, not in the OpenAPI document):
 *
 * - `GET /health`, always: whether the read models have caught up with the log (`readModels.caughtUp`, and how many
 *   events they are behind). A demo that seeded thousands of events answers `caughtUp: false` for a few seconds; the
 *   page can say so rather than show half-built balances.
 * - `GET /demo/users`, in demo mode only (`Server.layer({ demo: true })`, which `pnpm demo` sets): every demo user
 *   with their role and bearer token, so that the page can offer "sign in as" and a terminal can fetch the tokens again
 *   without restarting the demo. Never mount it on a server with real users: it hands out every token.
 */
import { type CheckpointStore, EventStore, Position, Projection, type StorageError } from "@facta/core"
import { Effect, Layer, Option } from "effect"
import { HttpRouter, HttpServerRespondable, HttpServerResponse } from "effect/http"
import { TransferRelay } from "../app/TransferRelay.ts"
import * as ReadModels from "../readmodels/ReadModels.ts"
import { Tokens } from "./Auth.ts"
import { ServiceUnavailable } from "./Problems.ts"

/**
 * How far the read models are from the log's head.
 */
export interface ReadModelsStatus {
  /** Every read model has handled the log up to its head (the page's numbers are the store's). */
  readonly caughtUp: boolean
  /** How many events the furthest-behind read model has yet to handle (an upper bound). */
  readonly eventsBehind: number
}

/**
 * Where the read models stand against the log's head: caught up when every projection of `ReadModels.projections`
 * has a checkpoint at or past it.
 */
export const readModelsStatus: Effect.Effect<
  ReadModelsStatus,
  StorageError.StorageError,
  EventStore.EventStore | CheckpointStore.CheckpointStore
> = Effect.gen(function* () {
  const store = yield* EventStore.EventStore
  const head = yield* store.head
  const statuses = [
    yield* Projection.status(ReadModels.projections.accounts),
    yield* Projection.status(ReadModels.projections.transfers)
  ]
  const never = head.sequence > 0n && statuses.some((rows) => rows.length === 0)
  const rows = statuses.flat()
  const caughtUp = !never && rows.every((row) => !Position.isBefore(row.checkpoint, head))
  const eventsBehind = never ? Number(head.sequence) : Math.max(0, ...rows.map((row) => row.eventsBehind))
  return { caughtUp, eventsBehind: caughtUp ? 0 : eventsBehind }
})

const noStore = { "cache-control": "no-store" }

/**
 * `GET /health`: `{ status: "ok", readModels: { caughtUp, eventsBehind } }`, with `transferRelay` (where the relay of
 * the transfer facts stands, see `app/TransferRelay.ts`) when this process runs one, or a 503 problem when the
 * storage does not answer.
 */
export const HealthRoute = Layer.unwrap(
  Effect.gen(function* () {
    const relay = yield* Effect.serviceOption(TransferRelay)
    const relayStatus = Option.match(relay, {
      onNone: () => Effect.succeed({}),
      onSome: (running) => Effect.map(running.status, (transferRelay) => ({ transferRelay }))
    })
    return HttpRouter.add(
      "GET",
      "/health",
      Effect.all([readModelsStatus, relayStatus]).pipe(
        Effect.map(([readModels, relayPart]) =>
          HttpServerResponse.jsonUnsafe({ status: "ok", readModels, ...relayPart }, { headers: noStore })
        ),
        Effect.catch(() =>
          HttpServerRespondable.toResponse(
            new ServiceUnavailable({ code: "StorageUnavailable", detail: "The storage does not answer; retry later" })
          )
        )
      )
    )
  })
)

/**
 * A demo user as `GET /demo/users` lists them.
 */
export interface DemoUser {
  readonly name: string
  readonly role: string
  readonly token: string
}

/**
 * `GET /demo/users`: `[{ name, role, token }]` for every token of the `Tokens` in context. Demo mode only.
 */
export const DemoUsersRoute = HttpRouter.add(
  "GET",
  "/demo/users",
  Tokens.use((tokens) =>
    Effect.succeed(
      HttpServerResponse.jsonUnsafe(
        tokens.issued.map(({ actor, token }): DemoUser => ({ name: actor.name, role: actor.role, token })),
        { headers: noStore }
      )
    )
  )
)

/**
 * The routes of this module for a server: `/health`, and `/demo/users` when `demo` is set.
 */
export const routes = (options: { readonly demo: boolean }) =>
  options.demo ? Layer.merge(HealthRoute, DemoUsersRoute) : HealthRoute
