/**
 * `Idempotency-Key` for POSTs: the same key with the same request answers the first response again and changes
 * nothing; the same key with another request is refused (422).
 *
 * Keys live in `bank.idempotency_keys`, one row per (actor, key) with the request's hash and the response. A request
 * with a key runs in one transaction: it inserts its row first (the primary key makes a concurrent twin wait on the
 * uncommitted row, then see it), runs the command, and stores the response before committing. A command that fails
 * rolls the row back, so a retry runs again. When the event store shares the `SqlClient` (PostgreSQL), the appended
 * events commit in the same transaction as the key: a crash can never leave the one without the other.
 *
 * The transaction runs under twice the storage deadline of `Deadlines` (it makes several calls), a stored response's
 * update under the storage deadline: past it the request fails with a retryable `StorageError` (503) while the
 * transaction rolls back in the background. A retry with the same key is safe either way.
 */
import { createHash } from "node:crypto"
import type { StorageError } from "@facta/core"
import { PgStorage } from "@facta/postgres"
import { Context, Duration, Effect, Layer } from "effect"
import { SqlClient, type SqlError } from "effect/sql"
import * as Deadlines from "../infra/Deadlines.ts"
import { Unprocessable } from "./Problems.ts"

/**
 * A response as stored for replays.
 */
export interface StoredResponse {
  readonly status: number
  readonly body: unknown
  readonly headers: Readonly<Record<string, string>>
}

/**
 * What a request with a key identifies itself by.
 */
export interface KeyedRequest {
  readonly actor: string
  readonly key: string
  /** A hash of everything that makes the request what it is (see {@link hashRequest}). */
  readonly hash: string
}

/**
 * The outcome of {@link Idempotency.run}: the response, and whether it is a replay of an earlier one.
 */
export type Outcome<A> =
  | { readonly _tag: "Executed"; readonly value: A; readonly response: StoredResponse }
  | { readonly _tag: "Replayed"; readonly response: StoredResponse }

const canonical = (u: unknown): unknown => {
  if (Array.isArray(u)) return u.map(canonical)
  if (typeof u === "object" && u !== null) {
    return Object.fromEntries(
      Object.keys(u)
        .sort()
        .map((key) => [key, canonical((u as Record<string, unknown>)[key])])
    )
  }
  return u
}

/**
 * The SHA-256 of a request's canonical JSON (keys sorted), as hex.
 */
export const hashRequest = (request: unknown): string =>
  createHash("sha256")
    .update(JSON.stringify(canonical(request)) ?? "")
    .digest("hex")

/**
 * Idempotency keys.
 */
export class Idempotency extends Context.Service<
  Idempotency,
  {
    /**
     * Runs `execute` once per key: the first request runs it and stores `toResponse` of its result in the same
     * transaction; a repeat gets the stored response; another request with the key fails with 422.
     */
    readonly run: <A, E, R>(
      request: KeyedRequest,
      execute: Effect.Effect<A, E, R>,
      toResponse: (a: A) => StoredResponse
    ) => Effect.Effect<Outcome<A>, E | Unprocessable | SqlError.SqlError | StorageError.StorageError, R>
    /** Replaces a stored response (the fresher view answered once the read models caught up). */
    readonly update: (
      request: KeyedRequest,
      response: StoredResponse
    ) => Effect.Effect<void, SqlError.SqlError | StorageError.StorageError>
  }
>()("@facta/example-bank/api/Idempotency") {}

/**
 * The keys in `schema` (default `bank`) on the `SqlClient` in context; creates the table when missing.
 */
export const layer = (options?: {
  readonly schema?: string | undefined
}): Layer.Layer<Idempotency, SqlError.SqlError, SqlClient.SqlClient> =>
  Layer.effect(
    Idempotency,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const deadlines = yield* Deadlines.Deadlines
      const within = PgStorage.deadline(yield* Effect.scope, sql, "Idempotency")
      const schema = options?.schema ?? "bank"
      const table = sql`${sql(schema)}.idempotency_keys`
      // one creator at a time: concurrent CREATE ... IF NOT EXISTS can still clash in the catalog
      yield* sql.withTransaction(
        Effect.gen(function* () {
          yield* sql`SELECT pg_advisory_xact_lock(hashtext(${`${schema}.idempotency_keys`}))`
          yield* sql`CREATE SCHEMA IF NOT EXISTS ${sql(schema)}`
          yield* sql`CREATE TABLE IF NOT EXISTS ${table} (
            actor        text        NOT NULL,
            key          text        NOT NULL,
            request_hash text        NOT NULL,
            status       int,
            body         jsonb,
            headers      jsonb,
            created_at   timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (actor, key)
          )`
        })
      )

      const write = (request: KeyedRequest, response: StoredResponse) =>
        sql`UPDATE ${table} SET status = ${response.status}, body = ${JSON.stringify(response.body)}::jsonb,
            headers = ${JSON.stringify(response.headers)}::jsonb
          WHERE actor = ${request.actor} AND key = ${request.key}`.pipe(Effect.asVoid)

      const run = <A, E, R>(
        request: KeyedRequest,
        execute: Effect.Effect<A, E, R>,
        toResponse: (a: A) => StoredResponse
      ): Effect.Effect<Outcome<A>, E | Unprocessable | SqlError.SqlError | StorageError.StorageError, R> =>
        sql
          .withTransaction(
            Effect.gen(function* () {
              const claimed = yield* sql`INSERT INTO ${table} (actor, key, request_hash)
              VALUES (${request.actor}, ${request.key}, ${request.hash})
              ON CONFLICT (actor, key) DO NOTHING RETURNING key`
              if (claimed.length === 0) {
                const rows = yield* sql<{
                  request_hash: string
                  status: number | null
                  body: unknown
                  headers: Record<string, string> | null
                }>`SELECT request_hash, status, body, headers FROM ${table}
                WHERE actor = ${request.actor} AND key = ${request.key} FOR UPDATE`
                const row = rows[0]
                if (row === undefined || row.status === null) {
                  // only a row committed without a response could get here, which this module never writes
                  return yield* Effect.die(new Error("idempotency key without a stored response"))
                }
                if (row.request_hash !== request.hash) {
                  return yield* new Unprocessable({
                    code: "IdempotencyKeyReused",
                    detail: "This Idempotency-Key was already used for a different request"
                  })
                }
                return {
                  _tag: "Replayed",
                  response: { status: row.status, body: row.body, headers: row.headers ?? {} }
                } as const
              }
              const value = yield* execute
              const response = toResponse(value)
              yield* write(request, response)
              return { _tag: "Executed", value, response } as const
            })
          )
          .pipe(PgStorage.mapErrors("Idempotency", "run"), within("run", Duration.times(deadlines.storage, 2)))

      const update = (request: KeyedRequest, response: StoredResponse) =>
        write(request, response).pipe(PgStorage.mapErrors("Idempotency", "update"), within("update", deadlines.storage))

      return Idempotency.of({ run, update })
    })
  )
