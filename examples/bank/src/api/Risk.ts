/**
 * The risk watch on the bank's API: `GET /risk/alerts` (auditors and admins) answers the flags of the risk watch
 * service (a second process, `risk/main.ts`) together with where the bank's transfer relay stands. The bank's server
 * forwards the request to the watch, so that the page keeps one origin, its Content-Security-Policy and the bank's
 * bearer tokens; the watch itself has no users.
 *
 * When no risk watch runs beside the bank (no broker configured), or it does not answer, the answer is a 503 problem
 * (`RiskWatchOff`, `RiskWatchUnavailable`) saying so.
 *
 * Only the group, its schemas and {@link RiskWatchUrl} live here; the handler is in `RiskHandlers.ts`.
 */
import { Context, Option, Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "effect/http-api"
import { Flag, Flags } from "../risk/Flags.ts"
import { endpointErrors } from "./Problems.ts"

/**
 * Where the risk watch of this bank answers (`http://127.0.0.1:3100`), when one runs: `pnpm demo` sets it when it
 * starts the watch. None (the default): the watch is off.
 */
export const RiskWatchUrl = Context.Reference<Option.Option<string>>("@facta/example-bank/api/RiskWatchUrl", {
  defaultValue: () => Option.none()
})

/**
 * Where the bank's transfer relay stands (see `app/TransferRelay.ts`).
 */
export const RelayStatus = Schema.Struct({
  relay: Schema.String,
  broker: Schema.String,
  state: Schema.String,
  owner: Schema.NullOr(Schema.String),
  checkpoint: Schema.NullOr(Schema.String),
  eventsBehind: Schema.NullOr(Schema.Int),
  error: Schema.NullOr(Schema.String)
})

/**
 * The risk watch's flags, newest first, with the totals and the relay's status (null when this process runs no
 * relay: another instance of the bank may).
 */
export const RiskAlerts = Schema.Struct({
  relay: Schema.NullOr(RelayStatus),
  flags: Schema.Array(Flag),
  totals: Flags.fields.totals
})

export type RiskAlerts = typeof RiskAlerts.Type

/**
 * The risk endpoints.
 */
export class RiskGroup extends HttpApiGroup.make("risk")
  .add(
    HttpApiEndpoint.get("alerts", "/risk/alerts", {
      query: { limit: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 200 }))) },
      success: RiskAlerts,
      error: endpointErrors
    }).annotate(
      OpenApi.Description,
      "The transfers the risk watch flagged (large, or repeatedly just below the approval threshold), newest first, " +
        "for auditors and admins. The risk watch is a separate service fed by the bank's transfer facts through a " +
        "broker; when it is off or does not answer, a 503 problem (code RiskWatchOff or RiskWatchUnavailable)."
    )
  )
  .annotateMerge(
    OpenApi.annotations({
      title: "Risk",
      description: "What the risk watch service, fed by the bank's transfer facts through a broker, flagged"
    })
  ) {}
