/**
 * `GET /events/live`: server-sent events that tell the console what changed, once the read models show it.
 *
 * The stream follows the store's subscription from the log's head at connect time. For each page of new events it
 * waits until the read models have projected that page (so a client that refetches on the notice reads the new
 * state), then sends one `projected` event: `{ position, streams, types, caughtUp }`, where `streams` are the ids of
 * the streams that changed, restricted for customers to their own accounts and the transfers touching them (a page
 * with nothing a customer may see sends nothing). `caughtUp` is false when the read models did not catch up within
 * the wait (the client refetches anyway and gets the next notice later).
 *
 * Authentication is the API's: `Authorization: Bearer <token>`. Browsers' `EventSource` cannot send that header, so
 * the page reads the stream with `fetch` (a streamed body) instead; no token ever goes into a URL. A comment line
 * every 15 seconds keeps proxies from closing an idle connection.
 */
import { EventStore, Position, StreamId, Subscription } from "@facta/core"
import { Duration, Effect, Layer, Option, Schedule, Stream } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerRespondable, HttpServerResponse } from "effect/http"
import { ReadModels } from "../readmodels/ReadModels.ts"
import { type Actor, Tokens } from "./Auth.ts"
import { ServiceUnavailable, Unauthorized } from "./Problems.ts"

/** The path of the live route. */
export const livePath = "/events/live"

/** How long a page waits for the read models before it is announced anyway. */
const projectionWait = Duration.seconds(10)

/** How often an idle connection gets a keep-alive comment. */
const keepAliveEvery = Duration.seconds(15)

/** What one `projected` event says. */
export interface ProjectedNotice {
  readonly position: string
  readonly streams: ReadonlyArray<string>
  readonly types: ReadonlyArray<string>
  readonly caughtUp: boolean
}

const encoder = new TextEncoder()

/** One server-sent event, framed: `event:` and a single `data:` line of JSON (JSON has no raw newlines). */
export const frame = (event: string, data: unknown): Uint8Array =>
  encoder.encode(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`)

const bearerOf = (request: HttpServerRequest.HttpServerRequest): string | undefined => {
  const header = request.headers.authorization
  if (header === undefined) return undefined
  const match = /^Bearer\s+(.+)$/i.exec(header.trim())
  return match?.[1]?.trim()
}

/**
 * The live route; needs the event store, the read models and the tokens.
 */
export const route = Layer.unwrap(
  Effect.gen(function* () {
    const store = yield* EventStore.EventStore
    const readModels = yield* ReadModels
    const tokens = yield* Tokens

    /** The streams of `streamIds` the actor may hear about: all of them but for customers. */
    const visibleTo = (actor: Actor, streamIds: ReadonlyArray<string>) =>
      Effect.gen(function* () {
        if (actor.role !== "customer") return streamIds
        const own = new Set((yield* readModels.accounts(actor.name)).map((account) => account.accountId))
        const visible: Array<string> = []
        for (const streamId of streamIds) {
          const id = StreamId.entityId(streamId as StreamId.StreamId)
          switch (StreamId.category(streamId as StreamId.StreamId)) {
            case "Account":
              if (own.has(id)) visible.push(streamId)
              break
            case "Transfer": {
              const transfer = yield* readModels.transfer(id)
              if (Option.isSome(transfer) && (own.has(transfer.value.from) || own.has(transfer.value.to))) {
                visible.push(streamId)
              }
              break
            }
          }
        }
        return visible
      })

    const notices = (actor: Actor, after: Position.Position) =>
      Subscription.pages({ after, pollInterval: "500 millis" }).pipe(
        Stream.filter((page) => page.events.length > 0),
        Stream.mapEffect((page) =>
          Effect.gen(function* () {
            const caughtUp = yield* readModels.waitFor(page.checkpoint, projectionWait).pipe(
              Effect.as(true),
              Effect.catchTag("ProjectionLagging", () => Effect.succeed(false))
            )
            const streams = yield* visibleTo(actor, [...new Set(page.events.map((event) => event.streamId))])
            const types = [...new Set(page.events.filter((e) => streams.includes(e.streamId)).map((e) => e.type))]
            const notice: ProjectedNotice = { position: Position.format(page.checkpoint), streams, types, caughtUp }
            return notice
          })
        ),
        Stream.filter((notice) => notice.streams.length > 0),
        Stream.map((notice) => frame("projected", notice))
      )

    const keepAlive = Stream.fromSchedule(Schedule.spaced(keepAliveEvery)).pipe(
      Stream.map(() => encoder.encode(": keep-alive\n\n"))
    )

    const handler = Effect.gen(function* () {
      const request = yield* HttpServerRequest.HttpServerRequest
      const token = bearerOf(request)
      const actor = token === undefined ? Option.none() : tokens.resolve(token)
      if (Option.isNone(actor)) {
        return yield* HttpServerRespondable.toResponse(
          token === undefined
            ? new Unauthorized({ code: "MissingToken", detail: "Send a bearer token" })
            : new Unauthorized({ code: "InvalidToken", detail: "Unknown bearer token" })
        )
      }
      const head = yield* store.head
      const body = Stream.make(frame("ready", { position: Position.format(head), actor: actor.value })).pipe(
        Stream.concat(Stream.merge(notices(actor.value, head), keepAlive, { haltStrategy: "left" })),
        Stream.provideService(EventStore.EventStore, store),
        Stream.tapCause((cause) => Effect.logWarning("live stream ended", cause))
      )
      return HttpServerResponse.stream(body, {
        contentType: "text/event-stream",
        headers: { "cache-control": "no-store", "x-accel-buffering": "no" }
      })
    }).pipe(
      Effect.catchTag("StorageError", () =>
        HttpServerRespondable.toResponse(
          new ServiceUnavailable({ code: "StorageUnavailable", detail: "The event store did not answer; retry later" })
        )
      )
    )

    return HttpRouter.add("GET", livePath, handler)
  })
)
