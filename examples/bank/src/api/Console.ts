/**
 * The endpoints the operations console (the page at `/`) needs beyond the accounts and transfers groups: a transfer's
 * whole story across the streams it touched (under the accounts' read rule: staff read both sides, a customer a
 * transfer of theirs with their own side only), and the projections' status with a rebuild action for admins.
 *
 * Only the group and its schemas live here, so that `Api.ts` can add the group without importing the handlers
 * (which need `Api`); the handlers are in `ConsoleHandlers.ts`.
 */
import { Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import { TransferSummary } from "../readmodels/ReadModels.ts"
import { endpointErrors } from "./Problems.ts"

const Id = Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(200))

/**
 * One stored event of a transfer's story: the audit trail's fields plus the stream it was written to.
 */
export const StoryEvent = Schema.Struct({
  streamId: Schema.String,
  eventId: Schema.String,
  version: Schema.Int,
  position: Schema.String,
  type: Schema.String,
  schemaVersion: Schema.Int,
  data: Schema.Json,
  metadata: Schema.Json,
  recordedAt: Schema.String
})

export type StoryEvent = typeof StoryEvent.Type

/**
 * A transfer's whole story: its own events and those it caused on the accounts it touched (debits, credits,
 * reversals, settlements), in the order the log recorded them.
 */
export const TransferStory = Schema.Struct({
  transfer: TransferSummary,
  events: Schema.Array(StoryEvent)
})

export type TransferStory = typeof TransferStory.Type

/**
 * One checkpoint of a projection (a version and partition), as `projections status` of the CLI shows it.
 */
export const ProjectionCheckpoint = Schema.Struct({
  name: Schema.String,
  currentVersion: Schema.Int,
  version: Schema.NullOr(Schema.Int),
  partition: Schema.NullOr(Schema.Int),
  checkpoint: Schema.NullOr(Schema.String),
  eventsBehind: Schema.NullOr(Schema.Int),
  secondsBehind: Schema.NullOr(Schema.Number),
  state: Schema.String,
  owner: Schema.NullOr(Schema.String),
  leaseExpiresAt: Schema.NullOr(Schema.String),
  error: Schema.NullOr(Schema.String),
  updatedAt: Schema.NullOr(Schema.String)
})

export type ProjectionCheckpoint = typeof ProjectionCheckpoint.Type

/**
 * What a rebuild request started.
 */
export const RebuildStarted = Schema.Struct({
  name: Schema.String,
  version: Schema.Int,
  owner: Schema.String,
  eventsToReplay: Schema.Int
})

/**
 * The console endpoints.
 */
export class ConsoleGroup extends HttpApiGroup.make("console")
  .add(
    HttpApiEndpoint.get("transferStory", "/transfers/:id/story", {
      params: { id: Id },
      success: TransferStory,
      error: endpointErrors
    }),
    HttpApiEndpoint.get("projections", "/projections", {
      success: Schema.Array(ProjectionCheckpoint),
      error: endpointErrors
    }),
    HttpApiEndpoint.post("rebuildProjection", "/projections/:name/rebuild", {
      params: { name: Id },
      success: RebuildStarted.pipe(HttpApiSchema.status(202)),
      error: endpointErrors
    })
  )
  .annotateMerge(
    OpenApi.annotations({
      title: "Console",
      description:
        "What the operations console reads: a transfer's story across streams (the accounts' read rule), projection status and rebuilds (admins)"
    })
  ) {}
