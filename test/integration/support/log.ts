/** What the relay tests share: appending to the log, a writer that keeps appending, and waiting for a condition. */
import { Event, EventStore } from "@facta/core"
import { Duration, Effect, Schedule, type Schema } from "effect"

/** Appends one event; its id. */
export const append = (streamId: string, type: string, data: Schema.Json, metadata?: Event.EventMetadata) => {
  const eventId = Event.makeEventIdUnsafe()
  return EventStore.EventStore.use((store) =>
    Effect.as(
      store.append(streamId, [
        { eventId, type, schemaVersion: 1, data, ...(metadata === undefined ? {} : { metadata }) }
      ]),
      eventId as string
    )
  )
}

/** Appends a `Deposited` event to one of `Account-0` … `Account-7`, then waits `every`, until interrupted. */
export const appendForever = (every: Duration.Input) =>
  Effect.forever(
    Effect.andThen(
      Effect.suspend(() => append(`Account-${Math.floor(Math.random() * 8)}`, "Deposited", { at: Date.now() })),
      Effect.sleep(every)
    )
  )

/** Polls `check` until it holds, for at most `timeout`. */
export const eventually = <E, R>(check: Effect.Effect<boolean, E, R>, timeout: Duration.Input = "20 seconds") =>
  check.pipe(
    Effect.repeat({ schedule: Schedule.spaced("50 millis"), until: (done) => done }),
    Effect.timeoutOrElse({
      duration: timeout,
      orElse: () => Effect.die(new Error(`not reached within ${Duration.format(Duration.fromInputUnsafe(timeout))}`))
    })
  )
