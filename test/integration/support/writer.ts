/** What the relay process tests share: a writer appending one event at a time to eight streams until interrupted. */
import { Event, EventStore } from "@facta/core"
import { type Duration, Effect } from "effect"

/** Appends a `Deposited` event to one of `Account-0` … `Account-7`, then waits `every`, until interrupted. */
export const appendForever = (every: Duration.Input) =>
  Effect.flatMap(EventStore.EventStore, (store) =>
    Effect.forever(
      Effect.andThen(
        Effect.suspend(() =>
          store.append(`Account-${Math.floor(Math.random() * 8)}`, [
            { eventId: Event.makeEventIdUnsafe(), type: "Deposited", schemaVersion: 1, data: { at: Date.now() } }
          ])
        ),
        Effect.sleep(every)
      )
    )
  )
