/**
 * The API under test: a real server on a free port, on PostgreSQL (event store, checkpoints, snapshots, read models
 * and idempotency keys, each test file in schemas of its own), with the projections and the transfer process running
 * in the background, and one random token per demo actor.
 */
import { assert } from "@effect/vitest"
import { Projection } from "@facta/core"
import { PgCheckpointStore, PgSnapshotStore } from "@facta/postgres"
import { Effect, Layer, References } from "effect"
import { HttpServer } from "effect/http"
import * as Database from "../../../../test/support/database.ts"
import type {} from "../../../../test/support/globalSetup.ts"
import { demoActors, type IssuedToken, makeToken, Tokens } from "../../src/api/Auth.ts"
import * as Server from "../../src/api/Server.ts"
import * as Aggregates from "../../src/app/Aggregates.ts"
import { TransferProcess } from "../../src/index.ts"
import * as ReadModels from "../../src/readmodels/ReadModels.ts"
import * as Tables from "../../src/readmodels/Tables.ts"

export const issued: ReadonlyArray<IssuedToken> = demoActors.map((actor) => ({ token: makeToken(), actor }))
export const tokenOf = (name: string): string => {
  const found = issued.find((entry) => entry.actor.name === name)
  if (found === undefined) throw new Error(`no token for ${name}`)
  return found.token
}

const run = <E extends { readonly _tag: string }, R>(projection: Projection.Projection<E, R>) =>
  Projection.run(projection, { batchWindow: "1 millis", pollInterval: "20 millis" })

/** The stores, the command side, read models and tokens, on PostgreSQL schemas `store` and `bank`. */
export const stores = (
  schemas: { readonly store: string; readonly bank: string },
  options?: { readonly readModels?: Layer.Layer<ReadModels.ReadModels> | undefined }
) => {
  const bankSchema = Layer.succeed(Tables.Schema, schemas.bank)
  return Layer.mergeAll(
    options?.readModels ?? ReadModels.layer.pipe(Layer.provide(bankSchema)),
    Aggregates.layer,
    Database.dropSchemaOnRelease(schemas.bank),
    bankSchema,
    Tokens.layer(issued),
    Layer.succeed(References.MinimumLogLevel, "Error")
  ).pipe(
    Layer.provideMerge(
      Layer.mergeAll(
        PgCheckpointStore.layer({ schema: schemas.store }),
        PgSnapshotStore.layer({ schema: schemas.store })
      )
    ),
    Layer.provideMerge(Database.eventStoreIn(schemas.store))
  )
}

/** Runs the projections and the transfer process until the layer is released. */
export const projections = Layer.effectDiscard(
  Effect.forkScoped(
    Effect.all(
      [
        run(TransferProcess.TransferProcess),
        run(ReadModels.projections.accounts),
        run(ReadModels.projections.transfers)
      ],
      {
        concurrency: "unbounded",
        discard: true
      }
    )
  )
)

/** The whole app on a free port. */
export const app = (
  prefix: string,
  options?: {
    readonly readModels?: Layer.Layer<ReadModels.ReadModels> | undefined
    readonly projections?: boolean | undefined
    readonly settings?: Server.Options["settings"]
    /** Serves the demo-only routes (`GET /demo/users`). */
    readonly demo?: boolean | undefined
  }
) => {
  const schemas = { store: Database.uniqueSchema(`${prefix}_store`), bank: Database.uniqueSchema(`${prefix}_bank`) }
  const server = Server.layer({
    port: 0,
    host: "127.0.0.1",
    idempotencySchema: schemas.bank,
    demo: options?.demo,
    settings: { approvalThreshold: "1000.00", readYourWritesTimeout: "5 seconds", ...options?.settings }
  })
  const withProjections = options?.projections === false ? server : Layer.merge(server, projections)
  return withProjections.pipe(Layer.provideMerge(stores(schemas, options)))
}

/** The base URL of the server in context. */
export const baseUrl = Effect.map(HttpServer.HttpServer.use(Effect.succeed), (server) => {
  const address = server.address
  if (!("port" in address)) throw new Error("expected a TCP address")
  return `http://127.0.0.1:${address.port}`
})

/** A JSON body, asserted on field by field. */
// biome-ignore lint/suspicious/noExplicitAny: test bodies are checked by assertions, not by types
export type Body = any

export interface Reply {
  readonly status: number
  readonly headers: Headers
  readonly body: Body
  readonly text: string
}

/** One request with `fetch`; `as` names the demo actor whose token is sent (none when undefined). */
export const call = (
  method: string,
  path: string,
  options?: {
    readonly as?: string | undefined
    readonly token?: string | undefined
    readonly body?: unknown
    readonly rawBody?: string
    readonly headers?: Record<string, string>
  }
) =>
  Effect.gen(function* () {
    const base = yield* baseUrl
    const headers: Record<string, string> = { ...options?.headers }
    const token = options?.token ?? (options?.as === undefined ? undefined : tokenOf(options.as))
    if (token !== undefined) headers.authorization = `Bearer ${token}`
    let body: string | undefined
    if (options?.rawBody !== undefined || options?.body !== undefined) {
      headers["content-type"] = "application/json"
      body = options.rawBody ?? JSON.stringify(options.body)
    }
    return yield* Effect.promise(async (): Promise<Reply> => {
      const response = await fetch(
        `${base}${path}`,
        body === undefined ? { method, headers } : { method, headers, body }
      )
      const text = await response.text()
      let parsed: unknown = null
      try {
        parsed = text === "" ? null : JSON.parse(text)
      } catch {
        parsed = null
      }
      return { status: response.status, headers: response.headers, body: parsed, text }
    })
  })

/**
 * Opens an account for the customer `owner` with its starting money: the teller (tina) opens it and books the opening
 * deposit, since money enters an account only through a teller or an admin. Answers the new account's id.
 */
export const openFunded = (owner: string, body: { readonly currency: string; readonly initialDeposit: string }) =>
  Effect.map(call("POST", "/accounts", { as: "tina", body: { ...body, owner } }), (reply) => {
    assert.strictEqual(reply.status, 201, reply.text)
    assert.strictEqual(reply.body.owner, owner)
    return reply.body.accountId as string
  })
