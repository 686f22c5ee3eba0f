/**
 * The handlers of the console endpoints (see `Console.ts`): a transfer's story, projection status and rebuilds.
 *
 * A rebuild from the console is the CLI's `projections rebuild` without the wait: it never competes with a running
 * instance for the lease. When another instance (the running app) holds a live lease on the projection, the answer
 * is a 409 naming the holder and how to rebuild beside it (blue/green) instead; otherwise the rebuild (reset and
 * replay, under leases of its own) starts in the background and the answer is a 202, with the progress in the
 * projection status.
 */
import { type Event, Position } from "@facta/core"
import { Cause, DateTime, Effect, FiberMap, Option, Stream } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { Accounts, Transfers } from "../app/Aggregates.ts"
import { blueGreenHint, leaseHolders, projections } from "../cli/Cli.ts"
import { ReadModels } from "../readmodels/ReadModels.ts"
import { Api } from "./Api.ts"
import { CurrentActor, canRead, requireRole } from "./Auth.ts"
import type { ProjectionCheckpoint, StoryEvent } from "./Console.ts"
import { Conflict, Forbidden, mapErrors, NotFound } from "./Problems.ts"
import { loadAccount, loadTransfer, transferSummary } from "./Stores.ts"

/** The owner the console's rebuilds take leases as (the CLI's is `bank-cli`, the demo's `bank-demo`). */
export const consoleOwner = "bank-console"

type Catalogued = (typeof projections)[number]

/** What rebuilding any of the bank's projections needs from the context. */
type RebuildServices = Effect.Services<ReturnType<Catalogued["rebuild"]>>

const iso = (utc: DateTime.Utc) => DateTime.formatIso(utc)

const storyEvent = (event: Event.RecordedEvent): StoryEvent => ({
  streamId: event.streamId,
  eventId: event.eventId,
  version: event.version,
  position: Position.format(event.position),
  type: event.type,
  schemaVersion: event.schemaVersion,
  data: event.data as StoryEvent["data"],
  metadata: event.metadata as StoryEvent["metadata"],
  recordedAt: iso(event.recordedAt)
})

/** Whether an account event belongs to the transfer: its `transferId` names it. */
const isOfTransfer = (transferId: string) => (event: Event.RecordedEvent) =>
  typeof event.data === "object" &&
  event.data !== null &&
  (event.data as { readonly transferId?: unknown }).transferId === transferId

/**
 * The console handlers, on the accounts, transfers, read models and the projections' stores in context.
 */
export const ConsoleHandlers = HttpApiBuilder.group(
  Api,
  "console",
  Effect.fn(function* (handlers) {
    const accounts = yield* Accounts
    const transfers = yield* Transfers
    const readModels = yield* ReadModels
    // rebuilds outlive the request that started them, not the server: they run in the layer's scope, one per name
    const rebuilds = yield* FiberMap.make<string>()
    const rebuildContext = yield* Effect.context<RebuildServices>()

    const catalogued = (name: string) => {
      const found = projections.find((projection) => projection.name === name)
      return found === undefined
        ? Effect.fail(
            new NotFound({
              code: "NotFound",
              detail: `No projection ${name}; the projections are ${projections.map((p) => p.name).join(", ")}`
            })
          )
        : Effect.succeed(found as Catalogued)
    }

    const statusOf = (projection: Catalogued) =>
      Effect.map(projection.status, (rows): ReadonlyArray<ProjectionCheckpoint> => {
        if (rows.length === 0) {
          return [
            {
              name: projection.name,
              currentVersion: projection.version,
              version: null,
              partition: null,
              checkpoint: null,
              eventsBehind: null,
              secondsBehind: null,
              state: "never run",
              owner: null,
              leaseExpiresAt: null,
              error: null,
              updatedAt: null
            }
          ]
        }
        return rows.map((row) => ({
          name: projection.name,
          currentVersion: projection.version,
          version: row.key.version,
          partition: row.key.partition,
          checkpoint: Position.format(row.checkpoint),
          eventsBehind: row.eventsBehind,
          secondsBehind: row.secondsBehind,
          state: row.state,
          owner: Option.getOrNull(row.owner),
          leaseExpiresAt: Option.match(row.leaseExpiresAt, { onNone: () => null, onSome: iso }),
          error: Option.getOrNull(row.error),
          updatedAt: iso(row.updatedAt)
        }))
      })

    return handlers.handleAll({
      transferStory: ({ params }) =>
        Effect.gen(function* () {
          const actor = yield* CurrentActor
          const transfer = yield* loadTransfer(transfers, params.id)
          // the read rule of the accounts, side by side: staff read both sides; a customer reads the story of a
          // transfer touching one of their accounts, with their own side's events only
          const sides = [...new Set([transfer.state.from, transfer.state.to])]
          const readableSides = yield* Effect.filter(sides, (accountId) =>
            loadAccount(accounts, accountId).pipe(
              Effect.map((account) => canRead(actor, account.state.owner)),
              // a side that was never opened (a transfer to an unknown account fails) has no events to tell
              Effect.catchTag("NotFound", () => Effect.succeed(false))
            )
          )
          if (actor.role === "customer" && readableSides.length === 0) {
            return yield* new Forbidden({ code: "Forbidden", detail: `${actor.name} is not a party to this transfer` })
          }
          const transferEvents = yield* transfers.events(params.id, { includeArchived: true }).pipe(Stream.runCollect)
          const accountEvents = yield* Effect.forEach(readableSides, (accountId) =>
            accounts
              .events(accountId, { includeArchived: true })
              .pipe(Stream.filter(isOfTransfer(params.id)), Stream.runCollect)
          )
          const events = [...transferEvents, ...accountEvents.flat()].sort((a, b) =>
            Position.order(a.position, b.position)
          )
          const summary = yield* readModels.transfer(params.id).pipe(
            Effect.map(Option.filter((s) => s.version >= transfer.version)),
            Effect.flatMap(
              Option.match({
                onSome: Effect.succeed,
                onNone: () => transferSummary(transfers, params.id, transfer.state, transfer.version)
              })
            )
          )
          return { transfer: summary, events: events.map(storyEvent) }
        }).pipe(mapErrors({ what: `transfer ${params.id}` })),

      projections: () =>
        Effect.gen(function* () {
          const actor = yield* CurrentActor
          yield* requireRole(actor, ["admin"], "read projection status")
          const all = yield* Effect.forEach(projections, (projection) => statusOf(projection as Catalogued))
          return all.flat()
        }).pipe(mapErrors({ what: "the projection status" })),

      rebuildProjection: ({ params }) =>
        Effect.gen(function* () {
          const actor = yield* CurrentActor
          yield* requireRole(actor, ["admin"], "rebuild projections")
          const projection = yield* catalogued(params.name)
          if (yield* FiberMap.has(rebuilds, projection.name)) {
            return yield* new Conflict({
              code: "RebuildInProgress",
              detail: `${projection.name} is being rebuilt already; follow its progress in the projection status`
            })
          }
          const holders = yield* leaseHolders(projection, Date.now())
          if (holders.length > 0) {
            return yield* new Conflict({
              code: "ProjectionLeaseHeld",
              detail: `${holders.join("; ")}. ${blueGreenHint(projection).replaceAll("\n", " ")}`
            })
          }
          const rows = yield* projection.status
          const eventsToReplay = rows.reduce((max, row) => Math.max(max, row.eventsBehind), 0)
          const replay: Effect.Effect<void, unknown, RebuildServices> = projection.rebuild({
            owner: consoleOwner,
            batchWindow: "1 millis"
          })
          const rebuild = replay.pipe(
            Effect.tap(() => Effect.logInfo(`console: ${projection.name} rebuilt`)),
            Effect.tapCause((cause) =>
              Cause.hasInterruptsOnly(cause)
                ? Effect.void
                : Effect.logError(`console: rebuilding ${projection.name} failed`, cause)
            ),
            Effect.provideContext(rebuildContext)
          )
          yield* FiberMap.run(rebuilds, projection.name, rebuild, { onlyIfMissing: true })
          yield* Effect.logInfo(`console: ${actor.name} started rebuilding ${projection.name}`)
          return {
            name: projection.name,
            version: projection.version,
            owner: consoleOwner,
            eventsToReplay: Math.max(eventsToReplay, 0)
          }
        }).pipe(mapErrors({ what: `projection ${params.name}` }))
    })
  })
)
