import { assert, describe } from "@effect/vitest"
import { IntegrationEvent, Relay } from "@facta/core"
import { Effect, Fiber } from "effect"
import type { Broker, It } from "./relayHelpers.ts"
import {
  append,
  assertOrderPerStream,
  caughtUp,
  counting,
  eventually,
  logOf,
  quiet,
  uniqueCategory,
  uniqueName
} from "./relayHelpers.ts"

const range = (n: number) => Array.from({ length: n }, (_, i) => i)
const sortedIds = (events: ReadonlyArray<{ readonly eventId: string }>) => events.map((e) => e.eventId).sort()

/** Every event once, in order per stream, with its envelope; filters. */
export const register = <R>(it: It<R>, broker: Broker<R>): void => {
  describe("delivery", () => {
    it.effect(
      "publishes every event once under 8 concurrent writers, in order per stream, as stored; a restarted relay sends nothing again",
      () =>
        quiet(
          Effect.gen(function* () {
            const category = uniqueCategory("Relay")
            const destination = yield* broker.destination
            assert.strictEqual(destination.publisher.broker, broker.broker, "the publisher's broker name")
            const { publisher, handed } = counting(destination.publisher)
            const relay = Relay.make({ name: uniqueName(), categories: [category], publisher })
            const fiber = yield* Effect.forkChild(Relay.run(relay, { pollInterval: "100 millis" }))
            // 8 writers, 3 streams each, one event per append; every fifth carries correlation and causation
            yield* Effect.forEach(
              range(8),
              (w) =>
                Effect.forEach(
                  range(25),
                  (i) =>
                    append(
                      `${category}-w${w}s${i % 3}`,
                      "Deposited",
                      { writer: w, i },
                      i % 5 === 0 ? { correlationId: `c-${w}-${i}`, causationId: `k-${w}-${i}` } : undefined
                    ),
                  { discard: true }
                ),
              { concurrency: 8, discard: true }
            )
            const total = 8 * 25
            yield* eventually(
              Effect.map(destination.received, (received) => received.length >= total),
              `the broker holds the ${total} events`
            )
            const received = yield* destination.received
            assert.strictEqual(received.length, total, "messages in the broker")
            assert.strictEqual(new Set(received.map((e) => e.eventId)).size, total, "distinct event ids")
            const stored = yield* logOf([category])
            assert.deepStrictEqual(sortedIds(received), sortedIds(stored), "the broker holds the log's events")
            // each message is the stored event as it is published by default: id, stream, version, position, type,
            // schema version, data, correlation, causation and time
            const expected = new Map(stored.map((e) => [e.eventId as string, IntegrationEvent.fromRecorded(e)]))
            for (const message of received) assert.deepStrictEqual(message, expected.get(message.eventId))
            assertOrderPerStream(received)
            // the checkpoint moved past every acknowledged event: a new run hands nothing to the broker again
            yield* eventually(caughtUp(relay), "the relay's status shows nothing behind")
            yield* Fiber.interrupt(fiber)
            const before = handed.length
            yield* Relay.run(relay, { untilCaughtUp: true })
            assert.strictEqual(handed.length, before, "events handed to the broker by the restarted relay")
            assert.strictEqual((yield* destination.received).length, total, "messages after the restart")
          })
        ),
      60_000
    )

    it.effect("publishes only the categories and types it reads", () =>
      quiet(
        Effect.gen(function* () {
          const category = uniqueCategory("Relay")
          const other = uniqueCategory("Other")
          const deposit1 = yield* append(`${category}-1`, "Deposited", { n: 1 })
          const withdrawal1 = yield* append(`${category}-1`, "Withdrawn", { n: 2 })
          const otherDeposit = yield* append(`${other}-1`, "Deposited", { n: 3 })
          const deposit2 = yield* append(`${category}-2`, "Deposited", { n: 4 })
          const otherWithdrawal = yield* append(`${other}-2`, "Withdrawn", { n: 5 })
          const relayed = Effect.fnUntraced(function* (options: {
            readonly categories: ReadonlyArray<string>
            readonly types?: ReadonlyArray<string>
          }) {
            const destination = yield* broker.destination
            const relay = Relay.make({ name: uniqueName(), ...options, publisher: destination.publisher })
            yield* Relay.run(relay, { untilCaughtUp: true })
            return sortedIds(yield* destination.received)
          })
          assert.deepStrictEqual(
            yield* relayed({ categories: [category], types: ["Deposited"] }),
            [deposit1, deposit2].sort(),
            "one category, one type"
          )
          assert.deepStrictEqual(
            yield* relayed({ categories: [category] }),
            [deposit1, withdrawal1, deposit2].sort(),
            "one category, every type"
          )
          assert.deepStrictEqual(
            yield* relayed({ categories: [category, other], types: ["Withdrawn"] }),
            [withdrawal1, otherWithdrawal].sort(),
            "two categories, one type"
          )
          assert.deepStrictEqual(
            yield* relayed({ categories: [other] }),
            [otherDeposit, otherWithdrawal].sort(),
            "the other category"
          )
        })
      )
    )
  })
}
