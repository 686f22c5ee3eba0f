/**
 * The HTTP server: the API, its OpenAPI document (`/openapi.json`), interactive docs (`/docs`) and the page (`/`),
 * on Node's HTTP server.
 *
 * The caller provides the command side (`Accounts`, `Transfers`), the `SqlClient` (for the idempotency keys), the
 * `ReadModels` and the `Tokens`; the settings come from `Config` unless given, the deadlines from the `Deadlines` in
 * context (see `infra/Deadlines.ts`).
 *
 * Every route answers within the request deadline: past it the answer is a 503 problem (`RequestTimeout`) while the
 * request's work is interrupted in the background. Every 503 carries `Retry-After`.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { Server } from "@facta/example-bank/api/Server"
 *
 * declare const stores: Layer.Layer<never> // Accounts, Transfers, SqlClient, ReadModels, Tokens
 * const main = Layer.launch(Server.layer({ port: 8080 }).pipe(Layer.provide(stores)))
 * ```
 */
import { readdirSync, readFileSync } from "node:fs"
import { createServer } from "node:http"
import { NodeHttpServer } from "@effect/platform-node"
import { Data, Duration, Effect, Layer } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerRespondable, HttpServerResponse } from "effect/http"
import { HttpApiBuilder, HttpApiScalar } from "effect/http-api"
import * as Deadlines from "../infra/Deadlines.ts"
import * as HttpEdges from "../infra/HttpEdges.ts"
import * as NodeRefusals from "../infra/NodeRefusals.ts"
import { Api } from "./Api.ts"
import { Settings } from "./Commands.ts"
import * as Demo from "./Demo.ts"
import * as Handlers from "./Handlers.ts"
import * as Idempotency from "./Idempotency.ts"
import * as Live from "./Live.ts"
import { ServiceUnavailable } from "./Problems.ts"

/**
 * `GET /`: the operations console (one page), and `GET /page/<file>`: its scripts and styles, read once at start.
 * Only the files of `src/page/` with a known type are served, by exact name.
 */
export const PageRoute = Layer.unwrap(
  Effect.sync(() => {
    const directory = new URL("../page/", import.meta.url)
    const types: Record<string, string> = { ".js": "text/javascript", ".css": "text/css" }
    const assets = readdirSync(directory).flatMap((file) => {
      const type = types[file.slice(file.lastIndexOf("."))]
      return type === undefined ? [] : [{ file, type, body: readFileSync(new URL(file, directory), "utf8") }]
    })
    const html = readFileSync(new URL("index.html", directory), "utf8")
    const routes: ReadonlyArray<HttpRouter.Route<never, never>> = [
      HttpRouter.route("GET", "/", HttpServerResponse.html(html)),
      ...assets.map(({ body, file, type }) =>
        HttpRouter.route(
          "GET",
          `/page/${file}`,
          HttpServerResponse.text(body, {
            contentType: `${type}; charset=utf-8`,
            headers: { "cache-control": "no-cache" }
          })
        )
      )
    ]
    return HttpRouter.addAll(routes)
  })
)

/**
 * `GET /docs`: interactive API docs (Scalar) over the OpenAPI document.
 */
export const DocsRoute = HttpApiScalar.layer(Api, {
  path: "/docs",
  // Scalar's default fonts come from its CDN, which the Content-Security-Policy (`HttpEdges.ts`) does not allow
  scalar: { withDefaultFonts: false }
})

class RequestTimedOut extends Data.TaggedError("RequestTimedOut") {}

/**
 * The seconds a 503 asks the client to wait before retrying (`Retry-After`): the storage deadline, rounded up.
 */
export const retryAfterSeconds = (deadlines: Deadlines.Values): number =>
  Math.max(1, Math.ceil(Duration.toMillis(deadlines.storage) / 1000))

/**
 * The last line of defence, on every route: a request that has no answer within the request deadline of `Deadlines`
 * gets a 503 problem (`RequestTimeout`) at once, while its work is interrupted in the background (work stuck on a
 * stalled database can take longer than that to give up). And every 503, whoever answered it, carries `Retry-After`.
 */
export const DeadlineMiddleware = HttpRouter.middleware(
  Effect.gen(function* () {
    const deadlines = yield* Deadlines.Deadlines
    const scope = yield* Effect.scope
    const retryAfter = String(retryAfterSeconds(deadlines))
    const timedOut = (request: HttpServerRequest.HttpServerRequest) =>
      Effect.logWarning("request missed its deadline; answering 503").pipe(
        Effect.annotateLogs({ method: request.method, url: request.url, deadline: Duration.format(deadlines.request) }),
        Effect.andThen(
          HttpServerRespondable.toResponse(
            new ServiceUnavailable({
              code: "RequestTimeout",
              detail: `No answer within ${Duration.format(deadlines.request)}; retry later (with the same Idempotency-Key)`
            })
          )
        )
      )
    return (httpEffect) =>
      Effect.gen(function* () {
        const request = yield* HttpServerRequest.HttpServerRequest
        const response = yield* httpEffect.pipe(
          Deadlines.within(scope, deadlines.request, () => new RequestTimedOut()),
          Effect.catchIf(
            (error): error is RequestTimedOut => error instanceof RequestTimedOut,
            () => timedOut(request)
          )
        )
        return response.status === 503 && response.headers["retry-after"] === undefined
          ? HttpServerResponse.setHeader(response, "retry-after", retryAfter)
          : response
      })
  }),
  { global: true }
)

/**
 * Options of {@link routes} and {@link layer}.
 */
export interface Options {
  /** Overrides of the settings; without them `BANK_APPROVAL_THRESHOLD` and friends are read from `Config`. */
  readonly settings?: Partial<Settings["Service"]> | undefined
  /** The schema of the idempotency keys table (default `bank`). */
  readonly idempotencySchema?: string | undefined
}

/**
 * Every route (API, `/openapi.json`, `/docs`, `/`) under the {@link DeadlineMiddleware}, without a server and without
 * {@link services}: serve it with `HttpRouter.serve` or turn it into a web handler with `HttpRouter.toWebHandler`.
 */
export const routes = Layer.mergeAll(
  HttpApiBuilder.layer(Api, { openapiPath: "/openapi.json" }).pipe(Layer.provide(Handlers.layer)),
  DocsRoute,
  PageRoute,
  Live.route,
  DeadlineMiddleware
)

/**
 * What the routes need besides the caller's layers: the idempotency keys (on the `SqlClient`) and the settings.
 */
export const services = (options?: Options) =>
  Layer.mergeAll(
    Idempotency.layer({ schema: options?.idempotencySchema }),
    options?.settings === undefined ? Settings.layerConfig : Settings.layer(options.settings)
  )

/**
 * Node's server, parsing request lines and headers up to `HttpEdges.maxHeaderBytes`, and answering what it refuses
 * itself with a problem (`NodeRefusals.onClientError`), logged with the loggers of the layer's context.
 */
const nodeServer = (options: { readonly port: number; readonly host?: string | undefined }) =>
  Layer.unwrap(
    Effect.map(Effect.context<never>(), (context) =>
      NodeHttpServer.layer(
        () => {
          const server = createServer({ maxHeaderSize: HttpEdges.maxHeaderBytes })
          server.on(
            "clientError",
            NodeRefusals.onClientError((line) => Effect.runForkWith(context)(line))
          )
          return server
        },
        { port: options.port, host: options.host }
      )
    )
  )

/**
 * The server on `port` (0 picks a free one; read it from `HttpServer.HttpServer`'s `address`).
 */
export const layer = (
  options: Options & {
    readonly port: number
    readonly host?: string | undefined
    /** Serves `GET /demo/users` (every demo user's token, see `Demo.ts`): for `pnpm demo` only. */
    readonly demo?: boolean | undefined
  }
) =>
  // the router never refuses a path parameter for its length: an id of any length reaches the API's schema, which
  // answers the same 400; the edges' router records the routes (for 405s) and runs `HttpEdges.edges` around them,
  // which writes the one access-log line per request (hence no `HttpMiddleware.logger`)
  HttpRouter.serve(
    Layer.provideMerge(
      Layer.merge(routes, Demo.routes({ demo: options.demo === true })),
      HttpEdges.layerRouter({ maxParamLength: HttpEdges.maxHeaderBytes })
    ),
    { disableLogger: true }
  ).pipe(Layer.provide(services(options)), Layer.provideMerge(nodeServer(options)))
