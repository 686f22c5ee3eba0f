/**
 * What the risk watch's broker tests share: a risk watch in the test's process (its own pool and schema, optionally
 * with an inbox store that loses every first acknowledgement), polling, transfers through the bank's API, and what
 * the bank published.
 */
import { assert } from "@effect/vitest"
import { Inbox } from "@facta/core"
import { PgInboxStore } from "@facta/postgres"
import { Context, Effect, Layer, References, Schedule, Stream } from "effect"
import { HttpServer } from "effect/http"
import { losingFirstAcks } from "../../../../test/integration/support/inbox.ts"
import * as Database from "../../../../test/support/database.ts"
import { Transfers } from "../../src/app/Aggregates.ts"
import * as TransferRelay from "../../src/app/TransferRelay.ts"
import type * as Broker from "../../src/integration/Broker.ts"
import * as RiskModel from "../../src/risk/RiskModel.ts"
import * as RiskWatch from "../../src/risk/RiskWatch.ts"
import { call } from "../api/harness.ts"

/** Polls `check` until it holds, for at most 30 seconds. */
export const eventually = <E, R>(what: string, check: Effect.Effect<boolean, E, R>) =>
  check.pipe(
    Effect.repeat({ schedule: Schedule.spaced("100 millis"), until: (done) => done }),
    Effect.timeoutOrElse({ duration: "30 seconds", orElse: () => Effect.die(new Error(`not reached: ${what}`)) })
  )

/**
 * A `PgInboxStore` whose every first commit of a message is followed by a lost acknowledgement (the store answers as
 * if the connection dropped after the COMMIT), so the consumer does not acknowledge and JetStream delivers it again.
 */
export class LostAcks extends Context.Service<LostAcks, { readonly ids: Set<string> }>()("test/LostAcks") {}

export const lossyInboxStore = (schema: string, lost: Set<string>) =>
  Layer.effect(
    Inbox.InboxStore,
    Effect.gen(function* () {
      return losingFirstAcks(yield* PgInboxStore.make({ schema }), lost)
    })
  )

/** The risk watch in this process (its own pool and schema; lossy when given `lost`): its URL and read model. */
export class InProcessWatch extends Context.Service<
  InProcessWatch,
  { readonly url: string; readonly model: RiskModel.RiskModel["Service"] }
>()("test/InProcessWatch") {}

export const inProcessWatch = (broker: Broker.Broker, schema: string, lost?: Set<string>) =>
  Layer.effect(
    InProcessWatch,
    Effect.gen(function* () {
      const context = yield* Layer.build(
        RiskWatch.layer({
          broker,
          schema,
          port: 0,
          durable: "risk-test",
          inboxStore: lost === undefined ? undefined : lossyInboxStore(schema, lost)
        }).pipe(
          Layer.provideMerge(Database.dropSchemaOnRelease(schema).pipe(Layer.provideMerge(Database.client()))),
          // the access log of the watch's own routes is noise here
          Layer.provide(Layer.succeed(References.MinimumLogLevel, "Error"))
        )
      )
      const address = Context.get(context, HttpServer.HttpServer).address
      if (!("port" in address)) throw new Error("expected a TCP address")
      return { url: `http://127.0.0.1:${address.port}`, model: Context.get(context, RiskModel.RiskModel) }
    })
  )

/** How many public facts the bank published for a transfer (its events the relay maps to a fact). */
export const publishedFacts = (transferId: string) =>
  Effect.flatMap(Effect.service(Transfers), (transfers) =>
    transfers.events(transferId).pipe(
      Stream.filter((event) => TransferRelay.toFact(event) !== undefined),
      Stream.runCount
    )
  )

/**
 * Whether the model applied every fact the bank published for each of the transfers (`settled`: only once each has
 * at least two, its request and its outcome).
 */
export const everyFactApplied = (
  model: Pick<RiskModel.RiskModel["Service"], "factsOf">,
  transferIds: ReadonlyArray<string>,
  options?: { readonly settled?: boolean }
) =>
  Effect.gen(function* () {
    for (const id of transferIds) {
      const expected = yield* publishedFacts(id)
      if ((options?.settled === true && expected < 2) || (yield* model.factsOf(id)) !== expected) return false
    }
    return true
  })

export const transfer = (from: string, to: string, amount: string, reference: string) =>
  Effect.map(call("POST", "/transfers", { as: "alice", body: { from, to, amount, reference } }), (reply) => {
    assert.strictEqual(reply.status, 201, reply.text)
    return reply.body.transferId as string
  })
