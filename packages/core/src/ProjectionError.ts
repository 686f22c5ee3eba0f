/**
 * The ways a projection run can stop short, as typed errors.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import { describe } from "./internal/cause.ts"

/**
 * A projection stopped on an event its handler kept failing on (or could not decode). Nothing after the event was
 * handled; the checkpoint stands just before it.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Projection } from "@facta/core"
 *
 * declare const Balances: Projection.Projection<{ readonly _tag: "Deposited" }>
 * const running = Projection.run(Balances).pipe(
 *   Effect.tapError((error) =>
 *     error._tag === "ProjectionFailed" ? Effect.logError(`poison event ${error.eventId} in ${error.streamId}`) : Effect.void
 *   )
 * )
 * ```
 *
 * @see {@link Projection.run}
 * @category errors
 * @since 0.1.0
 */
export class ProjectionFailed extends Schema.TaggedError<ProjectionFailed>("@facta/core/ProjectionFailed")(
  "ProjectionFailed",
  {
    name: Schema.String,
    version: Schema.Int,
    partition: Schema.Int,
    eventId: Schema.String,
    streamId: Schema.String,
    streamVersion: Schema.Int,
    position: Schema.String,
    cause: Schema.Defect()
  }
) {
  override get message() {
    return `Projection ${this.name} v${this.version} failed on event ${this.eventId} (${this.streamId} version ${this.streamVersion}, position ${this.position}): ${describe(this.cause)}`
  }
}

/**
 * `waitFor` gave up: the projection had not reached the position in time.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Position, Projection } from "@facta/core"
 *
 * declare const Balances: Projection.Projection<{ readonly _tag: "Deposited" }>
 * declare const position: Position.Position
 * // answer with possibly stale read models rather than fail the request
 * const fresh = Projection.waitFor(Balances, position, { timeout: "1 second" }).pipe(
 *   Effect.catchTag("ProjectionLagging", (lagging) => Effect.logWarning(lagging.message))
 * )
 * ```
 *
 * @see {@link Projection.waitFor}
 * @category errors
 * @since 0.1.0
 */
export class ProjectionLagging extends Schema.TaggedError<ProjectionLagging>("@facta/core/ProjectionLagging")(
  "ProjectionLagging",
  { name: Schema.String, version: Schema.Int, position: Schema.String }
) {
  override get message() {
    return `Projection ${this.name} v${this.version} has not reached ${this.position} yet`
  }
}
