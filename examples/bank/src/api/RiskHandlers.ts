/**
 * The handler of `GET /risk/alerts` (see `Risk.ts`): the risk watch's `GET /flags`, fetched from its own port within
 * a short deadline and decoded with its schema, beside the status of the relay this process runs.
 */
import { Duration, Effect, Option, Schema } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { TransferRelay } from "../app/TransferRelay.ts"
import { Flags } from "../risk/Flags.ts"
import { Api } from "./Api.ts"
import { CurrentActor, requireRole } from "./Auth.ts"
import { mapErrors, ServiceUnavailable } from "./Problems.ts"
import { RiskWatchUrl } from "./Risk.ts"

/** How long the watch has to answer: it is on the same machine, and the page polls. */
const watchDeadline = Duration.seconds(2)

const decodeFlags = Schema.decodeUnknownEffect(Flags)

/**
 * The risk handlers, on the {@link RiskWatchUrl} (and, when this process runs one, the `TransferRelay`) in context.
 */
export const RiskHandlers = HttpApiBuilder.group(
  Api,
  "risk",
  Effect.fn(function* (handlers) {
    const url = yield* RiskWatchUrl
    const relay = yield* Effect.serviceOption(TransferRelay)

    const fetchFlags = (base: string, limit: number) =>
      Effect.tryPromise({
        try: async (signal) => {
          const response = await fetch(`${base}/flags?limit=${limit}`, { signal })
          if (!response.ok) throw new Error(`the risk watch answered ${response.status}`)
          return (await response.json()) as unknown
        },
        catch: (cause) => cause
      }).pipe(
        Effect.timeout(watchDeadline),
        Effect.flatMap(decodeFlags),
        Effect.tapError((error) =>
          Effect.logWarning("risk watch does not answer").pipe(Effect.annotateLogs({ url: base, error: String(error) }))
        ),
        Effect.mapError(
          () =>
            new ServiceUnavailable({
              code: "RiskWatchUnavailable",
              detail: `The risk watch at ${base} does not answer; retry later`
            })
        )
      )

    return handlers.handle("alerts", ({ query }) =>
      Effect.gen(function* () {
        const actor = yield* CurrentActor
        yield* requireRole(actor, ["auditor", "admin"], "read the risk watch's flags")
        if (Option.isNone(url)) {
          return yield* new ServiceUnavailable({
            code: "RiskWatchOff",
            detail: "The risk watch is off: start the demo with NATS_URL (or REDIS_URL) set to run it"
          })
        }
        const flags = yield* fetchFlags(url.value, query.limit ?? 50)
        const status = Option.isSome(relay) ? yield* relay.value.status : null
        return { relay: status, flags: flags.flags, totals: flags.totals }
      }).pipe(mapErrors({ what: "the risk watch's flags" }))
    )
  })
)
