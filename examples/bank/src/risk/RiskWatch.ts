/**
 * The risk watch: a service of its own (`risk/main.ts` runs it as a second process) that learns the bank's transfers
 * only from the public transfer facts on the broker, and keeps its own read model of flagged transfers
 * (`RiskModel.ts`, rules in `Rules.ts`).
 *
 * - **Consuming**: an inbox (`risk-watch`) on a durable consumer (NATS JetStream, `NatsInbox.run`) or a consumer
 *   group (Redis Streams, `RedisInbox.run`). Each fact's writes and its inbox record (`PgInboxStore`, in the watch's
 *   own schema) commit in one transaction and the message is acknowledged after it: a redelivered fact is applied
 *   once; a fact that does not decode (another schema version) is parked with the reason. A broker that does not
 *   answer, or a stream the bank has not created yet, is waited for with backoff.
 * - **Serving**: `GET /flags?limit=n` (the newest flags and the totals, JSON) and `GET /health`, on a port of its
 *   own, behind the bank's HTTP edges (problem documents, security headers, one access-log line per request).
 */
import { createServer } from "node:http"
import { NodeHttpServer } from "@effect/platform-node"
import { Inbox } from "@facta/core"
import { NatsClient, NatsInbox } from "@facta/nats"
import { PgInboxStore } from "@facta/postgres"
import { RedisClient, RedisInbox } from "@facta/redis"
import { type Duration, Effect, Layer } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerRespondable, HttpServerResponse } from "effect/http"
import type { SqlClient } from "effect/sql"
import { BadRequest, ServiceUnavailable } from "../api/Problems.ts"
import { backoff } from "../app/Background.ts"
import * as HttpEdges from "../infra/HttpEdges.ts"
import * as Broker from "../integration/Broker.ts"
import * as TransferFacts from "../integration/TransferFacts.ts"
import * as RiskModel from "./RiskModel.ts"
import type * as Rules from "./Rules.ts"

/** The inbox's name: its applied and parked records go by it. */
export const inboxName = "risk-watch"

/**
 * The inbox: each transfer fact applied to the read model, in the inbox store's transaction.
 */
export const inbox = Inbox.make({
  name: inboxName,
  schema: TransferFacts.TransferMessage,
  handle: (message: TransferFacts.TransferMessage) => RiskModel.RiskModel.use((model) => model.apply(message))
})

/**
 * Options of {@link consume} and {@link layer}.
 */
export interface Options {
  readonly broker: Broker.Broker
  /** The durable consumer (NATS) or consumer group (Redis) name (default `risk-watch`). */
  readonly durable?: string | undefined
  /**
   * How long the broker waits for an acknowledgement before it delivers a message again (default 30 seconds): what
   * a killed watch's messages in flight wait before its next run gets them. Set when the consumer is created.
   */
  readonly ackWait?: Duration.Input | undefined
}

const isBrokerError = (error: unknown): boolean => NatsClient.isNatsError(error) || RedisClient.isRedisError(error)

/**
 * Consumes the transfer facts from the broker until interrupted, waiting out a broker that does not answer (or a
 * stream that does not exist yet) with backoff.
 */
export const consume = (options: Options) => {
  const durable = options.durable ?? "risk-watch"
  const broker = options.broker
  const once: Effect.Effect<
    void,
    NatsClient.NatsError | RedisClient.RedisError,
    Inbox.InboxStore | RiskModel.RiskModel
  > =
    broker._tag === "Nats"
      ? Effect.scoped(
          Effect.flatMap(NatsClient.make({ servers: broker.servers, name: "risk-watch" }), (client) =>
            NatsInbox.run(inbox, {
              stream: broker.stream,
              durable,
              filterSubjects: [Broker.natsSubjects(broker.prefix)],
              ackWait: options.ackWait
            }).pipe(Effect.provideService(NatsClient.NatsClient, client))
          )
        )
      : Effect.scoped(
          Effect.flatMap(RedisClient.make({ url: broker.url, name: "risk-watch" }), (client) =>
            RedisInbox.run(inbox, {
              key: Broker.redisKey(broker.prefix),
              group: durable,
              consumer: "risk-watch",
              claimIdle: options.ackWait
            }).pipe(Effect.provideService(RedisClient.RedisClient, client))
          )
        )
  return once.pipe(
    Effect.tapError((error) =>
      Effect.logWarning("risk watch: the broker does not answer (or has no stream yet); trying again").pipe(
        Effect.annotateLogs({ broker: Broker.describe(broker), error: String(error) })
      )
    ),
    Effect.retry({ schedule: backoff, while: isBrokerError })
  )
}

const json = (body: unknown) => HttpServerResponse.jsonUnsafe(body, { headers: { "cache-control": "no-store" } })

/**
 * `GET /flags` and `GET /health`, on the read model and the inbox store of the context.
 */
export const routes = (broker: Broker.Broker) =>
  Layer.mergeAll(
    HttpRouter.add(
      "GET",
      "/flags",
      Effect.gen(function* () {
        const request = yield* HttpServerRequest.HttpServerRequest
        const given = new URL(request.url, "http://risk").searchParams.get("limit")
        const limit = given === null ? 50 : Number(given)
        if (!Number.isInteger(limit) || limit < 1 || limit > 500) {
          return yield* HttpServerRespondable.toResponse(
            new BadRequest({ code: "InvalidRequest", detail: "limit: an integer from 1 to 500", field: "query.limit" })
          )
        }
        const model = yield* RiskModel.RiskModel
        return json(yield* model.flags(limit))
      }).pipe(Effect.catch(() => unavailable))
    ),
    HttpRouter.add(
      "GET",
      "/health",
      Effect.gen(function* () {
        const store = yield* Inbox.InboxStore
        const model = yield* RiskModel.RiskModel
        const parked = yield* store.parked(inboxName)
        const { totals } = yield* model.flags(1)
        return json({ status: "ok", inbox: inboxName, broker: Broker.describe(broker), parked: parked.length, totals })
      }).pipe(Effect.catch(() => unavailable))
    )
  )

const unavailable = HttpServerRespondable.toResponse(
  new ServiceUnavailable({ code: "StorageUnavailable", detail: "The risk watch's database does not answer" })
)

/**
 * The whole service on the `SqlClient` of the context: its schema migrated (read model and inbox tables), the
 * consumer in the background, and the HTTP server on `port` (0 picks a free one; read it from `HttpServer`).
 * `inboxStore` replaces the `PgInboxStore` of the schema (a test's, that loses acknowledgements).
 */
export const layer = <E = never>(
  options: Options & {
    readonly schema: string
    readonly port: number
    readonly host?: string | undefined
    readonly settings?: Rules.Settings | undefined
    readonly inboxStore?: Layer.Layer<Inbox.InboxStore, E, SqlClient.SqlClient> | undefined
  }
) => {
  const stores = Layer.mergeAll(
    RiskModel.layer({ schema: options.schema, settings: options.settings }),
    options.inboxStore ?? PgInboxStore.layer({ schema: options.schema })
  )
  const consumer = Layer.effectDiscard(Effect.forkScoped(consume(options)))
  const server = HttpRouter.serve(Layer.provideMerge(routes(options.broker), HttpEdges.layerRouter({})), {
    disableLogger: true
  }).pipe(
    Layer.provideMerge(
      NodeHttpServer.layer(() => createServer(), { port: options.port, host: options.host ?? "127.0.0.1" })
    )
  )
  return Layer.merge(server, consumer).pipe(Layer.provideMerge(stores))
}
