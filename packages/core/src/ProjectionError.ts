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
