import { assert, describe } from "@effect/vitest"
import { Event, IntegrationEvent, Position, Relay } from "@facta/core"
import { Effect, Fiber, Option, Schema } from "effect"
import type { Broker, Destination, It } from "./relayHelpers.ts"
import {
  append,
  behind,
  caughtUp,
  eventually,
  logOf,
  quiet,
  statusOf,
  uniqueCategory,
  uniqueName
} from "./relayHelpers.ts"

const sortedIds = (events: ReadonlyArray<{ readonly eventId: string }>) => events.map((e) => e.eventId).sort()

/** The public schema of the mapping case: what consumers see instead of the stored deposits. */
const MoneyIn = Schema.TaggedStruct("MoneyIn", {
  account: Schema.String,
  cents: Schema.Int.check(Schema.isGreaterThan(0))
})

const limitOf = (destination: Destination): number =>
  destination.maxMessageBytes ??
  assert.fail("the destination states no maxMessageBytes: run the suite with oversize: false")

/** Mapping to a public schema, messages too large, a broker that refuses publishes. */
export const register = <R>(it: It<R>, broker: Broker<R>, options: { readonly oversize: boolean }): void => {
  describe("mapping and failures", () => {
    it.effect(
      "maps to a public schema, keeping the stored id, stream, version and position; parks an event it cannot encode, with the reason",
      () =>
        quiet(
          Effect.gen(function* () {
            const category = uniqueCategory("Relay")
            const destination = yield* broker.destination
            const relay = Relay.make({
              name: uniqueName(),
              categories: [category],
              types: ["Deposited"],
              publisher: destination.publisher,
              // checks off: a negative amount makes a value the schema refuses to encode
              map: Relay.mapTo(
                MoneyIn,
                (event) =>
                  MoneyIn.make(
                    { account: event.streamId, cents: (event.data as { amount: number }).amount },
                    { disableChecks: true }
                  ),
                { schemaVersion: 2 }
              )
            })
            const first = yield* append(`${category}-1`, "Deposited", { amount: 5 })
            yield* append(`${category}-1`, "Withdrawn", { amount: 3 })
            const negative = yield* append(`${category}-2`, "Deposited", { amount: -1 })
            const second = yield* append(`${category}-1`, "Deposited", { amount: 6 })
            yield* Relay.run(relay, { untilCaughtUp: true })

            const received = yield* destination.received
            assert.deepStrictEqual(
              received.map((e) => [e.eventId, e.type, e.schemaVersion, e.data]),
              [
                [first, "MoneyIn", 2, { _tag: "MoneyIn", account: `${category}-1`, cents: 5 }],
                [second, "MoneyIn", 2, { _tag: "MoneyIn", account: `${category}-1`, cents: 6 }]
              ]
            )
            const stored = (yield* logOf([category])).find((e) => e.eventId === first)!
            assert.deepStrictEqual(
              [received[0]!.streamId, received[0]!.category, received[0]!.version, received[0]!.position],
              [`${category}-1`, category, 1, Position.format(stored.position)]
            )
            // a consumer decodes the message's data with the public schema
            assert.strictEqual(Schema.decodeUnknownSync(MoneyIn)(received[0]!.data).cents, 5)

            const parked = yield* Relay.parked(relay)
            assert.deepStrictEqual(
              parked.map((p) => p.event.eventId),
              [negative]
            )
            assert.include(parked[0]!.error, "greater than 0")
            // the parked event held nothing back: the checkpoint is past it
            assert.strictEqual((yield* statusOf(relay)).eventsBehind, 0)
          })
        )
    )

    if (options.oversize) {
      it.effect("the publisher fails with MessageTooLarge naming both sizes, before it sends anything", () =>
        Effect.gen(function* () {
          const category = uniqueCategory("Relay")
          const destination = yield* broker.destination
          const limit = limitOf(destination)
          const message = (data: Schema.Json): IntegrationEvent.IntegrationEvent => ({
            eventId: Event.makeEventIdUnsafe(),
            streamId: `${category}-1`,
            category,
            version: 1,
            position: "0.1.1",
            type: "Deposited",
            schemaVersion: 1,
            data,
            recordedAt: new Date(0).toISOString()
          })
          const large = message({ note: "x".repeat(limit + 10) })
          const error = yield* Effect.flip(destination.publisher.publish([message({ amount: 1 }), large]))
          if (!IntegrationEvent.isMessageTooLarge(error)) return assert.fail(`expected MessageTooLarge, got ${error}`)
          assert.strictEqual(error.broker, broker.broker)
          assert.strictEqual(error.messageId, large.eventId)
          assert.strictEqual(error.limit, limit)
          assert.isAbove(error.size, limit)
          assert.include(error.message, `${error.size} bytes`)
          assert.include(error.message, `${error.limit} bytes`)
          assert.strictEqual((yield* destination.received).length, 0, "messages in the broker")
        })
      )

      it.effect("parks an event too large for the broker, naming both sizes, and publishes the rest", () =>
        quiet(
          Effect.gen(function* () {
            const category = uniqueCategory("Relay")
            const destination = yield* broker.destination
            const limit = limitOf(destination)
            const relay = Relay.make({ name: uniqueName(), categories: [category], publisher: destination.publisher })
            const small1 = yield* append(`${category}-1`, "Deposited", { amount: 1 })
            // the store takes it (its limit is higher), the broker would not
            const big = yield* append(`${category}-2`, "Deposited", { note: "x".repeat(limit + 10) })
            const small2 = yield* append(`${category}-3`, "Deposited", { amount: 3 })
            const after = yield* append(`${category}-2`, "Deposited", { amount: 4 })
            yield* Relay.run(relay, { untilCaughtUp: true })
            assert.deepStrictEqual(sortedIds(yield* destination.received), [small1, small2, after].sort())
            const parked = yield* Relay.parked(relay)
            assert.deepStrictEqual(
              parked.map((p) => p.event.eventId),
              [big]
            )
            assert.match(
              parked[0]!.error,
              new RegExp(
                `${broker.broker} message ${big} is \\d+ bytes, more than the broker's limit of ${limit} bytes`
              )
            )
          })
        )
      )
    }

    it.effect("moves no checkpoint while the broker refuses the publishes, then catches up once it accepts them", () =>
      quiet(
        Effect.gen(function* () {
          const category = uniqueCategory("Relay")
          const destination = yield* broker.destination
          const relay = Relay.make({ name: uniqueName(), categories: [category], publisher: destination.publisher })
          const first = yield* append(`${category}-1`, "Deposited", { amount: 1 })
          const second = yield* append(`${category}-2`, "Deposited", { amount: 2 })
          const accept = yield* destination.refuse([category])
          const fiber = yield* Effect.forkChild(Relay.run(relay, { pollInterval: "50 millis" }))
          yield* eventually(
            Effect.map(
              Relay.status(relay),
              (s) => Option.isSome(s) && Option.getOrElse(s.value.error, () => "").includes("retrying after")
            ),
            "the status says the relay is retrying",
            "10 seconds"
          )
          yield* Effect.sleep("300 millis")
          const stuck = yield* statusOf(relay)
          assert.deepStrictEqual(stuck.checkpoint, Position.start, "the checkpoint while the broker refuses")
          assert.strictEqual(stuck.eventsBehind, yield* behind(Position.start))
          assert.isAtLeast(stuck.eventsBehind, 2)
          if (destination.refusal !== undefined) assert.include(Option.getOrThrow(stuck.error), destination.refusal)

          yield* accept
          yield* eventually(
            Effect.map(destination.received, (received) => received.length === 2),
            "both events in the broker"
          )
          yield* eventually(caughtUp(relay), "the relay's status shows nothing behind")
          assert.isTrue(Option.isNone((yield* statusOf(relay)).error), "no error in the status once caught up")
          yield* Fiber.interrupt(fiber)
          assert.deepStrictEqual(sortedIds(yield* destination.received), [first, second].sort())
        })
      )
    )
  })
}
