import type { Vitest } from "@effect/vitest"
import { assert } from "@effect/vitest"
import type { CheckpointStore, IntegrationEvent, Position, Relay } from "@facta/core"
import { Event, EventStore, Relay as Relays } from "@facta/core"
import type { Duration, Schema } from "effect"
import { Effect, Option, References, Schedule, Stream } from "effect"
import type { Broker, Destination } from "../RelayConformance.ts"
import { uniqueCategory } from "./conformanceHelpers.ts"

export type { Broker, Destination }
export { uniqueCategory }

/** The test helpers of a relay conformance block: every case gets the stores and what the broker needs. */
export type It<R> = Vitest.MethodsNonLive<EventStore.EventStore | CheckpointStore.CheckpointStore | R>

/** A relay name no other case, and no other run against the same database, uses. */
export const uniqueName = (prefix = "relay"): string => `${prefix}-${Event.makeEventIdUnsafe()}`

/** Runs a case with info logs (leases taken, catching up) left out: only warnings and errors show. */
export const quiet = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.provideService(self, References.MinimumLogLevel, "Error")

/** Appends one event (one append); its id. */
export const append = (streamId: string, type: string, data: Schema.Json, metadata?: Event.EventMetadata) => {
  const eventId = Event.makeEventIdUnsafe()
  return EventStore.EventStore.use((store) =>
    Effect.as(
      store.append(streamId, [
        metadata === undefined
          ? { eventId, type, schemaVersion: 1, data }
          : { eventId, type, schemaVersion: 1, data, metadata }
      ]),
      eventId as string
    )
  )
}

/** The stored events of some categories, in the log's order. */
export const logOf = (categories: ReadonlyArray<string>) =>
  EventStore.EventStore.use((store) => Stream.runCollect(store.readAll({ categories }))).pipe(
    Effect.map((events) => Array.from(events))
  )

/** Polls `condition` every 50 ms until it holds, failing after `timeout`. */
export const eventually = <E, R>(
  condition: Effect.Effect<boolean, E, R>,
  what: string,
  timeout: Duration.Input = "20 seconds"
): Effect.Effect<void, E, R> =>
  condition.pipe(
    Effect.repeat({ schedule: Schedule.spaced("50 millis"), until: (done) => done }),
    Effect.timeoutOrElse({
      duration: timeout,
      orElse: () => Effect.sync(() => assert.fail(`timed out waiting: ${what}`))
    }),
    Effect.asVoid
  )

/** A relay's status, failing when it has none yet. */
export const statusOf = (relay: Relay.Relay) =>
  Effect.map(Relays.status(relay), (status) =>
    Option.isSome(status) ? status.value : assert.fail(`relay ${relay.name} has no status`)
  )

/** How many positions of the log lie after `position` (what `eventsBehind` counts). */
export const behind = (position: Position.Position) =>
  Effect.map(
    EventStore.EventStore.use((store) => store.head),
    (head) => Number(head.sequence > position.sequence ? head.sequence - position.sequence : 0n)
  )

/** Whether the relay has a status and nothing left to publish. */
export const caughtUp = (relay: Relay.Relay) =>
  Effect.map(Relays.status(relay), (s) => Option.isSome(s) && s.value.eventsBehind === 0)

/** The publisher, counting the events the relay hands it (acknowledged or not). */
export const counting = (publisher: Relay.Publisher) => {
  const handed: Array<string> = []
  const wrapped: Relay.Publisher = {
    broker: publisher.broker,
    publish: (events) =>
      Effect.andThen(
        Effect.sync(() => handed.push(...events.map((e) => e.eventId))),
        publisher.publish(events)
      )
  }
  return { publisher: wrapped, handed }
}

/** The versions of each stream, in the order received. */
export const versionsByStream = (received: ReadonlyArray<IntegrationEvent.IntegrationEvent>) => {
  const versions = new Map<string, Array<number>>()
  for (const event of received) {
    const list = versions.get(event.streamId) ?? []
    list.push(event.version)
    versions.set(event.streamId, list)
  }
  return versions
}

/** Asserts that each stream's versions were received as 1, 2, 3... */
export const assertOrderPerStream = (received: ReadonlyArray<IntegrationEvent.IntegrationEvent>): void => {
  for (const [streamId, list] of versionsByStream(received)) {
    assert.deepStrictEqual(
      list,
      list.map((_, i) => i + 1),
      `the versions of ${streamId} in the broker's order`
    )
  }
}
