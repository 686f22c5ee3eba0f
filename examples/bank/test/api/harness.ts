/**
 * The API under test: a real server on a free port, on PostgreSQL (event store, checkpoints, snapshots, read models
 * and idempotency keys, each test file in schemas of its own), with the projections and the transfer process running
 * in the background under their control (`Background.layerProjections`, as `pnpm demo` runs them: the console's
 * rebuild goes through it), and one random token per demo actor.
 */
import { assert } from "@effect/vitest"
import { Projection } from "@facta/core"
import { PgCheckpointStore, PgSnapshotStore } from "@facta/postgres"
import { Effect, Layer, Option, References } from "effect"
import { HttpServer } from "effect/http"
import * as Database from "../../../../test/support/database.ts"
import type {} from "../../../../test/support/globalSetup.ts"
import { demoActors, type IssuedToken, makeToken, Tokens } from "../../src/api/Auth.ts"
import * as Server from "../../src/api/Server.ts"
import * as Aggregates from "../../src/app/Aggregates.ts"
import * as Background from "../../src/app/Background.ts"
import * as ReadModels from "../../src/readmodels/ReadModels.ts"
import * as Tables from "../../src/readmodels/Tables.ts"

export const issued: ReadonlyArray<IssuedToken> = demoActors.map((actor) => ({ token: makeToken(), actor }))
export const tokenOf = (name: string): string => {
  const found = issued.find((entry) => entry.actor.name === name)
  if (found === undefined) throw new Error(`no token for ${name}`)
  return found.token
}

/** How the projections run in tests: batches at once, a short poll. */
const runOptions = { batchWindow: "1 millis", pollInterval: "20 millis" } as const

/** The owner the app's projections take leases as in tests (followed by an instance id, see `Background`). */
export const testOwner = "bank-test"

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

/**
 * Runs the projections and the transfer process until the layer is released, under the `ProjectionControl` it
 * provides.
 */
export const projections = Background.layerProjections({ ...runOptions, owner: testOwner })

/**
 * Another process, under `owner`, running the read models: the layer is built once it holds their leases, so that the
 * app's projections built after it stand by.
 */
export const elsewhere = (owner: string) =>
  Layer.effectDiscard(
    Effect.gen(function* () {
      yield* Effect.forkScoped(
        Effect.all(
          Background.readModels.map((model) => model.run({ ...runOptions, owner })),
          { concurrency: "unbounded", discard: true }
        )
      )
      const held = Effect.map(
        Effect.all([
          Projection.status(ReadModels.projections.accounts),
          Projection.status(ReadModels.projections.transfers)
        ]),
        (all) =>
          all.every((rows) => rows.some((row) => Option.isSome(row.owner) && row.owner.value.startsWith(`${owner}/`)))
      )
      while (!(yield* held)) yield* Effect.sleep("20 millis")
    })
  )

/** The whole app on a free port. */
export const app = (
  prefix: string,
  options?: {
    readonly readModels?: Layer.Layer<ReadModels.ReadModels> | undefined
    readonly projections?: boolean | undefined
    /** An owner under which another process holds the read models' leases before the app's projections start. */
    readonly elsewhere?: string | undefined
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
  const background =
    options?.elsewhere === undefined ? projections : projections.pipe(Layer.provide(elsewhere(options.elsewhere)))
  // the server gets the control of the projections it runs beside (as `pnpm demo` does)
  const withProjections = options?.projections === false ? server : server.pipe(Layer.provideMerge(background))
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
