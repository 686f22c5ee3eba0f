/**
 * The edges of the bank's HTTP server: what every request and every response goes through, whichever route answers
 * (the API, `/openapi.json`, `/docs`, the page, or none).
 *
 * - Every error is an RFC 9457 problem (`application/problem+json`): an unknown route or a malformed path is a 404, a
 *   known path with another method a 405 with `Allow`, a body that is not JSON a 415, a body over {@link maxBodyBytes}
 *   a 413 (refused while it is read: the body is never buffered beyond the limit), a 401 carries
 *   `WWW-Authenticate: Bearer`; whatever answered with a bare status gets the problem of that status.
 * - Every response carries the security headers ({@link securityHeaders}): a Content-Security-Policy that allows the
 *   page's and the docs' own inline scripts by their SHA-256 and nothing else, no framing, `nosniff`, no referrer.
 * - Every request gets a request id (the caller's `X-Request-Id` when it is sane, a new one otherwise), echoed in the
 *   response and annotated on every log line of the request, and exactly one access-log line: method, path, status,
 *   duration and request id.
 * - Requests Node refuses before any route sees them (a request line or headers over {@link maxHeaderBytes}, bytes
 *   that are not HTTP) get a problem too, written on the socket (`NodeRefusals.ts`).
 *
 * {@link layerRouter} is an `HttpRouter` that does all of this: it records the routes added to it (to tell a 405 from
 * a 404) and runs {@link edges} around everything else.
 */
import { createHash, randomUUID } from "node:crypto"
import { ByteSize, Cause, Effect, Layer } from "effect"
import {
  FindMyWay,
  HttpIncomingMessage,
  HttpRouter,
  HttpServerError,
  HttpServerRequest,
  HttpServerRespondable,
  HttpServerResponse
} from "effect/http"
import { BadRequest, ContentTooLarge, InternalError, MethodNotAllowed, NotFound } from "../api/Problems.ts"

/** The largest request body read: 64 KiB, far above any command's. */
export const maxBodyBytes = 64 * 1024

/**
 * The largest request line plus headers Node parses (its default is 16 KiB): large enough that an id of any length a
 * client plausibly sends reaches the API and gets its 400, small enough to bound what a connection can make us hold.
 * Past it, Node refuses the request and `NodeRefusals.onClientError` answers a 431 problem.
 */
export const maxHeaderBytes = 256 * 1024

const problemBase = "https://facta.dev/problems"

/** The methods a 405 may list; the router answers `HEAD` with the `GET` route. */
const methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "QUERY"] as const

// Security headers

const baseCsp = {
  "default-src": "'none'",
  "script-src": "'self'",
  // Scalar (the docs) inserts style elements at run time, which hashes cannot cover; styles cannot run code
  "style-src": "'self' 'unsafe-inline'",
  "img-src": "'self' data:",
  "font-src": "'self' data:",
  "connect-src": "'self'",
  "base-uri": "'none'",
  "form-action": "'none'",
  "frame-ancestors": "'none'"
}

const formatCsp = (directives: Record<string, string>): string =>
  Object.entries(directives)
    .map(([name, value]) => `${name} ${value}`)
    .join("; ")

/**
 * The headers every response carries; `scriptHashes` are the `'sha256-…'` sources of the inline scripts of an HTML
 * response (none for any other).
 */
export const securityHeaders = (scriptHashes: ReadonlyArray<string> = []): Record<string, string> => ({
  "content-security-policy": formatCsp({
    ...baseCsp,
    "script-src": [baseCsp["script-src"], ...scriptHashes].join(" ")
  }),
  "x-frame-options": "DENY",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cross-origin-opener-policy": "same-origin"
})

const inlineScript = /<script\b(?![^>]*\bsrc\s*=)[^>]*>([\s\S]*?)<\/script>/gi

/** The CSP sources (`'sha256-…'`) of every inline script of an HTML document. */
export const inlineScriptHashes = (html: string): ReadonlyArray<string> =>
  Array.from(html.matchAll(inlineScript), (match) => {
    const digest = createHash("sha256")
      .update(match[1] ?? "")
      .digest("base64")
    return `'sha256-${digest}'`
  })

// the page and the docs answer with the same body object every time: hash each once
const hashesByBody = new WeakMap<object, ReadonlyArray<string>>()

const contentTypeOf = (response: HttpServerResponse.HttpServerResponse): string =>
  response.headers["content-type"] ?? ("contentType" in response.body ? response.body.contentType : undefined) ?? ""

const scriptHashesOf = (response: HttpServerResponse.HttpServerResponse): ReadonlyArray<string> => {
  const body = response.body
  const isHtml = contentTypeOf(response).startsWith("text/html")
  if (!isHtml || body._tag !== "Uint8Array") return []
  const cached = hashesByBody.get(body)
  if (cached !== undefined) return cached
  const hashes = inlineScriptHashes(body.text ?? new TextDecoder().decode(body.body))
  hashesByBody.set(body, hashes)
  return hashes
}

// Problems

/** The title of each status a problem of the edges may have. */
export const titles: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  413: "Content Too Large",
  414: "URI Too Long",
  415: "Unsupported Media Type",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  503: "Service Unavailable"
}

const slug = (title: string) => title.toLowerCase().replaceAll(" ", "-")

/**
 * A problem document of any status, in the shape of `Problems.ts` (for statuses no endpoint declares).
 */
export const problemBody = (status: number, code: string, detail: string) => {
  const title = titles[status] ?? (status >= 500 ? "Server Error" : "Client Error")
  return { type: `${problemBase}/${slug(title)}`, title, status, detail, code }
}

const isProblemResponse = (response: HttpServerResponse.HttpServerResponse): boolean =>
  contentTypeOf(response).startsWith("application/problem+json")

/** What a bare error response said, when it said something short and plain. */
const plainDetail = (response: HttpServerResponse.HttpServerResponse): string | undefined => {
  const body = response.body
  if (body._tag !== "Uint8Array" || !body.contentType.startsWith("text/plain")) return undefined
  const text = (body.text ?? new TextDecoder().decode(body.body)).trim()
  return text === "" || text.length > 200 ? undefined : text
}

/**
 * An error response as a problem: one that already is stays as it is; a bare status (an empty 404, a plain-text 415)
 * gets the problem of its status, keeping its other headers (`Allow`, `Retry-After`).
 */
const asProblem = (response: HttpServerResponse.HttpServerResponse): HttpServerResponse.HttpServerResponse => {
  if (response.status < 400 || isProblemResponse(response)) return response
  const title = titles[response.status] ?? "Error"
  const body = problemBody(response.status, title.replaceAll(" ", ""), plainDetail(response) ?? title)
  const { "content-type": _type, "content-length": _length, ...headers } = response.headers
  return HttpServerResponse.jsonUnsafe(body, {
    status: response.status,
    headers,
    contentType: "application/problem+json"
  })
}

const respond = (problem: HttpServerRespondable.Respondable, headers?: Record<string, string>) =>
  Effect.map(HttpServerRespondable.toResponse(problem), (response) =>
    headers === undefined ? response : HttpServerResponse.setHeaders(response, headers)
  )

const tooLarge = () =>
  respond(
    new ContentTooLarge({
      code: "BodyTooLarge",
      detail: `The request body is over ${maxBodyBytes} bytes`,
      limit: maxBodyBytes
    }),
    // the rest of the body is not read: the connection cannot carry another request
    { connection: "close" }
  )

/** The `HttpServerError` of a cause, whether it failed with it or died of it (body reads die inside the API). */
const serverErrorOf = (cause: Cause.Cause<unknown>): HttpServerError.HttpServerError | undefined => {
  for (const reason of cause.reasons) {
    const value = reason._tag === "Fail" ? reason.error : reason._tag === "Die" ? reason.defect : undefined
    if (HttpServerError.isHttpServerError(value)) return value
  }
  return undefined
}

// Routes

/**
 * The routes a router was given, to find which methods a path has.
 */
export interface RouteTable {
  readonly add: (method: string, path: string) => void
  /** The methods that have a route for `url` (with `HEAD` when `GET` has one). */
  readonly allowed: (url: string) => ReadonlyArray<string>
}

const makeRouteTable = (config: Partial<FindMyWay.RouterConfig>): RouteTable => {
  const table = FindMyWay.make<true>(config)
  const add = (method: string, path: string) => {
    const paths = path.endsWith("/*") ? [path, path.slice(0, -2)] : [path]
    for (const each of paths) {
      if (method === "*") table.all(each as FindMyWay.PathInput, true)
      else table.on(method, each as FindMyWay.PathInput, true)
    }
  }
  const allowed = (url: string) => {
    const found = methods.filter((method) => table.find(method, url) !== undefined)
    return found.includes("GET") ? ["GET", "HEAD", ...found.filter((m) => m !== "GET")] : found
  }
  return { add, allowed }
}

/**
 * A request's path without its query, cut to 200 characters: paths reach 256 KiB, and neither a problem's `detail`
 * nor a log line should echo that much.
 */
const pathOf = (request: HttpServerRequest.HttpServerRequest): string => {
  const path = request.url.split("?")[0] ?? request.url
  return path.length > 200 ? `${path.slice(0, 200)}…` : path
}

const notFound = (request: HttpServerRequest.HttpServerRequest, table: RouteTable) => {
  const path = pathOf(request)
  const allowed = table.allowed(request.url)
  return allowed.length > 0
    ? respond(
        new MethodNotAllowed({
          code: "MethodNotAllowed",
          detail: `${path} does not answer ${request.method}; it answers ${allowed.join(", ")}`
        }),
        { allow: allowed.join(", ") }
      )
    : respond(new NotFound({ code: "RouteNotFound", detail: `No route for ${request.method} ${path}` }))
}

// The middleware

const requestIdPattern = /^[A-Za-z0-9._:-]{1,128}$/

const requestIdOf = (request: HttpServerRequest.HttpServerRequest): string => {
  const given = request.headers["x-request-id"]
  return given !== undefined && requestIdPattern.test(given) ? given : randomUUID()
}

const declaredLength = (request: HttpServerRequest.HttpServerRequest): number => {
  const header = request.headers["content-length"]
  return header === undefined ? 0 : Number(header)
}

/** An error response that was not already a problem: the cause, as the server would have answered it. */
const fromCause = (
  request: HttpServerRequest.HttpServerRequest,
  table: RouteTable,
  cause: Cause.Cause<unknown>
): Effect.Effect<HttpServerResponse.HttpServerResponse> => {
  const serverError = serverErrorOf(cause)
  if (serverError !== undefined) {
    const reason = serverError.reason
    if (reason._tag === "RouteNotFound") return notFound(request, table)
    if (reason._tag === "RequestParseError") {
      return reason.reason === "BodyTooLarge"
        ? tooLarge()
        : respond(new BadRequest({ code: "UnreadableBody", detail: "The request body could not be read" }))
    }
  }
  const failure = cause.reasons.find((reason) => reason._tag === "Fail")
  if (failure !== undefined && HttpServerRespondable.isRespondable(failure.error)) {
    return HttpServerRespondable.toResponse(failure.error)
  }
  return Effect.logError("request failed", cause).pipe(
    Effect.andThen(respond(new InternalError({ code: "InternalError", detail: "The server could not answer" })))
  )
}

const decorate = (response: HttpServerResponse.HttpServerResponse, requestId: string) => {
  let decorated = HttpServerResponse.setHeaders(asProblem(response), {
    ...securityHeaders(scriptHashesOf(response)),
    "x-request-id": requestId
  })
  if (decorated.status === 401 && decorated.headers["www-authenticate"] === undefined) {
    decorated = HttpServerResponse.setHeader(decorated, "www-authenticate", 'Bearer realm="facta-bank"')
  }
  if (decorated.status === 415 && decorated.headers["accept"] === undefined) {
    decorated = HttpServerResponse.setHeader(decorated, "accept", "application/json")
  }
  return decorated
}

/**
 * What every request goes through (see the module's documentation), around `httpApp` (the router with its routes).
 */
export const edges =
  (table: RouteTable) =>
  <E, R>(
    httpApp: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>
  ): Effect.Effect<HttpServerResponse.HttpServerResponse, never, R | HttpServerRequest.HttpServerRequest> =>
    Effect.gen(function* () {
      const request = yield* HttpServerRequest.HttpServerRequest
      const requestId = requestIdOf(request)
      const started = performance.now()
      const path = pathOf(request)
      const accessLog = (status: number | "aborted") =>
        Effect.logInfo("http").pipe(
          Effect.annotateLogs({
            method: request.method,
            path,
            status,
            durationMs: Math.round((performance.now() - started) * 10) / 10
          })
        )
      const answered =
        declaredLength(request) > maxBodyBytes
          ? // refused before a byte of the body is read
            tooLarge()
          : httpApp.pipe(
              // every body read (text, json, arrayBuffer) fails once the body passes the limit
              Effect.provideService(HttpIncomingMessage.MaxBodySize, ByteSize.bytes(maxBodyBytes)),
              Effect.catchCause((cause) =>
                // a client that went away: nothing to answer
                Cause.hasInterruptsOnly(cause) ? Effect.failCause(cause) : fromCause(request, table, cause)
              )
            )
      return yield* answered.pipe(
        Effect.map((response) => decorate(response, requestId)),
        Effect.onExit((exit) => accessLog(exit._tag === "Success" ? exit.value.status : "aborted")),
        Effect.annotateLogs({ requestId })
      )
    }) as Effect.Effect<HttpServerResponse.HttpServerResponse, never, R | HttpServerRequest.HttpServerRequest>

/**
 * An `HttpRouter` (with `config`) that records its routes and runs {@link edges} around all of them: provide it to the
 * route layers instead of `HttpRouter.layer`.
 */
export const layerRouter = (config: Partial<FindMyWay.RouterConfig>): Layer.Layer<HttpRouter.HttpRouter> =>
  Layer.effect(
    HttpRouter.HttpRouter,
    Effect.gen(function* () {
      const router = yield* HttpRouter.make.pipe(Effect.provideService(HttpRouter.RouterConfig, config))
      const table = makeRouteTable(config)
      // the first global middleware is the outermost: it sees every other middleware's answer. Its type refuses
      // middleware that handles errors (they are meant to reach the server's own error responses); turning them into
      // problems is exactly what the edges are for
      yield* router.addGlobalMiddleware(edges(table) as never) as Effect.Effect<void>
      const recording: HttpRouter.HttpRouter = {
        ...router,
        add: (method, path, handler, options) => {
          table.add(method, path)
          return router.add(method, path, handler, options)
        },
        addAll: (routes) => {
          for (const route of routes) table.add(route.method, route.path)
          return router.addAll(routes)
        }
      }
      return recording
    })
  )
