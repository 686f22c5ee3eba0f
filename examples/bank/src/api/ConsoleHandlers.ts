/**
 * The handlers of the console endpoints (see `Console.ts`): a transfer's story, projection status and rebuilds.
 *
 * Only the read models are rebuilt: the transfer process sends commands, and replaying the log through it would send
 * them again (409 `NotRebuildable`). When this process runs the projections (a `Background.ProjectionControl` in the
 * server's context, as in `pnpm demo`), a rebuild goes through the control: the running projection stops, its read
 * model is reset and the log replayed under this process's leases, and it tails the log again; the answer is a 202
 * and the projection status says `rebuilding` until the replay has caught up. A second request while one runs starts
 * the rebuild over.
 *
 * Otherwise (an API-only server) a rebuild from the console is the CLI's `projections rebuild` without the wait,
 * under leases of its own (`bank-console`), 409 `RebuildInProgress` while one runs. Either way the console never
 * competes with another process for a lease: when another instance holds a live lease on the projection, the answer
 * is a 409 naming the holder and how to rebuild beside it (blue/green).
 */
import { type Event, EventStore, Position } from "@facta/core"
import { Cause, DateTime, Effect, FiberMap, Option, Stream } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { Accounts, Transfers } from "../app/Aggregates.ts"
import { ProjectionControl, readModels as rebuildable } from "../app/Background.ts"
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
    // the projections this process runs, when it runs them (see `Background.ProjectionControl`)
    const control = yield* Effect.serviceOption(ProjectionControl)
    const controlled = (name: string) => Option.filter(control, (found) => found.names.includes(name))
    const logHead = Effect.gen(function* () {
      const store = yield* EventStore.EventStore
      return Number((yield* store.head).sequence)
    }).pipe(Effect.provideContext(rebuildContext))

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

    const rebuildingHere = (projection: Catalogued) =>
      Option.match(controlled(projection.name), {
        onNone: () => Effect.succeed(false),
        onSome: (here) => here.isRebuilding(projection.name)
      })

    const statusOf = (projection: Catalogued) =>
      Effect.map(
        Effect.zip(projection.status, rebuildingHere(projection)),
        ([rows, rebuilding]): ReadonlyArray<ProjectionCheckpoint> => {
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
            // from the request until the replay has caught up, whatever the checkpoint says between the runs
            state: rebuilding && row.key.version === projection.version ? "rebuilding" : row.state,
            owner: Option.getOrNull(row.owner),
            leaseExpiresAt: Option.match(row.leaseExpiresAt, { onNone: () => null, onSome: iso }),
            error: Option.getOrNull(row.error),
            updatedAt: iso(row.updatedAt)
          }))
        }
      )

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
          if (!rebuildable.some((model) => model.name === projection.name)) {
            return yield* new Conflict({
              code: "NotRebuildable",
              detail:
                `${projection.name} is not a read model: it sends commands, and replaying the log through it would ` +
                `send them again; only ${rebuildable.map((model) => model.name).join(" and ")} are rebuilt`
            })
          }
          const here = controlled(projection.name)
          if (Option.isSome(here)) {
            // this process runs the projection: rebuild it in place, unless another process holds its lease
            const elsewhere = yield* leaseHolders(projection, Date.now(), here.value.owner)
            if (elsewhere.length > 0) {
              return yield* new Conflict({
                code: "ProjectionLeaseHeld",
                detail: `${elsewhere.join("; ")}. ${blueGreenHint(projection).replaceAll("\n", " ")}`
              })
            }
            const eventsToReplay = yield* logHead
            yield* here.value
              .rebuild(projection.name)
              .pipe(
                Effect.catchTag("NotRunningHere", (error) =>
                  Effect.fail(new Conflict({ code: "NotRunningHere", detail: error.message }))
                )
              )
            yield* Effect.logInfo(`console: ${actor.name} started rebuilding ${projection.name} in place`)
            return { name: projection.name, version: projection.version, owner: here.value.owner, eventsToReplay }
          }
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
          const eventsToReplay = yield* logHead
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
            eventsToReplay
          }
        }).pipe(mapErrors({ what: `projection ${params.name}` }))
    })
  })
)
