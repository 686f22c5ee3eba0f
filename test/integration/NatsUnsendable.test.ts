/**
 * An event NATS cannot carry, on the real broker (127.0.0.1:4222, or NATS_URL): a correlation id, causation id or
 * type with a line break would have to go in a header, which NATS refuses. The publisher fails with a typed
 * `MessageUnsendable` before it sends anything, and the relay parks the event with that reason and publishes the
 * rest, instead of dying on the client's exception or retrying it forever. So is a subject that is not a NATS subject
 * (a custom subject function's type with a space), and a message the stream refuses as larger than its own
 * `max_msg_size` (an error acknowledgement that retrying never fixes). Without a broker the file is skipped with one
 * line (under CI=true it fails).
 */
import { assert, describe, it } from "@effect/vitest"
import { CheckpointStore, Event, EventStore, IntegrationEvent, Relay } from "@facta/core"
import { NatsPublisher } from "@facta/nats"
import { Effect, Layer, Stream } from "effect"
import { append } from "./support/log.ts"
import * as Nats from "./support/nats.ts"

const available = await Nats.natsAvailable()

describe.skipIf(!available)("Events NATS headers cannot carry", () => {
  it.live("are refused with MessageUnsendable before anything is sent, and parked by the relay", () => {
    const name = Nats.unique("UNSENT")
    const prefix = Nats.unique("t")
    return Effect.gen(function* () {
      const before = yield* append("Account-1", "Opened", {}, { correlationId: "c-1" })
      const broken = yield* append("Account-1", "Deposited", {}, { correlationId: "c-2\r\nInjected: yes" })
      const caused = yield* append("Account-2", "Opened", {}, { causationId: "k\n1" })
      const after = yield* append("Account-1", "Closed", {}, { correlationId: "c-3" })
      const publisher = yield* NatsPublisher.make({ subject: NatsPublisher.subject(prefix) })

      // the publisher alone: a typed error naming the event and the header, and nothing of the call sent
      const events = Array.from(
        yield* EventStore.EventStore.use((store) => Stream.runCollect(store.read("Account-1")))
      ).map(IntegrationEvent.fromRecorded)
      const refused = yield* Effect.flip(publisher.publish(events))
      assert.isTrue(IntegrationEvent.isMessageUnsendable(refused))
      assert.strictEqual(
        refused.message,
        `nats message ${broken} cannot be sent: its Facta-Correlation-Id header would hold a line break, which ` +
          "NATS headers cannot carry"
      )
      assert.strictEqual(yield* Nats.messageCount(name), 0)

      // the relay parks both and publishes the rest, in order
      const relay = Relay.make({ name: "unsendable", publisher })
      yield* Relay.run(relay, { untilCaughtUp: true })
      const messages = yield* Nats.readStream(name)
      assert.deepStrictEqual(
        messages.map((m) => m.body.eventId),
        [before, after]
      )
      const parked = yield* Relay.parked(relay)
      assert.deepStrictEqual(parked.map((p) => p.event.eventId).sort(), [broken, caused].sort())
      const reasons = new Map(parked.map((p) => [p.event.eventId as string, p.error]))
      assert.include(reasons.get(broken), "Facta-Correlation-Id")
      assert.include(reasons.get(caused), "Facta-Causation-Id")
      const status = yield* Relay.status(relay)
      assert.strictEqual(status._tag === "Some" ? status.value.eventsBehind : -1, 0)
    }).pipe(
      Effect.provide(
        Layer.mergeAll(
          Nats.stream(name, prefix),
          Layer.fresh(EventStore.layerMemory),
          Layer.fresh(CheckpointStore.layerMemory)
        ).pipe(Layer.provideMerge(Nats.client()))
      )
    )
  })

  it.live("an invalid subject or a stream's own size limit parks the event, with the reason", () => {
    const name = Nats.unique("UNSENT")
    const prefix = Nats.unique("t")
    return Effect.gen(function* () {
      const spaced = yield* append("Account-1", "Has Space", {})
      const large = Event.makeEventIdUnsafe()
      yield* EventStore.EventStore.use((store) =>
        store.append("Account-2", [{ eventId: large, type: "Big", schemaVersion: 1, data: { blob: "x".repeat(4096) } }])
      )
      const fine = yield* append("Account-3", "Opened", {})
      // a subject of the event's type as it is: "Has Space" is no NATS subject
      const publisher = yield* NatsPublisher.make({ subject: (event) => `${prefix}.${event.category}.${event.type}` })
      const relay = Relay.make({ name: "invalid", publisher })
      yield* Relay.run(relay, { untilCaughtUp: true })
      assert.deepStrictEqual(
        (yield* Nats.readStream(name)).map((m) => m.body.eventId),
        [fine]
      )
      const reasons = new Map((yield* Relay.parked(relay)).map((p) => [p.event.eventId as string, p.error]))
      assert.include(reasons.get(spaced), "is not a NATS subject")
      assert.include(reasons.get(large as string), "the stream refused its")
      assert.strictEqual(reasons.size, 2)
    }).pipe(
      Effect.provide(
        Layer.mergeAll(
          // the stream takes messages of 2 KiB at most, far below the server's max_payload
          Nats.stream(name, prefix, { maxMessageBytes: 2048 }),
          Layer.fresh(EventStore.layerMemory),
          Layer.fresh(CheckpointStore.layerMemory)
        ).pipe(Layer.provideMerge(Nats.client()))
      )
    )
  })
})
