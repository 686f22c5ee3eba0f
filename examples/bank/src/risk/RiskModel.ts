/**
 * The risk watch's read model, in a PostgreSQL schema of its own (default `risk`), beside the inbox's tables
 * (`PgInboxStore` in the same schema): the transfers it has heard of (`transfers`) and the flags its rules raised
 * (`flags`, one per transfer and rule). {@link apply} runs inside the inbox's transaction, so a fact's writes and its
 * inbox record commit together: a redelivered fact is never applied twice.
 *
 * `transfers.facts` counts the facts applied to a transfer: it is not idempotent on purpose, so a fact applied twice
 * would show (the tests compare it with what the bank published).
 */
import { Migrations } from "@facta/postgres"
import { Context, Duration, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import type * as TransferFacts from "../integration/TransferFacts.ts"
import type { Flag, Flags } from "./Flags.ts"
import * as Rules from "./Rules.ts"

const migrations = (schema: string): ReadonlyArray<Migrations.Migration> => [
  [
    "risk_model",
    [
      `CREATE TABLE ${schema}.transfers (
        transfer_id text PRIMARY KEY,
        from_account text NOT NULL,
        to_account text NOT NULL,
        amount text NOT NULL,
        currency text NOT NULL,
        requested_by text NOT NULL,
        requested_at timestamptz NOT NULL,
        near_threshold boolean NOT NULL,
        status text NOT NULL,
        correlation_id text,
        facts int NOT NULL,
        updated_at timestamptz NOT NULL)`,
      `CREATE INDEX transfers_near ON ${schema}.transfers (from_account, requested_at) WHERE near_threshold`,
      `CREATE TABLE ${schema}.flags (
        transfer_id text NOT NULL REFERENCES ${schema}.transfers (transfer_id),
        rule text NOT NULL,
        reason text NOT NULL,
        PRIMARY KEY (transfer_id, rule))`
    ]
  ]
]

/**
 * The read model's operations.
 */
export class RiskModel extends Context.Service<
  RiskModel,
  {
    readonly schema: string
    readonly settings: Rules.Settings
    /** Applies one fact (inside the caller's transaction). */
    readonly apply: (message: TransferFacts.TransferMessage) => Effect.Effect<void, unknown>
    /** The newest flags (by request time), at most `limit`, and the totals. */
    readonly flags: (limit: number) => Effect.Effect<Flags, unknown>
    /** How many facts the watch applied to a transfer (0 when it never heard of it). */
    readonly factsOf: (transferId: string) => Effect.Effect<number, unknown>
  }
>()("@facta/example-bank/risk/RiskModel") {}

const statusOf: Record<Exclude<TransferFacts.TransferFact["_tag"], "TransferRequested">, string> = {
  TransferApproved: "Approved",
  TransferRejected: "Rejected",
  TransferCompleted: "Completed",
  TransferFailed: "Failed"
}

/**
 * Builds the read model in `schema` (a plain lower-case identifier), migrating its tables first.
 */
export const make = Effect.fn("RiskModel.make")(function* (options: {
  readonly schema: string
  readonly settings?: Rules.Settings | undefined
}) {
  const sql = yield* SqlClient.SqlClient
  const settings = options.settings ?? Rules.defaults
  yield* Migrations.apply({ schema: options.schema, migrations, table: "risk_migrations" })
  const transfers = sql(`${options.schema}.transfers`)
  const flagsTable = sql(`${options.schema}.flags`)
  const windowSeconds = Duration.toSeconds(settings.nearWindow)

  const flag = (transferId: string, rule: Rules.Rule, reason: string) =>
    sql`INSERT INTO ${flagsTable} (transfer_id, rule, reason) VALUES (${transferId}, ${rule}, ${reason})
        ON CONFLICT DO NOTHING`

  /**
   * The near transfers of `account` from `at` to a window after it (the new one and those it may tip over), each
   * with how many near transfers of the account came in the window before it: whoever arrived first, a transfer is
   * flagged once enough came before it.
   */
  const nearCandidates = (account: string, at: Date) =>
    sql<{ readonly transfer_id: string; readonly before: string }>`
      SELECT u.transfer_id, c.before::text AS before
      FROM ${transfers} u
      CROSS JOIN LATERAL (
        SELECT count(*) AS before FROM ${transfers} v
        WHERE v.from_account = u.from_account AND v.near_threshold
          AND v.requested_at >= u.requested_at - ${windowSeconds} * interval '1 second'
          AND (v.requested_at, v.transfer_id) < (u.requested_at, u.transfer_id)) c
      WHERE u.from_account = ${account} AND u.near_threshold
        AND u.requested_at >= ${at} AND u.requested_at <= ${at}::timestamptz + ${windowSeconds} * interval '1 second'
        AND c.before >= ${settings.nearCount - 1}`

  const requested = Effect.fnUntraced(function* (
    fact: typeof TransferFacts.TransferRequested.Type,
    correlationId: string | null
  ) {
    const at = new Date(fact.requestedAt)
    const near = Rules.isNearThreshold(settings, fact)
    yield* sql`INSERT INTO ${transfers} (transfer_id, from_account, to_account, amount, currency, requested_by,
        requested_at, near_threshold, status, correlation_id, facts, updated_at)
      VALUES (${fact.transferId}, ${fact.fromAccount}, ${fact.toAccount}, ${fact.amount}, ${fact.currency},
        ${fact.requestedBy}, ${at}, ${near}, 'Requested', ${correlationId}, 1, ${at})
      ON CONFLICT (transfer_id) DO UPDATE SET facts = ${transfers}.facts + 1`
    const isLarge = Rules.large(settings, fact)
    if (isLarge !== undefined) yield* flag(fact.transferId, "large", isLarge)
    if (!near) return
    for (const row of yield* nearCandidates(fact.fromAccount, at)) {
      const reason = Rules.nearReason(settings, fact.fromAccount, Number(row.before) + 1)
      yield* flag(row.transfer_id, "near-threshold", reason)
    }
  })

  const apply = Effect.fn("RiskModel.apply")(function* (message: TransferFacts.TransferMessage) {
    const fact = message.data
    if (fact._tag === "TransferRequested") return yield* requested(fact, message.correlationId ?? null)
    // a status of a transfer the watch never heard requested (its request was parked) changes nothing
    yield* sql`UPDATE ${transfers} SET status = ${statusOf[fact._tag]}, facts = facts + 1,
        updated_at = ${new Date(message.recordedAt)} WHERE transfer_id = ${fact.transferId}`
  })

  const flags = Effect.fn("RiskModel.flags")(function* (limit: number) {
    const rows = yield* sql<{
      readonly transfer_id: string
      readonly rule: "large" | "near-threshold"
      readonly reason: string
      readonly from_account: string
      readonly to_account: string
      readonly amount: string
      readonly currency: string
      readonly requested_by: string
      readonly requested_at: Date
      readonly status: string
      readonly correlation_id: string | null
    }>`SELECT f.transfer_id, f.rule, f.reason, t.from_account, t.to_account, t.amount, t.currency, t.requested_by,
          t.requested_at, t.status, t.correlation_id
        FROM ${flagsTable} f JOIN ${transfers} t USING (transfer_id)
        ORDER BY t.requested_at DESC, f.transfer_id DESC, f.rule LIMIT ${limit}`
    const [totals] = yield* sql<{ readonly large: string; readonly near: string; readonly seen: string }>`
      SELECT (SELECT count(*) FROM ${flagsTable} WHERE rule = 'large')::text AS large,
             (SELECT count(*) FROM ${flagsTable} WHERE rule = 'near-threshold')::text AS near,
             (SELECT count(*) FROM ${transfers})::text AS seen`
    return {
      flags: rows.map(
        (row): Flag => ({
          transferId: row.transfer_id,
          rule: row.rule,
          reason: row.reason,
          fromAccount: row.from_account,
          toAccount: row.to_account,
          amount: row.amount,
          currency: row.currency,
          requestedBy: row.requested_by,
          requestedAt: row.requested_at.toISOString(),
          status: row.status,
          correlationId: row.correlation_id
        })
      ),
      totals: {
        large: Number(totals?.large ?? 0),
        nearThreshold: Number(totals?.near ?? 0),
        transfersSeen: Number(totals?.seen ?? 0)
      }
    }
  })

  const factsOf = (transferId: string) =>
    Effect.map(
      sql<{ readonly facts: number }>`SELECT facts FROM ${transfers} WHERE transfer_id = ${transferId}`,
      (rows) => rows[0]?.facts ?? 0
    )

  return RiskModel.of({ schema: options.schema, settings, apply, flags, factsOf })
})

/**
 * The read model as a layer, on the `SqlClient` of the context.
 */
export const layer = (options: { readonly schema: string; readonly settings?: Rules.Settings | undefined }) =>
  Layer.effect(RiskModel, make(options))
