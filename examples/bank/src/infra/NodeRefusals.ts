/**
 * What Node's HTTP server refuses before any route sees it (a request line or headers over
 * `HttpEdges.maxHeaderBytes`, bytes that are not HTTP, a request too slow to arrive): answered like every other error
 * of the bank, with a problem, the security headers, a request id and one access-log line.
 */
import { randomUUID } from "node:crypto"
import type * as Net from "node:net"
import { Effect } from "effect"
import { maxHeaderBytes, problemBody, securityHeaders, titles } from "./HttpEdges.ts"

const clientErrorStatus = (error: Error & { readonly code?: string }) => {
  switch (error.code) {
    // Node counts the request line with the headers: a path too long overflows the same limit
    case "HPE_HEADER_OVERFLOW":
      return 431
    case "ERR_HTTP_REQUEST_TIMEOUT":
      return 408
    default:
      return 400
  }
}

/**
 * The method and path of a refused request when the bytes Node kept begin with its request line (they are the last
 * chunk read, which for a long request is somewhere in the middle: then `-`); a path is cut to 200 characters.
 */
const requestLineOf = (error: Error & { readonly rawPacket?: unknown }) => {
  const packet = Buffer.isBuffer(error.rawPacket) ? error.rawPacket.subarray(0, 256).toString("latin1") : ""
  const line = /^([A-Z]{3,10}) (\S+)/.exec(packet)
  return { method: line?.[1] ?? "-", path: line?.[2]?.slice(0, 200) ?? "-" }
}

/**
 * Answers what Node refuses before any route sees it (a request line or headers over {@link maxHeaderBytes}, bytes that
 * are not HTTP, a request too slow to arrive) with a problem and the security headers, then closes the connection;
 * `log` writes its access-log line. Install it as the server's `clientError` listener.
 */
export const onClientError =
  (log: (line: Effect.Effect<void>) => void) =>
  (error: Error & { readonly code?: string }, socket: Net.Socket): void => {
    if (error.code === "ECONNRESET" || !socket.writable) {
      socket.destroy()
      return
    }
    const status = clientErrorStatus(error)
    const requestId = randomUUID()
    const detail =
      status === 431
        ? `The request line and headers are over ${maxHeaderBytes} bytes`
        : status === 408
          ? "The request took too long to arrive"
          : "The request is not valid HTTP"
    const body = JSON.stringify(problemBody(status, titles[status]?.replaceAll(" ", "") ?? "BadRequest", detail))
    const headers = {
      "content-type": "application/problem+json",
      "content-length": String(Buffer.byteLength(body)),
      ...securityHeaders(),
      "x-request-id": requestId,
      connection: "close"
    }
    socket.end(
      `HTTP/1.1 ${status} ${titles[status] ?? "Bad Request"}\r\n${Object.entries(headers)
        .map(([name, value]) => `${name}: ${value}`)
        .join("\r\n")}\r\n\r\n${body}`
    )
    log(
      Effect.logInfo("http").pipe(
        Effect.annotateLogs({
          ...requestLineOf(error),
          status,
          durationMs: 0,
          requestId,
          refusedBy: error.code ?? "node"
        })
      )
    )
  }
